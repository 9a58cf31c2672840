"""``verl-focal example``: F-GRPO through verl's own advantage dispatcher, on CPU, in seconds.

Builds a batch the way verl's trainer holds it (a ``DataProto`` with ``token_level_rewards``,
``response_mask`` and ``uid``: one prompt per success count 0..N, N rollouts each, random response
lengths, 1/0 outcome reward on the last response token), composes verl's ``ppo_trainer`` config with
``+algorithm.focal.gamma=<gamma>``, and calls ``verl.trainer.ppo.ray_trainer.compute_advantage`` with
``grpo`` and with ``focal_grpo``. Prints, per group, the success rate, the focal weight g and both
advantages of a correct and an incorrect rollout.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def make_batch(group_size: int, max_response_length: int, seed: int):
    """A DataProto with one group per success count 0..group_size; uids are shuffled across the batch."""
    from verl import DataProto

    rng = np.random.default_rng(seed)
    num_groups = group_size + 1
    rows = num_groups * group_size
    uids = np.repeat([f"prompt-{k}" for k in range(num_groups)], group_size).astype(object)
    correct = np.concatenate([np.arange(group_size) < k for k in range(num_groups)])
    order = rng.permutation(rows)
    uids, correct = uids[order], correct[order]
    lengths = torch.from_numpy(rng.integers(1, max_response_length + 1, size=rows))
    positions = torch.arange(max_response_length)
    response_mask = (positions[None, :] < lengths[:, None]).to(torch.float32)
    token_level_rewards = torch.zeros(rows, max_response_length)
    token_level_rewards[torch.arange(rows), lengths - 1] = torch.from_numpy(correct.astype(np.float32))
    return DataProto.from_dict(
        tensors={"token_level_rewards": token_level_rewards, "response_mask": response_mask},
        non_tensors={"uid": uids},
    )


def algorithm_config(gamma: float, estimator: str):
    """verl's real ``algorithm`` node (composed from ppo_trainer.yaml) with our focal keys added."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose(
            config_name="ppo_trainer",
            overrides=[f"algorithm.adv_estimator={estimator}", f"+algorithm.focal.gamma={gamma}"],
        )
    return cfg.algorithm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="verl-focal example", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gamma", type=float, default=0.5, help="focal exponent (algorithm.focal.gamma)")
    parser.add_argument("--group-size", type=int, default=8, help="rollouts per prompt (N)")
    parser.add_argument("--max-response-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import verl  # noqa: F401  - loads the plugin through the verl.plugins entry point
    from verl.trainer.ppo.ray_trainer import compute_advantage

    batch_args = (args.group_size, args.max_response_length, args.seed)
    batch = make_batch(*batch_args)
    config = algorithm_config(args.gamma, "focal_grpo")
    print(
        f"batch: {len(batch)} responses, {args.group_size + 1} prompts x N={args.group_size}, "
        f"response length up to {args.max_response_length}; gamma={config.focal.gamma}"
    )
    # compute_advantage writes into the DataProto it is given: give each estimator its own batch.
    grpo = compute_advantage(make_batch(*batch_args), adv_estimator="grpo", config=config)
    focal = compute_advantage(make_batch(*batch_args), adv_estimator="focal_grpo", config=config)

    first_token = torch.zeros(len(batch), dtype=torch.long)  # every response has >= 1 token
    reward = batch.batch["token_level_rewards"].sum(-1)
    grpo_adv = grpo.batch["advantages"][torch.arange(len(batch)), first_token]
    focal_adv = focal.batch["advantages"][torch.arange(len(batch)), first_token]
    uids = batch.non_tensor_batch["uid"]

    print(f"\n{'uid':<10} {'success':>8} {'g':>7} {'F/GRPO':>7}   {'GRPO A+':>8} {'F-GRPO A+':>9}   {'GRPO A-':>8} {'F-GRPO A-':>9}")
    for k in range(args.group_size + 1):
        rows = np.flatnonzero(uids == f"prompt-{k}")
        pos, neg = rows[reward[rows] > 0.5], rows[reward[rows] <= 0.5]
        mu = len(pos) / len(rows)
        g = (1 - mu) ** config.focal.gamma
        live = rows[grpo_adv[rows] != 0]
        measured = f"{float(focal_adv[live[0]] / grpo_adv[live[0]]):.4f}" if len(live) else "-"

        def cell(adv, picked):
            return f"{float(adv[picked[0]]):+.4f}" if len(picked) else "-"

        print(
            f"prompt-{k:<3} {mu:>8.3f} {g:>7.4f} {measured:>7}   {cell(grpo_adv, pos):>8} {cell(focal_adv, pos):>9}   "
            f"{cell(grpo_adv, neg):>8} {cell(focal_adv, neg):>9}"
        )
    mixed = (grpo_adv != 0)
    ratio = (focal_adv[mixed] / grpo_adv[mixed]).mean().item() if mixed.any() else float("nan")
    print(
        f"\nF-GRPO / GRPO advantage, mean over responses of mixed groups: {ratio:.4f}. All-correct and "
        "all-wrong groups carry no advantage under either estimator."
    )
    return 0
