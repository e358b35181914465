"""Issue 20 item 5: LAPO's state travels through verl and Ray, not a shared disk, shown on a 2-node Ray cluster.

One machine, two Ray nodes (``ray.cluster_utils.Cluster``: two raylets with their own object stores), verl's real
trainer on the CPU backend connected to it, ``reward.num_workers=2`` and 2 agent-loop workers (verl places both
kinds round-robin over the nodes: checked in Ray's actor table). The commands run from their own directory with
the *relative* ``lapo.output_root=runs``, while the nodes were started from another one: the preflight makes the
path absolute before verl starts. Every response is counted correct (``always_correct.py``: a random tiny model
solves nothing), so Eq. 8 has correct lengths to fold.

Stage 2 with Eq. 8 (3 steps, checkpoint each) from a plans file (three problems planned at 48 tokens, above the
32-token cap, one unsolved: the maximum length first), killed with SIGKILL once step 3's length records are written,
with step 3's checkpoint then taken away (never durable), and resumed with ``resume_mode=auto`` on the same cluster,
which redoes step 3. (Until issue 21 a 2-step stage-1 run came first and made the plans file; its checks, complete
records from reward workers on both nodes and one writer file, are made on stage 2's records, which the same writer
writes, and the plans rules on a run's records are the chain test's.) Checked:

* the records are complete (steps x batch x n, every group whole, one writer file per trainer start, the run-end
  count), written while verl had placed reward and agent-loop workers on both nodes;
* for every stage-2 sample the plan its prompt stated (verl's rollout dump) equals the plan its reward used (the
  record), and equals Eq. 8 folded over the records of the earlier steps; some plan shrinks between visits;
* after the kill and resume nothing is lost or doubled: steps 1-3 complete, the killed attempt's step-3 records
  rolled back (all of them), and they had stated the same plans as the redone step (the Eq. 8 table came back from
  step 2's checkpoint, not from the lost step); the resumed run logs only the redone step, and step 2's checkpoint
  holds the records of steps 1-2 (the chain test's crash and resume, tests/e2e/test_lapo_chain_slow.py, live here);
* the plans are exported with each checkpoint and, after the last step, in the run directory.

This test also carries what tests/e2e/test_eq8_plan_update_slow.py checked with two trainer runs of its own (Eq. 8
with a crash and a resume, an unsolved problem, the exports).

``nnodes=1``: the CPU backend runs one FSDP rank per logical GPU on one node (the FSDP ranks are not LAPO's state);
the 2 nodes carry the reward and agent-loop workers, which is where LAPO's state used to be written and read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from lapo_verl import rewards as R
from lapo_verl.plan_updates import fold_plan
from lapo_verl.plans import read_plans
from lapo_verl.records import load_records, read_events

pytestmark = pytest.mark.slow

# stage 2 answers up to 32 tokens and the initial plans are 48: above what stage 2 can produce, so Eq. 8 visibly
# lowers them after the first step
BATCH, N, INITIAL, RESPONSE = 4, 4, 48, 32
HERE = Path(__file__).resolve().parent
PLAN_RE = re.compile(r"I will answer the question with (\d+) tokens\.\n$")
SMALL = [
    f"data.train_batch_size={BATCH}", f"actor_rollout_ref.rollout.n={N}", f"actor_rollout_ref.actor.ppo_mini_batch_size={BATCH}",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=16", "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=16",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=16", "data.max_prompt_length=1024",
    "data.filter_overlong_prompts_workers=1", "actor_rollout_ref.actor.optim.lr=1e-5",
    "trainer.test_freq=-1", "trainer.val_before_train=False", "trainer.logger=[console]", "trainer.n_gpus_per_node=1",
    "lapo.stage2.sigma=10", "lapo.experiment=twonode", "data.shuffle=false", "lapo.output_root=runs",
    f"reward.custom_reward_function.path={HERE / 'always_correct.py'}", "reward.custom_reward_function.name=compute_score",
    # the multi-node part: 2 reward workers and 2 agent-loop workers, placed by verl over the 2 nodes
    "reward.num_workers=2", "actor_rollout_ref.rollout.agent.num_workers=2",
]


def launch(args: list[str], cwd: Path, log: Path, address: str, *, kill_when=None, timeout_s: int = 900) -> tuple[int, str]:
    """``python -m verl.trainer.main_ppo`` on the CPU backend, connected to the cluster at ``address``. With
    ``kill_when`` (a callable polled every 0.1 s) the driver's process group gets SIGKILL once it returns True."""
    from lapo_verl.cpu_backend.overrides import CPU_TRAINER_OVERRIDES, cpu_env

    cluster = ["ray_kwargs.ray_init.num_cpus=null", "ray_kwargs.ray_init.num_gpus=null",
               "ray_kwargs.ray_init.include_dashboard=null", f"+ray_kwargs.ray_init.address={address}"]
    cmd = [sys.executable, "-m", "verl.trainer.main_ppo", *CPU_TRAINER_OVERRIDES, *cluster, *args]
    env = {**cpu_env(), "PYTHONUNBUFFERED": "1"}
    start = time.time()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        killed = False
        try:
            while proc.poll() is None and time.time() - start < timeout_s:
                if kill_when is not None and kill_when():
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.1)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    text = log.read_text(errors="replace")
    print(f"[two-node] {' '.join(a for a in args if a.startswith('+recipe'))} {'killed' if killed else proc.returncode} "
          f"after {time.time() - start:.0f} s")
    return (-9 if killed else proc.returncode), text


