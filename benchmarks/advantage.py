"""Time of focal_grpo against verl's grpo_vectorized and grpo, on the same batch, in one run.

    .venv/bin/python benchmarks/advantage.py [--prompts 2048 --rollouts 8 --tokens 2048 --repeats 7]

The batch is what verl's trainer hands an estimator at the paper's scale: uuid4 strings as uids (as verl
makes them), shuffled, 1/0 outcome rewards on the last token of responses of random length. Each
estimator is called through verl's registry with the same keyword arguments verl passes; the figure is
the median wall time over --repeats rounds (calls interleaved) after one warm-up call each. Target: focal_grpo at most 1.1x
grpo_vectorized.
"""

import argparse
import platform
import statistics
import time
import uuid

import numpy as np
import torch
from omegaconf import OmegaConf

import verl  # noqa: F401  - loads verl_focal through the verl.plugins entry point
from verl.trainer.ppo import core_algos


def make_batch(prompts: int, rollouts: int, tokens: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    bs = prompts * rollouts
    uids = np.repeat(np.array([str(uuid.uuid4()) for _ in range(prompts)], dtype=object), rollouts)
    order = rng.permutation(bs)
    uids = uids[order]
    lengths = torch.from_numpy(rng.integers(1, tokens + 1, size=bs))
    mask = (torch.arange(tokens)[None, :] < lengths[:, None]).to(torch.float32)
    rewards = torch.zeros(bs, tokens)
    rewards[torch.arange(bs), lengths - 1] = torch.from_numpy((rng.random(bs) < 0.4).astype(np.float32))
    return rewards, mask, uids


def time_estimators(names, rewards, mask, uids, config, repeats):
    """Median seconds per estimator; calls are interleaved round by round so that load from other
    processes on the machine hits every estimator alike."""
    calls = {}
    for name in names:
        kwargs = dict(token_level_rewards=rewards, response_mask=mask, index=uids)
        if name != "grpo":  # verl's trainer calls grpo without config; the rest get the algorithm node
            kwargs["config"] = config
        calls[name] = (core_algos.get_adv_estimator_fn(name), kwargs)
        calls[name][0](**kwargs)  # warm-up
    times = {name: [] for name in names}
    for _ in range(repeats):
        for name, (fn, kwargs) in calls.items():
            start = time.perf_counter()
            fn(**kwargs)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=2048)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-loop-grpo", action="store_true", help="skip verl's per-response loop `grpo`")
    args = parser.parse_args()

    rewards, mask, uids = make_batch(args.prompts, args.rollouts, args.tokens)
    config = OmegaConf.create({"norm_adv_by_std_in_grpo": True, "focal": {"gamma": 0.5}})
    print(
        f"batch: {args.prompts} prompts x {args.rollouts} rollouts x {args.tokens} tokens "
        f"({rewards.numel() * 4 / 2**20:.0f} MiB of float32 rewards); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    names = ["grpo_vectorized", "focal_grpo"] + ([] if args.skip_loop_grpo else ["grpo"])
    times = time_estimators(names, rewards, mask, uids, config, args.repeats)
    for name, seconds in times.items():
        print(f"{name:<16} {seconds * 1e3:9.1f} ms (median of {args.repeats})")
    print(f"focal_grpo / grpo_vectorized = {times['focal_grpo'] / times['grpo_vectorized']:.3f}  (target <= 1.1)")
    if "grpo" in times:
        print(f"focal_grpo / grpo            = {times['focal_grpo'] / times['grpo']:.3f}")


if __name__ == "__main__":
    main()
