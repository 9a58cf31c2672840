"""Read per-sample correctness from verl's outputs and group it by prompt and benchmark.

Two inputs are understood:

* **Validation dumps** (``trainer.validation_data_dir=<dir>`` writes ``<dir>/<step>.jsonl``; verl
  0.9.1 ``PPOTrainer._write_generations``). One JSON object per line with ``input, output, gts,
  score, step``, every ``reward_extra_info`` key (``acc``; ``data_source`` when the reward
  function returns it, as ``verl_focal.rewards.math`` does) and, in the v1 trainer, ``uid`` of the
  form ``"{prompt uid}_{session}_{index}"``: a session is one of the ``val_kwargs.n`` samples and
  ``index`` numbers the outputs of a multi-output agent loop, all of which carry the session's
  final score. The legacy trainer writes no ``uid``; prompts are then grouped by ``input``.
* **Generation output** (``verl.trainer.main_generation_server`` writes the input parquet plus a
  ``responses`` column, a list of n strings per prompt). It holds no scores, so each response is
  scored here with a verl-style ``compute_score(data_source, solution_str, ground_truth, extra_info)``.

A sample is correct when its ``acc`` is true (a number: ``> threshold``); files without ``acc``
fall back to ``score > threshold``. The threshold defaults to 0.5, matching
``algorithm.focal.success_threshold``: right for 1/0 and +1/-1 rewards.

**Missing sessions** (:data:`MISSING_RULE`). verl dumps no row for a session that failed, and counts it as
``acc = 0`` online (``expected_acc_counts``; ``verl_focal.evaluation.validation`` does the same for pass@k). So
does this module: every prompt of a data source is expected to have as many samples as the prompt of that data
source in the same file that has the most (``n`` overrides it for every data source), a v1 session number
beyond that count raises the count, and each expected session without a row is an incorrect sample. pass@k then
uses n = the expected count and c = the correct samples present. A prompt with no row at all cannot be seen.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from verl_focal.user_files import text_lines

UNKNOWN_SOURCE = "unknown"
MISSING_RULE = (
    "a missing session (expected but not in the file) counts as incorrect, as in the training logs: pass@k uses "
    "n = the expected samples per prompt (the most any prompt of its data source has, or --n) and c = the correct "
    "samples present"
)
DEFAULT_REWARD = "verl_focal.rewards.math:compute_score"
_V1_UID = re.compile(r"^(?P<prompt>.+)_(?P<session>\d+)_(?P<index>\d+)$")
# verl numbers a prompt's sessions 0..val_kwargs.n-1; a number this large is a damaged uid, and a missing
# session before it would each cost a sample
MAX_SESSIONS = 1 << 20


class EvalInputError(ValueError):
    """A run file that cannot be read; the message names the file and, where it applies, the line."""


@dataclass
class Problem:
    data_source: str
    prompt: str  # identity across runs: the decoded prompt text (dumps) or the prompt messages (parquet)
    uid: str | None  # verl's prompt uid, when the file has one
    correct: np.ndarray  # bool, one per expected sample, in session order; a missing session is False
    missing: int = 0  # expected sessions with no sample in the file, counted as incorrect (MISSING_RULE)

    @property
    def num_samples(self) -> int:
        """n of pass@k: the expected sample count, missing sessions included."""
        return int(self.correct.size)

    @property
    def name(self) -> str:
        """The prompt as an error message names it: its uid, else the start of its text."""
        return f"uid {self.uid!r}" if self.uid is not None else f"{self.prompt[:80]!r}"


@dataclass
class Run:
    label: str
    path: str
    kind: str  # "validation dump" or "generation parquet"
    correctness: str  # how correctness was decided, for the report
    problems: list[Problem]
    notes: list[str] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)  # data source -> samples expected per prompt
    expected_from: str = "the most samples of any prompt of the data source"  # or "--n N"

    @property
    def data_sources(self) -> list[str]:
        return list(dict.fromkeys(sorted(p.data_source for p in self.problems)))

    @property
    def missing_sessions(self) -> int:
        return sum(p.missing for p in self.problems)

    def missing_by_source(self) -> dict[str, int]:
        """``{data_source: missing sessions}``, every data source of the run, in :attr:`data_sources` order."""
        return {source: sum(p.missing for p in self.problems if p.data_source == source)
                for source in self.data_sources}


def _is_correct(value: Any, threshold: float, where: str, key: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Real) and np.isfinite(value):
        return float(value) > threshold
    raise EvalInputError(f"{where}: {key!r} must be a boolean or a finite number, got {value!r}")


def is_step_dump(path: Path) -> bool:
    """Whether ``path`` is named as verl names a validation dump, ``<step>.jsonl``: a directory run reads those."""
    return path.suffix == ".jsonl" and path.stem.isdigit()


def resolve_run_path(path: str, step: int | None = None) -> Path:
    """A file as given; a directory (``trainer.validation_data_dir``) gives ``<step>.jsonl``, the last by default."""
    p = Path(path)
    if p.is_dir():
        steps = {int(f.stem): f for f in p.glob("*.jsonl") if is_step_dump(f) and f.is_file()}
        if not steps:
            raise EvalInputError(f"{path}: directory holds no <step>.jsonl validation dumps")
        if step is None:
            return steps[max(steps)]
        if step not in steps:
            raise EvalInputError(f"{path}: no {step}.jsonl; steps present: {sorted(steps)}")
        return steps[step]
    if not p.is_file():
        raise EvalInputError(f"{path}: no such file or directory")
    return p


def load_run(path: str, label: str | None = None, *, step: int | None = None, threshold: float = 0.5,
             reward: str = DEFAULT_REWARD, n: int | None = None) -> Run:
    """Read one run: a validation dump (``.jsonl``, or a directory of them) or a generation parquet.

    Missing sessions are counted as incorrect samples (:data:`MISSING_RULE`); ``n`` is the expected
    sample count of every prompt (``--n``), by default the most of any prompt of the same data source.
    """
    if not np.isfinite(threshold):
        raise EvalInputError(f"threshold must be a finite number, got {threshold!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
        raise EvalInputError(f"--n must be an integer >= 1, got {n!r}")
    file = resolve_run_path(path, step)
    label = label or str(path)
    if file.suffix == ".parquet":
        run = _load_generation_parquet(file, label, threshold, reward)
    else:
        run = _load_validation_dump(file, label, threshold)
    return count_missing_sessions(run, n)


def count_missing_sessions(run: Run, n: int | None = None) -> Run:
    """Give every prompt its expected sample count, each missing session an incorrect sample (in place).

    The expected count of a data source is ``n`` when given (a prompt with more samples, or a session
    numbered ``n`` or beyond, is an error naming ``--n``), else the most samples of any of its prompts.
    """
    most: dict[str, Problem] = {}
    for p in run.problems:
        if p.data_source not in most or p.num_samples > most[p.data_source].num_samples:
            most[p.data_source] = p
    if n is not None:
        over = [p for p in most.values() if p.num_samples > n]
        if over:
            p = max(over, key=lambda p: p.num_samples)
            held = f"sessions up to {p.num_samples - 1}" if p.missing else f"{p.num_samples} samples"
            raise EvalInputError(
                f"{run.path}: prompt {p.name} ({p.data_source}) has {held}, more than --n {n}; --n is the samples "
                f"expected per prompt (val_kwargs.n), so give at least {p.num_samples} or leave --n out"
            )
        run.expected = {source: n for source in most}
        run.expected_from = f"--n {n}"
    else:
        run.expected = {source: p.num_samples for source, p in most.items()}
    for p in run.problems:
        short = run.expected[p.data_source] - p.num_samples
        if short:
            p.correct = np.concatenate([p.correct, np.zeros(short, dtype=bool)])
            p.missing += short
    return run


def _dump_rows(file: Path) -> Iterator[tuple[int, dict]]:
    """``(line number, JSON object)`` of each non-blank line; bad bytes, JSON and rows name the file and line."""
    for line_number, line in text_lines(file):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = "" if line.endswith("\n") else " (the file looks truncated)"
            raise EvalInputError(f"{file}:{line_number}: not valid JSON: {exc.msg}{hint}") from None
        if not isinstance(row, dict):
            raise EvalInputError(f"{file}:{line_number}: expected a JSON object, got {type(row).__name__}")
        yield line_number, row


def _sample_key(row: dict, has_uid: bool, sessions: dict, where: str) -> tuple[str, int, int]:
    """(prompt key, session, output index) of a dump row."""
    if not has_uid:  # legacy trainer: one row per sample, grouped by prompt text
        return row["input"], len(sessions.get(row["input"], {})), 0
    match = _V1_UID.match(str(row["uid"]))
    if match is None:
        raise EvalInputError(f"{where}: uid {row['uid']!r} is not of verl v1's form '{{uid}}_{{session}}_{{index}}'")
    if int(match["session"]) >= MAX_SESSIONS:
        raise EvalInputError(f"{where}: uid {row['uid']!r} has session {match['session']}; verl numbers the sessions "
                             f"of a prompt 0..val_kwargs.n-1 and eval reads at most {MAX_SESSIONS} per prompt")
    return match["prompt"], int(match["session"]), int(match["index"])


def _load_validation_dump(file: Path, label: str, threshold: float) -> Run:
    # prompt key -> session -> (output index, correct, data_source, line); the last output of a session wins.
    # Only that output counts, so a repeat of it is the one repeat that can change the result: the same
    # (uid, session, index) twice with a different correctness is refused, an identical repeat is counted once.
    sessions: dict[str, dict[int, tuple[int, bool, str | None, int]]] = {}
    # prompt key -> (session, index, input) of its first output: later outputs of a multi-turn
    # session carry the earlier turns in `input`, so only the first one names the problem
    first_input: dict[str, tuple[int, int, str]] = {}
    correctness_key = None
    has_uid = None
    repeats = 0
    for line_number, row in _dump_rows(file):
        where = f"{file}:{line_number}"
        if correctness_key is None:  # decided by the first row, then required on every row
            correctness_key = "acc" if row.get("acc") is not None else "score"
            has_uid = "uid" in row
        for key in ("input", correctness_key) + (("uid",) if has_uid else ()):
            if row.get(key) is None:
                raise EvalInputError(
                    f"{where}: missing {key!r}; a verl validation dump has input, output, gts, score, "
                    f"step{', uid' if has_uid else ''} and {correctness_key!r} on every line"
                )
        correct = _is_correct(row[correctness_key], threshold, where, correctness_key)
        source = row.get("data_source")
        if source is not None and not isinstance(source, str):
            raise EvalInputError(f"{where}: 'data_source' must be a string, got {source!r}")
        prompt_key, session, index = _sample_key(row, has_uid, sessions, where)
        per_prompt = sessions.setdefault(prompt_key, {})
        kept = per_prompt.get(session)
        if kept is not None and kept[0] == index:
            if kept[1] != correct:
                raise EvalInputError(
                    f"{file}: lines {kept[3]} and {line_number} both hold uid {row['uid']!r} with a different "
                    f"{correctness_key!r} ({'correct' if kept[1] else 'incorrect'} vs "
                    f"{'correct' if correct else 'incorrect'}); remove the wrong line or dump the validation again"
                )
            repeats += 1
        elif kept is None or index > kept[0]:
            per_prompt[session] = (index, correct, source, line_number)
        if prompt_key not in first_input or (session, index) < first_input[prompt_key][:2]:
            first_input[prompt_key] = (session, index, row["input"])
    if correctness_key is None:
        raise EvalInputError(f"{file}: empty validation dump")

    problems = []
    missing_source = 0
    for prompt_key, per_prompt in sessions.items():
        sources = {entry[2] for entry in per_prompt.values()}
        if len(sources) > 1:
            raise EvalInputError(f"{file}: prompt uid {prompt_key!r} has samples from several data sources {sources}")
        source = sources.pop()
        missing_source += source is None
        # one place per session up to the highest one present (verl numbers them 0..n-1): a session
        # in between without a row is missing, an incorrect sample; count_missing_sessions adds those after it
        correct = np.zeros(max(per_prompt) + 1, dtype=bool)
        for session, entry in per_prompt.items():
            correct[session] = entry[1]
        problems.append(
            Problem(
                data_source=source if source is not None else UNKNOWN_SOURCE,
                prompt=first_input[prompt_key][2],
                uid=prompt_key if has_uid else None,
                correct=correct,
                missing=correct.size - len(per_prompt),
            )
        )
    notes = []
    if repeats:
        notes.append(f"{repeats} lines repeat an earlier line's uid with the same result; each sample is counted once")
    if missing_source:
        notes.append(
            f"{missing_source} of {len(problems)} prompts have no 'data_source' in the dump and are reported as "
            f"{UNKNOWN_SOURCE!r} (verl does not dump it; return it from compute_score as a string extra)"
        )
    how = "acc" if correctness_key == "acc" else f"score > {threshold}"
    return Run(label, str(file), "validation dump", how, problems, notes)


def load_reward_function(spec: str) -> Callable:
    """``module.sub:function`` or ``path/to/file.py:function``."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise EvalInputError(f"--reward {spec!r}: expected 'module:function' or 'file.py:function'")
    try:
        if target.endswith(".py") or os.sep in target:
            module_spec = importlib.util.spec_from_file_location(Path(target).stem, target)
            if module_spec is None or module_spec.loader is None or not Path(target).is_file():
                raise FileNotFoundError(target)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
        function = getattr(module, name)
    except Exception as exc:  # noqa: BLE001 - importing a user's module runs its code, which may raise anything
        raise EvalInputError(f"--reward {spec!r} could not be loaded: {type(exc).__name__}: {exc}") from None
    if not callable(function):
        raise EvalInputError(f"--reward {spec!r}: {name} is a {type(function).__name__}, not a function")
    return function


