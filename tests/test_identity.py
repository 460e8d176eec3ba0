from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nemovideo_mcp.errors import ConfigurationError
from nemovideo_mcp.identity import find_skill_md, load_identity
from nemovideo_mcp.settings import Settings
from tests.conftest import REPO

FRONTMATTER = "---\nname: generator-from-music\nversion: 1.2.3\ndescription: test\n---\n# body\n"


def write_skill(folder: Path, text: str = FRONTMATTER) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "SKILL.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_headers_come_from_the_frontmatter(home: Path) -> None:
    identity = load_identity(write_skill(home / "work" / "skill"), skill_source=None, home=home)
    assert identity.headers() == {
        "X-Skill-Source": "generator-from-music",
        "X-Skill-Version": "1.2.3",
        "X-Skill-Platform": "unknown",
    }


def test_strict_agent_skills_frontmatter_keeps_version_in_metadata(home: Path) -> None:
    text = "---\nname: video-to-generator\ndescription: d\nmetadata:\n  version: \"2.0\"\n---\n"
    identity = load_identity(write_skill(home / "s", text), skill_source=None, home=home)
    assert (identity.name, identity.version) == ("video-to-generator", "2.0")


@pytest.mark.parametrize(
    ("relative_folder", "marker", "expected"),
    [
        (".clawhub/skills/generator-from-music", None, "clawhub"),
        (".cursor/skills/generator-from-music", None, "cursor"),
        ("workdir/skills/generator-from-music", ".clawhub", "clawhub"),
        ("workdir/skills/generator-from-music", ".clawdhub", "clawhub"),
        ("workdir/skills/generator-from-music", None, "unknown"),
        (".cursor/other/generator-from-music", None, "unknown"),
    ],
)
def test_platform_rules(home: Path, relative_folder: str, marker: str | None, expected: str) -> None:
    folder = home / relative_folder
    skill_md = write_skill(folder)
    if marker:
        (folder / marker).mkdir()
        (folder / marker / "origin.json").write_text('{"slug": "generator-from-music"}')
    assert load_identity(skill_md, skill_source=None, home=home).platform == expected


def test_skill_source_overrides_detection(home: Path) -> None:
    skill_md = write_skill(home / ".cursor" / "skills" / "x")
    assert load_identity(skill_md, skill_source="openclaw", home=home).platform == "openclaw"


def test_platform_follows_the_real_path_of_a_symlinked_skill(home: Path) -> None:
    real = write_skill(home / ".clawhub" / "skills" / "x")
    link = home / "elsewhere"
    link.symlink_to(real.parent)
    assert load_identity(link / "SKILL.md", skill_source=None, home=home).platform == "clawhub"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("# no frontmatter\n", "no YAML frontmatter"),
        ("---\nname: x\nversion: 1\n", "not closed"),
        ("---\nname: [unclosed\n---\n", "does not parse"),
        ("---\nversion: 1.0.0\n---\n", "no 'name'"),
        ("---\nname: x\n---\n", "no 'version'"),
    ],
)
def test_broken_frontmatter_is_a_clear_error_naming_the_file(home: Path, text: str, complaint: str) -> None:
    skill_md = write_skill(home / "s", text)
    with pytest.raises(ConfigurationError) as caught:
        load_identity(skill_md, skill_source=None, home=home)
    assert complaint in str(caught.value) and str(skill_md) in str(caught.value)


def test_a_skill_dir_without_skill_md_stops_the_server_at_start_up(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-skill"
    empty.mkdir()
    completed = subprocess.run(
        [sys.executable, "-m", "nemovideo_mcp", "--skill-dir", str(empty)], cwd=tmp_path, capture_output=True,
        text=True, timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert str(empty / "SKILL.md") in completed.stderr


def test_the_named_skill_folder_comes_first_then_the_folder_we_run_from(home: Path) -> None:
    named = write_skill(home / "named").parent
    assert find_skill_md(named) == named / "SKILL.md"
    assert find_skill_md() == REPO / "SKILL.md"  # an editable install runs from the repository
    assert Settings.from_env({"HOME": str(home), "NEMO_SKILL_DIR": str(named)}).skill_dir == named
    assert Settings.from_env({"HOME": str(home)}).skill_dir is None
