"""Turn the paper's training set and benchmarks, as published, into verl parquet files.

Each dataset has a spec: where its question and answer live (column names differ between published copies),
its ``data_source`` and split. Every dataset is deduplicated by problem text (some AIME copies repeat each problem
32 times); problems that appear with *different* answers are dropped, as the paper does for DeepScaleR
(40,315 -> 39,202 rows together with the length filter). DeepScaleR also drops prompts over 1024 tokens.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from verl_focal.data.readers import DataError, read_records
from verl_focal.data.verl_format import SYSTEM_PROMPT, check_output, make_row, write_parquet
from verl_focal.rewards.extract import normalize

MAX_PROMPT_TOKENS = 1024
CHOICE_LETTERS = "ABCD"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    split: str
    question_columns: tuple[str, ...] = ("problem", "question", "Problem", "Question")
    answer_columns: tuple[str, ...] = ("answer", "Answer", "final_answer", "expected_answer")
    id_columns: tuple[str, ...] = ("unique_id", "id", "ID", "Record ID", "idx")
    length_filter: bool = False
    multiple_choice: bool = False
    ability: str = "math"
    notes: str = field(default="", compare=False)

    @property
    def data_source(self) -> str:
        return self.name


SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("deepscaler", "train", length_filter=True, notes="agentica-org/DeepScaleR-Preview-Dataset"),
        DatasetSpec("math500", "test", notes="HuggingFaceH4/MATH-500"),
        DatasetSpec(
            "aime24", "test", notes="HuggingFaceH4/aime_2024, Maxwell-Jia/AIME_2024, BytedTsinghua-SIA/AIME-2024"
        ),
        DatasetSpec("aime25", "test", notes="yentinglin/aime_2025, math-ai/aime25, opencompass/AIME2025"),
        DatasetSpec("amc23", "test", notes="math-ai/amc23, AI-MO/aimo-validation-amc"),
        DatasetSpec("minerva", "test", notes="math-ai/minervamath"),
        DatasetSpec("olympiadbench", "test", notes="Hothan/OlympiadBench OE_TO_maths_en_COMP, math-ai/olympiadbench"),
        DatasetSpec(
            "gpqa_diamond",
            "test",
            question_columns=("Question", "question"),
            answer_columns=("Correct Answer", "answer"),
            multiple_choice=True,
            ability="science",
            notes="Idavidrein/gpqa gpqa_diamond (CSV): options shuffled with --seed",
        ),
    )
}


@dataclass
class Problem:
    question: str
    answer: str
    source_id: str


@dataclass
class Report:
    dataset: str
    sources: list[str]
    read: int = 0
    duplicates: int = 0
    conflicting_rows: int = 0
    conflicting_problems: int = 0
    too_long: int = 0
    kept: int = 0
    length_note: str = ""
    warnings: list[str] = field(default_factory=list)

    def lines(self, output: Path) -> list[str]:
        return [
            f"{self.dataset}: read {self.read} rows from {', '.join(self.sources)}",
            f"  dropped {self.duplicates} repeated rows of the same problem with the same answer",
            f"  dropped {self.conflicting_rows} rows of {self.conflicting_problems} problems listed with different "
            "answers",
            f"  {self.length_note}",
            f"  kept {self.kept} -> {output}",
        ]


def _first_column(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in columns), None)


def _answer_text(value: Any, where: str) -> str:
    """The reference answer as text: a string, a finite number (``27.0`` is ``27``) or a list (``a, b``)."""
    if value is None:
        raise DataError(f"{where}: answer is missing")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DataError(f"{where}: answer is {value!r}, a missing value rather than a reference answer")
        value = int(value) if value.is_integer() else value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        value = ", ".join(_answer_text(item, where) for item in value)
    elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise DataError(f"{where}: answer is a {type(value).__name__} ({shown}); expected text, a number or a list")
    text = str(value).strip()
    text = text[1:-1].strip() if len(text) > 1 and text.startswith("$") and text.endswith("$") else text
    if not text:
        raise DataError(f"{where}: answer is empty")
    return text


def _verl_row_problem(row: dict[str, Any], where: str) -> tuple[str, Any]:
    """Question and answer of a row already in verl format (e.g. BytedTsinghua-SIA/AIME-2024)."""
    turns = row.get("prompt")
    user = [t for t in turns if isinstance(t, dict) and t.get("role") == "user"] if isinstance(turns, list) else []
    if not user or not isinstance(row.get("reward_model"), dict):
        raise DataError(f"{where}: verl-format row needs a user turn in 'prompt' and 'reward_model.ground_truth'")
    return str(user[-1].get("content", "")), row["reward_model"].get("ground_truth")


def extract_problems(spec: DatasetSpec, rows: list[dict[str, Any]], origin: str, seed: int,
                     warnings: list[str] | None = None) -> list[Problem]:
    """Question, reference answer and id of each row, with errors naming ``origin`` (a file) and the row or
    column; doubtful but usable rows (a GPQA record with two equal options) are appended to ``warnings``."""
    if not rows:
        raise DataError(f"{origin}: no rows")
    columns = list(rows[0])
    question_column = _first_column(columns, spec.question_columns)
    answer_column = _first_column(columns, spec.answer_columns)
    id_column = _first_column(columns, spec.id_columns)
    verl_format = question_column is None and "prompt" in columns and "reward_model" in columns
    if not verl_format:
        if question_column is None:
            raise DataError(
                f"{origin}: no question column for {spec.name}: expected one of {list(spec.question_columns)}, "
                f"found columns {columns}"
            )
        if answer_column is None:
            raise DataError(
                f"{origin}: no answer column for {spec.name}: expected one of {list(spec.answer_columns)}, "
                f"found columns {columns}"
            )
    problems = []
    for number, row in enumerate(rows):
        where = f"{origin} row {number}"
        if verl_format:
            question, answer = _verl_row_problem(row, where)
        else:
            for column in (question_column, answer_column):
                if column not in row:
                    raise DataError(f"{where}: column {column!r} missing")
            question, answer = row[question_column], row[answer_column]
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{where}: column {question_column or 'prompt'!r} is empty or not text")
        source_id = str(row[id_column]) if id_column and row.get(id_column) is not None else str(number)
        if spec.multiple_choice and not verl_format and answer_column == "Correct Answer":
            question, answer = _multiple_choice(row, question, where, seed, source_id, warnings)
        problems.append(Problem(question.strip(), _answer_text(answer, f"{where} column {answer_column!r}"), source_id))
    return problems


def _option_text(value: Any, where: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or not str(value).strip():
        raise DataError(f"{where} missing or empty")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"{where} is a {type(value).__name__}, not an option text")
    return str(value).strip()


def _multiple_choice(row: dict[str, Any], question: str, where: str, seed: int, key: str,
                     warnings: list[str] | None = None) -> tuple[str, str]:
    """GPQA: the correct and three incorrect options, shuffled reproducibly per question; the answer is a letter."""
    option_columns = ["Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]
    options = [_option_text(row.get(column), f"{where}: column {column!r}") for column in option_columns]
    order = list(range(4))
    random.Random(f"{seed}:{key}").shuffle(order)
    letters = {j: CHOICE_LETTERS[i] for i, j in enumerate(order)}
    for a, b in itertools.combinations(range(4), 2):
        if warnings is not None and _problem_key(options[a]).casefold() == _problem_key(options[b]).casefold():
            warnings.append(
                f"{where}: {option_columns[a]!r} and {option_columns[b]!r} are the same text, so options "
                f"({letters[a]}) and ({letters[b]}) read the same"
                + (f" and only ({letters[0]}) is scored correct" if a == 0 else "")
            )
    lines = [question.strip(), ""] + [f"({CHOICE_LETTERS[i]}) {options[j]}" for i, j in enumerate(order)]
    return "\n".join(lines), letters[0]


def _problem_key(question: str) -> str:
    return re.sub(r"\s+", " ", question).strip()


def deduplicate(problems: list[Problem], report: Report) -> list[Problem]:
    """One row per problem; problems listed with different answers are dropped entirely."""
    groups: OrderedDict[str, list[Problem]] = OrderedDict()
    for problem in problems:
        groups.setdefault(_problem_key(problem.question), []).append(problem)
    kept = []
    for group in groups.values():
        if len({normalize(p.answer) for p in group}) > 1:
            report.conflicting_problems += 1
            report.conflicting_rows += len(group)
            continue
        report.duplicates += len(group) - 1
        kept.append(group[0])
    return kept


def load_tokenizer(path: str | Path):
    """A Hugging Face tokenizer from a local directory or ``tokenizer.json``; never downloads."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = Path(path)
    if not path.exists():
        raise DataError(f"--tokenizer {path}: no such file or directory")
    try:
        if path.is_file():
            return PreTrainedTokenizerFast(tokenizer_file=str(path))
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as error:
        raise DataError(f"--tokenizer {path}: cannot load a tokenizer ({error})") from error


