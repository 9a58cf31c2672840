"""Paired m-out-of-n subsampling test for pass@k differences (the paper's Appendix Q; Politis et al. 1999).

Procedure (method.md section 5): for each problem draw ``m`` of the ``n`` generations without
replacement, *the same indices for both runs*; compute pass@1 and pass@k analytically on the
subsample, average over problems, and record the difference A - B. Repeat (50,000 times in the
paper). The difference is significant at two-sided level alpha when the central ``1 - alpha``
interval of the recorded differences excludes 0.

Vectorisation: pass@k on a subsample of size ``m`` depends only on the subsample's correct count,
so a table ``pass_at_k(m, 0..m, k)`` replaces any per-draw arithmetic. Drawing the same indices
for both runs makes the two counts a multivariate hypergeometric draw over the four index classes
"correct in both / A only / B only / neither", done as three chained ``numpy`` hypergeometric
draws that broadcast over problems and iterations. No index set is ever materialised.

The interval is the percentile interval of the subsample statistic, as in the paper; it is not
rescaled to size ``n`` (Politis-Romano would shrink it by about sqrt(m/n)), so the test is
conservative: for pass@1 at m = n/4 its false-positive rate is near 1e-3, far below alpha.
"""

from __future__ import annotations

import numbers
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from verl_focal.evaluation.passk import pass_at_k

#: Label of the unweighted mean over groups (benchmarks) in grouped results.
MACRO = "macro avg"

_CHUNK_CELLS = 2_000_000  # (iteration, problem) cells per chunk: ~150 MB of working arrays per thread


@dataclass(frozen=True)
class PairedDifference:
    """One verdict: pass@k of run A minus run B, with its subsampling interval."""

    k: int
    pass_a: float  # unbiased pass@k of A on all n samples
    pass_b: float
    difference: float  # pass_a - pass_b; also the mean of the subsample differences in expectation
    ci_low: float
    ci_high: float
    significant: bool  # the interval excludes 0
    alpha: float
    m: int
    iterations: int


def _joint_counts(correct_a: Sequence, correct_b: Sequence) -> np.ndarray:
    """(P, 4) int64 counts of indices correct in both, A only, B only, neither."""
    if len(correct_a) != len(correct_b):
        raise ValueError(f"run A has {len(correct_a)} problems but run B has {len(correct_b)}")
    table = np.empty((len(correct_a), 4), dtype=np.int64)
    for p, (a, b) in enumerate(zip(correct_a, correct_b)):
        a = np.asarray(a, dtype=bool).reshape(-1)
        b = np.asarray(b, dtype=bool).reshape(-1)
        if a.size != b.size:
            raise ValueError(
                f"problem {p}: run A has {a.size} samples but run B has {b.size}; the paired draw "
                "needs the same n for both runs (truncate both to the smaller n)"
            )
        both, in_a, in_b = (int(np.count_nonzero(x)) for x in (a & b, a, b))
        table[p] = (both, in_a - both, in_b - both, a.size - in_a - in_b + both)
    return table


