"""Paper Eq. 8 (lapo.stage2.update_plans=true): plans follow stage 2's correct lengths, step by step.

Component tests: the fold over records (with crash + resume rollback), the per-step tracker, the export, and
the stage-2 agent loop sending the updated number (same for every rollout of a group)."""

from __future__ import annotations

import time

import pytest

from lapo_verl.data.columns import PLAN_COLUMN, PLAN_IS_FALLBACK_COLUMN, PROBLEM_ID_COLUMN, RECORD_COLUMN
from lapo_verl.plan_updates import PlanTracker, export_plans, fold_plan, visit_table
from lapo_verl.records import LengthRecord, RecordWriter, append_event, load_records


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


def test_tracker_uses_only_earlier_steps_and_resume_rolls_back(tmp_path):
    rec = str(tmp_path / "records")
    append_event(rec, {"event": "start", "resume_step": 0})
    w = RecordWriter(rec)
    write_group(w, "a", 1, [300, 500, 999], [1, 1, 0])   # a: 734 -> min(734, 400) = 400
    write_group(w, "u", 1, [120, 80, 50], [1, 1, 0])     # unsolved (fallback 4096) -> 100
    tr = PlanTracker(rec)
    assert tr.plan("a", 734, False, 1) == 734            # step 1 rollouts: nothing earlier
    assert tr.plan("a", 734, False, 2) == 400
    assert tr.plan("u", 4096, True, 2) == 100
    assert tr.plan("never", 4096, True, 2) == 4096       # still unsolved: keeps the maximum length
    write_group(w, "a", 2, [200, 260], [1, 1])           # step 2 in progress: invisible to step 2 ...
    assert tr.plan("a", 734, False, 2) == 400
    assert tr.plan("a", 734, False, 3) == 230            # ... and used from step 3 on
    # crash during step 3 (records written), resume from the step-2 checkpoint: step-3 records are redone
    write_group(w, "a", 3, [10, 10], [1, 1])
    time.sleep(0.01)
    append_event(rec, {"event": "start", "resume_step": 2})
    assert PlanTracker(rec).plan("a", 734, False, 4) == 230   # the crashed attempt's 10 is rolled back
    w2 = RecordWriter(rec)
    write_group(w2, "a", 3, [150, 170], [1, 1])
    assert PlanTracker(rec).plan("a", 734, False, 4) == 160


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
def test_agent_loop_sends_the_updated_plan_to_every_rollout(r1_tok_dir, tmp_path, fallback, initial, want):
    from lapo_test_utils.agent_loops import run_loop

    rec = tmp_path / "records"
    write_group(RecordWriter(str(rec)), "p7", 1, [300, 500, 999, 1000], [1, 1, 0, 0])
    row = {PLAN_COLUMN: initial, PLAN_IS_FALLBACK_COLUMN: fallback, PROBLEM_ID_COLUMN: "p7", RECORD_COLUMN: True,
           "global_steps": 2}
    prompts = []
    for _ in range(3):  # rollouts of one group (each builds its prompt on its own)
        tok, server, _, _, _ = run_loop(r1_tok_dir, tmp_path, row, "lapo.stage2.update_plans=true",
                                        f"lapo.records.dir={rec}")
        prompts += server.prompts
    assert len({tuple(p) for p in prompts}) == 1
    assert tok.decode(prompts[0]).endswith(f"<think>\nI will answer the question with {want} tokens.\n")
    # step 1 (nothing recorded before it) and validation rows keep the row's plan
    tok, server, _, _, _ = run_loop(r1_tok_dir, tmp_path, {**row, "global_steps": 1},
                                    "lapo.stage2.update_plans=true", f"lapo.records.dir={rec}")
    assert tok.decode(server.prompts[0]).endswith(f"with {initial} tokens.\n")
    tok, server, _, _, _ = run_loop(r1_tok_dir, tmp_path, {**row, RECORD_COLUMN: False},
                                    "lapo.stage2.update_plans=true", f"lapo.records.dir={rec}")
    assert tok.decode(server.prompts[0]).endswith(f"with {initial} tokens.\n")
    # off (default): the row's plan, whatever the records say
    tok, server, _, _, _ = run_loop(r1_tok_dir, tmp_path, row, f"lapo.records.dir={rec}")
    assert tok.decode(server.prompts[0]).endswith(f"with {initial} tokens.\n")


def test_eq8_refuses_trainer_modes_where_steps_overlap():
    from omegaconf import OmegaConf

    from lapo_verl.verl_ext.checkpoint import check_eq8_trainer

    check_eq8_trainer(OmegaConf.create({"use_v1": True, "v1": {"trainer_mode": "sync"}}))
    for bad in ({"use_v1": False}, {"use_v1": True, "v1": {"trainer_mode": "colocate_async"}}):
        with pytest.raises(ValueError, match="trainer.v1.trainer_mode=sync"):
            check_eq8_trainer(OmegaConf.create(bad))
