"""Recipes are complete training configs: every batch knob verl needs is set (token-balanced dynamic batches
derived from the sequence caps), and the bare ``main_ppo +recipe=...`` command fails first, before Ray, with a
message naming each missing input and the command that makes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lapo_test_utils.verl_config import compose_recipe, validate
from lapo_verl.config import LapoConfig
from lapo_verl.preflight import missing_inputs

RECIPE_DIR = Path(__file__).resolve().parents[1] / "hydra_conf" / "recipe"
RECIPES = sorted(p.stem for p in RECIPE_DIR.glob("*.yaml") if p.stem != "paper_grpo")


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_needs_no_micro_batch_sizes(recipe, tmp_path):
    """No *_micro_batch_size* override: verl's validate_config passes on the recipe alone."""
    cfg = compose_recipe(recipe, f"lapo.output_root={tmp_path}", "actor_rollout_ref.model.path=/m", minimal=False)
    validate(cfg)
    OmegaConf.resolve(cfg)
    assert LapoConfig.from_section(cfg.lapo).stage == cfg.lapo.stage  # the typed lapo settings accept the recipe
    arr = cfg.actor_rollout_ref
    seq = cfg.data.max_prompt_length + cfg.data.max_response_length
    assert arr.actor.use_dynamic_bsz and arr.ref.log_prob_use_dynamic_bsz and arr.rollout.log_prob_use_dynamic_bsz
    assert arr.actor.ppo_max_token_len_per_gpu == 2 * seq == 10240
    assert arr.ref.log_prob_max_token_len_per_gpu == arr.rollout.log_prob_max_token_len_per_gpu == 3 * seq


def test_token_limits_follow_the_lengths(tmp_path):
    cfg = compose_recipe("lapo_stage1", "data.max_prompt_length=100", "data.max_response_length=28",
                         "actor_rollout_ref.model.path=/m", minimal=False)
    OmegaConf.resolve(cfg)
    assert cfg.actor_rollout_ref.actor.ppo_max_token_len_per_gpu == 256
    assert cfg.actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu == 384
    # dynamic batches off: verl's micro-batch keys are back in charge (and required by validate_config)
    off = compose_recipe("lapo_stage1", "actor_rollout_ref.actor.use_dynamic_bsz=false",
                         "actor_rollout_ref.model.path=/m", minimal=False)
    assert not off.actor_rollout_ref.ref.log_prob_use_dynamic_bsz
    with pytest.raises(Exception, match="micro_batch_size"):  # hydra wraps verl's AssertionError
        validate(off)


def _cfg(recipe, tmp_path, *overrides):
    cfg = compose_recipe(recipe, f"lapo.output_root={tmp_path / 'runs'}", *overrides, minimal=False)
    OmegaConf.resolve(cfg)
    return cfg


def test_missing_inputs_names_each_file_and_its_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    problems = missing_inputs(_cfg("lapo_stage2", tmp_path))
    keys = [p.key for p in problems]
    assert keys == ["data.train_files", "data.val_files", "actor_rollout_ref.model.path", "lapo.plans_path"]
    assert "lapo-verl prepare-data" in problems[0].fix
    assert "verl.model_merger merge" in problems[2].fix  # stage 2 starts from the merged stage-1 model
    assert problems[3].path == f"{tmp_path}/runs/lapo/plans.json" and "lapo-verl plans --run" in problems[3].fix

    # once they exist, nothing is reported; a stage-1 run with records is named in the plans hint
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.parquet").write_text("x")
    (data / "val.parquet").write_text("x")
    (tmp_path / "model").mkdir()
    run = tmp_path / "runs" / "lapo" / "stage1-abcd1234" / "records"
    run.mkdir(parents=True)
    ok = ["data.train_files=data/train.parquet", "data.val_files=data/val.parquet", "actor_rollout_ref.model.path=./model"]
    problems = missing_inputs(_cfg("lapo_stage2", tmp_path, *ok))
    assert [p.key for p in problems] == ["lapo.plans_path"]
    assert str(run.parent) in problems[0].fix
    (tmp_path / "runs" / "lapo" / "plans.json").write_text("{}")
    assert missing_inputs(_cfg("lapo_stage2", tmp_path, *ok)) == []
    # stage 1 needs no plans; a Hugging Face id or a remote path is left to verl
    hub = ["data.train_files=data/train.parquet", "data.val_files=hdfs://cluster/val.parquet",
           "actor_rollout_ref.model.path=agentica-org/DeepScaleR-1.5B-Preview"]
    assert missing_inputs(_cfg("lapo_stage1", tmp_path, *hub)) == []
    # a local-looking model dir that does not exist is reported, with the stage-1 hint
    (problem,) = missing_inputs(_cfg("lapo_stage1", tmp_path, *hub[:2], "actor_rollout_ref.model.path=data/nomodel"))
    assert problem.key == "actor_rollout_ref.model.path" and "DeepScaleR-1.5B-Preview" in problem.fix


def _bare(recipe: str, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", f"+recipe={recipe}", *extra],
                          capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def _assert_actionable(proc: subprocess.CompletedProcess, *expected: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "cannot start" in out and "ray init" not in out and "Traceback" not in out, out[-3000:]
    assert "micro_batch_size" not in out, out[-3000:]
    for text in expected:
        assert text in out, (text, out[-3000:])


def test_bare_stage2_command_fails_first_with_actionable_message(tmp_path):
    proc = _bare("lapo_stage2", tmp_path)
    _assert_actionable(proc, "data.train_files=~/data/rlhf/gsm8k/train.parquet: not found",
                       "lapo-verl prepare-data", "actor_rollout_ref.model.path=~/models/deepseek-llm-7b-chat",
                       "verl.model_merger merge", "lapo.plans_path=runs/lapo/lapo/plans.json", "lapo-verl plans --run")


@pytest.mark.slow
def test_bare_command_of_every_recipe(tmp_path):
    """The bare command of each other recipe, all in one process (lapo_test_utils.main_ppo_commands: one import of
    verl instead of one per recipe), each from its own empty directory."""
    from lapo_test_utils.main_ppo_commands import run_commands

    recipes = [r for r in RECIPES if r != "lapo_stage2"]
    dirs = [tmp_path / r for r in recipes]
    for d in dirs:
        d.mkdir()
    results = run_commands([([f"+recipe={r}"], d) for r, d in zip(recipes, dirs, strict=True)],
                           env={**os.environ, "HF_HUB_OFFLINE": "1"})
    for recipe, (rc, out) in zip(recipes, results, strict=True):
        _assert_actionable(subprocess.CompletedProcess([recipe], rc, "", out),
                           "data.train_files=", "lapo-verl prepare-data", "actor_rollout_ref.model.path=")
        assert ("lapo.plans_path=" in out) == recipe.startswith("lapo_stage2"), (recipe, out[-2000:])
