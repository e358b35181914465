"""Write the replica's problems as verl parquet through ``lapo-verl prepare-data`` (stable ids: the
problem's ``pid``, written as ``problem_id``; ``level`` = difficulty), plus the held-out set as JSONL for the
evaluation. Data directories written before the key was renamed (``pid``) still load (:func:`problem_id_of`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lapo_verl.replica import task

VAL_SEED = 3137  # version 4; version 3: 6464, version 2: 4242


def _write_jsonl(path: Path, problems: list[task.Problem]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for p in problems:
            fh.write(json.dumps({"problem_id": p.pid, "problem": p.text, "answer": str(p.answer), "level": p.level})
                     + "\n")


def problem_id_of(row: dict) -> str:
    """The problem id of a replica JSONL row: ``problem_id``, or ``pid`` in files of earlier versions."""
    return row["problem_id"] if "problem_id" in row else row["pid"]


def build_data(out_dir: str | Path, n_train: int = task.TRAIN_SIZE, n_eval: int = task.EVAL_SIZE,
               n_val: int = 24) -> dict[str, str]:
    """train.parquet, val.parquet (verl's validation file: its own seed, never the held-out set) and
    eval.jsonl (the held-out set). Returns their paths and the held-out digest."""
    from lapo_verl.data.prepare import main as prepare_main

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = task.train_problems(n_train)
    heldout = task.eval_problems(n_eval)
    taken = frozenset(p.text for p in train + heldout)
    val = task.make_problems(n_val, VAL_SEED, "val", exclude=taken, unique=True)
    paths = {}
    for name, probs, split in (("train", train, "train"), ("val", val, "val")):
        src = out / f"{name}.jsonl"
        _write_jsonl(src, probs)
        dst = out / f"{name}.parquet"
        code = prepare_main([str(src), "--out", str(dst), "--split", split, "--id-field", "problem_id",
                             "--data-source", "lapo/replica", "--no-progress"])
        if code:
            raise SystemExit(f"lapo-verl prepare-data failed for {src}")
        paths[name] = str(dst)
    _write_jsonl(out / "eval.jsonl", heldout)
    paths["eval"] = str(out / "eval.jsonl")
    paths["eval_digest"] = task.digest(heldout)
    paths["train_digest"] = task.digest(train)
    (out / "digests.json").write_text(json.dumps(paths, indent=1))
    return paths


def load_eval(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="write the replica's train/val parquet and held-out jsonl")
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=task.TRAIN_SIZE)
    ap.add_argument("--eval", type=int, default=task.EVAL_SIZE)
    args = ap.parse_args(argv)
    print(json.dumps(build_data(args.out, args.train, args.eval)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
