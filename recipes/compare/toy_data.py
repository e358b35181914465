"""Write a tiny toy-arithmetic train/val parquet in verl's format with stable ids (CPU plumbing runs only).

    python recipes/compare/toy_data.py OUT_DIR [--train 16] [--val 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def write(path: Path, n: int, offset: int, split: str) -> None:
    import pandas as pd

    rows = []
    for i in range(n):
        a, b = 3 + i + offset, 7 + 2 * i
        rows.append({
            "data_source": "toy_add",
            "prompt": [{"role": "user", "content": f"What is {a} + {b}? Put the answer in \\boxed{{}}."}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(a + b)},
            "extra_info": {"index": f"toy-{split}-{i}", "split": split},
            "lapo_problem_id": f"toy-{split}-{i}",
        })
    pd.DataFrame(rows).to_parquet(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=16)
    ap.add_argument("--val", type=int, default=4)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write(out / "train.parquet", args.train, 0, "train")
    write(out / "val.parquet", args.val, 100, "val")
    print(out / "train.parquet", out / "val.parquet")


if __name__ == "__main__":
    main()
