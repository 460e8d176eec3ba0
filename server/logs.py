"""Logging to stderr with secrets removed.

In stdio mode stdout carries JSON-RPC only, so every log line goes to stderr. Tokens
are registered here as soon as they are known, and a filter replaces them in every
record, whichever library wrote it.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import Any

LOGGER_NAME = "nemovideo"
REDACTED = "[redacted]"

# A link's user name and password ("https://alice:secret@host/"), which people paste without noticing: the
# characters RFC 3986 allows there, up to the last "@" before the host (a password may hold one). Text that
# merely follows a link ("https://shop.example，客服 hi@shop.example", "<https://a.example>, bob@b.example")
# holds a character userinfo cannot, and is left alone. No part can match twice, so any text is read once.
_USERINFO = re.compile(r"://(?:[A-Za-z0-9\-._~%!$&'()*+,;=:]*@)+")

# Each secret with how many holders registered it: one user's token may be held by a service stopping (idle) and
# by the one that replaces it, and the first one's `forget_secret` must not unmask it for the second.
_secrets: dict[str, int] = {}
_secrets_lock = threading.Lock()
# The secrets longest first (a secret inside a longer one must not cut it), sorted once per change, not per text.
_ordered: tuple[str, ...] = ()


def register_secret(value: str) -> None:
    # Very short values would redact ordinary words; real tokens are long.
    if len(value) >= 8:
        with _secrets_lock:
            _secrets[value] = _secrets.get(value, 0) + 1
            if _secrets[value] == 1:
                _reorder()


def forget_secret(value: str) -> None:
    """A holder no longer holds the secret (a hosted user's service stopped): redacted until no holder is left, so a
    replica keeps its active users' only."""
    with _secrets_lock:
        if value in _secrets:
            _secrets[value] -= 1
            if _secrets[value] <= 0:
                del _secrets[value]
                _reorder()


def _reorder() -> None:
    global _ordered
    _ordered = tuple(sorted(_secrets, key=len, reverse=True))


def without_userinfo(text: str) -> str:
    """The text with every link's user name and password removed."""
    return _USERINFO.sub("://", text) if "@" in text else text


def redact(text: str) -> str:
    text = without_userinfo(text)
    for secret in _ordered:
        text = text.replace(secret, REDACTED)
    return text


def redact_json(value: Any) -> Any:
    """A JSON-shaped value (dicts, lists, strings, numbers) with every string redacted, keys included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(key) if isinstance(key, str) else key: redact_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    return value


# A hosted server's signed links (pages.py) open a user's upload page, account page or video for a while without
# any other credential: in a log line the link keeps its path and loses its key. Results keep them whole.
_LINK_KEY = re.compile(r"(/(?:download|upload|link)/)[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def for_the_log(text: str) -> str:
    return _LINK_KEY.sub(r"\1…", redact(text))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = for_the_log(message)
        if record.exc_info and record.exc_info[1] is not None:
            cleaned += "\n" + for_the_log(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
            record.exc_text = None
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


class RequestLineFilter(logging.Filter):
    """uvicorn's request lines: its formatter reads the record's arguments (client, method, path, version,
    status), so each is cleaned where it is rather than merged into the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(for_the_log(value) if isinstance(value, str) else value for value in record.args)
        return True


def configure_logging(level: str = "INFO") -> None:
    """Route all logging to stderr through the redacting filter (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(handler, "_nemovideo", False) for handler in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._nemovideo = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # The SDK installs its own handlers at import; ours replaces them so nothing unfiltered is written.
    root.handlers = [handler]
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)
