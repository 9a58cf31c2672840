"""The ``algorithm.focal`` config node: the one place that reads and validates verl-focal's settings.

verl passes ``config.algorithm`` to advantage estimators (an OmegaConf DictConfig in ``main_ppo``;
``None``, a plain dict or verl's ``AlgoConfig`` in direct calls). Our recipes declare the node; with
verl's own ``ppo_trainer`` config the keys are added with ``+algorithm.focal.gamma=1``, and a ``+`` key
bypasses Hydra's struct check. So this module is strict itself: an unknown key under
``algorithm.focal``, a focal-looking key beside it (``+algorithm.focal_gamma=1``, PR #5334's
``f_grpo_gamma``), or an ``algorithm.focal`` that is not a mapping raises ``ValueError`` naming the key.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real
from typing import Any, Optional

DEFAULT_GAMMA = 0.5  # the paper's most frequent choice (7 of 9 settings, Table 7)
DEFAULT_SUCCESS_THRESHOLD = 0.5  # 1/0 rewards; use 0.0 for +1/-1 rewards

#: ``algorithm.focal.success_rate``: how mu_hat is formed from a group's rewards.
#: ``count``: X/N, the fraction of responses whose reward exceeds ``success_threshold`` (the paper, Eq. 11).
#: ``mean_reward``: clamp((mean - reward_wrong) / (reward_correct - reward_wrong), 0, 1) (verl PR #5334).
SUCCESS_RATE_FORMS = ("count", "mean_reward")

#: Every key ``algorithm.focal`` accepts.
FOCAL_KEYS = ("gamma", "success_rate", "success_threshold", "reward_correct", "reward_wrong")

_MEAN_REWARD_KEYS = ("reward_correct", "reward_wrong")


@dataclass(frozen=True)
class FocalConfig:
    """Validated ``algorithm.focal``.

    Attributes:
        gamma: focal exponent in g = (1 - mu_hat)^gamma, >= 0.
        success_rate: one of ``SUCCESS_RATE_FORMS``.
        success_threshold: a response is correct when its summed reward is greater than this. It forms
            mu_hat in the ``count`` form and decides correctness wherever verl-focal needs it (validation
            pass@k). In the ``mean_reward`` form it defaults to the midpoint of the two reward levels.
        reward_correct, reward_wrong: the rewards of a correct and of a wrong response (``mean_reward``
            form only; None otherwise).
    """

    gamma: float = DEFAULT_GAMMA
    success_rate: str = "count"
    success_threshold: float = DEFAULT_SUCCESS_THRESHOLD
    reward_correct: Optional[float] = None
    reward_wrong: Optional[float] = None


def _get(node: Any, key: str) -> Any:
    if node is None:
        return None
    if hasattr(node, "get"):
        return node.get(key, None)
    return getattr(node, key, None)


def _keys(node: Any) -> list:
    return list(node.keys()) if isinstance(node, Mapping) else []


def _did_you_mean(word: str, options: tuple[str, ...], prefix: str = "algorithm.focal.") -> str:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {prefix}{match[0]}?" if match else ""


def _finite_number(value: Any, key: str) -> float:
    # bool is an int subclass; a YAML `true` here is a typo, not a number.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{key} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {value!r}")
    return value


def _non_negative_number(value: Any, key: str) -> float:
    value = _finite_number(value, key)
    if value < 0:
        raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
    return value


def _threshold(value: Any) -> float:
    # Any finite number: rewards in {-1, 0} need -0.5.
    return _finite_number(value, "algorithm.focal.success_threshold")


def _reject_lookalikes(algorithm_config: Any) -> None:
    """Raise on ``algorithm`` keys that are focal settings in the wrong place."""
    for key in _keys(algorithm_config):
        if not isinstance(key, str) or key == "focal":
            continue
        squashed = re.sub(r"[^a-z0-9]", "", key.lower())
        if "focal" in squashed or "fgrpo" in squashed:
            rest = re.sub(r"^(f_?grpo|focal)s?[_.\-]*", "", key.lower())
            hint = "; did you mean algorithm.focal?" if not rest else _did_you_mean(rest, FOCAL_KEYS)
        elif key in FOCAL_KEYS and key != "gamma":  # algorithm.gamma is verl's own (the GAE discount)
            hint = f"; did you mean algorithm.focal.{key}?"
        else:
            continue
        raise ValueError(
            f"algorithm.{key} is not a verl or verl-focal key: focal settings live under algorithm.focal "
            f"(keys: {', '.join(FOCAL_KEYS)}){hint}"
        )


def _read_node(focal: Any) -> dict[str, Any]:
    """The set (non-null) keys of ``algorithm.focal``; unknown keys raise."""
    if focal is None:
        return {}
    if not isinstance(focal, Mapping):
        hint = " (for the exponent use algorithm.focal.gamma)" if isinstance(focal, Real) else ""
        raise ValueError(
            f"algorithm.focal must be a mapping of focal settings ({', '.join(FOCAL_KEYS)}), "
            f"got {focal!r} ({type(focal).__name__}){hint}"
        )
    for key in _keys(focal):
        if key not in FOCAL_KEYS:
            raise ValueError(
                f"algorithm.focal.{key} is not a verl-focal key (keys: {', '.join(FOCAL_KEYS)})"
                + _did_you_mean(str(key), FOCAL_KEYS)
            )
    return {key: value for key in FOCAL_KEYS if (value := _get(focal, key)) is not None}


def _read_success_rate(values: dict[str, Any]) -> dict[str, Any]:
    form = values.get("success_rate", "count")
    if form not in SUCCESS_RATE_FORMS:
        hint = _did_you_mean(str(form), SUCCESS_RATE_FORMS, prefix="")
        raise ValueError(
            f"algorithm.focal.success_rate must be one of {', '.join(SUCCESS_RATE_FORMS)}, got {form!r}{hint}"
        )
    if form == "count":
        for key in _MEAN_REWARD_KEYS:
            if key in values:
                raise ValueError(
                    f"algorithm.focal.{key} is used only with algorithm.focal.success_rate=mean_reward; "
                    "the count form reads correctness from algorithm.focal.success_threshold"
                )
        threshold = values.get("success_threshold", DEFAULT_SUCCESS_THRESHOLD)
        return {"success_rate": form, "success_threshold": _threshold(threshold)}
    missing = [key for key in _MEAN_REWARD_KEYS if key not in values]
    if missing:
        raise ValueError(
            f"algorithm.focal.success_rate=mean_reward needs algorithm.focal.{missing[0]}: the reward of a "
            "correct and of a wrong response (e.g. reward_correct=1 reward_wrong=-1 for verl's math_dapo)"
        )
    correct = _finite_number(values["reward_correct"], "algorithm.focal.reward_correct")
    wrong = _finite_number(values["reward_wrong"], "algorithm.focal.reward_wrong")
    if correct == wrong:
        raise ValueError(
            f"algorithm.focal.reward_correct and algorithm.focal.reward_wrong must differ, both are {correct!r}"
        )
    return {
        "success_rate": form,
        "success_threshold": _threshold(values.get("success_threshold", (correct + wrong) / 2)),
        "reward_correct": correct,
        "reward_wrong": wrong,
    }


def read_focal_config(algorithm_config: Any) -> FocalConfig:
    """Validated ``FocalConfig`` from ``algorithm.focal``; defaults when the node or a key is absent or null.

    Args:
        algorithm_config: verl's ``algorithm`` node (DictConfig, dict, ``AlgoConfig``) or None.

    Raises:
        ValueError: naming the key (``algorithm.focal.<key>`` or ``algorithm.<key>``) when a key is unknown
            or misplaced, ``algorithm.focal`` is not a mapping, or a value is out of range.
    """
    if algorithm_config is None:
        return FocalConfig()
    _reject_lookalikes(algorithm_config)
    values = _read_node(_get(algorithm_config, "focal"))
    gamma = values.get("gamma", DEFAULT_GAMMA)
    return FocalConfig(gamma=_non_negative_number(gamma, "algorithm.focal.gamma"), **_read_success_rate(values))


def read_estimator_config(algorithm_config: Any) -> FocalConfig:
    """``read_focal_config`` for a focal advantage estimator, which also refuses a discount it would ignore.

    ``algorithm.gamma`` is verl's GAE discount; no group-relative estimator reads it, and it is what
    ``algorithm.gamma=2`` (no ``+`` needed: verl declares it) sets when the focal exponent was meant.

    Raises:
        ValueError: as ``read_focal_config``, and naming ``algorithm.gamma`` when it is not 1.
    """
    cfg = read_focal_config(algorithm_config)
    discount = _get(algorithm_config, "gamma")
    if discount is not None and not (isinstance(discount, Real) and float(discount) == 1.0):
        raise ValueError(
            f"algorithm.gamma={discount!r} is verl's GAE discount, which focal estimators ignore; "
            "the focal exponent is algorithm.focal.gamma. Leave algorithm.gamma at 1.0"
        )
    return cfg


def read_norm_adv_by_std(algorithm_config: Any) -> bool:
    """``algorithm.norm_adv_by_std_in_grpo`` (verl does not pass it to registered estimators)."""
    value = _get(algorithm_config, "norm_adv_by_std_in_grpo")
    return True if value is None else bool(value)