def _score_response(compute_score: Callable, reward: str, where: str, response: Any, source: str,
                    ground_truth: Any, extra_info: dict, threshold: float) -> bool:
    """Whether one response is correct, called as verl's naive reward manager calls ``compute_score``.

    A missing (None) response is the empty response; an exception in the scorer names the row and the scorer.
    """
    if response is None:
        response = ""
    if not isinstance(response, str):
        raise EvalInputError(f"{where}: a response must be a string, got {type(response).__name__}")
    try:
        result = compute_score(
            data_source=source, solution_str=response, ground_truth=ground_truth, extra_info=extra_info
        )
    except Exception as exc:  # noqa: BLE001 - a user's scorer may raise anything; say where it did
        raise EvalInputError(f"{where}: --reward {reward} raised {type(exc).__name__}: {exc}") from None
    key = "score"
    if isinstance(result, dict):
        key = "acc" if result.get("acc") is not None else "score"
        if key not in result:
            raise EvalInputError(f"{where}: --reward {reward} returned a dict without 'score' or 'acc'")
        result = result[key]
    return _is_correct(result, threshold, f"{where}: --reward {reward}", key)


def _load_generation_parquet(file: Path, label: str, threshold: float, reward: str) -> Run:
    import pandas as pd

    try:
        frame = pd.read_parquet(file)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise EvalInputError(f"{file}: not a readable parquet file: {type(exc).__name__}: {exc}") from None
    for column in ("responses", "prompt", "reward_model"):
        if column not in frame.columns:
            raise EvalInputError(
                f"{file}: no {column!r} column; expected verl.trainer.main_generation_server output "
                f"(the dataset columns plus 'responses'), found {list(frame.columns)}"
            )
    compute_score = load_reward_function(reward)
    has_source = "data_source" in frame.columns
    problems = []
    for row_number, row in enumerate(frame.to_dict("records")):
        where = f"{file}: row {row_number}"
        responses = row["responses"]
        if responses is None or isinstance(responses, str) or len(responses) == 0:
            raise EvalInputError(f"{where}: 'responses' must be a non-empty list of strings")
        reward_model = row["reward_model"]
        if not isinstance(reward_model, dict) or "ground_truth" not in reward_model:
            raise EvalInputError(f"{where}: 'reward_model' must be a dict with 'ground_truth'")
        source = row["data_source"] if has_source else None
        if source is not None and not isinstance(source, str):
            raise EvalInputError(f"{where}: 'data_source' must be a string, got {source!r}")
        source = source or UNKNOWN_SOURCE
        extra_info = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
        correct = [
            _score_response(compute_score, reward, f"{where}, response {j}", response, source,
                            reward_model["ground_truth"], extra_info, threshold)
            for j, response in enumerate(responses)
        ]
        prompt = row["prompt"]
        prompt = prompt.tolist() if hasattr(prompt, "tolist") else prompt
        problems.append(
            Problem(source, json.dumps(prompt, sort_keys=True, default=str), None, np.array(correct, dtype=bool))
        )
    if not problems:
        raise EvalInputError(f"{file}: no rows")
    notes = [] if has_source else [f"no 'data_source' column; all prompts reported as {UNKNOWN_SOURCE!r}"]
    return Run(label, str(file), "generation parquet", f"{reward} (acc, else score > {threshold})", problems, notes)
