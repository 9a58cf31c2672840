"""verl plugin entry module: importing it registers verl-focal's algorithms into verl's registries.

verl imports this module from ``verl/__init__.py`` through the ``verl.plugins`` entry point, in
every process that imports verl (driver, TaskRunner, FSDP/Megatron workers, reward workers).
verl swallows exceptions from plugin imports and logs them at DEBUG, so this module never raises:
each registration step is guarded, problems are logged at WARNING (visible at verl's default log
level) and kept in ``LOAD_REPORT``, which ``verl-focal doctor`` prints.
"""

from __future__ import annotations

import logging
import traceback

logger = logging.getLogger("verl_focal")

#: What this import did: names registered per registry, names skipped (and why), and errors.
LOAD_REPORT: dict = {"registered": {"adv_estimator": [], "policy_loss": []}, "skipped": [], "errors": []}

#: Names that a healthy install has registered after ``import verl``.
EXPECTED_ESTIMATORS = ("focal_grpo", "focal_rloo")

#: Policy losses a healthy install has registered: ``dapo``, plus ``cispo`` only where the installed verl
#: has none of its own (verl 0.9.1 has one, and it is kept). Set by ``_register_losses``.
EXPECTED_LOSSES: tuple[str, ...] = ("dapo",)


def _register_names(kind: str, functions: dict, register) -> None:
    """Register each function with ``register(name, fn)``; record and warn about names someone else owns."""
    for name, fn in functions.items():
        if register(name, fn):
            LOAD_REPORT["registered"][kind].append(name)
        else:
            reason = "name already registered by another package; not overwritten"
            LOAD_REPORT["skipped"].append((kind, name, reason))
            logger.warning("verl-focal: %s %r not registered: %s", kind.replace("_", " "), name, reason)


def _register_estimators() -> None:
    from verl_focal import estimators

    ours = {
        "focal_grpo": estimators.compute_focal_grpo_outcome_advantage,
        "focal_rloo": estimators.compute_focal_rloo_outcome_advantage,
    }
    _register_names("adv_estimator", ours, estimators.register_estimator)


def _register_losses() -> None:
    global EXPECTED_LOSSES
    from verl_focal import losses

    wanted = losses.losses_to_register()
    EXPECTED_LOSSES = tuple(wanted)
    _register_names("policy_loss", wanted, losses.register_policy_loss)


def _register_trainers() -> None:
    # trainer.v1.trainer_mode=sync_pass_at_k (pass@k in validation logs). Registered lazily: the v1
    # trainer stack is imported only where verl imports it (the TaskRunner), not in every worker.
    from verl_focal.evaluation.training import register_pass_at_k_trainer

    register_pass_at_k_trainer()


_STEPS = [
    ("advantage estimators", _register_estimators),
    ("policy losses", _register_losses),
    ("pass@k trainer", _register_trainers),
]


def _load() -> None:
    for what, step in _STEPS:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - verl would hide it; we report it instead
            LOAD_REPORT["errors"].append(f"registering {what}: {traceback.format_exc()}")
            logger.warning(
                "verl-focal failed to register its %s: %s: %s. Run `verl-focal doctor` for the traceback.",
                what,
                type(exc).__name__,
                exc,
            )


_load()
