"""`lapo-verl run`: the full log goes to a file, the terminal gets one line per training step, and a failed
command ends with its error and the log path."""

from __future__ import annotations

import sys

from lapo_verl.runlog import last_error, parse_step_line, progress_line, run

STEP = ("(TaskRunnerV1 pid=1) step:3 - actor/pg_loss:-0.01 - critic/score/mean:0.375 - response_length/mean:41.25"
        " - lapo/stage1/band_bonus/mean:0.45 - timing_s/step:12.3")


def test_parse_step_line_reads_verl_console_metrics():
    step, metrics = parse_step_line(STEP)
    assert step == 3
    assert metrics["critic/score/mean"] == 0.375 and metrics["timing_s/step"] == 12.3
    assert metrics["actor/pg_loss"] == -0.01
    assert parse_step_line("Training Progress: 50%") is None
    assert parse_step_line("INFO something step:abc") is None


def test_progress_line_shows_lapo_columns_that_are_present():
    _, metrics = parse_step_line(STEP)
    line = progress_line("stage 1", 3, 4, metrics, 12.34)
    assert line.startswith("[stage 1] step 3/4  acc 0.38  len 41.2  band bonus 0.45")
    assert line.endswith("(12.3 s)") and "|len-plan|" not in line
    stage2 = progress_line("stage 2", 1, None, {"lapo/stage2/plan_abs_error/mean": 7.5}, 1.0)
    assert stage2 == "[stage 2] step 1  |len-plan| 7.5  (1.0 s)"


def test_last_error_is_the_last_traceback():
    log = "ok\nTraceback (most recent call last):\n  old\nValueError: old\nmore\n" \
          "Traceback (most recent call last):\n  File x\nKeyError: 'new'\n"
    assert last_error(log) == "Traceback (most recent call last):\n  File x\nKeyError: 'new'"
    assert last_error("a\nb\nRuntimeError: boom\nc") == "RuntimeError: boom\nc"


def _script(tmp_path, body: str):
    path = tmp_path / "job.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_run_success_prints_progress_only_and_logs_everything(tmp_path):
    cmd = _script(tmp_path, "import sys\nprint('noise ' * 20)\n"
                            "for s in (1, 2):\n    print(f'step:{s} - critic/score/mean:0.5 - timing_s/step:1.0')\n")
    shown = []
    code = run(cmd, tmp_path / "logs" / "job.log", "stage 1", 2, echo=shown.append)
    assert code == 0
    assert [s.split("  ")[0] for s in shown[1:3]] == ["[stage 1] step 1/2", "[stage 1] step 2/2"]
    assert shown[-1].startswith("[stage 1] done in")
    assert not any("noise" in s for s in shown)
    assert "noise" in (tmp_path / "logs" / "job.log").read_text()


def test_run_failure_shows_the_error_and_the_log_path(tmp_path):
    cmd = _script(tmp_path, "print('step:1 - timing_s/step:1.0')\nraise FileNotFoundError('data/train.parquet')\n")
    shown = []
    code = run(cmd, tmp_path / "job.log", "stage 2", None, echo=shown.append)
    assert code == 1
    text = "\n".join(shown)
    assert "FAILED (exit code 1)" in text and "FileNotFoundError: data/train.parquet" in text
    assert shown[-1] == f"[stage 2] full log: {tmp_path / 'job.log'}"
