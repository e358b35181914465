"""Hydra search-path plugin: makes ``+recipe=lapo_stage1`` resolve from the installed lapo_verl package.

Hydra discovers this module through the ``hydra_plugins`` namespace package (which must not have an
``__init__.py``), so verl's ``main_ppo`` and ``hydra.compose`` both see our recipes.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class LapoVerlSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # Registering the resolver here covers the driver process; lapo_verl.plugin covers verl's workers.
        from lapo_verl.resources import register_resolvers

        register_resolvers()
        search_path.append(provider="lapo-verl", path="pkg://lapo_verl.hydra_conf")
