"""verl platform ``cpu``: lets verl's FSDP2 trainer run on a machine without an accelerator.

Registered in verl's ``PlatformRegistry`` (``verl/plugin/platform/platform_manager.py``) and chosen with
``VERL_PLATFORM=cpu``. For laptops, tests and debugging; not for real training.

What the platform object answers, and why:

* ``device_name`` is ``"cpu"``, so ``auto_set_device`` (``verl/utils/device.py:151-165``) keeps
  ``trainer.device=cpu`` and meshes, ``.to(...)`` calls and FSDP2 run on CPU.
* ``current_device()`` is ``"cpu"``, not an index: verl calls ``.to(get_device_id())`` and
  ``torch.device(get_device_id())`` (``verl/utils/fsdp_utils.py``, ``verl/workers/engine/fsdp/transformer_impl.py``).
* ``device_module`` is :data:`cpu_device_module`, a stand-in for ``torch.cuda`` that answers the calls verl
  makes through ``get_torch_device()`` (memory statistics, ``get_device_name`` in
  ``verl/utils/flops_counter.py:80``, RNG state, streams, caches). Its ``is_available()`` is ``False``
  ("no accelerator"), which keeps verl's accelerator-only branches (peak-memory stats, device RNG) off.
* ``ray_resource_name()`` stays ``"GPU"``: ``verl/single_controller/ray/base.py:210`` always asks Ray for GPUs,
  so a CPU run declares logical GPUs with ``+ray_kwargs.ray_init.num_gpus=N`` (see ``overrides.py``).
* ``communication_backend_name()`` is ``"gloo"``.

Two things the platform object cannot reach are adapted in :func:`apply_cpu_adapters` (called only when this
platform is selected).
"""

from __future__ import annotations

import logging
import types
from contextlib import contextmanager
from typing import Any, Optional

import torch
from verl.plugin.platform import PlatformBase, PlatformRegistry

logger = logging.getLogger(__name__)

PLATFORM_NAME = "cpu"


def _zero(*_args, **_kwargs) -> int:
    return 0


def _noop(*_args, **_kwargs) -> None:
    return None


class _CpuDeviceModule(types.ModuleType):
    """``torch.cuda``-shaped namespace for the CPU; unknown names fall back to ``torch.cpu``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(torch.cpu, name)
        except AttributeError:
            raise AttributeError(f"lapo_verl CPU device module has no attribute {name!r}") from None


def _mem_get_info(*_args, **_kwargs) -> tuple[int, int]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return int(vm.available), int(vm.total)
    except Exception:  # psutil is a verl dependency, but stay safe
        return 0, 0


cpu_device_module = _CpuDeviceModule("lapo_verl_cpu_device")
cpu_device_module.__dict__.update(
    {
        "is_available": lambda: False,  # no accelerator: verl's device-only branches stay off
        "current_device": lambda: "cpu",
        "device_count": lambda: 1,
        "set_device": _noop,
        "synchronize": _noop,
        "empty_cache": _noop,
        "ipc_collect": _noop,
        "reset_peak_memory_stats": _noop,
        "reset_accumulated_memory_stats": _noop,
        "set_per_process_memory_fraction": _noop,
        "memory_allocated": _zero,
        "memory_reserved": _zero,
        "max_memory_allocated": _zero,
        "max_memory_reserved": _zero,
        "mem_get_info": _mem_get_info,
        "get_device_name": lambda *_a, **_k: "CPU",
        "manual_seed": lambda seed: torch.manual_seed(seed),
        "manual_seed_all": lambda seed: torch.manual_seed(seed),
        "get_rng_state": lambda *_a, **_k: torch.get_rng_state(),
        "set_rng_state": lambda state, *_a, **_k: torch.set_rng_state(state),
    }
)


@PlatformRegistry.register(platform=PLATFORM_NAME)
class PlatformCPU(PlatformBase):
    """CPU-only platform (gloo collectives, logical Ray GPUs). For laptops, tests and debugging."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return cpu_device_module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: only an explicit VERL_PLATFORM=cpu selects it.
        return False

    def current_device(self) -> str:  # type: ignore[override]  # verl passes it to .to() / torch.device()
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
        # Ray still hands out logical "GPU"s and sets this variable; nothing reads it on CPU.
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


_ADAPTERS_APPLIED = False


def _pin_memory_noop_without_accelerator(original):
    def pin_memory(self, *args, **kwargs):
        if not torch.accelerator.is_available():
            return self
        return original(self, *args, **kwargs)

    pin_memory.__wrapped__ = original  # type: ignore[attr-defined]
    pin_memory.__doc__ = original.__doc__
    return pin_memory


def apply_cpu_adapters() -> None:
    """The two adapters verl leaves no extension point for. Only called when VERL_PLATFORM=cpu. Idempotent.

    1. Process-group backend. ``verl/utils/distributed.py:89`` (``initialize_global_process_group_ray``) builds
       ``f"cpu:gloo,{device}:{backend}"``, i.e. ``"cpu:gloo,cpu:gloo"`` on this platform, which torch rejects
       ("Duplicate device type cpu"). The function's default ``backend=None`` becomes ``"gloo"``; callers
       that pass a backend (``verl/checkpoint_engine/base.py:351``) are unaffected. Changing ``__defaults__``
       on the function object also covers modules that imported it by name (``verl/workers/engine_workers.py:89``).
    2. ``Tensor.pin_memory``. ``verl/workers/engine/fsdp/transformer_impl.py:459-463`` always gives the
       forward-only reference model ``CPUOffloadPolicy(pin_memory=True)``; torch's FSDP2 then pins host memory,
       which raises "Cannot access accelerator device" without an accelerator. ``pin_memory`` returns the tensor
       itself when no accelerator exists (pinning is meaningless there). Not needed when the run has no
       reference model (``use_kl_loss=False`` and ``use_kl_in_reward=False``).
    """
    global _ADAPTERS_APPLIED
    if _ADAPTERS_APPLIED:
        return
    from verl.utils import distributed as verl_distributed

    fn = verl_distributed.initialize_global_process_group_ray
    defaults = list(fn.__defaults__ or ())
    if defaults and defaults[-1] is None:
        defaults[-1] = "gloo"
        fn.__defaults__ = tuple(defaults)
    else:  # signature changed upstream: fail loudly rather than silently build an NCCL group
        raise RuntimeError(
            "lapo_verl CPU backend: unexpected signature of verl.utils.distributed.initialize_global_process_group_ray"
            f" (defaults {fn.__defaults__!r}); this adapter targets verl 0.9.1"
        )
    if not hasattr(torch.Tensor.pin_memory, "__wrapped__"):
        torch.Tensor.pin_memory = _pin_memory_noop_without_accelerator(torch.Tensor.pin_memory)
    _ADAPTERS_APPLIED = True
