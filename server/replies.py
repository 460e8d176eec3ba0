"""Reading the backend's replies: every documented style, in one place.

NemoVideo's published sources show three reply styles (backend.md, documented/):
`{code, data}` envelopes, `{success, data | error}` envelopes and bare objects (the
render status of SKILL.md v1.9). A business error may come as a non-zero `code` in an
HTTP 200 body or with an HTTP error status, so the body is read first and the status
only when the body says nothing. Like the official CLI's `handleResponse`, this module
accepts all of them; it knows nothing of tokens or retries, which are the client's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .logs import redact

# An error status without a readable body still says what happened.
CODES_BY_HTTP_STATUS = {401: 1001, 402: 402, 413: 4002, 415: 4001, 429: 429}
# The official CLI's gateway reports authentication failures as 1010/1011 too.
CODE_ALIASES = {1010: 1001, 1011: 1001}
SESSION_NOT_FOUND = 1002
EXCERPT_CHARS = 300
# `_read_object` found no documented style (a payload may itself be None, so None cannot say this).
_NO_STYLE = object()


@dataclass(frozen=True, slots=True)
class Refusal:
    """The backend said no: a code when it gave one (or its HTTP status implies one) and its words."""

    code: int | None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A reply in no documented style: an HTML error page, truncated JSON, a list."""

    status: int
    excerpt: str


def excerpt_of(raw: bytes | str) -> str:
    """A short, redacted piece of a body for the log, never for the user."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    # Redacted before any cut: a token cut in two would no longer be recognised.
    return " ".join(redact(text).split())[:EXCERPT_CHARS]


def parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def read_reply(status: int, raw: bytes) -> Any | Refusal | Unreadable:
    """The reply's payload, a `Refusal`, or `Unreadable`."""
    body = parse_body(raw)
    if isinstance(body, dict):
        outcome = _read_object(status, body)
        if outcome is not _NO_STYLE:
            return outcome
    elif status >= 400 and status in CODES_BY_HTTP_STATUS:
        return Refusal(CODES_BY_HTTP_STATUS[status])
    return Unreadable(status, excerpt_of(raw))


def _read_object(status: int, body: dict[str, Any]) -> Any:
    code = _as_code(body.get("code"))
    if code is not None:  # {code, message, data}
        if code != 0:
            return Refusal(CODE_ALIASES.get(code, code), _text(body.get("message") or body.get("msg")))
        if status >= 400:
            return _refusal_by_status(status, body)
        return body.get("data")
    if isinstance(body.get("success"), bool):  # {success, data | error}
        if body["success"] and status < 400:
            return body["data"] if "data" in body else {k: v for k, v in body.items() if k != "success"}
        return _success_error(status, body.get("error"))
    if status >= 400:  # a bare error object, such as FastAPI's {"detail": ...}
        return _refusal_by_status(status, body)
    return body  # a bare object


def _success_error(status: int, error: Any) -> Any:
    if isinstance(error, dict):
        code = _as_code(error.get("code"))
        message = _text(error.get("message") or error.get("msg"))
        if code is not None and code != 0:
            return Refusal(CODE_ALIASES.get(code, code), message)
    else:
        message = _text(error)
    if status >= 500:
        return _NO_STYLE  # a gateway's words about a timeout: the request's outcome is unknown, not refused
    return Refusal(CODES_BY_HTTP_STATUS.get(status), message)


def _refusal_by_status(status: int, body: dict[str, Any]) -> Any:
    detail = _text(body.get("detail") or body.get("message") or body.get("error"))
    if status == 404 and detail and "session not found" in detail.lower():
        return Refusal(SESSION_NOT_FOUND, detail)
    if status in CODES_BY_HTTP_STATUS:
        return Refusal(CODES_BY_HTTP_STATUS[status], detail)
    if detail and status < 500:
        return Refusal(None, detail)
    # A 5xx without a business code (a gateway timing out, say): whether the request was done is unknown.
    return _NO_STYLE


def _as_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dict):
        return _text(value.get("message") or value.get("msg"))
    return None
