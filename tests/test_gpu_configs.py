"""The recipes are complete GPU training configs, checked before Ray starts (issue 19).

Every recipe, with the CPU backend's overrides and with the GPU shapes people run (1, 4 and 8 GPUs, 2 nodes x 8),
must build the typed configs verl's workers build (actor, ref, rollout, checkpoint engine, the reward manager's
registration) with no mandatory ``???`` left and pass verl's own ``validate_config``; a config that would fail in a
worker, or a run that asks for GPUs the machine does not have, stops in the preflight with the key and the fix. The
README's GPU commands, exactly as written, pass the preflight with stand-in inputs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lapo_test_utils.verl_config import compose_recipe
from lapo_verl import preflight
from lapo_verl.cpu_backend.overrides import CPU_TRAINER_OVERRIDES
from lapo_verl.verl_config_check import (GpuCapacity, build_problems, capacity_problem, gpu_capacity,
                                         missing_values)

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted(p.stem for p in (ROOT / "hydra_conf" / "recipe").glob("*.yaml") if p.stem != "paper_grpo")

#: hardware shapes: name -> (overrides, GPUs per node, nodes)
SHAPES: dict[str, tuple[tuple[str, ...], int, int]] = {
    "cpu": (tuple(CPU_TRAINER_OVERRIDES), 1, 1),
    "1gpu": (("trainer.n_gpus_per_node=1",), 1, 1),
    "4gpu": (("trainer.n_gpus_per_node=4",), 4, 1),
    "8gpu": (("trainer.n_gpus_per_node=8",), 8, 1),
    "2nodes": (("trainer.n_gpus_per_node=8", "trainer.nnodes=2"), 8, 2),
}
MODEL = "actor_rollout_ref.model.path=agentica-org/DeepScaleR-1.5B-Preview"


def _composed(recipe: str, shape: str):
    """The recipe composed for ``shape``. GPU shapes differ from the 4-GPU composition only in two plain
    ``trainer`` values, which a Hydra override sets exactly as ``OmegaConf.update`` does: one composition per
    recipe and backend keeps the matrix affordable."""
    overrides, per_node, nnodes = SHAPES[shape]
    if shape == "cpu":
        return compose_recipe(recipe, MODEL, *overrides, minimal=False)
    cfg = compose_recipe(recipe, MODEL, *SHAPES["4gpu"][0], minimal=False)
    OmegaConf.update(cfg, "trainer.n_gpus_per_node", per_node)
    OmegaConf.update(cfg, "trainer.nnodes", nnodes)
    return cfg


def _build(recipe: str, shape: str) -> None:
    _, per_node, nnodes = SHAPES[shape]
    cfg = _composed(recipe, shape)
    assert missing_values(cfg) == []
    assert build_problems(cfg) == [], (recipe, shape)
    OmegaConf.resolve(cfg)
    arr = cfg.actor_rollout_ref
    assert (cfg.trainer.n_gpus_per_node, cfg.trainer.nnodes) == (per_node, nnodes)
    if shape == "cpu":
        assert arr.rollout.name == "hf" and not arr.actor.entropy_from_logits_with_chunking
    else:  # the recipe's own GPU settings, not verl's defaults
        assert arr.rollout.name == "vllm" and arr.rollout.tensor_model_parallel_size == 1
        assert arr.rollout.gpu_memory_utilization == 0.6 and cfg.trainer.max_actor_ckpt_to_keep == 2
        assert arr.actor.entropy_from_logits_with_chunking and arr.ref.entropy_from_logits_with_chunking
        assert arr.model.enable_gradient_checkpointing


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("recipe", ["lapo_stage1", "lapo_stage2"])
def test_lapo_stages_build_for_every_hardware_shape(recipe, shape):
    _build(recipe, shape)


@pytest.mark.slow  # 9 recipes x 5 shapes of compositions (~3 s each on 2 cores); the two stages run in the fast suite
@pytest.mark.parametrize("recipe", [r for r in RECIPES if r not in ("lapo_stage1", "lapo_stage2")])
def test_every_recipe_builds_for_every_hardware_shape(recipe):
    for shape in SHAPES:
        _build(recipe, shape)


@pytest.mark.parametrize("response, update, logprob", [(4096, 10240, 15360), (8192, 18432, 27648),
                                                       (16384, 32768, 49152), (32768, 33792, 49152)])
def test_token_budgets_per_response_length(response, update, logprob):
    """2x / 3x (prompt + response), capped at 32,768 / 49,152 tokens per GPU, never below one full sequence."""
    cfg = compose_recipe("lapo_stage1", MODEL, f"data.max_response_length={response}", minimal=False)
    OmegaConf.resolve(cfg)
    arr = cfg.actor_rollout_ref
    assert arr.actor.ppo_max_token_len_per_gpu == update
    assert arr.rollout.log_prob_max_token_len_per_gpu == arr.ref.log_prob_max_token_len_per_gpu == logprob


def _stand_in_inputs(tmp_path: Path) -> list[str]:
    (tmp_path / "data").mkdir()
    for name in ("train", "val"):
        (tmp_path / "data" / f"{name}.parquet").write_text("stand-in")
    return ["data.train_files=data/train.parquet", "data.val_files=data/val.parquet"]


def test_missing_rollout_engine_stops_with_key_and_fix(tmp_path, monkeypatch, capsys):
    """verl's ``rollout.name: ???`` left open (a config without the recipe's default) stops in the preflight."""
    monkeypatch.chdir(tmp_path)
    cfg = compose_recipe("lapo_stage1", MODEL, *_stand_in_inputs(tmp_path), "actor_rollout_ref.rollout.name=???",
                         minimal=False)
    with pytest.raises(preflight.VerlConfigInvalid) as err:
        preflight.check(cfg, capacity=GpuCapacity((4,), "stand-in"))
    report = str(err.value)
    assert "actor_rollout_ref.rollout.name: mandatory value missing" in report
    assert "actor_rollout_ref.rollout.name=vllm" in report and "lapo-verl overrides --cpu" in report
    assert report in capsys.readouterr().err


def test_invalid_combinations_name_the_key(tmp_path):
    """verl's own checks, earlier: a rollout engine that does not tile the GPUs, micro-batches missing."""
    cfg = compose_recipe("lapo_stage1", MODEL, "trainer.n_gpus_per_node=3",
                         "actor_rollout_ref.rollout.tensor_model_parallel_size=2", minimal=False)
    (problem,) = build_problems(cfg)
    assert problem.key == "actor_rollout_ref.rollout.tensor_model_parallel_size"
    assert "not divisible" in problem.message and "tensor_model_parallel_size" in problem.fix
    cfg = compose_recipe("lapo_stage2", MODEL, "actor_rollout_ref.actor.use_dynamic_bsz=false", minimal=False)
    problems = build_problems(cfg)
    assert problems and all("micro_batch_size" in p.message for p in problems)
    assert problems[0].key.startswith("verl validate_config")
    cfg = compose_recipe("lapo_stage1", MODEL, "reward.reward_manager.name=no_such_manager", minimal=False)
    (problem,) = build_problems(cfg)
    assert "Unknown reward manager: no_such_manager" in problem.message and "lapo-verl doctor" in problem.fix


