"""SynLogic (Liu et al. 2025, MiniMaxAI/SynLogic): logic puzzles, each scored by its own task's rule.

The ground truth is a JSON object ``{"task": ..., "answer": ..., "metadata": {...}}`` (what ``verl-focal data
synlogic`` writes from the dataset's ``game_data_str``). The response is first reduced to its answer the way
SynLogic's base verifier does (:func:`answer_text`), then judged by the task's rule in
:mod:`verl_focal.rewards.synlogic.rules`. Tasks whose published rule cannot be reproduced faithfully are in
:data:`LEFT_OUT` with the reason; their rows are dropped at data preparation and score 0 here.
"""

from __future__ import annotations

import logging
from typing import Any

from verl_focal.rewards.references import ReferenceError, json_object
from verl_focal.rewards.synlogic.rules import RULES, Reference

logger = logging.getLogger(__name__)

# Responses are read from their last characters up to this many (every rule is linear in the text).
MAX_RESPONSE_CHARS = 65_536
EXTRA_KEYS = {"synlogic_task": ""}
THINK_END = "</think>"

LEFT_OUT: dict[str, str] = {
    "game_of_24": "the published verifier returns abs(result - result) < 1e-10, true for any expression that uses "
                  "the given numbers, so it never checks the target value",
    "mathador": "scored by the same Game-of-24 verifier (see game_of_24)",
    "operation": "math-verify over the whole answer, needing the math reward's bounded worker pool "
                 "(math-verify parse/verify with the reference second); not wired here",
    "arrow_maze": "not reimplemented yet", "buggy_tables": "not reimplemented yet",
    "calcudoko": "not reimplemented yet", "campsite": "not reimplemented yet", "futoshiki": "not reimplemented yet",
    "goods_exchange": "not reimplemented yet", "norinori": "not reimplemented yet",
    "number_wall": "not reimplemented yet", "wordscapes": "not reimplemented yet",
}


def task_name(raw: Any) -> str:
    """A task name as the verifier registry spells it (``"Arrow Maze"``, ``"synlogic/arrow-maze"``: ``arrow_maze``)."""
    return str(raw or "").strip().split("/")[-1].lower().replace(" ", "_").replace("-", "_")


def supported_tasks() -> frozenset[str]:
    return frozenset(RULES)


def parse_reference(ground_truth: Any) -> Reference:
    record = json_object(ground_truth, "the SynLogic ground truth")
    task = task_name(record.get("task"))
    if task not in RULES:
        reason = LEFT_OUT.get(task, "no such SynLogic task")
        raise ReferenceError(f"task {task!r} is not scored: {reason}")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ReferenceError(f"metadata is a {type(metadata).__name__}, not a dict")
    return Reference(task, record.get("answer"), metadata)


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


def score_response(solution_str: Any, ground_truth: Any, *, dapo_scale: bool = False) -> dict[str, Any]:
    """``score``/``acc`` by the task's rule, ``pred`` (``""``) and ``synlogic_task``; never raises."""
    from verl_focal.rewards.extract import sanitize

    result = {"score": -1.0 if dapo_scale else 0.0, "acc": False, "pred": "", "synlogic_task": ""}
    try:
        reference = parse_reference(ground_truth)
    except ReferenceError as error:
        logger.error("verl-focal synlogic: unusable ground truth, scoring 0: %s", error)
        return result
    result["synlogic_task"] = reference.task
    try:
        correct = bool(RULES[reference.task](answer_text(sanitize(solution_str, MAX_RESPONSE_CHARS)), reference))
    except Exception as error:  # as in every SynLogic verifier: whatever raises is a wrong answer
        logger.debug("verl-focal synlogic: %s rule raised %r; scoring 0", reference.task, error)
        correct = False
    if correct:
        result.update(score=1.0, acc=True)
    return result
