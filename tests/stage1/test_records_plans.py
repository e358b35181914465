"""Length records -> plans: latest solved visit, crash + resume, corrupt lines, bad plans files."""

import json
import os
import time

import pytest

from lapo_verl import plans as P
from lapo_verl.records import LengthRecord, RecordWriter, append_event, load_records
from lapo_verl.verl_ext.checkpoint import LapoCheckpointCallback, resolve_resume_step


def write_group(writer, problem_id, step, lengths, correct, uid=None, group_size=None):
    for index, (n, ok) in enumerate(zip(lengths, correct, strict=True)):
        writer.write(LengthRecord(problem_id=problem_id, step=step, group_uid=uid or f"{problem_id}-{step}",
                                  sample_index=index, group_size=group_size or len(lengths), response_length=n,
                                  correct=ok, time=time.time()))


def test_latest_visit_by_default_and_statistics(tmp_path):
    """Issue 11 item 5: the paper's rule by default (latest visit; unsolved there -> unsolved -> max length)."""
    w = RecordWriter(str(tmp_path))
    write_group(w, "p1", 1, [100, 200, 300, 400], [1, 1, 1, 0])  # median of correct = 200
    write_group(w, "p1", 5, [150, 250, 350, 999], [1, 1, 0, 0])  # latest solved: median 200
    write_group(w, "p1", 9, [10, 20, 30, 40], [0, 0, 0, 0])  # latest visit, unsolved
    write_group(w, "p2", 2, [10, 20, 30, 40], [0, 0, 0, 0])  # never solved
    write_group(w, "p3", 3, [301, 302, 500, 600], [1, 1, 0, 1])  # median 302, mean 401, min 301
    records, report = load_records(str(tmp_path))
    assert report.kept == 20 and report.corrupt == 0
    # default = paper and authors' code: p1's latest visit (step 9) had no correct answer -> unsolved
    doc = P.build_plans(records)
    assert doc["visit_rule"] == "latest"
    assert doc["plans"] == {"p3": 302} and doc["unsolved"] == ["p1", "p2"]
    assert P.build_plans(records, statistic="mean")["plans"]["p3"] == 401
    assert P.build_plans(records, statistic="min")["plans"]["p3"] == 301
    # documented option: the latest visit WITH a correct answer keeps p1's plan (step 5: median 200)
    kept = P.build_plans(records, visit_rule="latest_solved")
    assert kept["plans"] == {"p1": 200, "p3": 302} and kept["unsolved"] == ["p2"]
    # the latest visit's median replaces an earlier one (M(q) follows every visit)
    w2 = RecordWriter(str(tmp_path / "b"))
    write_group(w2, "q", 1, [100, 200, 300], [1, 1, 1])
    write_group(w2, "q", 4, [500, 700, 900], [1, 1, 0])
    assert P.build_plans(load_records(str(tmp_path / "b"))[0])["plans"] == {"q": 600}


def test_incomplete_visit_is_skipped_and_counted(tmp_path):
    w = RecordWriter(str(tmp_path))
    write_group(w, "p1", 1, [100, 200, 300, 400], [1, 1, 1, 1])
    write_group(w, "p1", 2, [50, 60], [1, 1], group_size=4)  # a crash cut this group at 2 of 4
    records, _ = load_records(str(tmp_path))
    doc = P.build_plans(records)
    assert doc["plans"]["p1"] == 250
    assert doc["summary"]["incomplete_visits_skipped"] == 1
    assert P.build_plans(records, include_incomplete=True)["plans"]["p1"] == 55


def test_crash_and_resume_never_loses_or_double_counts(tmp_path):
    """Steps 1-3 run, checkpoint at 2, crash during 3 (partial group), resume redoes step 3."""
    rec_dir = str(tmp_path / "records")
    append_event(rec_dir, {"event": "start", "resume_step": 0})
    w1 = RecordWriter(rec_dir)
    write_group(w1, "a", 1, [100, 110], [1, 1])
    write_group(w1, "b", 2, [200, 210], [1, 1])
    write_group(w1, "c", 3, [999, 999], [1, 0])  # written by the crashed attempt
    with open(w1.path, "a") as fh:  # torn last line of the crash
        fh.write('{"problem_id": "c", "step": 3, "res')
    time.sleep(0.01)
    append_event(rec_dir, {"event": "start", "resume_step": 2})  # verl resumes from global_step_2
    w2 = RecordWriter(rec_dir)  # a new process writes a new file
    write_group(w2, "c", 3, [300, 310], [1, 1])
    records, report = load_records(rec_dir)
    assert report.rolled_back == 2 and report.corrupt == 1 and report.starts == 2
    doc = P.build_plans(records)
    assert doc["plans"] == {"a": 105, "b": 205, "c": 305}
    assert doc["summary"]["records"] == 6  # 2 per visit, none twice


