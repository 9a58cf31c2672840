"""Math and multiple-choice rewards for verl's custom-reward contract.

Recipes reach this module as ``reward.custom_reward_function.path=pkg://verl_focal.rewards.math``; verl calls
:func:`compute_score` once per response, from an executor thread of a RewardLoopWorker actor. Options go in
``+reward.custom_reward_function.reward_kwargs.<name>=...`` (see :func:`compute_score`).

The paper (F-GRPO, Sec. 5.3) scores with math-verify, 1 for a correct and 0 for a wrong answer; the verdicts here
are math-verify's, except for the documented rules in docs/rewards.md.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from verl_focal.rewards.extract import (
    MAX_ANSWER_CHARS,
    MAX_RESPONSE_TAIL_CHARS,
    fast_verdict,
    last_boxed,
    normalize,
    sanitize,
    strip_percent,
    symbolic_risk,
)
from verl_focal.rewards.sandbox import OK, TIMED_OUT, UNVERIFIED, ImportingMainError, get_pool

logger = logging.getLogger(__name__)

# Named, not imported: this process never loads math-verify; its workers do.
VERIFY = "verl_focal.rewards._worker:verify_response"
# math-verify's own default (5 s for parsing, 5 s for comparing); a sound check takes well under a second.
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_TOTAL_TIMEOUT_S = 300.0
# data_source values scored as multiple choice (ground truth is a letter); see verl_focal.data.
MULTIPLE_CHOICE_SOURCES = frozenset({"gpqa_diamond", "gpqa"})
# Longest prediction kept in the returned dict: verl ships it to the driver for maj@n on every sample.
MAX_PRED_CHARS = 256

_CHOICE = r"\(?([A-J])\)?"
_CHOICE_PATTERNS = (
    re.compile(r"answer\s*(?:is|:)?\s*[:：]?\s*\**\s*\$?(?:\\text\{)?\s*" + _CHOICE + r"(?![A-Za-z])", re.IGNORECASE),
    re.compile(r"(?:^|\n)\s*\**\s*\(?([A-J])\)\s*\**\s*$"),
)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT_S,
    dapo_scale: bool = False,
    lenient_percent: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one response against its reference answer.

    Args:
        data_source: the row's ``data_source``; names in ``MULTIPLE_CHOICE_SOURCES`` (or starting with ``gpqa``)
            are scored as multiple choice, everything else as a math answer.
        solution_str: decoded response. Only its last ``MAX_RESPONSE_TAIL_CHARS`` characters are read.
        ground_truth: ``reward_model.ground_truth`` (str; a list is read as a comma-separated tuple).
        extra_info: unused; accepted for verl's calling convention.
        timeout: seconds allowed for the check of this sample, counted from the moment a verifier process takes
            it (waiting behind other samples does not count). A check that overruns scores as wrong and sets
            ``timed_out``.
        total_timeout: seconds allowed for waiting plus checking (much longer than ``timeout``); a sample that
            hits it was never checked and sets ``unverified`` (its score is the wrong-answer score).
        dapo_scale: score +1 / -1 instead of 1 / 0, as verl's DAPO reward manager and ``math_dapo`` expect.
        lenient_percent: compare both sides without ``%`` (``50\\%`` = ``50``), where math-verify would not.
        **kwargs: anything else verl passes (``reward_router_address``, ...), ignored.

    Returns:
        dict with the same keys for every sample (verl stacks them into ``reward_extra_info``):
        ``score`` (float), ``acc`` (bool), ``pred`` (str, the extracted answer, ``""`` if none),
        ``timed_out`` (int 0/1), ``screened`` (int 0/1: the answer was too dangerous to parse symbolically and
        was compared as a normalized string only), ``unverified`` (int 0/1), ``data_source`` (str; verl's
        validation dump omits it).

    Raises:
        ValueError: an option has an unusable value (naming it).
        ImportingMainError: called from the top level of a script that multiprocessing re-imports (guard it with
            ``if __name__ == "__main__":``). Nothing else: a failure inside is logged and scores as wrong.
    """
    _check_options(timeout=timeout, total_timeout=total_timeout, dapo_scale=dapo_scale,
                   lenient_percent=lenient_percent)
    source = str(data_source)
    correct, pred, status, screened = False, "", OK, False
    try:
        if source in MULTIPLE_CHOICE_SOURCES or source.startswith("gpqa"):
            correct, pred = _score_multiple_choice(solution_str, ground_truth)
        else:
            correct, pred, status, screened = _score_math(
                solution_str, ground_truth, float(timeout), float(total_timeout), lenient_percent
            )
    except ImportingMainError:
        raise
    except Exception:  # a reward function must not take the training step down with it
        logger.exception("verl-focal compute_score failed for data_source=%r; scoring 0", source)
    return {
        "score": 1.0 if correct else (-1.0 if dapo_scale else 0.0),
        "acc": bool(correct),
        "pred": pred[:MAX_PRED_CHARS],
        "timed_out": int(status == TIMED_OUT),
        "screened": int(screened),
        "unverified": int(status == UNVERIFIED),
        "data_source": source,
    }


