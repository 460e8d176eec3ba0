"""`nemovideo-mcp pack`: a complete, self-contained skill folder for one published variant.

The folder is at once an Agent Skill (SKILL.md), an MCPB bundle (manifest.json, and the same
fields in manifest.yaml), a Claude Code plugin (.claude-plugin/plugin.json, which declares the
server, and skills/<name>/SKILL.md) and a Python project (pyproject.toml, server/). Every
manifest starts the server with `uvx --from <this folder> nemovideo-mcp` and names the folder
in NEMO_SKILL_DIR, so one installed or cached `nemovideo-mcp` speaks for whichever variant
started it. Everything here is generated from the variant data in variants.py and texts.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from . import __version__
from .errors import ConfigurationError
from .identity import PACKAGE_DIR
from .settings import DEFAULT_API_URL
from .variants import DISTRIBUTION, TOOLS, TOP_LEVEL_VARIANT, VARIANTS, Variant, render_skill_md, variant_named

# The skill folder this package runs from: the repository, or a folder written by `pack`.
SOURCE_DIR = PACKAGE_DIR.parent
# Copied as they are: what builds the package (pyproject.toml, hatch_build.py) and what ships with it.
COPIED = ("pyproject.toml", "hatch_build.py", "LICENSE", "icon.png")
AUTHOR = "NemoVideo skill maintainers"
PYTHON = ">=3.11"

MANIFEST_HEADER = """\
# How a host starts this skill's MCP server: the fields of manifest.json (MCPB 0.4), in YAML.
# Generated from server/variants.py by `nemovideo-mcp pack` (`pack <variant> --in-place`
# rewrites it in place); edit that, not this file.
"""

# What `mcpb pack` leaves out of the .mcpb: the bundle is the manifest, SKILL.md and the
# project that uv builds on the user's machine.
MCPBIGNORE = """\
.venv/
__pycache__/
*.pyc
*.mcpb
.git/
.ci/
tests/
bench/
demo-output/
skills/
.claude-plugin/
"""
# Earlier packs declared the plugin's server here. At a folder's root Claude Code also reads it
# as the project's own config, where `${CLAUDE_PLUGIN_ROOT}` means nothing: opening the folder
# offered a broken server. The declaration lives in plugin.json now; a stale copy is removed.
PROJECT_MCP_CONFIG = ".mcp.json"
PLUGIN_ROOT = "${CLAUDE_PLUGIN_ROOT}"


def uvx_from(folder: str) -> dict:
    """The start command of an unpublished skill folder: uv builds and runs that folder's server."""
    return {"command": "uvx", "args": ["--from", folder, DISTRIBUTION], "env": {"NEMO_SKILL_DIR": folder}}


def mcpb_manifest(variant: Variant) -> dict:
    start = uvx_from("${__dirname}")
    return {
        "manifest_version": "0.4",
        "name": variant.name,
        "display_name": f"{variant.display_name} (NemoVideo)",
        "version": variant.version,
        "description": variant.description,
        "author": {"name": AUTHOR},
        "icon": "icon.png",
        "server": {
            # uv: the host installs Python and the dependencies from pyproject.toml.
            "type": "uv",
            "entry_point": "server/__main__.py",
            "mcp_config": {
                **start,
                "env": {
                    **start["env"],
                    "NEMO_TOKEN": "${user_config.nemo_token}",
                    "NEMO_OUTPUT_DIR": "${user_config.output_dir}",
                    "NEMO_API_URL": "${user_config.api_url}",
                },
            },
        },
        "user_config": {
            "nemo_token": {
                "type": "string",
                "title": "NemoVideo token",
                "description": "Optional. Without it the skill obtains a free anonymous token (100 credits, 7 days).",
                "sensitive": True,
                "required": False,
            },
            # No defaults: the server has its own, and a host hands a default over unexpanded
            # (`${HOME}/Downloads` arrived as a folder named `${HOME}`). A field left blank
            # reaches the server as its unfilled placeholder, which it treats as unset.
            "output_dir": {
                "type": "directory",
                "title": "Output folder",
                "description": "Where exported videos are saved. Leave it empty for your Downloads folder.",
                "required": False,
            },
            "api_url": {
                "type": "string",
                "title": "API base URL",
                "description": f"NemoVideo API base URL; leave it empty for {DEFAULT_API_URL}. "
                "Change it only to use another backend.",
                "required": False,
            },
        },
        "tools": [{"name": tool.name, "description": tool.description} for tool in TOOLS],
        "compatibility": {"platforms": ["darwin", "linux", "win32"], "runtimes": {"python": PYTHON}},
        "keywords": ["video", "music", "nemovideo", "mcp"],
        "license": "MIT",
    }


def render_manifest_json(variant: Variant) -> str:
    return json.dumps(mcpb_manifest(variant), indent=2, ensure_ascii=False) + "\n"


def render_manifest(variant: Variant) -> str:
    """manifest.yaml: manifest.json's fields, for hosts and people that read YAML."""
    return MANIFEST_HEADER + yaml.safe_dump(mcpb_manifest(variant), sort_keys=False, allow_unicode=True, width=100)


def plugin_files(variant: Variant) -> dict[str, str]:
    """A Claude Code plugin (also loaded by OpenClaw): the server, declared in plugin.json, and the skill."""
    plugin = {
        "name": variant.name,
        "version": variant.version,
        "description": variant.description,
        "author": {"name": AUTHOR},
        "license": "MIT",
        "keywords": ["video", "music", "nemovideo"],
        # Here, not in a root .mcp.json (see PROJECT_MCP_CONFIG).
        "mcpServers": {variant.name: {"type": "stdio", **uvx_from(PLUGIN_ROOT)}},
    }
    return {
        ".claude-plugin/plugin.json": json.dumps(plugin, indent=2, ensure_ascii=False) + "\n",
        f"skills/{variant.name}/SKILL.md": render_skill_md(variant),
    }


