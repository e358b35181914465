"""Hydra search-path plugin: makes ``+recipe=lapo_stage1`` resolve from the installed lapo_verl package.

Hydra discovers this module by scanning the ``hydra_plugins`` namespace package (which must not have an
``__init__.py``). Editable installs in setuptools' default (strict) mode hide namespace contents from
that scan, so :mod:`lapo_verl.plugin` (run by ``import verl``, before ``main_ppo`` composes its config)
also registers the class with Hydra explicitly.
"""

import importlib.util
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


def recipe_search_path() -> str:
    """``pkg://lapo_verl.hydra_conf`` when installed; the source tree's ``hydra_conf/`` otherwise
    (an editable install in setuptools' compat mode only puts the repository root on sys.path)."""
    try:
        if importlib.util.find_spec("lapo_verl.hydra_conf") is not None:
            return "pkg://lapo_verl.hydra_conf"
    except ModuleNotFoundError:
        pass
    import lapo_verl

    return "file://" + str(Path(lapo_verl.__file__).resolve().parent.parent / "hydra_conf")


class LapoVerlSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # Registering the resolvers here covers the driver process; lapo_verl.plugin covers verl's workers.
        from lapo_verl.resources import register_resolvers

        register_resolvers()
        search_path.append(provider="lapo-verl", path=recipe_search_path())