def _subsample_differences(
    table: np.ndarray, weights: np.ndarray, ks: Sequence[int], m: int, iterations: int, seed: int
) -> np.ndarray:
    """Weighted pass@k differences A - B over ``iterations`` paired subsamples.

    Args:
        table: (P, 4) counts from ``_joint_counts``; every row sums to n_p >= m.
        weights: (G, P) averaging weights, one row per reported group.
    Returns:
        (K, iterations, G) float64.
    """
    n_both, n_a_only, n_b_only, n_neither = table.T
    n = table.sum(axis=1)
    lookup = np.stack([pass_at_k(m, np.arange(m + 1), k) for k in ks])  # (K, m + 1)
    num_problems = table.shape[0]
    chunk = max(1, min(iterations, _CHUNK_CELLS // max(num_problems, 1)))
    starts = list(range(0, iterations, chunk))
    # One child seed per chunk: the result depends on `seed` only, not on how threads interleave.
    seeds = np.random.SeedSequence(seed).spawn(len(starts))

    def run_chunk(index: int) -> np.ndarray:
        rng = np.random.default_rng(seeds[index])
        rows = min(chunk, iterations - starts[index])
        # Chained draws of one multivariate hypergeometric: m indices out of n in four classes.
        x_both = _hypergeometric(rng, n_both, n - n_both, np.full((rows, num_problems), m))
        x_a_only = _hypergeometric(rng, n_a_only, n_b_only + n_neither, m - x_both)
        x_b_only = _hypergeometric(rng, n_b_only, n_neither, m - x_both - x_a_only)
        count_a, count_b = x_both + x_a_only, x_both + x_b_only
        # 1-D table lookups per k: ~40x faster than one fancy index into the (K, m + 1) table.
        diff = np.stack([table_k[count_a] - table_k[count_b] for table_k in lookup])  # (K, rows, P)
        return diff @ weights.T

    # numpy's samplers release the GIL, so threads give real parallelism here.
    workers = min(len(starts), os.cpu_count() or 1, 4)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(run_chunk, range(len(starts))))
    return np.concatenate(parts, axis=1)


def _hypergeometric(rng: np.random.Generator, good: np.ndarray, bad: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Hypergeometric counts of shape ``draws.shape`` (rows, P), problem ``p`` having ``good[p]``,
    ``bad[p]``; drawn only for problems where both classes are non-empty (the rest are determined,
    and real benchmarks have many all-correct or all-wrong problems)."""
    counts = np.where(bad[None, :] == 0, draws, 0)
    mixed = np.flatnonzero((good > 0) & (bad > 0))
    if mixed.size:
        counts[:, mixed] = rng.hypergeometric(good[mixed], bad[mixed], draws[:, mixed])
    return counts


def _validate(ks, m, iterations, alpha, table: np.ndarray) -> tuple[list[int], int, int, float]:
    """Checked (ks, m, iterations, alpha) as plain Python numbers (they end up in JSON reports)."""
    if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1:
        raise ValueError(f"m (subsample size) must be an integer >= 1, got {m!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1 or max(ks) > m:
        raise ValueError(f"every k must satisfy 1 <= k <= m={m}, got ks={ks}")
    if table.shape[0] == 0:
        raise ValueError("no problems to compare")
    n = table.sum(axis=1)
    if np.any(n < m):
        p = int(np.argmax(n < m))
        raise ValueError(f"problem {p} has {int(n[p])} samples, fewer than the subsample size m={m}")
    return ks, int(m), int(iterations), float(alpha)


def _verdicts(table, weights, ks, m, iterations, alpha, seed) -> list[list[PairedDifference]]:
    """[group][k] verdicts for the weighted averages in ``weights`` (G, P)."""
    diffs = _subsample_differences(table, weights, ks, m, iterations, seed)
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2], axis=1)  # each (K, G)
    n = table.sum(axis=1)
    out = []
    for g in range(weights.shape[0]):
        row = []
        for j, k in enumerate(ks):
            pass_a = float(weights[g] @ pass_at_k(n, table[:, 0] + table[:, 1], k))
            pass_b = float(weights[g] @ pass_at_k(n, table[:, 0] + table[:, 2], k))
            lo, hi = float(low[j, g]), float(high[j, g])
            row.append(
                PairedDifference(
                    k=k, pass_a=pass_a, pass_b=pass_b, difference=pass_a - pass_b, ci_low=lo, ci_high=hi,
                    significant=not (lo <= 0.0 <= hi), alpha=alpha, m=m, iterations=iterations,
                )
            )
        out.append(row)
    return out


def paired_subsampling_test(
    correct_a: Sequence,
    correct_b: Sequence,
    *,
    ks: Sequence[int] = (1, 256),
    m: int = 256,
    iterations: int = 50_000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[int, PairedDifference]:
    """Paired m-out-of-n subsampling test of mean pass@k over problems, run A minus run B.

    Args:
        correct_a: per problem, the correctness of run A's samples: a (P, n) bool array or a
            sequence of P 1-D bool arrays (n may differ between problems, not between runs).
        correct_b: the same for run B, problems in the same order. Sample ``j`` of A and sample
            ``j`` of B are drawn together (the paper's "same draw for both models").
        ks: the k values to test, each ``1 <= k <= m``; the paper tests pass@1 and pass@256.
        m: subsample size per problem (paper: 256 of n = 1024).
        iterations: number of paired subsamples (paper: 50,000).
        alpha: two-sided level; the interval is the central ``1 - alpha`` one.
        seed: the result is a deterministic function of the inputs and ``seed``.

    Returns:
        ``{k: PairedDifference}``.
    """
    table = _joint_counts(correct_a, correct_b)
    ks, m, iterations, alpha = _validate(ks, m, iterations, alpha, table)
    weights = np.full((1, table.shape[0]), 1.0 / table.shape[0])
    return dict(zip(ks, _verdicts(table, weights, ks, m, iterations, alpha, seed)[0]))


def paired_subsampling_test_by_group(
    correct_a: Sequence,
    correct_b: Sequence,
    groups: Sequence[str],
    *,
    ks: Sequence[int] = (1, 256),
    m: int = 256,
    iterations: int = 50_000,
    alpha: float = 0.05,
    seed: int = 0,
    averages: Mapping[str, Sequence[str]] | None = None,
) -> Mapping[str, dict[int, PairedDifference]]:
    """The same test per group (benchmark, ``data_source``), for named averages over groups, and for the macro
    average over all groups.

    ``groups[p]`` names problem ``p``'s group. ``averages`` maps a name (``"avg math"``) to the groups it
    averages, unweighted (the paper's "Avg. Math" over six benchmarks). Every group's mean, every average and the
    mean of all group means (key ``MACRO``) are computed from the same draws: on each paired subsample an
    average is the mean of its groups' pass@k means, as on the full sample, and its interval is that of the
    recorded differences of this statistic, exactly as for one benchmark.
    """
    table = _joint_counts(correct_a, correct_b)
    ks, m, iterations, alpha = _validate(ks, m, iterations, alpha, table)
    if len(groups) != table.shape[0]:
        raise ValueError(f"groups has {len(groups)} labels for {table.shape[0]} problems")
    names = list(dict.fromkeys(groups))
    averages = dict(averages or {})
    for average, members in averages.items():
        unknown = [member for member in members if member not in names]
        if not members or unknown or average in names or average == MACRO:
            raise ValueError(f"average {average!r}: its groups must be some of {names}, got {list(members)}")
    labels = np.asarray(groups, dtype=object)
    rows = {}
    for name in names:
        member = labels == name
        rows[name] = np.where(member, 1.0 / np.count_nonzero(member), 0.0)
    for average, members in averages.items():
        rows[average] = np.mean([rows[member] for member in members], axis=0)
    rows[MACRO] = np.mean([rows[name] for name in names], axis=0)
    results = _verdicts(table, np.stack(list(rows.values())), ks, m, iterations, alpha, seed)
    return {name: dict(zip(ks, row)) for name, row in zip(rows, results)}