def test_checkpoint_callback_resolves_resume_and_snapshots(tmp_path):
    from omegaconf import OmegaConf

    ckpt_root = tmp_path / "ckpt"
    rec_dir = tmp_path / "records"
    cfg = OmegaConf.create({
        "trainer": {"resume_mode": "auto", "default_local_dir": str(ckpt_root)},
        "lapo": {"records": {"enable": True, "dir": str(rec_dir)}},
    })
    cb = LapoCheckpointCallback(cfg)
    assert cb.resume_step == 0
    w = RecordWriter(str(rec_dir))
    write_group(w, "a", 1, [10, 20], [1, 1])
    write_group(w, "b", 2, [30, 40], [1, 0])
    step_dir = ckpt_root / "global_step_1"
    step_dir.mkdir(parents=True)
    cb.on_save(trainer=None, global_step=1, checkpoint_dir=str(step_dir))
    snap = [json.loads(x) for x in open(step_dir / "lapo_records.jsonl")]
    assert {r["problem_id"] for r in snap} == {"a"}  # only steps <= 1
    (ckpt_root / "latest_checkpointed_iteration.txt").write_text("1")
    assert resolve_resume_step(cfg.trainer) == 1
    cb2 = LapoCheckpointCallback(cfg)
    assert cb2.resume_step == 1
    records, report = load_records(str(rec_dir))
    assert [r.problem_id for r in records] == ["a", "a"] and report.rolled_back == 2  # step 2 is redone
    disabled = OmegaConf.merge(cfg, {"trainer": {"resume_mode": "disable"}})
    assert resolve_resume_step(disabled.trainer) == 0
    by_path = OmegaConf.merge(cfg, {"trainer": {"resume_mode": "resume_path", "resume_from_path": "x/global_step_7"}})
    assert resolve_resume_step(by_path.trainer) == 7


def test_plans_cli_end_to_end(tmp_path, capsys):
    from lapo_verl.cli import main

    run = tmp_path / "run"
    w = RecordWriter(str(run / "records"))
    write_group(w, "p1", 1, [100, 200, 300], [1, 1, 1])
    write_group(w, "p2", 1, [5, 6, 7], [0, 0, 0])
    out = tmp_path / "plans.json"
    hist = tmp_path / "plans.png"
    assert main(["plans", "--run", str(run), "--out", str(out), "--hist", str(hist)]) == 0
    text = capsys.readouterr().out
    assert "solved 1, unsolved 1" in text and "p50=200" in text
    plans, unsolved, doc = P.read_plans(str(out))
    assert plans == {"p1": 200} and unsolved == {"p2"} and doc["statistic"] == "median"
    assert hist.stat().st_size > 1000
    assert main(["plans", "--run", str(tmp_path / "nope"), "--out", str(out)]) == 2


def test_plans_help(capsys):
    from lapo_verl.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["plans", "--help"])
    assert exc.value.code == 0 and "--statistic" in capsys.readouterr().out


@pytest.mark.parametrize("content,match", [
    ('{"format": "lapo-plans/1", "plans": {"a": 12.5}}', "positive integer"),
    ('{"format": "lapo-plans/1", "plans": {"a": -3}}', "positive integer"),
    ('{"format": "lapo-plans/1", "plans": {"a": "100"}}', "not an integer"),
    ('{"format": "lapo-plans/1", "plans": {"a": 10, "a": 11}}', "duplicate problem id 'a'"),
    ('{"format": "lapo-plans/1", "plans": {"a": 10}, "unsolved": ["a"]}', "both planned and unsolved"),
    ('{"plans": {}}', "not a lapo-plans/1 file"),
    ("not json", "not a readable JSON"),
])
def test_bad_plans_files_name_file_and_entry(tmp_path, content, match):
    path = tmp_path / "plans.json"
    path.write_text(content)
    with pytest.raises(P.PlansFileError, match=match) as exc:
        P.read_plans(str(path))
    assert str(path) in str(exc.value)


def test_missing_plans_file_says_what_to_do(tmp_path):
    with pytest.raises(P.PlansFileError, match="lapo-verl plans --run"):
        P.read_plans(str(tmp_path / "none.json"))


def test_record_writer_is_thread_safe(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    w = RecordWriter(str(tmp_path))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: w.write(LengthRecord(problem_id=str(i % 10), step=1, group_uid=str(i % 10),
                                                     response_length=i, correct=True, time=time.time())),
                      range(2000)))
    records, report = load_records(str(tmp_path))
    assert report.kept == 2000 and report.corrupt == 0
    assert len(os.listdir(tmp_path)) == 1


def _write_lines(path, rows):
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


