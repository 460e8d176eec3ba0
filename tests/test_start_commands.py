"""The start command that each manifest and bundle declares, run literally where a user runs it.

For the repository and every packed variant: the plugin's server in .claude-plugin/plugin.json,
and manifest.json (MCPB; manifest.yaml must hold the same fields, so the same command) as
`@anthropic-ai/mcpb` itself resolves it for Claude Desktop, with the optional settings left
blank. Each runs in a clean environment: a PATH with only `python3` (the base interpreter, not
the test venv's), `uv`/`uvx` and the system's folders, and a fresh HOME. Each server must answer
tools/list and attribute its requests to its own variant. The repository starts both commands; a
packed folder starts its bundle, its plugin's command checked to be the same command line.

uv builds each folder once, before the tests start them, into a uv cache kept between runs
(~/.cache/nemovideo-mcp-tests/uv; NEMO_TEST_CACHE moves it): only the first run on a machine fetches
the dependencies from PyPI. Builds and starts run with UV_OFFLINE=1, which keeps uv from
revalidating PyPI's index every time (seconds each here) and changes nothing else; a build that
needs what the cache does not hold yet goes online. PyPI out of reach then is a skip that says so
(a failure in CI, which reaches it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest
import yaml
from mcp import Client, StdioServerParameters

from nemovideo_mcp.pack import pack
from nemovideo_mcp.sandbox import Sandbox, SandboxServer
from nemovideo_mcp.texts import APP_TOOLS
from nemovideo_mcp.variants import TOOLS, TOP_LEVEL_VARIANT, VARIANTS
from tests.conftest import REPO, missing
from tests.npm_cache import TEST_CACHE, npm_installed

UV = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
# Kept between runs: uv's cache and the npm install of mcpb (NEMO_TEST_CACHE moves it).
UV_CACHE = TEST_CACHE / "uv"
# What uv says when the index cannot be reached at all (no network, no DNS, a proxy refusing).
UNREACHABLE = ("error sending request", "dns error", "failed to lookup address", "connection refused",
               "network is unreachable", "connect error", "operation timed out")

BUILD_SECONDS = 240  # the first build downloads the dependencies from PyPI
MCPB = "@anthropic-ai/mcpb"
# Claude Desktop's step from manifest.json to the command it starts: mcpb's own function, given a list of
# its options (each with the manifest's path in place of the manifest) on stdin; one Node start for all.
RESOLVE = """
import { readFileSync } from "node:fs";
import { getMcpConfigForManifest } from "@anthropic-ai/mcpb";
const resolved = [];
for (const options of JSON.parse(readFileSync(0, "utf8"))) {
  options.manifest = JSON.parse(readFileSync(options.manifest, "utf8"));
  resolved.push(await getMcpConfigForManifest(options));
}
process.stdout.write(JSON.stringify(resolved));
"""
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


def synced(packed: Path, kept: Path) -> Path:
    """`kept` made the same as the freshly `packed` folder, rewriting only the files that differ.

    uv keys its build of a folder on the change times (ctime) of its cache-keys files, which any write renews,
    even of the same bytes with the same mtime: packing over the kept folder made uv rebuild all five variants on
    every run (~1.2 s CPU each). A file whose bytes differ is still rewritten, so a change to the code is built.
    """
    wanted = {path.relative_to(packed) for path in packed.rglob("*") if path.is_file()}
    for path in sorted(kept.rglob("*"), reverse=True) if kept.exists() else ():
        relative = path.relative_to(kept)
        if "__pycache__" in relative.parts:
            continue
        if path.is_file() and relative not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    for relative in wanted:
        source, target = packed / relative, kept / relative
        if not (target.is_file() and target.read_bytes() == source.read_bytes()):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return kept


@pytest.fixture(scope="session")
def folders(tmp_path_factory: pytest.TempPathFactory, clean_machine: dict[str, str]) -> dict[str, Path]:
    """Folder id → skill folder, each already built into uv's cache."""
    # Packed where the last run packed them (one place per checkout): uv finds its builds of unchanged folders.
    root = TEST_CACHE / "skills" / hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    staging = tmp_path_factory.mktemp("packed")
    folders = {FOLDERS[0]: REPO, **{variant.name: synced(pack(variant, staging), root / variant.name)
                                    for variant in VARIANTS}}
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


