"""The paired m-out-of-n subsampling test on synthetic runs with known (and no) differences."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from verl_focal.evaluation import MACRO, pass_at_k, paired_subsampling_test, paired_subsampling_test_by_group
from verl_focal.evaluation.significance import _joint_counts, _subsample_differences


def sample_run(rng: np.random.Generator, success: np.ndarray, n: int) -> np.ndarray:
    """(P, n) correctness: problem p's samples are iid Bernoulli(success[p])."""
    return rng.random((success.size, n)) < success[:, None]


def test_detects_a_known_pass_at_1_difference():
    rng = np.random.default_rng(11)
    success = rng.uniform(0.2, 0.8, size=60)
    a = sample_run(rng, success + 0.15, 256)
    b = sample_run(rng, success, 256)
    result = paired_subsampling_test(a, b, ks=(1, 64), m=64, iterations=4000, seed=3)
    r1 = result[1]
    assert r1.significant and r1.ci_low > 0
    assert r1.difference == pytest.approx(a.mean() - b.mean())
    assert r1.ci_low < r1.difference < r1.ci_high
    # The improvement sits on problems both runs solve often: pass@64 is ~1 for both, no verdict.
    assert not result[64].significant


def test_detects_a_known_pass_at_k_difference_on_rare_solutions():
    # A solves 30 hard problems 3% of the time, B never: pass@1 barely moves, pass@64 moves a lot.
    rng = np.random.default_rng(12)
    easy = rng.uniform(0.3, 0.7, size=30)
    a = np.concatenate([sample_run(rng, easy, 256), sample_run(rng, np.full(30, 0.03), 256)])
    b = np.concatenate([sample_run(rng, easy, 256), np.zeros((30, 256), dtype=bool)])
    result = paired_subsampling_test(a, b, ks=(1, 64), m=64, iterations=4000, seed=0)
    assert result[64].significant and result[64].ci_low > 0.2
    expected = np.mean(pass_at_k(256, a.sum(1), 64)) - np.mean(pass_at_k(256, b.sum(1), 64))
    assert result[64].difference == pytest.approx(expected)


def test_identical_runs_are_never_significant():
    rng = np.random.default_rng(0)
    a = sample_run(rng, rng.uniform(0, 1, 40), 64)
    for r in paired_subsampling_test(a, a.copy(), ks=(1, 16), m=16, iterations=1000).values():
        # the same indices are drawn for both runs, so every subsample difference is exactly 0
        assert (r.difference, r.ci_low, r.ci_high, r.significant) == (0.0, 0.0, 0.0, False)


def test_false_positive_rate_of_runs_from_one_model_is_at_most_alpha():
    # 100 replications of two independent runs of the *same* model. With fixed seeds the outcome is
    # deterministic, so this cannot flake; the bound is what a valid level-0.05 test guarantees
    # in expectation (5 of 100). The paper's percentile interval of the size-m statistic is about
    # sqrt((n - m) / m) = 1.7x too wide for pass@1 at m = n/4, so the true rate is ~1e-3 and the
    # expected count is ~0.1: a count above 5 means the interval is too narrow, i.e. a bug.
    rng = np.random.default_rng(2024)
    rejections = {1: 0, 16: 0}
    replications = 100
    for rep in range(replications):
        success = rng.beta(0.5, 0.5, size=30)
        a, b = sample_run(rng, success, 64), sample_run(rng, success, 64)
        for k, r in paired_subsampling_test(a, b, ks=(1, 16), m=16, iterations=500, seed=rep).items():
            rejections[k] += r.significant
    assert rejections[1] <= 0.05 * replications
    assert rejections[16] <= 0.05 * replications


def test_deterministic_in_seed():
    rng = np.random.default_rng(5)
    a, b = sample_run(rng, np.full(20, 0.5), 32), sample_run(rng, np.full(20, 0.4), 32)
    first = paired_subsampling_test(a, b, ks=(1, 8), m=8, iterations=3000, seed=7)
    assert first == paired_subsampling_test(a, b, ks=(1, 8), m=8, iterations=3000, seed=7)
    other = paired_subsampling_test(a, b, ks=(1, 8), m=8, iterations=3000, seed=8)
    assert other[1].difference == first[1].difference  # the point estimate does not depend on draws
    assert (other[1].ci_low, other[1].ci_high) != (first[1].ci_low, first[1].ci_high)


