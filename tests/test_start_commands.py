"""The start command that each manifest and bundle declares, run literally where a user runs it.

For the repository and every packed variant: manifest.json (MCPB; manifest.yaml must hold the
same fields, so the same command) and the plugin's .mcp.json. Each runs in a clean environment:
a PATH with only `python3` (the base interpreter, not the test venv's), `uv`/`uvx` and the
system's folders, a fresh HOME, and the placeholders filled as the host fills them. Each server
must answer tools/list and attribute its requests to its own variant.

uv builds each folder once, before the tests start them, into a uv cache kept between runs
(~/.cache/nemovideo-mcp-tests/uv, or NEMO_TEST_UV_CACHE): only the first run on a machine fetches
the dependencies from PyPI. Builds and starts run with UV_OFFLINE=1, which keeps uv from
revalidating PyPI's index every time (seconds each here) and changes nothing else; a build that
needs what the cache does not hold yet goes online. PyPI out of reach then is a skip that says so
(a failure in CI, which reaches it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
import yaml
from mcp import Client, StdioServerParameters

from nemovideo_mcp.pack import pack
from nemovideo_mcp.sandbox import Sandbox, SandboxServer
from nemovideo_mcp.variants import TOOLS, TOP_LEVEL_VARIANT, VARIANTS
from tests.conftest import REPO, missing

UV = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
UV_CACHE = Path(os.environ.get("NEMO_TEST_UV_CACHE") or Path.home() / ".cache" / "nemovideo-mcp-tests" / "uv")
# What uv says when the index cannot be reached at all (no network, no DNS, a proxy refusing).
UNREACHABLE = ("error sending request", "dns error", "failed to lookup address", "connection refused",
               "network is unreachable", "connect error", "operation timed out")

BUILD_SECONDS = 240  # the first build downloads the dependencies from PyPI
# The network's settings, not the test's: where TLS roots and proxies are, if this machine needs them.
NETWORK_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy",
               "no_proxy", "UV_DEFAULT_INDEX", "UV_INDEX_URL")

FOLDERS = [TOP_LEVEL_VARIANT + "@repository", *(variant.name for variant in VARIANTS)]


@pytest.fixture(scope="session")
def clean_machine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """PATH and uv cache of a machine that has only Python 3.11+ and uv."""
    if UV is None:
        missing("uv is not installed: `pip install uv` (the test extra has it)")
    root = tmp_path_factory.mktemp("machine")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(Path(sys._base_executable).resolve())  # the interpreter under the test venv
    for tool in ("uv", "uvx"):
        (bin_dir / tool).symlink_to(Path(UV).with_name(tool))
    base = {name: os.environ[name] for name in NETWORK_ENV if os.environ.get(name)}
    return {**base, "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", "UV_CACHE_DIR": str(UV_CACHE)}


@pytest.fixture(scope="session")
def built_machine(clean_machine: dict[str, str], folders: dict[str, Path]) -> dict[str, str]:
    """The clean machine once every folder is built: starting needs nothing from the network."""
    return {**clean_machine, "UV_OFFLINE": "1"}


@pytest.fixture(scope="session")
def folders(tmp_path_factory: pytest.TempPathFactory, clean_machine: dict[str, str]) -> dict[str, Path]:
    """Folder id → skill folder, each already built into uv's cache."""
    root = tmp_path_factory.mktemp("skills")
    folders = {FOLDERS[0]: REPO, **{variant.name: pack(variant, root) for variant in VARIANTS}}
    home = tmp_path_factory.mktemp("build-home")

    def build(folder: Path) -> subprocess.CompletedProcess[str]:
        def run(**offline: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["uvx", "--from", str(folder), "nemovideo-mcp", "--help"],
                                  env={**clean_machine, "HOME": str(home), **offline}, capture_output=True, text=True,
                                  timeout=BUILD_SECONDS)

        offline = run(UV_OFFLINE="1")
        return offline if offline.returncode == 0 else run()

    # The repository first: it fills the cache with the dependencies that the others reuse.
    first = build(REPO)
    if first.returncode != 0 and any(sign in first.stderr.lower() for sign in UNREACHABLE):
        missing(f"PyPI cannot be reached and uv's cache ({UV_CACHE}) does not yet hold the dependencies:\n"
                f"{first.stderr.strip()[-500:]}")
    assert first.returncode == 0, first.stderr
    with ThreadPoolExecutor(max_workers=2) as pool:
        for folder, done in zip(list(folders.values())[1:], pool.map(build, list(folders.values())[1:])):
            assert done.returncode == 0, f"uvx --from {folder} failed:\n{done.stderr}"
    return folders


@pytest.fixture(scope="module")
def backend() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox()) as server:
        yield server


