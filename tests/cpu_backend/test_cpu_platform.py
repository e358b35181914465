"""PlatformCPU and its torch.cuda-shaped device module (in-process: importing the module only adds a registry
entry that is never auto-detected)."""

from __future__ import annotations


def test_platform_answers():
    from lapo_verl.cpu_backend.platform import PlatformCPU, cpu_device_module
    from verl.plugin.platform import PlatformRegistry

    assert PlatformRegistry.get("cpu") is PlatformCPU
    p = PlatformCPU()
    assert (p.device_name, p.vendor_name, p.current_device()) == ("cpu", "cpu", "cpu")
    assert p.communication_backend_name() == "gloo" and p.ray_resource_name() == "GPU"
    assert p.ray_resource_options(1) == {"num_gpus": 1}
    assert p.is_available() and not p.is_platform_available(use_smi_check=True)  # only VERL_PLATFORM selects it
    assert p.device_module is cpu_device_module and p.get_device_capability() == (None, None)
    with p.nvtx_range("x"):
        pass


def test_device_module_covers_verl_calls():
    import torch

    from lapo_verl.cpu_backend.platform import cpu_device_module as dev

    assert dev.is_available() is False  # "no accelerator": verl's device-only branches stay off
    assert dev.max_memory_allocated() == 0 and dev.max_memory_reserved() == 0 and dev.memory_allocated() == 0
    free, total = dev.mem_get_info()
    assert 0 <= free <= total
    assert dev.get_device_name() == "CPU"
    dev.empty_cache(), dev.synchronize(), dev.set_device(0), dev.ipc_collect()
    state = dev.get_rng_state()
    a = torch.rand(2)
    dev.set_rng_state(state)
    assert torch.equal(a, torch.rand(2))
    assert dev.current_stream() is not None  # falls back to torch.cpu
    try:
        dev.definitely_not_there  # noqa: B018
    except AttributeError as exc:
        assert "definitely_not_there" in str(exc)
    else:
        raise AssertionError("missing attribute did not raise")
