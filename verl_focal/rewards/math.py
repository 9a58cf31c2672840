"""Math and multiple-choice rewards for verl's custom-reward contract.

Recipes reach this module as ``reward.custom_reward_function.path=pkg://verl_focal.rewards.math``; verl calls
:func:`compute_score` once per response, from an executor thread of a RewardLoopWorker actor. Options go in
``+reward.custom_reward_function.reward_kwargs.<name>=...`` (``timeout``, ``dapo_scale``).

The paper (F-GRPO, Sec. 5.3) scores with math-verify, 1 for a correct and 0 for a wrong answer.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from verl_focal.rewards.extract import (
    MAX_ANSWER_CHARS,
    MAX_RESPONSE_TAIL_CHARS,
    extract_answer,
    fast_verdict,
    has_percent,
    last_boxed,
    sanitize,
    strip_percent,
    symbolic_risk,
)
from verl_focal.rewards.sandbox import get_pool

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
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
    dapo_scale: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one response against its reference answer; never raises.

    Args:
        data_source: the row's ``data_source``; names in ``MULTIPLE_CHOICE_SOURCES`` (or starting with ``gpqa``)
            are scored as multiple choice, everything else as a math answer.
        solution_str: decoded response. Only its last ``MAX_RESPONSE_TAIL_CHARS`` characters are read.
        ground_truth: ``reward_model.ground_truth`` (str; a list is read as a comma-separated tuple).
        extra_info: unused; accepted for verl's calling convention.
        timeout: seconds allowed for the symbolic check of this sample. A check that overruns scores as wrong and
            sets ``timed_out``. The call returns within twice this (waiting for a free verifier process, then the
            check), plus the one-off start of the verifier processes on a process's first call.
        dapo_scale: score +1 / -1 instead of 1 / 0, as verl's DAPO reward manager and ``math_dapo`` expect.
        **kwargs: anything else verl passes (``reward_router_address``, ...), ignored.

    Returns:
        dict with the same keys for every sample (verl stacks them into ``reward_extra_info``):
        ``score`` (float), ``acc`` (bool), ``pred`` (str, the extracted answer, ``""`` if none),
        ``timed_out`` (int 0/1), ``screened`` (int 0/1: the answer was too dangerous to parse symbolically and
        was compared as a normalized string only), ``data_source`` (str; verl's validation dump omits it).
    """
    source = str(data_source)
    correct, pred, timed_out, screened = False, "", False, False
    try:
        if source in MULTIPLE_CHOICE_SOURCES or source.startswith("gpqa"):
            correct, pred = _score_multiple_choice(solution_str, ground_truth)
        else:
            correct, pred, timed_out, screened = _score_math(solution_str, ground_truth, max(float(timeout), 0.01))
    except Exception:  # a reward function must not take the training step down with it
        logger.exception("verl-focal compute_score failed for data_source=%r; scoring 0", source)
    wrong = -1.0 if dapo_scale else 0.0
    return {
        "score": 1.0 if correct else wrong,
        "acc": bool(correct),
        "pred": pred[:MAX_PRED_CHARS],
        "timed_out": int(timed_out),
        "screened": int(screened),
        "data_source": source,
    }


def _reference_answer(ground_truth: Any) -> str:
    if isinstance(ground_truth, (list, tuple)) or type(ground_truth).__name__ == "ndarray":
        ground_truth = ", ".join(str(item) for item in ground_truth)
    return sanitize(ground_truth, MAX_ANSWER_CHARS).strip().strip("$").strip()


def _score_math(solution_str: Any, ground_truth: Any, timeout: float) -> tuple[bool, str, bool, bool]:
    """(correct, pred, timed_out, screened) for a free-form math answer."""
    gold = _reference_answer(ground_truth)
    pred = extract_answer(sanitize(solution_str, MAX_RESPONSE_TAIL_CHARS))
    if not pred or not gold:
        return False, pred or "", False, False
    if has_percent(gold) or has_percent(pred):
        gold, answer = strip_percent(gold), strip_percent(pred)
    else:
        answer = pred
    if not answer:
        return False, pred, False, False
    decided = fast_verdict(gold, answer)
    if decided is not None:
        return decided, pred, False, False
    if symbolic_risk(answer) or symbolic_risk(gold):
        return False, pred, False, True
    verdict = get_pool().check(gold, answer, timeout)
    if verdict.error and not verdict.timed_out:
        logger.debug("verifier error on pred=%r gold=%r: %s", pred[:80], gold[:80], verdict.error)
    return verdict.equal, pred, verdict.timed_out, False


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