def fill(value: str, placeholders: dict[str, str]) -> str:
    for name, setting in placeholders.items():
        value = value.replace("${" + name + "}", setting)
    assert "${" not in value, f"a placeholder the host would fill is left: {value}"
    return value


def declared(config: dict, placeholders: dict[str, str], machine: dict[str, str], home: Path) -> StdioServerParameters:
    """What a host starts from a declared server config: the command as written, placeholders filled."""
    env = {**machine, "HOME": str(home), **{k: fill(v, placeholders) for k, v in config.get("env", {}).items()}}
    return StdioServerParameters(command=config["command"], args=[fill(arg, placeholders) for arg in config["args"]],
                                 env=env, cwd=home)


async def serves(params: StdioServerParameters) -> tuple[set[str], dict]:
    with anyio.fail_after(90):
        async with Client(params) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            credits = await client.call_tool("credits", {})
    assert not credits.is_error, credits
    return tools, credits.structured_content


@pytest.mark.anyio
@pytest.mark.parametrize("folder_id", FOLDERS)
async def test_declared_start_commands_serve_the_tools_as_their_variant(
    folder_id: str, folders: dict[str, Path], built_machine: dict[str, str], backend: SandboxServer, tmp_path: Path
) -> None:
    folder, name = folders[folder_id], folder_id.split("@")[0]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert yaml.safe_load((folder / "manifest.yaml").read_text(encoding="utf-8")) == manifest
    mcpb = declared(manifest["server"]["mcp_config"], {
        "__dirname": str(folder),  # where the host unpacked the bundle
        "user_config.nemo_token": "",  # left empty: the server obtains an anonymous token
        "user_config.output_dir": str(tmp_path / "videos"),
        "user_config.api_url": backend.url,
    }, built_machine, tmp_path / "home-mcpb")
    plugin_config = json.loads((folder / ".mcp.json").read_text(encoding="utf-8"))["mcpServers"][name]
    assert plugin_config.pop("type") == "stdio"
    # Claude Code hands a plugin's server its own environment; that is where a user's NEMO_* live.
    plugin = declared(plugin_config, {"CLAUDE_PLUGIN_ROOT": str(folder)},
                      {**built_machine, "NEMO_API_URL": backend.url}, tmp_path / "home-plugin")
    for params in (mcpb, plugin):
        Path(params.cwd).mkdir()
    backend.sandbox.reset()
    async with anyio.create_task_group() as group:
        results = {}

        async def run(key: str, params: StdioServerParameters) -> None:
            results[key] = await serves(params)

        group.start_soon(run, "mcpb", mcpb)
        group.start_soon(run, "plugin", plugin)
    for tools, credits in results.values():
        assert tools == {tool.name for tool in TOOLS} and credits["total"] == 100
    assert {request.headers.get("x-skill-source") for request in backend.sandbox.requests} == {name}
    # A fresh HOME per host: each server kept its files there, under the folders a user would find them.
    assert all((Path(params.cwd) / ".config" / "nemovideo" / "client_id").is_file() for params in (mcpb, plugin))


@pytest.mark.anyio
async def test_uvx_from_a_folder_reads_its_skill_md_at_every_start(
    built_machine: dict[str, str], folders: dict[str, Path], backend: SandboxServer, tmp_path: Path
) -> None:
    folder = folders["ai-with-music"]
    home = tmp_path / "home"
    home.mkdir()
    sandboxed = StdioServerParameters(command="uvx", args=["--from", str(folder), "nemovideo-mcp", "--sandbox"],
                                      env={**built_machine, "HOME": str(home)}, cwd=home)
    async with Client(sandboxed) as client:
        assert {tool.name for tool in (await client.list_tools()).tools} == {tool.name for tool in TOOLS}
    # The sandbox kept its token and session elsewhere (uv keeps its own files under ~/.local/share/uv).
    assert not (home / ".config" / "nemovideo").exists() and not (home / ".local" / "state").exists()

    # The cached build still carries the old SKILL.md; the folder's current one must win.
    skill_md = folder / "SKILL.md"
    original = skill_md.read_text(encoding="utf-8")
    try:
        skill_md.write_text(original.replace("name: ai-with-music", "name: renamed-skill", 1), encoding="utf-8")
        backend.sandbox.reset()
        plain = StdioServerParameters(command="uvx", args=["--from", str(folder), "nemovideo-mcp"],
                                      env={**built_machine, "HOME": str(home), "NEMO_API_URL": backend.url}, cwd=home)
        await serves(plain)
    finally:
        skill_md.write_text(original, encoding="utf-8")
    assert {request.headers.get("x-skill-source") for request in backend.sandbox.requests} == {"renamed-skill"}
