"""The paper's out-of-domain sets, IFEval and SynLogic, as verl parquet with Table 9's prompt per model.

Both keep the published records as their reference: an IFEval row's ground truth is its instruction ids and
arguments, a SynLogic row's is the task with the answer and metadata its verifier reads, each as a JSON string
(the arguments differ per instruction and task; a string keeps one parquet type per column, so these files
concatenate with the math ones in ``data.val_files``). ``verl_focal.rewards.compute_score`` scores them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verl_focal.data.prepare import output_rule
from verl_focal.data.readers import DataError, read_records
from verl_focal.data.verl_format import check_output, make_row, write_parquet
from verl_focal.rewards.references import ReferenceError, json_object

# Table 9 of the paper: the system turn per model for IFEval and SynLogic (None: no system turn), and whether
# Qwen3's thinking is on. Llama 3.2's chat template writes its date header ("Cutting Knowledge Date: December
# 2023 / Today Date: ...") into every system turn itself, so "the date header only" is no system message.
MODELS = ("qwen2_5_7b", "qwen3_4b_base", "llama3_2_3b_instruct")
HELPFUL = "You are a helpful assistant."
SYSTEM_PROMPTS = {
    "ifeval": {"qwen2_5_7b": HELPFUL, "qwen3_4b_base": None, "llama3_2_3b_instruct": None},
    "synlogic": {"qwen2_5_7b": HELPFUL, "qwen3_4b_base": None, "llama3_2_3b_instruct": None},
}
THINKING = {"ifeval": False, "synlogic": True}  # Qwen3-4B-Base only
SYNLOGIC_CONFIGS = {"easy": "synlogic_easy", "hard": "synlogic_hard"}


@dataclass
class OodReport:
    dataset: str
    sources: list[str]
    model: str
    read: int = 0
    duplicates: int = 0
    dropped: Counter = field(default_factory=Counter)
    kept: int = 0
    tasks: Counter = field(default_factory=Counter)

    def lines(self, output: Path) -> list[str]:
        system = SYSTEM_PROMPTS[self.dataset][self.model]
        lines = [f"{self.dataset}: read {self.read} rows from {', '.join(self.sources)}",
                 f"  dropped {self.duplicates} repeated rows (same prompt and reference)"]
        lines += [f"  dropped {n} rows of task {task}: not scored ({reason})"
                  for (task, reason), n in sorted(self.dropped.items())]
        if self.tasks:
            kept = ", ".join(f"{task} {n}" for task, n in sorted(self.tasks.items()))
            lines.append(f"  tasks kept ({len(self.tasks)}): {kept}")
        lines.append(f"  prompt for {self.model}: " + (f"system turn {system!r}" if system else "no system turn"))
        if self.model == "qwen3_4b_base":
            lines.append(f"  evaluate with +data.apply_chat_template_kwargs.enable_thinking="
                         f"{str(THINKING[self.dataset]).lower()} (Table 9: thinking "
                         f"{'on' if THINKING[self.dataset] else 'off'} for {self.dataset})")
        lines.append(f"  kept {self.kept} -> {output}")
        return lines


def prepare_ifeval(input_path: str | Path, output_path: str | Path, model: str, split: str | None = None) -> OodReport:
    """google/IFEval records (``prompt``, ``instruction_id_list``, ``kwargs``; JSONL or parquet) to verl rows."""
    from verl_focal.rewards import ifeval

    _check_model(model)
    check_output(output_path, output_rule(input_path))
    ifeval.instruction_types()  # the checks must load before any work (ImportError names the extra)
    sources = read_records(input_path, split)
    report = OodReport("ifeval", [name for name, _ in sources], model, read=sum(len(r) for _, r in sources))
    rows, seen = [], set()
    for name, records in sources:
        for number, record in enumerate(records):
            where = f"{name} row {number}"
            prompt = record.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise DataError(f"{where}: column 'prompt' is missing, empty or not text")
            try:
                reference = ifeval.parse_reference({**record, "prompt": prompt})
            except ReferenceError as error:
                raise DataError(f"{where}: {error}") from error
            truth = json.dumps({"instruction_id_list": list(reference.instruction_ids),
                                "kwargs": list(reference.kwargs), "prompt": prompt}, sort_keys=True)
            if (prompt, truth) in seen:
                report.duplicates += 1
                continue
            seen.add((prompt, truth))
            source_id = str(record["key"]) if record.get("key") is not None else str(number)
            rows.append(make_row("ifeval", prompt, truth, "test", len(rows), source_id, "instruction_following",
                                 system=SYSTEM_PROMPTS["ifeval"][model]))
    return _write(rows, output_path, report)


def prepare_synlogic(input_path: str | Path, output_path: str | Path, model: str, config: str | None = None,
                     split: str = "validation") -> OodReport:
    """A local copy of MiniMaxAI/SynLogic (``synlogic_easy/validation.parquet``, ...) to verl rows.

    Each row needs the task in ``data_source`` and the verifier's record (question, answer, metadata) as JSON in
    ``extra_info.game_data_str``; tasks without a faithful rule (``LEFT_OUT``) are dropped and counted. The
    reference keeps the record's answer and metadata, and its question for the tasks whose verifier reads it.
    """
    from verl_focal.rewards import synlogic

    _check_model(model)
    check_output(output_path, output_rule(input_path))
    sources = read_records(_synlogic_folder(Path(input_path), config), split)
    report = OodReport("synlogic", [name for name, _ in sources], model, read=sum(len(r) for _, r in sources))
    rows, seen = [], set()
    for name, records in sources:
        for number, record in enumerate(records):
            where = f"{name} row {number}"
            task = synlogic.task_name(record.get("data_source"))
            if not task:
                raise DataError(f"{where}: column 'data_source' (the task name) is missing or empty")
            game = _game_data(record, where)
            if task not in synlogic.supported_tasks():
                report.dropped[(task, synlogic.LEFT_OUT.get(task, "unknown task"))] += 1
                continue
            question = _question(record, game, where)
            reference = {"task": task, "answer": game.get("answer"), "metadata": game.get("metadata") or {}}
            if task in synlogic.NEEDS_QUESTION:  # the verifier reads the puzzle from the record's own question
                reference["question"] = game.get("question")
            truth = json.dumps(reference, sort_keys=True, ensure_ascii=False)
            try:
                synlogic.parse_reference(truth)
            except ReferenceError as error:
                raise DataError(f"{where}: {error}") from error
            if (question, truth) in seen:
                report.duplicates += 1
                continue
            seen.add((question, truth))
            report.tasks[task] += 1
            source_id = f"{task}/{_extra(record).get('index', number)}"
            rows.append(make_row("synlogic", question, truth, "test", len(rows), source_id, "logic",
                                 system=SYSTEM_PROMPTS["synlogic"][model]))
    return _write(rows, output_path, report)


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise DataError(f"--model {model!r}: choose one of {', '.join(MODELS)} (Table 9's prompts differ per model)")


def _synlogic_folder(path: Path, config: str | None) -> Path:
    """``--input`` itself, or its ``synlogic_<config>`` folder when it is the dataset's root."""
    present = [name for name, folder in SYNLOGIC_CONFIGS.items() if (path / folder).is_dir()]
    if config is None:
        if present:
            raise DataError(f"{path}: holds the configurations {', '.join(present)}; choose one with --config")
        return path
    if config not in SYNLOGIC_CONFIGS:
        raise DataError(f"--config {config!r}: choose one of {', '.join(SYNLOGIC_CONFIGS)}")
    if config not in present:
        raise DataError(f"--config {config}: {path} has no folder {SYNLOGIC_CONFIGS[config]}/")
    return path / SYNLOGIC_CONFIGS[config]


