"""Before Ray starts: build the typed configs verl's workers build, run verl's own validation, and check that the
GPUs a run asks for exist.

Without this, ``python -m verl.trainer.main_ppo +recipe=... trainer.n_gpus_per_node=4`` with a mandatory value left
open (verl's ``actor_rollout_ref.rollout.name: ???``) starts Ray, TransferQueue and the worker groups, and fails
minutes later inside a worker (``omega_conf_to_dataclass(rollout)`` raises ``MissingMandatoryValue``); and a run
that asks for more GPUs than the machine or cluster has prints its config and then waits, silently, for resources
that never come. Here both stop the run in seconds, in the driver, with the key and the fix.

What is built, as verl 0.9.1 builds it (file references are into the installed ``verl`` package):

- every ``???`` left anywhere in the config (``OmegaConf.missing_keys``), then the whole config resolved once;
- ``verl.utils.config.validate_config`` (``trainer/main_ppo.py`` calls it too, after this callback): the actor's
  ``FSDPActorConfig``/``McoreActorConfig`` with its ``validate(n_gpus, ...)`` and the critic's when one is used;
- the rollout's ``RolloutConfig`` (``workers/engine_workers.py`` ``init_model``, ``experimental/agent_loop``),
  its checkpoint engine, and the reference policy's ``ActorConfig`` after the same ``log_prob_*`` renames that
  ``engine_workers.py`` applies (``init_model``, "build reference model");
- the reward manager's entry in verl's reward-loop registry, and the reward model's configs when it is enabled
  (verl reads the rest of the reward section key by key);
- the model's ``HFModelConfig`` when ``actor_rollout_ref.model.path`` is a local directory (it loads the tokenizer
  and config.json; a hub id is left to the workers, which download it).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

#: The fix to print for mandatory values a LAPO user is likely to leave open.
MISSING_VALUE_FIXES: dict[str, str] = {
    "actor_rollout_ref.rollout.name": (
        "actor_rollout_ref.rollout.name=vllm (the recipes set it; a config that drops the recipe's default must "
        "name a rollout engine: vllm or sglang on GPUs, or the CPU backend's hf: `lapo-verl overrides --cpu`)"
    ),
    "actor_rollout_ref.model.path": "actor_rollout_ref.model.path=<Hugging Face id or local model dir>",
}


@dataclass(frozen=True)
class ConfigProblem:
    """One reason verl's workers could not build their configs from this run's config."""

    key: str  # config section or key, e.g. "actor_rollout_ref.rollout"
    message: str  # what verl said
    fix: str = ""

    def render(self) -> str:
        text = f"  - {self.key}: {self.message}"
        return text + (f"\n    fix: {self.fix}" if self.fix else "")


def _plain_copy(cfg: DictConfig) -> DictConfig:
    """An unresolved, writable copy of the job config without Hydra's own ``hydra`` node (its ``${hydra:...}``
    interpolations only resolve inside Hydra's job context)."""
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)
    return OmegaConf.create(container)


def _one_line(err: BaseException) -> str:
    """``Type: first line`` of an error, of its cause too when Hydra wraps one (``InstantiationException``)."""
    text = (str(err).strip() or type(err).__name__).splitlines()[0]
    line = f"{type(err).__name__}: {text}"
    if err.__cause__ is not None:
        line += f" <- {_one_line(err.__cause__)}"
    return line[:500]


def _unused_sections(cfg: DictConfig) -> tuple[str, ...]:
    """Config sections verl 0.9.1 never builds for this run, so their ``???`` do not matter: the reward model's
    (``reward.reward_model.rollout.name: ???`` by default) unless it is enabled."""
    unused = []
    if not OmegaConf.select(cfg, "reward.reward_model.enable", default=False):
        unused.append("reward.reward_model.")
    return tuple(unused)


def missing_values(cfg: DictConfig) -> list[ConfigProblem]:
    """Every mandatory value (``???``) the config leaves open in a section verl builds, each with its fix."""
    copy = _plain_copy(cfg)
    unused = _unused_sections(copy)
    return [ConfigProblem(key, "mandatory value missing (???)", MISSING_VALUE_FIXES.get(key, f"add {key}=<value>"))
            for key in sorted(OmegaConf.missing_keys(copy)) if not key.startswith(unused)]


