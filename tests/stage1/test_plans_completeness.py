"""Issue 20 item 4: a bad plans file stops the run before Ray; `lapo-verl plans` refuses incomplete records."""

from __future__ import annotations

import json
import time

import pytest

from lapo_test_utils.verl_config import compose_recipe
from lapo_verl import plans as P
from lapo_verl.records import LengthRecord, RecordWriter, append_event


def _inputs(tmp_path):
    """Existing data files and model directory, so the preflight gets as far as the plans file."""
    for name in ("train.parquet", "val.parquet"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "model").mkdir(exist_ok=True)
    return [f"data.train_files={tmp_path / 'train.parquet'}", f"data.val_files={tmp_path / 'val.parquet'}",
            f"actor_rollout_ref.model.path={tmp_path / 'model'}"]


def test_preflight_refuses_a_plans_file_with_a_negative_and_a_string_plan(tmp_path, capsys):
    from lapo_verl.preflight import LapoPlansInvalid, check_plans_file

    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps({"format": "lapo-plans/1", "plans": {"p1": 120, "p2": -5, "p3": "300"}}))
    cfg = compose_recipe("lapo_stage2", *_inputs(tmp_path), f"lapo.plans_path={plans}")
    with pytest.raises(LapoPlansInvalid) as err:
        check_plans_file(cfg)
    text = str(err.value)
    assert err.value.code == 2 and "2 bad entries" in text
    assert "plans['p2'] = -5 must be a positive integer" in text and "plans['p3'] = '300' is not an integer" in text
    assert "lapo.plans_path=" in capsys.readouterr().err
    plans.write_text(json.dumps({"format": "lapo-plans/1", "plans": {"p1": 120}, "unsolved": ["p2"]}))
    check_plans_file(cfg)  # a good file passes
    check_plans_file(compose_recipe("lapo_stage1", *_inputs(tmp_path), f"lapo.plans_path={plans.with_name('none.json')}"))


def _split_groups(tmp_path, *, problems=40, steps=3, n=8, keep=4):
    """The issue's case: records of each group of n written by several nodes, only ``keep`` of them visible."""
    run = tmp_path / "run"
    writer = RecordWriter(str(run / "records"))
    for step in range(1, steps + 1):
        for p in range(problems):
            for i in range(keep):
                writer.write(LengthRecord(problem_id=f"p{p}", step=step, group_uid=f"u{step}-{p}", sample_index=i,
                                          group_size=n, response_length=100 + i, correct=True, time=time.time()))
    return run


def test_plans_fails_with_cause_and_counts_when_half_of_every_group_is_missing(tmp_path, capsys):
    from lapo_verl.cli import main

    run = _split_groups(tmp_path)
    out = tmp_path / "plans.json"
    assert main(["plans", "--run", str(run), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "incomplete visits: 120 of 120 (100.0%)" in err and "no plans file written" in err
    assert not out.exists()
    # the explicit escape hatch still works (and says what it used)
    assert main(["plans", "--run", str(run), "--out", str(out), "--max-incomplete-frac", "1"]) == 0
    assert P.read_plans(str(out))[1] == {f"p{p}" for p in range(40)}  # what stage 2 would have trained on


def test_plans_fails_when_records_the_trainer_logged_are_missing(tmp_path, capsys):
    """Whole groups missing (no incomplete visit to see): the trainer's per-step counts in events.jsonl tell."""
    from lapo_verl.cli import main

    run = _split_groups(tmp_path, problems=10, steps=2, n=4, keep=4)
    for step in (1, 2):
        append_event(str(run / "records"), {"event": "step", "step": step, "records": 40, "expected": 80})
    assert main(["plans", "--run", str(run), "--out", str(tmp_path / "plans.json")]) == 3
    assert "missing records: 80 read, the trainer logged 160 for steps 1..2 (80 missing, 50.0%)" in capsys.readouterr().err
    complete = _split_groups(tmp_path / "ok", problems=10, steps=2, n=4, keep=4)
    for step in (1, 2):
        append_event(str(complete / "records"), {"event": "step", "step": step, "records": 40, "expected": 40})
    assert main(["plans", "--run", str(complete), "--out", str(tmp_path / "ok.json")]) == 0
