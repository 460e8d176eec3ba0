"""What NemoVideo documents is the truth: every documented reply is read by the client, and the
sandbox serves the same shapes, so the two cannot drift together again.

The documents are copied from shared/reference/documented/ into tests/fixtures/documented/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from nemovideo_mcp import errors
from nemovideo_mcp.client import NemoClient
from nemovideo_mcp.replies import Refusal, Unreadable, read_reply
from nemovideo_mcp.sandbox import Sandbox, SandboxServer
from nemovideo_mcp.timeline import summarize, tracks_of

pytestmark = pytest.mark.anyio

DOCUMENTED = Path(__file__).resolve().parent / "fixtures" / "documented"
ATTRIBUTION = {"X-Skill-Source": "nemovideo", "X-Skill-Version": "1.0.0", "X-Skill-Platform": "test"}
DRAFT = {"t": [{"tt": 0, "sg": [{"st": 0, "d": 10000, "m": {"name": "city timelapse"}}]}]}


def documented(name: str) -> dict[str, Any]:
    return json.loads((DOCUMENTED / f"{name}.json").read_text())


def body(name: str) -> dict[str, Any]:
    return documented(name)["body"]


def test_every_documented_reply_is_covered_here() -> None:
    assert sorted(path.stem for path in DOCUMENTED.glob("*.json")) == sorted(CLIENT_CASES)
    for name in CLIENT_CASES:
        assert documented(name)["source"] and documented(name)["call"]


# -- the client reads each document over real HTTP -------------------------------------------------


async def _anonymous_token(client: NemoClient, sandbox: Sandbox) -> None:
    before = time.time()
    token = await client.auth.token()
    assert token == body(next(n for n in ("anonymous-token.full", "anonymous-token.v1.9")
                              if body(n)["data"]["token"] == token))["data"]["token"]
    cached = await client.auth.cached()
    # The documented expiry (2026-03-18) is already past: the token is kept for the documented 7 days.
    assert cached["token"] == token and cached["expires_at"] >= before + 7 * 24 * 3600 - 5


async def _session(client: NemoClient, sandbox: Sandbox) -> Any:
    return await client.create_session("en")


CLIENT_CASES: dict[str, tuple[str, Any]] = {
    "anonymous-token.full": ("/api/auth/anonymous-token", _anonymous_token),
    "anonymous-token.v1.9": ("/api/auth/anonymous-token", _anonymous_token),
    "claim-token.v1.9": ("/api/auth/claim-token", lambda c, s: c.claim_token("task_1", "5529798706024415233")),
    "credits.full": ("/api/credits/balance/simple", lambda c, s: c.credits()),
    "render-start.success": ("/api/render/proxy/lambda", lambda c, s: c.start_render("render_xxx", "1", DRAFT)),
    "render-status.bare": ("/api/render/proxy/lambda/render_xxx", lambda c, s: c.render_status("render_xxx")),
    "render-status.success": ("/api/render/proxy/lambda/render_xxx", lambda c, s: c.render_status("render_xxx")),
    "session.full": ("/api/tasks/me/with-session/nemo_agent", _session),
    "session.v1.9": ("/api/tasks/me/with-session/nemo_agent", _session),
    "state.full": ("/api/state/nemo_agent/me/", lambda c, s: c.state("session_xxx")),
    "upload.full": ("/api/upload-video/nemo_agent/me/", lambda c, s: c.upload_urls("1", ["https://x/video.mp4"])),
}


@pytest.mark.parametrize("name", sorted(CLIENT_CASES))
async def test_the_client_reads_each_documented_reply(name: str, sandbox: Sandbox, settings, identity) -> None:
    path, call = CLIENT_CASES[name]
    async with NemoClient(settings, identity) as client:
        if not path.startswith("/api/auth/anonymous-token"):
            await client.auth.token()
        sandbox.replay(path, body(name))
        result = await call(client, sandbox)
    expected = {
        "claim-token.v1.9": lambda r: r.claim_token == "clm_xxx" and r.expires_in == 604800,
        "credits.full": lambda r: (r.available, r.frozen, r.total) == (25000, 40, 25040),
        "render-start.success": lambda r: (r.id, r.status, r.progress) == ("render_xxx", "pending", 5),
        "render-status.bare": lambda r: (r.id, r.status, r.url) == (
            "render_xxx", "completed", "https://cdn.example.com/renders/xxx/output.mp4"),
        "render-status.success": lambda r: (r.id, r.status, r.url) == (
            "render_xxx", "completed", "https://static1.nemovideo.ai/render-result/render_xxx.mp4"),
        "session.full": lambda r: (r.session_id, r.task_id, r.user_id) == (
            "5529798706024415232", "task_xxx", "anon_abc123"),
        "session.v1.9": lambda r: (r.session_id, r.task_id, r.user_id) == ("...", "...", None),
        "state.full": lambda r: summarize(tracks_of(r.state.draft)) == (
            "Timeline (1 track): 1. Video: city timelapse (0-10s)") and r.task_name == "My Video Project",
        "upload.full": lambda r: [(m.label, m.kind, m.duration, m.identifier) for m in r.media] == [
            ("video.mp4", "video", 30.5, "abc123")],
    }
    if name in expected:
        assert expected[name](result), result


async def test_the_anonymous_user_id_from_the_token_reply_builds_the_registration_link(
        sandbox: Sandbox, settings, identity) -> None:
    sandbox.replay("/api/auth/anonymous-token", body("anonymous-token.full"))
    sandbox.replay("/api/credits", {"code": 2001, "message": "insufficient credits", "data": None})
    async with NemoClient(settings, identity) as client:
        with pytest.raises(errors.OutOfCredits, match=r"nemovideo\.com/register\?bind=anon_abc123"):
            await client.credits()


@pytest.mark.parametrize(("reply", "status", "error_type"), [
    ({"code": 1001, "message": "token expired", "data": None}, 200, errors.TokenRejected),
    ({"code": 1010, "msg": "unauthorized"}, 200, errors.TokenRejected),
    ({"code": 1011, "msg": "token revoked"}, 401, errors.TokenRejected),
    ({"success": False, "error": {"code": 2001, "message": "insufficient credits"}}, 403, errors.OutOfCredits),
    ({"success": False, "error": "free plan export blocked"}, 402, errors.ExportBlocked),
    ({"detail": "Not authenticated"}, 401, errors.TokenRejected),
    ({"code": 4002, "message": "file too large"}, 413, errors.FileTooLarge),
])
async def test_business_errors_in_every_documented_style(sandbox: Sandbox, settings, identity, reply, status,
                                                          error_type) -> None:
    user = settings.model_copy(update={"token": __import__("pydantic").SecretStr("nemo_sk_contract_user_01")})
    sandbox.replay("/api/credits", reply, status=status)
    async with NemoClient(user, identity) as client:
        with pytest.raises(error_type):
            await client.credits()


@pytest.mark.parametrize(("status", "raw", "expected"), [
    (200, b'{"code": 0, "data": {"a": 1}}', {"a": 1}),
    (200, b'{"success": true, "data": {"a": 1}}', {"a": 1}),
    (200, b'{"taskId": "r", "status": "completed"}', {"taskId": "r", "status": "completed"}),
    (200, b'{"code": "0", "data": null}', None),
    (200, b'{"code": 2001, "message": "no credits"}', Refusal(2001, "no credits")),
    (404, b'{"detail": "Session not found: 42"}', Refusal(1002, "Session not found: 42")),
    (429, b"Too Many Requests", Refusal(429)),
    (200, b'{"success": false, "error": {"code": 1011, "msg": "revoked"}}', Refusal(1001, "revoked")),
    (502, b"<html>502 Bad Gateway</html>", Unreadable(502, "<html>502 Bad Gateway</html>")),
    (200, b'{"code": 0, "da', Unreadable(200, '{"code": 0, "da')),
    (200, b"[1, 2]", Unreadable(200, "[1, 2]")),
])
def test_read_reply_tells_payload_refusal_and_unreadable_apart(status: int, raw: bytes, expected: Any) -> None:
    assert read_reply(status, raw) == expected


async def test_an_unreadable_reply_keeps_a_redacted_excerpt_for_the_log_only(sandbox, settings, identity,
                                                                            caplog) -> None:
    async with NemoClient(settings, identity) as client:
        token = await client.auth.token()
        sandbox.replay("/api/credits", {"unexpected": f"echo {token}"})
        with pytest.raises(errors.UnexpectedResponse) as caught:
            await client.credits()
    assert caught.value.call == "GET /api/credits/balance/simple" and caught.value.status_code == 200
    assert token not in caught.value.excerpt and "[redacted]" in caught.value.excerpt
    assert "unexpected" not in str(caught.value) and token not in caplog.text


async def test_models_accept_what_the_documents_allow(sandbox, settings, identity) -> None:
    async with NemoClient(settings, identity) as client:
        await client.auth.token()
        sandbox.replay("/api/state/", {"code": 0, "data": {"state": {
            "draft": None, "video_infos": None, "generated_media": {"video": {"url": "x"}}, "canvas_config": None}}})
        state = await client.state("1")
        sandbox.replay("/api/state/", {"code": 0, "data": {"state": None}})
        empty = await client.state("1")
        sandbox.replay("/api/credits", {"code": 0, "data": {"granted": 100, "consumed": 30}})
        granted = await client.credits()
        sandbox.replay("/api/credits", {"code": 0, "data": {"available": 70, "frozen": 5}})
        no_total = await client.credits()
        sandbox.replay("/api/tasks/", {"code": 0, "data": {"task_id": 7, "session_id": 5529798706024415232}})
        numeric = await client.create_session("en")
    assert state.state.video_infos == [] and state.state.generated_media == {"video": {"url": "x"}}
    assert empty.state.draft is None
    assert (granted.available, granted.total) == (70, 70) and (no_total.available, no_total.total) == (70, 75)
    assert (numeric.session_id, numeric.task_id) == ("5529798706024415232", "7")


# -- the sandbox serves the documented shapes --------------------------------------------------------


def _shape(value: Any, path: str = "$") -> dict[str, str]:
    """Every path to a value with its JSON kind; lists folded into their first item.

    A draft's inside is the agent's content, not the wire format: only its presence counts.
    """
    if path.endswith(".draft") and isinstance(value, dict):
        return {path: "object"}
    if isinstance(value, dict):
        found = {path: "object"}
        for key, item in value.items():
            found |= _shape(item, f"{path}.{key}")
        return found
    if isinstance(value, list):
        return {path: "array", **(_shape(value[0], path + "[]") if value else {})}
    kinds = {bool: "boolean", str: "string", type(None): "null"}
    return {path: kinds.get(type(value), "number")}


def _conforms(served: Any, document: Any) -> list[str]:
    """What the documented reply has that the served one lacks or types differently (null matches any kind)."""
    served_shape, problems = _shape(served), []
    for path, kind in _shape(document).items():
        if path not in served_shape:
            problems.append(f"{path} missing")
        elif kind != "null" and served_shape[path] not in (kind, "null"):
            problems.append(f"{path} is {served_shape[path]}, documented {kind}")
    return problems


def _served(server: SandboxServer, style: str) -> dict[str, Any]:
    """One reply to each documented call, from the sandbox in `style`."""
    sandbox = server.sandbox
    sandbox.reply_style = style
    sandbox.render_seconds = 0
    replies: dict[str, Any] = {}
    with httpx2.Client(base_url=server.url, timeout=5) as http:
        replies["anonymous-token"] = http.post("/api/auth/anonymous-token", headers={"X-Client-Id": style}).json()
        auth = {"Authorization": f"Bearer {replies['anonymous-token']['data']['token']}", **ATTRIBUTION}
        replies["session"] = http.post("/api/tasks/me/with-session/nemo_agent",
                                       json={"task_name": "project", "language": "en"}, headers=auth).json()
        session_id = replies["session"]["data"]["session_id"]
        sandbox.set_draft(session_id, DRAFT)
        replies["credits"] = http.get("/api/credits/balance/simple", headers=auth).json()
        replies["state"] = http.get(f"/api/state/nemo_agent/me/{session_id}/latest", headers=auth).json()
        replies["upload"] = http.post(f"/api/upload-video/nemo_agent/me/{session_id}",
                                      files={"files": ("video.mp4", b"\0" * 64, "video/mp4")}, headers=auth).json()
        replies["claim-token"] = http.post("/api/auth/claim-token", json={"task_id": "t", "session_id": session_id},
                                           headers=auth).json()
        replies["render-start"] = http.post("/api/render/proxy/lambda", headers=auth, json={
            "id": "render_doc", "sessionId": session_id, "draft": DRAFT}).json()
        replies["render-status"] = http.get("/api/render/proxy/lambda/render_doc", headers=auth).json()
    return replies


# Which documented reply each style stands for.
STYLE_DOCUMENTS = {
    "v1.9": ["anonymous-token.full", "session.full", "credits.full", "state.full", "upload.full",
             "claim-token.v1.9", "render-start.success", "render-status.bare"],
    "reference": ["anonymous-token.full", "session.full", "credits.full", "state.full", "upload.full",
                  "claim-token.v1.9", "render-start.success", "render-status.success"],
    "minimal": ["anonymous-token.v1.9", "session.v1.9", "state.full", "upload.full", "render-start.success",
                "render-status.bare"],
}


@pytest.mark.parametrize("style", sorted(STYLE_DOCUMENTS))
def test_the_sandbox_serves_the_documented_shapes(style: str, sandbox: Sandbox, sandbox_server) -> None:
    served = _served(sandbox_server, style)
    for name in STYLE_DOCUMENTS[style]:
        call = name.split(".")[0]
        assert _conforms(served[call], body(name)) == [], (style, name)


def test_the_minimal_style_leaves_out_what_v19_elides(sandbox: Sandbox, sandbox_server) -> None:
    served = _served(sandbox_server, "minimal")
    assert set(served["anonymous-token"]["data"]) == {"token", "credits"}
    assert set(served["session"]["data"]) == {"task_id", "session_id"}
    assert set(served["credits"]["data"]) == {"available", "frozen"}
