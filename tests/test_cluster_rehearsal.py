"""The cluster rehearsal's control flow (recipes/cluster_rehearsal.sh): the recipes as they are, shortened, stage 1 ->
plans -> stage 2 -> a 2-problem vLLM evaluation, then the step table. Fast: verl and lapo-verl's heavy commands are
the stubs of test_recipe_pipeline.py (they log their arguments and write what the next step reads); the step table
itself is lapo-verl's real code."""

from __future__ import annotations

import stat
from pathlib import Path

from lapo_verl.runlog import step_table
from test_recipe_pipeline import ROOT, _run, _stubs, _trainings

STEP_LINE = ("step:{step} - timing_s/step:{t} - timing_s/gen:{g} - perf/max_memory_allocated_gb:{a} - "
             "perf/max_memory_reserved_gb:{r} - response_length/mean:900.0\n")


def _env(tmp_path: Path) -> dict[str, str]:
    env = _stubs(tmp_path)
    # the rehearsal asks the real Python where the packaged fixtures are (python -c); everything else is stubbed
    wrapper = tmp_path / "bin" / "python_c"
    wrapper.write_text(f'#!/usr/bin/env bash\n[[ $1 == -c ]] && exec "$REAL_PYTHON" "$@"\nexec {env["PYTHON"]} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    env.update(PYTHON=str(wrapper), NGPUS="4")
    return env


def test_rehearsal_runs_the_recipes_as_they_are(tmp_path):
    env = _env(tmp_path)
    proc, calls = _run(["bash", str(ROOT / "recipes/cluster_rehearsal.sh"), "reh"], env, tmp_path)
    s1, s2 = _trainings(calls)
    assert s1.split()[3] == "+recipe=lapo_stage1" and s2.split()[3] == "+recipe=lapo_stage2"
    for training in (s1, s2):
        args = training.split()[4:]
        keys = [a.split("=", 1)[0] for a in args]
        assert len(keys) == len(set(keys)), training
        for want in ("trainer.n_gpus_per_node=4", "trainer.nnodes=1", "data.max_response_length=4096",
                     "trainer.total_training_steps=2", "data.train_batch_size=16", "trainer.save_freq=2",
                     "actor_rollout_ref.rollout.n=8", "data.max_prompt_length=1024",
                     "data.train_files=reh/data/train.parquet", "data.val_files=reh/data/val.parquet"):
            assert want in args, (want, training)
        # no forced backend, strategy, parallelism or memory setting: the recipes' own
        assert not any(k.startswith(("actor_rollout_ref.rollout.name", "actor_rollout_ref.actor.strategy",
                                     "actor_rollout_ref.rollout.gpu_memory", "actor_rollout_ref.rollout.tensor",
                                     "trainer.device")) for k in keys), training
    assert "actor_rollout_ref.model.path=deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B" in s1.split()
    assert "actor_rollout_ref.model.path=reh/rehearsal/models/lapo_d" in s2.split()
    assert "lapo.plans_path=reh/rehearsal/plans.json" in s2.split()
    prepare = [c for c in calls if c.startswith("lapo-verl prepare-data")]
    assert len(prepare) == 1 and all(f"fixtures/{b}.jsonl" in prepare[0] for b in ("math500", "aime24", "amc23"))
    (evaluation,) = [c for c in calls if c.startswith("lapo-verl eval")]
    for want in ("--backend vllm", "--benchmarks math500", "--limit 2", "--samples 1", "--max-new-tokens 4096",
                 "--model reh/rehearsal/models/lapo_i"):
        assert want in evaluation, want
    assert [c for c in calls if c.startswith("lapo-verl steps")] == [
        "lapo-verl steps reh/rehearsal/logs/lapo_d.log reh/rehearsal/logs/lapo_i.log"]
    assert "[rehearsal] ok" in proc.stdout and "lapo_d " in proc.stdout  # the wall time per pipeline step


def test_rehearsal_refuses_a_machine_without_gpus(tmp_path):
    import subprocess

    env = _env(tmp_path)
    env.pop("NGPUS")
    env["PYTHON"] = env["REAL_PYTHON"]
    env["CUDA_VISIBLE_DEVICES"] = ""
    proc = subprocess.run(["bash", str(ROOT / "recipes/cluster_rehearsal.sh"), "reh"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no GPU visible here" in proc.stderr


def test_step_table_reports_time_and_peak_memory(tmp_path):
    logs = []
    for name, steps in (("lapo_d", [(1, 80.0, 60.0, 31.5, 40.0), (2, 70.0, 52.0, 33.0, 41.5)]), ("lapo_i", [])):
        log = tmp_path / f"{name}.log"
        log.write_text("ray init ...\n" + "".join(STEP_LINE.format(step=s, t=t, g=g, a=a, r=r) for s, t, g, a, r in steps))
        logs.append(log)
    table = step_table(logs).splitlines()
    assert table[0].split()[:4] == ["run", "step", "step", "s"]
    assert table[2].split()[:6] == ["lapo_d", "1", "80.0", "60.0", "-", "31.5"]
    assert table[3].split()[:6] == ["lapo_d", "2", "70.0", "52.0", "-", "33.0"]
    assert "no training step" in table[4]
    assert table[-1].startswith("peak accelerator memory over all steps: 41.5 GB")


def test_a_ray_start_up_timeout_is_started_once_more(tmp_path):
    """lib.sh: Ray's fixed 30 s node registration can time out on a busy machine before anything ran; the
    training step then starts once more (and only then: any other failure still stops the chain)."""
    env = _env(tmp_path)
    flaky = tmp_path / "bin" / "python_flaky"
    flaky.write_text(
        "#!/usr/bin/env bash\n"
        f'if [[ $2 == verl.trainer.main_ppo && ! -f {tmp_path}/failed_once ]]; then touch {tmp_path}/failed_once;\n'
        '  echo "Exception: The current node timed out during startup."; exit 1; fi\n'
        f'exec {env["PYTHON"]} "$@"\n')
    flaky.chmod(flaky.stat().st_mode | stat.S_IEXEC)
    env["PYTHON"] = str(flaky)
    proc, calls = _run(["bash", str(ROOT / "recipes/cluster_rehearsal.sh"), "reh"], env, tmp_path)
    assert "Ray's node start-up timed out (busy machine); starting once more" in proc.stderr
    assert len(_trainings(calls)) == 2 and "[rehearsal] ok" in proc.stdout  # the stubs log only the real starts
