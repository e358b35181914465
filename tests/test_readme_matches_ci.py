"""CI runs README's commands exactly as README writes them: the install line, the main job and the test command
of the "Set-up: the two commands" block each appear verbatim in .ci/run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Set-up: the two commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_ci_runs_readme_commands_verbatim():
    commands = _setup_block()
    assert "bash recipes/quickstart_cpu.sh" in commands
    assert 'python -m pytest -m "not gpu"' in commands
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    for command in commands:
        if command.startswith("python3 -m venv"):
            continue  # CI makes the venv itself (same command, split over two lines)
        wanted = command.replace("pip install", "pip install --quiet")
        assert command in ci_lines or wanted in ci_lines, f"README command not run by .ci/run: {command}"
    main_job = ci_lines.index("bash recipes/quickstart_cpu.sh")
    tests = ci_lines.index('python -m pytest -m "not gpu"')
    assert main_job < tests
