"""A real Hugging Face tokenizer with a small vocabulary for the replica task.

verl loads the tokenizer with ``AutoTokenizer`` from the model directory, and transformers builds a
``Qwen2Tokenizer`` for every ``qwen2`` model whatever ``tokenizer_config.json`` says: byte-level BPE with
Qwen's split pattern. So this is a byte-level BPE in exactly that pipeline, trained on the replica's own text
(prompts, plan sentences, traces) with an alphabet of printable ASCII + newline: digits stay single tokens
(Qwen's pattern splits numbers into digits) so any number tokenizes, every word of the prompts and of
``I will answer the question with N tokens.`` becomes one token, ``<think>``, ``</think>``, ``\\boxed{`` are
added tokens, ``<|im_start|>``/``<|im_end|>`` (EOS) and ``<|endoftext|>`` (pad) are special.
Chat template: ChatML whose generation prompt opens the reasoning, ``<|im_start|>assistant\\n<think>\\n``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

# Qwen2 pre-tokenizer split pattern (identical in the Qwen2/Qwen2.5 tokenizer.json and qwen.tiktoken users);
# the dev test assets (recipes/dev/assets.py) build their tokenizers with it too.
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# not special: they must survive decode(skip_special_tokens=True) and reach the grader
ADDED = ["<think>", "</think>", "\\boxed{"]
CHARS = [chr(c) for c in range(32, 127)] + ["\n"]

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n<think>\n' }}{%- endif -%}"
)


def training_text() -> list[str]:
    """The text the BPE merges are learned from: prompts, plan sentences, traces (fixed seed)."""
    from lapo_verl.prompts import build_messages, render_plan
    from lapo_verl.replica import task

    rng = random.Random(0)
    out = []
    for p in task.make_problems(120, 99, "tok"):
        out.append(f"<|im_start|>user\n{build_messages(p.text)[0]['content']}<|im_end|>\n")
        out.append("<|im_start|>assistant\n<think>\n" + render_plan(rng.randint(1, 999)) + "\n")
        out.append(task.trace(p, rng)[0])
    out += ["<|im_start|>system\n", "<|im_start|>assistant\n"]
    return out * 3


def qwen2_pipeline(core):
    """Give a ``tokenizers.Tokenizer`` Qwen2's pipeline (NFC, Qwen's split pattern, byte-level pre-tokenizer and
    decoder) and return it. The replica's and the dev assets' tokenizers all start here."""
    from tokenizers import Regex, decoders, normalizers, pre_tokenizers

    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    return core


def save_as_qwen2(tok, out_dir: str | Path, chat_template: str, config_updates: dict | None = None) -> Path:
    """``save_pretrained`` a ``PreTrainedTokenizerFast`` with ``chat_template``, its class recorded as
    ``Qwen2Tokenizer`` (what AutoTokenizer builds for a qwen2 model anyway) plus ``config_updates`` in
    ``tokenizer_config.json``; returns the directory."""
    tok.chat_template = chat_template
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "Qwen2Tokenizer"
    cfg.update(config_updates or {})
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    return out


def build_tokenizer(out_dir: str | Path):
    """Write the tokenizer (``save_pretrained``, class recorded as ``Qwen2Tokenizer``) and return it."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = qwen2_pipeline(Tokenizer(models.BPE()))
    byte_map = pre_tokenizers.ByteLevel.alphabet()  # all 256 byte characters; keep only what we use
    alphabet = sorted({c for c in byte_map if c in _byte_chars(CHARS)})
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=SPECIAL, initial_alphabet=alphabet,
                                  limit_alphabet=len(alphabet), min_frequency=2, show_progress=False)
    core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    core.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED])
    core.train_from_iterator(training_text(), trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  unk_token=None, model_max_length=512, clean_up_tokenization_spaces=False)
    save_as_qwen2(tok, out_dir, CHAT_TEMPLATE)
    return tok


def _byte_chars(chars: list[str]) -> set[str]:
    """The byte-level characters of ``chars`` (GPT-2's bytes-to-unicode map)."""
    from tokenizers import pre_tokenizers

    pt = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    return {piece for c in chars for piece, _ in pt.pre_tokenize_str(c)}


def vocabulary() -> list[str]:
    """Settings digest input: the tokenizer's definition (alphabet, added tokens, training text)."""
    return SPECIAL + ADDED + CHARS + [str(len(training_text())), CHAT_TEMPLATE]
