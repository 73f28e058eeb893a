"""Adds the project's engine_recipes/ folder to Hydra's search path.

A SearchPathPlugin (not `hydra.searchpath` in the primary config) so that a multirun glob
sweep (`target='glob(*)'`) sees every target (DESIGN.md section 7).
"""

import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class TrtmakeSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        root = os.environ.get("TRTMAKE_PROJECT_ROOT")
        if root:
            search_path.append(provider="trtmake", path=f"file://{os.path.join(root, 'engine_recipes')}")
