"""`lapo-verl resolve` composes main_ppo's config from verl's YAML files without importing verl (shell scripts call
it before every training run), and gets exactly the config verl's own module-based composition gets."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from lapo_test_utils.verl_config import compose_recipe as compose_like_main_ppo


@pytest.mark.parametrize("recipe", ["lapo_stage1", "lapo_stage2", "l1_max", "lapo_stage2_range"])
def test_light_composition_equals_verls(recipe, tmp_path):
    from lapo_verl.resolve import compose_recipe

    overrides = [f"lapo.output_root={tmp_path}", "actor_rollout_ref.model.path=/m", "data.max_response_length=64",
                 "trainer.n_gpus_per_node=2"]
    light = compose_recipe(recipe, overrides)
    verls = compose_like_main_ppo(recipe, *overrides, minimal=False)
    assert OmegaConf.to_container(light, resolve=True) == OmegaConf.to_container(verls, resolve=True)


def test_resolve_imports_neither_verl_nor_torch(tmp_path):
    code = ("import sys; from lapo_verl.resolve import main; main(['lapo_stage1', 'lapo.run_dir', '--', "
            f"'lapo.output_root={tmp_path}']); "
            "heavy = [m for m in ('verl', 'torch', 'tensordict', 'transformers') if m in sys.modules]; "
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith(f"{tmp_path}/lapo/stage1-")


def test_resolve_prints_the_absolute_paths_the_trainer_uses(tmp_path, monkeypatch, capsys):
    """A relative lapo.output_root comes back absolute against the working directory, as the trainer's job-start
    callback (lapo_verl.preflight.absolute_lapo_paths) sets it; the checkpoint directory follows the run directory."""
    from lapo_verl.preflight import absolute_lapo_paths
    from lapo_verl.resolve import compose_recipe, main

    monkeypatch.chdir(tmp_path)
    overrides = ["lapo.output_root=runs", "lapo.experiment=demo"]
    assert main(["lapo_stage1", "lapo.run_dir", "trainer.default_local_dir", "--", *overrides]) == 0
    run_dir, ckpt = capsys.readouterr().out.split()
    assert run_dir.startswith(f"{tmp_path}/runs/demo/stage1-") and ckpt.startswith(run_dir + "/")
    trainer_cfg = compose_recipe("lapo_stage1", overrides)
    assert absolute_lapo_paths(trainer_cfg)["lapo.run_dir"] == run_dir
