"""lapo_verl.jsonl: atomic writes leave the old file or the new one; a tolerant read skips and counts torn lines."""

from __future__ import annotations

import json

import pytest

from lapo_verl.jsonl import ReadReport, append_jsonl, atomic_path, atomic_write_json, atomic_write_jsonl, iter_jsonl


def test_atomic_write_replaces_whole_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "doc.json"
    atomic_write_json(path, {"a": 1, "ü": [1, 2]})
    atomic_write_json(path, {"b": 2}, indent=None)
    assert json.loads(path.read_text(encoding="utf-8")) == {"b": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["doc.json"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    atomic_write_jsonl(path, [{"x": 1}])
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text('{"x": 2}\n{"tor')
            raise RuntimeError("crash mid-write")
    assert path.read_text() == '{"x": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]


def test_append_and_tolerant_read_count_torn_lines(tmp_path):
    path = tmp_path / "log.jsonl"
    append_jsonl(path, [{"i": 0}, {"i": 1}], fsync=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"i": 2, "torn\n[1, 2]\n')  # a torn write and a line that is not an object
    append_jsonl(path, [{"i": 3}])
    report = ReadReport()
    rows = list(iter_jsonl(path, report))
    assert [r["i"] for r in rows] == [0, 1, 3]
    assert (report.lines, report.corrupt) == (5, 2)
    assert report.corrupt_examples[0].startswith(f"{path}:3: ")
