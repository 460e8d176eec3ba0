"""One chat turn over `/run_sse`: stream, follow progress, report what changed.

The seeds' rules: tool chatter stays internal; GUI talk is translated; a turn that
closes with no text (about 30% of edits) is answered with a report of what changed;
a broken stream is never answered by sending the message again (that would repeat
paid work) but by polling the project until the change shows up or time runs out.
"""

from __future__ import annotations

import itertools

import anyio

from .client import NemoClient
from .errors import NemoError, StreamInterrupted
from .gui import translate
from .jobs import Job, format_elapsed
from .logs import get_logger
from .models import StateReply
from .results import ChatResult, NextAction
from .settings import Settings
from .sse import AgentError, StateDelta, StreamError, TextDelta, ToolCall, ToolResponse
from .timeline import describe_changes, summarize, tracks_of

log = get_logger("chat")


class TurnFailed(NemoError):
    pass


SAFETY_CODES = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"}
EXPORT_READY = NextAction(tool="export", why="The video is ready to export with one call.")
DESCRIBE_EDIT = NextAction(tool="chat", why="Describe the change in words (what to move, where, how long); it is applied through chat.")


def step_for_tool(name: str) -> str:
    lowered = name.lower()
    if "generat" in lowered or "create" in lowered:
        return "🎬 Generating the video…"
    if any(word in lowered for word in ("music", "bgm", "audio", "volume", "sound")):
        return "🎵 Working on the music…"
    if any(word in lowered for word in ("text", "title", "caption", "subtitle")):
        return "✏️ Editing the text on screen…"
    return "✏️ Editing the timeline…"


def failure_message(code: str | None, message: str) -> str:
    if code in SAFETY_CODES:
        return "NemoVideo's content filter blocked this request. Rephrase it and try again."
    detail = message.split(": ", 1)[-1].strip() if message else ""
    reason = f" ({detail})" if detail else ""
    return f"NemoVideo could not finish this request{reason}. You can try again or rephrase it."


class TurnRunner:
    def __init__(self, client: NemoClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    async def run(self, job: Job, session_id: str, message: str, before: StateReply) -> ChatResult:
        job.update("📨 Sending your request to NemoVideo…")
        failure: str | None = None
        try:
            with anyio.fail_after(self._settings.turn_max_seconds):
                failure = await self._stream(job, session_id, message)
            after = await self._client.state(session_id)
        except StreamInterrupted:
            after = await self._recover(job, session_id, before)
        except TimeoutError:
            raise TurnFailed(
                "NemoVideo did not finish within its time limit. Check the project with the state tool; "
                "if nothing changed, try again with a simpler request."
            ) from None
        return await self._result(before, after, job.partial_text, failure)

    async def _stream(self, job: Job, session_id: str, message: str) -> str | None:
        """Follow the turn; its text accumulates in `job.partial_text`. Returns the failure, if any."""
        failure: str | None = None
        quiet_limit = self._settings.turn_quiet_seconds
        async with self._client.run_sse(session_id, message) as events:
            iterator = aiter(events)
            last_activity = anyio.current_time()
            while True:
                # Heartbeats keep the connection open but are not progress: they do not reset the clock.
                remaining = last_activity + quiet_limit - anyio.current_time()
                try:
                    with anyio.fail_after(max(remaining, 0)):
                        event = await anext(iterator)
                except StopAsyncIteration:
                    return failure
                match event:
                    case TextDelta(text=text):
                        job.partial_text += text
                        job.update("💬 NemoVideo is replying…")
                    case ToolCall(name=name):
                        job.update(step_for_tool(name))
                    case ToolResponse() | StateDelta():
                        pass
                    case AgentError(code=code, message=text):
                        failure = failure_message(code, text)
                    case StreamError(message=text):
                        failure = failure or failure_message(None, text)
                    case _:
                        continue
                last_activity = anyio.current_time()

    async def _recover(self, job: Job, session_id: str, before: StateReply) -> StateReply:
        """The stream broke: poll the project (never re-send) until it changes or we give up."""
        log.info("Chat stream for job %s dropped; polling state instead of re-sending", job.id)
        delays = itertools.chain(self._settings.recovery_delays_seconds,
                                 itertools.repeat(self._settings.recovery_delays_seconds[-1]))
        waited = 0.0
        while waited < self._settings.recovery_give_up_seconds:
            job.update(f"🔌 The connection dropped; checking your project ({format_elapsed(waited)})…")
            delay = next(delays)
            await anyio.sleep(delay)
            waited += delay
            after = await self._client.state(session_id)
            if after.state.draft != before.state.draft:
                return after
        raise TurnFailed(
            "The connection to NemoVideo dropped and your project did not change within "
            f"{format_elapsed(self._settings.recovery_give_up_seconds)}. The request was not sent again "
            "(that could charge twice); say it again to retry."
        )

    async def _result(self, before: StateReply, after: StateReply, raw_reply: str, failure: str | None) -> ChatResult:
        old_tracks, new_tracks = tracks_of(before.state.draft), tracks_of(after.state.draft)
        changes = describe_changes(old_tracks, new_tracks)
        if not changes and after.state.draft != before.state.draft:
            changes = ["✏️ The timeline was updated."]
        if failure is not None:
            done = " Before it stopped: " + "; ".join(changes) if changes else ""
            raise TurnFailed(failure + done)
        translation = translate(raw_reply)
        reply = translation.text.strip()
        next_actions: list[NextAction] = []
        timeline = summarize(new_tracks) if changes or "state" in translation.actions else None
        if "export" in translation.actions and new_tracks:
            next_actions.append(EXPORT_READY)
        if "chat" in translation.actions:
            next_actions.append(DESCRIBE_EDIT)
        parts = [reply, *changes]
        if "state" in translation.actions and timeline:
            parts.append(timeline)
        if "credits" in translation.actions:
            balance = await self._client.credits()
            parts.append(f"Credits: {balance.available:g} available, {balance.total:g} in total.")
        reply = "\n".join(part for part in parts if part) or (
            "NemoVideo finished, but it sent no reply and the timeline did not change. Try rephrasing the request."
        )
        return ChatResult(reply=reply, action="chat", status="done", changes=changes, timeline=timeline,
                          next_actions=next_actions)
