"""A CPU platform for verl's platform registry (``VERL_PLATFORM=cpu``).

verl 0.9.1 resolves every device question (device name, ``torch.<device>`` module, collective
backend, Ray resource) through ``verl.plugin.platform.get_platform()``. This platform answers them
for a GPU-less host:

- device ``cpu`` and collective backend ``gloo``;
- Ray resource ``GPU``: verl's worker groups only count GPU/NPU resources, so a CPU run starts Ray
  with logical GPUs (``+ray_kwargs.ray_init.num_gpus=1``) and each FSDP worker holds one;
- ``current_device()`` returns ``"cpu"`` (not an index), because FSDP2 and verl's helpers pass it
  straight to ``tensor.to(device=...)``;
- a device module whose memory and stream calls are CPU no-ops.

It is registered only when ``verl_focal.cpu`` is imported, and selected only by ``VERL_PLATFORM=cpu``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Optional

import torch

from verl.plugin.platform import PlatformBase


class CPUDeviceModule:
    """Stands in for ``torch.cuda`` where verl calls ``get_torch_device().<fn>``.

    Stream/event helpers come from ``torch.cpu``; memory management has nothing to do on CPU; the
    RNG state is the CPU generator's. Anything else raises ``AttributeError`` naming the call, so a
    new verl call site fails loudly instead of silently doing nothing.
    """

    # torch.cpu already provides these with CUDA-compatible signatures.
    Stream = torch.cpu.Stream
    Event = torch.cpu.Event
    current_stream = staticmethod(torch.cpu.current_stream)
    stream = staticmethod(torch.cpu.stream)
    synchronize = staticmethod(torch.cpu.synchronize)

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def current_device() -> str:
        return "cpu"

    @staticmethod
    def set_device(device: Any) -> None:
        return None

    @staticmethod
    def get_device_name(device: Any = None) -> str:
        return "cpu"

    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def ipc_collect() -> None:
        return None

    @staticmethod
    def set_per_process_memory_fraction(fraction: float, device: Any = None) -> None:
        return None

    @staticmethod
    def mem_get_info(device: Any = None) -> tuple[int, int]:
        # (free, total) of host memory; verl only logs these.
        import psutil

        vm = psutil.virtual_memory()
        return int(vm.available), int(vm.total)

    @staticmethod
    def memory_allocated(device: Any = None) -> int:
        return 0

    @staticmethod
    def memory_reserved(device: Any = None) -> int:
        return 0

    @staticmethod
    def max_memory_allocated(device: Any = None) -> int:
        return 0

    @staticmethod
    def max_memory_reserved(device: Any = None) -> int:
        return 0

    @staticmethod
    def reset_peak_memory_stats(device: Any = None) -> None:
        return None

    @staticmethod
    def manual_seed(seed: int) -> None:
        torch.manual_seed(seed)

    @staticmethod
    def manual_seed_all(seed: int) -> None:
        torch.manual_seed(seed)

    @staticmethod
    def get_rng_state(device: Any = None) -> torch.Tensor:
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state: torch.Tensor, device: Any = None) -> None:
        torch.set_rng_state(state)

    def __getattr__(self, name: str):
        # Only reached for names not defined above. Dunder lookups must fail normally (ABC, pickling
        # and copy probe them).
        raise AttributeError(
            f"verl called get_torch_device().{name}, which the verl-focal CPU platform does not provide; "
            "add it to verl_focal/cpu/platform.py:CPUDeviceModule"
        )


CPU_DEVICE_MODULE = CPUDeviceModule()


class PlatformCPU(PlatformBase):
    """verl platform for CPU-only hosts: device ``cpu``, backend ``gloo``, logical Ray ``GPU`` resources."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> CPUDeviceModule:
        return CPU_DEVICE_MODULE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: a GPU host must not fall into this platform. VERL_PLATFORM=cpu selects it.
        return False

    def current_device(self) -> str:  # type: ignore[override]  # verl passes it to .to(device=...)
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray sets CUDA_VISIBLE_DEVICES for logical GPUs; nothing on CPU reads it.
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None
