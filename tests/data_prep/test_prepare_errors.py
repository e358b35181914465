"""Bad input: every error names file, row and field; nothing is dropped silently."""

from __future__ import annotations

import json
import sys

import pytest
from prep_fixtures import DEEPSCALER_ROWS, GSM8K_ROWS, MATH_ROWS, read_rows, write_jsonl, write_parquet

from lapo_verl.data.prepare import Options, main, prepare
from lapo_verl.data.schema import RowError


def error_of(capsys, *argv) -> str:
    """Run the command, expect failure, return the one-line error it printed."""
    assert main([str(a) for a in argv] + ["--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lapo-verl prepare-data: error: ")
    assert "Fix:" in err
    return err


def assert_names(err: str, file, row: int, field: str) -> None:
    assert str(file) in err
    assert f"row {row}:" in err
    assert f"field '{field}'" in err


CASES = {
    # name: (rows, row number of the bad row, field, words in the message)
    "missing problem": ([DEEPSCALER_ROWS[0], {"answer": "3", "problem": None}], 2, "problem", "missing problem"),
    "blank problem": ([DEEPSCALER_ROWS[0], {"problem": "  ", "answer": "3"}], 2, "problem", "empty problem"),
    "missing answer": ([DEEPSCALER_ROWS[0], {"problem": "Q2", "solution": "s"}], 2, "answer", "missing answer"),
    "empty answer": ([DEEPSCALER_ROWS[0], {"problem": "Q2", "answer": " "}], 2, "answer", "empty answer"),
    "non-text problem": ([DEEPSCALER_ROWS[0], {"problem": ["a"], "answer": "1"}], 2, "problem", "must be text"),
    "lone surrogate": ([DEEPSCALER_ROWS[0], {"problem": "bad \udc80 text", "answer": "1"}], 2, "problem", "UTF-8"),
    "duplicate text": ([DEEPSCALER_ROWS[0], DEEPSCALER_ROWS[1], DEEPSCALER_ROWS[0]], 3, "problem",
                       "duplicate problem text (same as"),
    "math without box": ([MATH_ROWS[0], {**MATH_ROWS[1], "solution": "no box here"}], 2, "solution", "\\boxed"),
    "math empty box": ([MATH_ROWS[0], {**MATH_ROWS[1], "solution": "so $\\boxed{}$."}], 2, "solution", "empty answer"),
    "math unbalanced box": ([MATH_ROWS[0], {**MATH_ROWS[1], "solution": "$\\boxed{\\frac{1}{2}$"}], 2, "solution",
                            "balanced braces"),
    "gsm8k without ####": ([GSM8K_ROWS[0], {"question": "Q2", "answer": "it is 4"}], 2, "answer", "'####'"),
    "not an object": ([DEEPSCALER_ROWS[0], ["a", "list"]], 2, "<row>", "expected an object"),
}


NOT_IN_PARQUET = {"non-text problem", "lone surrogate", "not an object"}  # not representable in a parquet column


@pytest.mark.parametrize(
    "name, fmt", [(n, "jsonl") for n in CASES] + [(n, "parquet") for n in CASES if n not in NOT_IN_PARQUET]
)
def test_bad_row_errors_name_file_row_and_field(name, fmt, tmp_path, capsys):
    rows, row, fld, words = CASES[name]
    src = (write_jsonl if fmt == "jsonl" else write_parquet)(tmp_path / f"in.{fmt}", rows)
    err = error_of(capsys, src, "--out", tmp_path / "out.parquet")
    assert_names(err, src, row, fld)
    assert words in err
    assert not (tmp_path / "out.parquet").exists()  # nothing written on failure


def test_non_utf8_bytes_in_jsonl(tmp_path, capsys):
    src = tmp_path / "latin1.jsonl"
    src.write_bytes(json.dumps(DEEPSCALER_ROWS[0]).encode() + b"\n" + b'{"problem": "caf\xe9 au lait?", "answer": "1"}\n')
    err = error_of(capsys, src, "--out", tmp_path / "o.parquet")
    assert_names(err, src, 2, "problem")
    assert "not valid UTF-8" in err and "re-encode" in err


def test_non_utf8_bytes_in_parquet_binary_column(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "bin.parquet"
    pq.write_table(pa.table({"problem": pa.array([b"ok?", b"caf\xe9?"], pa.binary()), "answer": ["1", "2"]}), src)
    err = error_of(capsys, src, "--out", tmp_path / "o.parquet")
    assert_names(err, src, 2, "problem")
    assert "not valid UTF-8" in err


def test_broken_json_line(tmp_path, capsys):
    src = tmp_path / "broken.jsonl"
    src.write_text(json.dumps(DEEPSCALER_ROWS[0]) + "\n\n" + '{"problem": "x", "answer": \n', encoding="utf-8")
    err = error_of(capsys, src, "--out", tmp_path / "o.parquet")
    assert_names(err, src, 3, "<line>")  # rows of a jsonl file are its line numbers (blank lines count)
    assert "not valid JSON" in err


def test_duplicate_id_names_both_rows(tmp_path, capsys):
    src = write_jsonl(tmp_path / "ids.jsonl", [{"problem": "A?", "answer": "1", "uid": "x"},
                                               {"problem": "B?", "answer": "2", "uid": "y"},
                                               {"problem": "C?", "answer": "3", "uid": "x"}])
    err = error_of(capsys, src, "--out", tmp_path / "o.parquet", "--id-field", "uid")
    assert_names(err, src, 3, "uid")
    assert "duplicate id 'x'" in err and f"also {src} row 1" in err


def test_missing_id_field(tmp_path, capsys):
    src = write_jsonl(tmp_path / "ids.jsonl", [{"problem": "A?", "answer": "1", "uid": "x"}, {"problem": "B?", "answer": "2"}])
    err = error_of(capsys, src, "--out", tmp_path / "o.parquet", "--id-field", "uid")
    assert_names(err, src, 2, "uid")


def test_duplicate_text_across_files_names_both(tmp_path, capsys):
    a = write_jsonl(tmp_path / "a.jsonl", DEEPSCALER_ROWS)
    b = write_jsonl(tmp_path / "b.jsonl", [DEEPSCALER_ROWS[2]])
    err = error_of(capsys, a, b, "--out", tmp_path / "o.parquet")
    assert_names(err, b, 1, "problem")
    assert f"same as {a} row 3" in err and "--dedupe" in err


def test_unreadable_level_with_level_filter(tmp_path, capsys):
    src = write_jsonl(tmp_path / "m.jsonl", [MATH_ROWS[1], {**MATH_ROWS[2], "level": "Level ?"}])
    err = error_of(capsys, src, "--out", tmp_path / "o.parquet", "--math-levels", "3,4,5")
    assert_names(err, src, 2, "level")


def test_unknown_shape_and_file_errors(tmp_path, capsys):
    src = write_jsonl(tmp_path / "odd.jsonl", [{"text": "A?", "label": "1"}])
    err = error_of(capsys, src, "--out", tmp_path / "o.parquet")
    assert str(src) in err and "row 1" in err and "--problem-field" in err
    err = error_of(capsys, tmp_path / "nope.jsonl", "--out", tmp_path / "o.parquet")
    assert "nope.jsonl: no such file" in err
    (tmp_path / "x.csv").write_text("a,b\n")
    assert "unknown file type" in error_of(capsys, tmp_path / "x.csv", "--out", tmp_path / "o.parquet")
    assert "hf:<dataset>" in error_of(capsys, "hf:only-name", "--out", tmp_path / "o.parquet")


def test_hf_input_without_datasets_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    err = error_of(capsys, "hf:openai/gsm8k:main:train", "--out", tmp_path / "o.parquet")
    assert "hf:openai/gsm8k:main:train" in err and "pip install datasets" in err


def test_bad_arguments_exit_2(tmp_path, capsys):
    src = write_jsonl(tmp_path / "a.jsonl", DEEPSCALER_ROWS)
    for extra in (["--math-levels", "three"], ["--val-fraction", "1.5"], ["--limit", "0"],
                  ["--val-fraction", "0.5", "--split", "test"]):
        with pytest.raises(SystemExit) as exc:
            main([str(src), "--out", str(tmp_path / "o"), *extra])
        assert exc.value.code == 2
    capsys.readouterr()
    err = error_of(capsys, src, "--out", tmp_path / "o.parquet", "--val-fraction", "0.5")
    assert "directory" in err


def test_skip_bad_rows_reports_counts_and_writes_rejects(tmp_path, capsys):
    rows = [DEEPSCALER_ROWS[0], {"problem": "Q2"}, DEEPSCALER_ROWS[1], {"problem": "", "answer": "1"},
            DEEPSCALER_ROWS[0], DEEPSCALER_ROWS[2]]
    src = write_jsonl(tmp_path / "messy.jsonl", rows)
    assert main([str(src), "--out", str(tmp_path / "clean.parquet"), "--skip-bad-rows", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "6 rows in, 3 rows out" in out
    assert "3 bad rows skipped (answer: 1, problem: 2)" in out
    rejects_path = tmp_path / "clean.rejects.jsonl"
    assert f"rejects: {rejects_path}" in out
    rejects = [json.loads(line) for line in rejects_path.read_text().splitlines()]
    assert [(r["file"], r["row"], r["field"]) for r in rejects] == [
        (str(src), 2, "answer"), (str(src), 4, "problem"), (str(src), 5, "problem")]
    assert rejects[0]["record"] == {"problem": "Q2"}
    assert "duplicate" in rejects[2]["error"]
    assert len(read_rows(tmp_path / "clean.parquet")) == 3


def test_prepare_api_raises_row_error_with_attributes(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", [DEEPSCALER_ROWS[0], {"problem": "Q", "answer": ""}])
    with pytest.raises(RowError) as exc:
        prepare([str(src)], str(tmp_path / "o.parquet"), opts=Options(), progress=False)
    assert (exc.value.file, exc.value.row, exc.value.field) == (str(src), 2, "answer")
    assert isinstance(exc.value, ValueError)


def test_hf_input_reads_rows_through_datasets(tmp_path, capsys, monkeypatch):
    import types

    calls = []

    def load_dataset(name, config, split):
        calls.append((name, config, split))
        return list(GSM8K_ROWS)

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    assert main(["hf:openai/gsm8k:main:test", "--out", str(tmp_path / "g.parquet"), "--no-progress"]) == 0
    assert calls == [("openai/gsm8k", "main", "test")]
    rows = read_rows(tmp_path / "g.parquet")
    assert [r["reward_model"]["ground_truth"] for r in rows] == ["5", "1314000"]
    assert rows[1]["extra_info"]["source_file"] == "hf:openai/gsm8k:main:test"
    assert rows[1]["extra_info"]["source_row"] == 2


def test_progress_bar_on_rows(tmp_path, capsys):
    src = write_jsonl(tmp_path / "a.jsonl", DEEPSCALER_ROWS)
    prepare([str(src)], str(tmp_path / "o.parquet"), progress=True)
    err = capsys.readouterr().err
    assert "a.jsonl" in err and "3 rows" in err  # tqdm's bar: "<file>: ... 3/? rows" style


def test_unrecognised_shape_is_fatal_even_with_skip_bad_rows(tmp_path, capsys):
    src = write_jsonl(tmp_path / "odd.jsonl", [{"text": "A?", "label": "1"}, {"text": "B?", "label": "2"}])
    err = error_of(capsys, src, "--out", tmp_path / "o.parquet", "--skip-bad-rows")
    assert "cannot recognise the row shape" in err and "row 1" in err
