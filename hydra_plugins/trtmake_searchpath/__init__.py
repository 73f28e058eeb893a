"""Adds the project's engine_recipes/ folder to Hydra's search path.

A SearchPathPlugin (not `hydra.searchpath` in the primary config) so that a multirun glob
sweep (`target='glob(*)'`) sees every target. The project is the one trtmake itself finds
(TRTMAKE_PROJECT, else the current folder or a parent); outside a project nothing is added.
"""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from trtmake.errors import UserError
from trtmake.project import find_project_root


class TrtmakeSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        try:
            root = find_project_root()
        except UserError:
            return
        search_path.append(provider="trtmake", path=f"file://{root / 'engine_recipes'}")
