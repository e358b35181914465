"""verl plugin entry point (group ``verl.plugins``), imported by ``import verl`` in every verl process.

verl swallows exceptions raised here (they are logged at DEBUG level only), so a broken install shows up
later as "Unknown reward manager". ``lapo-verl doctor`` imports this module directly and shows the real
error. Keep it light: only registrations, no heavy imports.
"""

from lapo_verl.hydra_setup import register_config_hooks

register_config_hooks()  # resolvers + the +recipe= search path (also used without verl by `lapo-verl resolve`)

# Reward managers (verl.experimental.reward_loop registry) and advantage estimators (core_algos registry).
from lapo_verl.verl_ext import advantage as _advantage  # noqa: E402,F401
from lapo_verl.verl_ext import reward_managers as _reward_managers  # noqa: E402,F401

# The CPU backend (platform + transformers rollout) registers itself only when VERL_PLATFORM=cpu.
from lapo_verl.cpu_backend import register_if_selected as _register_cpu_backend  # noqa: E402

_register_cpu_backend()