def _reference_policy_section(arr: DictConfig) -> DictConfig:
    """``actor_rollout_ref.ref`` renamed as ``workers/engine_workers.py`` (``init_model``) renames it before it
    builds the reference policy's ``ActorConfig`` (verl 0.9.1)."""
    ref = OmegaConf.to_container(arr.ref, resolve=True)
    ref["ppo_mini_batch_size"] = arr.actor.ppo_mini_batch_size
    ref["ppo_micro_batch_size"] = ref.pop("log_prob_micro_batch_size", None)
    ref["ppo_micro_batch_size_per_gpu"] = ref.pop("log_prob_micro_batch_size_per_gpu", None)
    ref["use_dynamic_bsz"] = ref.pop("log_prob_use_dynamic_bsz", False)
    ref["ppo_max_token_len_per_gpu"] = ref.pop("log_prob_max_token_len_per_gpu", None)
    return OmegaConf.create(ref)


def _rollout_fits_world(cfg: DictConfig) -> None:
    """The rollout engines tile the trainer's GPUs: ``workers/engine_workers.py`` (``init_model``, "build
    rollout") asserts ``world_size % (tensor x data x pipeline parallel size) == 0`` once the workers are up."""
    rollout = cfg.actor_rollout_ref.rollout
    engine_gpus = 1
    for key in ("tensor_model_parallel_size", "data_parallel_size", "pipeline_model_parallel_size"):
        engine_gpus *= int(rollout.get(key, 1) or 1)
    world = int(cfg.trainer.n_gpus_per_node) * int(cfg.trainer.nnodes)
    if world % engine_gpus:
        raise ValueError(f"rollout world_size {world} (trainer.n_gpus_per_node x trainer.nnodes) is not divisible by "
                         f"the {engine_gpus} GPUs of one rollout engine (tensor x data x pipeline parallel size)")


def _registered_reward_manager(name: str) -> None:
    """Raise, naming the known managers, when verl's reward-loop registry has no manager ``name``."""
    import verl.experimental.reward_loop.reward_manager  # noqa: F401  (registers verl's own managers)
    from verl.experimental.reward_loop.reward_manager.registry import get_reward_manager_cls

    get_reward_manager_cls(name)


def _is_local_model_dir(path: Any) -> bool:
    return path is not None and os.path.isfile(os.path.join(os.path.expanduser(str(path)), "config.json"))


def build_problems(cfg: DictConfig, *, load_model: bool = True) -> list[ConfigProblem]:
    """Build what verl's workers build from ``cfg`` and collect every failure. Empty when the run's config is
    sound as far as verl can tell without the hardware. ``cfg`` is not changed."""
    missing = missing_values(cfg)
    if missing:  # nothing below can build with a ??? left
        return missing
    copy = _plain_copy(cfg)
    try:
        OmegaConf.resolve(copy)
    except Exception as err:  # an interpolation that cannot resolve (a missing key, a failing resolver)
        return [ConfigProblem("<config>", _one_line(err))]

    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    problems: list[ConfigProblem] = []

    def attempt(key: str, build: Callable[[], Any], fix: str = "") -> None:
        try:
            build()
        except Exception as err:
            problems.append(ConfigProblem(key, _one_line(err), fix))

    use_ref = need_reference_policy(copy)

    def verl_validation() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # verl prints its own "passed" line when it runs it
            validate_config(copy, use_reference_policy=use_ref, use_critic=need_critic(copy))

    attempt("verl validate_config (actor, critic, batch sizes)", verl_validation)
    arr = copy.actor_rollout_ref
    attempt("actor_rollout_ref.rollout", lambda: omega_conf_to_dataclass(arr.rollout))
    if "checkpoint_engine" in arr.rollout:
        attempt("actor_rollout_ref.rollout.checkpoint_engine",
                lambda: omega_conf_to_dataclass(arr.rollout.checkpoint_engine))
    attempt("actor_rollout_ref.rollout.tensor_model_parallel_size", lambda: _rollout_fits_world(copy),
            "make trainer.n_gpus_per_node x trainer.nnodes a multiple of actor_rollout_ref.rollout.tensor_model_parallel_size "
            "(x its data_parallel_size and pipeline_model_parallel_size)")
    if use_ref:
        attempt("actor_rollout_ref.ref", lambda: omega_conf_to_dataclass(_reference_policy_section(arr)))
    manager = OmegaConf.select(copy, "reward.reward_manager", default=None)
    if manager is not None:  # verl reads this section key by key (its RewardManagerConfig is never instantiated)
        if manager.get("source", "register") == "register":
            attempt("reward.reward_manager.name", lambda: _registered_reward_manager(str(manager.name)),
                    "lapo-verl doctor shows why a LAPO reward manager did not register (verl hides plugin import errors)")
    if OmegaConf.select(copy, "reward.reward_model.enable", default=False):
        attempt("reward.reward_model", lambda: omega_conf_to_dataclass(copy.reward.reward_model))
    if load_model and _is_local_model_dir(arr.model.get("path")):
        attempt("actor_rollout_ref.model", lambda: omega_conf_to_dataclass(arr.model))
    return problems


