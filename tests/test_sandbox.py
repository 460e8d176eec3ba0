"""The sandbox backend over real loopback HTTP: envelopes, auth, uploads, renders and the ADK stream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from nemovideo_mcp.sandbox import Sandbox, SandboxServer
from nemovideo_mcp.sandbox.studio import PLACEHOLDER

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "adk-sse"
ANONYMOUS_TOKEN = "/api/auth/anonymous-token"
CREATE_SESSION = "/api/tasks/me/with-session/nemo_agent"
BALANCE = "/api/credits/balance/simple"
RENDER = "/api/render/proxy/lambda"
ATTRIBUTION = {"X-Skill-Source": "nemovideo", "X-Skill-Version": "1.0.0", "X-Skill-Platform": "test"}
URBAN_DREAMS = {"t": [
    {"tt": 0, "sg": [{"st": 0, "d": 10000, "m": {"name": "city timelapse", "fx": "visualizer"}}]},
    {"tt": 1, "sg": [{"st": 0, "d": 10000, "m": {"name": "Lo-fi", "vol": 0.35, "role": "bgm",
                                                 "groove": {"tempo": 84, "seed": 7}}}]},
    {"tt": 7, "sg": [{"st": 0, "d": 3000, "m": {"text": "Urban Dreams", "role": "title"}}]},
]}
# Contents that depend on the tool or the text, not on the wire format.
FREE_FORM_KEYS = {"args", "response", "stateDelta"}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox()) as running:
        yield running


@pytest.fixture
def sb(server: SandboxServer) -> Sandbox:
    server.sandbox.reset()
    server.sandbox.real_renders = False  # real rendering has its own tests (test_render.py)
    return server.sandbox


@pytest.fixture
def client(server: SandboxServer, sb: Sandbox) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server.url, timeout=5) as http:
        yield http


@pytest.fixture
def token(client: httpx2.Client) -> str:
    return client.post(ANONYMOUS_TOKEN, headers={"X-Client-Id": "client-a"}).json()["data"]["token"]


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **ATTRIBUTION}


@pytest.fixture
def session_id(client: httpx2.Client, auth: dict[str, str]) -> str:
    reply = client.post(CREATE_SESSION, json={"task_name": "project", "language": "en"}, headers=auth)
    return reply.json()["data"]["session_id"]


def assert_error(reply: httpx2.Response, status: int, code: int, style: str = "v1.9") -> None:
    """`status` is the HTTP status the published API reference pairs with `code`; v1.9 answers 200 with the code."""
    assert reply.status_code == (status if style == "reference" or code == 429 else 200)
    body = reply.json()
    assert body["code"] == code and body["data"] is None
    assert isinstance(body["message"], str) and body["message"]


def chat_body(session_id: str, text: str, streaming: bool = True) -> dict[str, Any]:
    return {"app_name": "nemo_agent", "user_id": "me", "session_id": session_id,
            "new_message": {"parts": [{"text": text}]}, "streaming": streaming}


def frames_of(stream_text: str) -> list[str]:
    return [frame for frame in stream_text.split("\n\n") if frame]


def events_of(stream_text: str) -> list[dict[str, Any]]:
    return [json.loads(frame.removeprefix("data: ")) for frame in frames_of(stream_text) if frame.startswith("data: ")]


def chat(client: httpx2.Client, auth: dict[str, str], session_id: str, text: str) -> httpx2.Response:
    return client.post("/run_sse", json=chat_body(session_id, text), headers=auth)


def texts(events: list[dict[str, Any]], *, partial: bool) -> list[str]:
    return [part["text"] for event in events if event.get("partial", False) == partial
            for part in event.get("content", {}).get("parts", []) if "text" in part]


def shapes(value: object, path: str = "") -> set[tuple[str, tuple[str, ...]]]:
    """Every (path, ordered key tuple) of the dicts inside an event, list items folded together."""
    if isinstance(value, list):
        return set().union(*(shapes(item, path + "[]") for item in value))
    if not isinstance(value, dict) or path.rpartition(".")[2] in FREE_FORM_KEYS:
        return set()
    found = {(path, tuple(value))}
    for key, item in value.items():
        found |= shapes(item, f"{path}.{key}")
    return found


def transcript_events(transcript: Path) -> list[dict[str, Any]]:
    """The transcript's JSON events; error_unescaped.sse's last frame is invalid JSON on purpose."""
    text = transcript.read_bytes().decode()
    if text.startswith("HTTP/"):
        text = text.partition("\r\n\r\n")[2]
    events = []
    for frame in frames_of(text):
        try:
            events.append(json.loads(frame.removeprefix("data: ")))
        except ValueError:
            assert transcript.name == "error_unescaped.sse"
    return events


# -- envelopes, injection, auth ---------------------------------------------------------------


def test_one_anonymous_token_per_client_id_until_it_expires(client: httpx2.Client, sb: Sandbox) -> None:
    first = client.post(ANONYMOUS_TOKEN, headers={"X-Client-Id": "client-a"}).json()
    assert first["code"] == 0
    data = first["data"]
    assert data["credits"] == 100 and data["user_id"].startswith("anon_")
    assert data["expires_at"].endswith("Z") and data["expires_at"] > time.strftime("%Y-%m-%dT", time.gmtime(time.time() + 6 * 86400))
    assert_error(client.post(ANONYMOUS_TOKEN, headers={"X-Client-Id": "client-a"}), 429, 429)
    other = client.post(ANONYMOUS_TOKEN, headers={"X-Client-Id": "client-b"}).json()["data"]
    assert other["token"] != data["token"] and other["user_id"] != data["user_id"]
    sb.expire_tokens()  # seven days later
    renewed = client.post(ANONYMOUS_TOKEN, headers={"X-Client-Id": "client-a"}).json()["data"]
    assert renewed["token"] != data["token"]
    balance = client.get(BALANCE, headers={"Authorization": f"Bearer {data['token']}"}).json()
    assert balance["code"] == 1001
    balance = client.get(BALANCE, headers={"Authorization": f"Bearer {renewed['token']}"}).json()
    assert balance == {"code": 0, "message": "success", "data": {"available": 100, "frozen": 0, "total": 100}}


def test_anonymous_token_without_client_id_is_400(client: httpx2.Client) -> None:
    assert_error(client.post(ANONYMOUS_TOKEN), 400, 400)
    assert_error(client.post(ANONYMOUS_TOKEN, headers={"X-Client-Id": ""}), 400, 400)


@pytest.mark.parametrize(("code", "status"), [
    (1001, 401), (1002, 404), (2001, 403), (4001, 415), (4002, 413), (400, 400), (402, 402), (429, 429),
])
def test_injected_codes_answer_with_envelopes(client: httpx2.Client, sb: Sandbox, auth: dict[str, str],
                                              code: int, status: int) -> None:
    sb.inject(code, path=BALANCE)
    assert_error(client.get(BALANCE, headers=auth), status, code)
    assert client.get(BALANCE, headers=auth).json()["code"] == 0


def test_rate_limit_carries_retry_after(client: httpx2.Client, sb: Sandbox) -> None:
    sb.inject(429, path=ANONYMOUS_TOKEN)
    sb.inject(429, path=ANONYMOUS_TOKEN, retry_after=7)
    assert client.post(ANONYMOUS_TOKEN, headers={"X-Client-Id": "a"}).headers["retry-after"] == "30"
    assert client.post(ANONYMOUS_TOKEN, headers={"X-Client-Id": "a"}).headers["retry-after"] == "7"


def test_gateway_errors_are_html_pages(client: httpx2.Client, sb: Sandbox, auth: dict[str, str]) -> None:
    sb.inject(502, times=2)
    for _ in range(2):
        reply = client.get(BALANCE, headers=auth)
        assert reply.status_code == 502
        assert reply.headers["content-type"].startswith("text/html")
        assert "<h1>502 Bad Gateway</h1>" in reply.text
    assert client.get(BALANCE, headers=auth).status_code == 200


def test_injection_only_hits_matching_paths(client: httpx2.Client, sb: Sandbox, auth: dict[str, str],
                                            session_id: str) -> None:
    sb.inject(1002, path="/api/state/")
    assert client.get(BALANCE, headers=auth).status_code == 200
    state_path = f"/api/state/nemo_agent/me/{session_id}/latest"
    assert_error(client.get(state_path, headers=auth), 404, 1002)
    assert client.get(state_path, headers=auth).status_code == 200


def test_api_requires_a_valid_bearer_token(client: httpx2.Client, sb: Sandbox, token: str) -> None:
    assert_error(client.get(BALANCE), 401, 1001)
    assert_error(client.get(BALANCE, headers={"Authorization": "Bearer nvsbx_made_up"}), 401, 1001)
    assert_error(client.post("/run_sse", json=chat_body("sess_1", "hi")), 401, 1001)
    assert client.get(BALANCE, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    sb.expire_tokens()
    assert_error(client.get(BALANCE, headers={"Authorization": f"Bearer {token}"}), 401, 1001)


def test_registered_tokens_are_accepted_with_1000_credits(client: httpx2.Client, sb: Sandbox) -> None:
    reply = client.get(BALANCE, headers={"Authorization": "Bearer nemo_sk_live_user"})
    assert reply.json()["data"] == {"available": 1000, "frozen": 0, "total": 1000}
    assert sb.credits_of("nemo_sk_live_user")["available"] == 1000


def test_requests_are_recorded_in_order(client: httpx2.Client, sb: Sandbox, auth: dict[str, str]) -> None:
    client.get(BALANCE, headers=auth)
    recorded = sb.requests[-1]
    assert (recorded.method, recorded.path, recorded.host) == ("GET", BALANCE, "api")
    assert recorded.headers["authorization"] == auth["Authorization"]
    assert [r.path for r in sb.requests] == [ANONYMOUS_TOKEN, BALANCE]
    assert sb.count("/api/auth", "POST") == 1 and sb.count("/api/auth", "GET") == 0 and sb.count("/api/") == 2


# -- sessions and uploads -----------------------------------------------------------------------


def test_session_state_follows_the_draft_and_forgetting_gives_1002(
        client: httpx2.Client, sb: Sandbox, auth: dict[str, str], session_id: str) -> None:
    state_path = f"/api/state/nemo_agent/me/{session_id}/latest"
    state = client.get(state_path, headers=auth).json()["data"]["state"]
    assert state == {"draft": {"t": []}, "video_infos": [], "generated_media": [],
                     "canvas_config": {"width": 1080, "height": 1920}, "video_analyses": {}}
    assert sb.sessions[session_id].task_id.startswith("task_") and sb.sessions[session_id].language == "en"
    sb.set_draft(session_id, URBAN_DREAMS)
    assert client.get(state_path, headers=auth).json()["data"]["state"]["draft"] == URBAN_DREAMS
    sb.forget_session(session_id)
    assert_error(client.get(state_path, headers=auth), 404, 1002)


def test_multipart_upload_is_typed_sized_and_listed(client: httpx2.Client, sb: Sandbox, auth: dict[str, str],
                                                      session_id: str) -> None:
    files = [("files", ("clip.mp4", b"\0" * 3000, "video/mp4")), ("files", ("cover.PNG", b"png", "image/png"))]
    reply = client.post(f"/api/upload-video/nemo_agent/me/{session_id}", files=files, headers=auth)
    assert reply.json()["data"]["session_state_applied"] is True
    uploaded = reply.json()["data"]["files"]
    assert [(f["filename"], f["file_type"]) for f in uploaded] == [("clip.mp4", "video"), ("cover.PNG", "image")]
    assert [(info["name"], info["size"]) for info in sb.sessions[session_id].video_infos] == [("clip.mp4", 3000),
                                                                                            ("cover.PNG", 3)]
    assert len({f["hash"] for f in uploaded}) == 2 and all(f["cdn_url"].startswith("http") for f in uploaded)


def test_upload_rejects_unknown_types_and_big_files(client: httpx2.Client, sb: Sandbox, auth: dict[str, str],
                                                    session_id: str) -> None:
    upload_path = f"/api/upload-video/nemo_agent/me/{session_id}"
    assert_error(client.post(upload_path, files={"files": ("tool.exe", b"MZ")}, headers=auth), 415, 4001)
    sb.max_upload_bytes = 1000
    assert_error(client.post(upload_path, files={"files": ("big.mp3", b"\0" * 1001)}, headers=auth), 413, 4002)
    assert client.post(upload_path, files={"files": ("ok.mp3", b"\0" * 1000)}, headers=auth).status_code == 200
    assert [info["name"] for info in sb.sessions[session_id].video_infos] == ["ok.mp3"]


def test_url_upload_names_media_after_the_url_path(client: httpx2.Client, auth: dict[str, str],
                                                   session_id: str) -> None:
    upload_path = f"/api/upload-video/nemo_agent/me/{session_id}"
    url = "https://cdn.example.com/media/song%20one.mp3?sig=1"
    reply = client.post(upload_path, json={"urls": [url], "source_type": "url"}, headers=auth)
    [uploaded] = reply.json()["data"]["files"]
    assert (uploaded["filename"], uploaded["file_type"], uploaded["cdn_url"]) == ("song one.mp3", "audio", url)
    assert_error(client.post(upload_path, json={"urls": ["ftp://x/a.mp4"], "source_type": "url"}, headers=auth),
                 400, 1)
    assert_error(client.post("/api/upload-video/nemo_agent/me/sess_404", json={"urls": [url]}, headers=auth),
                 404, 1002)


def test_claim_token_for_a_live_session(client: httpx2.Client, auth: dict[str, str], session_id: str) -> None:
    reply = client.post("/api/auth/claim-token", json={"task_id": "task_1", "session_id": session_id}, headers=auth)
    assert reply.json()["data"]["claim_token"].startswith("clm_")


# -- renders and downloads ----------------------------------------------------------------------


def start_render(client: httpx2.Client, headers: dict[str, str], session_id: str, render_id: str,
                 draft: dict[str, Any] = URBAN_DREAMS) -> httpx2.Response:
    body = {"id": render_id, "sessionId": session_id, "draft": draft, "output": {"format": "mp4", "quality": "high"}}
    return client.post(RENDER, json=body, headers=headers)


def wait_for_render(client: httpx2.Client, auth: dict[str, str], render_id: str) -> list[dict[str, Any]]:
    """The render's statuses as served (SKILL.md v1.9: bare, `taskId`, `status`, `output.url` at the top)."""
    seen = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        seen.append(client.get(f"{RENDER}/{render_id}", headers=auth).json())
        if seen[-1]["status"] in ("completed", "failed"):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"render {render_id} never finished: {seen[-1]}")