def test_a_ray_cluster_training_another_verl_run_stops_the_run(tmp_path, monkeypatch, capsys, ray_session):
    """verl 0.9.1 keeps one TransferQueue per Ray cluster: a run that joins a cluster where another run's
    TransferQueueController is alive stops in the preflight (the two runs' batches would mix); a controller that
    goes away within the grace time (a run that just ended) does not count, and without one the run starts."""
    import threading

    from lapo_verl import verl_config_check

    ray = ray_session
    address = ray.get_runtime_context().gcs_address
    monkeypatch.setattr(verl_config_check, "ENDING_RUN_GRACE_S", 1.0)

    @ray.remote(num_cpus=0)
    class StandInController:  # the named actor verl's tq.init() creates, nothing else of TransferQueue
        def ping(self) -> int:
            return 1

    controller = StandInController.options(**verl_config_check.TQ_CONTROLLER).remote()
    ray.get(controller.ping.remote())
    try:
        capacity = verl_config_check._cluster_capacity(address)
        assert capacity.busy is True and address in capacity.source
        monkeypatch.chdir(tmp_path)
        cfg = compose_recipe("lapo_stage1", MODEL, *CPU_TRAINER_OVERRIDES, *_stand_in_inputs(tmp_path),
                             f"+ray_kwargs.ray_init.address={address}", minimal=False)
        with pytest.raises(preflight.RayClusterBusy) as err:
            preflight.check_verl_config(cfg, capacity=GpuCapacity((1,), capacity.source, busy=capacity.busy))
        report = str(err.value)
        assert "its Ray cluster is training another verl run" in report and "ray_kwargs.ray_init.address" in report
        assert "namespace transfer_queue" in report and "ray start --head" in report
        assert f"the running Ray cluster at {address} (1 node(s)) already trains a verl run (its " \
               "TransferQueueController is alive)" in report
        assert report in capsys.readouterr().err
        # a run that ends within the grace time: its controller goes, the new run may join
        threading.Timer(0.3, ray.kill, args=(controller,)).start()
        assert verl_config_check._verl_run_alive(wait_s=10.0) is False
        assert verl_config_check._cluster_capacity(address).busy is False
    finally:
        ray.kill(controller)


