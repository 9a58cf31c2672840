"""Timings of verl_focal.evaluation against baselines measured in the same run.

    .venv/bin/python benchmarks/evaluation.py [--problems 10000 --samples 1024 --test-problems 500
                                                --iterations 50000 --repeats 3]

1. pass@k ladder (k = 1, 2, 4, ..., n) for --problems problems with n = --samples each. Baseline: the
   reference implementation of Chen et al. (2021), ``1 - np.prod(1 - k / np.arange(n - c + 1, n + 1))``,
   called per problem and k. Target: under 1 s for 10,000 problems x n = 1024.
2. Paired m-out-of-n subsampling test (m = 256, pass@1 and pass@256) for --test-problems problems and
   --iterations iterations. Baseline: the procedure done literally (draw m indices per problem with a
   random permutation, count, evaluate), timed on a few iterations and scaled to --iterations.
   Target: under 30 s for 500 problems x 50,000 iterations on 2 cores.
3. pass@k validation metrics (what the sync_pass_at_k trainer adds to a validation) against verl's own
   reduction ``process_validation_metrics`` on the same samples (64 prompts x 256 samples).
4. What registering that trainer eagerly (importing verl's v1 trainer stack) would add to ``import verl``
   in every Ray process, against ``import verl`` alone (the lazy registration's cost).
Figures are medians over --repeats rounds (section 2: one round), after a warm-up call.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import uuid

import numpy as np

from verl_focal.evaluation import k_ladder, paired_subsampling_test, pass_at_k, pass_at_k_per_problem
from verl_focal.evaluation.validation import validation_pass_at_k_metrics


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def chen_reference(n: int, c: int, k: int) -> float:
    """The estimator as printed in Chen et al. (2021), Figure 3."""
    if n - c < k:
        return 1.0
    return 1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))


def bench_ladder(problems: int, samples: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    success = rng.beta(0.3, 0.3, size=problems)  # many near-0 and near-1 problems, as on real benchmarks
    correct = rng.binomial(samples, success)
    n = np.full(problems, samples)
    ks = k_ladder(samples)
    ours = median_time(lambda: pass_at_k_per_problem(n, correct, ks), repeats)
    table = pass_at_k_per_problem(n, correct, ks)
    subset = 1000  # the per-problem loop is slow; time a subset and scale
    start = time.perf_counter()
    reference = np.array([[chen_reference(samples, int(c), k) for c in correct[:subset]] for k in ks])
    baseline = (time.perf_counter() - start) * problems / subset
    error = np.max(np.abs(reference - table[:, :subset]) / np.maximum(reference, 1e-300))
    print(f"[1] pass@k ladder, {problems} problems x n={samples}, {len(ks)} k values (k = 1..{samples})")
    print(f"    ours (pass_at_k_per_problem)        {ours:8.3f} s   target < 1 s: {'met' if ours < 1 else 'MISSED'}")
    print(f"    baseline (Chen et al. loop, scaled) {baseline:8.3f} s   speed-up {baseline / ours:6.1f}x")
    print(f"    max relative difference to the baseline on {subset} problems: {error:.1e}")


def literal_subsampling(a: np.ndarray, b: np.ndarray, m: int, ks, iterations: int, rng) -> np.ndarray:
    """The paper's procedure without shortcuts: per iteration and problem, draw m indices."""
    problems, n = a.shape
    out = np.empty((iterations, len(ks)))
    for it in range(iterations):
        idx = np.argsort(rng.random((problems, n)), axis=1)[:, :m]  # m of n without replacement
        xa = np.take_along_axis(a, idx, axis=1).sum(1)
        xb = np.take_along_axis(b, idx, axis=1).sum(1)
        out[it] = [np.mean(pass_at_k(m, xa, k)) - np.mean(pass_at_k(m, xb, k)) for k in ks]
    return out


