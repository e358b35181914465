"""End to end on CPU: tiny random models generate on the shipped fixtures; grading, counting, the
report; the table recomputed from the per-sample files; resume; bad inputs."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from lapo_verl.eval import benchmarks as bm
from lapo_verl.eval.cli import eval_main
from lapo_verl.eval.generate import Completion, SamplingConfig, TransformersBackend, load_tokenizer, render_prompt
from lapo_verl.eval.report import main as report_main
from lapo_verl.eval.runner import SAMPLE_FIELDS, RunConfig, read_samples, run_eval
from lapo_verl.prompts import render_plan

MAX_NEW = 24


def _samples(out: Path, bench: str) -> list[dict]:
    return [json.loads(line) for line in (out / "samples" / f"{bench}.jsonl").read_text().splitlines()]


def _eval(model, out, *extra):
    return eval_main(["--model", str(model), "--out", str(out), "--data", "fixtures", "--samples", "2",
                      "--max-new-tokens", str(MAX_NEW), "--no-progress", *extra])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, eval_model_dir, eval_model_dir_b):
    root = tmp_path_factory.mktemp("runs")
    assert _eval(eval_model_dir, root / "tiny_a") == 0
    assert _eval(eval_model_dir_b, root / "tiny_b", "--name", "tiny-b") == 0
    return root


def test_cli_help():
    for fn in (eval_main, report_main):
        with pytest.raises(SystemExit) as e:
            fn(["--help"])
        assert e.value.code == 0


def test_end_to_end_layout_and_per_sample_schema(two_runs, eval_model_dir):
    out = two_runs / "tiny_a"
    assert sorted(p.name for p in out.iterdir()) == ["problems", "run.json", "samples", "summary.json"]
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["benchmarks"] == list(bm.DEFAULT_BENCHMARKS)
    assert manifest["backend"] == "transformers"
    assert manifest["sampling"] == {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": MAX_NEW, "seed": 0}
    for bench in bm.DEFAULT_BENCHMARKS:
        problems = [json.loads(x) for x in (out / "problems" / f"{bench}.jsonl").read_text().splitlines()]
        assert len(problems) == 10 and all(p["prompt"].endswith("<|im_start|>assistant\n") for p in problems)
        recs = _samples(out, bench)
        assert len(recs) == 20
        assert {(r["problem_id"], r["sample"]) for r in recs} == {(p["id"], k) for p in problems for k in (0, 1)}
        for r in recs:
            assert tuple(r) == SAMPLE_FIELDS
            assert 1 <= r["n_tokens"] <= MAX_NEW
            assert r["truncated"] == (r["finish_reason"] == "length")
            if r["truncated"]:
                assert r["n_tokens"] == MAX_NEW
            # (re-tokenising the decoded text of a random model gives other counts: counts come from the ids)
            assert isinstance(r["correct"], bool)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["benchmarks"]["aime24"]["n_samples"] == 20


def test_report_table_recomputed_from_per_sample_files(two_runs, tmp_path):
    table, plot = tmp_path / "table.md", tmp_path / "frontier.png"
    rc = report_main([str(two_runs / "tiny_a"), str(two_runs / "tiny_b"), "--out", str(table), "--plot", str(plot),
                      "--base", "tiny_a", "--published", "deepscaler"])
    assert rc == 0
    assert plot.stat().st_size > 5000 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = table.read_text()
    assert "| tiny_a |" in md and "| tiny-b |" in md and "LAPO-I (paper)" in md and "#Tok vs tiny_a" in md
    rows = {r["model"]: r for r in csv.DictReader(open(tmp_path / "table.csv"))}
    base_tok = None
    for name, d in (("tiny_a", "tiny_a"), ("tiny-b", "tiny_b")):
        accs, toks = [], []
        for bench in bm.DEFAULT_BENCHMARKS:
            by = defaultdict(list)
            recs = _samples(two_runs / d, bench)
            for r in recs:
                by[r["problem_id"]].append(r["correct"])
            acc = 100 * sum(sum(v) / len(v) for v in by.values()) / len(by)
            tok = sum(r["n_tokens"] for r in recs) / len(recs)
            assert float(rows[name][f"{bench}_pass@1"]) == pytest.approx(acc, abs=1e-3)
            assert float(rows[name][f"{bench}_tokens"]) == pytest.approx(tok, abs=0.01)
            accs.append(acc)
            toks.append(tok)
        avg_tok = sum(toks) / 4
        assert float(rows[name]["avg_pass@1"]) == pytest.approx(sum(accs) / 4, abs=1e-3)
        assert float(rows[name]["avg_tokens"]) == pytest.approx(avg_tok, abs=0.01)
        base_tok = base_tok or avg_tok
        assert float(rows[name]["rel_tokens_pct"]) == pytest.approx(100 * (avg_tok / base_tok - 1), abs=0.01)
        assert f"| {name} | " + " | ".join(
            f"{a:.1f} | {t:.0f}" for a, t in zip(accs, toks)) in md.replace("\\|", "|")
    assert rows["LAPO-I (paper)"]["avg_tokens"] == "3832.0"


class ScriptedBackend:
    """Answers known problems: sample 0 states a plan and is correct; sample 1 boxes the right answer but
    never closes its reasoning (the paper prompt opens ``<think>``: no answer, as in training); the others
    are wrong."""

    name = "scripted"

    def __init__(self, tokenizer, problems, style="chat"):
        self.tok = tokenizer
        self.by_prompt = {tuple(render_prompt(tokenizer, p["problem"], style)[1]): p for p in problems}
        self.calls = 0

    def generate(self, prompts, n, sampling, seeds):
        self.calls += 1
        out = []
        for ids in prompts:
            p = self.by_prompt[tuple(ids)]
            comps = []
            for k in range(n):
                if k == 0:
                    text = render_plan(50) + f" easy. </think> \\boxed{{{p['answer']}}}"
                elif k == 1:
                    text = f"still thinking, maybe \\boxed{{{p['answer']}}}"
                else:
                    text = "</think> \\boxed{-12345}"
                tids = self.tok(text, add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]
                comps.append(Completion(text=text, token_ids=tids, finish_reason="stop"))
            out.append(comps)
        return out


def test_grading_counting_and_plans_with_scripted_responses(tmp_path, eval_model_dir):
    tok = load_tokenizer(eval_model_dir)
    problems = [p for b in ("aime24", "amc23") for p in bm.load_benchmark(b, "fixtures")]
    backend = ScriptedBackend(tok, problems, style="paper")
    cfg = RunConfig(model=str(eval_model_dir), out=str(tmp_path / "r"), benchmarks=["aime24", "amc23"], samples=4,
                    data="fixtures", prompt_style="paper", progress=False)
    summary = run_eval(cfg, backend_factory=lambda t: backend)
    for bench in ("aime24", "amc23"):
        m = summary["benchmarks"][bench]
        assert m["pass@1"] == pytest.approx(0.25)
        assert m["plan"]["stated_frac"] == pytest.approx(0.25) and m["plan"]["at_start_frac"] == pytest.approx(0.25)
        recs = _samples(tmp_path / "r", bench)
        for r in recs:
            assert r["n_tokens"] == len(tok(r["response"], add_special_tokens=False)["input_ids"]) + 1
            if r["sample"] == 0:
                assert r["correct"] and r["extracted"] is not None and r["stated_plan"] == 50
                assert r["plan_abs_err"] == abs(r["n_tokens"] - 50)
            elif r["sample"] == 1:  # the prompt opened <think>: same prefilled-reasoning rule as training
                assert not r["correct"] and r["extracted"] is None and r["grade_reason"] == "no_answer"
            else:
                assert not r["correct"] and r["extracted"] == "-12345" and r["stated_plan"] is None
    prompt = json.loads((tmp_path / "r" / "problems" / "aime24.jsonl").read_text().splitlines()[0])["prompt"]
    assert prompt.endswith("Assistant: <think>") and "User: Every morning Aya" in prompt
    # the report shows the self-stated plan table
    assert report_main([str(tmp_path / "r"), "--out", str(tmp_path / "t.md")]) == 0
    assert "Self-stated plans" in (tmp_path / "t.md").read_text()


class Interrupting:
    def __init__(self, inner, fail_after=None):
        self.inner, self.fail_after, self.calls, self.name = inner, fail_after, 0, "transformers"

    def generate(self, *a, **k):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        return self.inner.generate(*a, **k)


def test_interrupted_run_resumes_without_redoing_finished_problems(tmp_path, eval_model_dir):
    def cfg(out):
        return RunConfig(model=str(eval_model_dir), out=str(out), benchmarks=["aime24", "math500"], samples=2,
                         sampling=SamplingConfig(max_new_tokens=16), data="fixtures", chunk_problems=2,
                         progress=False)

    def backend(fail_after=None):
        return lambda tok: Interrupting(TransformersBackend(eval_model_dir, tok, batch_size=4), fail_after)

    ref = tmp_path / "uninterrupted"
    run_eval(cfg(ref), backend_factory=backend())

    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_eval(cfg(out), backend_factory=backend(fail_after=3))  # aime24 stops after 6 problems
    assert len(_samples(out, "aime24")) == 12 and not (out / "samples" / "math500.jsonl").exists()
    # a run killed in the middle of a write leaves a torn last line
    with open(out / "samples" / "aime24.jsonl", "a") as f:
        f.write('{"benchmark": "aime24", "problem_id": "2024-I-1')

    resumed = Interrupting(None)
    resumed.inner = TransformersBackend(eval_model_dir, load_tokenizer(eval_model_dir), batch_size=4)
    summary = run_eval(cfg(out), backend_factory=lambda tok: resumed)
    assert resumed.calls == 2 + 5  # aime24: the 4 unfinished problems; math500: all 10 (2 per call)
    assert summary["complete"]
    for bench in ("aime24", "math500"):
        recs = _samples(out, bench)
        assert len(recs) == 20 and len({(r["problem_id"], r["sample"]) for r in recs}) == 20
        # same seeds and batches: a resumed run generates exactly what an uninterrupted one does
        assert (out / "samples" / f"{bench}.jsonl").read_text() == (ref / "samples" / f"{bench}.jsonl").read_text()
    assert json.loads((out / "run.json").read_text())["resumed"] == 1
    # nothing left to do: no backend is even built
    run_eval(cfg(out), backend_factory=lambda tok: pytest.fail("backend built for a finished run"))


def test_unknown_benchmark(tmp_path, eval_model_dir, capsys):
    assert _eval(eval_model_dir, tmp_path / "x", "--benchmarks", "math500,gsm8k") == 2
    assert "unknown benchmark 'gsm8k'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_model_dir_without_tokenizer(tmp_path, model_without_tokenizer, capsys):
    assert _eval(model_without_tokenizer, tmp_path / "x", "--benchmarks", "aime24") == 2
    assert "no tokenizer" in capsys.readouterr().err
    assert _eval(tmp_path / "does-not-exist", tmp_path / "y", "--benchmarks", "aime24") == 2


def test_results_dir_from_a_different_benchmark_set_or_model(tmp_path, eval_model_dir, eval_model_dir_b, capsys):
    out = tmp_path / "r"
    assert _eval(eval_model_dir, out, "--benchmarks", "aime24", "--limit", "2") == 0
    capsys.readouterr()
    assert _eval(eval_model_dir, out, "--benchmarks", "amc23", "--limit", "2") == 2
    assert "different benchmarks" in capsys.readouterr().err
    assert _eval(eval_model_dir_b, out, "--benchmarks", "aime24", "--limit", "2") == 2
    assert "different model" in capsys.readouterr().err
    assert _eval(eval_model_dir, out, "--benchmarks", "aime24", "--limit", "3") == 2  # another problem set
    # --force moves the old run aside
    assert _eval(eval_model_dir, out, "--benchmarks", "amc23", "--limit", "2", "--force") == 0
    backups = list(out.glob("replaced-*"))
    assert len(backups) == 1 and (backups[0] / "samples" / "aime24.jsonl").is_file()
    assert sorted(p.stem for p in (out / "samples").iterdir()) == ["amc23"]


def test_report_refuses_mixed_benchmark_sets_and_incomplete_runs(tmp_path, eval_model_dir, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _eval(eval_model_dir, a, "--benchmarks", "aime24", "--limit", "2") == 0
    assert _eval(eval_model_dir, b, "--benchmarks", "amc23", "--limit", "2") == 0
    capsys.readouterr()
    assert report_main([str(a), str(b), "--out", str(tmp_path / "t.md")]) == 2
    assert "not comparable" in capsys.readouterr().err
    assert report_main([str(a), str(b), "--out", str(tmp_path / "t.md"), "--allow-mismatch"]) == 0
    assert report_main([str(tmp_path), "--out", str(tmp_path / "t.md")]) == 2  # not a results dir
    # an unfinished run: drop the last problem's samples
    path = a / "samples" / "aime24.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]))
    capsys.readouterr()
    assert report_main([str(a), "--out", str(tmp_path / "t.md")]) == 2
    assert "incomplete" in capsys.readouterr().err
    assert report_main([str(a), "--out", str(tmp_path / "t.md"), "--allow-incomplete"]) == 0
    assert len(read_samples(path)) == 2


def test_vllm_backend_missing_fails_cleanly_and_leaves_nothing_blocking(tmp_path, eval_model_dir, capsys):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    out = tmp_path / "r"
    assert _eval(eval_model_dir, out, "--benchmarks", "aime24", "--limit", "2", "--backend", "vllm") == 2
    assert "needs vLLM" in capsys.readouterr().err
    assert not (out / "run.json").exists() and not (out / "samples").exists()
    assert _eval(eval_model_dir, out, "--benchmarks", "aime24", "--limit", "2", "--backend", "transformers") == 0


def test_ctrl_c_during_grading_stores_no_verdict(tmp_path, eval_model_dir, monkeypatch):
    """A KeyboardInterrupt inside the grader stops the run; no sample of the interrupted problem is
    written (nothing is stored as an "error" verdict), and a resumed run grades it normally."""
    import lapo_verl.grading as grading

    tok = load_tokenizer(eval_model_dir)
    problems = bm.load_benchmark("aime24", "fixtures")
    cfg = RunConfig(model=str(eval_model_dir), out=str(tmp_path / "r"), benchmarks=["aime24"], samples=4,
                    data="fixtures", prompt_style="paper", progress=False, chunk_problems=1)
    real, calls = grading.grade_completion, []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 4 * 2 + 2:  # third problem, third sample
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(grading, "grade_completion", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_eval(cfg, backend_factory=lambda t: ScriptedBackend(tok, problems, style="paper"))
    recs = _samples(tmp_path / "r", "aime24")
    assert len(recs) == 8 and {r["problem_id"] for r in recs} == {p["id"] for p in problems[:2]}
    assert all(r["grade_reason"] != "error" for r in recs)
    monkeypatch.setattr(grading, "grade_completion", real)
    summary = run_eval(cfg, backend_factory=lambda t: ScriptedBackend(tok, problems, style="paper"))
    recs = _samples(tmp_path / "r", "aime24")
    assert summary["complete"] and len(recs) == 4 * len(problems)
    assert all(r["grade_reason"] != "error" for r in recs)