# ------------------------------------------------------------------------------------------------ GPUs


@dataclass(frozen=True)
class GpuCapacity:
    """GPUs a run can get: per node, and where the number comes from (for the message)."""

    per_node: tuple[int, ...]  # GPUs of each node (one entry without a cluster)
    source: str
    #: a running cluster that already trains a verl run (its TransferQueue controller is alive)
    busy: bool = False

    def fits(self, n_gpus_per_node: int, nnodes: int) -> bool:
        """verl places ``n_gpus_per_node`` workers on each of ``nnodes`` nodes (one placement group per node)."""
        return sum(1 for gpus in self.per_node if gpus >= n_gpus_per_node) >= nnodes


def _running_cluster_address(cfg: DictConfig) -> str | None:
    """The address of the Ray cluster ``ray.init`` in verl's driver would join: ``ray_kwargs.ray_init.address``,
    ``RAY_ADDRESS``, or the cluster last started on this machine with ``ray start --head`` (Ray's own lookup,
    ``ray._private.services.get_ray_address_from_environment``: ``<temp dir>/ray_current_cluster``)."""
    address = OmegaConf.select(cfg, "ray_kwargs.ray_init.address", default=None) or os.environ.get("RAY_ADDRESS")
    if address and str(address) not in ("auto", "local"):
        return str(address)
    if str(address) == "local":
        return None
    from ray._private.utils import read_ray_address

    return read_ray_address(OmegaConf.select(cfg, "ray_kwargs.ray_init._temp_dir", default=None)) or None


#: verl 0.9.1's TransferQueue keeps one controller per Ray cluster: this named actor, which every V1 run's
#: ``tq.init()`` attaches to when it exists and creates otherwise (``transfer_queue/interface.py``: ``init`` ->
#: ``_init_from_existing``, "the provided conf will be ignored"). A second run that joins a cluster while the first
#: still trains shares the first one's queue, and the batches of the two runs mix. Seen on the CPU backend: two
#: 1-step runs joined to one cluster, one hung before its first step and the other's stage-1 length records counted
#: 3 distinct problems of the 4 it trained on.
TQ_CONTROLLER = {"name": "TransferQueueController", "namespace": "transfer_queue"}


#: seconds a TransferQueue controller found on the cluster may take to go away before it counts as a running run
ENDING_RUN_GRACE_S = 15.0


def _verl_run_alive(wait_s: float | None = None, poll_s: float = 0.5) -> bool:
    """Whether the joined Ray cluster holds a verl run's TransferQueue controller. One that goes away within
    ``wait_s`` (default :data:`ENDING_RUN_GRACE_S`) does not count: the actors of a run that just ended or was
    killed outlive its driver briefly."""
    import time

    import ray

    deadline = time.monotonic() + (ENDING_RUN_GRACE_S if wait_s is None else wait_s)
    while True:
        try:
            ray.get_actor(**TQ_CONTROLLER)
        except ValueError:  # no such named actor
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(poll_s)


def _cluster_capacity(address: str) -> GpuCapacity:
    """GPUs per alive node of a running Ray cluster, and whether a verl run already trains on it (joins it briefly
    as a driver, then leaves)."""
    import ray

    already = ray.is_initialized()
    if not already:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        per_node = tuple(int(node.get("Resources", {}).get("GPU", 0)) for node in ray.nodes() if node.get("Alive"))
        busy = _verl_run_alive()
    finally:
        if not already:
            ray.shutdown()
    return GpuCapacity(per_node or (0,), f"the running Ray cluster at {address} ({len(per_node)} node(s))", busy=busy)


