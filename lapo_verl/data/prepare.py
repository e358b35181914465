r"""``lapo-verl prepare-data``: math problems -> verl parquet with stable problem ids.

Reads jsonl / json / parquet files or Hugging Face datasets (``hf:<name>[:<config>]:<split>``),
recognises the DeepScaleR, MATH, MATH-500 and GSM8K row shapes, and writes verl's row format
(see :mod:`lapo_verl.data.schema`). Every bad row is an error naming file, row and field; with
``--skip-bad-rows`` bad rows are skipped, counted and written to a rejects side file instead.
"""

from __future__ import annotations

import argparse
import json
import numbers
import os
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from lapo_verl.jsonl import atomic_path
from lapo_verl.data.schema import (
    PROBLEM_ID_COLUMN,
    RowError,
    gsm8k_final_answer,
    last_boxed,
    normalize_problem_text,
    problem_hash_id,
)
from lapo_verl.prompts import PROMPT_STYLES, build_messages

__all__ = ["main", "prepare", "build_parser", "SHAPES", "detect_shape", "PrepareSummary"]

ANSWER_FORMATS = ("raw", "boxed", "gsm8k")


@dataclass(frozen=True)
class Shape:
    """How to read one dataset family."""

    name: str  # also the id prefix and the default data_source suffix
    problem_field: str
    answer_field: str
    answer_format: str  # raw: the field is the answer; boxed: last \boxed{} of it; gsm8k: after '####'
    type_field: str | None = None


SHAPES: dict[str, Shape] = {
    "deepscaler": Shape("deepscaler", "problem", "answer", "raw"),
    "math": Shape("math", "problem", "solution", "boxed", type_field="type"),
    "math500": Shape("math500", "problem", "answer", "raw", type_field="subject"),
    "gsm8k": Shape("gsm8k", "question", "answer", "gsm8k"),
}


def detect_shape(keys: set[str] | list[str]) -> str | None:
    """Shape name from a row's field names, or ``None``.

    >>> detect_shape({"problem", "answer", "solution"}), detect_shape({"problem", "solution", "level", "type"})
    ('deepscaler', 'math')
    >>> detect_shape({"problem", "answer", "unique_id", "subject", "level"}), detect_shape({"question", "answer"})
    ('math500', 'gsm8k')
    """
    keys = set(keys)
    if {"question", "answer"} <= keys and "problem" not in keys:
        return "gsm8k"
    if {"problem", "answer", "unique_id"} <= keys:
        return "math500"
    if {"problem", "answer"} <= keys:
        return "deepscaler"
    if {"problem", "solution"} <= keys:
        return "math"
    return None


# --------------------------------------------------------------------------------------------
# Reading inputs
# --------------------------------------------------------------------------------------------

_BAD_JSON_FIX = "fix the JSON on that line, or pass --skip-bad-rows to skip it and record it in the rejects file"


def _iter_json_lines(path: str) -> Iterator[tuple[int, Any]]:
    """(line number, record) per non-blank line; broken lines yield a RowError instead of a record.
    Bytes are decoded with ``surrogateescape`` so that non-UTF-8 text is reported per field later."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            text = raw.decode("utf-8", errors="surrogateescape").strip()
            if not text:
                continue
            try:
                yield lineno, json.loads(text)
            except json.JSONDecodeError as e:
                yield lineno, RowError(path, lineno, "<line>", f"not valid JSON ({e.msg} at column {e.colno})", _BAD_JSON_FIX)


def _iter_json(path: str) -> Iterator[tuple[int, Any]]:
    """A .json file: a list of objects (row = position, 1-based), or JSON lines saved as .json."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", errors="surrogateescape")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # JSON lines with a .json name (common for HF exports)
            yield from _iter_json_lines(path)
            return
        raise RowError(path, None, None, f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})",
                       "fix the file; a .json input must hold a list of objects or one object per line") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise RowError(path, None, None, f"expected a list of objects, got {type(data).__name__}",
                       "a .json input must hold a list of objects or one object per line")
    for i, record in enumerate(data, start=1):
        yield i, record


def _iter_parquet(path: str) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for unreadable files
        raise RowError(path, None, None, f"cannot read as parquet ({e})", "check the file is a parquet file") from None
    row = 0
    for batch in pf.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            row += 1
            yield row, record


