"""Length records -> plans: latest solved visit, crash + resume, corrupt lines, bad plans files."""

import json
import os
import time

import pytest

from lapo_verl import plans as P
from lapo_verl.records import RecordWriter, append_event, load_records
from lapo_verl.verl_ext.checkpoint import LapoCheckpointCallback, resolve_resume_step


def write_group(writer, pid, step, lengths, correct, uid=None, gn=None):
    for sid, (n, ok) in enumerate(zip(lengths, correct, strict=True)):
        writer.write({"pid": pid, "step": step, "uid": uid or f"{pid}-{step}", "sid": sid,
                      "gn": gn or len(lengths), "len": n, "ok": ok, "t": time.time()})


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
    write_group(w, "p1", 2, [50, 60], [1, 1], gn=4)  # a crash cut this group at 2 of 4
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
        fh.write('{"pid": "c", "step": 3, "le')
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
    assert {r["pid"] for r in snap} == {"a"}  # only steps <= 1
    (ckpt_root / "latest_checkpointed_iteration.txt").write_text("1")
    assert resolve_resume_step(cfg.trainer) == 1
    cb2 = LapoCheckpointCallback(cfg)
    assert cb2.resume_step == 1
    records, report = load_records(str(rec_dir))
    assert [r["pid"] for r in records] == ["a", "a"] and report.rolled_back == 2  # step 2 is redone
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
        list(pool.map(lambda i: w.write({"pid": str(i % 10), "step": 1, "uid": str(i % 10), "len": i,
                                         "ok": True, "t": time.time()}), range(2000)))
    records, report = load_records(str(tmp_path))
    assert report.kept == 2000 and report.corrupt == 0
    assert len(os.listdir(tmp_path)) == 1