def test_render_lifecycle_and_download_from_another_host(client: httpx2.Client, server: SandboxServer,
                                                         sb: Sandbox, auth: dict[str, str], session_id: str) -> None:
    sb.render_seconds = 0.2
    assert start_render(client, auth, session_id, "render_1").json() == {
        "success": True, "data": {"id": "render_1", "status": "pending", "progress": 5}}
    seen = wait_for_render(client, auth, "render_1")
    assert {s["status"] for s in seen} <= {"pending", "processing", "completed"}
    assert [s["progress"] for s in seen] == sorted(s["progress"] for s in seen)
    assert seen[-1]["progress"] == 100
    url = seen[-1]["output"]["url"]
    assert url.startswith(server.download_url + "/files/")
    assert urlsplit(url).hostname != urlsplit(server.url).hostname

    downloaded = httpx2.get(url)
    assert downloaded.headers["content-type"] == "video/mp4"
    assert int(downloaded.headers["content-length"]) == len(downloaded.content)
    assert downloaded.content == PLACEHOLDER.read_bytes()
    fallback = client.get("/api/render/proxy/render_1/download", headers=auth)
    assert fallback.content == downloaded.content
    assert_error(client.get("/api/render/proxy/render_1/download"), 401, 1001)
    download_requests = [r for r in sb.requests if r.host == "download"]
    assert [r.path for r in download_requests] == ["/files/render_1.mp4"]
    assert "authorization" not in download_requests[0].headers