def _local_capacity(cfg: DictConfig) -> GpuCapacity:
    declared = OmegaConf.select(cfg, "ray_kwargs.ray_init.num_gpus", default=None)
    if declared is not None:  # Ray advertises exactly this many (the CPU backend declares logical GPUs)
        return GpuCapacity((int(declared),), f"ray_kwargs.ray_init.num_gpus={declared}")
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # no torch or a broken CUDA install: Ray would see none either
        count = 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = "this machine (torch.cuda.device_count()" + (f", CUDA_VISIBLE_DEVICES={visible}" if visible else "") + ")"
    return GpuCapacity((count,), where)


def gpu_capacity(cfg: DictConfig) -> GpuCapacity:
    """What verl's ``ray.init`` will find: the running cluster it joins, or this machine. A cluster that was
    named explicitly but cannot be reached counts as no GPUs (the message says where it looked); a stale record
    of a local ``ray start`` is ignored, as ``ray.init`` then starts a new local instance."""
    address = _running_cluster_address(cfg)
    if not address:
        return _local_capacity(cfg)
    try:
        return _cluster_capacity(address)
    except Exception as err:
        explicit = OmegaConf.select(cfg, "ray_kwargs.ray_init.address", default=None) or os.environ.get("RAY_ADDRESS")
        if not explicit:
            return _local_capacity(cfg)
        return GpuCapacity((0,), f"the Ray cluster at {address}, which could not be reached ({_one_line(err)})")


def capacity_problem(cfg: DictConfig, capacity: GpuCapacity) -> ConfigProblem | None:
    """A problem when the run asks for more GPUs (per node, nodes) than ``capacity`` offers; verl would wait."""
    per_node = int(OmegaConf.select(cfg, "trainer.n_gpus_per_node", default=1))
    nnodes = int(OmegaConf.select(cfg, "trainer.nnodes", default=1))
    if capacity.fits(per_node, nnodes):
        return None
    have = ", ".join(str(g) for g in capacity.per_node)
    message = (f"the run asks for {nnodes} node(s) x {per_node} GPU(s) (trainer.nnodes x trainer.n_gpus_per_node); "
               f"{capacity.source} has {have} GPU(s) per node. verl would wait for them without a message.")
    if nnodes > 1 and len(capacity.per_node) == 1:
        fix = ("start the Ray cluster first: `ray start --head` on this node and `ray start --address=<head>:6379` "
               "on each other node, then run this command on the head node (or set trainer.nnodes=1)")
    elif os.environ.get("VERL_PLATFORM") != "cpu" and max(capacity.per_node) == 0:
        fix = (f"no GPU here: run on a GPU machine, or use the CPU backend for a tiny test run "
               f"(eval \"$(lapo-verl overrides --env)\" and add $(lapo-verl overrides --cpu --tiny))")
    else:
        fix = f"set trainer.n_gpus_per_node={max(capacity.per_node)} (or fewer) and trainer.nnodes to the nodes you have"
    return ConfigProblem("trainer.n_gpus_per_node", message, fix)


def busy_cluster_problem(capacity: GpuCapacity) -> ConfigProblem | None:
    """A problem when the Ray cluster the run joins already trains another verl run (:data:`TQ_CONTROLLER`)."""
    if not capacity.busy:
        return None
    message = (f"{capacity.source} already trains a verl run (its TransferQueueController is alive). verl 0.9.1 "
               f"keeps one TransferQueue per Ray cluster (actor {TQ_CONTROLLER['name']} in namespace "
               f"{TQ_CONTROLLER['namespace']}) and a second run attaches to the first one's: the two runs' batches "
               "would mix, and one of them can hang.")
    fix = ("wait until that run has finished, or give this run a Ray cluster of its own: another `ray start --head "
           "--port <free port>` with ray_kwargs.ray_init.address=<its address>, or no address and no RAY_ADDRESS "
           "(a local Ray for this run alone)")
    return ConfigProblem("ray_kwargs.ray_init.address", message, fix)
