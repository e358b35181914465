"""The CPU backend registers through verl's registries, in a fresh verl process, only when VERL_PLATFORM=cpu.

Each check runs in a subprocess: registration is process-global, and this also exercises the real path
(``import verl`` -> ``verl.plugins`` entry point -> ``lapo_verl.plugin`` -> ``register_if_selected``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = r"""
import json, os
import verl  # loads the verl.plugins entry points
from verl.plugin.platform import PlatformRegistry, get_platform
from verl.workers.rollout import base
from verl.workers.rollout.replica import RolloutReplicaRegistry
from verl.utils.distributed import initialize_global_process_group_ray as init_pg
import torch
out = {
    "platforms": list(PlatformRegistry.registered_names()),
    "rollouts": sorted(name for name, mode in base._ROLLOUT_REGISTRY),
    "replicas": sorted(RolloutReplicaRegistry._registry),
    "engine_device": os.environ.get("VERL_ENGINE_DEVICE"),
    "pg_defaults": list(init_pg.__defaults__ or ()),
    "pin_patched": hasattr(torch.Tensor.pin_memory, "__wrapped__"),
}
if os.environ.get("VERL_PLATFORM") == "cpu":
    from verl.utils.device import auto_set_device, get_device_id, get_device_name, get_nccl_backend, get_torch_device
    from omegaconf import OmegaConf
    cfg = OmegaConf.create({"trainer": {"device": "cpu"}})
    auto_set_device(cfg)
    out.update(
        platform=type(get_platform()).__name__, device=get_device_name(), device_id=get_device_id(),
        backend=get_nccl_backend(), trainer_device=cfg.trainer.device,
        pinned=torch.ones(3).pin_memory().tolist(),
        replica_cls=RolloutReplicaRegistry.get("hf").__name__,
        adapter_cls=base.get_rollout_class("hf", "async").__name__,
        flops_device=get_torch_device().get_device_name(),
    )
    from verl.workers.engine.base import EngineRegistry
    import verl.workers.engine  # registers the engines
    out["engine"] = EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__
print("PROBE" + json.dumps(out))
"""


def _probe(**env_overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE")}
    env.update(env_overrides)
    res = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-4000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("PROBE")][-1]
    return json.loads(line[len("PROBE") :])


def test_inert_without_verl_platform():
    out = _probe()
    assert "cpu" not in out["platforms"]
    assert "hf" not in out["rollouts"] and "hf" not in out["replicas"]
    assert out["engine_device"] is None
    assert out["pg_defaults"] == [None, None]
    assert out["pin_patched"] is False


def test_selected_by_verl_platform_cpu():
    out = _probe(VERL_PLATFORM="cpu")
    assert "cpu" in out["platforms"] and out["platform"] == "PlatformCPU"
    assert out["device"] == "cpu" and out["device_id"] == "cpu" and out["backend"] == "gloo"
    assert out["trainer_device"] == "cpu"  # auto_set_device keeps it (it rewrote it to cuda without the platform)
    assert "hf" in out["rollouts"] and out["replica_cls"] == "HFReplica" and out["adapter_cls"] == "HFServerAdapter"
    assert out["engine_device"] == "cuda" and out["engine"] == "FSDPEngineWithLMHead"
    assert out["pg_defaults"] == [None, "gloo"]
    assert out["pinned"] == [1.0, 1.0, 1.0] and out["pin_patched"] is True
    assert out["flops_device"] == "CPU"


def test_explicit_engine_device_is_respected():
    out = _probe(VERL_PLATFORM="cpu", VERL_ENGINE_DEVICE="cuda")
    assert out["engine_device"] == "cuda"