def prompt_token_counter(tokenizer) -> Callable[[str], int]:
    """Tokens of the prompt as verl builds it: the chat template with a generation prompt when the tokenizer has
    one (``data.filter_overlong_prompts`` does the same), else system and question joined by a newline."""

    def count(question: str) -> int:
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
        if getattr(tokenizer, "chat_template", None):
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            if isinstance(ids, dict) or hasattr(ids, "keys"):  # BatchEncoding in newer transformers
                ids = ids["input_ids"]
            return len(ids)
        return len(tokenizer(SYSTEM_PROMPT + "\n" + question, add_special_tokens=True)["input_ids"])

    return count


def output_rule(input_path: str | Path):
    """The output must not be the input, nor lie in the input directory (the next run would read it)."""
    source = Path(input_path).resolve()

    def rule(path: Path) -> str | None:
        if path == source:
            return "is the --input"
        if source in path.parents:
            return f"lies inside the --input directory {input_path}"
        return None

    return rule


def prepare(
    dataset: str,
    input_path: str | Path,
    output_path: str | Path,
    tokenizer_path: str | Path | None = None,
    split: str | None = None,
    max_prompt_tokens: int = MAX_PROMPT_TOKENS,
    seed: int = 0,
) -> Report:
    """Read ``input_path``, filter as the paper does, write verl parquet to ``output_path``.

    The output path and the tokenizer are checked before the input is read.
    """
    if dataset not in SPECS:
        raise DataError(f"unknown dataset {dataset!r}; choose from {', '.join(SPECS)} or synthetic")
    spec = SPECS[dataset]
    check_output(output_path, output_rule(input_path))
    count = None
    if spec.length_filter and tokenizer_path is not None:
        count = prompt_token_counter(load_tokenizer(tokenizer_path))
    sources = read_records(input_path, split)
    report = Report(dataset, [name for name, _ in sources], read=sum(len(rows) for _, rows in sources))
    if not report.read:
        raise DataError(f"{', '.join(report.sources)}: no rows")
    problems = [  # an empty file next to others is no error: its rows are simply none
        problem
        for name, rows in sources
        if rows
        for problem in extract_problems(spec, rows, name, seed, report.warnings)
    ]
    problems = deduplicate(problems, report)
    if not spec.length_filter:
        report.length_note = "no length filter for evaluation sets"
    elif count is None:
        report.length_note = (
            f"length filter NOT applied: no --tokenizer given (the paper drops prompts over {max_prompt_tokens} "
            "tokens; pass the policy's tokenizer directory to apply it)"
        )
    else:
        short = [p for p in problems if count(p.question) <= max_prompt_tokens]
        report.too_long = len(problems) - len(short)
        problems = short
        report.length_note = (
            f"dropped {report.too_long} prompts longer than {max_prompt_tokens} tokens (tokenizer {tokenizer_path})"
        )
    rows_out = [
        make_row(spec.data_source, p.question, p.answer, spec.split, i, p.source_id, spec.ability)
        for i, p in enumerate(problems)
    ]
    write_parquet(rows_out, output_path)
    report.kept = len(rows_out)
    return report