def test_gpu_capacity_rules(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # no Ray cluster of another process is seen
    four = compose_recipe("lapo_stage1", MODEL, "trainer.n_gpus_per_node=4", minimal=False)
    two_nodes = compose_recipe("lapo_stage1", MODEL, "trainer.n_gpus_per_node=8", "trainer.nnodes=2", minimal=False)
    monkeypatch.delenv("VERL_PLATFORM", raising=False)
    none_here = capacity_problem(four, GpuCapacity((0,), "this machine"))
    assert "asks for 1 node(s) x 4 GPU(s)" in none_here.message and "this machine has 0" in none_here.message
    assert "lapo-verl overrides --cpu" in none_here.fix
    too_few = capacity_problem(four, GpuCapacity((2,), "this machine"))
    assert "trainer.n_gpus_per_node=2" in too_few.fix
    assert capacity_problem(four, GpuCapacity((8,), "this machine")) is None
    one_node = capacity_problem(two_nodes, GpuCapacity((8,), "this machine"))
    assert "ray start --head" in one_node.fix
    assert capacity_problem(two_nodes, GpuCapacity((8, 8), "cluster")) is None
    assert capacity_problem(two_nodes, GpuCapacity((8, 4), "cluster")) is not None  # verl needs 8 on each node
    # where the number comes from: declared logical GPUs (the CPU backend), RAY_ADDRESS, a local `ray start`
    cpu = compose_recipe("lapo_stage1", MODEL, *CPU_TRAINER_OVERRIDES, minimal=False)
    assert gpu_capacity(cpu) == GpuCapacity((1,), "ray_kwargs.ray_init.num_gpus=1")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # nothing listens there
    monkeypatch.setattr("lapo_verl.verl_config_check._cluster_capacity",
                        lambda address: (_ for _ in ()).throw(ConnectionError(f"cannot reach {address}")))
    unreachable = gpu_capacity(four)
    assert unreachable.per_node == (0,) and "could not be reached" in unreachable.source
    monkeypatch.delenv("RAY_ADDRESS")
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:2")  # stale record of a local `ray start`
    assert "could not be reached" not in gpu_capacity(four).source  # ray.init would start a new local Ray


def _readme_gpu_commands() -> list[list[str]]:
    """The ``python -m verl.trainer.main_ppo`` commands of README's "Running LAPO on GPUs" section, as words."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Running LAPO on GPUs", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip().startswith("python -m verl.trainer.main_ppo"):
                commands.append(shlex.split(command, comments=True))
    return commands


def test_readme_gpu_commands_pass_the_preflight(tmp_path, monkeypatch):
    """Exactly as written (the preflight's GPU count given as the command's own, as on the GPU machine)."""
    commands = _readme_gpu_commands()
    assert len(commands) >= 2 and {c[3] for c in commands} >= {"+recipe=lapo_stage1", "+recipe=lapo_stage2"}
    monkeypatch.chdir(tmp_path)
    _stand_in_inputs(tmp_path)
    (tmp_path / "models" / "lapo_d").mkdir(parents=True)  # the merged stage-1 model (stage 2's input)
    plans = tmp_path / "runs" / "lapo" / "lapo" / "plans.json"
    plans.parent.mkdir(parents=True)
    plans.write_text(json.dumps({"format": "lapo-plans/1", "plans": {"p0": 100}, "unsolved": []}))
    for words in commands:
        recipe, overrides = words[3].removeprefix("+recipe="), words[4:]
        cfg = compose_recipe(recipe, *overrides, minimal=False)
        per_node = int(cfg.trainer.n_gpus_per_node)
        preflight.check(cfg, capacity=GpuCapacity((per_node,) * int(cfg.trainer.nnodes), "stand-in"))


@pytest.mark.slow  # one process that imports verl (~15 s)
def test_gpu_command_on_a_machine_without_gpus_stops_in_seconds(tmp_path):
    """The real Hydra callback path (verl's main_ppo): asking for 4 GPUs here stops before Ray, with the fix."""
    _stand_in_inputs(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "RAY_ADDRESS")}
    env.update(HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="", RAY_TMPDIR=str(tmp_path / "ray"))
    proc = subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", "+recipe=lapo_stage1",
                           "data.train_files=data/train.parquet", "data.val_files=data/val.parquet", MODEL,
                           "trainer.n_gpus_per_node=4"], capture_output=True, text=True, timeout=180, cwd=tmp_path,
                          env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "asks for 1 node(s) x 4 GPU(s)" in out and "has 0 GPU(s)" in out, out[-3000:]
    assert "ray init" not in out and "Traceback" not in out, out[-3000:]