def bench_significance(problems: int, iterations: int) -> None:
    rng = np.random.default_rng(1)
    success = rng.beta(0.3, 0.3, size=problems)
    a = rng.random((problems, 1024)) < success[:, None]
    b = rng.random((problems, 1024)) < np.clip(success - 0.02, 0, 1)[:, None]
    start = time.perf_counter()
    result = paired_subsampling_test(a, b, ks=(1, 256), m=256, iterations=iterations)
    ours = time.perf_counter() - start
    few = 40
    start = time.perf_counter()
    literal_subsampling(a, b, 256, (1, 256), few, rng)
    baseline = (time.perf_counter() - start) * iterations / few
    print(f"[2] paired subsampling test, {problems} problems x n=1024, m=256, {iterations} iterations, pass@1 and pass@256")
    print(f"    ours (paired_subsampling_test)      {ours:8.2f} s   target < 30 s: {'met' if ours < 30 else 'MISSED'}")
    print(f"    baseline (literal draws, scaled)    {baseline:8.2f} s   speed-up {baseline / ours:6.1f}x")
    for k, r in result.items():
        print(f"    pass@{k}: A-B = {r.difference:+.4f}, 95% interval [{r.ci_low:+.4f}, {r.ci_high:+.4f}], "
              f"{'significant' if r.significant else 'not significant'}")


def bench_validation_metrics(repeats: int) -> None:
    from verl.trainer.ppo.metric_utils import process_validation_metrics

    rng = np.random.default_rng(2)
    prompts, samples = 64, 256
    uids = np.repeat([str(uuid.uuid4()) for _ in range(prompts)], samples).tolist()
    sources = np.repeat(rng.choice(["aime24", "math500"], size=prompts), samples).tolist()
    acc = (rng.random(prompts * samples) < np.repeat(rng.uniform(0, 1, prompts), samples)).tolist()
    infos = {"reward": [float(x) for x in acc], "acc": acc}
    expected = {(s, u): samples for s, u in zip(sources[::samples], uids[::samples])}
    ours = median_time(lambda: validation_pass_at_k_metrics(sources, uids, infos, expected), repeats)
    verl_time = median_time(lambda: process_validation_metrics(sources, uids, infos, expected_acc_counts=expected), 1)
    print(f"[3] validation metrics, {prompts} prompts x {samples} samples")
    print(f"    ours (validation_pass_at_k_metrics) {ours:8.3f} s")
    print(f"    verl process_validation_metrics     {verl_time:8.3f} s   ours adds {100 * ours / verl_time:.2f}% to it")


IMPORT_PROBE = """
import resource, sys, time
start = time.perf_counter()
for name in sys.argv[1:]:
    __import__(name)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def bench_registration_cost(repeats: int) -> None:
    """What eager registration of the pass@k trainer would add to every Ray process's `import verl`."""
    import subprocess
    import sys

    def probe(*modules):
        out = subprocess.run([sys.executable, "-c", IMPORT_PROBE, *modules], capture_output=True, text=True, check=True)
        return tuple(float(x) for x in out.stdout.split())

    lazy, eager = [], []
    for _ in range(repeats):  # interleaved, so that load from other processes hits both alike
        lazy.append(probe("verl"))
        eager.append(probe("verl", "verl.trainer.ppo.v1"))
    lazy_s, lazy_mb = (statistics.median(v) for v in zip(*lazy))
    eager_s, eager_mb = (statistics.median(v) for v in zip(*eager))
    print(f"[4] plugin registration cost per process (fresh interpreter, median of {repeats})")
    print(f"    import verl (lazy registration)      {lazy_s:6.2f} s  {lazy_mb:6.0f} MB max RSS")
    print(f"    + verl.trainer.ppo.v1 (eager)        {eager_s:6.2f} s  {eager_mb:6.0f} MB max RSS"
          f"   eager adds {eager_s - lazy_s:+.2f} s, {eager_mb - lazy_mb:+.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--test-problems", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-verl", action="store_true", help="skip sections 3 and 4 (import verl)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
          f"numpy {np.__version__}, python {platform.python_version()}, load {os.getloadavg()[0]:.1f}")
    bench_ladder(args.problems, args.samples, args.repeats)
    bench_significance(args.test_problems, args.iterations)
    if not args.skip_verl:
        bench_validation_metrics(args.repeats)
        bench_registration_cost(args.repeats)


if __name__ == "__main__":
    main()
