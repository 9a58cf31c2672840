"""SynLogic (Liu et al. 2025, MiniMaxAI/SynLogic): logic puzzles, each scored by its own task's rule.

The ground truth is a JSON object ``{"task": ..., "answer": ..., "metadata": {...}}`` (what ``verl-focal data
synlogic`` writes from the dataset's ``game_data_str``, with its ``question`` for the tasks in
:data:`NEEDS_QUESTION`). The response is first reduced to its answer the way SynLogic's base verifier does
(:func:`answer_text`), then judged by the task's rule: :mod:`~verl_focal.rewards.synlogic.rules`,
:mod:`~verl_focal.rewards.synlogic.puzzles` and :mod:`~verl_focal.rewards.synlogic.answers` (``operation`` runs
math-verify in the reward's worker pool). Tasks whose published rule cannot be reproduced faithfully are in
:data:`LEFT_OUT` with the reason; their rows are dropped at data preparation and score 0 here.
"""

from __future__ import annotations

import logging
from typing import Any

from verl_focal.rewards.references import ReferenceError, json_object
from verl_focal.rewards.sandbox import OK, TIMED_OUT, UNVERIFIED, ImportingMainError, get_pool
from verl_focal.rewards.synlogic import answers, puzzles  # noqa: F401 - they register their rules
from verl_focal.rewards.synlogic.rules import POOLED_RULES, RULES, Reference

logger = logging.getLogger(__name__)

# Responses are read from their last characters up to this many (every rule is linear in the text).
MAX_RESPONSE_CHARS = 65_536
EXTRA_KEYS = {"synlogic_task": ""}
THINK_END = "</think>"
# Tasks whose verifier reads the record's question besides its answer and metadata.
NEEDS_QUESTION = frozenset({"futoshiki"})

LEFT_OUT: dict[str, str] = {
    "game_of_24": "the published verifier returns abs(result - result) < 1e-10, true for any expression that uses "
                  "the given numbers, so it never checks the target value",
    "mathador": "scored by the same Game-of-24 verifier (see game_of_24)",
}


def task_name(raw: Any) -> str:
    """A task name as the verifier registry spells it (``"Arrow Maze"``, ``"synlogic/arrow-maze"``: ``arrow_maze``)."""
    return str(raw or "").strip().split("/")[-1].lower().replace(" ", "_").replace("-", "_")


def supported_tasks() -> frozenset[str]:
    return frozenset(RULES) | frozenset(POOLED_RULES)


def parse_reference(ground_truth: Any) -> Reference:
    record = json_object(ground_truth, "the SynLogic ground truth")
    task = task_name(record.get("task"))
    if task not in supported_tasks():
        reason = LEFT_OUT.get(task, "no such SynLogic task")
        raise ReferenceError(f"task {task!r} is not scored: {reason}")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ReferenceError(f"metadata is a {type(metadata).__name__}, not a dict")
    question = record.get("question")
    if task in NEEDS_QUESTION and (not isinstance(question, str) or not question.strip()):
        raise ReferenceError(f"task {task!r} needs the record's question (its verifier reads the puzzle from it)")
    return Reference(task, record.get("answer"), metadata, question if isinstance(question, str) else "")


def answer_text(response: str) -> str:
    """The part of a response the task rules read: the text after ``</think>`` when the response has one (up to
    a second one, as SynLogic's base verifier splits), and within it the first ``<answer>...</answer>`` when
    there is one."""
    if THINK_END in response:
        response = response.split(THINK_END, 2)[1]
    start = response.find("<answer>")
    if start != -1:
        end = response.find("</answer>", start + len("<answer>"))
        if end != -1:
            return response[start + len("<answer>"):end].strip()
    return response


def score_response(solution_str: Any, ground_truth: Any, *, dapo_scale: bool = False, timeout: float = 5.0,
                   total_timeout: float = 300.0) -> dict[str, Any]:
    """``score``/``acc`` by the task's rule, ``pred`` (``""``), ``synlogic_task``, and the pool's ``timed_out``
    and ``unverified`` (for ``operation``: ``timeout`` bounds its math-verify check from the moment a worker
    takes it, ``total_timeout`` the wait as well, as for the math reward); never raises on a bad response."""
    from verl_focal.rewards.extract import sanitize

    result = {"score": -1.0 if dapo_scale else 0.0, "acc": False, "pred": "", "synlogic_task": "",
              "timed_out": 0, "unverified": 0}
    try:
        reference = parse_reference(ground_truth)
    except ReferenceError as error:
        logger.error("verl-focal synlogic: unusable ground truth, scoring 0: %s", error)
        return result
    result["synlogic_task"] = reference.task
    answer = answer_text(sanitize(solution_str, MAX_RESPONSE_CHARS))
    if reference.task in POOLED_RULES:
        correct, status = _pooled(answer, reference, timeout, total_timeout)
        result.update(timed_out=int(status == TIMED_OUT), unverified=int(status == UNVERIFIED))
    else:
        correct = _rule(answer, reference)
    if correct:
        result.update(score=1.0, acc=True)
    return result


def _rule(answer: str, reference: Reference) -> bool:
    try:
        return bool(RULES[reference.task](answer, reference))
    except Exception as error:  # as in every SynLogic verifier: whatever raises is a wrong answer
        logger.debug("verl-focal synlogic: %s rule raised %r; scoring 0", reference.task, error)
        return False


def _pooled(answer: str, reference: Reference, timeout: float, total_timeout: float) -> tuple[bool, str]:
    """(correct, pool status) of a rule that runs in the reward's worker pool."""
    try:
        call = POOLED_RULES[reference.task](answer, reference)
        if call is None:
            return False, OK
        outcome = get_pool().run(*call, timeout=timeout, total_timeout=total_timeout)
    except ImportingMainError:
        raise
    except Exception as error:
        logger.warning("verl-focal synlogic: %s check failed (%r); scoring 0", reference.task, error)
        return False, OK
    if outcome.status not in (OK, TIMED_OUT):
        logger.warning("verl-focal synlogic: %s check %s: %s", reference.task, outcome.status, outcome.error)
    return outcome.status == OK and bool(outcome.value), outcome.status
