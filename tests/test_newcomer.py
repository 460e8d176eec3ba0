"""What a newcomer reads first: the command's help, the demo's narration, the hint for real renders
(issue 15, items 20 and 21). Each test fails on 656501e.
"""

from __future__ import annotations

import io
import logging
import re
import shlex

import pytest

from nemovideo_mcp.cli import main
from tests.conftest import REPO


def help_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_the_help_lists_every_subcommand_under_its_own_name(capsys: pytest.CaptureFixture[str]) -> None:
    top = help_of(capsys)
    for command in ("demo", "sandbox", "pack", "login", "logout"):
        assert re.search(rf"^\s+nemovideo-mcp {command}\b", top, re.MULTILINE), f"{command} is not listed:\n{top}"
    for command in ("demo", "sandbox", "pack", "login", "logout"):
        assert help_of(capsys, command).startswith(f"usage: nemovideo-mcp {command}")


def test_the_render_hint_is_a_command_that_works_from_this_folder() -> None:
    from nemovideo_mcp.sandbox.studio import render_hint

    # The package is not on PyPI: `pip install 'nemovideo-mcp[render]'` cannot work; the folder it came from does.
    assert f"uvx --from {shlex.quote(f'{REPO}[render]')} nemovideo-mcp --sandbox" in render_hint()
    assert render_hint("demo").endswith("nemovideo-mcp demo")


@pytest.mark.anyio
async def test_the_demo_quotes_only_the_user_follows_what_it_names_and_states_one_size(
        tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("av")  # the render extra: the README's first command installs it
    from nemovideo_mcp.demo import run_demo

    out = io.StringIO()
    with caplog.at_level(logging.WARNING):
        made = await run_demo(out, tmp_path / "out", walkthrough=True, seconds=2.0, poll_scale=0.05, pace=0.25)
    text = out.getvalue()
    assert made is not None
    sent = {json_message for json_message in re.findall(r'host calls chat\(\{"message": "((?:[^"\\]|\\.)*)"', text)}
    said = re.findall(r"^👤 user: (.*)$", text, re.MULTILINE)
    assert said and all(line.replace('"', '\\"') in sent or line in {"how many credits do I have left?",
                                                                       "what's on the timeline?", "show tracks",
                                                                       "export it as an MP4"} for line in said), said
    # Every follow-up the demo's results name, it follows.
    named = set(re.findall(r'call `wait` with job_id "([^"]+)"', text))
    followed = set(re.findall(r'host calls wait\(\{"job_id": "([^"]+)"', text))
    assert named and named <= followed
    # One size, as the export stated it.
    stated = re.search(r"✅ Exported: .*\((\d+(?:\.\d+)? [KMG]?B)\)", text).group(1)
    assert re.findall(r"\d+(?:\.\d+)? [KMG]B\b", text.split("The MP4 is on disk")[1]) == [stated]
    # The designed paths (a silent edit, a second stage) are not alarms.
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
