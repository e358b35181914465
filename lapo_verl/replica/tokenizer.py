"""A real Hugging Face tokenizer with a ~100-token vocabulary for the replica task.

Digits are single tokens (any number tokenizes), each operator and whitespace character is a token,
the words of the prompts and of the plan sentence are whole tokens, any other letter falls back to
single-letter tokens, so every ASCII text round-trips exactly (decoder: plain concatenation).
Chat template: ChatML whose generation prompt opens the reasoning, ``<|im_start|>assistant\\n<think>\\n``.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

PAD, BOS_UNUSED, IM_START, IM_END = "<|endoftext|>", None, "<|im_start|>", "<|im_end|>"
SPECIAL = [PAD, IM_START, IM_END]
# not special: they must survive decode(skip_special_tokens=True) and be seen by the grader
ADDED = ["<think>", "</think>", "\\boxed{"]
WORDS = [
    # prompt: "Compute 7+5-3. Let's think step by step and output the final answer within \boxed{}."
    "Compute", "Let", "think", "step", "by", "and", "output", "the", "final", "answer", "within",
    # the plan sentence: "I will answer the question with N tokens."
    "I", "will", "question", "with", "tokens",
    # warm-up traces and chat roles
    "check", "user", "assistant", "system",
]
CHARS = list(string.digits) + list("+-=.,'{}\\()*/?!:;<>|_ \n") + list(string.ascii_letters)

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n<think>\n' }}{%- endif -%}"
)


def vocabulary() -> list[str]:
    seen: list[str] = []
    for tok in SPECIAL + ADDED + WORDS + CHARS:
        if tok not in seen:
            seen.append(tok)
    return seen


def split_pattern() -> str:
    words = sorted((w for w in WORDS if len(w) > 1), key=len, reverse=True)
    return r"(?:" + "|".join(re.escape(w) for w in words) + r")(?![A-Za-z])|[\s\S]"


def build_tokenizer(out_dir: str | Path):
    """Write the tokenizer (``save_pretrained``) to ``out_dir`` and return it."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="?"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(split_pattern()), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token=IM_END,
        pad_token=PAD,
        unk_token="?",
        additional_special_tokens=[IM_START],
        clean_up_tokenization_spaces=False,
        model_max_length=512,
    )
    from tokenizers import AddedToken

    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED])
    tok.chat_template = CHAT_TEMPLATE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out))
    return tok