def render_readme(variant: Variant) -> str:
    return f"""\
# {variant.title}

{variant.emoji} The `{variant.name}` skill, version {variant.version}. {variant.description}

This folder is the whole skill: `SKILL.md` (what the agent reads), `manifest.json` (Claude
Desktop's MCPB bundle; `manifest.yaml` holds the same fields), `.claude-plugin/plugin.json` (a
Claude Code plugin, which declares the server) with `skills/`, and the MCP server (`server/`,
`pyproject.toml`). It needs Python 3.11+ and [uv](https://docs.astral.sh/uv/).

```sh
uvx --from . nemovideo-mcp --sandbox     # try it offline against a built-in sandbox, no account needed
npx -y @anthropic-ai/mcpb pack . {variant.name}.mcpb    # the bundle to open in Claude Desktop
claude --plugin-dir .                     # Claude Code with this folder as a plugin
```

Other hosts run `uvx --from /absolute/path/to/{variant.name} nemovideo-mcp`, for example:

```json
{{
  "mcpServers": {{
    "{variant.name}": {{
      "command": "uvx",
      "args": ["--from", "/absolute/path/to/{variant.name}", "nemovideo-mcp"],
      "env": {{ "NEMO_OUTPUT_DIR": "/absolute/path/for/videos" }}
    }}
  }}
}}
```

Set `NEMO_TOKEN` there too if you have a NemoVideo account; without it the server obtains free
starter credits itself.
"""


def ensure_skill_folder(folder: Path) -> None:
    if not (folder / "pyproject.toml").is_file():
        raise ConfigurationError(
            f"{folder} is not a skill folder (no pyproject.toml beside server/); "
            "run pack from the repository or from a packed skill folder."
        )


def write_skill_files(variant: Variant, folder: Path) -> None:
    """Everything generated from the variant: the skill, its manifests and its plugin bundle."""
    files = {
        "SKILL.md": render_skill_md(variant),
        "manifest.json": render_manifest_json(variant),
        "manifest.yaml": render_manifest(variant),
        ".mcpbignore": MCPBIGNORE,
        **plugin_files(variant),
    }
    skills = folder / "skills"
    if skills.is_dir():  # a variant packed over another one must not keep the other's skill
        for stale in skills.iterdir():
            if stale.name != variant.name and (stale / "SKILL.md").is_file():
                shutil.rmtree(stale)
    project_config = folder / PROJECT_MCP_CONFIG
    if project_config.is_file() and PLUGIN_ROOT in project_config.read_text(encoding="utf-8"):
        project_config.unlink()
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def pack(variant: Variant, directory: Path) -> Path:
    """Write `<directory>/<variant name>/`; files pack does not own (e.g. `.clawhub/`) are kept."""
    ensure_skill_folder(SOURCE_DIR)
    target = (directory / variant.name).resolve()
    if target == SOURCE_DIR or target.is_relative_to(PACKAGE_DIR):
        raise ConfigurationError(f"Packing into {target} would overwrite the source; choose another directory.")
    target.mkdir(parents=True, exist_ok=True)
    if (target / "server").exists():
        shutil.rmtree(target / "server")
    shutil.copytree(PACKAGE_DIR, target / "server",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "SKILL.md"))
    for name in COPIED:
        # With their times, as copytree copies server/: uv rebuilds a folder only when these change (cache-keys).
        shutil.copy2(SOURCE_DIR / name, target / name)
    write_skill_files(variant, target)
    (target / "README.md").write_text(render_readme(variant), encoding="utf-8")
    return target


def list_variants() -> str:
    lines = []
    for variant in VARIANTS:
        top_level = " (the repository's SKILL.md)" if variant.name == TOP_LEVEL_VARIANT else ""
        lines.append(f"{variant.name:<32} {variant.version:<8} {variant.emoji} {variant.display_name}, "
                     f"seed {variant.seed}, uploads up to {variant.max_upload_mb} MB{top_level}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="nemovideo-mcp pack", description="Write a complete skill folder for one of the published variants."
    )
    parser.add_argument("variant", nargs="?", metavar="VARIANT", help="a variant name; see --list")
    parser.add_argument("directory", nargs="?", type=Path, help="the skill folder is written to DIRECTORY/VARIANT")
    parser.add_argument("--list", action="store_true", help="list the variants")
    parser.add_argument("--in-place", action="store_true",
                        help="rewrite the generated files (SKILL.md, manifests, plugin bundle) of the skill folder "
                        "this server runs from as VARIANT (how the repository's own files are regenerated)")
    args = parser.parse_args(argv)
    if args.list:
        print(list_variants())
        return 0
    if args.variant is None or (args.directory is None) != args.in_place:
        parser.error("give VARIANT and DIRECTORY, VARIANT with --in-place, or --list")
    try:
        variant = variant_named(args.variant)
    except KeyError as error:
        parser.error(error.args[0])
    if args.in_place:
        ensure_skill_folder(SOURCE_DIR)
        write_skill_files(variant, SOURCE_DIR)
        print(f"Rewrote the skill files of {SOURCE_DIR} as {variant.name} {variant.version} "
              f"(nemovideo-mcp {__version__})", file=sys.stderr)
        return 0
    target = pack(variant, args.directory)
    print(target)
    return 0
