"""One-step dynamics of the categorical policy (Section 3.2 and Appendices C, E, F of arXiv 2602.06717).

A softmax policy p = softmax(z) over a finite action set, binary rewards R_i in {R_w, R_c} (Eq. 1),
and a sampled multiset of N actions. The update is the TRPO-style linear surrogate
L = (1/N) * sum_{i in A u B} R_i p_i over the *distinct* sampled actions, so

    dz_i = (eta / N) * p_i * (R_i - S_R),   S_R = R_c P_pos + R_w P_neg,   R_i = 0 when i is unsampled    (Eq. 5)

Everything here is float64 numpy. Shapes: ``K`` actions; ``samples`` holds N action ids (repeats allowed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SampledSets:
    """The partition of the action set induced by a sampled multiset (notation of Section 3.2).

    Attributes:
        correct: bool (K,), the correct actions P (R_i = R_c).
        sampled_correct: bool (K,), A: distinct sampled correct actions.
        sampled_incorrect: bool (K,), B: distinct sampled incorrect actions.
        unsampled: bool (K,), U.
        reward_correct, reward_incorrect: R_c > R_w.
        group_size: N, the size of the multiset.
    """

    correct: np.ndarray
    sampled_correct: np.ndarray
    sampled_incorrect: np.ndarray
    unsampled: np.ndarray
    reward_correct: float
    reward_incorrect: float
    group_size: int


def _as_policy(p) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size < 2:
        raise ValueError(f"p must be a 1-D probability vector over >= 2 actions, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or abs(p.sum() - 1.0) > 1e-9:
        raise ValueError(f"p must be non-negative and sum to 1 (sum is {p.sum()!r})")
    return p


def sampled_sets(p, rewards, samples) -> SampledSets:
    """Split the actions into P, A, B and U for the sampled multiset ``samples``.

    Args:
        p: (K,) probability vector (validated here, used for its size).
        rewards: (K,) reward of each action, exactly two values R_w < R_c (Eq. 1).
        samples: (N,) sampled action ids in 0..K-1, repeats allowed.

    Raises:
        ValueError: naming ``p``, ``rewards`` or ``samples`` when it is malformed.
    """
    p = _as_policy(p)
    rewards = np.asarray(rewards, dtype=np.float64)
    if rewards.shape != p.shape:
        raise ValueError(f"rewards must have the shape of p {p.shape}, got {rewards.shape}")
    levels = np.unique(rewards)
    if levels.size != 2 or not np.all(np.isfinite(levels)):
        raise ValueError(f"rewards must take exactly two finite values R_w < R_c (Eq. 1), got {levels[:5]!r}")
    samples = np.asarray(samples)
    if samples.ndim != 1 or samples.size == 0 or not np.issubdtype(samples.dtype, np.integer):
        raise ValueError(f"samples must be a non-empty 1-D array of action ids, got {samples!r}")
    if samples.min() < 0 or samples.max() >= p.size:
        raise ValueError(f"samples must be action ids in 0..{p.size - 1}, got range {samples.min()}..{samples.max()}")
    reward_incorrect, reward_correct = float(levels[0]), float(levels[1])
    correct = rewards == reward_correct
    sampled = np.zeros(p.size, dtype=bool)
    sampled[samples] = True
    return SampledSets(
        correct=correct,
        sampled_correct=sampled & correct,
        sampled_incorrect=sampled & ~correct,
        unsampled=~sampled,
        reward_correct=reward_correct,
        reward_incorrect=reward_incorrect,
        group_size=int(samples.size),
    )


def batch_baseline(p, sets: SampledSets) -> float:
    """S_R = R_c * P_pos + R_w * P_neg over the distinct sampled actions (Section 3.2)."""
    p = np.asarray(p, dtype=np.float64)
    return sets.reward_correct * p[sets.sampled_correct].sum() + sets.reward_incorrect * p[sets.sampled_incorrect].sum()


def categorical_update(p, rewards, samples, lr: float) -> np.ndarray:
    """The logit step dz of the linear surrogate (Eq. 5): dz_i = (eta/N) p_i (R_i - S_R), R_i = 0 if unsampled.

    Returns:
        (K,) float64 logit change; apply it as softmax(log p + dz) for the exact (non-linearised) step.
    """
    sets = sampled_sets(p, rewards, samples)
    p = np.asarray(p, dtype=np.float64)
    sampled_reward = np.where(sets.unsampled, 0.0, np.asarray(rewards, dtype=np.float64))
    return (lr / sets.group_size) * p * (sampled_reward - batch_baseline(p, sets))


def subset_mass_change(p, delta_z, subset) -> float:
    """First-order change of Q_S = sum_{i in S} p_i under a logit step (Appendix E, Eqs. 18-19).

    dQ_S = sum_{i in S} p_i dz_i  -  Q_S * sum_j p_j dz_j      (direct effect, softmax-normalisation coupling)

    Args:
        p: (K,) probability vector.
        delta_z: (K,) logit change.
        subset: (K,) bool mask of S.
    """
    p = np.asarray(p, dtype=np.float64)
    delta_z = np.asarray(delta_z, dtype=np.float64)
    subset = np.asarray(subset, dtype=bool)
    return float((p * delta_z)[subset].sum() - p[subset].sum() * (p * delta_z).sum())


def exact_mass_change(p, delta_z, subset) -> float:
    """The exact change of Q_S when the logits move by ``delta_z``: softmax(log p + dz)[S].sum() - p[S].sum()."""
    p = np.asarray(p, dtype=np.float64)
    logits = np.log(p, where=p > 0, out=np.full_like(p, -np.inf)) + np.asarray(delta_z, dtype=np.float64)
    new_p = np.exp(logits - logits.max())
    new_p /= new_p.sum()
    subset = np.asarray(subset, dtype=bool)
    return float(new_p[subset].sum() - p[subset].sum())


def _second_moments(p: np.ndarray, sets: SampledSets) -> dict[str, float]:
    sq = p * p
    return {
        "A2": sq[sets.sampled_correct].sum(),
        "B2": sq[sets.sampled_incorrect].sum(),
        "U_pos2": sq[sets.unsampled & sets.correct].sum(),
        "U_neg2": sq[sets.unsampled & ~sets.correct].sum(),
    }


def correct_mass_change(p, rewards, samples, lr: float) -> float:
    """First-order change of the total correct mass Q_pos under the Eq. 5 step (Appendix C, Eq. 17).

    dQ_pos = (eta/N) [ (R_c - S_R) Q_neg A_2 + (S_R - R_w) Q_pos B_2 + S_R (Q_pos U_neg,2 - Q_neg U_pos,2) ]
    """
    sets = sampled_sets(p, rewards, samples)
    p = np.asarray(p, dtype=np.float64)
    m = _second_moments(p, sets)
    s_r = batch_baseline(p, sets)
    q_pos = p[sets.correct].sum()
    q_neg = 1.0 - q_pos
    return float(
        (lr / sets.group_size)
        * (
            (sets.reward_correct - s_r) * q_neg * m["A2"]
            + (s_r - sets.reward_incorrect) * q_pos * m["B2"]
            + s_r * (q_pos * m["U_neg2"] - q_neg * m["U_pos2"])
        )
    )


def unsampled_correct_mass_change(p, rewards, samples, lr: float) -> float:
    """First-order change of the unsampled-correct mass Q_u,pos under the Eq. 5 step (Proposition 3.2, Eq. 10).

    dQ_u,pos = (eta/N) [ -S_R U_pos,2  -  Q_u,pos ((R_c - S_R) A_2 + (R_w - S_R) B_2 - S_R U_2) ]
                          (direct drift)     (normalisation coupling)

    On a reward-positive batch (S_R > 0) the direct drift is negative: unsampled correct actions lose mass.
    """
    sets = sampled_sets(p, rewards, samples)
    p = np.asarray(p, dtype=np.float64)
    m = _second_moments(p, sets)
    s_r = batch_baseline(p, sets)
    q_u_pos = p[sets.unsampled & sets.correct].sum()
    u2 = m["U_pos2"] + m["U_neg2"]
    coupling = (sets.reward_correct - s_r) * m["A2"] + (sets.reward_incorrect - s_r) * m["B2"] - s_r * u2
    return float((lr / sets.group_size) * (-s_r * m["U_pos2"] - q_u_pos * coupling))
