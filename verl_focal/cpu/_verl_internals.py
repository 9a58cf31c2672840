"""Every private verl interface the CPU backend touches, in one place, behind one version check.

verl 0.9.1 has no CPU path. Three of the hooks the CPU backend needs are not public API:

1. ``verl.workers.rollout.base._ROLLOUT_REGISTRY``: the worker-side map from ``(rollout.name,
   mode)`` to a dotted adapter path. ``get_rollout_class`` reads it at call time and has no
   register function (the driver-side ``RolloutReplicaRegistry`` is public and used directly).
2. ``verl.utils.distributed.initialize_global_process_group_ray`` builds the backend string
   ``"cpu:gloo,{device}:{backend}"``; with device ``cpu`` that is ``"cpu:gloo,cpu:gloo"``, which
   ``torch.distributed.init_process_group`` rejects ("Duplicate device type cpu"). We de-duplicate the
   string in a wrapper around ``init_process_group``, installed only on the CPU platform.
3. The contracts of ``BaseRollout``/``RolloutReplica``/``TokenOutput`` and of the server actor
   methods that ``LLMServerClient`` and ``RolloutReplica`` call (``generate``, ``sleep``, ...). They
   are internal and changed between 0.8 and 0.9.

``check_verl_version`` fails with a clear message on any verl but 0.9.x (``verl_focal.versions``); docs/cpu.md
lists what to re-check when moving to another version.
"""

from __future__ import annotations

import functools

from verl_focal.versions import UnsupportedVerlVersion, require  # noqa: F401 - callers catch it from here

ROLLOUT_NAME = "hf_cpu"
ADAPTER_PATH = "verl_focal.cpu.hf_adapter.HFServerAdapter"


def check_verl_version() -> str:
    """The installed verl's version; ``UnsupportedVerlVersion`` naming it unless it is 0.9.x (docs/cpu.md)."""
    return require("cpu")


def register_rollout_adapter() -> None:
    """Map ``(hf_cpu, async)`` to our adapter in verl's private worker-side rollout registry."""
    from verl.workers.rollout import base

    registry = getattr(base, "_ROLLOUT_REGISTRY", None)
    if not isinstance(registry, dict):
        raise UnsupportedVerlVersion(
            "verl.workers.rollout.base._ROLLOUT_REGISTRY is missing or not a dict; the CPU rollout adapter "
            "cannot be registered on this verl version"
        )
    registry[(ROLLOUT_NAME, "async")] = ADAPTER_PATH


def dedupe_backend(backend: str | None) -> str | None:
    """``"cpu:gloo,cpu:gloo"`` -> ``"cpu:gloo"``: keep the first backend named for each device type."""
    if not backend or "," not in backend:
        return backend
    kept: dict[str, str] = {}
    for part in backend.split(","):
        device = part.split(":", 1)[0] if ":" in part else part
        kept.setdefault(device, part)
    return ",".join(kept.values())


def install_gloo_backend_dedupe() -> None:
    """Wrap ``torch.distributed.init_process_group`` so verl's doubled CPU backend string is accepted."""
    import torch.distributed as dist

    original = dist.init_process_group
    if getattr(original, "_verl_focal_dedupe", False):
        return

    @functools.wraps(original)
    def init_process_group(*args, **kwargs):
        if args:
            args = (dedupe_backend(args[0]), *args[1:])
        elif "backend" in kwargs:
            kwargs["backend"] = dedupe_backend(kwargs["backend"])
        return original(*args, **kwargs)

    init_process_group._verl_focal_dedupe = True
    dist.init_process_group = init_process_group
