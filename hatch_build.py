"""Editable installs import the package as `nemovideo_mcp`, like a wheel does.

A wheel renames the `server/` folder to `nemovideo_mcp` (`sources` in pyproject.toml), so no
other distribution or local folder called `server` can shadow it. Hatchling's own editable
wheels cannot rename a package, so for them this hook adds an import redirect made by
`editables` (the library hatchling itself uses for editable installs, and always requests
for them): `nemovideo_mcp` → this folder's `server/`.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

IMPORT_NAME = "nemovideo_mcp"
SOURCE_FOLDER = "server"


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version != "editable":
            return
        from editables import EditableProject

        project = EditableProject(IMPORT_NAME, self.root)
        project.map(IMPORT_NAME, os.path.join(self.root, SOURCE_FOLDER))
        self._staging = tempfile.TemporaryDirectory(prefix="nemovideo-mcp-editable-")
        force_include = build_data["force_include_editable"]
        for name, content in project.files():
            path = os.path.join(self._staging.name, name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(content)
            force_include[path] = name
        build_data["dependencies"].extend(project.dependencies())

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if version == "editable":
            self._staging.cleanup()
