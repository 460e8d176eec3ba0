"""The editing session (one NemoVideo project), created on first need and kept across restarts.

The current session is stored per API host in the state dir, so restarting the host
(or the server) continues the same project instead of starting an empty one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import anyio
from pydantic import BaseModel, ConfigDict, ValidationError

from .client import NemoClient
from .errors import NemoError, SessionNotFound
from .logs import get_logger
from .storage import read_json_map, write_json_map

log = get_logger("sessions")

ResultT = TypeVar("ResultT")

NEW_SESSION_NOTICE = "Your previous project was no longer available on NemoVideo, so a new, empty project was started."
# A claim link stays valid for 7 days and may be reused (backend.md); renewed a day early.
CLAIM_LINK_SECONDS = 7 * 24 * 3600
CLAIM_LINK_MARGIN_SECONDS = 24 * 3600


class Session(BaseModel):
    model_config = ConfigDict(defer_build=True)

    session_id: str
    task_id: str | None = None
    user_id: str | None = None
    language: str = "en"
    # The project's browser link (`/workspace/claim?ct=…`): lets an anonymous user keep the work.
    project_link: str | None = None
    project_link_expires_at: float = 0.0


def detect_language(text: str | None, env: Mapping[str, str] | None = None) -> str:
    """zh/ja/ko by script (kana decides Japanese, since Japanese text also uses Han), else the locale, else en."""
    if text:
        if any("\u3040" <= ch <= "\u30ff" for ch in text):
            return "ja"
        if any("\uac00" <= ch <= "\ud7af" or "\u1100" <= ch <= "\u11ff" for ch in text):
            return "ko"
        if any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text):
            return "zh"
    env = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        locale = env.get(name, "")
        language = locale.split(".")[0].split("_")[0].lower()
        if language.isalpha() and language not in ("c", "posix"):
            return language
    return "en"


class SessionManager:
    def __init__(self, client: NemoClient) -> None:
        self._client = client
        self._api_url = client.settings.api_url
        self.path = client.settings.state_dir / "session.json"
        self._lock = anyio.Lock()
        self._session: Session | None = None

    @property
    def current(self) -> Session | None:
        # Until we hold one, look again: another server process sharing this HOME may have started the project.
        if self._session is None:
            self._session = self._load()
            if self._session is not None:
                self._client.auth.note_user_id(self._session.user_id)
        return self._session

    async def ensure(self, text: str | None = None) -> Session:
        """The current session, created now (language from `text`) if there is none yet."""
        async with self._lock:
            if self.current is None:
                await self._create(detect_language(text))
            assert self._session is not None
            return self._session

    async def run(self, operation: Callable[[Session], Awaitable[ResultT]], text: str | None = None) -> tuple[ResultT, str | None]:
        """Run `operation` in the current session; on 1002 start a new session once and say so."""
        session = await self.ensure(text)
        try:
            return await operation(session), None
        except SessionNotFound:
            log.info("Session %s is gone; starting a new one", session.session_id)
            replacement = await self.replace(session)
            return await operation(replacement), NEW_SESSION_NOTICE

    async def replace(self, lost: Session) -> Session:
        """A new session in place of one the backend no longer knows (same language)."""
        async with self._lock:
            # A concurrent call may have replaced it already.
            if self._session is None or self._session.session_id == lost.session_id:
                await self._create(lost.language)
            assert self._session is not None
            return self._session

    async def project_link(self, session: Session | None = None) -> str | None:
        """The project's browser link, reused while valid; none when the backend offers none."""
        session = session or self.current
        if session is None or not session.task_id:
            return None
        if session.project_link and session.project_link_expires_at - CLAIM_LINK_MARGIN_SECONDS > time.time():
            return session.project_link
        try:
            claim = await self._client.claim_token(session.task_id, session.session_id)
        except NemoError as error:
            log.info("No project link for %s: %s", session.session_id, type(error).__name__)
            return None
        lifetime = claim.expires_in or CLAIM_LINK_SECONDS
        linked = session.model_copy(update={
            "project_link": f"{self._client.settings.web_url}/workspace/claim?ct={claim.claim_token}",
            "project_link_expires_at": time.time() + lifetime,
        })
        if self._session is not None and self._session.session_id == linked.session_id:
            self._session = linked
            self._save()
        return linked.project_link

    async def _create(self, language: str) -> None:
        created = await self._client.create_session(language)
        self._session = Session(session_id=created.session_id, task_id=created.task_id, user_id=created.user_id,
                                language=language)
        self._client.auth.note_user_id(created.user_id)
        self._save()
        # Right away, as the official skill does: the link is what keeps an anonymous user's work.
        await self.project_link(self._session)

    def _load(self) -> Session | None:
        entry = read_json_map(self.path).get(self._api_url)
        try:
            return Session.model_validate(entry)
        except ValidationError:
            return None

    def _save(self) -> None:
        assert self._session is not None
        entries = read_json_map(self.path)
        entries[self._api_url] = self._session.model_dump()
        write_json_map(self.path, entries)
