"""Paper Eq. 8 (lapo.stage2.update_plans=true): plans follow stage 2's correct lengths, step by step.

Component tests: the fold (Eq. 8), the trainer's plan table (fold once per step, saved and restored), the trainer
writing a step's records and the next step's table from a training batch, the export, and the stage-2 agent loop
stating the table's number for its step and carrying it with the sample (a missing or stale table is an error)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from lapo_verl.data.columns import PLAN_COLUMN, PLAN_IS_FALLBACK_COLUMN, PROBLEM_ID_COLUMN, RECORD_COLUMN
from lapo_verl.plan_updates import PlanTable, StalePlanTable, export_plans, fold_plan, visit_table
from lapo_verl.records import LengthRecord, RecordWriter, load_records, read_events


def write_group(writer, problem_id, step, lengths, correct):
    for index, (n, ok) in enumerate(zip(lengths, correct, strict=True)):
        writer.write(LengthRecord(problem_id=problem_id, step=step, group_uid=f"{problem_id}-{step}",
                                  sample_index=index, group_size=len(lengths), response_length=n, correct=bool(ok),
                                  time=time.time()))


def test_fold_is_eq8():
    assert fold_plan(None, []) is None
    assert fold_plan(None, [[300, 500]]) == 400          # unsolved -> median of the correct lengths
    assert fold_plan(350, [[300, 500]]) == 350           # solved -> min(plan, median)
    assert fold_plan(700, [[300, 500], [100]]) == 100    # shrinks visit after visit
    assert fold_plan(700, [[], [900]]) == 700            # a visit without a correct answer changes nothing


def _group(problem_id, step, lengths, correct):
    return [LengthRecord(problem_id=problem_id, step=step, group_uid=f"{problem_id}-{step}", sample_index=i,
                         group_size=len(lengths), response_length=n, correct=bool(ok), time=time.time())
            for i, (n, ok) in enumerate(zip(lengths, correct, strict=True))]


def test_plan_table_folds_each_step_once_and_round_trips():
    table = PlanTable({"a": 734, "b": 50}, unsolved={"u"})
    assert table.fold(_group("a", 1, [300, 500, 999], [1, 1, 0]) + _group("u", 1, [120, 80, 50], [1, 1, 0]), 1) == 2
    assert table.plans == {"a": 400, "b": 50, "u": 100} and table.step == 1
    saved = table.to_json()  # what the checkpoint carries
    table.fold(_group("a", 2, [200, 260], [1, 1]) + _group("n", 2, [9, 9], [0, 0]), 2)
    assert table.plans == {"a": 230, "b": 50, "u": 100} and table.step == 2  # n: still unsolved, no plan
    restored = PlanTable.from_json(saved)
    assert restored.plans == {"a": 400, "b": 50, "u": 100} and restored.step == 1
    # the same result as the records-based fold (export) on the same records
    records = _group("a", 1, [300, 500, 999], [1, 1, 0]) + _group("a", 2, [200, 260], [1, 1])
    assert export_plans(records, {"a": 734}, set(), 2)["plans"]["a"] == 230
    doc = table.as_plans_file({"a": 734, "b": 50}, {"u", "n"})
    assert doc["plans"] == {"a": 230, "b": 50, "u": 100} and doc["unsolved"] == ["n"]
    assert doc["summary"]["changed_by_stage2"] == 2 and doc["summary"]["step"] == 2


def test_export_plans_file(tmp_path):
    from lapo_verl.plans import read_plans, write_plans

    rec = str(tmp_path / "records")
    w = RecordWriter(rec)
    write_group(w, "a", 1, [300, 500], [1, 1])
    write_group(w, "u", 1, [120, 80], [1, 1])
    write_group(w, "a", 2, [100], [1])
    records, _ = load_records(rec)
    assert visit_table(records, 2) == {"a": [[300, 500]], "u": [[120, 80]]}
    doc = export_plans(records, {"a": 734, "b": 50}, {"u", "z"}, step=2)
    path = tmp_path / "plans.json"
    write_plans(doc, str(path))
    plans, unsolved, full = read_plans(str(path))
    assert plans == {"a": 100, "b": 50, "u": 100} and unsolved == {"z"}
    assert full["visit_rule"] == "eq8" and full["summary"]["changed_by_stage2"] == 2


@pytest.mark.parametrize("fallback,initial,want", [(False, 734, 400), (True, 4096, 400)])
def test_agent_loop_states_the_trainers_table_and_carries_it(ray_session, r1_tok_dir, tmp_path, fallback, initial,
                                                            want):
    from lapo_test_utils.agent_loops import run_loop
    from lapo_verl.plan_updates import STATED_PLAN_FIELD, start_board

    run_dir = f"/nonexistent/eq8-{fallback}"
    board = start_board(run_dir, 2, {"p7": want, "other": 11})  # noqa: F841 (kept alive) the trainer's table for the rollouts of step 2
    row = {PLAN_COLUMN: initial, PLAN_IS_FALLBACK_COLUMN: fallback, PROBLEM_ID_COLUMN: "p7", RECORD_COLUMN: True,
           "global_steps": 2}
    on = ("lapo.stage2.update_plans=true", f"lapo.run_dir={run_dir}")
    prompts = []
    for _ in range(3):  # rollouts of one group (each builds its prompt on its own)
        tok, server, out, _, _ = run_loop(r1_tok_dir, tmp_path, row, *on)
        prompts += server.prompts
        assert out.extra_fields[STATED_PLAN_FIELD] == want  # travels with the sample to the reward
    assert len({tuple(p) for p in prompts}) == 1
    assert tok.decode(prompts[0]).endswith(f"<think>\nI will answer the question with {want} tokens.\n")
    # a problem the table does not know (still unsolved) keeps its row's plan; so do validation rows
    tok, server, out, _, _ = run_loop(r1_tok_dir, tmp_path, {**row, PROBLEM_ID_COLUMN: "p8"}, *on)
    assert tok.decode(server.prompts[0]).endswith(f"with {initial} tokens.\n")
    assert out.extra_fields[STATED_PLAN_FIELD] == initial
    tok, server, _, _, _ = run_loop(r1_tok_dir, tmp_path, {**row, RECORD_COLUMN: False}, *on)
    assert tok.decode(server.prompts[0]).endswith(f"with {initial} tokens.\n")
    # off (default): the row's plan, no board asked
    tok, server, _, _, _ = run_loop(r1_tok_dir, tmp_path, row)
    assert tok.decode(server.prompts[0]).endswith(f"with {initial} tokens.\n")


def test_agent_loop_fails_on_a_missing_or_stale_table(ray_session, r1_tok_dir, tmp_path, monkeypatch):
    """Injected faults: no board for the run, and a board that still holds step 1's table when step 2 asks."""
    from lapo_test_utils.agent_loops import run_loop
    from lapo_verl.plan_updates import start_board

    monkeypatch.setenv("LAPO_PLAN_BOARD_WAIT_S", "1")
    row = {PLAN_COLUMN: 734, PLAN_IS_FALLBACK_COLUMN: False, PROBLEM_ID_COLUMN: "p7", RECORD_COLUMN: True,
           "global_steps": 2}
    with pytest.raises(StalePlanTable, match="no plan board"):
        run_loop(r1_tok_dir, tmp_path, row, "lapo.stage2.update_plans=true", "lapo.run_dir=/nonexistent/no-board")
    board = start_board("/nonexistent/stale", 1, {"p7": 400})  # noqa: F841 (the handle keeps it alive)
    with pytest.raises(StalePlanTable, match="holds the table of step 1, rollouts of step 2"):
        run_loop(r1_tok_dir, tmp_path, row, "lapo.stage2.update_plans=true", "lapo.run_dir=/nonexistent/stale")


