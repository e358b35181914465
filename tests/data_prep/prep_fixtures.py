"""Helpers for the prepare-data tests: tiny fixtures written into tmp_path, a tiny tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def read_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


DEEPSCALER_ROWS = [
    {"problem": "What is $1+1$?", "answer": "2", "solution": "$1+1=\\boxed{2}$"},
    {"problem": "Compute $3 \\cdot 4$.", "answer": "12", "solution": "It is $\\boxed{12}$."},
    {"problem": "Find $\\sqrt{16}$.", "answer": "4", "solution": "$\\boxed{4}$"},
]

MATH_ROWS = [
    {"problem": "Evaluate $\\frac{1}{2}+\\frac{1}{2}$.", "level": "Level 1", "type": "Algebra",
     "solution": "We get $\\boxed{1}$."},
    {"problem": "Simplify $\\frac{18}{24}$.", "level": "Level 3", "type": "Prealgebra",
     "solution": "First $\\boxed{2}$ is wrong; the answer is $\\boxed{\\frac{3}{4}}$."},
    {"problem": "Find the set.", "level": "Level 5", "type": "Counting & Probability",
     "solution": "It is $\\boxed{\\{1, 2\\}}$."},
]

GSM8K_ROWS = [
    {"question": "Janet has 3 apples and buys 2. How many?", "answer": "3 + 2 = <<3+2=5>>5\n#### 5"},
    {"question": "A house costs $80,000 plus $1,234,000. Total?", "answer": "...\n#### 1,314,000"},
]

MATH500_ROWS = [
    {"problem": "Convert $(0,3)$ to polar.", "solution": "... $\\boxed{(3,\\frac{\\pi}{2})}$",
     "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus", "level": 2,
     "unique_id": "test/precalculus/807.json"},
    {"problem": "What is $2^{10}$?", "solution": "$\\boxed{1024}$", "answer": "1024", "subject": "Algebra",
     "level": 1, "unique_id": "test/algebra/1.json"},
]


def tiny_tokenizer(bos: str | None = None, eos: str | None = None, corpus: tuple[str, ...] = ()):
    """A real PreTrainedTokenizerFast around a BPE trained here in milliseconds."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<unk>"] + [t for t in (bos, eos) if t]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([*corpus, "What is 1+1? <think> </think> \\boxed{}"], trainer=trainer)
    kwargs = {"unk_token": "<unk>"}
    if bos:
        kwargs["bos_token"] = bos
    if eos:
        kwargs["eos_token"] = eos
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
