"""The package trainer, ``trainer.v1.trainer_mode=sync_pass_at_k``, and its lazy registration.

verl's v1 trainer registry (``@register_trainer(name)`` plus ``trainer.v1.trainer_mode=<name>``) is the
supported way to extend verl's trainer without editing it. ``PassAtKTrainer`` is verl's synchronous
``PPOTrainerSync`` plus:

- validation: unbiased pass@k per data source (``verl_focal.evaluation.validation``);
- training: every group-relative estimator gets verl's one-member-per-agent-session rule, and each step
  logs the ``focal/*`` metrics (``verl_focal.session_advantage``, ``verl_focal.focal_metrics``).

This module imports no verl at import time. ``register_pass_at_k_trainer()``, which the plugin entry
module calls, defers importing the v1 trainer stack (about 1 s per process) until some code imports
``verl.trainer.ppo.v1`` anyway, which only the TaskRunner does, right before it looks up
``trainer.v1.trainer_mode``; then ``_define_trainer`` defines and registers the class.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.abc
import importlib.util
import logging
import sys

#: ``trainer.v1.trainer_mode`` value that selects the package trainer.
PASS_AT_K_TRAINER_MODE = "sync_pass_at_k"
_V1_PACKAGE = "verl.trainer.ppo.v1"

logger = logging.getLogger("verl_focal")


@contextlib.contextmanager
def _advantage_by_session(metrics: dict):
    """Within the block, verl's v1 trainer computes advantages with ``compute_advantage_by_session``.

    ``PPOTrainer._compute_advantage`` calls the name ``compute_advantage_for_multi_trajectories`` of its
    own module (``verl/trainer/ppo/v1/trainer_base.py``); it is swapped for the block only, so the rest of
    verl's advantage step (KL in reward, rollout correction, writing back to TransferQueue) stays verl's.
    """
    from verl.trainer.ppo.v1 import trainer_base

    from verl_focal.session_advantage import compute_advantage_by_session

    verl_function = trainer_base.compute_advantage_for_multi_trajectories
    trainer_base.compute_advantage_for_multi_trajectories = functools.partial(
        compute_advantage_by_session, metrics=metrics
    )
    try:
        yield
    finally:
        trainer_base.compute_advantage_for_multi_trajectories = verl_function


def _define_trainer() -> type:
    """Define ``PassAtKTrainer`` on verl's ``PPOTrainerSync`` and register it; imports verl's v1 stack."""
    from omegaconf import DictConfig, open_dict
    from verl.trainer.ppo.v1 import register_trainer
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    from verl_focal import registry
    from verl_focal.config import read_focal_config
    from verl_focal.evaluation.validation import validation_pass_at_k_metrics

    class PassAtKTrainer(PPOTrainerSync):
        """``PPOTrainerSync`` with pass@k in validation, per-session group advantages and ``focal/*`` metrics."""

        def __init__(self, config: DictConfig):
            registry.check_run(config)  # our names selected, someone else's functions registered: stop here
            # PPOTrainer keys the replay buffer and refill logic on trainer_mode == "sync"; any other
            # name would switch on the asynchronous paths. Our name has done its job (class lookup).
            with open_dict(config):
                config.trainer.v1.trainer_mode = "sync"
            # Read (and validate) algorithm.focal now: a bad focal key fails before any worker starts.
            self._success_threshold = read_focal_config(config.algorithm).success_threshold
            super().__init__(config)

        def _compute_advantage(self, batch, metrics: dict):
            with _advantage_by_session(metrics):
                return super()._compute_advantage(batch, metrics)

        def _val_metrics_update(
            self, data_sources, sample_uids, reward_extra_infos_dict, sample_turns, expected_acc_counts=None
        ) -> dict[str, float]:
            metrics = super()._val_metrics_update(
                data_sources, sample_uids, reward_extra_infos_dict, sample_turns, expected_acc_counts=expected_acc_counts
            )
            metrics.update(
                validation_pass_at_k_metrics(
                    data_sources,
                    sample_uids,
                    reward_extra_infos_dict,
                    expected_acc_counts=expected_acc_counts,
                    success_threshold=self._success_threshold,
                )
            )
            return metrics

    PassAtKTrainer.__module__ = __name__
    PassAtKTrainer.__qualname__ = PassAtKTrainer.__name__
    return register_trainer(PASS_AT_K_TRAINER_MODE)(PassAtKTrainer)


def __getattr__(name: str):
    """``verl_focal.trainer.PassAtKTrainer``: defined (and registered) on first access."""
    if name == "PassAtKTrainer":
        _register_now()
        return globals()["PassAtKTrainer"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register_now() -> None:
    importlib.import_module(_V1_PACKAGE)  # first: its import may run _RegisterAfterExec, which registers
    if "PassAtKTrainer" not in globals():
        globals()["PassAtKTrainer"] = _define_trainer()


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