def test_trainer_writes_a_steps_records_and_publishes_the_next_table(ray_session, tmp_path):
    """The trainer-side half (LapoMetricsReplayBuffer, verl's constructor contract): records of a training batch
    built from what verl carries back (keys, reward_extra_info, the stated plan), fsynced with the step's count;
    the plan table folded once and published for the next step; a prompt/reward disagreement is refused."""
    import json

    import numpy as np
    from omegaconf import OmegaConf

    from lapo_test_utils.verl_config import compose_recipe
    from lapo_verl.plan_updates import STATED_PLAN_FIELD, plan_table_for_step
    from lapo_verl.verl_ext.metrics_sampler import LapoMetricsReplayBuffer

    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps({"format": "lapo-plans/1", "plans": {"a": 734}, "unsolved": ["u"]}))
    cfg = compose_recipe("lapo_stage2", f"lapo.output_root={tmp_path}", f"lapo.plans_path={plans}",
                         "lapo.stage2.update_plans=true", "actor_rollout_ref.rollout.n=2", "data.train_batch_size=2")
    OmegaConf.resolve(cfg)

    class Trainer:  # what verl's refill_fn is bound to: the trainer, holding the full config
        config = cfg

        def _add_prompts_to_generate(self, n):
            return 0

    sampler = LapoMetricsReplayBuffer(trainer_mode="sync", trainer_config={}, max_off_policy_threshold=None,
                                      max_off_policy_strategy="drop", sampler_kwargs=cfg.trainer.v1.sampler.sampler_kwargs,
                                      refill_fn=Trainer()._add_prompts_to_generate)
    assert sampler.plan_table.plans == {"a": 734}
    keys = ["g1_0_0", "g1_1_0", "g2_0_0", "g2_1_0"]
    lengths = np.array([300.0, 500.0, 120.0, 60.0])
    plan_of = {"a": 734, "u": 64}
    pids = ["a", "a", "u", "u"]
    infos = [{"acc": 1.0, "length": n, "grade_reason": "match_fast", "plan": float(plan_of[p]), "r2": 0.5}
             for n, p in zip(lengths, pids)]
    extras = [{STATED_PLAN_FIELD: plan_of[p], "reward_extra_info": i} for p, i in zip(pids, infos)]
    records = sampler.build_records(keys, 1, np.ones(4), lengths, infos, extras, pids, [True] * 4)
    assert [(r.problem_id, r.group_uid, r.sample_index, r.group_size, r.response_length, r.plan) for r in records] == [
        ("a", "g1", 0, 2, 300, 734.0), ("a", "g1", 1, 2, 500, 734.0), ("u", "g2", 0, 2, 120, 64.0),
        ("u", "g2", 1, 2, 60, 64.0)]
    sampler.commit_records(records, 1, prompts=2)
    assert sampler.plan_table.fold(records, 1) == 2
    import ray

    ray.get(sampler.board.publish.remote(2, sampler.plan_table.plans))
    table = asyncio.run(plan_table_for_step(cfg.lapo.run_dir, 2))
    assert table == {"a": 400, "u": 90}
    loaded, _ = load_records(cfg.lapo.records.dir)
    assert len(loaded) == 4 and os.path.isabs(cfg.lapo.records.dir)
    step_events = [e for e in read_events(cfg.lapo.records.dir) if e["event"] == "step"]
    assert step_events[-1]["records"] == 4 and step_events[-1]["expected"] == 4
    extras[1] = {**extras[1], STATED_PLAN_FIELD: 700}  # the prompt stated another plan than the reward used
    with pytest.raises(RuntimeError, match="stated plan 700, the reward used 734"):
        sampler.build_records(keys, 2, np.ones(4), lengths, infos, extras, pids, [True] * 4)


