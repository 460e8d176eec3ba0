"""Bad input gets a sentence before any request, and a password in a link stays secret (issue 15, items 12, 13, 20).

Each test fails on 656501e: there, these calls raised ("Error executing tool …" with a pydantic message or
nothing at all), some after a request; a link's password named the upload and reached the log.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from nemovideo_mcp.tools import build_server

pytestmark = pytest.mark.anyio

PASSWORD = "hunter2-in-a-link"


@pytest.mark.parametrize(("tool", "arguments"), [
    ("projects", {"action": "switch", "project": "²"}),
    ("export", {"output_dir": "Videos\x00final"}),
    ("upload", {"sources": ["http://[::1"]}),
    ("chat", {"message": "use http://[fe80::1/clip.mp4 as the intro"}),
    # A lone surrogate (JSON's "\udc80" escape): the backend project was created before the store refused it.
    ("projects", {"action": "new", "project": "Trip \udc80 2026"}),
    ("chat", {"message": "make it \udc80 brighter"}),
    ("chat", {"message": ""}),
    ("upload", {"sources": []}),
    ("wait", {"job_id": ""}),
    ("chat", {"message": "make a video", "wait_seconds": -1}),
    # JSON's "\u0000": PostgreSQL's text refuses it, and the user was told the database was misconfigured.
    ("wait", {"job_id": "turn_0123456789ab\x00"}),
], ids=["switch-superscript", "nul-folder", "upload-bad-ipv6", "chat-bad-ipv6", "surrogate-name",
        "surrogate-message", "empty-message", "no-sources", "empty-job", "negative-wait", "nul-job"])
async def test_bad_input_gets_a_sentence_before_any_request(tool, arguments, sandbox, settings, identity, out) -> None:
    server = build_server(settings.model_copy(update={"output_dir": out}), identity)
    async with Client(server) as client:
        result = await client.call_tool(tool, arguments)
    text = result.content[0].text
    assert result.is_error
    # Neither the SDK's wrapper nor the sentence for a fault of ours: a sentence about this input.
    assert not text.startswith(("Error executing tool", "Something went wrong inside")) and "pydantic" not in text, text
    assert text.rstrip().endswith((".", "?")) and "\x00" not in text
    assert sandbox.requests == []  # not a token, not a project: nothing to retry, no orphan left behind


async def test_a_password_in_a_link_is_never_shown_named_or_logged(sandbox, env, stdio_params, tmp_path) -> None:
    link = f"https://alice:{PASSWORD}@media.example/"
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        async with Client(stdio_client(stdio_params(env, "--log-level", "DEBUG"), errlog=stderr)) as client:
            results = [
                await client.call_tool("upload", {"sources": [link]}),
                await client.call_tool("chat", {"message": f"{link}clip.mp4", "wait_seconds": 30}),
                await client.call_tool("chat", {"message": f"make a video from {link}", "wait_seconds": 30}),
                await client.call_tool("upload", {"sources": [f"ftp://alice:{PASSWORD}@media.example/clip.mp4"]}),
            ]
    shown = json.dumps([result.model_dump(mode="json") for result in results], ensure_ascii=False)
    assert "media.example" in shown and not results[0].is_error and results[3].is_error
    assert PASSWORD not in shown and "alice" not in shown, shown
    assert PASSWORD not in stderr_path.read_text()
    # The agent's note names what it was given by host name: the user's own words are theirs to send.
    notes = [line for session in sandbox.sessions.values() for message in session.messages
             for line in message.splitlines() if line.startswith("[uploaded:")]
    assert notes == ["[uploaded: media.example]"]


async def test_a_missing_path_with_spaces_is_named_whole(sandbox, settings, identity, tmp_path: Path) -> None:
    missing = tmp_path / "My Music" / "first song.mp3"
    async with Client(build_server(settings, identity)) as client:
        result = await client.call_tool("chat", {"message": f"make a video with {missing} please"})
    assert result.is_error
    assert result.content[0].text.startswith(f"There is no file at {missing}.")
    assert sandbox.requests == []


@pytest.mark.parametrize(("text", "shown"), [
    ("https://alice:secret@host.example/clip.mp4", "https://host.example/clip.mp4"),
    ("ftp://bob:p@ss@w0rd@files.example/a.mp4", "ftp://files.example/a.mp4"),  # up to the last "@" of the host part
    # Text after a link is not a password: it holds what userinfo cannot (found by review).
    ("新品发布 https://shop.example，客服support@shop.example", "新品发布 https://shop.example，客服support@shop.example"),
    ("<https://a.example>,<mailto:bob@b.example>", "<https://a.example>,<mailto:bob@b.example>"),
    ("see https://cdn.example/x@2x.png or git@github.com:x/y", "see https://cdn.example/x@2x.png or git@github.com:x/y"),
])
def test_only_a_links_user_and_password_are_removed(text: str, shown: str) -> None:
    from nemovideo_mcp.logs import redact

    assert redact(text) == shown


async def test_a_padded_job_id_of_a_stopped_process_is_taken_over(sandbox, settings, identity) -> None:
    """Found by review: the lookups trimmed the id, the claim did not, and `wait` went round without end."""
    from nemovideo_mcp.store import open_store
    from nemovideo_mcp.tables import JOBS
    from nemovideo_mcp.users import LOCAL_USER

    store = open_store(settings.config_dir, settings.state_dir).for_user(LOCAL_USER)
    now = time.time()
    await store.put(JOBS, "follow_up_0123456789ab", {
        "id": "follow_up_0123456789ab", "kind": "follow_up", "key": None, "status": "running", "step": "…",
        "pid": 999_999, "heartbeat_at": now - 120, "started_at": now - 130, "facts": {}})
    async with Client(build_server(settings, identity)) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("wait", {"job_id": " follow_up_0123456789ab\n", "wait_seconds": 2})
    assert not result.content[0].text.startswith("Something went wrong"), result.content[0].text
    assert (await store.get(JOBS, "follow_up_0123456789ab"))["pid"] != 999_999  # this process took it over
