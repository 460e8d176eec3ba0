"""The five published variants: SKILL.md frontmatter by the Agent Skills and ClawHub rules, and
manifest.yaml against the server's real tools. The rules are restated here, not imported, so
a mistake in `server/variants.py` cannot vouch for itself."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import skills_ref
import yaml
from mcp import Client

from nemovideo_mcp.identity import load_identity, read_frontmatter
from nemovideo_mcp.media import ACCEPTED_FORMATS, RECOGNISED
from nemovideo_mcp.pack import pack
from nemovideo_mcp.texts import INSTRUCTIONS, RULES
from nemovideo_mcp.tools import build_server
from nemovideo_mcp.texts import APP_TOOLS
from nemovideo_mcp.variants import TOOLS, TOP_LEVEL_VARIANT, VARIANTS, Variant, render_skill_md, variant_named
from tests.conftest import REPO

SEEDS = {  # seed number → the name it is published under and the version it states
    "000": ("generator-from-music", "1.0.0"),
    "001": ("ai-music-generator-free-ab-old", "1.0.0"),
    "002": ("video-to-generator", "1.0.0"),
    "003": ("ai-with-music", "1.0.0"),
    "004": ("music-ab2n-0330", "1.0.0"),
}
OPTIONAL_ENV = {"NEMO_TOKEN", "NEMO_OUTPUT_DIR", "NEMO_API_URL", "NEMO_WEB_URL", "NEMO_CLIENT_ID", "SKILL_SOURCE",
                "NEMO_MAX_UPLOAD_MB", "NEMO_SKILL_DIR"}
AGENT_SKILLS_KEYS = {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}
REGENERATE = "regenerate with: nemovideo-mcp pack generator-from-music --in-place"

by_name = pytest.mark.parametrize("variant", VARIANTS, ids=lambda variant: variant.name)


def is_agent_skills_name(name: str) -> bool:
    return (
        0 < len(name) <= 64
        and all(char in "abcdefghijklmnopqrstuvwxyz0123456789-" for char in name)
        and not name.startswith("-")
        and not name.endswith("-")
        and "--" not in name
    )


def split_skill_md(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    header, separator, body = text[4:].partition("\n---\n")
    assert separator, "the frontmatter is not closed"
    return yaml.safe_load(header), body


@pytest.mark.parametrize(
    ("name", "valid"),
    [("generator-from-music", True), ("a" * 64, True), ("a" * 65, False), ("Music", False), ("-music", False),
     ("music-", False), ("music--video", False), ("music_video", False), ("", False)],
)
def test_the_name_rule_itself(name: str, valid: bool) -> None:
    assert is_agent_skills_name(name) is valid


def test_the_variants_are_the_five_seeds() -> None:
    assert {variant.seed: (variant.name, variant.version) for variant in VARIANTS} == SEEDS
    assert variant_named("ai-with-music").seed == "003"
    with pytest.raises(KeyError, match="generator-from-music"):
        variant_named("no-such-skill")


@by_name
def test_frontmatter_follows_agent_skills_and_clawhub_rules(variant: Variant, tmp_path: Path) -> None:
    folder = pack(variant, tmp_path)
    frontmatter, body = split_skill_md((folder / "SKILL.md").read_text(encoding="utf-8"))

    assert is_agent_skills_name(frontmatter["name"]) and frontmatter["name"] == folder.name == variant.name
    description = frontmatter["description"]
    assert isinstance(description, str) and 0 < len(description) <= 1024
    assert "<" not in description and ">" not in description  # Agent Skills forbid XML-like markup here
    assert set(frontmatter) <= AGENT_SKILLS_KEYS  # any other key fails the Agent Skills validators
    assert frontmatter["metadata"]["version"] == SEEDS[variant.seed][1]
    assert "3.11" in frontmatter["compatibility"] and "uv" in frontmatter["compatibility"]
    assert skills_ref.validate(folder) == []
    assert skills_ref.validate(folder / "skills" / variant.name) == []  # the plugin bundle's copy

    openclaw = frontmatter["metadata"]["openclaw"]
    assert openclaw["emoji"] == variant.emoji and openclaw["emoji"].strip()
    assert openclaw["primaryEnv"] == "NEMO_TOKEN"
    assert openclaw["requires"] == {"bins": ["nemovideo-mcp"]}  # no `env`: a required token would block installs
    assert openclaw["install"] == [{"id": "uv", "kind": "uv", "package": "nemovideo-mcp", "bins": ["nemovideo-mcp"]}]
    assert "requires" not in frontmatter
    env_vars = {entry["name"]: entry for entry in openclaw["envVars"]}
    assert set(env_vars) == OPTIONAL_ENV
    for entry in env_vars.values():
        assert entry["required"] is False and entry["description"]
    assert str(variant.max_upload_mb) in env_vars["NEMO_MAX_UPLOAD_MB"]["description"]

    # What the server itself reads from the packed folder: the attribution it will send.
    identity = load_identity(folder / "SKILL.md", skill_source=None, home=tmp_path)
    assert (identity.name, identity.version) == (variant.name, variant.version)
    assert read_frontmatter(folder / "SKILL.md") == frontmatter


@by_name
def test_body_tells_the_host_which_tool_to_use_and_how_to_talk(variant: Variant) -> None:
    _, body = split_skill_md(render_skill_md(variant))
    table = re.findall(r"^\| `(\w+)` \| (.+) \|$", body, flags=re.MULTILINE)
    assert [name for name, _ in table] == ["chat", "upload", "export", "wait", "credits", "state", "projects", "cancel"]
    assert all(description.strip() for _, description in table)
    assert "Still working" in body and "`wait`" in body and "job_id" in body
    assert "Never show tokens" in body and "raw JSON" in body
    assert f"up to {variant.max_upload_mb} MB" in body
    for example in variant.try_saying:
        assert f'- "{example}"' in body
    for tip in variant.tips:
        assert tip in body
    assert body.startswith(f"\n# {variant.title}\n")


def test_each_variant_speaks_for_itself() -> None:
    assert len({variant.description for variant in VARIANTS}) == len(VARIANTS)
    assert len({variant.emoji for variant in VARIANTS}) == len(VARIANTS)
    assert variant_named("generator-from-music").max_upload_mb == 200
    assert {variant.max_upload_mb for variant in VARIANTS if variant.seed != "000"} == {500}


@by_name
def test_a_skill_names_only_formats_the_upload_accepts(variant: Variant) -> None:
    text = " ".join([variant.pitch, variant.greeting, variant.walkthrough, *variant.tips, *variant.try_saying,
                     *variant.recommended_formats, render_skill_md(variant)])
    named = {word.lower() for word in re.findall(r"[A-Za-z0-9]+", text)} & set(RECOGNISED)
    assert named and named <= set(ACCEPTED_FORMATS)
    assert {name.lower() for name in variant.recommended_formats} <= set(ACCEPTED_FORMATS)


@by_name
def test_manifest_fields(variant: Variant, tmp_path: Path) -> None:
    folder = pack(variant, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert yaml.safe_load((folder / "manifest.yaml").read_text(encoding="utf-8")) == manifest
    assert manifest["manifest_version"] == "0.4"
    assert (manifest["name"], manifest["version"], manifest["description"]) == (
        variant.name, variant.version, variant.description)
    assert manifest["display_name"].startswith(variant.display_name) and manifest["author"]["name"]
    assert (folder / manifest["icon"]).read_bytes().startswith(b"\x89PNG")
    assert manifest["compatibility"]["runtimes"]["python"] == ">=3.11"
    server = manifest["server"]
    assert server["type"] == "uv" and (folder / server["entry_point"]).is_file()
    config = server["mcp_config"]
    # Until the package is on PyPI, the folder itself is what uv builds and runs.
    assert (config["command"], config["args"]) == ("uvx", ["--from", "${__dirname}", "nemovideo-mcp"])
    assert config["env"]["NEMO_SKILL_DIR"] == "${__dirname}"
    assert "NEMO_MAX_UPLOAD_MB" not in config["env"]
    assert config["env"]["NEMO_TOKEN"] == "${user_config.nemo_token}"
    assert config["env"]["NEMO_OUTPUT_DIR"] == "${user_config.output_dir}"
    assert config["env"]["NEMO_API_URL"] == "${user_config.api_url}"
    user_config = manifest["user_config"]
    assert user_config["nemo_token"]["sensitive"] is True and user_config["nemo_token"]["required"] is False
    assert user_config["output_dir"]["type"] == "directory"
    # The server has every default; a host hands a manifest's default over unexpanded (`${HOME}/Downloads`).
    assert not [key for key, option in user_config.items() if "default" in option or option["required"]]
    assert [tool["name"] for tool in manifest["tools"]] == [tool.name for tool in TOOLS]


@by_name
def test_plugin_bundle(variant: Variant, tmp_path: Path) -> None:
    folder = pack(variant, tmp_path)
    plugin = json.loads((folder / ".claude-plugin" / "plugin.json").read_text(encoding="utf-8"))
    assert (plugin["name"], plugin["version"]) == (variant.name, variant.version)
    assert not (folder / ".mcp.json").exists()
    assert plugin["mcpServers"] == {variant.name: {
        "type": "stdio", "command": "uvx", "args": ["--from", "${CLAUDE_PLUGIN_ROOT}", "nemovideo-mcp"],
        "env": {"NEMO_SKILL_DIR": "${CLAUDE_PLUGIN_ROOT}"},
    }}
    assert (folder / "skills" / variant.name / "SKILL.md").read_text() == (folder / "SKILL.md").read_text()


def test_top_level_skill_files_are_the_top_level_variant(tmp_path: Path) -> None:
    generated = pack(variant_named(TOP_LEVEL_VARIANT), tmp_path)
    names = ["SKILL.md", "manifest.json", "manifest.yaml", ".mcpbignore", ".claude-plugin/plugin.json",
             f"skills/{TOP_LEVEL_VARIANT}/SKILL.md"]
    for name in names:
        assert (REPO / name).read_text(encoding="utf-8") == (generated / name).read_text(encoding="utf-8"), (
            f"{name}: {REGENERATE}")
    assert [path.name for path in (REPO / "skills").iterdir()] == [TOP_LEVEL_VARIANT]


def test_opening_the_repository_as_a_project_offers_no_plugin_server() -> None:
    """Claude Code reads a folder's root .mcp.json as the project's own servers, where
    `${CLAUDE_PLUGIN_ROOT}` is never filled in: the plugin declares its server in plugin.json."""
    project_config = REPO / ".mcp.json"
    assert not project_config.exists() or "${CLAUDE_PLUGIN_ROOT}" not in project_config.read_text(encoding="utf-8")
    plugin = json.loads((REPO / ".claude-plugin" / "plugin.json").read_text(encoding="utf-8"))
    assert plugin["mcpServers"][TOP_LEVEL_VARIANT]["args"] == ["--from", "${CLAUDE_PLUGIN_ROOT}", "nemovideo-mcp"]


def test_host_rules_have_one_wording_in_the_server_and_in_skill_md() -> None:
    _, body = split_skill_md((REPO / "SKILL.md").read_text(encoding="utf-8"))
    for rule in RULES:
        assert rule in INSTRUCTIONS and f"- {rule}" in body
    assert "never" in INSTRUCTIONS.lower() and "not files on this computer" in INSTRUCTIONS


@pytest.mark.anyio
async def test_manifest_tools_are_the_servers_tools(settings, identity) -> None:
    async with Client(build_server(settings, identity)) as client:
        served = {tool.name for tool in (await client.list_tools()).tools}
        instructions = client.instructions
    declared = json.loads((REPO / "manifest.json").read_text(encoding="utf-8"))["tools"]
    assert {tool["name"] for tool in declared} | {tool.name for tool in APP_TOOLS} == served  # manifests list no view's tool
    assert all(tool["description"].strip() for tool in declared)
    assert instructions == INSTRUCTIONS


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda variant: variant.name)
def test_the_server_reads_the_upload_limit_the_variant_states(variant: Variant, tmp_path) -> None:
    from nemovideo_mcp.identity import load_identity

    skill_md = tmp_path / variant.name / "SKILL.md"
    skill_md.parent.mkdir()
    skill_md.write_text(render_skill_md(variant), encoding="utf-8")
    assert load_identity(skill_md, skill_source=None, home=tmp_path).max_upload_mb == variant.max_upload_mb
