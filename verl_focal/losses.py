"""DAPO and CISPO policy losses for verl (``actor_rollout_ref.actor.policy_loss.loss_mode=dapo``).

The per-token math comes first and needs nothing from verl. The ``compute_policy_loss_<name>`` functions
adapt it to verl's policy-loss contract: they read the clip bounds from the actor config's existing
``clip_ratio_low`` / ``clip_ratio_high`` keys (verl's actor config rejects new ones), apply the
rollout-correction weights and aggregate with verl's ``agg_loss`` over the global batch. Registering
them is ``verl_focal.plugin``'s job.

Focal weighting needs nothing here: the F-variants change the advantages only, and every loss below
is positively homogeneous in A, so F-X is X with each group's gradient scaled by g (docs/estimators.md).

Reading of DAPO's "upper bound below the lower bound": DAPO (Yu et al. 2025, §3.1) decouples the clip
range into eps_low and eps_high and raises the upper one ("clip-higher"), so a valid configuration has
eps_high >= eps_low. The other reading, an empty ratio interval 1 + eps_high < 1 - eps_low, needs
eps_low + eps_high < 0, which the non-negativity check already refuses; the eps reading is the one that
can catch a real mistake (the two keys swapped). eps_high == eps_low is allowed: that is PPO's clip.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Optional

import torch
from verl.trainer.ppo import core_algos
from verl.utils.torch_functional import masked_mean

#: Config keys the clip bounds come from, as users write them on the command line.
CLIP_LOW_KEY = "actor_rollout_ref.actor.clip_ratio_low"
CLIP_HIGH_KEY = "actor_rollout_ref.actor.clip_ratio_high"
CLIP_C_KEY = "actor_rollout_ref.actor.clip_ratio_c"

# verl clamps log-ratios to this range before exp(), so a stale token cannot overflow the ratio.
_LOG_RATIO_BOUND = 20.0


# --------------------------------------------------------------------------------------------------
# Per-token math (no verl)
# --------------------------------------------------------------------------------------------------


def importance_ratio(log_prob: torch.Tensor, old_log_prob: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """r = pi_theta / pi_old per token, from a clamped log-ratio.

    Args:
        log_prob: `(torch.Tensor)` shape (bs, L), log pi_theta of the sampled tokens (with grad).
        old_log_prob: `(torch.Tensor)` shape (bs, L), log pi_old of the same tokens.

    Returns:
        log_ratio, ratio: `(torch.Tensor)` shape (bs, L) each.
    """
    log_ratio = torch.clamp(log_prob - old_log_prob, min=-_LOG_RATIO_BOUND, max=_LOG_RATIO_BOUND)
    return log_ratio, torch.exp(log_ratio)


class ClipHigherTerms(NamedTuple):
    losses: torch.Tensor  # (bs, L) per-token loss, to be minimised
    clipped: torch.Tensor  # (bs, L) bool, the clipped branch of the PPO min is the active one
    dual_clipped: torch.Tensor  # (bs, L) bool, A < 0 and the dual-clip cap -c*A is active


def clip_higher_token_losses(
    ratio: torch.Tensor, advantages: torch.Tensor, eps_low: float, eps_high: float, clip_ratio_c: float
) -> ClipHigherTerms:
    """DAPO's decoupled-clip PPO loss per token (Yu et al. 2025, §3.1; F-GRPO Appendix B), dual-clipped.

    loss = -min(r * A, clip(r, 1 - eps_low, 1 + eps_high) * A), then for A < 0 capped at -c * A
    (dual-clip PPO, Ye et al. 2020), so a token whose ratio has exploded cannot dominate the batch.

    Args:
        ratio: `(torch.Tensor)` shape (bs, L), the importance ratio r.
        advantages: `(torch.Tensor)` shape (bs, L).
        eps_low, eps_high: the clip range [1 - eps_low, 1 + eps_high].
        clip_ratio_c: the dual-clip constant c > 1.

    Returns:
        ``ClipHigherTerms`` of (bs, L) tensors.
    """
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    ppo = torch.maximum(unclipped, clipped)  # the negative of the PPO min
    dual_cap = -advantages * clip_ratio_c  # an upper bound on the loss only when A < 0
    negative = advantages < 0
    losses = torch.where(negative, torch.minimum(ppo, dual_cap), ppo)
    return ClipHigherTerms(losses, clipped > unclipped, (ppo > dual_cap) & negative)


def cispo_token_losses(
    log_prob: torch.Tensor, ratio: torch.Tensor, advantages: torch.Tensor, eps_low: float, eps_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """CISPO loss per token (MiniMax-M1, arXiv 2506.13585; F-GRPO Eqs. 15-16).

    loss = -sg(clip(r, 1 - eps_low, 1 + eps_high)) * A * log pi_theta. The importance weight is clipped
    and detached, so every token keeps a gradient (through log pi) instead of being dropped by the clip.

    Args:
        log_prob: `(torch.Tensor)` shape (bs, L), log pi_theta (with grad).
        ratio: `(torch.Tensor)` shape (bs, L).
        advantages: `(torch.Tensor)` shape (bs, L).
        eps_low, eps_high: the weight range [1 - eps_low, 1 + eps_high]; the paper's 1.0/5.0 gives [0, 6].

    Returns:
        losses: `(torch.Tensor)` shape (bs, L); clipped: `(torch.Tensor)` bool (bs, L), weight != r.
    """
    weight = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high).detach()
    return -weight * advantages * log_prob, ratio != weight


# --------------------------------------------------------------------------------------------------
# Config checks
# --------------------------------------------------------------------------------------------------


def _get(config: Any, key: str) -> Any:
    return config.get(key, None) if hasattr(config, "get") else getattr(config, key, None)


def _finite(value: Any, key: str, loss_mode: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"loss_mode={loss_mode}: {key} must be a finite number, got {value!r}")
    return float(value)


def clip_bounds(config: Any, loss_mode: str) -> tuple[float, float]:
    """(eps_low, eps_high) from the actor config, falling back to ``clip_ratio`` as verl does."""
    if config is None:
        raise ValueError(f"loss_mode={loss_mode} needs the actor config (verl passes it as `config`)")
    fallback = _get(config, "clip_ratio")
    low, high = _get(config, "clip_ratio_low"), _get(config, "clip_ratio_high")
    return (
        _finite(fallback if low is None else low, CLIP_LOW_KEY, loss_mode),
        _finite(fallback if high is None else high, CLIP_HIGH_KEY, loss_mode),
    )


def dapo_clip_settings(config: Any) -> tuple[float, float, float]:
    """(eps_low, eps_high, c) for ``loss_mode=dapo``, refusing settings that are not DAPO's clip-higher.

    Raises:
        ValueError: naming ``actor_rollout_ref.actor.clip_ratio_low`` / ``clip_ratio_high`` when either
            is negative or clip_ratio_high < clip_ratio_low, and ``clip_ratio_c`` when c <= 1.
    """
    eps_low, eps_high = clip_bounds(config, "dapo")
    for key, value in ((CLIP_LOW_KEY, eps_low), (CLIP_HIGH_KEY, eps_high)):
        if value < 0:
            raise ValueError(f"loss_mode=dapo: {key} must be >= 0, got {value}")
    if eps_high < eps_low:
        raise ValueError(
            f"loss_mode=dapo: {CLIP_HIGH_KEY}={eps_high} is below {CLIP_LOW_KEY}={eps_low}. DAPO's clip-higher "
            f"needs clip_ratio_high >= clip_ratio_low (the paper uses 0.28 >= 0.2); were the two swapped? "
            f"Use loss_mode=vanilla for any other asymmetric clip."
        )
    clip_c = _get(config, "clip_ratio_c")
    clip_c = _finite(3.0 if clip_c is None else clip_c, CLIP_C_KEY, "dapo")
    if clip_c <= 1.0:
        raise ValueError(f"loss_mode=dapo: {CLIP_C_KEY} (dual-clip) must be > 1, got {clip_c}")
    return eps_low, eps_high, clip_c


def cispo_clip_settings(config: Any) -> tuple[float, float]:
    """(eps_low, eps_high) for ``loss_mode=cispo``. eps_low > 1 is allowed (no lower cap: ratios are > 0).

    Raises:
        ValueError: naming both keys when the weight range [1 - eps_low, 1 + eps_high] is empty.
    """
    eps_low, eps_high = clip_bounds(config, "cispo")
    if 1.0 + eps_high < 1.0 - eps_low:
        raise ValueError(
            f"loss_mode=cispo: the weight range [1 - {CLIP_LOW_KEY}, 1 + {CLIP_HIGH_KEY}] = "
            f"[{1.0 - eps_low}, {1.0 + eps_high}] is empty"
        )
    return eps_low, eps_high


# --------------------------------------------------------------------------------------------------
# verl policy-loss functions
# --------------------------------------------------------------------------------------------------


def _aggregate(
    losses: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str,
    config: Any,
    rollout_is_weights: Optional[torch.Tensor],
) -> torch.Tensor:
    if rollout_is_weights is not None:
        losses = losses * rollout_is_weights
    # global_batch_info (dp size, global token and sequence counts) makes the loss independent of how the
    # batch is split into micro-batches and ranks; verl's ppo_loss fills it before every call.
    return core_algos.agg_loss(
        loss_mat=losses,
        loss_mask=response_mask,
        loss_agg_mode=loss_agg_mode,
        **(_get(config, "global_batch_info") or {}),
    )


def compute_policy_loss_dapo(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Optional[Any] = None,
    rollout_is_weights: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """DAPO's clip-higher PPO objective (Yu et al. 2025, §3.1), with verl's dual-clip and aggregation.

    The clip range is [1 - clip_ratio_low, 1 + clip_ratio_high] from the actor config (the paper: 0.2 and
    0.28), dual-clip constant ``clip_ratio_c``. Numerically the same as verl's ``vanilla`` with those
    bounds; ``dapo`` adds the refusal of settings that are not clip-higher.

    Args:
        old_log_prob: `(torch.Tensor)` shape (bs, L), log-probs under the rollout-time policy.
        log_prob: `(torch.Tensor)` shape (bs, L), log-probs under the current policy (with grad).
        advantages: `(torch.Tensor)` shape (bs, L).
        response_mask: `(torch.Tensor)` shape (bs, L), the tokens that count.
        loss_agg_mode: `(str)` verl's aggregation, "token-mean" in the paper.
        config: the actor config (``ActorConfig`` in verl's workers). Reads ``clip_ratio_low``,
            ``clip_ratio_high``, ``clip_ratio`` (fallback), ``clip_ratio_c``, ``global_batch_info``.
        rollout_is_weights: `(torch.Tensor)` shape (bs, L) or None, rollout-correction weights.

    Returns:
        loss: scalar tensor; metrics: ``actor/pg_clipfrac``, ``actor/ppo_kl``, ``actor/pg_clipfrac_lower``.

    Raises:
        ValueError: naming the config key, for the settings ``dapo_clip_settings`` refuses.
    """
    eps_low, eps_high, clip_c = dapo_clip_settings(config)
    log_ratio, ratio = importance_ratio(log_prob, old_log_prob)
    terms = clip_higher_token_losses(ratio, advantages, eps_low, eps_high, clip_c)
    loss = _aggregate(terms.losses, response_mask, loss_agg_mode, config, rollout_is_weights)
    metrics = {
        "actor/pg_clipfrac": masked_mean(terms.clipped.float(), response_mask).detach().item(),
        "actor/ppo_kl": masked_mean(-log_ratio, response_mask).detach().item(),
        "actor/pg_clipfrac_lower": masked_mean(terms.dual_clipped.float(), response_mask).detach().item(),
    }
    return loss, metrics


def compute_policy_loss_cispo(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Optional[Any] = None,
    rollout_is_weights: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """CISPO (MiniMax-M1, arXiv 2506.13585; F-GRPO Eqs. 15-16): clipped, detached IS weight times A log pi.

    Registered only where verl has no ``cispo`` of its own (verl 0.9.1 has one, and keeps it). The
    weight range is [1 - clip_ratio_low, 1 + clip_ratio_high]; the paper (after ScaleRL) uses 1.0 and 5.0.

    Args:
        old_log_prob, log_prob, advantages, response_mask: `(torch.Tensor)` shape (bs, L), as for ``dapo``.
        loss_agg_mode: `(str)` verl's aggregation.
        config: the actor config. Reads ``clip_ratio_low``, ``clip_ratio_high``, ``clip_ratio``,
            ``global_batch_info``.
        rollout_is_weights: `(torch.Tensor)` shape (bs, L) or None.

    Returns:
        loss: scalar tensor. Like verl's, it contains log pi, so its value is not comparable with PPO's.
        metrics: ``actor/pg_clipfrac`` (weight != r), ``actor/ppo_kl``, ``actor/pg_clipfrac_lower`` (0).
    """
    eps_low, eps_high = cispo_clip_settings(config)
    log_ratio, ratio = importance_ratio(log_prob, old_log_prob)
    losses, clipped = cispo_token_losses(log_prob, ratio, advantages, eps_low, eps_high)
    loss = _aggregate(losses, response_mask, loss_agg_mode, config, rollout_is_weights)
    metrics = {
        "actor/pg_clipfrac": masked_mean(clipped.float(), response_mask).detach().item(),
        "actor/ppo_kl": masked_mean(-log_ratio, response_mask).detach().item(),
        # CISPO has no dual clip; kept so dashboards show the same keys for every loss.
        "actor/pg_clipfrac_lower": 0.0,
    }
    return loss, metrics


# --------------------------------------------------------------------------------------------------
# Registry helpers (used by verl_focal.plugin)
# --------------------------------------------------------------------------------------------------

#: Every loss this package implements, by registry name.
POLICY_LOSSES: dict[str, Callable] = {"dapo": compute_policy_loss_dapo, "cispo": compute_policy_loss_cispo}

#: Names where verl's own implementation, when present, is used instead of ours.
VERL_FIRST = frozenset({"cispo"})


def is_ours(fn: Any) -> bool:
    return str(getattr(fn, "__module__", "")).startswith("verl_focal.")


def losses_to_register() -> dict[str, Callable]:
    """The losses this install should register: all of ours, except those in ``VERL_FIRST`` that verl has."""
    registry = core_algos.POLICY_LOSS_REGISTRY
    return {
        name: fn
        for name, fn in POLICY_LOSSES.items()
        if name not in VERL_FIRST or name not in registry or is_ours(registry[name])
    }


def register_policy_loss(name: str, fn: Callable) -> bool:
    """Register ``fn`` as ``name`` unless another package's function has that name.

    verl's ``register_policy_loss`` overwrites silently, which would change every run in the
    environment, so the registry is checked first. Returns True when ``name`` maps to ``fn`` (or to
    our function from an earlier import of this module) afterwards, False when it is taken.
    """
    current = core_algos.POLICY_LOSS_REGISTRY.get(name)
    if current is None:
        core_algos.register_policy_loss(name)(fn)
        return True
    return current is fn or (
        is_ours(current) and getattr(current, "__qualname__", None) == getattr(fn, "__qualname__", None)
    )