def test_render_needs_attribution_a_draft_and_a_fresh_id(client: httpx2.Client, auth: dict[str, str],
                                                         session_id: str) -> None:
    anonymous_headers = {"Authorization": auth["Authorization"], "X-Skill-Source": "nemovideo"}
    assert_error(start_render(client, anonymous_headers, session_id, "render_a"), 402, 402)
    assert_error(start_render(client, auth, session_id, "render_b", draft={"t": [{"tt": 0, "sg": []}]}), 400, 1)
    assert start_render(client, auth, session_id, "render_c").json()["success"] is True
    duplicate = start_render(client, auth, session_id, "render_c").json()
    assert (duplicate["code"], duplicate["message"]) == (1, "duplicate render id")


def test_failed_render_reports_an_error(client: httpx2.Client, sb: Sandbox, auth: dict[str, str],
                                        session_id: str) -> None:
    sb.render_seconds = 0.05
    sb.fail_renders = True
    start_render(client, auth, session_id, "render_f")
    final = wait_for_render(client, auth, "render_f")[-1]
    assert final["status"] == "failed" and final["error"] and "output" not in final


def test_cut_download_stops_short_of_its_content_length(client: httpx2.Client, server: SandboxServer,
                                                       sb: Sandbox, auth: dict[str, str], session_id: str) -> None:
    sb.render_seconds = 0
    start_render(client, auth, session_id, "render_cut")
    url = f"{server.download_url}/files/render_cut.mp4"
    sb.cut_next_download = True
    received = bytearray()
    with httpx2.Client() as download_client, download_client.stream("GET", url) as response:
        expected = int(response.headers["content-length"])
        with pytest.raises(httpx2.TransportError):
            for chunk in response.iter_bytes():
                received += chunk
    assert 0 < len(received) < expected
    assert sb.cut_next_download is False
    assert len(httpx2.get(url).content) == expected