def parse_hf_spec(spec: str) -> tuple[str, str | None, str]:
    """``hf:<dataset>[:<config>]:<split>`` -> (dataset, config, split).

    >>> parse_hf_spec("hf:openai/gsm8k:main:test"), parse_hf_spec("hf:agentica-org/DeepScaleR-Preview-Dataset:train")
    (('openai/gsm8k', 'main', 'test'), ('agentica-org/DeepScaleR-Preview-Dataset', None, 'train'))
    """
    parts = spec[len("hf:"):].split(":")
    if len(parts) == 2 and all(parts):
        return parts[0], None, parts[1]
    if len(parts) == 3 and all(parts):
        return parts[0], parts[1], parts[2]
    raise RowError(spec, None, None, "a Hugging Face input must look like hf:<dataset>[:<config>]:<split>",
                   "e.g. hf:openai/gsm8k:main:train or hf:agentica-org/DeepScaleR-Preview-Dataset:train")


def _iter_hf(spec: str) -> Iterator[tuple[int, Any]]:
    name, config, split = parse_hf_spec(spec)
    try:
        import datasets  # noqa: F401  (optional dependency, imported only for hf: inputs)
    except ImportError:
        raise RowError(spec, None, None, "reading Hugging Face datasets needs the 'datasets' package",
                       "pip install datasets (or download the data as jsonl/parquet and pass the files)") from None
    ds = datasets.load_dataset(name, config, split=split)
    for i, record in enumerate(ds, start=1):
        yield i, record


def iter_input(spec: str) -> Iterator[tuple[int, Any]]:
    """(row, record) pairs from one input; a record may be a RowError for an unparseable row."""
    if spec.startswith("hf:"):
        return _iter_hf(spec)
    if not os.path.isfile(spec):
        raise RowError(spec, None, None, "no such file", "check the path (Hugging Face inputs start with hf:)")
    lower = spec.lower()
    if lower.endswith(".jsonl"):
        return _iter_json_lines(spec)
    if lower.endswith(".json"):
        return _iter_json(spec)
    if lower.endswith(".parquet"):
        return _iter_parquet(spec)
    raise RowError(spec, None, None, "unknown file type",
                   "use a .jsonl, .json or .parquet file, or hf:<dataset>[:<config>]:<split>")


# --------------------------------------------------------------------------------------------
# One row
# --------------------------------------------------------------------------------------------


@dataclass
class Options:
    prompt_style: str = "chat"
    split: str = "train"
    shape: str = "auto"
    problem_field: str | None = None
    answer_field: str | None = None
    answer_format: str | None = None
    id_field: str | None = None
    id_prefix: str | None = None
    data_source: str | None = None
    math_levels: frozenset[int] | None = None


@dataclass
class Resolved:
    shape: Shape
    tag: str
    data_source: str


def _text(record: dict, fld: str, file: str, row: int, *, what: str, fix: str) -> str:
    """A non-empty UTF-8 string field (numbers are accepted and turned into text)."""
    if fld not in record or record[fld] is None:
        raise RowError(file, row, fld, f"missing {what}", fix)
    value = record[fld]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RowError(file, row, fld, f"{what} is not valid UTF-8 (byte {e.start})",
                           "re-encode the file as UTF-8") from None
    elif isinstance(value, numbers.Number) and not isinstance(value, bool):
        value = str(value)
    elif not isinstance(value, str):
        raise RowError(file, row, fld, f"{what} must be text, got {type(value).__name__}", fix)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RowError(file, row, fld, f"{what} is not valid UTF-8 text (undecodable byte or lone surrogate at "
                       f"character {e.start})", "re-encode the file as UTF-8") from None
    if not value.strip():
        raise RowError(file, row, fld, f"empty {what}", fix)
    return value


_LEVEL = re.compile(r"^\s*(?:level\s*)?(\d+)\s*$", re.IGNORECASE)


