"""Optional CPU backend: run verl's own ``main_ppo`` on a GPU-less host (tests, demos, laptops).

Importing this package does nothing. The backend is switched on by two environment variables in
the shell that launches ``python -m verl.trainer.main_ppo`` (Ray workers inherit them)::

    VERL_PLATFORM=cpu VERL_USE_EXTERNAL_MODULES=verl_focal.cpu.enable

``import verl`` then imports ``verl_focal.cpu.enable`` in every process, which registers

- ``PlatformCPU`` as verl platform ``cpu`` (``platform.py``),
- the ``hf_cpu`` rollout (``actor_rollout_ref.rollout.name=hf_cpu``): ``HFCPUReplica``
  (``hf_replica.py``), its ``HFGenerateServer`` actor (``hf_server.py``) and the trainer-side
  ``HFServerAdapter`` (``hf_adapter.py``).

The package's ``verl.plugins`` entry point never imports it, so GPU runs are unaffected.
``cpu_env()`` returns the variables; ``recipes/tiny/`` holds the matching Hydra settings.
"""

from __future__ import annotations

import os

ENABLE_MODULE = "verl_focal.cpu.enable"


def cpu_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a CPU ``main_ppo`` run: ``base`` (default ``os.environ``) plus the switches."""
    env = dict(os.environ if base is None else base)
    modules = [m for m in env.get("VERL_USE_EXTERNAL_MODULES", "").split(",") if m and m != ENABLE_MODULE]
    env.update(
        VERL_PLATFORM="cpu",
        VERL_USE_EXTERNAL_MODULES=",".join([ENABLE_MODULE, *modules]),
        # FSDP engines are registered for device "cuda"; this is verl's documented override of that lookup.
        VERL_ENGINE_DEVICE="cuda",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        WANDB_MODE="disabled",
        HYDRA_FULL_ERROR="1",
    )
    return env
