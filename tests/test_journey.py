"""A user's whole journey against the sandbox in each documented reply style, and the ways the
real backend ends turns, refuses anonymous exports and keeps working after a stream closes."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from nemovideo_mcp import errors
from nemovideo_mcp.chat import TurnFailed
from nemovideo_mcp.jobs import JobCancelled
from nemovideo_mcp.sandbox.agent import TRAILER_TEXT
from nemovideo_mcp.sandbox.state import REPLY_STYLES
from nemovideo_mcp.service import LATE_WRITE_INTRO, TurnInProgress, VideoService

from tests.conftest import REPO, subprocess_env

pytestmark = pytest.mark.anyio

GENERATE = "create a video with visuals synced to this music track"
ACCOUNT_TOKEN = "nemo_sk_journey_account_000001"


@pytest.fixture
def service(quick_service):
    return quick_service


def song(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "song.mp3"
    path.write_bytes(b"\x00" * 4096)
    return path


@pytest.mark.parametrize("style", REPLY_STYLES)
async def test_the_whole_flow_ends_with_one_render_and_one_mp4_in_each_style(style, sandbox, service, out,
                                                                             tmp_path) -> None:
    sandbox.reply_style = style
    assert (await service.credits()).available == 100
    uploaded = await service.upload([str(song(tmp_path))])
    assert uploaded.uploads[0].name == "song.mp3"
    generated = await service.chat(GENERATE)
    assert generated.status == "done" and generated.changes
    silent = await service.chat('add a title "Paradise Found"')
    assert silent.changes == ['✅ Added title "Paradise Found" (0–3 s)']
    state = await service.state()
    assert "Paradise Found" in state.summary and state.uploads == 1
    exported = await service.export(wait_seconds=20)
    assert exported.status == "done" and Path(exported.path).is_file()
    assert len(sandbox.render_ids()) == 1 and [p.suffix for p in out.iterdir()] == [".mp4"]
    assert exported.project_link.startswith("https://nemovideo.com/workspace/claim?ct=clm_")
    assert sandbox.count("/api/auth/anonymous-token") == 1


async def test_the_first_generation_carries_the_project_link_made_when_the_project_began(sandbox, service) -> None:
    generated = await service.chat(GENERATE)
    claims = sandbox.count("/api/auth/claim-token")
    assert generated.project_link.startswith("https://nemovideo.com/workspace/claim?ct=clm_")
    assert generated.project_link in generated.as_text() and claims == 1  # made at creation, reused since
    later = await service.chat('add a title "Two"')
    assert later.project_link is None and sandbox.count("/api/auth/claim-token") == 1


# -- the anonymous journey ---------------------------------------------------------------------------


async def test_an_anonymous_export_is_refused_then_login_exports_the_same_project(sandbox, service, env, out,
                                                                                 home) -> None:
    sandbox.anonymous_export_blocked = True
    await service.chat(GENERATE)
    project = (await service.sessions.current()).session_id
    with pytest.raises(errors.ExportBlocked) as refused:
        await service.export(wait_seconds=20)
    message = str(refused.value)
    assert "not about credits" in message and "nemovideo-mcp login" in message
    assert "https://nemovideo.com/workspace/claim?ct=clm_" in message
    assert sandbox.render_ids() == []

    login = subprocess.run([sys.executable, "-m", "nemovideo_mcp", "login"], input=ACCOUNT_TOKEN + "\n", cwd=REPO,
                           env=subprocess_env(env), capture_output=True, text=True, timeout=60)
    assert login.returncode == 0, login.stderr
    assert "Logged in: 1000 credits" in login.stderr and ACCOUNT_TOKEN not in login.stderr + login.stdout
    saved = home / ".config" / "nemovideo" / "token"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600

    exported = await service.export(wait_seconds=20)  # the running server picks the account up
    assert exported.status == "done" and Path(exported.path).is_file()
    assert (await service.sessions.current()).session_id == project and len(sandbox.render_ids()) == 1
    render_start = next(r for r in sandbox.requests if r.path == "/api/render/proxy/lambda" and r.method == "POST"
                        and r.headers["authorization"] == f"Bearer {ACCOUNT_TOKEN}")
    assert render_start

    logout = subprocess.run([sys.executable, "-m", "nemovideo_mcp", "logout"], cwd=REPO, env=subprocess_env(env),
                            capture_output=True, text=True, timeout=60)
    assert logout.returncode == 0 and not saved.exists()


async def test_login_refuses_a_token_the_backend_rejects(sandbox, env, home) -> None:
    login = subprocess.run([sys.executable, "-m", "nemovideo_mcp", "login"], input="not-a-valid-token-xyz\n", cwd=REPO,
                           env=subprocess_env(env), capture_output=True, text=True, timeout=60)
    assert login.returncode == 1 and "not saved" in login.stderr
    assert "not-a-valid-token-xyz" not in login.stderr
    assert not (home / ".config" / "nemovideo" / "token").exists()


async def test_nemo_token_takes_precedence_over_login(sandbox, quick_settings, identity) -> None:
    from pydantic import SecretStr

    from nemovideo_mcp.auth import AccountTokenFile

    AccountTokenFile(quick_settings).save(ACCOUNT_TOKEN)
    explicit = quick_settings.model_copy(update={"token": SecretStr("nemo_sk_explicit_env_token_01")})
    async with VideoService(explicit, identity) as service:
        await service.credits()
    assert sandbox.requests[-1].headers["authorization"] == "Bearer nemo_sk_explicit_env_token_01"


async def test_a_429_on_minting_explains_the_weekly_rule_and_mints_nothing_more(sandbox, service) -> None:
    sandbox.inject(429, "/api/auth/anonymous-token", times=5)
    with pytest.raises(errors.AnonymousTokenLimit, match="one free anonymous token per 7 days.*nemovideo-mcp login"):
        await service.credits()
    mints = [r for r in sandbox.requests if r.path == "/api/auth/anonymous-token"]
    assert len(mints) == 1  # no wait-and-retry, no new client id


async def test_an_anonymous_user_out_of_credits_gets_the_registration_link(sandbox, service) -> None:
    await service.chat(GENERATE)
    user_id = (await service.sessions.current()).user_id
    sandbox.inject(2001, "/run_sse")
    with pytest.raises(errors.OutOfCredits, match=rf"https://nemovideo\.com/register\?bind={user_id}") as caught:
        await service.chat('add a title "More"')
    assert caught.value.project_link in str(caught.value)
    assert caught.value.project_link.startswith("https://nemovideo.com/workspace/claim?ct=clm_")
    assert user_id.startswith("anon_")


# -- how turns really end ----------------------------------------------------------------------------


@pytest.mark.parametrize(("ending", "reason"), [
    ("error_details", "the video model timed out"),
    ("error_json", 'the "seedance" backend timed out'),
    ("error_unescaped", 'the "seedance" backend timed out'),
    ("system_error", "RESOURCE_EXHAUSTED"),
])
async def test_each_adk_error_ending_is_a_failed_turn(ending, reason, sandbox, service) -> None:
    sandbox.next_turn_ending = ending
    with pytest.raises(TurnFailed, match=f"could not finish this request .*{reason}") as failed:
        await service.chat(GENERATE)
    assert "Error:" not in str(failed.value) and "{" not in str(failed.value)
    assert sandbox.count("/run_sse") == 1


async def test_the_temporary_issue_trailer_never_follows_a_good_edit(sandbox, service) -> None:
    sandbox.next_turn_ending = "trailer"
    result = await service.chat(GENERATE)
    assert result.status == "done" and TRAILER_TEXT not in result.reply and result.changes


async def test_a_clean_close_without_a_final_event_is_recovered_by_polling_not_resending(sandbox, service) -> None:
    sandbox.next_turn_ending = "no_final"
    result = await service.chat('add a title "Late"')
    assert result.changes == ['✅ Added title "Late" (0–3 s)']
    assert "did not change" not in result.reply and sandbox.count("/run_sse") == 1


async def test_late_writes_are_reported_through_wait_and_never_silently(sandbox, service) -> None:
    sandbox.late_write_seconds = 0.3
    first = await service.chat(GENERATE)
    assert first.changes == ["✅ Added video clip city timelapse (0–10 s)"]  # the raw video, at once
    assert first.follow_up_job_id and first.follow_up_job_id in first.as_text()
    late = await service.wait(first.follow_up_job_id, wait_seconds=10)
    assert late.reply.startswith(LATE_WRITE_INTRO)
    assert late.changes == ["✅ Added background music Lo-fi (0–10 s)", '✅ Added title "Urban Dreams" (0–3 s)']
    assert "3 tracks" in late.timeline
    assert (await service.state()).notice is None  # shown once, through wait


async def test_a_new_turn_ends_the_watch_and_reports_what_already_landed(sandbox, service) -> None:
    sandbox.late_write_seconds = 0.2
    first = await service.chat(GENERATE)
    watcher = service.jobs.get(first.follow_up_job_id)
    with anyio.fail_after(10):
        await watcher.finished.wait()  # the late music and title landed and were noticed
    second = await service.chat('add a title "Next"')
    assert second.notice.startswith(LATE_WRITE_INTRO) and "Lo-fi" in second.notice
    assert second.changes == ['✅ Added title "Next" (0–3 s)']  # late work is not counted twice
    sandbox.late_write_seconds = None  # nothing more will land: the watch runs its whole window
    third = await service.chat(GENERATE)
    await service.chat('add a title "Again"')
    superseded = await service.wait(third.follow_up_job_id, wait_seconds=5)
    assert superseded.status == "done" and "A new request started" in superseded.reply


async def test_late_writes_reach_the_next_result_when_nobody_waits(sandbox, service) -> None:
    sandbox.late_write_seconds = 0.2
    first = await service.chat(GENERATE)
    watcher = service.jobs.get(first.follow_up_job_id)
    with anyio.fail_after(10):
        await watcher.finished.wait()
    state = await service.state()
    assert state.notice.startswith(LATE_WRITE_INTRO) and "Lo-fi" in state.notice
    assert (await service.state()).notice is None


async def test_a_question_from_the_agent_comes_back_as_needs_input(sandbox, service) -> None:
    result = await service.chat("hello there")
    assert result.status == "needs_input" and result.reply.endswith("What would you like?")
    assert result.next_actions[0].tool == "chat" and result.follow_up_job_id is None


async def test_another_process_on_the_same_home_joins_the_running_turn(sandbox, service, quick_settings,
                                                                       identity, out) -> None:
    sandbox.turn_seconds = 1.0
    working = await service.chat(GENERATE, wait_seconds=0.1)
    async with VideoService(quick_settings.model_copy(update={"output_dir": out}), identity) as other:
        assert (await other.sessions.current()).session_id == (await service.sessions.current()).session_id  # one project
        with pytest.raises(TurnInProgress, match=working.job_id):
            await other.chat('add a title "Busy"')
        done = await other.wait(working.job_id, wait_seconds=10)  # followed through the store
    assert done.status == "done" and done.changes
    assert sandbox.count("/run_sse") == 1


# -- cancel ------------------------------------------------------------------------------------------


async def test_cancel_stops_a_render_at_the_backend(sandbox, service) -> None:
    generated = await service.chat(GENERATE)
    if generated.follow_up_job_id:  # else the export waits for the second stage, and no render runs yet
        await service.wait(generated.follow_up_job_id, wait_seconds=10)
    sandbox.render_seconds = 30
    working = await service.export(wait_seconds=0.1)
    cancelled = await service.cancel(working.job_id)
    assert cancelled.cancelled_at_backend and cancelled.kind == "export"
    [render_id] = sandbox.render_ids()
    assert sandbox.count(f"/api/render/proxy/lambda/{render_id}/cancel", "POST") == 1
    status = sandbox.render_status(render_id, "http://unused")
    assert status["status"] == "cancelled"
    record = await service.exporter.registry.get(render_id)
    assert record.status == "cancelled"
    with pytest.raises(JobCancelled):
        await service.wait(working.job_id, wait_seconds=1)


async def test_cancel_of_a_chat_turn_says_the_work_may_still_be_charged(sandbox, service) -> None:
    sandbox.turn_seconds = 5
    working = await service.chat(GENERATE, wait_seconds=0.1)
    cancelled = await service.cancel(working.job_id)
    assert cancelled.kind == "turn" and not cancelled.cancelled_at_backend
    assert "may still finish" in cancelled.reply and "charged" in cancelled.reply
    assert sandbox.count("/run_sse") == 1


# -- a render start is never repeated when it may have been accepted --------------------------------


async def test_a_render_start_whose_reply_was_lost_is_not_started_again(sandbox, service) -> None:
    await service.chat(GENERATE)
    sandbox.garble_next_render_start = True
    exported = await service.export(wait_seconds=20)
    assert exported.status == "done" and len(sandbox.render_ids()) == 1
    assert sandbox.count("/api/render/proxy/lambda", "POST") == 1


async def test_a_render_start_that_never_arrived_is_started_once_more(sandbox, service) -> None:
    await service.chat(GENERATE)
    sandbox.inject(502, "/api/render/proxy/lambda", times=1)  # the proxy answered; the backend never saw it
    exported = await service.export(wait_seconds=20)
    assert exported.status == "done" and len(sandbox.render_ids()) == 1
    assert sandbox.count("/api/render/proxy/lambda", "POST") == 2


# -- handles that outlive their process --------------------------------------------------------------


async def test_wait_after_a_restart_finishes_the_turn_without_sending_it_again(sandbox, quick_settings, identity,
                                                                              out) -> None:
    settings = quick_settings.model_copy(update={"output_dir": out})
    sandbox.turn_seconds = 0.6
    async with VideoService(settings, identity) as first:
        working = await first.chat('add a title "Survivor"', wait_seconds=0.1)
        assert working.status == "working"
    # That server is gone; the backend went on with the turn. A new server is asked about the handle.
    async with VideoService(settings, identity) as restarted:
        done = await restarted.wait(working.job_id, wait_seconds=10)
    assert done.status == "done" and done.changes == ['✅ Added title "Survivor" (0–3 s)']
    assert sandbox.count("/run_sse") == 1


async def test_a_finished_jobs_result_is_there_for_any_process(sandbox, quick_settings, identity, out) -> None:
    settings = quick_settings.model_copy(update={"output_dir": out})
    async with VideoService(settings, identity) as first:
        await first.chat(GENERATE)
        sandbox.render_seconds = 0.5
        working = await first.export(wait_seconds=0.05)
        finished = await first.wait(working.job_id, wait_seconds=10)
    async with VideoService(settings, identity) as other:
        again = await other.wait(working.job_id, wait_seconds=1)
    assert again.status == "done" and again.path == finished.path and len(sandbox.render_ids()) == 1


async def test_an_export_left_running_by_a_stopped_server_is_re_attached(sandbox, quick_settings, identity,
                                                                        out) -> None:
    settings = quick_settings.model_copy(update={"output_dir": out})
    async with VideoService(settings, identity) as first:
        await first.chat(GENERATE)
        sandbox.render_seconds = 0.8
        working = await first.export(wait_seconds=0.05)
    async with VideoService(settings, identity) as restarted:
        done = await restarted.wait(working.job_id, wait_seconds=10)
    assert done.status == "done" and Path(done.path).is_file() and len(sandbox.render_ids()) == 1


async def test_two_servers_starting_at_once_make_one_project(sandbox, quick_settings, identity) -> None:
    async with VideoService(quick_settings, identity) as one, VideoService(quick_settings, identity) as two:
        sessions = []
        async with anyio.create_task_group() as group:
            for service in (one, two):
                group.start_soon(lambda service=service: _ensure_into(service, sessions))
    assert len({session.session_id for session in sessions}) == 1 and len(sandbox.sessions) == 1


async def _ensure_into(service: VideoService, sessions: list) -> None:
    sessions.append(await service.sessions.ensure("make a video"))


async def test_a_second_project_can_be_started_and_the_first_returned_to(sandbox, service) -> None:
    first = await service.chat("make a video about the beach")
    beach = (await service.sessions.current()).session_id
    new = await service.projects("new", "mountain trip")
    assert "new, empty project" in new.reply and (await service.sessions.current()).session_id != beach
    assert (await service.state()).empty
    listed = await service.projects()
    assert [item.name for item in listed.projects] == ["mountain trip", "make a video about the beach"]
    assert listed.projects[0].current and "Urban Dreams" in (listed.projects[1].summary or "")
    back = await service.projects("switch", "beach")
    assert (await service.sessions.current()).session_id == beach and "Urban Dreams" in back.reply
    assert not (await service.state()).empty and first.changes
    by_number = await service.projects("switch", "1")  # 1 = most recently used: the beach one now
    assert (await service.sessions.current()).session_id == beach and by_number.projects[0].current
    with pytest.raises(errors.NemoError, match="No project matches"):
        await service.projects("switch", "volcano")


async def test_export_during_a_running_turn_renders_the_turns_result(sandbox, service) -> None:
    from nemovideo_mcp.export import draft_hash

    await service.chat(GENERATE)
    sandbox.turn_seconds = 0.6
    await service.chat('add a title "Final"', wait_seconds=0.05)
    exported = await service.export(wait_seconds=10)
    assert exported.status == "done"
    project = sandbox.sessions[(await service.sessions.current()).session_id]
    render = await service.exporter.registry.get(exported.render_id)
    assert render.draft_hash == draft_hash(project.draft)  # the draft with "Final", not the one before
    assert len(sandbox.render_ids()) == 1
    assert "Final" in str(project.draft)


async def test_a_project_lost_before_an_export_is_replaced_and_said(sandbox, service) -> None:
    await service.chat(GENERATE)
    lost = (await service.sessions.current()).session_id
    sandbox.forget_session(lost)
    with pytest.raises(errors.NemoError, match="no longer available.*new, empty project.*nothing to export"):
        await service.export(wait_seconds=5)
    assert (await service.sessions.current()).session_id != lost
