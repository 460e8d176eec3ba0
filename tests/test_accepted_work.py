"""Paid work happens once, and work that lands late is never silent.

Each case was found by review and reproduced against the sandbox before it was fixed: a reply
lost by a gateway, a call cancelled by its host, a render the backend forgot, late music and
titles that a new request or an export could have swallowed.
"""

from __future__ import annotations

import asyncio
import copy

import anyio
import pytest
from starlette.responses import HTMLResponse

import nemovideo_mcp.sandbox.app as sandbox_app
from nemovideo_mcp import errors
from nemovideo_mcp.chat import CUT_REPLY_NOTICE
from nemovideo_mcp.export import RenderFailed
from nemovideo_mcp.sandbox import Sandbox, SandboxServer
from nemovideo_mcp.sandbox.agent import FALLBACK_TEXT, GENERATED_DRAFT, Turn, stream_turn
from nemovideo_mcp.service import LATE_WRITE_INTRO, PAID_WORK_LOCK, TurnInProgress, VideoService

pytestmark = pytest.mark.anyio

GENERATE = "create a video of a city at night"


@pytest.fixture
def service(quick_service):
    return quick_service


def render_calls(sandbox: Sandbox) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sandbox.requests if r.path.startswith("/api/render/proxy/lambda")]


@pytest.mark.parametrize("body", [{"message": "Endpoint request timed out"},
                                  {"success": False, "error": "upstream request timeout"}])
async def test_a_gateway_timeout_on_render_start_asks_about_the_id_before_a_new_start(sandbox, service, body) -> None:
    await service.chat(GENERATE)
    sandbox.replay("/api/render/proxy/lambda", body, status=504, times=1)
    exported = await service.export(wait_seconds=10)
    calls = render_calls(sandbox)
    starts = [index for index, (method, _) in enumerate(calls) if method == "POST"]
    assert exported.status == "done" and len(sandbox.render_ids()) == 1
    assert len(starts) == 2
    assert calls[starts[0] + 1][0] == "GET"  # the first id was asked about before a new one was tried


async def test_a_gateway_timeout_on_run_sse_is_recovered_from_the_project(quick_settings, identity,
                                                                         monkeypatch) -> None:
    original = sandbox_app._Handlers.run_sse
    running = []

    async def accepted_then_504(self, request):
        response = await original(self, request)

        async def agent_goes_on() -> None:
            async for _ in response.body_iterator:
                pass

        running.append(asyncio.ensure_future(agent_goes_on()))
        await asyncio.sleep(0.1)
        return HTMLResponse("<html><h1>504 Gateway Time-out</h1></html>", status_code=504)

    monkeypatch.setattr(sandbox_app._Handlers, "run_sse", accepted_then_504)
    with SandboxServer(Sandbox()) as server:
        async with VideoService(quick_settings.model_copy(update={"api_url": server.url}), identity) as service:
            result = await service.chat('add a title "Hello"')
            assert result.changes == ['✅ Added title "Hello" (0–3 s)']
            assert server.sandbox.count("/run_sse") == 1


async def test_an_export_call_cancelled_by_its_host_leaves_a_render_the_next_export_joins(
        quick_settings, identity, tmp_path, monkeypatch) -> None:
    original = sandbox_app._Handlers.start_render
    slow = {"on": True}

    async def started_but_slow_to_say_so(self, request):
        response = await original(self, request)
        if slow["on"]:
            await asyncio.sleep(1.2)  # well past the host's 0.5 s below
        return response

    monkeypatch.setattr(sandbox_app._Handlers, "start_render", started_but_slow_to_say_so)
    backend = Sandbox(render_seconds=0.2)
    backend.real_renders = False  # how many renders start is the point, not the clip (a real one costs ~1.4 s CPU)
    with SandboxServer(backend) as server:
        settings = quick_settings.model_copy(update={"output_dir": tmp_path / "o", "api_url": server.url})
        async with VideoService(settings, identity) as service:
            await service.chat(GENERATE)
            with anyio.move_on_after(0.5):  # the host gives up on the tool call
                await service.export(wait_seconds=30)
            slow["on"] = False
            result = await service.export(wait_seconds=10)
            assert result.status == "done" and len(server.sandbox.render_ids()) == 1


