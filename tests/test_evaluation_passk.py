"""pass@k against exact rational arithmetic (fractions + math.comb), edge cases, shapes and errors."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verl_focal.evaluation import k_ladder, pass_at_k, pass_at_k_per_problem


def exact_pass_at_k(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def assert_relative(value: float, exact: Fraction, rtol: float = 1e-9) -> None:
    if exact == 0:
        assert value == 0.0
    else:
        assert abs(Fraction(value) - exact) <= rtol * exact, (value, float(exact))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_matches_exact_rational(ncK):
    n, c, k = ncK
    assert_relative(pass_at_k(n, c, k), exact_pass_at_k(n, c, k))


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (10, 0, 1, Fraction(0)),  # c = 0: never correct
        (10, 0, 10, Fraction(0)),
        (10, 10, 1, Fraction(1)),  # c = n: always correct
        (10, 10, 10, Fraction(1)),
        (10, 3, 8, Fraction(1)),  # n - c < k: every k-subset contains a correct sample
        (10, 1, 10, Fraction(1)),  # k = n with one correct
        (4, 1, 4, Fraction(1)),  # the example: verl's best@4 reports ~0.69 here
        (4, 1, 2, Fraction(1, 2)),
        (4, 1, 1, Fraction(1, 4)),
        (1, 0, 1, Fraction(0)),
        (1, 1, 1, Fraction(1)),
    ],
)
def test_edge_cases(n, c, k, expected):
    assert exact_pass_at_k(n, c, k) == expected
    value = pass_at_k(n, c, k)
    if expected in (0, 1):  # decided without floating-point arithmetic: exact
        assert value == expected
    assert_relative(value, expected, rtol=1e-15)


@pytest.mark.parametrize(
    "c, k",
    [(1, 1), (1, 2), (2, 1), (1, 50_000), (7, 1024), (100, 256), (5_000, 1), (99_000, 3), (99_999, 1), (50_000, 50_000), (1, 99_999)],
)
def test_large_n_exact(c, k):
    n = 100_000
    assert_relative(pass_at_k(n, c, k), exact_pass_at_k(n, c, k))


def test_small_values_keep_relative_precision():
    # 1 - ratio would cancel here; the expm1 form keeps ~1e-16 relative error.
    value = pass_at_k(100_000, 1, 1)
    assert value == pytest.approx(1e-5, rel=1e-12)


def test_scalar_in_float_out_and_array_shapes():
    assert isinstance(pass_at_k(8, 3, 2), float)
    assert isinstance(pass_at_k(np.int64(8), np.int32(3), 2), float)
    out = pass_at_k(np.array([8, 8, 16]), np.array([0, 3, 16]), 2)
    assert out.shape == (3,) and out.dtype == np.float64
    # broadcasting: (4, 1) counts against (3,) ks
    n = np.full((4, 1), 64)
    c = np.array([[0], [1], [32], [64]])
    ks = np.array([1, 8, 64])
    grid = pass_at_k(n, c, ks)
    assert grid.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            assert_relative(grid[i, j], exact_pass_at_k(64, int(c[i, 0]), int(ks[j])))
    # integral floats (counts that went through pandas) are accepted
    assert pass_at_k(np.array([8.0]), np.array([3.0]), 2.0)[0] == pytest.approx(float(exact_pass_at_k(8, 3, 2)))


def test_heterogeneous_n_and_k_in_one_call():
    rng = np.random.default_rng(0)
    n = rng.integers(1, 400, size=500)
    c = rng.integers(0, n + 1)
    k = rng.integers(1, n + 1)
    out = pass_at_k(n, c, k)
    for i in range(0, 500, 7):
        assert_relative(out[i], exact_pass_at_k(int(n[i]), int(c[i]), int(k[i])))


@pytest.mark.parametrize(
    "args, message",
    [
        ((4, 1, 0), "k must be >= 1"),
        ((4, 1, -3), "k must be >= 1"),
        ((4, 1, 5), "k must be <= num_samples"),
        ((4, -1, 1), "num_correct must be >= 0"),
        ((4, 5, 1), "num_correct must be <= num_samples"),
        ((4.5, 1, 1), "num_samples must be integers"),
        ((4, 1, 1.5), "k must be integers"),
        ((4, True, 1), "num_correct must be integers"),
        ((np.array([4, 4]), np.array([1, 5]), 1), r"at index \(1,\)"),
        ((np.array([4, 4]), np.array([1, 2, 3]), 1), "do not broadcast"),
    ],
)
def test_errors(args, message):
    with pytest.raises(ValueError, match=message):
        pass_at_k(*args)


def test_k_ladder():
    assert k_ladder(1) == [1]
    assert k_ladder(2) == [1, 2]
    assert k_ladder(1024) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert k_ladder(100) == [1, 2, 4, 8, 16, 32, 64, 100]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="max_k"):
            k_ladder(bad)


def test_per_problem_marks_short_problems_nan():
    # problems: (n, c) = (4, 1), (8, 0), (2, 2); ks 1, 4, 8 -> (K, P) = (3, 3)
    out = pass_at_k_per_problem([4, 8, 2], [1, 0, 2], [1, 4, 8])
    assert out.shape == (3, 3)
    np.testing.assert_allclose(out[0], [0.25, 0.0, 1.0])
    np.testing.assert_array_equal(out[1], [1.0, 0.0, np.nan])
    np.testing.assert_array_equal(out[2], [np.nan, 0.0, np.nan])
    with pytest.raises(ValueError, match="num_correct has 2"):
        pass_at_k_per_problem([4, 8, 2], [1, 0], [1])


@pytest.mark.parametrize("n", [2, 3, 4, 6, 10, 256, 1000])
def test_pass_at_1_is_exactly_the_correct_fraction(n):
    # c / n exactly: reports compare pass@1 with the fraction of correct samples, and a ladder in
    # log space lands an ulp off (pass@1 at n=4, c=2 came out 0.49999999999999994)
    c = np.arange(n + 1)
    assert np.array_equal(pass_at_k(n, c, 1), c / n)
