from __future__ import annotations

import pytest

from nemovideo_mcp.service import VideoService
from nemovideo_mcp.sessions import NEW_SESSION_NOTICE, detect_language
from nemovideo_mcp.timeline import EMPTY_TIMELINE


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("make a video synced to this track", {}, "en"),
        ("做一个和这首歌同步的视频", {}, "zh"),
        ("この曲に合わせた動画を作って", {}, "ja"),
        ("漢字だけ", {}, "ja"),
        ("이 노래에 맞춰 영상을 만들어 줘", {}, "ko"),
        ("mach ein Video", {"LANG": "de_DE.UTF-8"}, "de"),
        (None, {"LC_ALL": "fr_FR.UTF-8", "LANG": "de_DE.UTF-8"}, "fr"),
        ("hello", {"LANG": "C.UTF-8"}, "en"),
        ("", {"LANG": "POSIX"}, "en"),
    ],
)
def test_language_by_script_then_locale(text, env, expected) -> None:
    assert detect_language(text, env) == expected


@pytest.fixture
async def service(settings, identity):
    async with VideoService(settings, identity) as service:
        yield service


pytestmark = pytest.mark.anyio


async def test_state_without_a_project_creates_nothing(sandbox, service) -> None:
    result = await service.state()
    assert result.empty and result.summary == EMPTY_TIMELINE
    assert sandbox.count("/api/tasks") == 0


async def test_a_session_is_created_once_with_the_detected_language(sandbox, service) -> None:
    first = await service.sessions.ensure("做一个视频")
    second = await service.sessions.ensure("another message")
    assert first == second
    assert sandbox.sessions[first.session_id].language == "zh"
    assert sandbox.count("/api/tasks") == 1


async def test_a_restart_continues_the_same_project(sandbox, settings, identity, service, seed_draft) -> None:
    session = await service.sessions.ensure("make a video")
    sandbox.set_draft(session.session_id, seed_draft)
    async with VideoService(settings, identity) as restarted:
        result = await restarted.state()
    assert result.summary.startswith("Timeline (3 tracks): 1. Video: city timelapse")
    assert result.notice is None
    assert sandbox.count("/api/tasks") == 1


async def test_a_lost_session_is_replaced_and_the_result_says_so(sandbox, service) -> None:
    lost = await service.sessions.ensure("make a video")
    sandbox.forget_session(lost.session_id)
    result = await service.state()
    assert result.notice == NEW_SESSION_NOTICE and result.empty
    assert (await service.sessions.current()).session_id != lost.session_id
    assert (await service.sessions.current()).language == lost.language
    again = await service.state()
    assert again.notice is None


async def test_a_project_started_by_another_server_process_is_picked_up(sandbox, settings, identity, service, seed_draft) -> None:
    assert (await service.state()).empty  # this server has no project yet
    async with VideoService(settings, identity) as other:
        started = await other.sessions.ensure("make a video")
    sandbox.set_draft(started.session_id, seed_draft)
    result = await service.state()
    assert not result.empty and (await service.sessions.current()).session_id == started.session_id
    assert service.client.auth.user_id == started.user_id and started.user_id.startswith("anon_")
