"""ΔNLL_rare (paper, Appendix M.2): drift of a trained policy away from rare correct behaviour.

Pure numpy. The recipe, with the two choices the paper leaves open made explicit:

1. From base-model rollouts keep the correct trajectories and score each by its length-normalised NLL under
   the base model, ``nll_i = -(1/L_i) * sum_t log pi_base(y_t | x, y_<t)``.
2. The rare-correct set R is the top ``fraction`` (1%) of those trajectories by ``nll_i``, cut **globally**
   (over all prompts together; the paper does not say global or per prompt).
3. For a trained policy, ``ΔNLL_rare = (1/|R|) * sum_{i in R} (nll_trained_i - nll_base_i)``: a **mean** over
   trajectories (the paper does not name the aggregation), with a percentile bootstrap interval that resamples
   trajectories.

Lower is better: less probability mass lost on the rare correct solutions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The paper's cut: the top 1% of correct base-model trajectories by NLL.
RARE_FRACTION = 0.01


def length_normalised_nll(token_logprobs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-trajectory mean negative log-likelihood over the response tokens.

    Args:
        token_logprobs: (B, T) log pi(y_t | x, y_<t) of each response token.
        mask: (B, T) 1 on response tokens, 0 on padding; every row needs at least one token.

    Returns:
        (B,) ``-sum_t mask * logp / sum_t mask``.
    """
    logp = np.asarray(token_logprobs, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    if logp.shape != m.shape or logp.ndim != 2:
        raise ValueError(f"token_logprobs {logp.shape} and mask {m.shape} must be equal (B, T) shapes")
    lengths = m.sum(axis=1)
    if np.any(lengths <= 0):
        raise ValueError(f"rows {np.flatnonzero(lengths <= 0).tolist()[:5]} have no response token")
    return -(logp * m).sum(axis=1) / lengths


def rare_correct_set(base_nll: np.ndarray, fraction: float = RARE_FRACTION) -> np.ndarray:
    """Indices of the rare-correct set: the ``ceil(fraction * T)`` correct trajectories with the highest NLL.

    Args:
        base_nll: (T,) length-normalised NLL under the base model of each *correct* base trajectory.
        fraction: share kept, in (0, 1]; at least one trajectory is kept.

    Returns:
        (R,) int indices into ``base_nll``, highest NLL first (ties broken by index, so the set is reproducible).
    """
    nll = np.asarray(base_nll, dtype=np.float64)
    if nll.ndim != 1 or nll.size == 0:
        raise ValueError(f"base_nll must be a non-empty 1-D array, got shape {nll.shape}")
    if not np.all(np.isfinite(nll)):
        raise ValueError(f"base_nll has non-finite values at {np.flatnonzero(~np.isfinite(nll)).tolist()[:5]}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    keep = max(1, math.ceil(fraction * nll.size))
    order = np.lexsort((np.arange(nll.size), -nll))  # NLL descending, then index ascending
    return order[:keep]


@dataclass(frozen=True)
class DeltaNLL:
    """ΔNLL_rare of one trained policy: mean over the rare set with a bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float


def delta_nll_rare(
    trained_nll: np.ndarray,
    base_nll: np.ndarray,
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> DeltaNLL:
    """``mean(trained_nll - base_nll)`` over the rare set, with a percentile bootstrap interval.

    Args:
        trained_nll: (R,) length-normalised NLL of each rare-set trajectory under the trained policy.
        base_nll: (R,) the same trajectories under the base policy (paired with ``trained_nll``).
        n_bootstrap: bootstrap resamples of the R paired differences.
        confidence: two-sided interval level in (0, 1).
        seed: numpy generator seed (the interval is reproducible).
    """
    trained = np.asarray(trained_nll, dtype=np.float64)
    base = np.asarray(base_nll, dtype=np.float64)
    if trained.shape != base.shape or trained.ndim != 1 or trained.size == 0:
        raise ValueError(f"trained_nll {trained.shape} and base_nll {base.shape} must be equal non-empty (R,)")
    for name, values in (("trained_nll", trained), ("base_nll", base)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} has non-finite values at {np.flatnonzero(~np.isfinite(values)).tolist()[:5]}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    diff = trained - base
    rng = np.random.default_rng(seed)
    draws = diff[rng.integers(0, diff.size, size=(n_bootstrap, diff.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return DeltaNLL(float(diff.mean()), float(low), float(high), int(diff.size), confidence)