def _extra(record: dict[str, Any]) -> dict[str, Any]:
    extra = record.get("extra_info")
    return extra if isinstance(extra, dict) else {}


def _game_data(record: dict[str, Any], where: str) -> dict[str, Any]:
    raw = _extra(record).get("game_data_str", record.get("game_data_str"))
    if not isinstance(raw, str):
        raise DataError(f"{where}: no extra_info.game_data_str (the verifier's record, as JSON text)")
    try:
        game = json_object(raw, "extra_info.game_data_str")
    except ReferenceError as error:
        raise DataError(f"{where}: {error}") from error
    if game.get("metadata") is not None and not isinstance(game["metadata"], dict):
        raise DataError(f"{where}: extra_info.game_data_str metadata is not an object")
    return game


def _question(record: dict[str, Any], game: dict[str, Any], where: str) -> str:
    """The last user turn of the row's ``prompt``, else the game record's ``question``."""
    turns = record.get("prompt")
    if type(turns).__name__ == "ndarray":
        turns = list(turns)
    if isinstance(turns, list):
        users = [t.get("content") for t in turns if isinstance(t, dict) and t.get("role") == "user"]
        if users and isinstance(users[-1], str) and users[-1].strip():
            return users[-1].strip()
    question = game.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: neither a user turn in 'prompt' nor a question in extra_info.game_data_str")
    return question.strip()


def _write(rows: list[dict[str, Any]], output_path: str | Path, report: OodReport) -> OodReport:
    if not report.read:
        raise DataError(f"{', '.join(report.sources)}: no rows")
    write_parquet(rows, output_path)
    report.kept = len(rows)
    return report