def test_preflight_prints_the_memory_estimate_and_never_stops(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VERL_PLATFORM", raising=False)
    seven_b = "actor_rollout_ref.model.path=deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    too_big = compose_recipe("lapo_stage1", seven_b, *_stand_in_inputs(tmp_path), "trainer.n_gpus_per_node=2",
                             "data.max_response_length=32768", "actor_rollout_ref.rollout.gpu_memory_utilization=0.85",
                             minimal=False)
    preflight.check(too_big, capacity=GpuCapacity((2,), "stand-in"))  # warns, does not raise
    err = capsys.readouterr().err
    assert "MEMORY ESTIMATE (not measured)" in err and "WARNING (estimate): update" in err
    assert "change actor_rollout_ref.rollout.gpu_memory_utilization" in err
    fits = compose_recipe("lapo_stage1", MODEL, "data.train_files=data/train.parquet",
                          "data.val_files=data/val.parquet", minimal=False)
    preflight.check(fits, capacity=GpuCapacity((4,), "stand-in"))
    err = capsys.readouterr().err
    assert "memory estimate (not measured)" in err and "fits" in err and "WARNING" not in err
    cpu = compose_recipe("lapo_stage1", MODEL, "data.train_files=data/train.parquet",
                         "data.val_files=data/val.parquet", *CPU_TRAINER_OVERRIDES, minimal=False)
    preflight.check(cpu, capacity=GpuCapacity((1,), "stand-in"))
    assert "memory estimate" not in capsys.readouterr().err  # the CPU backend: no GPU to estimate
