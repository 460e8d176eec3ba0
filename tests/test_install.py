"""How the package is installed and started: one import name, one module tree, identity read at
run time (two variants from one install), no POSIX-only import, a sandbox that leaves the
user's folders alone."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

import nemovideo_mcp
from nemovideo_mcp.pack import pack
from nemovideo_mcp.sandbox import Sandbox, SandboxServer
from nemovideo_mcp.texts import APP_TOOLS
from nemovideo_mcp.variants import TOOLS, variant_named
from tests.conftest import REPO, subprocess_env

MODULES = sorted(module.name for module in pkgutil.walk_packages(nemovideo_mcp.__path__, "nemovideo_mcp.")
                 if not module.name.endswith(".__main__"))  # importing those runs them


def test_the_wheel_installs_only_nemovideo_mcp(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--no-index", "--wheel-dir", str(tmp_path), str(REPO)],
                   check=True, timeout=120, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
        assert "nemovideo_mcp/SKILL.md" in archive.namelist()  # the identity of an install from an index
    assert top_level == {"nemovideo_mcp", f"nemovideo_mcp-{nemovideo_mcp.__version__}.dist-info"}


def test_tests_import_one_module_tree_from_the_repository() -> None:
    for name in MODULES:
        __import__(name)
    assert Path(nemovideo_mcp.__file__).resolve() == REPO / "server" / "__init__.py"
    assert not [name for name in sys.modules if name == "server" or name.startswith("server.")]


# Run before the package is imported. Only our own imports of `fcntl` fail (as on Windows,
# where no Python has it): the SDK and filelock import it behind their own platform checks.
WITHOUT_FCNTL = """
import sys
import tomllib

class NoFcntlForUs:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "fcntl":
            return None
        frame = sys._getframe(1)
        while frame and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
            frame = frame.f_back
        importer = frame.f_globals.get("__name__", "") if frame else ""
        if importer.split(".")[0] == "nemovideo_mcp":
            raise ModuleNotFoundError(f"No module named 'fcntl' (imported by {importer}; Windows has none)")
        return None

sys.modules.pop("fcntl", None)
sys.meta_path.insert(0, NoFcntlForUs)
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
from nemovideo_mcp.cli import main
sys.exit(main(["--sandbox"]))
"""


@pytest.mark.anyio
async def test_every_module_imports_and_a_sandbox_session_runs_without_fcntl_leaving_the_users_folders_alone(
    home: Path, tmp_path: Path
) -> None:
    """Two checks on one `--sandbox` server process (each start costs ~1 s of CPU, mostly the SDK's import): every
    module imports and the server runs with no `fcntl` of ours, and a whole sandbox session (credits, a turn, an
    export) leaves the user's config and state alone."""
    videos = tmp_path / "videos"
    params = StdioServerParameters(command=sys.executable, args=["-c", WITHOUT_FCNTL, *MODULES],
                                   env=subprocess_env({"HOME": str(home), "NEMO_OUTPUT_DIR": str(videos)}), cwd=home)
    async with Client(params) as client:
        listed = await client.list_tools()
        credits = await client.call_tool("credits", {})  # takes the cross-process token lock
        made = await client.call_tool("chat", {"message": "make a short video of a city at night", "wait_seconds": 30})
        exported = await client.call_tool("export", {"wait_seconds": 30})
    assert {tool.name for tool in listed.tools} == {tool.name for tool in (*TOOLS, *APP_TOOLS)}
    assert not credits.is_error and credits.structured_content["total"] == 100
    assert not made.is_error and made.structured_content["status"] == "done"
    assert not exported.is_error and exported.structured_content["status"] == "done"
    assert list(videos.glob("*.mp4"))  # the video the user asked for is theirs to keep
    assert sorted(path.name for path in home.iterdir()) == []


@pytest.mark.anyio
async def test_one_install_serves_two_variants_each_under_its_own_name(home: Path, tmp_path: Path) -> None:
    """The test venv's single `nemovideo-mcp`, told which packed folder it speaks for, once by
    option and once by environment; the two run at once, each against its own backend."""
    command = str(Path(sys.executable).parent / "nemovideo-mcp")
    first, second = (pack(variant_named(name), tmp_path / "skills") for name in ("ai-with-music", "music-ab2n-0330"))
    with SandboxServer(Sandbox()) as one, SandboxServer(Sandbox()) as two:
        by_option = StdioServerParameters(command=command, args=["--skill-dir", str(first)], cwd=tmp_path,
                                          env=subprocess_env({"HOME": str(home), "NEMO_API_URL": one.url}))
        by_environment = StdioServerParameters(command=command, cwd=tmp_path, env=subprocess_env(
            {"HOME": str(home), "NEMO_API_URL": two.url, "NEMO_SKILL_DIR": str(second)}))

        async def credits(params: StdioServerParameters) -> None:
            async with Client(params) as client:
                assert not (await client.call_tool("credits", {})).is_error

        async with anyio.create_task_group() as group:
            group.start_soon(credits, by_option)
            group.start_soon(credits, by_environment)
        for backend, name in ((one, first.name), (two, second.name)):
            assert backend.sandbox.requests
            assert {request.headers.get("x-skill-source") for request in backend.sandbox.requests} == {name}


def test_publish_metadata_agrees_with_itself() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    registry = json.loads((REPO / "server.json").read_text(encoding="utf-8"))
    assert registry["$schema"].endswith("/2025-12-11/server.schema.json") and len(registry["description"]) <= 100
    (package,) = registry["packages"]
    assert (package["registryType"], package["identifier"], package["runtimeHint"]) == ("pypi", project["name"], "uvx")
    assert registry["version"] == package["version"] == project["version"] == nemovideo_mcp.__version__
    assert package["transport"] == {"type": "stdio"}
    token = {variable["name"]: variable for variable in package["environmentVariables"]}["NEMO_TOKEN"]
    assert token["isSecret"] is True and token["isRequired"] is False
    readme = (REPO / "README.md").read_text(encoding="utf-8")  # PyPI's long description
    assert f"mcp-name: {registry['name']}" in readme
    assert project["requires-python"] == ">=3.11" and "Python 3.11" in readme
    assert project["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT License")
    for field in ("authors", "keywords", "classifiers", "urls", "readme"):
        assert project[field], field
