"""Importing this module switches verl onto the CPU backend (see ``verl_focal.cpu``).

verl imports it from ``VERL_USE_EXTERNAL_MODULES`` in every process; errors propagate, so a
broken setup fails at ``import verl`` instead of as a stalled rollout later.
"""

from __future__ import annotations

import logging
import os

from verl_focal.cpu import _verl_internals

logger = logging.getLogger("verl_focal.cpu")


def _enable() -> None:
    if os.environ.get("VERL_PLATFORM", "").strip().lower() != "cpu":
        raise RuntimeError(
            "verl_focal.cpu.enable was imported (VERL_USE_EXTERNAL_MODULES) but VERL_PLATFORM is "
            f"{os.environ.get('VERL_PLATFORM')!r}; the CPU backend runs only with VERL_PLATFORM=cpu"
        )
    _verl_internals.check_verl_version()
    # VERL_ENGINE_DEVICE is verl's override for the engine lookup; FSDP engines register for "cuda".
    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")

    from verl.plugin.platform import PlatformRegistry
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    from verl_focal.cpu.platform import PlatformCPU

    PlatformRegistry.register(platform="cpu")(PlatformCPU)
    RolloutReplicaRegistry.register(_verl_internals.ROLLOUT_NAME, _load_replica)
    _verl_internals.register_rollout_adapter()
    _verl_internals.install_gloo_backend_dedupe()
    logger.info("verl-focal CPU backend enabled: platform 'cpu', rollout '%s'", _verl_internals.ROLLOUT_NAME)


def _load_replica():
    from verl_focal.cpu.hf_replica import HFCPUReplica

    return HFCPUReplica


_enable()