@pytest.fixture(scope="module")
def two_nodes():
    """A 2-node Ray cluster on this machine, started from a directory that is not the commands' directory. The
    nodes inherit the CPU backend's environment (their workers are verl's processes)."""
    import ray
    from ray.cluster_utils import Cluster

    from lapo_verl.cpu_backend.overrides import CPU_ENV

    if ray.is_initialized():
        ray.shutdown()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    # a private Ray temp dir: Cluster writes its address to <RAY_TMPDIR>/ray/ray_current_cluster, where a plain
    # ray.init() elsewhere (a test running next to this one) would otherwise find it and join this cluster
    private = {**CPU_ENV, "RAY_TMPDIR": tempfile.mkdtemp(prefix="lapo2n_", dir="/tmp")}  # AF_UNIX: short paths
    os.environ.update(private)
    elsewhere = tempfile.mkdtemp(prefix="lapo_nodes_")
    os.chdir(elsewhere)
    try:
        cluster = Cluster(initialize_head=True,
                          head_node_args={"num_cpus": 6, "num_gpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=4)
        cluster.wait_for_nodes()
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    yield cluster, elsewhere
    if ray.is_initialized():
        ray.shutdown()
    os.environ["RAY_TMPDIR"] = private["RAY_TMPDIR"]  # shutdown resets the address file of that temp dir
    try:
        cluster.shutdown()
    finally:
        os.environ.clear()
        os.environ.update(saved_env)


def actor_nodes(address: str) -> dict[str, set[str]]:
    """Class name -> node ids of the actors Ray's GCS has seen (the actor table keeps dead jobs' actors)."""
    import ray

    ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        from ray._private.state import actors

        out: dict[str, set[str]] = defaultdict(set)
        for info in actors().values():
            out[info.get("ActorClassName") or info.get("Name", "")].add(info["Address"]["NodeID"])
        return out
    finally:
        ray.shutdown()


def test_lapo_on_two_nodes_without_a_shared_disk(two_nodes, tiny_bpe_dir, tmp_path):
    cluster, nodes_cwd = two_nodes
    t0 = time.time()
    from recipes.dev.quickstart import build_data

    train_all, val = build_data(tmp_path / "data", 8, 4)
    frame = pd.read_parquet(train_all).head(BATCH)
    train = tmp_path / "train4.parquet"
    frame.to_parquet(train)
    ids = list(frame["lapo_problem_id"])
    cmd_dir = tmp_path / "cmd"
    cmd_dir.mkdir()
    common = [*SMALL, f"data.train_files={train}", f"data.val_files={val}", f"actor_rollout_ref.model.path={tiny_bpe_dir}"]
    address = cluster.address

    # ---------------- stage 2 with Eq. 8: 3 steps, killed after step 3's records, step 3's checkpoint lost, resumed
    # a stage-1 plans file (its rules are the chain test's: tests/e2e/test_lapo_chain_slow.py): three problems planned
    # above stage 2's cap, so Eq. 8 visibly lowers them after the first step, one unsolved (the maximum length first)
    s2_plans = tmp_path / "plans_stage2.json"
    plans = {pid: INITIAL for pid in ids[:-1]}
    s2_plans.write_text(json.dumps({"format": "lapo-plans/1", "plans": plans, "unsolved": [ids[-1]]}))
    runs = cmd_dir / "runs" / "twonode"
    dump = tmp_path / "rollouts"
    s2 = ["+recipe=lapo_stage2", *common, f"data.max_response_length={RESPONSE}", f"lapo.plans_path={s2_plans}",
          "lapo.stage2.update_plans=true",
          "trainer.total_training_steps=3", "trainer.save_freq=1", f"trainer.rollout_data_dir={dump}"]

    def step3_recorded() -> bool:  # the trainer wrote step 3's length records: the kill lands before or in its save
        return any(e.get("event") == "step" and e.get("step") == 3
                   for d in runs.glob("stage2-*") for e in read_events(str(d / "records")))

    rc, log2 = launch(s2, cmd_dir, tmp_path / "stage2.log", address, kill_when=step3_recorded)
    assert not (Path(nodes_cwd) / "runs").exists()  # relative to the command, not to the nodes' directory
    # -9: killed between step 3's records and the end of its save (the usual case). 0: the last save and the exit
    # (~1-3 s) beat the poll; the checkpoint is taken away below all the same, so the resume redoes step 3 either way.
    assert rc in (-9, 0), log2[-5000:]
    (s2_dir,) = [d for d in runs.glob("stage2-*")]
    ckpts = s2_dir / "checkpoints"
    shutil.rmtree(ckpts / "global_step_3", ignore_errors=True)  # whatever of it was written never became durable
    (ckpts / "latest_checkpointed_iteration.txt").write_text("2")
    (lost_file,) = (s2_dir / "records").glob("records-*.jsonl")  # one file per trainer start: the killed attempt's
    lost = [row for row in map(json.loads, open(lost_file)) if row["step"] == 3]
    assert len(lost) == BATCH * N, len(lost)
    rc, log3 = launch(s2, cmd_dir, tmp_path / "stage2_resume.log", address)
    assert rc == 0, log3[-5000:]
    resumed_at = [e["resume_step"] for e in read_events(str(s2_dir / "records")) if e.get("event") == "start"]
    assert resumed_at == [0, 2], resumed_at
    assert "global_step_2/lapo_plan_table.json" in log3  # the table came back from the checkpoint
    assert sorted({int(k) for k in re.findall(r"step:(\d+) - ", log3)}) == [3]  # the resumed run logs the redone step
    snap = [json.loads(x) for x in open(ckpts / "global_step_2" / "lapo_records.jsonl")]  # the checkpoint's snapshot
    assert len(snap) == 2 * BATCH * N and {r["step"] for r in snap} == {1, 2}

    placed = actor_nodes(address)  # verl put reward and agent-loop workers on both nodes
    reward_nodes = set().union(*(v for k, v in placed.items() if "RewardLoopWorker" in k))
    agent_nodes = set().union(*(v for k, v in placed.items() if "AgentLoopWorker" in k))
    assert len(reward_nodes) == 2 and len(agent_nodes) == 2, dict(placed)

    records2, report2 = load_records(str(s2_dir / "records"))
    assert report2.corrupt == 0 and report2.rolled_back == BATCH * N  # the killed attempt's step 3, all of it
    assert len(list((s2_dir / "records").glob("records-*.jsonl"))) == 2  # one writer per trainer start
    assert f"{3 * BATCH * N} length records for steps 1..3" in log3 and "MISSING" not in log3
    per_group = defaultdict(int)
    for r in records2:
        per_group[(r.problem_id, r.step, r.group_uid)] += 1
    assert sorted(per_group.values()) == [N] * (3 * BATCH)  # every group whole
    per_visit = defaultdict(int)
    for r in records2:
        per_visit[(r.problem_id, r.step)] += 1
    assert sorted({s for _, s in per_visit}) == [1, 2, 3] and set(per_visit.values()) == {N}  # none lost or doubled
    assert len(records2) == 3 * BATCH * N
    correct = defaultdict(dict)  # pid -> step -> correct lengths
    for r in records2:
        correct[r.problem_id].setdefault(r.step, [])
        if r.correct:
            correct[r.problem_id][r.step].append(r.response_length)

    def eq8(pid: str, step: int) -> int:
        plan = fold_plan(plans.get(pid), [correct[pid].get(s, []) for s in range(1, step)])
        return RESPONSE if plan is None else plan  # unsolved: the maximum length (unsolved_length)

    for r in records2:  # the reward's plan is Eq. 8 over the earlier steps; its reward used it
        assert r.plan == eq8(r.problem_id, r.step), (r.problem_id, r.step, r.plan)
        assert r.reward == pytest.approx(R.stage2_reward(r.correct, r.response_length, r.plan, beta=0.8, sigma=10))
    for row in lost:  # the lost attempt stated what the redone step states: both fold steps 1-2 only
        assert row["plan"] == eq8(row["problem_id"], 3), row
    assert any(r.plan == RESPONSE for r in records2 if r.problem_id == ids[-1] and r.step == 1)
    problems = {row["prompt"][-1]["content"]: row["lapo_problem_id"] for _, row in frame.iterrows()}
    record_plan = {(r.problem_id, r.step): r.plan for r in records2}
    assert any(record_plan[(pid, 2)] < record_plan[(pid, 1)] for pid in ids), record_plan  # Eq. 8 moved a plan
    for step in (1, 2, 3):
        for sample in (json.loads(x) for x in open(dump / f"{step}.jsonl")):
            pid = next(p for text, p in problems.items() if text in sample["input"])
            stated = int(PLAN_RE.search(sample["input"]).group(1))
            assert stated == record_plan[(pid, step)] == eq8(pid, step), (pid, step, stated)
    final, still_unsolved, doc = read_plans(str(s2_dir / "plans_updated.json"))
    assert doc["visit_rule"] == "eq8" and doc["summary"]["step"] == 3
    for pid in ids:
        plan = fold_plan(plans.get(pid), [correct[pid].get(s, []) for s in (1, 2, 3)])
        assert final.get(pid) == plan if plan is not None else pid in still_unsolved
    assert read_plans(str(ckpts / "global_step_2" / "lapo_plans.json"))[2]["summary"]["step"] == 2  # per checkpoint
    print(f"[two-node] whole test {time.time() - t0:.0f} s")
