"""lapo-verl: LAPO (Length-Adaptive Policy Optimization, arXiv 2507.15758) as a verl plugin.

This module stays import-light on purpose: verl imports the plugin entry point
(:mod:`lapo_verl.plugin`) in every process it starts.
"""

__version__ = "0.1.0"

#: The verl versions this release is tested against (kept in step with setup.py).
SUPPORTED_VERL = (">=0.9.1", "<0.9.2")
