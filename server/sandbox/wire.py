"""How the sandbox writes replies: in the styles NemoVideo documents, not in our client's guess.

The shapes follow `tests/fixtures/documented/` (copied from shared/reference/documented/), and a
contract test holds every reply here against those files, so client and sandbox cannot drift
together again. Styles (the `reply_style` switch):

- `v1.9` (default): SKILL.md v1.9 — `{code, data}` envelopes with every documented field, the
  render start as `{success, data}`, the render status bare with `taskId`, `status` and
  `output.url` at the top level, and business errors as HTTP 200 with a non-zero code.
- `reference`: the published API reference — the render status as `{success, data}` with
  `outputUrl`, and errors with their HTTP status.
- `minimal`: v1.9 read literally: the fields it elides (`user_id`, `expires_at`, `total`) left out.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from .state import ApiError

RENDER_CALLS = ("render_start", "render_status", "render_cancel")


def ok(style: str, call: str, data: dict[str, Any]) -> JSONResponse:
    if call in RENDER_CALLS:
        return JSONResponse(_render_reply(style, call, data))
    return JSONResponse({"code": 0, "message": "success", "data": _trimmed(style, call, data)})


def error(style: str, call: str, failure: ApiError, retry_after: int | None = None) -> JSONResponse:
    status = 200 if style != "reference" and failure.code not in (429,) and failure.status < 500 else failure.status
    headers = {"Retry-After": str(retry_after or 30)} if failure.code == 429 else None
    if call in RENDER_CALLS and style == "reference":
        body: dict[str, Any] = {"success": False, "error": {"code": failure.code, "message": str(failure)}}
    else:
        body = {"code": failure.code, "message": str(failure), "data": None}
    return JSONResponse(body, status_code=status, headers=headers)


def _render_reply(style: str, call: str, render: dict[str, Any]) -> dict[str, Any]:
    if call == "render_start" or call == "render_cancel":
        return {"success": True, "data": {"id": render["id"], "status": render["status"],
                                          "progress": render.get("progress", 0)}}
    if style == "reference":
        data = {"id": render["id"], "status": render["status"], "progress": render["progress"],
                "createdAt": render["created_at_ms"]}
        if render.get("url"):
            data |= {"outputUrl": render["url"], "completedAt": render["completed_at_ms"]}
        if render.get("error"):
            data["error"] = render["error"]
        return {"success": True, "data": data}
    bare: dict[str, Any] = {"taskId": render["id"], "status": render["status"], "progress": render["progress"]}
    if render.get("url"):
        bare["output"] = {"url": render["url"], "duration": render.get("duration", 10.0),
                          "size": render.get("size", 0)}
    if render.get("error"):
        bare["error"] = render["error"]
    return bare


# The fields SKILL.md v1.9 elides with "..."; the `minimal` style leaves them out.
_ELIDED = {
    "anonymous_token": ("user_id", "expires_at"),
    "session": ("user_id",),
    "credits": ("total",),
    "claim_token": ("expires_in",),
}


def _trimmed(style: str, call: str, data: dict[str, Any]) -> dict[str, Any]:
    if style != "minimal":
        return data
    return {key: value for key, value in data.items() if key not in _ELIDED.get(call, ())}
