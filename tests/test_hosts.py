"""Independent tools, opt-in (they download npm packages): the MCP Inspector CLI lists and
calls the tools of `python -m nemovideo_mcp --sandbox`, the clawhub CLI lists a packed variant
installed in a workdir, and the MCPB CLI validates every variant's manifest.json and packs a bundle.

    NEMO_TEST_NPX=1 python -m pytest tests/test_hosts.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nemovideo_mcp.pack import pack
from nemovideo_mcp.texts import APP_TOOLS
from nemovideo_mcp.variants import TOOLS, VARIANTS, variant_named
from tests.conftest import REPO

NPX_SECONDS = 300  # the first run downloads the packages

pytestmark = [
    pytest.mark.skipif(os.environ.get("NEMO_TEST_NPX") != "1",
                       reason="opt-in: set NEMO_TEST_NPX=1 to run the MCP Inspector and clawhub CLIs through npx"),
    pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js/npm) is not installed"),
]


def npx(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["npx", "-y", *args], cwd=cwd, env=os.environ.copy(), capture_output=True, text=True,
                            timeout=NPX_SECONDS)
    assert result.returncode == 0, f"npx {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
    return result


def inspector(home: Path, *method: str) -> dict:
    # The Inspector hands the server only a minimal environment plus `-e`: HOME keeps its token cache private.
    result = npx("@modelcontextprotocol/inspector", "--cli", "-e", f"HOME={home}",
                 sys.executable, "-m", "nemovideo_mcp", "--sandbox", *method, cwd=REPO)
    return json.loads(result.stdout)


def test_inspector_cli_lists_and_calls_the_tools(home: Path) -> None:
    listed = inspector(home, "--method", "tools/list")
    assert {tool["name"] for tool in listed["tools"]} == {tool.name for tool in (*TOOLS, *APP_TOOLS)}
    called = inspector(home, "--method", "tools/call", "--tool-name", "credits")
    assert not called.get("isError") and called["structuredContent"]["total"] == 100


def test_clawhub_lists_an_installed_variant(tmp_path: Path) -> None:
    pack(variant_named("music-ab2n-0330"), tmp_path / "skills")  # where `clawhub install` puts skills
    listed = npx("clawhub", "--workdir", str(tmp_path), "--no-input", "list", cwd=tmp_path).stdout
    assert "music-ab2n-0330" in listed.split()


def test_mcpb_validates_every_variant_and_packs_a_bundle(tmp_path: Path) -> None:
    folders = [REPO, *(pack(variant, tmp_path / "skills") for variant in VARIANTS)]
    for folder in folders:
        validated = npx("@anthropic-ai/mcpb", "validate", str(folder / "manifest.json"), cwd=tmp_path)
        assert "validation passes" in validated.stdout, validated.stdout
    bundle = tmp_path / "music-ab2n-0330.mcpb"
    npx("@anthropic-ai/mcpb", "pack", str(tmp_path / "skills" / "music-ab2n-0330"), str(bundle), cwd=tmp_path)
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
    assert {"manifest.json", "pyproject.toml", "hatch_build.py", "SKILL.md", "icon.png", "server/cli.py"} <= names
    assert not any(name.startswith((".venv/", "skills/", "tests/")) for name in names)
