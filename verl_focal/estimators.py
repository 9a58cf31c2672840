"""Focal advantage estimators in verl's registry (``algorithm.adv_estimator=focal_grpo``).

The math is in ``verl_focal.focal``; this module adapts it to verl's estimator contract (keyword
arguments ``token_level_rewards``, ``response_mask``, ``index``, ``config``; returns
``(advantages, returns)`` of shape (bs, L), zero outside the response mask). ``focal_groups`` is the one
function that turns a batch's rewards, uids and ``algorithm`` config into per-group success rates and
focal weights; every estimator here (and any metric of them) goes through it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import torch
from verl.trainer.ppo import core_algos

from verl_focal import focal, focal_metrics, registry
from verl_focal.config import FocalConfig, read_estimator_config, read_focal_config, read_norm_adv_by_std


@dataclass(frozen=True)
class FocalGroups:
    """Per-group focal quantities of one batch: bs responses in G groups, all on the rewards' device.

    Attributes:
        scores: `(torch.Tensor)` shape (bs,), float32, each response's summed reward.
        gid: `(torch.LongTensor)` shape (bs,), the group of each response, 0..G-1.
        uids: `(np.ndarray)` shape (G,), the uid of each group, in order of first appearance.
        count: `(torch.Tensor)` shape (G,), float32, responses per group (N).
        success_rate: `(torch.Tensor)` shape (G,), float32, mu_hat in [0, 1] (Eq. 11 or PR #5334's form).
        weight: `(torch.Tensor)` shape (G,), float32, g = (1 - mu_hat)^gamma (Eq. 12).
        config: the validated ``algorithm.focal`` that produced them.
    """

    scores: torch.Tensor
    gid: torch.Tensor
    uids: np.ndarray
    count: torch.Tensor
    success_rate: torch.Tensor
    weight: torch.Tensor
    config: FocalConfig

    @property
    def num_groups(self) -> int:
        return len(self.uids)

    def per_response(self, values: torch.Tensor) -> torch.Tensor:
        """Spread a per-group tensor, shape (G,), to its responses, shape (bs,)."""
        return values.index_select(0, self.gid)


def focal_groups(rewards: torch.Tensor, index: Any, config: Any) -> FocalGroups:
    """Per-group success rate and focal weight of a batch.

    Args:
        rewards: `(torch.Tensor)` token-level rewards, shape (bs, L), summed over L as verl's outcome
            estimators do; or per-response scores, shape (bs,).
        index: `(array-like)` shape (bs,), the group uid of each response (verl's
            ``non_tensor_batch["uid"]``); any hashable type.
        config: verl's ``algorithm`` node (read with ``read_focal_config``), None for the defaults, or a
            ``FocalConfig``.

    Returns:
        ``FocalGroups``; mu_hat follows ``algorithm.focal.success_rate``.

    Raises:
        ValueError: on a bad ``algorithm.focal`` (naming the key), a missing or mis-sized ``index``, or a
            non-finite reward (naming its uid).
    """
    cfg = config if isinstance(config, FocalConfig) else read_focal_config(config)
    if rewards.dim() not in (1, 2):
        raise ValueError(f"rewards must have shape (bs, L) or (bs,), got {tuple(rewards.shape)}")
    with torch.no_grad():
        scores = (rewards.sum(dim=-1) if rewards.dim() == 2 else rewards).to(torch.float32)
        gid, uids = focal.group_ids(index, scores.shape[0], device=scores.device)
        focal.check_finite_scores(scores, gid, uids)
        if cfg.success_rate == "mean_reward":
            mu_hat = focal.mean_reward_success_rate(scores, gid, len(uids), cfg.reward_correct, cfg.reward_wrong)
        else:
            mu_hat = focal.success_rate(scores, gid, len(uids), cfg.success_threshold)
        count = scores.new_zeros(len(uids)).index_add(0, gid, torch.ones_like(scores))
        weight = focal.focal_weight(mu_hat, cfg.gamma)
    return FocalGroups(scores, gid, uids, count, mu_hat, weight, cfg)


def compute_focal_grpo_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray,
    epsilon: float = 1e-6,
    config: Optional[Any] = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """F-GRPO advantage (Eq. 13): verl's GRPO advantage times g = (1 - mu_hat)^gamma per group.

    Args:
        token_level_rewards: `(torch.Tensor)` shape (bs, L); the outcome reward sits on the last token.
        response_mask: `(torch.Tensor)` shape (bs, L).
        index: `(np.ndarray)` shape (bs,), the group (prompt) uid of each response; any hashable type.
        epsilon: added to the group std, as in verl's ``grpo``.
        config: the ``algorithm`` config node: ``focal.*`` (see ``verl_focal.config``) and
            ``norm_adv_by_std_in_grpo`` (False gives the Dr.GRPO form).

    Returns:
        advantages, returns: `(torch.Tensor)` shape (bs, L), the same tensor twice.
    """
    groups = focal_groups(token_level_rewards, index, read_estimator_config(config))
    with torch.no_grad():
        adv = focal.grpo_scalar_advantage(
            groups.scores, groups.gid, groups.num_groups, epsilon, read_norm_adv_by_std(config)
        )
        advantages = (adv * groups.per_response(groups.weight)).unsqueeze(-1) * response_mask
        _record(groups, lambda: adv.abs() * response_mask.sum(dim=-1))
    return advantages, advantages



def compute_focal_rloo_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray,
    epsilon: float = 1e-6,
    config: Optional[Any] = None,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Focal RLOO: verl's ``rloo`` advantage (arXiv 2402.14740) times g = (1 - mu_hat)^gamma (Eq. 12).

    Args:
        token_level_rewards: `(torch.Tensor)` shape (bs, L).
        response_mask: `(torch.Tensor)` shape (bs, L).
        index: `(np.ndarray)` shape (bs,), group uids.
        epsilon: unused (kept for verl's estimator signature).
        config: the ``algorithm`` config node (``focal.*``, see ``verl_focal.config``).

    Returns:
        advantages, returns: `(torch.Tensor)` shape (bs, L), the same tensor twice.
    """
    groups = focal_groups(token_level_rewards, index, read_estimator_config(config))
    with torch.no_grad():
        adv = focal.rloo_scalar_advantage(groups.scores, groups.gid, groups.num_groups)
        advantages = (adv * groups.per_response(groups.weight)).unsqueeze(-1) * response_mask
        _record(groups, lambda: adv.abs() * response_mask.sum(dim=-1))
    return advantages, advantages



#: verl 0.9.1 estimators whose inputs depend on their registered name, so that a focal version under
#: another name would not see them (``verl/trainer/ppo/ray_trainer.py``: ``compute_advantage`` :218-276
#: and the rollout in ``fit`` :1493-1526). ``tests/test_estimators.py`` checks every other registered
#: estimator through ``compute_advantage``, so a new name-keyed input in a later verl fails that test.
NAME_KEYED_BASES: dict[str, str] = {
    "gae": (
        "verl computes it in its own branch of compute_advantage from the critic's `values`, which a "
        "registered estimator never receives; nor is it group-relative"
    ),
    "gdpo": (
        "compute_advantage passes `batch` and `non_tensor_batch` (the per-component rewards named by "
        "algorithm.gdpo_reward_keys) only to the name 'gdpo'; under another name gdpo silently falls back "
        "to whitened GRPO of the summed reward"
    ),
    "optimal_token_baseline": (
        "compute_advantage passes `old_log_probs`, `sum_pi_squared` and `rollout_is_weights` only to the "
        "optimal-token-baseline names; under another name it fails at the first step (missing arguments)"
    ),
    "tir_optimal_token_baseline": (
        "compute_advantage passes `old_log_probs`, `sum_pi_squared` and `rollout_is_weights` only to the "
        "optimal-token-baseline names; under another name it fails at the first step (missing arguments)"
    ),
    "remax": (
        "the trainer rolls out the greedy baseline `reward_baselines` only when algorithm.adv_estimator is "
        "'remax' (the v1 trainer never fetches it); nor is it group-relative"
    ),
}


def refusal_reason(base_name: str) -> Optional[str]:
    """Why ``base_name`` cannot be made focal, or None when its focal version at gamma 0 equals it.

    The registered base must exist, must not be one of our estimators (g would apply twice), must not
    depend on its name for its inputs (``NAME_KEYED_BASES``), and must be group-relative: take ``index``.
    """
    base = core_algos.ADV_ESTIMATOR_REGISTRY.get(base_name)
    if base is None:
        return f"not in verl's advantage-estimator registry (known: {sorted(core_algos.ADV_ESTIMATOR_REGISTRY)})"
    if getattr(base, "__module__", None) == __name__:
        return "it is a verl-focal estimator already; a focal version would apply g twice"
    if base_name in NAME_KEYED_BASES:
        return NAME_KEYED_BASES[base_name]
    try:
        takes_index = "index" in inspect.signature(base).parameters
    except (TypeError, ValueError):
        takes_index = False
    if not takes_index:
        return (
            "it is not group-relative: it takes no `index` (the uid of each response), so a group's success "
            "rate is no part of its estimate"
        )
    return None


def _base_call(
    base_name: str, token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any, config: Any,
    extra: dict,
) -> dict:
    """The keyword arguments verl's ``compute_advantage`` gives ``base_name`` under its own name.

    The focal estimator receives what verl gives every registered name (``extra`` holds the optional
    ``reward_baselines``); only ``grpo`` differs, with verl's hard-wired branch (ray_trainer.py:235-247):
    no ``config``, and the trainer's ``norm_adv_by_std_in_grpo``.
    """
    if base_name == core_algos.AdvantageEstimator.GRPO.value:
        return {
            "token_level_rewards": token_level_rewards,
            "response_mask": response_mask,
            "index": index,
            "norm_adv_by_std_in_grpo": read_norm_adv_by_std(config),
        }
    call = dict(extra, token_level_rewards=token_level_rewards, response_mask=response_mask, config=config)
    if index is not None:
        call["index"] = index
    return call


def is_group_relative(estimator_name: str) -> bool:
    """Whether ``estimator_name`` is one of our (focal) estimators, or a base ``refusal_reason`` accepts."""
    fn = core_algos.ADV_ESTIMATOR_REGISTRY.get(estimator_name)
    return fn is not None and (registry.is_ours(fn) or refusal_reason(estimator_name) is None)


def _record(groups: FocalGroups, base_abs: Callable[[], torch.Tensor]) -> None:
    """Leave this call's ``focal_metrics.FocalRecord`` when the trainer records; ``base_abs()`` (bs,) is the
    per-response token sum of |A_base|, computed only then (it is one pass over the (bs, L) mask)."""
    if focal_metrics.is_recording():
        focal_metrics.record(groups.success_rate, groups.weight, groups.per_response(groups.weight), base_abs())


def make_focal_estimator(base_name: str) -> Callable:
    """Wrap the registered estimator ``base_name`` so that its advantages are scaled by g per group.

    The base is looked up in verl's registry at call time and called with exactly the keyword
    arguments verl's ``compute_advantage`` would give it under its own name, so at gamma = 0 the focal
    version equals it, failures included. Returns are scaled too when the base returns the advantages
    tensor as its returns (every outcome-only estimator does); separate returns are value targets and
    are left alone. Use ``register_focal_estimator``, which refuses bases this cannot hold for.
    """

    def focal_estimator(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index: Optional[np.ndarray] = None,
        config: Optional[Any] = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = read_focal_config(config)  # a bad key fails before the base runs
        base = core_algos.get_adv_estimator_fn(base_name)
        advantages, returns = base(**_base_call(base_name, token_level_rewards, response_mask, index, config, kwargs))
        with torch.no_grad():
            groups = focal_groups(token_level_rewards, index, cfg)
            weight = groups.per_response(groups.weight).to(device=advantages.device, dtype=advantages.dtype)
            scaled = advantages * weight.unsqueeze(-1)
            _record(groups, lambda: (advantages * response_mask).abs().sum(dim=-1).to(torch.float32))
        return scaled, (scaled if returns is advantages else returns)

    focal_estimator.__name__ = f"compute_focal_{base_name}_advantage"
    focal_estimator.__qualname__ = focal_estimator.__name__
    focal_estimator.__doc__ = (
        f"Focal version of verl's ``{base_name}`` estimator: its advantages times g = (1 - mu_hat)^gamma "
        "per group (F-GRPO, Eq. 12). Config: ``algorithm.focal.*`` (``verl_focal.config``)."
    )
    return focal_estimator


def register_focal_estimator(base_name: str, name: Optional[str] = None) -> str:
    """Register a focal version of a group-relative estimator in verl's registry.

    Example::

        from verl.trainer.ppo.core_algos import register_adv_est
        import verl_focal

        @register_adv_est("my_grpo")
        def my_grpo(token_level_rewards, response_mask, index, config=None, **kwargs): ...

        verl_focal.register_focal_estimator("my_grpo")   # -> algorithm.adv_estimator=focal_my_grpo

    Args:
        base_name: a name already in verl's advantage-estimator registry.
        name: the new name; default ``focal_<base_name>``.

    Returns:
        The registered name.

    Raises:
        ValueError: saying why, if ``refusal_reason(base_name)`` has a reason (unknown, already focal,
            name-keyed inputs, not group-relative), or ``name`` already belongs to an estimator that this
            package did not make.
    """
    name = name or f"focal_{base_name}"
    reason = refusal_reason(base_name)
    if reason is not None:
        raise ValueError(f"cannot make a focal estimator from {base_name!r}: {reason}")
    if not registry.register("adv_estimator", name, make_focal_estimator(base_name)):
        raise ValueError(
            f"advantage estimator {name!r} is already registered "
            f"({registry.owner(core_algos.ADV_ESTIMATOR_REGISTRY[name])}); choose another name"
        )
    return name