async def test_a_render_the_backend_forgot_is_dropped_and_the_next_export_renders_anew(sandbox, service) -> None:
    sandbox.render_seconds = 30
    await service.chat(GENERATE)
    working = await service.export(wait_seconds=0.05)
    sandbox.replay("/api/render/proxy/lambda/render_", {"success": False, "error": "Render not found"}, times=1)
    with pytest.raises(RenderFailed, match="no longer has this render.*export again"):
        await service.wait(working.job_id, wait_seconds=10)  # its next poll meets the refusal
    sandbox.render_seconds = 0.1
    again = await service.export(wait_seconds=10)
    assert again.status == "done" and len(sandbox.render_ids()) == 2


async def test_a_clean_close_after_streamed_words_keeps_the_words(sandbox, service, monkeypatch) -> None:
    async def without_final_event(*args, **kwargs):
        frames = [frame async for frame in stream_turn(*args, **kwargs)]
        for frame in frames[:-1]:  # everything but ADK's final `partial: false` event
            yield frame

    monkeypatch.setattr(sandbox_app, "stream_turn", without_final_event)
    monkeypatch.setattr(sandbox_app, "plan_turn",
                        lambda message, uploads=(): Turn(cost=0, text=FALLBACK_TEXT, streamed=True))
    result = await service.chat("what can you do for me?")
    assert result.reply.replace("\n", " ").startswith(FALLBACK_TEXT.split(". ")[0])
    assert result.notice == CUT_REPLY_NOTICE and "say it again" not in result.as_text()
    assert sandbox.count("/run_sse") == 1


async def test_a_generation_that_asks_a_question_is_still_watched(sandbox, service, monkeypatch) -> None:
    monkeypatch.setattr(sandbox_app, "plan_turn", lambda message, uploads=(): Turn(
        cost=10, tool="generate_video", args={"prompt": message}, edit=lambda draft: draft,
        late_edit=lambda draft: copy.deepcopy(GENERATED_DRAFT),
        text="I'm generating your city video now. Would you like a title on it as well?"))
    sandbox.late_write_seconds = 0.2
    result = await service.chat(GENERATE)
    assert result.status == "needs_input" and result.follow_up_job_id
    late = await service.wait(result.follow_up_job_id, wait_seconds=10)
    assert "city timelapse" in late.reply


@pytest.mark.parametrize(("delays", "pause"), [((0.4, 6.0), 1.4),  # the watch saw the late write, not yet settled
                                               ((6.0,), 0.8)])  # the late write landed, the watch has not looked
async def test_late_work_is_reported_when_a_new_request_starts_before_the_watch_settles(
        sandbox, quick_settings, identity, delays, pause) -> None:
    settings = quick_settings.model_copy(update={"late_write_delays_seconds": delays, "late_write_watch_seconds": 10})
    sandbox.late_write_seconds = 0.2
    async with VideoService(settings, identity) as service:
        first = await service.chat(GENERATE)
        await anyio.sleep(pause)
        second = await service.chat('add a title "Night Owl"')
        assert second.notice.startswith(LATE_WRITE_INTRO) and "Lo-fi" in second.notice
        assert second.changes == ['✅ Added title "Night Owl" (0–3 s)']
        superseded = await service.wait(first.follow_up_job_id, wait_seconds=5)
        assert "reported with the new request" in superseded.reply


async def test_an_export_through_chat_carries_late_work(sandbox, service) -> None:
    sandbox.late_write_seconds = 0.2
    first = await service.chat(GENERATE)
    with anyio.fail_after(10):
        await service.jobs.get(first.follow_up_job_id).finished.wait()
    exported = await service.chat("export the video")
    assert exported.notice.startswith(LATE_WRITE_INTRO) and "Lo-fi" in exported.as_text()


async def test_out_of_credits_at_export_carries_the_project_link(sandbox, service) -> None:
    await service.chat(GENERATE)
    sandbox.inject(2001, "/api/render/proxy/lambda")
    with pytest.raises(errors.OutOfCredits, match=r"workspace/claim\?ct=clm_"):
        await service.export(wait_seconds=5)


