"""DAPO's policy loss for verl (``actor_rollout_ref.actor.policy_loss.loss_mode=dapo``).

DAPO (Yu et al. 2025, §3.1; F-GRPO Appendix B) is PPO's clipped objective with a decoupled, raised upper
bound [1 - clip_ratio_low, 1 + clip_ratio_high], which verl's ``vanilla`` computes (with dual-clip,
rollout-correction weights and global-batch aggregation). ``dapo`` refuses settings that are not
clip-higher, then calls verl's own ``vanilla``: whatever signature and aggregation the installed verl has
are right by construction. Every supported verl (0.7.1+) has its own ``cispo``; nothing of it is here.
Focal weighting changes the advantages only (docs/estimators.md).

"Upper bound below the lower bound" is read as eps_high < eps_low (swapped keys): the other reading, an
empty ratio interval, needs eps_low + eps_high < 0, which the non-negativity check already refuses.
eps_high == eps_low is PPO's clip, and allowed.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from verl.trainer.ppo import core_algos

#: Config keys the clip bounds come from, as users write them on the command line.
CLIP_LOW_KEY = "actor_rollout_ref.actor.clip_ratio_low"
CLIP_HIGH_KEY = "actor_rollout_ref.actor.clip_ratio_high"
CLIP_C_KEY = "actor_rollout_ref.actor.clip_ratio_c"


def _setting(config: Any, name: str, key: str, default: Any = None) -> float:
    value = config.get(name, None)  # ActorConfig and DictConfig both have get()
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"loss_mode=dapo: {key} must be a finite number, got {value!r}")
    return float(value)


def dapo_clip_settings(config: Any) -> tuple[float, float, float]:
    """(eps_low, eps_high, c) from the actor config (``clip_ratio`` is the fallback, as in verl).

    Raises:
        ValueError: naming ``actor_rollout_ref.actor.clip_ratio_low`` / ``clip_ratio_high`` when either is
            not finite, negative, or clip_ratio_high < clip_ratio_low, and ``clip_ratio_c`` when c <= 1.
    """
    if config is None:
        raise ValueError("loss_mode=dapo needs the actor config (verl passes it as `config`)")
    eps_low = _setting(config, "clip_ratio_low", CLIP_LOW_KEY, config.get("clip_ratio", None))
    eps_high = _setting(config, "clip_ratio_high", CLIP_HIGH_KEY, config.get("clip_ratio", None))
    for key, value in ((CLIP_LOW_KEY, eps_low), (CLIP_HIGH_KEY, eps_high)):
        if value < 0:
            raise ValueError(f"loss_mode=dapo: {key} must be >= 0, got {value}")
    if eps_high < eps_low:
        raise ValueError(
            f"loss_mode=dapo: {CLIP_HIGH_KEY}={eps_high} is below {CLIP_LOW_KEY}={eps_low}. DAPO's clip-higher "
            f"needs clip_ratio_high >= clip_ratio_low (the paper uses 0.28 >= 0.2); were the two swapped? "
            f"Use loss_mode=vanilla for any other asymmetric clip."
        )
    clip_c = _setting(config, "clip_ratio_c", CLIP_C_KEY, 3.0)
    if clip_c <= 1.0:
        raise ValueError(f"loss_mode=dapo: {CLIP_C_KEY} (dual-clip) must be > 1, got {clip_c}")
    return eps_low, eps_high, clip_c


def compute_policy_loss_dapo(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Optional[Any] = None,
    rollout_is_weights: Optional[torch.Tensor] = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """DAPO's clip-higher PPO objective: ``dapo_clip_settings`` refusals, then verl's ``vanilla`` loss.

    Arguments and return value are verl's policy-loss contract; anything else the installed verl passes
    goes on to ``vanilla`` unchanged. Tensors are (bs, L); ``config`` is the actor config.

    Raises:
        ValueError: naming the config key, for the settings ``dapo_clip_settings`` refuses.
    """
    dapo_clip_settings(config)
    return core_algos.compute_policy_loss_vanilla(
        old_log_prob=old_log_prob,
        log_prob=log_prob,
        advantages=advantages,
        response_mask=response_mask,
        loss_agg_mode=loss_agg_mode,
        config=config,
        rollout_is_weights=rollout_is_weights,
        **kwargs,
    )
