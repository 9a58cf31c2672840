"""Rows in the parquet layout verl 0.9.1's ``RLHFDataset`` reads (``verl/utils/dataset/rl_dataset.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from verl_focal.user_files import InputRule, check_output_file, replacing

PARQUET = {".parquet": "Apache Parquet"}  # the one format verl's RLHFDataset reads
# The paper's system prompt on every math and GPQA input (F-GRPO, Sec. 5.3 and Table 9).
SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."


def make_row(
    data_source: str, question: str, answer: str, split: str, index: int, source_id: str, ability: str = "math",
    system: str | None = SYSTEM_PROMPT,
) -> dict[str, Any]:
    """One verl row: the chat ``prompt`` (``system`` turn, if any, + user turn), the rule-based reference and
    ``extra_info``.

    ``extra_info`` has the same keys in every row (parquet needs one struct type per column); ``compute_score``
    receives it.
    """
    turns = [{"role": "system", "content": system}] if system is not None else []
    return {
        "data_source": data_source,
        "prompt": [*turns, {"role": "user", "content": question}],
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {"split": split, "index": index, "id": source_id},
    }


def check_output(path: str | Path, is_input: InputRule | None = None) -> Path:
    """Refuse, before any work, an ``--output`` that is not a writable ``.parquet`` file path (verl reads parquet
    only) or that ``is_input`` says would overwrite or pollute the input."""
    return check_output_file(path, "--output", suffixes=PARQUET, is_input=is_input)


def write_parquet(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` (from :func:`make_row`) to ``path``, creating parent directories; an existing file is replaced
    only once the new one is complete."""
    if not rows:
        raise ValueError(f"refusing to write {path}: no rows left to write")
    path = Path(path)
    with replacing(path) as temporary:
        pq.write_table(pa.Table.from_pylist(rows), temporary)
    return path