# -- /run_sse -----------------------------------------------------------------------------------


def test_generate_turn_streams_partials_that_add_up_to_the_final_text(
        client: httpx2.Client, sb: Sandbox, auth: dict[str, str], token: str, session_id: str) -> None:
    reply = chat(client, auth, session_id, "Generate a video from my music")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert all(frame.startswith("data: ") for frame in frames_of(reply.text))
    events = events_of(reply.text)
    call, response = events[0]["content"]["parts"][0], events[1]["content"]["parts"][0]
    assert call["functionCall"]["name"] == response["functionResponse"]["name"] == "generate_video"
    assert call["functionCall"]["id"] == response["functionResponse"]["id"]
    assert "draft_version" in events[1]["actions"]["stateDelta"]
    deltas, [final] = texts(events, partial=True), texts(events[2:], partial=False)
    assert 2 <= len(deltas) <= 4 and "".join(deltas) == final
    assert len({event["id"] for event in events[2:]}) == 1
    assert "usageMetadata" in events[-1] and events[-1]["partial"] is False
    assert {event["invocationId"] for event in events} == {events[0]["invocationId"]}
    assert events[0]["invocationId"].startswith("e-") and events[0]["author"] == "nemo_agent"
    assert sb.sessions[session_id].draft == URBAN_DREAMS
    assert sb.credits_of(token) == {"available": 90, "frozen": 0, "total": 90}


