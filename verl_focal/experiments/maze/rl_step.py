"""One fully on-policy update: sample N per maze, score, advantages and loss through verl's registries.

``reward_i = 1`` iff response ``i`` equals its maze's target path followed by ``<eos>`` (padding after it),
placed on the response's last valid token as verl's reward managers do. Advantages: ``get_adv_estimator_fn
(estimator)(token_level_rewards, response_mask, index, config)``; loss: ``get_policy_loss_fn("vanilla")``
with ``old_log_prob = log_prob.detach()`` (one update per batch, so the ratio is 1 and the clipped objective is
the policy gradient), aggregated by verl's ``agg_loss`` in ``loss_agg_mode``.
"""

from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import verl  # noqa: F401  - loads verl_focal's estimators through the verl.plugins entry point
from verl.trainer.ppo import core_algos

from verl_focal.experiments.maze.model import response_logprobs, sample


def algorithm_config(gamma: float, norm_adv_by_std: bool = True) -> DictConfig:
    """verl's ``algorithm`` node as an estimator sees it, with ``focal.gamma``."""
    return OmegaConf.create({"norm_adv_by_std_in_grpo": norm_adv_by_std, "focal": {"gamma": float(gamma)}})


def actor_config(clip_ratio: float = 0.2) -> DictConfig:
    """The keys of verl's ``actor`` config that the vanilla policy loss reads (one data-parallel rank)."""
    return OmegaConf.create({"clip_ratio": clip_ratio, "clip_ratio_low": None, "clip_ratio_high": None,
                             "clip_ratio_c": 3.0, "global_batch_info": {}})


def rewards_of(responses: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B,) float 1.0 where the PAD-padded response equals the PAD-padded target exactly."""
    return (responses == targets).all(dim=1).float()


def token_level(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L) zeros with ``rewards[i]`` on row i's last valid token."""
    out = torch.zeros_like(mask)
    last = mask.sum(dim=1).long().clamp(min=1) - 1
    out[torch.arange(mask.shape[0]), last] = rewards
    return out


def advantages(estimator: str, rewards: torch.Tensor, mask: torch.Tensor, n: int, config) -> torch.Tensor:
    """verl's registered estimator on groups of n consecutive responses; (B, L)."""
    index = np.repeat(np.arange(rewards.shape[0] // n).astype(str), n).astype(object)
    fn = core_algos.get_adv_estimator_fn(estimator)
    adv, _ = fn(token_level_rewards=token_level(rewards, mask), response_mask=mask, index=index, config=config)
    return adv


def rl_step(model, optimizer, prompts, targets, n, estimator, algo_cfg, actor_cfg, generator,
            loss_agg_mode="token-mean", max_grad_norm=1.0) -> dict:
    """One update on M mazes x n samples. prompts (M, P), targets (M, L). Returns metrics."""
    model.eval()
    responses, _, mask = sample(model, prompts, n, targets.shape[1], generator)
    rewards = rewards_of(responses, targets.repeat_interleave(n, dim=0))
    adv = advantages(estimator, rewards, mask, n, algo_cfg)
    model.train()
    log_prob = response_logprobs(model, prompts, responses, n)
    loss_fn = core_algos.get_policy_loss_fn("vanilla")
    loss, _ = loss_fn(old_log_prob=log_prob.detach(), log_prob=log_prob, advantages=adv, response_mask=mask,
                      loss_agg_mode=loss_agg_mode, config=actor_cfg)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return {"reward": float(rewards.mean()), "loss": float(loss.detach())}
