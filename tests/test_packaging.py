"""Every Python package under lapo_verl/ is listed in setup.py (an editable install hides a missing one; a
wheel or a non-editable install would then fail at import)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def listed_packages() -> set[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "packages":
            return {elt.value for elt in node.value.elts}
    raise AssertionError("setup.py has no packages=[...] list")


def test_every_subpackage_is_installed():
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "lapo_verl").rglob("__init__.py")}
    on_disk = {p for p in on_disk if "hydra_conf" not in p}
    missing = on_disk - listed_packages()
    assert not missing, f"add to setup.py packages=[...]: {sorted(missing)}"
