"""Closed-form results of F-GRPO (arXiv 2602.06717): Lemma 3.1 and the m_gamma step-size factor.

Pure numpy/math; every function broadcasts over array arguments like a numpy ufunc.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

#: Figure 3 of the paper plots N = 1..512; the default search range of ``tail_miss_argmax``.
FIGURE3_MAX_N = 512


def _probability(value, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0.0) or np.any(arr > 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return arr


def _group_size(n, name: str = "n") -> np.ndarray:
    arr = np.asarray(n)
    # Reject bools and non-integral floats: N counts rollouts, 2.5 of them is a caller's bug.
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer)
        or (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))
    ):
        raise ValueError(f"{name} must be an integer group size >= 1, got {n!r}")
    arr = arr.astype(np.int64)
    if np.any(arr < 1):
        raise ValueError(f"{name} must be an integer group size >= 1, got {n!r}")
    return arr


def _mu_tau(mu, tau) -> tuple[np.ndarray, np.ndarray]:
    mu = _probability(mu, "mu")
    tau = _probability(tau, "tau")
    if np.any(tau > mu):
        raise ValueError(
            f"tau (the rare subset's mass) must not exceed mu (the success probability): tau={tau!r}, mu={mu!r}"
        )
    return mu, tau


def active_probability(mu, n) -> np.ndarray:
    """Pr(A_N) = 1 - mu^N - (1 - mu)^N: the group has mixed rewards, so GRPO's signal is non-zero (Lemma 3.1).

    Args:
        mu: success probability mu_pos(x), in [0, 1]; any shape.
        n: group size N, integer >= 1; broadcasts against ``mu``.
    """
    mu = _probability(mu, "mu")
    n = _group_size(n)
    return np.clip(1.0 - mu**n - (1.0 - mu) ** n, 0.0, 1.0)


def tail_miss_probability(mu, tau, n) -> np.ndarray:
    """Pr(B_{E,N}) = (1 - tau)^N - (mu - tau)^N - (1 - mu)^N (Lemma 3.1, Eq. 8).

    The probability that a group of N i.i.d. rollouts is active (mixed rewards) and yet no rollout
    lands in the correct subset E of mass tau: the update then moves mass away from E.

    Args:
        mu: success probability mu_pos(x); 0 <= tau <= mu <= 1.
        tau: mass tau_E(x) of the target correct subset E.
        n: group size N, integer >= 1. All three broadcast together.

    Raises:
        ValueError: outside that domain, naming the argument.
    """
    mu, tau = _mu_tau(mu, tau)
    n = _group_size(n)
    # (a + b)^N >= a^N + b^N for a, b >= 0, so the exact value is >= 0; clip the rounding.
    return np.clip((1.0 - tau) ** n - (mu - tau) ** n - (1.0 - mu) ** n, 0.0, 1.0)


def tail_miss_argmax(mu, tau, max_n: int = FIGURE3_MAX_N) -> tuple[np.ndarray, np.ndarray]:
    """The integer group size N in 1..max_n with the highest tail-miss probability, and that probability.

    The paper gives no closed form for the argmax (the stationary point of the continuous relaxation
    is transcendental), so this scans every integer N; ties go to the smallest N.

    Returns:
        n_star: `int64` array of the broadcast shape of ``mu`` and ``tau`` (a Python int for scalars).
        probability: `float64` array, Pr(B_{E, n_star}) (a Python float for scalars).
    """
    mu, tau = _mu_tau(mu, tau)
    max_n = int(_group_size(max_n, "max_n"))
    n = np.arange(1, max_n + 1)
    probs = tail_miss_probability(mu[..., None], tau[..., None], n)
    best = np.argmax(probs, axis=-1)
    n_star, probability = (best + 1).astype(np.int64), np.take_along_axis(probs, best[..., None], axis=-1)[..., 0]
    if n_star.ndim == 0:
        return int(n_star), float(probability)
    return n_star, probability


def focal_lr_equivalent(gamma: float) -> float:
    """m_gamma: the mean focal weight over groups, weighted by their GRPO advantage size (Appendix N).

    With success rate mu uniform on [0, 1] and the mean |A^GRPO| of a group proportional to
    sqrt(mu (1 - mu)), focal weighting scales the average update by

        m_gamma = B(3/2, gamma + 3/2) / B(3/2, 3/2) = (4 / sqrt(pi)) * Gamma(gamma + 3/2) / Gamma(gamma + 3),

    which gives the learning rate of the paper's low-LR control (1e-6 * m_0.5 = 6.8e-7).

    Raises:
        ValueError: if ``gamma`` is not a finite number >= 0.
    """
    if isinstance(gamma, bool) or not isinstance(gamma, (Real, Integral)) or not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
    return math.exp(math.log(4.0 / math.sqrt(math.pi)) + math.lgamma(gamma + 1.5) - math.lgamma(gamma + 3.0))