def parse_level(value: Any) -> int | None:
    """``"Level 3"`` / ``3`` / ``"3"`` -> 3; anything else -> None.

    >>> parse_level("Level 3"), parse_level(5), parse_level("Level ?")
    (3, 5, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        m = _LEVEL.match(value)
        return int(m.group(1)) if m else None
    return None


def resolve_shape(record: Any, file: str, row: int, opts: Options) -> Resolved:
    """The shape of an input, from its first record and the overrides."""
    keys = set(record) if isinstance(record, dict) else set()
    name = opts.shape if opts.shape != "auto" else detect_shape(keys)
    if name is None:
        if not (opts.problem_field and opts.answer_field):
            raise RowError(file, row, None,
                           f"cannot recognise the row shape from its fields {sorted(keys)} "
                           "(known: DeepScaleR problem/answer, MATH problem/solution, MATH-500 problem/answer/unique_id, "
                           "GSM8K question/answer)",
                           "pass --problem-field and --answer-field (and --answer-format if the answer needs extracting)")
        base = Shape("custom", opts.problem_field, opts.answer_field, opts.answer_format or "raw")
    else:
        base = SHAPES[name]
    shape = Shape(
        base.name,
        opts.problem_field or base.problem_field,
        opts.answer_field or base.answer_field,
        opts.answer_format or base.answer_format,
        base.type_field,
    )
    tag = opts.id_prefix or shape.name
    return Resolved(shape, tag, opts.data_source or f"lapo/{shape.name}")


def build_row(record: Any, file: str, row: int, res: Resolved | None, opts: Options) -> dict | None:
    """One output row, ``None`` if filtered out by ``--math-levels``; raises RowError for a bad row.
    ``res`` may be ``None`` only for a record that is not an object (rejected before it is used)."""
    if not isinstance(record, dict) or res is None:
        raise RowError(file, row, "<row>", f"expected an object with named fields, got {type(record).__name__}",
                       "each row must be a JSON object / table row")
    shape = res.shape
    skip_hint = "or pass --skip-bad-rows to skip the row and record it in the rejects file"

    level = None
    if "level" in record and record["level"] is not None:
        level = parse_level(record["level"])
    if opts.math_levels is not None and "level" in record:
        if level is None:
            raise RowError(file, row, "level", f"cannot read a level from {record['level']!r} (needed by --math-levels)",
                           f"use 'Level N' or an integer, {skip_hint}")
        if level not in opts.math_levels:
            return None

    problem = _text(record, shape.problem_field, file, row, what="problem",
                    fix=f"give every row a problem (or choose the field with --problem-field), {skip_hint}")
    answer_fix = f"give every row a non-empty final answer (or choose the field with --answer-field), {skip_hint}"
    raw_answer = _text(record, shape.answer_field, file, row, what="answer", fix=answer_fix)
    if shape.answer_format == "boxed":
        answer = last_boxed(raw_answer)
        if answer is None:
            raise RowError(file, row, shape.answer_field, "no \\boxed{...} with balanced braces found",
                           f"fix the solution, or point --answer-field at a field holding the final answer, {skip_hint}")
    elif shape.answer_format == "gsm8k":
        answer = gsm8k_final_answer(raw_answer)
        if answer is None:
            raise RowError(file, row, shape.answer_field, "no final answer after '####'",
                           f"GSM8K answers end with '#### <number>'; use --answer-format raw if the field is the answer "
                           f"itself, {skip_hint}")
    else:
        answer = raw_answer
    answer = answer.strip()
    if not answer:
        raise RowError(file, row, shape.answer_field, "empty answer", answer_fix)

    if opts.id_field:
        pid = _text(record, opts.id_field, file, row, what="id",
                    fix=f"give every row an id or drop --id-field to use content hashes, {skip_hint}").strip()
    else:
        pid = problem_hash_id(res.tag, problem)

    extra: dict[str, Any] = {
        "index": pid,
        "split": opts.split,
        "source_file": file,
        "source_row": row,
        "level": level,
        "type": None,
    }
    if shape.type_field and isinstance(record.get(shape.type_field), str):
        extra["type"] = record[shape.type_field]
    elif isinstance(record.get("type"), str):
        extra["type"] = record["type"]
    return {
        "data_source": res.data_source,
        "prompt": build_messages(problem, style=opts.prompt_style),
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": extra,
        PROBLEM_ID_COLUMN: pid,
        "_norm_problem": normalize_problem_text(problem),
    }


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


@dataclass
class PrepareSummary:
    rows_in: int = 0
    rows_out: int = 0
    per_source: Counter = field(default_factory=Counter)
    filtered_by_level: int = 0
    duplicates_dropped: int = 0
    bad_rows: int = 0
    bad_by_field: Counter = field(default_factory=Counter)
    outputs: dict = field(default_factory=dict)  # split -> path
    rejects_path: str | None = None
    sampled: Counter | None = None  # --sample-per-input: rows kept per source

    def line(self) -> str:
        sources = ", ".join(f"{k}: {v}" for k, v in sorted(self.per_source.items())) or "none"
        text = (f"prepare-data: {self.rows_in} rows in, {self.rows_out} rows out ({sources}); "
                f"{self.filtered_by_level} filtered by --math-levels; {self.duplicates_dropped} duplicates dropped; "
                f"{self.bad_rows} bad rows skipped")
        if self.bad_rows:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(self.bad_by_field.items())) + ")"
        if self.sampled is not None:
            text += "; sampled per source: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.sampled.items()))
        text += " -> " + ", ".join(f"{k}: {v}" for k, v in self.outputs.items())
        if self.rejects_path:
            text += f"; rejects: {self.rejects_path}"
        return text


def _output_paths(out: str, split: str, val_fraction: float | None) -> dict[str, Path]:
    if val_fraction is not None:
        if out.lower().endswith(".parquet"):
            raise RowError(out, None, None, "--val-fraction writes train.parquet and val.parquet",
                           "give --out a directory, not a .parquet file")
        return {"train": Path(out) / "train.parquet", "val": Path(out) / "val.parquet"}
    if out.lower().endswith(".parquet"):
        return {split: Path(out)}
    return {split: Path(out) / f"{split}.parquet"}


def _arrow_schema():
    import pyarrow as pa

    return pa.schema([
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("extra_info", pa.struct([
            ("index", pa.string()), ("split", pa.string()), ("source_file", pa.string()),
            ("source_row", pa.int64()), ("level", pa.int64()), ("type", pa.string()),
        ])),
        (PROBLEM_ID_COLUMN, pa.string()),
    ])


def write_parquet(rows: list[dict], path: Path) -> None:
    """Write rows atomically (temporary file + rename) with the fixed output schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    table = pa.Table.from_pylist([{k: r[k] for k in schema.names} for r in rows], schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def split_rows(rows: list[dict], val_fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Deterministic train/val split: ids are sorted, shuffled with ``seed`` and the first
    ``round(val_fraction * n)`` (at least 1) go to val; both keep the input order. The result
    depends only on the set of ids and the seed, not on the input order."""
    ids = sorted(r[PROBLEM_ID_COLUMN] for r in rows)
    random.Random(seed).shuffle(ids)
    k = max(1, round(val_fraction * len(ids)))
    if k >= len(ids):
        raise RowError("--val-fraction", None, None,
                       f"{val_fraction} of {len(ids)} rows leaves no training rows", "use a smaller fraction or more data")
    val_ids = set(ids[:k])
    train = [r for r in rows if r[PROBLEM_ID_COLUMN] not in val_ids]
    val = [r for r in rows if r[PROBLEM_ID_COLUMN] in val_ids]
    for r in val:
        r["extra_info"]["split"] = "val"
    return train, val


def sample_rows(rows: list[dict], k: int, *, seed: int, salt: int = 0) -> tuple[list[dict], list[dict]]:
    """A seeded random sample of ``k`` rows and the rest, both in input order. Depends only on the set of
    problem ids, ``seed`` and ``salt`` (the input's position), not on the input order.

    >>> rows = [{"lapo_problem_id": f"p{i}"} for i in range(10)]
    >>> a, rest = sample_rows(rows, 3, seed=0)
    >>> len(a), len(rest), sorted(r["lapo_problem_id"] for r in a) == sorted(r["lapo_problem_id"] for r in sample_rows(rows[::-1], 3, seed=0)[0])
    (3, 7, True)
    """
    ids = sorted(r[PROBLEM_ID_COLUMN] for r in rows)
    random.Random(f"lapo-sample:{seed}:{salt}").shuffle(ids)
    chosen = set(ids[:k])
    return [r for r in rows if r[PROBLEM_ID_COLUMN] in chosen], [r for r in rows if r[PROBLEM_ID_COLUMN] not in chosen]


def prepare(
    inputs: list[str],
    out: str,
    *,
    opts: Options | None = None,
    dedupe: bool = False,
    skip_bad_rows: bool = False,
    rejects_path: str | None = None,
    limit: int | None = None,
    limit_per_input: int | None = None,
    sample_per_input: list[int] | None = None,
    val_fraction: float | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> PrepareSummary:
    """Read ``inputs``, write verl parquet file(s) under ``out``; raises RowError on the first bad
    row unless ``skip_bad_rows``. Returns the summary (``.line()`` is the printed summary).

    ``sample_per_input`` (one count per input, in order): after filtering, dedupe and bad rows, keep a
    seeded random sample of that many rows of each input (:func:`sample_rows`; the paper's mix is
    ``[6000, 4000]`` of DeepScaleR and MATH levels 3-5). With ``val_fraction`` the validation rows are then
    drawn from the rows that were *not* sampled, so the training set is exactly the sample."""
    from tqdm import tqdm

    opts = opts or Options()
    if sample_per_input is not None:
        if len(sample_per_input) != len(inputs):
            raise RowError("--sample-per-input", None, None,
                           f"{len(sample_per_input)} counts for {len(inputs)} inputs",
                           "give one count per input, in the order of the inputs (e.g. 6000,4000)")
        if limit is not None or limit_per_input is not None:
            raise RowError("--sample-per-input", None, None, "cannot be combined with --limit / --limit-per-input",
                           "use one of them")
    per_input: list[list[dict]] = [[] for _ in inputs]
    paths = _output_paths(out, opts.split, val_fraction)
    summary = PrepareSummary()
    rows: list[dict] = []
    rejects: list[dict] = []
    seen_text: dict[str, tuple[str, int]] = {}
    seen_id: dict[str, tuple[str, int]] = {}

    def reject(err: RowError, record: Any) -> None:
        if not skip_bad_rows:
            raise err
        summary.bad_rows += 1
        summary.bad_by_field[err.field or "<file>"] += 1
        rejects.append({**err.to_record(), "record": record if not isinstance(record, RowError) else None})

    done = False
    for input_no, spec in enumerate(inputs):
        if done:
            break
        resolved: Resolved | None = None
        kept_here = 0
        bar = tqdm(iter_input(spec), desc=os.path.basename(spec) or spec, unit=" rows",
                   disable=(None if progress is None else not progress), file=sys.stderr)
        try:
            for row, record in bar:
                summary.rows_in += 1
                if resolved is None and isinstance(record, dict):
                    # The shape comes from the first object row; failing to recognise it is an
                    # error about the whole input, never skipped by --skip-bad-rows.
                    resolved = resolve_shape(record, spec, row, opts)
                try:
                    if isinstance(record, RowError):
                        raise record
                    out_row = build_row(record, spec, row, resolved, opts)
                    if out_row is None:
                        summary.filtered_by_level += 1
                        continue
                    norm = out_row.pop("_norm_problem")
                    pid = out_row[PROBLEM_ID_COLUMN]
                    if norm in seen_text:
                        if dedupe:
                            summary.duplicates_dropped += 1
                            continue
                        f0, r0 = seen_text[norm]
                        raise RowError(spec, row, resolved.shape.problem_field,
                                       f"duplicate problem text (same as {f0} row {r0})",
                                       "remove one of them, pass --dedupe to keep the first, or --skip-bad-rows")
                    if pid in seen_id:
                        f0, r0 = seen_id[pid]
                        raise RowError(spec, row, opts.id_field or PROBLEM_ID_COLUMN,
                                       f"duplicate id {pid!r} (also {f0} row {r0})",
                                       "ids must be unique: fix the id field, or drop --id-field to use content hashes")
                except RowError as err:
                    reject(err, record)
                    continue
                seen_text[norm] = (spec, row)
                seen_id[pid] = (spec, row)
                rows.append(out_row)
                per_input[input_no].append(out_row)
                kept_here += 1
                if limit is not None and len(rows) >= limit:
                    done = True
                    break
                if limit_per_input is not None and kept_here >= limit_per_input:
                    break
        finally:
            bar.close()

    if not rows:
        raise RowError(", ".join(inputs), None, None, "no rows to write (all rows were filtered, duplicates or bad)",
                       "check the inputs and --math-levels")

    if sample_per_input is not None:
        sampled, rest = [], []
        for i, (spec, part, k) in enumerate(zip(inputs, per_input, sample_per_input, strict=True)):
            if k > len(part):
                raise RowError(spec, None, None, f"--sample-per-input asks for {k} rows but the input has {len(part)} "
                               "usable rows (after --math-levels, dedupe and bad rows)", "lower the count or add data")
            chosen, left = sample_rows(part, k, seed=seed, salt=i)
            sampled += chosen
            rest += left
        rows = sampled
        summary.sampled = Counter(r["data_source"] for r in rows)
    if val_fraction is not None and sample_per_input is not None:
        k = max(1, round(val_fraction * len(rows)))
        if k > len(rest):
            raise RowError("--val-fraction", None, None, f"{k} validation rows wanted but only {len(rest)} rows were "
                           "left out of the sample", "use a smaller --val-fraction or sample fewer rows")
        val, _ = sample_rows(rest, k, seed=seed, salt=len(inputs))
        for r in val:
            r["extra_info"]["split"] = "val"
        parts = {"train": rows, "val": val}
    elif val_fraction is not None:
        train, val = split_rows(rows, val_fraction, seed)
        parts = {"train": train, "val": val}
    else:
        parts = {opts.split: rows}
    for split, part in parts.items():
        write_parquet(part, paths[split])
        summary.outputs[split] = f"{paths[split]} ({len(part)} rows)"
    summary.rows_out = sum(len(part) for part in parts.values())
    summary.per_source = Counter(r["data_source"] for part in parts.values() for r in part)

    if rejects:
        if rejects_path is None:
            first = next(iter(paths.values()))
            rejects_path = str(first.with_name(first.stem + ".rejects.jsonl"))
        Path(rejects_path).parent.mkdir(parents=True, exist_ok=True)
        with open(rejects_path, "w", encoding="utf-8") as f:
            for rec in rejects:
                f.write(json.dumps(rec, ensure_ascii=True, default=repr) + "\n")
        summary.rejects_path = rejects_path
    return summary


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

_EPILOG = r"""
row shapes (auto-detected from the first row's fields; force with --shape):
  deepscaler  problem, answer[, solution]          ground truth = answer
  math        problem, solution, level, type       ground truth = last \boxed{...} of solution
  math500     problem, answer, unique_id, subject  ground truth = answer
  gsm8k       question, answer                     ground truth = text after '####', commas removed

output (verl's RLHFDataset format), one row per problem:
  data_source      lapo/<shape> (or --data-source)
  prompt           chat messages (--prompt-style chat|paper)
  ability          "math"
  reward_model     {style: "rule", ground_truth: <answer>}
  extra_info       {index: <problem id>, split, source_file, source_row, level, type}
  lapo_problem_id  <problem id> (same as extra_info.index)

problem ids: the --id-field value if given, else "<shape>-" + sha1(normalised problem)[:12]:
stable across runs and input orderings.

examples:
  # the paper's training mix: 6,000 DeepScaleR + 4,000 MATH levels 3-5 (seeded random samples), paper
  # prompt, 2% validation drawn from the problems not sampled
  lapo-verl prepare-data deepscaler.json math_train.jsonl --math-levels 3,4,5 --sample-per-input 6000,4000 \
      --prompt-style paper --out data/lapo --val-fraction 0.02 --seed 0
  # MATH-500 as a test set
  lapo-verl prepare-data math500_test.jsonl --split test --out data/math500.parquet
  # straight from the Hugging Face hub (needs: pip install datasets)
  lapo-verl prepare-data hf:openai/gsm8k:main:train --out data/gsm8k --limit 1000
  # keep going past bad rows; they are counted and written to <out>.rejects.jsonl
  lapo-verl prepare-data messy.jsonl --skip-bad-rows --dedupe --out data/messy.parquet
"""


def _levels(text: str) -> frozenset[int]:
    try:
        levels = frozenset(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 3,4,5, got {text!r}") from None
    if not levels:
        raise argparse.ArgumentTypeError("give at least one level, e.g. 3,4,5")
    return levels


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        counts = []
    if not counts or any(c <= 0 for c in counts):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers like 6000,4000, got {text!r}")
    return counts


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction strictly between 0 and 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lapo-verl prepare-data",
        description="Turn math problems (jsonl / json / parquet / Hugging Face) into verl parquet rows with "
        "prompts in LAPO's format, ground truths and stable problem ids.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a .jsonl/.json/.parquet file or hf:<dataset>[:<config>]:<split>")
    p.add_argument("--out", required=True,
                   help="output .parquet file, or a directory (gets <split>.parquet, or train/val.parquet)")
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="split name stored in extra_info.split and used for the file name (default: train)")
    p.add_argument("--val-fraction", type=_fraction, default=None,
                   help="also hold out this fraction as val.parquet (deterministic, see --seed)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default: 0)")
    p.add_argument("--prompt-style", choices=PROMPT_STYLES, default="chat",
                   help="chat: user message for the model's own chat template (default); paper: the paper's "
                   "system text + instruction (use with lapo_verl.prompts.PAPER_CHAT_TEMPLATE)")
    p.add_argument("--shape", choices=("auto", *SHAPES), default="auto", help="row shape (default: auto-detect)")
    p.add_argument("--problem-field", help="field holding the problem text (overrides the shape)")
    p.add_argument("--answer-field", help="field holding the answer or solution (overrides the shape)")
    p.add_argument("--answer-format", choices=ANSWER_FORMATS,
                   help="how to get the final answer from the answer field: raw (as is), boxed (last \\boxed{}), "
                   "gsm8k (after '####') (default: from the shape)")
    p.add_argument("--id-field", help="use this field as the problem id (must be unique) instead of a content hash")
    p.add_argument("--id-prefix", help="prefix of content-hash ids (default: the shape name)")
    p.add_argument("--data-source", help="data_source value for every row (default: lapo/<shape>)")
    p.add_argument("--math-levels", type=_levels, default=None, metavar="3,4,5",
                   help="keep only rows whose level is listed (rows without a level field are kept)")
    p.add_argument("--dedupe", action="store_true",
                   help="drop repeated problem texts, keeping the first (default: a repeat is an error)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="skip bad rows, count them and write them to a rejects file (default: stop at the first)")
    p.add_argument("--rejects", default=None,
                   help="rejects file for --skip-bad-rows (default: <output stem>.rejects.jsonl next to the output)")
    p.add_argument("--limit", type=_positive_int, default=None, help="stop after N output rows in total")
    p.add_argument("--limit-per-input", type=_positive_int, default=None, metavar="N",
                   help="take at most N output rows from each input")
    p.add_argument("--sample-per-input", type=_counts, default=None, metavar="N1,N2,...",
                   help="one count per input: a seeded (--seed) random sample of that many usable rows of each "
                   "input (the paper: 6000,4000 of DeepScaleR and MATH levels 3-5); with --val-fraction the "
                   "validation rows come from the rows not sampled")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it is shown on terminals)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.val_fraction is not None and args.split != "train":
        parser.error("--val-fraction splits the rows into train and val; leave --split at train")
    opts = Options(
        prompt_style=args.prompt_style,
        split=args.split,
        shape=args.shape,
        problem_field=args.problem_field,
        answer_field=args.answer_field,
        answer_format=args.answer_format,
        id_field=args.id_field,
        id_prefix=args.id_prefix,
        data_source=args.data_source,
        math_levels=args.math_levels,
    )
    try:
        summary = prepare(
            args.inputs,
            args.out,
            opts=opts,
            dedupe=args.dedupe,
            skip_bad_rows=args.skip_bad_rows,
            rejects_path=args.rejects,
            limit=args.limit,
            limit_per_input=args.limit_per_input,
            sample_per_input=args.sample_per_input,
            val_fraction=args.val_fraction,
            seed=args.seed,
            progress=False if args.no_progress else None,
        )
    except RowError as err:
        print(f"lapo-verl prepare-data: error: {err}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
