"""Importing this module registers the CPU backend (when ``VERL_PLATFORM=cpu``).

For ``VERL_USE_EXTERNAL_MODULES=lapo_verl.cpu_backend.register``: loads the CPU backend in every verl process
without going through the ``verl.plugins`` entry point (e.g. to debug the entry point itself).
"""

from lapo_verl.cpu_backend import register_if_selected

register_if_selected()