async def test_a_turn_and_an_export_started_at_the_same_instant_never_both_go_ahead(sandbox, service,
                                                                                  monkeypatch) -> None:
    await service.chat(GENERATE)
    export_checked, turn_at_the_lock = anyio.Event(), anyio.Event()
    real_unfinished_work, real_lock = service._unfinished_work, service.store.lock

    async def checked_then_held(session_id: str) -> str | None:
        # The export has found no turn; the turn now runs up to its own check before the export goes on.
        found = await real_unfinished_work(session_id)
        export_checked.set()
        with anyio.fail_after(10):
            await turn_at_the_lock.wait()
        return found

    def lock(purpose: str):
        if export_checked.is_set() and purpose == PAID_WORK_LOCK:
            turn_at_the_lock.set()
        return real_lock(purpose)

    monkeypatch.setattr(service, "_unfinished_work", checked_then_held)
    monkeypatch.setattr(service.store, "lock", lock)
    exported = {}

    async def export() -> None:
        exported["result"] = await service.export(wait_seconds=10)

    async with anyio.create_task_group() as group:
        group.start_soon(export)
        await export_checked.wait()
        with pytest.raises(TurnInProgress, match="rendering your video"):
            await service.chat('add a title "Late"')
    assert exported["result"].status == "done"
    assert sandbox.count("/run_sse") == 1 and len(sandbox.render_ids()) == 1


async def test_a_turn_reports_only_its_own_changes_when_another_processs_turn_ran_since_it_read_the_project(
        sandbox, quick_settings, identity, out) -> None:
    from nemovideo_mcp.store import open_store

    sandbox.late_write_seconds = None
    settings = quick_settings.model_copy(update={"output_dir": out})
    store = open_store(settings.config_dir, settings.state_dir)
    try:
        async with VideoService(settings, identity, store=store) as one, \
                VideoService(settings, identity, store=store) as two:
            await one.chat('add the title "Warmup"', wait_seconds=10)
            read_balance, project_read, go_on = two.client.credits, anyio.Event(), anyio.Event()

            async def after_the_project_is_read():
                # Two has read the project (the balance comes next); one's whole turn runs before it goes on.
                project_read.set()
                await go_on.wait()
                return await read_balance()

            two.client.credits = after_the_project_is_read
            said = {}

            async def say_two() -> None:
                said["two"] = await two.chat('add the title "Two"', wait_seconds=10)

            async with anyio.create_task_group() as group:
                group.start_soon(say_two)
                await project_read.wait()
                two.client.credits = read_balance
                said["one"] = await one.chat('add the title "One"', wait_seconds=10)
                go_on.set()
    finally:
        await store.aclose()
    assert [change for change in said["one"].changes if "One" in change]
    assert said["two"].changes and not [change for change in said["two"].changes if "One" in change]


async def test_a_host_cancelling_a_chat_as_its_turn_is_recorded_leaves_nothing_holding_the_project(
        sandbox, service, monkeypatch) -> None:
    from nemovideo_mcp.jobs import NEVER_STARTED
    from nemovideo_mcp.tables import JOBS

    sandbox.late_write_seconds = None
    real_update = service.jobs._store.update
    recorded = []

    with anyio.CancelScope() as host:
        async def update(table, key, change):
            written = await real_update(table, key, change)
            if table is JOBS and str(key).startswith("turn_") and not recorded:
                recorded.append(key)
                host.cancel()  # the host's cancel arrives while the record is written, delivered just after
                await anyio.lowlevel.checkpoint()
            return written

        monkeypatch.setattr(service.jobs._store, "update", update)
        await service.chat('add the title "Dropped"', wait_seconds=0)
    monkeypatch.setattr(service.jobs._store, "update", real_update)
    with pytest.raises(errors.NemoError, match=NEVER_STARTED):
        await service.wait(recorded[0], wait_seconds=0)
    with anyio.fail_after(10):  # not refused as "still working" until the record goes stale
        again = await service.chat('add the title "Kept"', wait_seconds=10)
    assert again.status == "done" and sandbox.count("/run_sse") == 1


async def test_cancelling_an_export_as_its_render_starts_cancels_that_render(sandbox, service, monkeypatch) -> None:
    # Fourth review's suspicion: the cancel read "no render yet" while the waiting export started one, said "nothing
    # was rendered", and the render ran on at NemoVideo.
    sandbox.turn_seconds, sandbox.late_write_seconds = 0.3, None
    await service.chat(GENERATE, wait_seconds=0)
    waiting = await service.export(wait_seconds=0)  # after the turn, whose draft it renders
    real_record = service.jobs.record

    async def read_before_the_render_starts(job_id: str):
        seen = await real_record(job_id)
        if job_id == waiting.job_id and not sandbox.render_ids():
            while not sandbox.render_ids():  # the render start reaches NemoVideo before this read is used
                await anyio.sleep(0.02)
        return seen

    monkeypatch.setattr(service.jobs, "record", read_before_the_render_starts)
    cancelled = await service.cancel(waiting.job_id)
    [render_id] = sandbox.render_ids()
    assert cancelled.cancelled_at_backend and "cancelled at NemoVideo" in cancelled.reply
    assert sandbox.count(f"/api/render/proxy/lambda/{render_id}/cancel", "POST") == 1