def test_partial_text_only_when_the_request_asks_for_streaming(client: httpx2.Client, auth: dict[str, str],
                                                               session_id: str) -> None:
    reply = client.post("/run_sse", json=chat_body(session_id, "Generate a video", streaming=False), headers=auth)
    events = events_of(reply.text)
    assert texts(events, partial=True) == [] and len(texts(events, partial=False)) == 1


def test_every_event_has_a_shape_seen_in_the_real_transcripts(client: httpx2.Client, auth: dict[str, str],
                                                              session_id: str) -> None:
    allowed = set().union(*(shapes(event) for path in FIXTURES.glob("*.sse") for event in transcript_events(path)))
    messages = ["make a video", "add a title 'Hello'", "make the music quieter", "how do I export?",
                "remove the title", "hello", "explode please"]
    for message in messages:
        for event in events_of(chat(client, auth, session_id, message).text):
            assert shapes(event) <= allowed, (message, shapes(event) - allowed)


def test_silent_edit_sends_no_text(client: httpx2.Client, sb: Sandbox, auth: dict[str, str],
                                   session_id: str) -> None:
    events = events_of(chat(client, auth, session_id, 'Add a title "Urban Dreams"').text)
    assert [list(event["content"]["parts"][0]) for event in events] == [["functionCall"], ["functionResponse"]]
    assert sb.sessions[session_id].draft["t"] == [URBAN_DREAMS["t"][2]]
    chat(client, auth, session_id, "remove the title")
    assert sb.sessions[session_id].draft["t"] == []


