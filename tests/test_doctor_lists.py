"""`lapo-verl doctor` checks the registrations the plugin really makes: its lists match the ``@register``
decorators of the reward managers and advantage estimators (a removed or renamed manager once made CI's
`lapo-verl doctor` fail on a healthy install)."""

from __future__ import annotations

import re
from pathlib import Path

from lapo_verl import doctor

VERL_EXT = Path(__file__).resolve().parents[1] / "lapo_verl" / "verl_ext"


def registered(module: str, decorator: str) -> set[str]:
    return set(re.findall(rf'@{decorator}\("([^"]+)"\)', (VERL_EXT / module).read_text()))


def test_doctor_reward_managers_are_the_registered_ones():
    assert set(doctor.REWARD_MANAGERS) == registered("reward_managers.py", "register")


def test_doctor_advantage_estimators_are_registered():
    text = (VERL_EXT / "advantage.py").read_text()
    for name in doctor.ADV_ESTIMATORS:
        assert f'"{name}"' in text, f"doctor checks advantage estimator {name!r}, advantage.py does not register it"
