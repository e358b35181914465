"""CPU backend for verl: a ``cpu`` platform and an ``hf`` (transformers) rollout.

**For laptops, tests and debugging, not for real training**: the rollout generates one request at a time with
plain ``transformers`` and training runs FSDP2 over gloo on CPU threads. It lets the real entry point
``python -m verl.trainer.main_ppo`` run end to end (rollout, reward, advantages, FSDP2 update, weight sync,
validation, checkpoints) on a machine without a GPU.

Selecting it (both are needed; :mod:`lapo_verl.cpu_backend.overrides` has the complete lists)::

    export VERL_PLATFORM=cpu                 # env: selects the platform, activates this backend
    python -m verl.trainer.main_ppo actor_rollout_ref.rollout.name=hf trainer.device=cpu ...

Everything is registered through verl's own registries, in every verl process, by the ``verl.plugins`` entry
point (``lapo_verl.plugin`` calls :func:`register_if_selected`):

* ``PlatformRegistry`` <- platform ``cpu`` (:mod:`.platform`);
* ``_ROLLOUT_REGISTRY[("hf", "async")]`` and ``RolloutReplicaRegistry["hf"]`` <- :mod:`.rollout`;
* env ``VERL_ENGINE_DEVICE=cuda`` is set (if unset): verl registers its FSDP engines only for
  ``device=["cuda", "npu"]`` (``verl/workers/engine/fsdp/transformer_impl.py:1143,1594``) and
  ``verl/workers/engine/base.py:404-406`` lets this variable choose them; the engine itself follows the platform.

Two small adapters where verl has no extension point, active only with ``VERL_PLATFORM=cpu``, are described in
:func:`lapo_verl.cpu_backend.platform.apply_cpu_adapters` (gloo process-group default; ``pin_memory`` no-op
without an accelerator).
"""

from __future__ import annotations

import os

PLATFORM_ENV = "VERL_PLATFORM"
CPU_PLATFORM = "cpu"
ROLLOUT_NAME = "hf"

_registered = False


def is_selected() -> bool:
    """True when the environment selects the CPU platform (``VERL_PLATFORM=cpu``)."""
    return os.environ.get(PLATFORM_ENV, "").strip().lower() == CPU_PLATFORM


def register_if_selected() -> None:
    """Register the CPU platform and the ``hf`` rollout with verl when ``VERL_PLATFORM=cpu``; otherwise do nothing.

    Called on ``import verl`` in every verl process; cheap and import-free unless the CPU platform is selected.
    Idempotent.
    """
    global _registered
    if _registered or not is_selected():
        return
    # verl/workers/engine/base.py:404-406: the FSDP engines are registered for "cuda"/"npu" only
    # (verl/workers/engine/fsdp/transformer_impl.py:1143,1594); this env var is verl's own switch to use them.
    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")

    from lapo_verl.cpu_backend.platform import apply_cpu_adapters  # registers the "cpu" platform on import

    apply_cpu_adapters()

    from verl.workers.rollout import base as rollout_base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = "lapo_verl.cpu_backend.rollout.HFServerAdapter"

    def _load_hf_replica():
        from lapo_verl.cpu_backend.rollout import load_replica_class

        return load_replica_class()

    RolloutReplicaRegistry.register(ROLLOUT_NAME, _load_hf_replica)
    _registered = True
