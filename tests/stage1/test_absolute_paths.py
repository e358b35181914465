"""Issue 20 item 3: every LAPO path is absolute after the preflight, in the config verl's ``main`` receives.

Runs a real Hydra app on verl's ``ppo_trainer`` config with a recipe (so the ``lapo_preflight`` job callback runs
as under ``python -m verl.trainer.main_ppo``); its task function changes directory, as a worker on another node
would have another one, and resolves the config there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from lapo_test_utils.verl_config import compose_recipe

APP = textwrap.dedent('''
    import json, os, sys
    import hydra
    import verl
    from omegaconf import OmegaConf
    from lapo_verl.resources import register_resolvers

    CONFIG = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")

    @hydra.main(config_path=CONFIG, config_name="ppo_trainer", version_base=None)
    def main(cfg):
        register_resolvers()
        os.chdir("/")  # another process, another working directory
        OmegaConf.resolve(cfg)
        keys = ["lapo.output_root", "lapo.experiment_dir", "lapo.run_dir", "lapo.plans_path", "lapo.records.dir",
                "trainer.default_local_dir", "trainer.experiment_name", "data.lapo.run_dir", "algorithm.lapo.records.dir",
                "trainer.v1.sampler.sampler_kwargs.lapo.run_dir"]
        print("PATHS " + json.dumps({k: OmegaConf.select(cfg, k) for k in keys}))

    main()
''')


def test_lapo_paths_reach_verl_main_absolute(tmp_path):
    for name in ("train.parquet", "val.parquet"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "model").mkdir()
    (tmp_path / "app.py").write_text(APP)
    overrides = ["data.train_files=train.parquet", "data.val_files=val.parquet", "actor_rollout_ref.model.path=./model",
                 "lapo.output_root=runs/rel", "trainer.device=cpu", "lapo.preflight=false"]
    proc = subprocess.run([sys.executable, "app.py", "+recipe=lapo_stage1", *overrides], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PATHS "))
    got = json.loads(line[len("PATHS "):])
    # the same names the driver computes from the relative settings, made absolute against the command's directory
    want = compose_recipe("lapo_stage1", *overrides)
    from omegaconf import OmegaConf

    from lapo_verl.resources import register_resolvers

    register_resolvers()
    OmegaConf.resolve(want)
    root = str(tmp_path)
    assert got["lapo.output_root"] == os.path.join(root, "runs/rel")
    assert got["lapo.run_dir"] == os.path.join(root, want.lapo.run_dir)  # same digest as the relative config's
    assert got["lapo.records.dir"] == os.path.join(root, want.lapo.records.dir)
    assert got["lapo.plans_path"] == os.path.join(root, want.lapo.plans_path)
    assert got["trainer.default_local_dir"] == os.path.join(root, want.trainer.default_local_dir)
    assert got["trainer.experiment_name"] == want.trainer.experiment_name
    for key in ("data.lapo.run_dir", "trainer.v1.sampler.sampler_kwargs.lapo.run_dir"):
        assert got[key] == got["lapo.run_dir"]
    assert got["algorithm.lapo.records.dir"] == got["lapo.records.dir"]