def test_text_replies_are_single_non_partial_events(client: httpx2.Client, sb: Sandbox, auth: dict[str, str],
                                                    session_id: str) -> None:
    sb.set_draft(session_id, URBAN_DREAMS)
    volume = events_of(chat(client, auth, session_id, "make the music quieter").text)
    assert "partial" not in volume[-1] and texts(volume, partial=False) == ["Set the background music to 20%."]
    assert sb.sessions[session_id].draft["t"][1]["sg"][0]["m"]["vol"] == 0.2
    export = events_of(chat(client, auth, session_id, "how do i export my video?").text)
    assert len(export) == 1 and "Export button" in texts(export, partial=False)[0]


def test_failing_turn_ends_with_an_adk_error_frame(client: httpx2.Client, sb: Sandbox, auth: dict[str, str],
                                                   token: str, session_id: str) -> None:
    reply = chat(client, auth, session_id, "make it explode")
    assert reply.status_code == 200
    events = events_of(reply.text)
    boom = transcript_events(FIXTURES / "boom.sse")
    assert "functionCall" in events[0]["content"]["parts"][0]
    assert list(events[-1]) == list(boom[-1]) == ["error", "error_details"]
    assert list(events[-1]["error_details"]) == list(boom[-1]["error_details"])
    assert events[-1]["error"].startswith(events[-1]["error_details"]["error_type"] + ": ")
    assert sb.sessions[session_id].draft == {"t": []}
    assert sb.credits_of(token)["total"] == 100


def test_a_second_turn_on_a_busy_session_is_refused(client: httpx2.Client, server: SandboxServer, sb: Sandbox,
                                                    auth: dict[str, str], session_id: str) -> None:
    sb.turn_seconds = 0.5
    with client.stream("POST", "/run_sse", json=chat_body(session_id, "generate a video"), headers=auth) as first:
        lines = first.iter_lines()  # kept: a dropped iterator would close the stream
        next(lines)
        assert session_id in sb.busy_sessions
        with httpx2.Client(base_url=server.url, timeout=5) as other:
            second = chat(other, auth, session_id, "add a title 'Two'")
        assert second.status_code == 409 and "busy" in second.json()["detail"]
        list(lines)
    assert chat(client, auth, session_id, "add a title 'Three'").status_code == 200


def test_work_landing_after_a_reset_never_reaches_a_new_session_with_the_same_id(
        client: httpx2.Client, sb: Sandbox, auth: dict[str, str], session_id: str) -> None:
    sb.late_write_seconds = 0.3
    chat(client, auth, session_id, "generate a video")
    sb.reset()  # the next test begins; its first session gets the same id
    token = client.post(ANONYMOUS_TOKEN, headers={"X-Client-Id": "client-b"}).json()["data"]["token"]
    fresh = client.post(CREATE_SESSION, json={"task_name": "project", "language": "en"},
                        headers={"Authorization": f"Bearer {token}"}).json()["data"]["session_id"]
    assert fresh == session_id
    time.sleep(0.6)  # past the moment the old session's music and title were due
    assert sb.sessions[fresh].draft == {"t": []}


def test_unknown_session_is_an_adk_404(client: httpx2.Client, auth: dict[str, str]) -> None:
    reply = chat(client, auth, "sess_missing", "hello")
    assert reply.status_code == 404
    assert reply.json() == {"detail": "Session not found: sess_missing"}


def test_turn_without_enough_credits_is_refused_before_streaming(client: httpx2.Client, auth: dict[str, str],
                                                                 token: str, session_id: str) -> None:
    for _ in range(10):
        assert chat(client, auth, session_id, "generate a video").status_code == 200
    assert_error(chat(client, auth, session_id, "generate a video"), 403, 2001)
    assert chat(client, auth, session_id, "hello").status_code == 200


