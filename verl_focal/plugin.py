"""verl plugin entry module: importing it registers verl-focal's algorithms into verl's registries.

Who imports it, in every process that imports verl (driver, TaskRunner, FSDP/Megatron and reward workers):
verl 0.9+ through the ``verl.plugins`` entry point; every verl through ``VERL_USE_EXTERNAL_MODULES=
verl_focal.plugin`` (the only way before 0.9; docs/install.md says how it reaches Ray's workers).
verl swallows exceptions from entry-point imports and logs them at DEBUG, so this module never raises:
each step is guarded, problems are logged at WARNING (visible at verl's default log level) and kept in
``LOAD_REPORT``, which ``verl-focal doctor`` prints. Registration goes through ``verl_focal.registry``.
"""

from __future__ import annotations

import logging
import traceback

from verl_focal import registry, versions

logger = logging.getLogger("verl_focal")

#: What this import did: names registered per registry, names skipped (and why), parts this verl cannot
#: run (and why), and errors.
LOAD_REPORT: dict = {
    "registered": {"adv_estimator": [], "policy_loss": []},
    "skipped": [],
    "unavailable": [],
    "errors": [],
}

#: Names that a healthy install has registered after ``import verl``.
EXPECTED_ESTIMATORS = registry.PLUGIN_NAMES["adv_estimator"]
EXPECTED_LOSSES = registry.PLUGIN_NAMES["policy_loss"]


def _register_all(kind: str, functions: dict) -> None:
    for name, fn in functions.items():
        if registry.register(kind, name, fn):
            LOAD_REPORT["registered"][kind].append(name)
        else:
            reason = "name already registered by another package; not overwritten"
            LOAD_REPORT["skipped"].append((kind, name, reason))
            logger.warning("verl-focal: %s %r not registered: %s", kind.replace("_", " "), name, reason)


def _register_estimators() -> None:
    from verl_focal import estimators

    _register_all(
        "adv_estimator",
        {
            "focal_grpo": estimators.compute_focal_grpo_outcome_advantage,
            "focal_rloo": estimators.compute_focal_rloo_outcome_advantage,
        },
    )


def _register_losses() -> None:
    from verl_focal import losses

    _register_all("policy_loss", {"dapo": losses.compute_policy_loss_dapo})


def _register_trainers() -> None:
    # trainer.v1.trainer_mode=sync_pass_at_k (pass@k in validation logs), on verl's v1 trainer (0.9+).
    # Registered lazily: the v1 stack is imported only where verl imports it (the TaskRunner).
    from verl_focal.trainer import PASS_AT_K_TRAINER_MODE, register_pass_at_k_trainer

    try:
        versions.require("trainer_mode")
    except versions.UnsupportedVerlVersion as exc:
        LOAD_REPORT["unavailable"].append(("trainer_mode", PASS_AT_K_TRAINER_MODE, str(exc)))
        return
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