@pytest.fixture(scope="session")
def node_with_mcpb() -> tuple[str, Path]:
    """Node and a folder where `@anthropic-ai/mcpb` is installed (from npm, once: the install is kept)."""
    root = npm_installed("mcpb", MCPB, why=f"{MCPB}'s resolution of manifest.json")
    node = shutil.which("node")
    assert node is not None  # npm_installed found it
    return node, root


@pytest.fixture(scope="module")
def bundles(node_with_mcpb: tuple[str, Path], folders: dict[str, Path], backend: SandboxServer,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, Path]]:
    """Folder id → (what Claude Desktop starts for the bundle, the user's home), resolved by mcpb itself with the
    token and the output folder left blank; only the backend is set, to reach the sandbox."""
    node, root = node_with_mcpb
    homes = {key: tmp_path_factory.mktemp(f"home-bundle-{key.split('@')[0]}") / "home" for key in folders}
    options = [{"manifest": str(folder / "manifest.json"), "extensionPath": str(folder), "pathSeparator": os.sep,
                "userConfig": {"api_url": backend.url},
                # The user's folders, which a manifest may name as ${HOME}, ${DOWNLOADS} and so on.
                "systemDirs": {"HOME": str(homes[key]), "DESKTOP": str(homes[key] / "Desktop"),
                               "DOCUMENTS": str(homes[key] / "Documents"),
                               "DOWNLOADS": str(homes[key] / "Downloads")}}
               for key, folder in folders.items()]
    resolved = subprocess.run([node, "--input-type=module", "-e", RESOLVE], input=json.dumps(options), cwd=root,
                              capture_output=True, text=True, timeout=60)
    assert resolved.returncode == 0, resolved.stderr
    return {key: (config, homes[key]) for key, config in zip(folders, json.loads(resolved.stdout))}


@pytest.fixture(scope="module")
def backend() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox()) as server:
        yield server


def fill(value: str, placeholders: dict[str, str]) -> str:
    for name, setting in placeholders.items():
        value = value.replace("${" + name + "}", setting)
    assert "${" not in value, f"a placeholder the host would fill is left: {value}"
    return value


def started(config: dict, machine: dict[str, str], home: Path) -> StdioServerParameters:
    """What a host starts from a server config whose placeholders it has filled: the command as written."""
    home.mkdir()
    return StdioServerParameters(command=config["command"], args=config["args"],
                                 env={**machine, "HOME": str(home), **config.get("env", {})}, cwd=home)


async def serves(params: StdioServerParameters,
                 then: Callable[[Client], Awaitable[None]] | None = None) -> tuple[set[str], dict]:
    """The tools the started server lists and its credits; `then` goes on with the same client before it stops."""
    with anyio.fail_after(90 if then is None else 120):
        async with Client(params) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            credits = await client.call_tool("credits", {})
            if then is not None:
                await then(client)
    assert not credits.is_error, credits
    return tools, credits.structured_content


def plugin_command(folder: Path, name: str, machine: dict[str, str], backend: SandboxServer,
                   home: Path) -> StdioServerParameters:
    """What Claude Code starts for the plugin in `folder`: plugin.json's server, ${CLAUDE_PLUGIN_ROOT} filled."""
    config = json.loads((folder / ".claude-plugin" / "plugin.json").read_text(encoding="utf-8"))["mcpServers"][name]
    assert config.pop("type") == "stdio"
    root = {"CLAUDE_PLUGIN_ROOT": str(folder)}
    filled = {**config, "args": [fill(arg, root) for arg in config["args"]],
              "env": {key: fill(value, root) for key, value in config["env"].items()}}
    # Claude Code hands a plugin's server its own environment; that is where a user's NEMO_* live.
    return started(filled, {**machine, "NEMO_API_URL": backend.url}, home)


