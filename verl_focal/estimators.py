"""Focal advantage estimators in verl's registry (``algorithm.adv_estimator=focal_grpo``).

The math is in ``verl_focal.focal``; this module only adapts it to verl's estimator contract
(keyword arguments ``token_level_rewards``, ``response_mask``, ``index``, ``config``; returns
``(advantages, returns)`` of shape (bs, L), zero outside the response mask).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

import numpy as np
import torch
from verl.trainer.ppo import core_algos

from verl_focal import focal
from verl_focal.config import read_focal_config, read_norm_adv_by_std

#: Names this package registers (or registered through ``register_focal_estimator``).
OUR_ESTIMATORS: dict[str, Callable] = {}


def _scalar_inputs(token_level_rewards: torch.Tensor, index: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
    scores = token_level_rewards.sum(dim=-1).to(torch.float32)
    gid, uniques = focal.group_ids(index, scores.shape[0])
    focal.check_finite_scores(scores, gid, uniques)
    return scores, gid, len(uniques)


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
        config: the ``algorithm`` config node. Reads ``focal.gamma``, ``focal.success_threshold`` and
            ``norm_adv_by_std_in_grpo`` (False gives the Dr.GRPO form).

    Returns:
        advantages, returns: `(torch.Tensor)` shape (bs, L), the same tensor twice.
    """
    cfg = read_focal_config(config)
    with torch.no_grad():
        scores, gid, num_groups = _scalar_inputs(token_level_rewards, index)
        adv = focal.grpo_scalar_advantage(scores, gid, num_groups, epsilon, read_norm_adv_by_std(config))
        g = focal.focal_weight(focal.success_rate(scores, gid, num_groups, cfg.success_threshold), cfg.gamma)
        advantages = (adv * g.index_select(0, gid)).unsqueeze(-1) * response_mask
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
        config: the ``algorithm`` config node (``focal.gamma``, ``focal.success_threshold``).

    Returns:
        advantages, returns: `(torch.Tensor)` shape (bs, L), the same tensor twice.
    """
    cfg = read_focal_config(config)
    with torch.no_grad():
        scores, gid, num_groups = _scalar_inputs(token_level_rewards, index)
        adv = focal.rloo_scalar_advantage(scores, gid, num_groups)
        g = focal.focal_weight(focal.success_rate(scores, gid, num_groups, cfg.success_threshold), cfg.gamma)
        advantages = (adv * g.index_select(0, gid)).unsqueeze(-1) * response_mask
    return advantages, advantages


def make_focal_estimator(base_name: str) -> Callable:
    """Wrap the registered estimator ``base_name`` so that its advantages are scaled by g per group.

    The base is looked up in verl's registry at call time, receives only the keyword arguments its
    signature accepts, and must be group-relative (it needs ``index``). Returns are scaled too when
    the base returns the advantages tensor as its returns (every outcome-only estimator does);
    separate returns are value targets and are left alone.
    """

    def focal_estimator(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index: Optional[np.ndarray] = None,
        config: Optional[Any] = None,
        **kwargs,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = read_focal_config(config)
        base = core_algos.get_adv_estimator_fn(base_name)
        params = inspect.signature(base).parameters
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        call = dict(kwargs, token_level_rewards=token_level_rewards, response_mask=response_mask, index=index)
        call["config"] = config
        if not takes_all:
            call = {k: v for k, v in call.items() if k in params}
        advantages, returns = base(**call)
        with torch.no_grad():
            scores, gid, num_groups = _scalar_inputs(token_level_rewards, index)
            g = focal.focal_weight(focal.success_rate(scores, gid, num_groups, cfg.success_threshold), cfg.gamma)
            row_weight = g.index_select(0, gid).to(advantages.dtype).unsqueeze(-1)
            scaled = advantages * row_weight
        return scaled, (scaled if returns is advantages else returns)

    focal_estimator.__name__ = f"compute_focal_{base_name}_advantage"
    focal_estimator.__qualname__ = focal_estimator.__name__
    focal_estimator.__doc__ = (
        f"Focal version of verl's ``{base_name}`` estimator: its advantages times g = (1 - mu_hat)^gamma "
        "per group (F-GRPO, Eq. 12). Config: ``algorithm.focal.gamma``, ``algorithm.focal.success_threshold``."
    )
    return focal_estimator


def _same_function(a: Any, b: Any) -> bool:
    # By module and qualname, so a re-imported module (a second plugin load) counts as the same.
    return a is b or (
        getattr(a, "__module__", None) == getattr(b, "__module__", None)
        and getattr(a, "__qualname__", None) == getattr(b, "__qualname__", None)
    )


def register_estimator(name: str, fn: Callable) -> bool:
    """Register ``fn`` under ``name`` unless the name is taken by another function.

    Returns True when ``name`` maps to ``fn`` afterwards (newly, or already from an earlier
    import), False when the name belongs to a different function, which is never overwritten.
    """
    current = core_algos.ADV_ESTIMATOR_REGISTRY.get(name)
    if current is None:
        core_algos.register_adv_est(name)(fn)
    elif not _same_function(current, fn):
        return False
    OUR_ESTIMATORS[name] = core_algos.ADV_ESTIMATOR_REGISTRY[name]
    return True


def register_focal_estimator(base_name: str, name: Optional[str] = None) -> str:
    """Register a focal version of any group-relative estimator in verl's registry.

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
        ValueError: if ``base_name`` is not registered, or ``name`` already belongs to an estimator
            that this package did not make.
    """
    name = name or f"focal_{base_name}"
    if base_name not in core_algos.ADV_ESTIMATOR_REGISTRY:
        raise ValueError(
            f"cannot make a focal estimator from {base_name!r}: not in verl's advantage-estimator registry "
            f"(known: {sorted(core_algos.ADV_ESTIMATOR_REGISTRY)})"
        )
    if base_name == "gae":
        raise ValueError("'gae' is not group-relative: a per-group focal weight is undefined for it")
    if not register_estimator(name, make_focal_estimator(base_name)):
        raise ValueError(
            f"advantage estimator {name!r} is already registered "
            f"({core_algos.ADV_ESTIMATOR_REGISTRY[name].__module__}."
            f"{core_algos.ADV_ESTIMATOR_REGISTRY[name].__qualname__}); choose another name"
        )
    return name