def test_eq8_refuses_trainer_modes_where_steps_overlap():
    from omegaconf import OmegaConf

    from lapo_verl.verl_ext.checkpoint import check_eq8_trainer

    check_eq8_trainer(OmegaConf.create({"use_v1": True, "v1": {"trainer_mode": "sync"}}))
    for bad in ({"use_v1": False}, {"use_v1": True, "v1": {"trainer_mode": "colocate_async"}}):
        with pytest.raises(ValueError, match="trainer.v1.trainer_mode=sync"):
            check_eq8_trainer(OmegaConf.create(bad))


def test_without_lapos_sampler_the_run_says_what_lapo_cannot_do():
    """verl's own replay buffer instead of LAPO's metrics sampler: no records (said at start-up), no Eq. 8 (refused)."""
    from lapo_test_utils.verl_config import compose_recipe
    from lapo_verl.config import LapoConfig
    from lapo_verl.verl_ext.checkpoint import check_sampler

    cfg = compose_recipe("lapo_stage1", "lapo.output_root=/nonexistent/x")
    assert check_sampler(cfg, LapoConfig.from_section(cfg.lapo)) is None  # the recipes' sampler: nothing to say
    own = compose_recipe("lapo_stage1", "lapo.output_root=/nonexistent/x", "trainer.v1.sampler.custom_sampler.path=null")
    warning = check_sampler(own, LapoConfig.from_section(own.lapo))
    assert "LAPO writes no length records" in warning and "`lapo-verl plans` cannot make plans" in warning
    eq8 = compose_recipe("lapo_stage2", "lapo.output_root=/nonexistent/x", "trainer.v1.sampler.custom_sampler.path=null",
                         "lapo.stage2.update_plans=true")
    with pytest.raises(ValueError, match="needs LAPO's metrics sampler"):
        check_sampler(eq8, LapoConfig.from_section(eq8.lapo))