def bundle_command(folder: Path, resolved: tuple[dict, Path], machine: dict[str, str],
                   backend: SandboxServer) -> StdioServerParameters:
    """What Claude Desktop starts for the bundle in `folder`, as mcpb resolved it (`bundles`)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert yaml.safe_load((folder / "manifest.yaml").read_text(encoding="utf-8")) == manifest
    config, home = resolved
    assert config["env"]["NEMO_API_URL"] == backend.url
    return started(config, machine, home)


@pytest.mark.anyio
@pytest.mark.parametrize("folder_id", FOLDERS)
async def test_the_plugin_and_the_bundle_start_as_their_hosts_resolve_them(
    folder_id: str, folders: dict[str, Path], built_machine: dict[str, str], backend: SandboxServer,
    bundles: dict[str, tuple[dict, Path]], tmp_path: Path
) -> None:
    """Each folder's declared start commands serve the tools as its variant, on the free starter credits.

    The repository starts both; a packed folder starts its bundle, and its plugin's command is checked to be the
    same command line with the same skill folder (only the environment a host adds differs). The repository's
    bundle then also exports, to check where a blank output folder saves videos (one process less to start).
    """
    folder, name = folders[folder_id], folder_id.split("@")[0]
    plugin = plugin_command(folder, name, built_machine, backend, tmp_path / "home-plugin")
    bundle = bundle_command(folder, bundles[folder_id], built_machine, backend)
    assert (plugin.command, plugin.args) == (bundle.command, bundle.args) == ("uvx", ["--from", str(folder),
                                                                                      "nemovideo-mcp"])
    assert plugin.env["NEMO_SKILL_DIR"] == bundle.env["NEMO_SKILL_DIR"] == str(folder)
    starts = {"plugin": plugin, "bundle": bundle} if folder == REPO else {"bundle": bundle}
    backend.sandbox.reset()
    backend.sandbox.real_renders = False  # the folder the clip lands in is the point, not the clip
    backend.sandbox.render_seconds = 0  # done by the first poll
    results = {}

    async def run(host: str) -> None:
        results[host] = await serves(starts[host], blank_settings_save_in_downloads(bundles[folder_id][1])
                                     if folder == REPO and host == "bundle" else None)

    async with anyio.create_task_group() as group:  # two hosts' processes at once: half the wait
        for host in starts:
            group.start_soon(run, host)
    for tools, credits in results.values():
        assert tools == {tool.name for tool in (*TOOLS, *APP_TOOLS)} and credits["total"] == 100
    api = [request for request in backend.sandbox.requests if request.host == "api"]
    assert {request.headers.get("x-skill-source") for request in api} == {name}
    bearers = {request.headers.get("authorization", "") for request in api}
    assert bearers and not any("${" in bearer for bearer in bearers), bearers  # a blank token is no token
    # A fresh HOME per host: each server kept its files there, under the folders a user would find them.
    assert all((Path(params.cwd) / ".config" / "nemovideo" / "client_id").is_file() for params in starts.values())


def blank_settings_save_in_downloads(home: Path) -> Callable[[Client], Awaitable[None]]:
    """Issue 15, item 4: the bundle's blank output folder reached the server as `${HOME}/Downloads`, unexpanded."""

    async def check(client: Client) -> None:
        made = await client.call_tool("chat", {"message": "make a short video of a city at night", "wait_seconds": 30})
        exported = await client.call_tool("export", {"wait_seconds": 30})
        assert not made.is_error and made.structured_content["status"] == "done", made
        assert not exported.is_error and exported.structured_content["status"] == "done", exported
        assert Path(exported.structured_content["path"]).parent == home / "Downloads"
        assert not (home / "${HOME}").exists()

    return check


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
        assert {tool.name for tool in (await client.list_tools()).tools} == {tool.name for tool in (*TOOLS, *APP_TOOLS)}
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