@pytest.mark.parametrize("work", ["turn", "export"])
async def test_a_takeover_whose_wait_is_cancelled_leaves_the_work_to_the_next_taker(sandbox, quick_settings,
                                                                                    identity, out, monkeypatch,
                                                                                    work) -> None:
    # Fifth review's E1: a `wait` cancelled as it took over a stopped process's job ended that job "stopped before
    # it started; nothing was sent", although its turn was sent (or its render ran): the user would pay again.
    settings = quick_settings.model_copy(update={"output_dir": out, "recovery_give_up_seconds": 10})
    sandbox.late_write_seconds = None
    async with VideoService(settings, identity) as first:
        if work == "turn":
            sandbox.turn_seconds = 1.0
            started = await first.chat(GENERATE, wait_seconds=0)
        else:
            await first.chat(GENERATE)
            sandbox.render_seconds = 1.0
            started = await first.export(wait_seconds=0)
        with anyio.fail_after(10):
            while not (sandbox.count("/run_sse") if work == "turn" else sandbox.render_ids()):
                await anyio.sleep(0.02)  # the sandbox records the request; no event to await across processes
    async with VideoService(settings, identity) as taker:
        real_claim, real_update = taker.jobs.claim, taker.jobs._store.update
        claimed, written = [], anyio.Event()

        async def claim(job_id: str) -> bool:
            claimed.append(await real_claim(job_id))
            return claimed[-1]

        async def update(table, key, change):
            result = await real_update(table, key, change)
            if claimed == [True] and not written.is_set():
                written.set()  # the taker's record is written; the host gives up on the call before it returns
                await anyio.sleep_forever()
            return result

        monkeypatch.setattr(taker.jobs, "claim", claim)
        monkeypatch.setattr(taker.jobs._store, "update", update)
        async with anyio.create_task_group() as host:
            host.start_soon(taker.wait, started.job_id, 20)
            await written.wait()
            host.cancel_scope.cancel()
    async with VideoService(settings, identity) as later:
        with anyio.fail_after(15):  # taken over at once, not once the record has aged
            outcome = await later.wait(started.job_id, wait_seconds=15)
    assert outcome.status == "done"
    assert sandbox.count("/run_sse") == 1 and len(sandbox.render_ids()) == (1 if work == "export" else 0)


async def test_a_request_while_an_exports_render_start_is_rate_limited_is_refused_at_once(sandbox, service) -> None:
    # Fifth review's E5: the lock both take was held over the render start, whose 429 is waited out (Retry-After,
    # up to a minute), and the request hung that long, with no progress, before being refused.
    await service.chat('add a title "First"')
    sandbox.render_seconds = 30
    sandbox.inject(429, "/api/render/proxy/lambda", retry_after=60)
    async with anyio.create_task_group() as group:
        group.start_soon(service.export, None, 0)
        with anyio.fail_after(10):
            while sandbox.count("/api/render/proxy/lambda", "POST") < 1:
                await anyio.sleep(0.02)  # the sandbox records the request; no event to await
        with anyio.fail_after(10), pytest.raises(TurnInProgress, match="rendering your video"):
            await service.chat('add a title "Second"', wait_seconds=0)
        group.cancel_scope.cancel()
    assert sandbox.count("/run_sse") == 1


async def test_an_export_cancelled_from_another_process_while_it_waits_never_leaves_its_render_running(
        sandbox, quick_settings, identity, out, monkeypatch) -> None:
    # Fifth review's E4: the other process read "no render yet" and said so; the owner started the render before
    # its heartbeat saw the stop, and stopped only following it.
    import nemovideo_mcp.jobs as jobs_module
    from nemovideo_mcp.store import open_store

    monkeypatch.setattr(jobs_module, "HEARTBEAT_SECONDS", 0.05)
    settings = quick_settings.model_copy(update={"output_dir": out})
    sandbox.late_write_seconds, sandbox.render_seconds = None, 30
    store = open_store(settings.config_dir, settings.state_dir)
    try:
        async with VideoService(settings, identity, store=store) as owner, \
                VideoService(settings, identity, store=store) as other:
            await owner.chat('add a title "First"')
            sandbox.turn_seconds, sandbox.heartbeat_seconds = 600.0, 0.05  # held open until the cancel is asked
            await owner.chat('add a title "Second"', wait_seconds=0)
            waiting = await owner.export(wait_seconds=0)  # waits for that turn
            real_beat = owner.jobs._beat

            async def beat_once_the_render_started() -> None:
                # The owner hears of the stop only after it has started the render.
                while not sandbox.render_ids():
                    await anyio.sleep(0.02)  # the sandbox records the start; no event to await
                await real_beat()

            monkeypatch.setattr(owner.jobs, "_beat", beat_once_the_render_started)
            said = await other.cancel(waiting.job_id)
            sandbox.turn_seconds = 0.0  # the turn ends; the export the owner still runs starts its render
            with pytest.raises(errors.NemoError):
                await owner.wait(waiting.job_id, wait_seconds=20)
            [render_id] = sandbox.render_ids()
            with anyio.fail_after(10):
                while not sandbox.count(f"/api/render/proxy/lambda/{render_id}/cancel", "POST"):
                    await anyio.sleep(0.02)
    finally:
        await store.aclose()
    assert "nothing was rendered" in said.reply
    assert sandbox.count(f"/api/render/proxy/lambda/{render_id}/cancel", "POST") == 1


