"""Reward functions for verl's ``reward.custom_reward_function``.

``reward.custom_reward_function.path=pkg://verl_focal.rewards`` loads :func:`compute_score`, which dispatches on
``data_source`` to the paper's in-domain scorer and its three out-of-domain ones (docs/rewards.md):

- ``ifeval*`` -> :mod:`verl_focal.rewards.ifeval` (strict prompt-level accuracy);
- ``synlogic*`` -> :mod:`verl_focal.rewards.synlogic` (each task's own rule);
- everything else -> :func:`verl_focal.rewards.math.compute_score` (math-verify; ``gpqa*`` as multiple choice).

``pkg://verl_focal.rewards.math`` keeps scoring math and GPQA alone. Submodules are imported on first use, so
loading this package costs nothing.
"""

from __future__ import annotations

import functools
from typing import Any

IFEVAL_PREFIX = "ifeval"
SYNLOGIC_PREFIX = "synlogic"


def scorer_family(data_source: Any) -> str:
    """``"ifeval"``, ``"synlogic"`` or ``"math"`` (math and GPQA): which scorer a ``data_source`` goes to."""
    source = str(data_source).lower()
    for family in (IFEVAL_PREFIX, SYNLOGIC_PREFIX):
        if source.startswith(family):
            return family
    return "math"


def compute_score(
    data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Score one response with the scorer its ``data_source`` names; never raises on a bad response.

    Every sample gets the same keys whatever its scorer (:func:`result_keys`): verl's agent loop stacks the keys
    of the first sample of a batch and fails on a later sample that lacks one, so keys another family does not
    produce carry its neutral value (0, ``""``). ``score`` and ``acc`` are each family's correctness; with
    ``dapo_scale=True`` a wrong answer scores -1 in every family. ``timeout`` and ``total_timeout`` bound each
    check that runs in the reward's worker pool, in every family; all options are checked as the math scorer
    checks them, whatever the sample's family.
    """
    family = scorer_family(data_source)
    if family == "math":
        from verl_focal.rewards import math

        result = math.compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs)
    else:
        result = _ood_module(family).score_response(solution_str, ground_truth, **_ood_options(kwargs))
    merged = {**neutral_result(), **{key: value for key, value in result.items() if key in neutral_result()}}
    merged["data_source"] = str(data_source)
    return merged


def _ood_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``dapo_scale``, ``timeout`` and ``total_timeout`` for an out-of-domain scorer, with the math scorer's
    defaults, after the math scorer's own check of every option (a bad value raises naming its key)."""
    from verl_focal.rewards import math

    options = {"dapo_scale": kwargs.get("dapo_scale", False), "timeout": kwargs.get("timeout", math.DEFAULT_TIMEOUT_S),
               "total_timeout": kwargs.get("total_timeout", math.DEFAULT_TOTAL_TIMEOUT_S)}
    math._check_options(**options, lenient_percent=kwargs.get("lenient_percent", True))
    return options


def _ood_module(family: str):
    if family == IFEVAL_PREFIX:
        from verl_focal.rewards import ifeval as module
    else:
        from verl_focal.rewards import synlogic as module
    return module


@functools.cache
def neutral_result() -> dict[str, Any]:
    """Every key :func:`compute_score` returns, with the value of a sample its family does not score.

    The math family's keys come from the math scorer's own answer to an empty multiple-choice response (no
    verifier process involved), so a key added there reaches every sample without a list kept here.
    """
    from verl_focal.rewards import ifeval, math, synlogic

    empty = math.compute_score("gpqa", "", "A")
    return {**empty, "score": 0.0, "acc": False, "pred": "", "data_source": "", **ifeval.EXTRA_KEYS,
            **synlogic.EXTRA_KEYS}


def result_keys() -> frozenset[str]:
    return frozenset(neutral_result())