def _check_options(*, timeout: Any, total_timeout: Any, dapo_scale: Any, lenient_percent: Any) -> None:
    """Raise ``ValueError`` naming the reward_kwargs key whose value cannot be what the user meant."""
    for key, value in (("timeout", timeout), ("total_timeout", total_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(
                f"reward_kwargs.{key} must be a finite number of seconds > 0, got {value!r} ({type(value).__name__})"
            )
    if total_timeout < timeout:
        raise ValueError(f"reward_kwargs.total_timeout ({total_timeout}) must be at least timeout ({timeout})")
    for key, value in (("dapo_scale", dapo_scale), ("lenient_percent", lenient_percent)):
        if not isinstance(value, bool):
            raise ValueError(
                f"reward_kwargs.{key} must be true or false, got {value!r} ({type(value).__name__}); "
                f"on the command line write {key}=true, not a quoted string"
            )


def _reference_answer(ground_truth: Any) -> str:
    if isinstance(ground_truth, (list, tuple)) or type(ground_truth).__name__ == "ndarray":
        ground_truth = ", ".join(str(item) for item in ground_truth)
    return sanitize(ground_truth, MAX_ANSWER_CHARS).strip().strip("$").strip()


def _score_math(
    solution_str: Any, ground_truth: Any, timeout: float, total_timeout: float, lenient_percent: bool
) -> tuple[bool, str, str, bool]:
    """(correct, pred, pool status, screened) for a free-form math answer."""
    gold = _reference_answer(ground_truth)
    tail = sanitize(solution_str, MAX_RESPONSE_TAIL_CHARS)
    if not gold:
        return False, "", OK, False
    shown = last_boxed(tail)  # pred as the model wrote it where there is a box: maj@n votes on it
    if lenient_percent and ("%" in gold or "%" in tail):
        gold, tail = strip_percent(gold).strip(), strip_percent(tail)
    decided = fast_verdict(gold, tail)
    if decided is not None:
        return decided[0], shown.strip() if shown is not None else decided[1], OK, False
    boxed = last_boxed(tail)
    if symbolic_risk(gold) or (boxed is not None and symbolic_risk(boxed)):
        return boxed is not None and normalize(boxed) == normalize(gold), (shown or "").strip(), OK, True
    outcome = get_pool().run(VERIFY, (gold, tail), timeout=timeout, total_timeout=total_timeout)
    if outcome.status != OK:
        if outcome.status != TIMED_OUT:
            logger.warning("verl-focal verifier %s for gold=%r: %s", outcome.status, gold[:80], outcome.error)
        return False, (shown or "").strip(), outcome.status, False
    equal, extracted = outcome.value
    return equal, (shown.strip() if shown is not None else extracted), OK, False


def extract_choice(response: str) -> str | None:
    """The chosen option letter: the last box (``\\boxed{C}``, ``\\boxed{\\text{(C)}}``), else an answer phrase."""
    boxed = last_boxed(response)
    if boxed is not None:
        inner = re.sub(r"\\text(?:bf)?\{([^{}]*)\}", r"\1", boxed).strip().strip("$").strip()
        match = re.match(r"\(?([A-J])\)?(?:$|[\s.:)])", inner)
        return match.group(1) if match else None
    for pattern in _CHOICE_PATTERNS:
        found = pattern.findall(response)
        if found:
            return found[-1].upper()
    return None


def _score_multiple_choice(solution_str: Any, ground_truth: Any) -> tuple[bool, str]:
    gold = _reference_answer(ground_truth).strip("()").upper()
    choice = extract_choice(sanitize(solution_str, MAX_RESPONSE_TAIL_CHARS))
    return (choice is not None and choice == gold), choice or ""


def compute_score_multiple_choice(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None, **kwargs: Any
) -> dict[str, Any]:
    """:func:`compute_score` forced to multiple choice, whatever the ``data_source`` (for
    ``reward.custom_reward_function.name=compute_score_multiple_choice``)."""
    result = compute_score("gpqa", solution_str, ground_truth, extra_info, **kwargs)
    result["data_source"] = str(data_source)
    return result