async def test_an_export_waiting_for_a_turn_whose_end_could_not_be_saved_goes_on_at_once(sandbox, service,
                                                                                        monkeypatch) -> None:
    # Fifth review's S3: the turn's record read as running until it went stale (20 s), and the export asked the
    # store about it again and again meanwhile.
    from nemovideo_mcp.errors import StoreUnavailable

    sandbox.late_write_seconds = None
    await service.chat('add a title "First"')
    real_save = service.jobs._save_outcome

    async def save(job) -> None:
        if job.kind == "turn":
            raise StoreUnavailable("the store is full")
        await real_save(job)

    monkeypatch.setattr(service.jobs, "_save_outcome", save)
    sandbox.turn_seconds = 0.3
    await service.chat('add a title "Second"', wait_seconds=0)
    with anyio.fail_after(10):
        exported = await service.export(wait_seconds=10)
    assert exported.status == "done"


async def test_cancelling_the_second_export_of_a_draft_cancels_its_render(sandbox, service) -> None:
    # Sixth review's R1: two exports of one draft are two jobs, the second following the first's render; cancelling
    # the second said "nothing was rendered" while the render ran on, was charged, and landed.
    await service.chat('add a title "First"')
    sandbox.render_seconds = 30
    first = await service.export(None, 0)
    second = await service.export(None, 0)  # a host asking again, or "export it" in the chat
    with anyio.fail_after(10):
        while not ((await service.jobs.record(second.job_id) or {}).get("facts") or {}).get("render_id"):
            await anyio.sleep(0.02)  # the second has found the first's render (the store has no event to await)
    cancelled = await service.cancel(second.job_id)
    [render_id] = sandbox.render_ids()
    assert cancelled.cancelled_at_backend and first.job_id != second.job_id
    assert sandbox.count(f"/api/render/proxy/lambda/{render_id}/cancel", "POST") == 1


async def test_an_export_waiting_for_another_processs_turn_waits_on_after_a_store_blip(sandbox, quick_settings,
                                                                                        identity, out,
                                                                                        monkeypatch) -> None:
    # Sixth review's R5: one failed store read while following the turn was taken for its end, and the draft from
    # before the turn was rendered.
    from nemovideo_mcp.errors import StoreUnavailable

    settings = quick_settings.model_copy(update={"output_dir": out})
    sandbox.late_write_seconds = None
    async with VideoService(settings, identity) as owner, VideoService(settings, identity) as other:
        await owner.chat('add a title "First"')
        session_id = (await owner.sessions.current()).session_id
        sandbox.turn_seconds, sandbox.heartbeat_seconds = 600.0, 0.05  # held open until the export looks again
        turn = await other.chat('add a title "Second"', wait_seconds=0)
        reads, real_record = [], owner.jobs.record

        async def one_read_fails(job_id: str):
            if job_id == turn.job_id:
                reads.append(job_id)
                if len(reads) == 2:
                    raise StoreUnavailable("The skill's store cannot be used right now.")
            return await real_record(job_id)

        monkeypatch.setattr(owner.jobs, "record", one_read_fails)
        exporting = await owner.export(None, 0)
        with anyio.fail_after(10):
            while len(reads) < 3 and not sandbox.render_ids():
                await anyio.sleep(0.02)  # the export looks again (or, wrongly, renders); no event across processes
        sandbox.turn_seconds = 0.0
        exported = await owner.wait(exporting.job_id, 30)
        await other.wait(turn.job_id, 30)
    [(_, rendered)] = sandbox.render_inputs().values()
    assert exported.status == "done" and rendered == sandbox.session(session_id).draft


