"""Who we are to the backend: the three attribution headers, read from SKILL.md.

The backend answers exports without attribution with 402, so a missing or broken
SKILL.md stops the server at start-up instead of sending anonymous traffic.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import yaml
from pydantic import BaseModel, ConfigDict

from .errors import ConfigurationError

PACKAGE_DIR = Path(__file__).resolve().parent
DISTRIBUTION = "nemovideo-mcp"


class SkillIdentity(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    version: str
    platform: str
    skill_md: Path
    max_upload_mb: float | None = None  # the limit this skill states (metadata.nemovideo.max_upload_mb)

    def headers(self) -> dict[str, str]:
        return {
            "X-Skill-Source": self.name,
            "X-Skill-Version": self.version,
            "X-Skill-Platform": self.platform,
        }


def find_skill_md(skill_dir: Path | None = None) -> Path:
    """The SKILL.md this server speaks for, read at every start so no build freezes an identity.

    In order: the folder named by `--skill-dir` / NEMO_SKILL_DIR (what manifests set);
    the skill folder this package runs from (a checkout or an editable install); the folder
    an installer built it from (`uvx --from <folder>`, `pip install <folder>`: PEP 610's
    direct_url.json); else the copy a wheel carries inside the package.
    """
    if skill_dir is not None:
        return skill_dir.expanduser() / "SKILL.md"
    for folder in (PACKAGE_DIR.parent, installed_from()):
        if folder is not None and (folder / "SKILL.md").is_file():
            return folder / "SKILL.md"
    return PACKAGE_DIR / "SKILL.md"


def installed_from() -> Path | None:
    """The local folder this package was installed from, as the installer recorded it (PEP 610)."""
    try:
        record = json.loads(distribution(DISTRIBUTION).read_text("direct_url.json") or "null")
    except (PackageNotFoundError, ValueError, OSError):
        return None
    if not isinstance(record, dict) or "dir_info" not in record or not str(record.get("url", "")).startswith("file:"):
        return None
    return Path(url2pathname(urlparse(record["url"]).path))


def read_frontmatter(skill_md: Path) -> dict:
    try:
        text = skill_md.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the skill file {skill_md} ({exc.strerror or exc}). "
            "The server needs it to identify itself to NemoVideo; reinstall the skill."
        ) from None
    if not text.startswith("---"):
        raise ConfigurationError(f"{skill_md} has no YAML frontmatter (it must start with '---').")
    _, _, rest = text.partition("\n")
    frontmatter, separator, _ = rest.partition("\n---")
    if not separator:
        raise ConfigurationError(f"{skill_md}: the YAML frontmatter is not closed with '---'.")
    try:
        # The safe loader, in C where libyaml is built in: the frontmatter is read at every start, and the pure
        # Python loader takes longer over it than the rest of the start (bench/coldstart.py).
        data = yaml.load(frontmatter, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{skill_md}: the YAML frontmatter does not parse ({exc}).") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{skill_md}: the YAML frontmatter is not a mapping.")
    return data


def detect_platform(skill_md: Path, skill_source: str | None, home: Path) -> str:
    if skill_source:
        return skill_source
    real = skill_md.resolve()
    folder = real.parent
    if (folder / ".clawhub" / "origin.json").is_file() or (folder / ".clawdhub" / "origin.json").is_file():
        return "clawhub"
    if real.is_relative_to((home / ".clawhub").resolve()):
        return "clawhub"
    if real.is_relative_to((home / ".cursor" / "skills").resolve()):
        return "cursor"
    return "unknown"


def load_identity(skill_md: Path, *, skill_source: str | None, home: Path) -> SkillIdentity:
    data = read_frontmatter(skill_md)
    name = data.get("name")
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    version = data.get("version") or metadata.get("version")
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(f"{skill_md}: the frontmatter has no 'name'.")
    if version is None or not str(version).strip():
        raise ConfigurationError(f"{skill_md}: the frontmatter has no 'version' (nor 'metadata.version').")
    ours = metadata.get("nemovideo") if isinstance(metadata.get("nemovideo"), dict) else {}
    limit = ours.get("max_upload_mb")
    return SkillIdentity(
        name=name.strip(),
        version=str(version).strip(),
        platform=detect_platform(skill_md, skill_source, home),
        skill_md=skill_md,
        max_upload_mb=float(limit) if isinstance(limit, (int, float)) and limit > 0 else None,
    )
