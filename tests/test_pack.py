"""`pack` for every variant: the folder installs into a fresh venv and, started from there,
attributes every API request to that variant.

Each venv gets the package by a real `pip install` of the packed folder (building the wheel
with hatchling, which the test extra provides), and the dependencies through a `.pth` file
naming the test interpreter's site-packages: a copy of mcp and pydantic per venv would cost
seconds and prove nothing about the package. The five installs run concurrently.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mcp import Client, StdioServerParameters

from nemovideo_mcp.errors import ConfigurationError
from nemovideo_mcp.identity import PACKAGE_DIR
from nemovideo_mcp.pack import main as pack_main
from nemovideo_mcp.pack import pack
from nemovideo_mcp.variants import VARIANTS, Variant, variant_named
from tests.conftest import REPO, subprocess_env

by_name = pytest.mark.parametrize("variant", VARIANTS, ids=lambda variant: variant.name)


def fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    site_packages = Path(sysconfig.get_paths(vars={"base": str(path), "platbase": str(path)})["purelib"])
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "test-dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n")
    return path / "bin" / "python"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Variant name → the venv it was packed and installed into."""
    root = tmp_path_factory.mktemp("packed")
    installs = {}
    for variant in VARIANTS:
        folder = pack(variant, root / "skills")
        python = fresh_venv(root / "venvs" / variant.name)
        # --ignore-installed: an editable install of the repository may be visible through the .pth.
        installs[variant.name] = subprocess.Popen(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--no-deps",
             "--no-build-isolation", "--ignore-installed", str(folder)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
    for name, process in installs.items():
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, f"pip install of the packed {name} failed:\n{output}"
    yield {name: root / "venvs" / name for name in installs}


def test_pack_writes_a_complete_folder(tmp_path: Path) -> None:
    folder = pack(variant_named("ai-with-music"), tmp_path)
    assert folder == tmp_path / "ai-with-music"
    assert {path.name for path in folder.iterdir()} == {"SKILL.md", "manifest.yaml", "pyproject.toml", "README.md",
                                                        "server"}
    assert (folder / "pyproject.toml").read_bytes() == (REPO / "pyproject.toml").read_bytes()
    assert (folder / "server" / "tools.py").is_file() and (folder / "server" / "sandbox" / "app.py").is_file()
    assert not list(folder.rglob("__pycache__"))
    assert "name: ai-with-music" in (folder / "SKILL.md").read_text(encoding="utf-8")
    assert "ai-with-music" in (folder / "README.md").read_text(encoding="utf-8")


def test_repacking_keeps_what_pack_does_not_own(tmp_path: Path) -> None:
    folder = pack(variant_named("music-ab2n-0330"), tmp_path)
    origin = folder / ".clawhub" / "origin.json"
    origin.parent.mkdir()
    origin.write_text("{}")
    (folder / "server" / "stale.py").write_text("")
    pack(variant_named("music-ab2n-0330"), tmp_path)
    assert origin.is_file()  # what makes the server report platform "clawhub"
    assert not (folder / "server" / "stale.py").exists()


def test_pack_refuses_to_write_into_its_own_source() -> None:
    with pytest.raises(ConfigurationError, match="overwrite the source"):
        pack(variant_named("ai-with-music"), PACKAGE_DIR)


def test_pack_command_lists_packs_and_rejects_unknown_variants(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pack_main(["--list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == [variant.name for variant in VARIANTS]
    assert pack_main(["video-to-generator", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path.resolve() / "video-to-generator")
    with pytest.raises(SystemExit):
        pack_main(["no-such-variant", str(tmp_path)])
    assert "generator-from-music" in capsys.readouterr().err


@pytest.mark.anyio
@by_name
async def test_installed_variant_attributes_every_request(
    variant: Variant, installed: dict[str, Path], sandbox, env: dict[str, str], tmp_path: Path
) -> None:
    # A neutral cwd: the installed copy, with the SKILL.md inside its package, is what must run.
    params = StdioServerParameters(command=str(installed[variant.name] / "bin" / "nemovideo-mcp"),
                                   env=subprocess_env(env), cwd=tmp_path)
    async with Client(params) as client:
        credits = await client.call_tool("credits", {})
    assert not credits.is_error and credits.structured_content["total"] == 100
    assert sandbox.count("/api/auth/anonymous-token") == 1 and sandbox.count("/api/credits") == 1
    for request in sandbox.requests:
        assert request.headers.get("x-skill-source") == variant.name, request.path
        assert request.headers.get("x-skill-version") == variant.version, request.path
        assert request.headers.get("x-skill-platform") == "unknown", request.path


def host_reading_the_manifest(folder: Path, user_config: dict[str, str], home: Path) -> StdioServerParameters:
    """What an MCPB host does with manifest.yaml: fill in the placeholders, run `mcp_config`."""
    config = yaml.safe_load((folder / "manifest.yaml").read_text(encoding="utf-8"))["server"]["mcp_config"]

    def fill(value: str) -> str:
        value = value.replace("${__dirname}", str(folder))
        for key, setting in user_config.items():
            value = value.replace("${user_config." + key + "}", setting)
        assert "${" not in value, f"an unfilled placeholder: {value}"
        return value

    # The manifest names `python3`; here that is the test interpreter, which has the dependencies.
    command = sys.executable if config["command"] == "python3" else config["command"]
    env = {name: fill(value) for name, value in config["env"].items()}
    return StdioServerParameters(command=command, args=[fill(arg) for arg in config["args"]],
                                 env={**subprocess_env({"HOME": str(home)}), **env}, cwd=home)


@pytest.mark.anyio
async def test_the_manifest_starts_a_clawhub_install_from_its_folder(sandbox, sandbox_server, home, tmp_path) -> None:
    variant = variant_named("ai-music-generator-free-ab-old")
    folder = pack(variant, tmp_path / "workspace" / "skills")
    (folder / ".clawhub").mkdir()
    (folder / ".clawhub" / "origin.json").write_text(json.dumps({"slug": variant.name, "version": variant.version}))
    params = host_reading_the_manifest(
        folder, {"nemo_token": "", "output_dir": str(tmp_path / "videos"), "api_url": sandbox_server.url}, home
    )
    assert "NEMO_MAX_UPLOAD_MB" not in params.env  # the limit travels in the skill's own SKILL.md
    async with Client(params) as client:
        credits = await client.call_tool("credits", {})
    assert not credits.is_error and credits.structured_content["total"] == 100
    assert sandbox.requests
    for request in sandbox.requests:
        assert request.headers.get("x-skill-source") == variant.name, request.path
        assert request.headers.get("x-skill-platform") == "clawhub", request.path
