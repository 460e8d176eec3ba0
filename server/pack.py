"""`python -m server pack`: a complete, self-contained skill folder for one published variant.

The folder holds the variant's SKILL.md and manifest.yaml, the project's pyproject.toml
(copied at pack time, so packed folders never lag behind the repository) and a copy of
this package. It installs with `pip install <folder>` and then identifies itself as that
variant, because the wheel carries the folder's SKILL.md inside the package.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from .errors import ConfigurationError
from .identity import PACKAGE_DIR
from .variants import TOOLS, TOP_LEVEL_VARIANT, VARIANTS, Variant, render_skill_md, variant_named

# The skill folder this package runs from: the repository, or a folder written by `pack`.
SOURCE_DIR = PACKAGE_DIR.parent

MANIFEST_HEADER = """\
# How a host starts this skill's MCP server (the fields of an MCPB manifest, in YAML).
# Generated from server/variants.py by `python -m server pack` (`pack <variant> --in-place`
# rewrites it in place); edit that, not this file.
"""


def render_manifest(variant: Variant) -> str:
    manifest = {
        "manifest_version": "0.3",
        "name": variant.name,
        "display_name": f"{variant.display_name} (NemoVideo)",
        "version": variant.version,
        "description": variant.description,
        "author": {"name": "NemoVideo skill maintainers"},
        "server": {
            "type": "python",
            "entry_point": "server/__main__.py",
            "mcp_config": {
                "command": "python3",
                "args": ["-m", "server"],
                "env": {
                    # Makes `-m server` find this folder's package (and so its SKILL.md) from any cwd.
                    "PYTHONPATH": "${__dirname}",
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
            "output_dir": {
                "type": "directory",
                "title": "Output folder",
                "description": "Where exported videos are saved.",
                "default": "${HOME}/Downloads",
                "required": False,
            },
            "api_url": {
                "type": "string",
                "title": "API base URL",
                "description": "NemoVideo API base URL; change it only to use another backend.",
                "default": "https://mega-api-prod.nemovideo.ai",
                "required": False,
            },
        },
        "tools": [{"name": tool.name, "description": tool.description} for tool in TOOLS],
    }
    return MANIFEST_HEADER + yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=100)


def render_readme(variant: Variant) -> str:
    return f"""\
# {variant.title}

{variant.emoji} The `{variant.name}` skill, version {variant.version}. {variant.description}

This folder is the whole skill: `SKILL.md` (what the agent reads), `manifest.yaml` (how a host
starts the MCP server), `server/` (the MCP server) and `pyproject.toml`.

```sh
python3 -m venv .venv && .venv/bin/pip install .
.venv/bin/nemovideo-mcp --sandbox   # try it offline against a built-in sandbox, no account needed
.venv/bin/nemovideo-mcp             # what a host starts (MCP over stdio)
```

A host config (Claude Desktop, Cursor) points at the installed server:

```json
{{
  "mcpServers": {{
    "{variant.name}": {{
      "command": "/absolute/path/to/{variant.name}/.venv/bin/nemovideo-mcp",
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
    (folder / "SKILL.md").write_text(render_skill_md(variant), encoding="utf-8")
    (folder / "manifest.yaml").write_text(render_manifest(variant), encoding="utf-8")


def pack(variant: Variant, directory: Path) -> Path:
    """Write `<directory>/<variant name>/`; files pack does not own (e.g. `.clawhub/`) are kept."""
    ensure_skill_folder(SOURCE_DIR)
    target = (directory / variant.name).resolve()
    if target == SOURCE_DIR or target.is_relative_to(PACKAGE_DIR):
        raise ConfigurationError(f"Packing into {target} would overwrite the source; choose another directory.")
    target.mkdir(parents=True, exist_ok=True)
    if (target / "server").exists():
        shutil.rmtree(target / "server")
    shutil.copytree(PACKAGE_DIR, target / "server", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copyfile(SOURCE_DIR / "pyproject.toml", target / "pyproject.toml")
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
                        help="rewrite SKILL.md and manifest.yaml of the skill folder this server runs from as VARIANT "
                        "(how the repository's own files are regenerated)")
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
        print(f"Rewrote {SOURCE_DIR / 'SKILL.md'} and manifest.yaml as {variant.name}", file=sys.stderr)
        return 0
    target = pack(variant, args.directory)
    print(target)
    return 0
