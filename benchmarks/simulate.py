"""Step cost of the categorical simulation: counts per action (what we do) vs per-sample draws (baseline).

One step of one run at the paper's scale (128,000 actions) has three parts that depend on how the
group is sampled: drawing it, turning it into per-action advantage weights with focal_grpo, and the
gradient. The baseline draws N action ids with torch.multinomial and scatters per-sample advantages;
ours draws the multiset as counts with one numpy multinomial (O(K) whatever N is). Both go through the
same registered estimator. Prints the time per step and the baseline/ours ratio, both measured here.

    .venv/bin/python benchmarks/simulate.py [--threads 1] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from verl_focal.theory.simulation import CategoricalSetup, focal_grpo_advantages, surrogate_gradient, surrogate_weights


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--n", type=int, nargs="+", default=[2, 256, 8192, 131072])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    setup = CategoricalSetup()
    rewards = setup.rewards()
    probs = torch.softmax(setup.initial_logits(), -1)[None]
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    print(f"categorical simulation, one run, K = {setup.num_actions}, torch threads = {args.threads}")
    print(f"{'N':>7}  {'per-sample (ms)':>15}  {'counts (ms)':>11}  {'ratio':>6}")
    for n in args.n:
        sizes = np.array([n])

        def per_sample_step():
            actions = torch.multinomial(probs[0], n, replacement=True, generator=generator)
            advantages = focal_grpo_advantages(rewards[actions], np.zeros(n, dtype=np.int64), 1.0)
            w = torch.bincount(actions, weights=advantages.double(), minlength=setup.num_actions).float() / n
            return surrogate_gradient(probs, w[None], "logprob")

        def counts_step():
            pvals = probs[0].double().numpy()
            counts = rng.multinomial(n, pvals / pvals.sum())[None]
            w = surrogate_weights(counts, rewards, np.array([1.0]), sizes)
            return surrogate_gradient(probs, w, "logprob")

        baseline, ours = _time(per_sample_step, args.repeats), _time(counts_step, args.repeats)
        print(f"{n:>7}  {baseline * 1e3:>15.2f}  {ours * 1e3:>11.2f}  {baseline / ours:>6.2f}")


if __name__ == "__main__":
    main()
