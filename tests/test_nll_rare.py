"""ΔNLL_rare's numpy math (verl_focal.evaluation.nll_rare) on hand-computed cases."""

import math

import numpy as np
import pytest

from verl_focal.evaluation.nll_rare import delta_nll_rare, length_normalised_nll, rare_correct_set


def test_length_normalised_nll_by_hand():
    logp = np.array([[-1.0, -3.0, -9.0], [-0.5, -7.0, -7.0]])
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    # row 0: -(-1 - 3) / 2 = 2; row 1: 0.5; padded positions (-9, -7) are ignored
    np.testing.assert_allclose(length_normalised_nll(logp, mask), [2.0, 0.5])


def test_length_normalised_nll_errors_name_the_input():
    with pytest.raises(ValueError, match="token_logprobs .* and mask"):
        length_normalised_nll(np.zeros((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"rows \[1\] have no response token"):
        length_normalised_nll(np.zeros((2, 3)), np.array([[1, 0, 0], [0, 0, 0]]))


def test_rare_set_is_top_fraction_highest_first():
    nll = np.array([0.1, 2.0, 0.5, 3.0, 1.0])
    np.testing.assert_array_equal(rare_correct_set(nll, 0.4), [3, 1])  # ceil(0.4 * 5) = 2
    np.testing.assert_array_equal(rare_correct_set(nll, 0.41), [3, 1, 4])  # ceil(2.05) = 3
    np.testing.assert_array_equal(rare_correct_set(nll, 1.0), [3, 1, 4, 2, 0])


def test_rare_set_keeps_at_least_one_and_one_percent_of_many():
    assert rare_correct_set(np.array([0.2, 0.9, 0.4]), 0.01).tolist() == [1]
    nll = np.arange(1000, dtype=float)
    assert rare_correct_set(nll, 0.01).tolist() == list(range(999, 989, -1))  # 10 of 1000


def test_rare_set_ties_break_by_index():
    nll = np.array([1.0, 5.0, 5.0, 1.0, 5.0])
    assert rare_correct_set(nll, 0.4).tolist() == [1, 2]
    assert rare_correct_set(nll, 0.8).tolist() == [1, 2, 4, 0]


def test_rare_set_errors_name_the_input():
    with pytest.raises(ValueError, match="base_nll must be a non-empty 1-D array"):
        rare_correct_set(np.array([]))
    with pytest.raises(ValueError, match=r"base_nll has non-finite values at \[1\]"):
        rare_correct_set(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="fraction must be in"):
        rare_correct_set(np.array([1.0]), 0.0)
    with pytest.raises(ValueError, match="fraction must be in"):
        rare_correct_set(np.array([1.0]), 1.5)


def test_delta_is_the_mean_paired_difference():
    base = np.array([1.0, 2.0, 3.0, 4.0])
    trained = np.array([1.5, 2.0, 4.0, 3.5])  # differences 0.5, 0, 1, -0.5
    result = delta_nll_rare(trained, base, n_bootstrap=500, seed=3)
    assert result.mean == pytest.approx(0.25)
    assert result.n == 4 and result.confidence == 0.95
    assert -0.5 <= result.low <= result.mean <= result.high <= 1.0


def test_bootstrap_interval_covers_the_mean_and_is_reproducible():
    rng = np.random.default_rng(0)
    base = rng.normal(2.0, 0.3, size=200)
    trained = base + rng.normal(0.4, 0.2, size=200)
    a = delta_nll_rare(trained, base, seed=7)
    b = delta_nll_rare(trained, base, seed=7)
    c = delta_nll_rare(trained, base, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.low < a.mean < a.high
    # the percentile interval of a mean of 200 draws is about mean +- 1.96 * sd / sqrt(200)
    half = 1.96 * np.std(trained - base) / math.sqrt(200)
    assert a.high - a.low == pytest.approx(2 * half, rel=0.15)
    wider = delta_nll_rare(trained, base, confidence=0.99, seed=7)
    assert wider.low < a.low and wider.high > a.high


def test_constant_difference_gives_a_point_interval():
    result = delta_nll_rare(np.full(5, 3.0), np.full(5, 2.5))
    assert (result.mean, result.low, result.high) == pytest.approx((0.5, 0.5, 0.5))


def test_delta_errors_name_the_input():
    with pytest.raises(ValueError, match="trained_nll .* and base_nll"):
        delta_nll_rare(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="trained_nll .* and base_nll"):
        delta_nll_rare(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match=r"trained_nll has non-finite values at \[2\]"):
        delta_nll_rare(np.array([0.0, 1.0, np.inf]), np.zeros(3))
    with pytest.raises(ValueError, match=r"base_nll has non-finite values at \[0\]"):
        delta_nll_rare(np.zeros(2), np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="confidence must be in"):
        delta_nll_rare(np.zeros(2), np.zeros(2), confidence=1.0)
    with pytest.raises(ValueError, match="n_bootstrap must be >= 1"):
        delta_nll_rare(np.zeros(2), np.zeros(2), n_bootstrap=0)
