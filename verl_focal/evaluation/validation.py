"""Unbiased pass@k of one validation pass, as verl's validation metrics (pure numpy, no verl).

verl 0.9.1 reduces validation samples to ``mean@N``/``best@n`` only (``process_validation_metrics``);
``best@n`` is a bootstrap that is biased low and not pass@k. The package trainer
(``verl_focal.trainer``, ``trainer.v1.trainer_mode=sync_pass_at_k``) adds these metrics to those of
``PPOTrainer._val_metrics_update``.

Counting rule, shared with ``verl-focal eval``: a session that produced no sample counts as incorrect
(n is the expected count, c counts the samples present), and how many were missing is reported.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

import numpy as np

from verl_focal.evaluation.passk import k_ladder, pass_at_k_per_problem

Counts = dict[str, dict[str, list[int]]]  # data source -> uid -> [n, c]


def _count(data_sources, sample_uids, values, expected_acc_counts, success_threshold) -> tuple[Counts, dict]:
    """Per source and uid, [n, c] with the missing sessions as failures; and the missing count per source."""
    counts: Counts = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for source, uid, value in zip(data_sources, sample_uids, values):
        if value is None:
            continue
        entry = counts[str(source)][str(uid)]
        entry[0] += 1
        entry[1] += bool(value) if isinstance(value, (bool, np.bool_)) else float(value) > success_threshold
    missing: dict[str, int] = defaultdict(int)
    for (source, uid), expected in (expected_acc_counts or {}).items():
        if str(source) in counts:
            entry = counts[str(source)][str(uid)]
            missing[str(source)] += max(int(expected) - entry[0], 0)
            entry[0] = max(entry[0], int(expected))  # the missing sessions are failures: n grows, c does not
    return counts, missing


def _pass_at_k_by_source(counts: Counts) -> dict[str, dict[int, float]]:
    per_source: dict[str, dict[int, float]] = {}
    for source, by_uid in counts.items():
        n, c = np.array(list(by_uid.values())).T
        if n.max() < 2:
            continue
        ks = k_ladder(int(n.max()))
        table = pass_at_k_per_problem(n, c, ks)
        per_source[source] = {k: float(np.nanmean(row)) for k, row in zip(ks, table) if not np.isnan(row).all()}
    if len(per_source) > 1:
        shared = set.intersection(*(set(v) for v in per_source.values()))
        per_source["macro_avg"] = {k: float(np.mean([v[k] for v in per_source.values()])) for k in sorted(shared)}
    return per_source


def validation_pass_at_k_metrics(
    data_sources: Sequence[str],
    sample_uids: Sequence[str],
    reward_extra_infos: Mapping[str, Sequence[Any]],
    expected_acc_counts: Mapping[tuple[str, str], int] | None = None,
    success_threshold: float = 0.5,
) -> dict[str, float]:
    """Unbiased pass@k per data source, named like verl's validation metrics.

    Args:
        data_sources: (S,) data source of each validation sample.
        sample_uids: (S,) prompt uid of each sample (verl's ``uid``: the samples of one prompt share it).
        reward_extra_infos: verl's ``reward_extra_infos_dict``: ``"acc"`` (S,) when the reward
            function provides it, else ``"reward"`` (S,) thresholded at ``success_threshold``.
        expected_acc_counts: verl's ``{(data_source, uid): val_kwargs.n}``; sessions that produced
            no sample (or no score) count as incorrect, the policy verl applies to its own ``acc`` metrics.
        success_threshold: a numeric ``acc``/``reward`` is correct when strictly above it.

    Returns:
        ``val-core/<ds>/acc/pass@k`` for k = 1 and k = n (the headline pair: pass@1 and pass@N),
        ``val-aux/<ds>/acc/pass@k`` for the rest of the ladder 2, 4, 8, ... < n, and the same keys
        under ``<ds> = macro_avg`` (unweighted mean over data sources) when there are several;
        ``val-aux/<ds>/missing_sessions``, the sessions counted as failures because they produced no
        sample (with ``expected_acc_counts``). The variable is ``reward`` instead of ``acc`` when ``acc``
        is absent. A prompt with fewer than ``k`` samples is left out of pass@k (it can only happen
        without ``expected_acc_counts``). No pass@k when every prompt has a single sample (pass@1 is
        then verl's ``mean@1``).
    """
    variable = "acc" if any(v is not None for v in reward_extra_infos.get("acc", ())) else "reward"
    values = reward_extra_infos.get(variable)
    if values is None or len(values) != len(data_sources) or len(sample_uids) != len(data_sources):
        raise ValueError(
            f"validation pass@k: need {len(data_sources)} values of {variable!r} and uids, got "
            f"{None if values is None else len(values)} and {len(sample_uids)}"
        )
    counts, missing = _count(data_sources, sample_uids, values, expected_acc_counts, success_threshold)
    metrics: dict[str, float] = {}
    for source, by_k in _pass_at_k_by_source(counts).items():
        if expected_acc_counts is not None and source in counts:
            metrics[f"val-aux/{source}/missing_sessions"] = float(missing.get(source, 0))
        top = max(by_k)
        for k, value in by_k.items():
            section = "val-core" if k in (1, top) else "val-aux"
            metrics[f"{section}/{source}/{variable}/pass@{k}"] = value
    return metrics