OLD_ROWS = [  # written before the rename (terse keys), as the reward manager wrote them then
    {"pid": "p1", "step": 1, "uid": "g1", "sid": 0, "gn": 3, "len": 100, "ok": True, "t": 1.0, "why": "match_fast",
     "r": 1.0},
    {"pid": "p1", "step": 1, "uid": "g1", "sid": 1, "gn": 3, "len": 300, "ok": True, "t": 1.1, "why": "match_verify",
     "r": 1.0},
    {"pid": "p1", "step": 1, "uid": "g1", "sid": 2, "gn": 3, "len": 999, "ok": False, "t": 1.2, "why": "mismatch",
     "r": 0.0},
    {"pid": "p2", "step": 2, "uid": "g2", "sid": 0, "gn": 2, "len": 40, "ok": True, "t": 2.0, "plan": 50.0,
     "r2": 0.5, "r": 1.4},
    {"pid": "p2", "step": 2, "uid": "g2", "sid": 1, "gn": 2, "len": 60, "ok": 0, "t": 2.1, "plan": 50.0, "r2": 0.0,
     "r": 0.0},
]


def test_old_and_mixed_record_files_load_like_new_ones(tmp_path):
    """Records of earlier runs (terse keys) load through the one reader; a resumed run mixes both spellings."""
    from lapo_verl.stats import step_table

    old_dir, mixed_dir, new_dir = tmp_path / "old", tmp_path / "mixed", tmp_path / "new"
    for d in (old_dir, mixed_dir, new_dir):
        d.mkdir()
    _write_lines(old_dir / "records-h-1-1.jsonl", OLD_ROWS)
    new_rows = [LengthRecord.from_json(r).to_json() for r in OLD_ROWS]
    assert "pid" not in new_rows[0] and new_rows[0]["problem_id"] == "p1" and new_rows[3]["plan_closeness"] == 0.5
    _write_lines(new_dir / "records-h-1-1.jsonl", new_rows)
    # an old process's file and a new process's file in one directory, and a file mixing both spellings
    _write_lines(mixed_dir / "records-h-1-1.jsonl", OLD_ROWS[:2])
    _write_lines(mixed_dir / "records-h-2-2.jsonl", [new_rows[2], OLD_ROWS[3], new_rows[4]])
    loaded = {name: load_records(str(d)) for name, d in (("old", old_dir), ("mixed", mixed_dir), ("new", new_dir))}
    for records, report in loaded.values():
        assert report.kept == 5 and report.corrupt == 0
    assert loaded["old"][0] == loaded["mixed"][0] == loaded["new"][0]
    records = loaded["old"][0]
    assert [r.correct for r in records] == [True, True, False, True, False]
    assert records[0].grade_reason == "match_fast" and records[3].plan == 50.0 and records[3].reward == 1.4
    doc = P.build_plans(records)
    assert doc["plans"] == {"p1": 200, "p2": 40}
    table = step_table(records)
    assert table[1]["plan_abs_error_p50"] == 10.0 and table[1]["plan_bonus_mean_correct"] == 0.5
    # the writer writes only today's names
    w = RecordWriter(str(tmp_path / "w"))
    w.write(records[3])
    written = json.loads(open(w.path).read())
    assert written == new_rows[3] and not set(written) & {"pid", "uid", "sid", "gn", "len", "ok", "t", "why", "r"}
    # old events (``t``) still roll back records of redone steps
    (old_dir / "events.jsonl").write_text(json.dumps({"t": 1.5, "event": "start", "resume_step": 0}) + "\n")
    records, report = load_records(str(old_dir))
    assert report.starts == 1 and report.rolled_back == 3 and report.kept == 2  # step-1 rows were written before


def test_malformed_records_are_reported_with_file_row_and_field(tmp_path):
    path = tmp_path / "records-h-1-1.jsonl"
    rows = [
        OLD_ROWS[0],
        {"pid": "p1", "step": 1, "ok": True, "t": 1.0},  # no length
        {"problem_id": "p1", "step": 1, "response_length": -3, "correct": True, "time": 1.0},
        {"problem_id": "p1", "pid": "p9", "step": 1, "response_length": 3, "correct": True, "time": 1.0},
        {"problem_id": "p1", "step": "1", "response_length": 3, "correct": True, "time": 1.0},
    ]
    _write_lines(path, rows)
    with open(path, "a") as fh:
        fh.write('{"problem_id": "c", "st')  # torn last line
    records, report = load_records(str(tmp_path))
    assert report.kept == 1 and report.corrupt == 5
    examples = report.corrupt_examples
    assert examples[0].startswith(f"{path}:2: ") and "'response_length'" in examples[0] and "'len'" in examples[0]
    assert examples[1].startswith(f"{path}:3: ") and "'response_length'" in examples[1]
    assert examples[2].startswith(f"{path}:4: ") and "'problem_id'" in examples[2] and "'pid'" in examples[2]
    assert examples[3].startswith(f"{path}:5: ") and "'step'" in examples[3]
    assert examples[4].startswith(f"{path}:6: ")  # the torn line, as lapo_verl.jsonl reports it


def test_old_snapshot_loads_and_plans_cli_reads_it(tmp_path, capsys):
    from lapo_verl.cli import main

    snap = tmp_path / "lapo_records.jsonl"
    _write_lines(snap, OLD_ROWS)
    out = tmp_path / "plans.json"
    assert main(["plans", "--records", str(snap), "--out", str(out)]) == 0
    assert P.read_plans(str(out))[0] == {"p1": 200, "p2": 40}
