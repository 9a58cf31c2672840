"""pass@k in verl's training logs: the validation metrics, and a lazy registration of the trainer that logs them.

verl 0.9.1 reduces validation samples to ``mean@N``/``best@n`` only (``process_validation_metrics``);
``best@n`` is a bootstrap that is biased low and not pass@k. Its supported extension point is the
v1 trainer registry: ``@register_trainer(name)`` plus ``trainer.v1.trainer_mode=<name>``. The
subclass (``verl_focal.evaluation.trainer.PassAtKTrainer``) adds the metrics computed here to
those of ``PPOTrainer._val_metrics_update``.

This module imports no verl. ``register_pass_at_k_trainer()`` is what the plugin entry module
calls: it defers importing the v1 trainer stack (about 1 s per process) until some code
imports ``verl.trainer.ppo.v1`` anyway, which only the TaskRunner does, right before it looks up
``trainer.v1.trainer_mode``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
from collections import defaultdict
from typing import Any, Mapping, Sequence

import numpy as np

from verl_focal.evaluation.passk import k_ladder, pass_at_k_per_problem

#: ``trainer.v1.trainer_mode`` value that selects the pass@k-logging synchronous trainer.
PASS_AT_K_TRAINER_MODE = "sync_pass_at_k"
_V1_PACKAGE = "verl.trainer.ppo.v1"

logger = logging.getLogger("verl_focal")


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
            no sample count as incorrect, the policy verl applies to its own ``acc`` metrics.
        success_threshold: a numeric ``acc``/``reward`` is correct when strictly above it.

    Returns:
        ``val-core/<ds>/acc/pass@k`` for k = 1 and k = n (the headline pair: pass@1 and pass@N),
        ``val-aux/<ds>/acc/pass@k`` for the rest of the ladder 2, 4, 8, ... < n, and the same keys
        under ``<ds> = macro_avg`` (unweighted mean over data sources) when there are several. The
        variable is ``reward`` instead of ``acc`` when ``acc`` is absent. A prompt with fewer than
        ``k`` samples is left out of pass@k (it can only happen without ``expected_acc_counts``).
        Empty when every prompt has a single sample (pass@1 is then verl's ``mean@1``).
    """
    variable = "acc" if any(v is not None for v in reward_extra_infos.get("acc", ())) else "reward"
    values = reward_extra_infos.get(variable)
    if values is None or len(values) != len(data_sources) or len(sample_uids) != len(data_sources):
        raise ValueError(
            f"validation pass@k: need {len(data_sources)} values of {variable!r} and uids, got "
            f"{None if values is None else len(values)} and {len(sample_uids)}"
        )
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # ds -> uid -> [n, c]
    for source, uid, value in zip(data_sources, sample_uids, values):
        if value is None:
            continue
        entry = counts[str(source)][str(uid)]
        entry[0] += 1
        entry[1] += bool(value) if isinstance(value, (bool, np.bool_)) else float(value) > success_threshold
    for (source, uid), expected in (expected_acc_counts or {}).items():
        if str(source) in counts:
            entry = counts[str(source)][str(uid)]
            entry[0] = max(entry[0], int(expected))  # the missing sessions are failures: n grows, c does not

    metrics: dict[str, float] = {}
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
    for source, by_k in per_source.items():
        top = max(by_k)
        for k, value in by_k.items():
            section = "val-core" if k in (1, top) else "val-aux"
            metrics[f"{section}/{source}/{variable}/pass@{k}"] = value
    return metrics


def _register_now() -> None:
    importlib.import_module("verl_focal.evaluation.trainer")  # the class decorator registers it


class _RegisterAfterExec(importlib.abc.Loader):
    """Wraps the loader of ``verl.trainer.ppo.v1`` so that the trainer registers once it has executed."""

    def __init__(self, loader: importlib.abc.Loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self._loader  # hand back the real loader
        try:
            _register_now()
        except Exception as exc:  # noqa: BLE001 - never break verl's own import of its trainer
            logger.warning(
                "verl-focal: trainer.v1.trainer_mode=%s is unavailable: %s: %s",
                PASS_AT_K_TRAINER_MODE, type(exc).__name__, exc,
            )

    def __getattr__(self, name):  # get_source, get_resource_reader, ... of the real loader
        return getattr(self._loader, name)


class _V1ImportWatcher(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _V1_PACKAGE:
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the lookup below from finding itself
        spec = importlib.util.find_spec(fullname)  # the other finders (site-packages, editable installs)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterExec(spec.loader)
        return spec


def register_pass_at_k_trainer(lazy: bool = True) -> str:
    """Make ``trainer.v1.trainer_mode=sync_pass_at_k`` available in this process; returns the mode name.

    With ``lazy`` (what the plugin uses), the trainer class is defined and registered only when
    ``verl.trainer.ppo.v1`` is imported; processes that never import it (workers) pay nothing.
    Idempotent.
    """
    if not lazy or _V1_PACKAGE in sys.modules:
        _register_now()
    elif not any(isinstance(finder, _V1ImportWatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, _V1ImportWatcher())
    return PASS_AT_K_TRAINER_MODE
