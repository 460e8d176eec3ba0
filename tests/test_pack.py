"""`pack` for every variant: what the folder holds, what re-packing keeps, what it refuses.
Running each folder's declared start commands is tests/test_start_commands.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nemovideo_mcp.errors import ConfigurationError
from nemovideo_mcp.identity import PACKAGE_DIR
from nemovideo_mcp.pack import main as pack_main
from nemovideo_mcp.pack import pack
from nemovideo_mcp.variants import VARIANTS, variant_named
from tests.conftest import REPO



def test_pack_writes_a_complete_folder(tmp_path: Path) -> None:
    folder = pack(variant_named("ai-with-music"), tmp_path)
    assert folder == tmp_path / "ai-with-music"
    assert {path.name for path in folder.iterdir()} == {
        "SKILL.md", "manifest.json", "manifest.yaml", ".mcpbignore", "pyproject.toml", "hatch_build.py", "LICENSE",
        "icon.png", "README.md", "server", ".claude-plugin", "skills"}
    for name in ("pyproject.toml", "hatch_build.py", "LICENSE", "icon.png"):
        assert (folder / name).read_bytes() == (REPO / name).read_bytes()
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
    # What earlier packs declared the plugin's server in; at the root it doubles as a broken project config.
    earlier = {"mcpServers": {folder.name: {"command": "uvx",
                                            "args": ["--from", "${CLAUDE_PLUGIN_ROOT}", "nemovideo-mcp"]}}}
    (folder / ".mcp.json").write_text(json.dumps(earlier))
    pack(variant_named("music-ab2n-0330"), tmp_path)
    assert origin.is_file()  # what makes the server report platform "clawhub"
    assert not (folder / "server" / "stale.py").exists()
    assert not (folder / ".mcp.json").exists()


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