def test_long_turn_sends_heartbeats_between_call_and_response(client: httpx2.Client, sb: Sandbox,
                                                              auth: dict[str, str], session_id: str) -> None:
    sb.turn_seconds, sb.heartbeat_seconds = 0.3, 0.05
    frames = frames_of(chat(client, auth, session_id, "generate a video").text)
    pings = [index for index, frame in enumerate(frames) if frame == ": ping"]
    assert len(pings) >= 2
    assert all(frame.startswith("data: ") for frame in frames if frame != ": ping")
    assert "functionCall" in frames[0] and "functionResponse" in frames[pings[-1] + 1]
    assert pings == list(range(1, pings[-1] + 1))


def test_frames_are_flushed_while_the_turn_runs(client: httpx2.Client, sb: Sandbox, auth: dict[str, str],
                                                token: str, session_id: str) -> None:
    sb.turn_seconds = 0.4
    with client.stream("POST", "/run_sse", json=chat_body(session_id, "generate a video"), headers=auth) as reply:
        lines = reply.iter_lines()
        assert "functionCall" in next(lines)
        assert sb.sessions[session_id].draft == {"t": []}
        assert sb.credits_of(token) == {"available": 90, "frozen": 10, "total": 100}
        rest = list(lines)
    assert any('"partial":false' in line for line in rest)
    assert sb.sessions[session_id].draft == URBAN_DREAMS
    assert sb.credits_of(token)["frozen"] == 0


def test_dropped_stream_applies_the_edit_and_ends_without_text(client: httpx2.Client, sb: Sandbox,
                                                               auth: dict[str, str], session_id: str) -> None:
    sb.drop_next_stream = True
    received = []
    with client.stream("POST", "/run_sse", json=chat_body(session_id, "generate a video"), headers=auth) as reply:
        with pytest.raises(httpx2.TransportError):
            for text in reply.iter_text():
                received.append(text)
    events = events_of("".join(received))
    assert [list(event["content"]["parts"][0]) for event in events] == [["functionCall"], ["functionResponse"]]
    assert sb.sessions[session_id].draft == URBAN_DREAMS
    assert sb.drop_next_stream is False
    assert texts(events_of(chat(client, auth, session_id, "generate a video").text), partial=False)


# -- control surface and the standalone CLI ------------------------------------------------------


def test_control_surface_configures_injects_and_lists(client: httpx2.Client, sb: Sandbox,
                                                      auth: dict[str, str]) -> None:
    config = client.post("/_sandbox/config", json={"render_seconds": 0.5, "fail_renders": True}).json()["data"]
    assert (sb.render_seconds, sb.fail_renders) == (0.5, True) == (config["render_seconds"], config["fail_renders"])
    assert client.post("/_sandbox/config", json={"no_such_switch": 1}).json()["code"] == 1
    client.post("/_sandbox/inject", json={"code": 429, "path": BALANCE, "retry_after": 3})
    assert client.get(BALANCE, headers=auth).headers["retry-after"] == "3"
    listed = client.get("/_sandbox/requests").json()["data"]["requests"]
    assert [entry["path"] for entry in listed] == [ANONYMOUS_TOKEN, BALANCE]
    client.post("/_sandbox/reset")
    assert (sb.render_seconds, sb.requests) == (2.0, [])


def test_standalone_cli_serves_until_interrupted() -> None:
    command = [sys.executable, "-m", "server.sandbox", "--port", "0", "--render-seconds", "5"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as process:
        try:
            banner = process.stderr.readline()
            url = banner.split()[3]
            reply = httpx2.post(url + ANONYMOUS_TOKEN, headers={"X-Client-Id": "cli"})
            assert reply.json()["data"]["credits"] == 100
            assert httpx2.post(url + "/_sandbox/reset").json()["code"] == 0
            config = httpx2.post(url + "/_sandbox/config", json={}).json()["data"]
            assert config["render_seconds"] == 5
        finally:
            process.send_signal(signal.SIGINT)
            try:
                stdout, _ = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()  # never leave the suite waiting on a child that ignored the signal
                raise
    assert banner.startswith("NemoVideo sandbox on http://127.0.0.1:")
    assert process.returncode == 0 and stdout == ""
