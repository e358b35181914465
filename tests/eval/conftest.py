"""Fixtures for the evaluation tests: tiny random Qwen2 models with a tiny BPE tokenizer (offline, fast)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _build_tiny(out: Path, seed: int, tokenizer_dir: Path | None = None) -> Path:
    from recipes.dev.assets import build_tiny_bpe_tokenizer, build_tiny_qwen2

    if tokenizer_dir is None:
        tokenizer_dir = out.parent / f"{out.name}-tok"
        build_tiny_bpe_tokenizer(tokenizer_dir)
    return build_tiny_qwen2(out, tokenizer_dir, seed=seed)


@pytest.fixture(scope="session")
def eval_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen2 (hidden 32, 2 layers) + 1024-token BPE with a ChatML template."""
    return _build_tiny(tmp_path_factory.mktemp("eval_models") / "tiny-a", seed=0)


@pytest.fixture(scope="session")
def eval_model_dir_b(tmp_path_factory, eval_model_dir) -> Path:
    """Same tokenizer, other random weights (a second "model" for the report)."""
    return _build_tiny(tmp_path_factory.mktemp("eval_models_b") / "tiny-b", seed=1, tokenizer_dir=eval_model_dir)


@pytest.fixture()
def model_without_tokenizer(tmp_path, eval_model_dir) -> Path:
    out = tmp_path / "no-tokenizer"
    out.mkdir()
    for item in eval_model_dir.iterdir():
        if item.name in ("config.json", "generation_config.json") or item.suffix == ".safetensors":
            shutil.copy2(item, out / item.name)
    return out
