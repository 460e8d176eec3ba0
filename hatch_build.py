"""Editable installs import the package as `nemovideo_mcp`, like a wheel does.

A wheel renames the `server/` folder to `nemovideo_mcp` (`sources` in pyproject.toml), so no
other distribution or local folder called `server` can shadow it. Hatchling's editable wheels
cannot rename a package, so for them this hook adds a `.pth` file whose import registers a
finder that maps `nemovideo_mcp` onto this folder's `server/`. The finder is written out here
rather than taken from `editables`: that would be a run-time dependency of the install, which
installers that read pyproject.toml's static metadata (uv) do not add.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

IMPORT_NAME = "nemovideo_mcp"
SOURCE_FOLDER = "server"
FINDER_MODULE = f"_{IMPORT_NAME}_editable"

FINDER = '''\
"""Maps the import name {name} onto {folder} (an editable install; see hatch_build.py)."""
import importlib.util
import os
import sys

FOLDER = {folder!r}


class Finder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != {name!r}:
            return None
        return importlib.util.spec_from_file_location(
            name, os.path.join(FOLDER, "__init__.py"), submodule_search_locations=[FOLDER])


sys.meta_path.append(Finder)
'''


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version != "editable":
            return
        self._staging = tempfile.TemporaryDirectory(prefix="nemovideo-mcp-editable-")
        files = {
            f"{FINDER_MODULE}.py": FINDER.format(name=IMPORT_NAME, folder=os.path.join(self.root, SOURCE_FOLDER)),
            f"{FINDER_MODULE}.pth": f"import {FINDER_MODULE}\n",
        }
        for name, content in files.items():
            path = os.path.join(self._staging.name, name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(content)
            build_data["force_include_editable"][path] = name

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if version == "editable":
            self._staging.cleanup()
