"""The ``algorithm.focal`` config node, read from the config verl hands to advantage estimators.

verl passes ``config.algorithm`` (an OmegaConf DictConfig in ``main_ppo``; ``None`` or a plain dict
in direct calls). The keys are declared by our recipes, or added on the command line with
``+algorithm.focal.gamma=1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

DEFAULT_GAMMA = 0.5  # the paper's most frequent choice (7 of 9 settings, Table 7)
DEFAULT_SUCCESS_THRESHOLD = 0.5  # 1/0 rewards; use 0.0 for +1/-1 rewards


@dataclass(frozen=True)
class FocalConfig:
    gamma: float = DEFAULT_GAMMA
    success_threshold: float = DEFAULT_SUCCESS_THRESHOLD


def _get(node: Any, key: str) -> Any:
    if node is None:
        return None
    if hasattr(node, "get"):
        return node.get(key, None)
    return getattr(node, key, None)


def _non_negative_number(value: Any, key: str) -> float:
    # bool is an int subclass; a YAML `true` here is a typo, not a number.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{key} must be a non-negative number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
    return value


def read_focal_config(algorithm_config: Any) -> FocalConfig:
    """Validated ``FocalConfig`` from ``algorithm.focal``; defaults when the node or a key is absent.

    Raises:
        ValueError: naming ``algorithm.focal.gamma`` or ``algorithm.focal.success_threshold`` when a
            value is negative, non-finite or not a number.
    """
    focal = _get(algorithm_config, "focal")
    gamma = _get(focal, "gamma")
    threshold = _get(focal, "success_threshold")
    return FocalConfig(
        gamma=DEFAULT_GAMMA if gamma is None else _non_negative_number(gamma, "algorithm.focal.gamma"),
        success_threshold=(
            DEFAULT_SUCCESS_THRESHOLD
            if threshold is None
            else _non_negative_number(threshold, "algorithm.focal.success_threshold")
        ),
    )


def read_norm_adv_by_std(algorithm_config: Any) -> bool:
    """``algorithm.norm_adv_by_std_in_grpo`` (verl does not pass it to registered estimators)."""
    value = _get(algorithm_config, "norm_adv_by_std_in_grpo")
    return True if value is None else bool(value)