async def test_an_export_cancelled_as_its_render_is_recorded_leaves_nothing_the_next_one_trips_on(
        sandbox, service, monkeypatch) -> None:
    # Sixth review's R4: the render's record stayed, never started, and the next export re-attached to it and failed
    # with "NemoVideo no longer has this render".
    await service.chat('add a title "First"')
    real_save, saved = service.exporter.registry.save, anyio.Event()

    async def save_answered_late(record) -> None:
        await real_save(record)
        if not saved.is_set():
            saved.set()
            await anyio.sleep_forever()  # the store's reply is late; the cancel comes meanwhile

    monkeypatch.setattr(service.exporter.registry, "save", save_answered_late)
    first = await service.export(None, 0)
    with anyio.fail_after(10):
        await saved.wait()
    cancelled = await service.cancel(first.job_id)
    again = await service.export(None, 30)
    assert "nothing was rendered" in cancelled.reply and again.status == "done"
    assert len(sandbox.render_ids()) == 1


async def export_left_by_a_stopped_server(sandbox, settings, identity, *, render_seconds: float):
    """An export whose render runs at NemoVideo while the server that started it has stopped."""
    async with VideoService(settings, identity) as first:
        await first.chat('add a title "First"')
        sandbox.render_seconds = render_seconds
        started = await first.export(wait_seconds=0)
        with anyio.fail_after(10):
            while not sandbox.render_ids():
                await anyio.sleep(0.02)  # the sandbox records the start; no event to await
    return started


async def test_a_takeover_cancelled_as_its_claim_is_written_leaves_the_work_to_the_next_taker(
        sandbox, quick_settings, identity, out, monkeypatch) -> None:
    # Sixth review's R8: the claim stood with no work behind it, and the next `wait` waited for it to go stale (20 s).
    from nemovideo_mcp.tables import JOBS

    settings = quick_settings.model_copy(update={"output_dir": out})
    started = await export_left_by_a_stopped_server(sandbox, settings, identity, render_seconds=1.0)
    async with VideoService(settings, identity) as taker:
        real_update, written = taker.jobs._store.update, anyio.Event()

        async def claim_answered_late(table, key, change):
            result = await real_update(table, key, change)
            if table is JOBS and key == started.job_id and not written.is_set():
                written.set()
                await anyio.sleep_forever()  # the claim is written; the host gives up before it is answered
            return result

        monkeypatch.setattr(taker.jobs._store, "update", claim_answered_late)
        async with anyio.create_task_group() as host:
            host.start_soon(taker.wait, started.job_id, 20)
            await written.wait()
            host.cancel_scope.cancel()
        monkeypatch.setattr(taker.jobs._store, "update", real_update)
        with anyio.fail_after(15):  # taken over at once, not once the claim has aged
            outcome = await taker.wait(started.job_id, wait_seconds=15)
    assert outcome.status == "done" and len(sandbox.render_ids()) == 1


async def test_a_claim_rolled_back_by_a_cancel_never_gives_back_another_takers_job(sandbox, quick_settings,
                                                                                   identity, out,
                                                                                   monkeypatch) -> None:
    # Seventh review's D3: the give-back of a claim that never landed marked the job another process had taken over
    # (and was running) as abandoned, and a third took it over too.
    from nemovideo_mcp.tables import JOBS

    settings = quick_settings.model_copy(update={"output_dir": out})
    started = await export_left_by_a_stopped_server(sandbox, settings, identity, render_seconds=30.0)
    async with VideoService(settings, identity) as a, VideoService(settings, identity) as b, \
            VideoService(settings, identity) as c:
        real_update, decided = a.jobs._store.update, anyio.Event()

        async def rolled_back(table, key, change):
            if table is JOBS and key == started.job_id and not decided.is_set():
                change(await a.jobs._store.get(JOBS, key))  # the claim decided; its write never lands
                decided.set()
                await anyio.sleep_forever()
            return await real_update(table, key, change)

        monkeypatch.setattr(a.jobs._store, "update", rolled_back)
        async with anyio.create_task_group() as host:
            host.start_soon(a.wait, started.job_id, 20)
            await decided.wait()
            assert (await b.wait(started.job_id, 0)).status == "working"  # b takes it over, and runs it
            host.cancel_scope.cancel()
        await c.wait(started.job_id, 0)
        assert b.jobs.local(started.job_id) is not None and c.jobs.local(started.job_id) is None