def test_subsample_mean_is_unbiased_for_full_sample_pass_at_k():
    # E over m-subsets of pass@k(m, X, k) is pass@k(n, c, k) exactly (a U-statistic); with B all
    # wrong the recorded difference is A's subsample pass@k.
    rng = np.random.default_rng(1)
    a = sample_run(rng, rng.uniform(0, 0.3, size=25), 40)
    b = np.zeros_like(a)
    table = _joint_counts(list(a), list(b))
    weights = np.full((1, 25), 1 / 25)
    diffs = _subsample_differences(table, weights, [1, 4, 10], m=10, iterations=40_000, seed=0)
    for j, k in enumerate([1, 4, 10]):
        exact = np.mean(pass_at_k(40, a.sum(1), k))
        standard_error = diffs[j, :, 0].std() / math.sqrt(40_000)
        assert abs(diffs[j, :, 0].mean() - exact) < 5 * standard_error + 1e-12


def test_shared_draw_matches_enumerating_every_index_subset():
    # One problem, n = 10, m = 4: the law of X_A - X_B under "the same indices for both runs" from
    # all C(10, 4) subsets, against the chained hypergeometric draws.
    a = np.array([1, 1, 1, 0, 0, 1, 0, 0, 1, 0], dtype=bool)
    b = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0, 0], dtype=bool)
    exact = {}
    for subset in itertools.combinations(range(10), 4):
        d = int(a[list(subset)].sum()) - int(b[list(subset)].sum())
        exact[d] = exact.get(d, 0) + 1 / math.comb(10, 4)
    diffs = _subsample_differences(_joint_counts([a], [b]), np.ones((1, 1)), [1], m=4, iterations=200_000, seed=0)
    observed = np.round(diffs[0, :, 0] * 4).astype(int)
    for d, p in exact.items():
        assert np.mean(observed == d) == pytest.approx(p, abs=0.005)
    assert set(np.unique(observed)) <= set(exact)


def test_by_group_reports_each_benchmark_and_the_macro_average():
    rng = np.random.default_rng(3)
    groups = ["aime"] * 10 + ["math"] * 30
    success = np.concatenate([np.full(10, 0.05), np.full(30, 0.6)])
    a, b = sample_run(rng, success + 0.1, 64), sample_run(rng, success, 64)
    results = paired_subsampling_test_by_group(a, b, groups, ks=(1, 16), m=16, iterations=2000)
    assert list(results) == ["aime", "math", MACRO]
    for k in (1, 16):
        for name, rows in (("aime", slice(0, 10)), ("math", slice(10, 40))):
            assert results[name][k].pass_a == pytest.approx(np.mean(pass_at_k(64, a[rows].sum(1), k)))
        assert results[MACRO][k].difference == pytest.approx(
            (results["aime"][k].difference + results["math"][k].difference) / 2
        )
        # the macro average is not the problem-weighted mean (10 vs 30 problems)
        assert results[MACRO][k].pass_a != pytest.approx(np.mean(pass_at_k(64, a.sum(1), k)))


def test_ragged_sample_counts_between_problems():
    rng = np.random.default_rng(4)
    a = [rng.random(n) < 0.5 for n in (8, 12, 20)]
    b = [rng.random(n) < 0.5 for n in (8, 12, 20)]
    result = paired_subsampling_test(a, b, ks=(1, 2), m=8, iterations=500)
    expected = np.mean([x.mean() for x in a]) - np.mean([x.mean() for x in b])
    assert result[1].difference == pytest.approx(expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(m=40), "fewer than the subsample size m=40"),
        (dict(m=8, ks=(1, 9)), "1 <= k <= m=8"),
        (dict(m=8, ks=(0,)), "1 <= k <= m=8"),
        (dict(m=0), "m \\(subsample size\\)"),
        (dict(m=8, iterations=0), "iterations"),
        (dict(m=8, alpha=1.5), "alpha"),
    ],
)
def test_bad_arguments(kwargs, message):
    a = np.ones((3, 32), dtype=bool)
    kwargs = {"ks": (1,), "iterations": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        paired_subsampling_test(a, a, **kwargs)


def test_mismatched_runs():
    with pytest.raises(ValueError, match="run A has 2 problems but run B has 3"):
        paired_subsampling_test(np.ones((2, 8), bool), np.ones((3, 8), bool), ks=(1,), m=4)
    with pytest.raises(ValueError, match="problem 1: run A has 8 samples but run B has 6"):
        paired_subsampling_test([np.ones(8, bool)] * 2, [np.ones(8, bool), np.ones(6, bool)], ks=(1,), m=4)
    with pytest.raises(ValueError, match="groups has 1 labels for 2 problems"):
        paired_subsampling_test_by_group(np.ones((2, 8), bool), np.ones((2, 8), bool), ["x"], ks=(1,), m=4)
