"""Cost of the ``focal/*`` training metrics against the estimator's own time, on the same batch, in one run.

    .venv/bin/python benchmarks/focal_metrics.py [--prompts 2048 --rollouts 8 --tokens 2048 --repeats 9]

The batch is ``benchmarks/advantage.py``'s (the paper's scale: uuid4 uids, shuffled, 1/0 rewards on the
last token of responses of random length). Rounds interleave, median of --repeats after a warm-up:

1. ``focal_grpo`` alone (what every step pays without metrics: verl's stock trainer);
2. ``focal_grpo`` inside ``focal_metrics.recording()`` plus ``record_metrics`` (what the package trainer pays);
3. the group statistics a plain ``grpo`` run gets (``focal_groups`` + ``group_metrics``), against verl's
   ``grpo_vectorized`` on the same batch.

Target: the overhead (2 - 1) under 1% of (1).
"""

import argparse
import platform
import statistics
import time

import torch
from advantage import make_batch
from omegaconf import OmegaConf

import verl  # noqa: F401  - loads verl_focal through the verl.plugins entry point
from verl.trainer.ppo import core_algos
from verl_focal import focal_metrics
from verl_focal.estimators import focal_groups


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=2048)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    rewards, mask, uids = make_batch(args.prompts, args.rollouts, args.tokens)
    config = OmegaConf.create({"norm_adv_by_std_in_grpo": True, "focal": {"gamma": 0.5}})
    kwargs = dict(token_level_rewards=rewards, response_mask=mask, index=uids, config=config)
    focal_grpo = core_algos.get_adv_estimator_fn("focal_grpo")
    grpo_vectorized = core_algos.get_adv_estimator_fn("grpo_vectorized")

    def recorded():
        with focal_metrics.recording() as records:
            focal_grpo(**kwargs)
        return focal_metrics.record_metrics(records[0])

    calls = {
        "focal_grpo": lambda: focal_grpo(**kwargs),
        "focal_grpo + metrics": recorded,
        "grpo_vectorized": lambda: grpo_vectorized(**kwargs),
        "group stats (grpo run)": lambda: focal_metrics.group_metrics(focal_groups(rewards, uids, config).success_rate),
    }
    for fn in calls.values():
        fn()  # warm-up
    times = {name: [] for name in calls}
    for _ in range(args.repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(ts) for name, ts in times.items()}
    print(
        f"batch: {args.prompts} prompts x {args.rollouts} rollouts x {args.tokens} tokens; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    for name, seconds in median.items():
        print(f"{name:<24} {seconds * 1e3:9.1f} ms (median of {args.repeats})")
    overhead = median["focal_grpo + metrics"] / median["focal_grpo"] - 1
    print(f"metrics overhead = {overhead * 100:+.1f}% of focal_grpo  (target < 1%)")
    print(f"group stats / grpo_vectorized = {median['group stats (grpo run)'] / median['grpo_vectorized']:.2f}")


if __name__ == "__main__":
    main()
