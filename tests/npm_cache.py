"""npm packages the tests run (an authorization server, independent MCP clients), installed once into the tests'
cache (~/.cache/nemovideo-mcp-tests/<folder>; NEMO_TEST_CACHE moves it). Node or npm missing, or the registry out
of reach on the first run, is a `missing(...)` skip (a failure under NEMO_TESTS_STRICT=1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import missing

TEST_CACHE = Path(os.environ.get("NEMO_TEST_CACHE") or Path.home() / ".cache" / "nemovideo-mcp-tests")
NPM_SECONDS = 300


def npm_installed(folder: str, *packages: str, why: str) -> Path:
    """The folder where `packages` (name@version, or a bare name for whatever version is installed) are installed,
    installing them the first time."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        missing(f"Node.js and npm are needed to run {why}; install them")
    root = TEST_CACHE / folder

    def installed(spec: str) -> bool:
        name, _, version = spec.rpartition("@") if "@" in spec[1:] else (spec, "", "")
        manifest = root / "node_modules" / name / "package.json"
        return manifest.is_file() and (not version or json.loads(manifest.read_text())["version"] == version)

    if all(installed(spec) for spec in packages):
        return root
    try:
        reachable = subprocess.run([npm, "ping"], capture_output=True, timeout=60).returncode == 0
    except subprocess.TimeoutExpired:
        reachable = False
    if not reachable:
        missing(f"the npm registry is unreachable, so {', '.join(packages)} cannot be installed")
    root.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--save-exact", "--prefix", str(root),
                           *packages], capture_output=True, text=True, timeout=NPM_SECONDS)
    assert done.returncode == 0, done.stderr
    return root
