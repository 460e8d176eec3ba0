"""Projects (NemoVideo editing sessions): created on first need, kept in the store, switchable.

The current project is kept per user, skill variant and API host in the durable store, so a
restart, a second server process on the same HOME (Claude Desktop and Cursor side by side), a
host that starts one process per call and another replica all continue the same project.
Creating one happens under the user's lock in the store: two processes that both find none
create one project, not two.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
from pydantic import BaseModel, ConfigDict, ValidationError

from .client import NemoClient
from .errors import NemoError, SessionNotFound
from .logs import get_logger
from .store import LEGACY_SCOPE
from .tables import CURRENT_PROJECTS, PROJECTS

log = get_logger("sessions")

ResultT = TypeVar("ResultT")

NEW_SESSION_NOTICE = "Your previous project was no longer available on NemoVideo, so a new, empty project was started."
# A claim link stays valid for 7 days and may be reused (backend.md); renewed a day early.
CLAIM_LINK_SECONDS = 7 * 24 * 3600
CLAIM_LINK_MARGIN_SECONDS = 24 * 3600
PROJECT_NAME_CHARS = 60
# Retention: a project not used for this long leaves the list (it stays at NemoVideo, reachable by its link).
PROJECT_KEPT_SECONDS = 180 * 24 * 3600
# How finely a project's last use is kept: it orders the project list and, in days, decides what is pruned.
USE_MARK_SECONDS = 60


class Session(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="ignore")

    session_id: str
    task_id: str | None = None
    user_id: str | None = None
    language: str = "en"
    # The project's browser link (`/workspace/claim?ct=…`): lets an anonymous user keep the work.
    project_link: str | None = None
    project_link_expires_at: float = 0.0
    api_url: str | None = None
    name: str | None = None
    created_at: float = 0.0
    last_used_at: float = 0.0
    summary: str | None = None


def project_name(text: str | None) -> str | None:
    """A project is named after what the user first asked for, cut at a word."""
    words = " ".join((text or "").split())
    if len(words) <= PROJECT_NAME_CHARS:
        return words or None
    return words[:PROJECT_NAME_CHARS].rsplit(" ", 1)[0] + "…"


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
        self._store = client.store
        self._api_url = client.settings.api_url
        self._current_key = f"{client.identity.name}|{self._api_url}"
        self._lock = anyio.Lock()

    @asynccontextmanager
    async def _creating(self) -> AsyncIterator[None]:
        """Held while a project is created, in this process and every other one of this user.

        The token comes first: minting one takes the user's token lock, and waiting for it while holding this
        one would tie up two of the database's lock connections per new user (thirty new users at once on a
        hosted replica: none left, and every one of them refused)."""
        await self._client.auth.token()
        async with self._lock, self._store.lock("project"):
            yield

    async def current(self) -> Session | None:
        """The current project, read from the store: another process may have started or switched it."""
        pointer = await self._store.get(CURRENT_PROJECTS, self._current_key)
        if pointer is None:
            # Where an earlier version kept its one project per API host: adopted by the first variant asking.
            legacy = await self._store.get(CURRENT_PROJECTS, LEGACY_SCOPE + self._api_url)
            if legacy is None:
                return None
            session = await self.project(str(legacy.get("session_id")))
            if session is not None:
                await self._remember(session.model_copy(update={"api_url": self._api_url}))
            await self._store.delete(CURRENT_PROJECTS, LEGACY_SCOPE + self._api_url)  # the pointer holds it now
            return session
        session = await self.project(str(pointer.get("session_id")))
        if session is not None:
            self._client.auth.note_user_id(session.user_id)
        return session

    async def project(self, session_id: str) -> Session | None:
        return self._validated(await self._store.get(PROJECTS, session_id))

    async def all(self) -> list[Session]:
        """Every stored project of this API host, most recently used first."""
        return [session for entry in await self._store.projects(self._api_url)
                if (session := self._validated(entry)) is not None]

    async def switch(self, session_id: str) -> Session:
        session = await self.project(session_id)
        if session is None:
            raise SessionNotFound()
        touched = session.model_copy(update={"last_used_at": time.time()})
        await self._remember(touched)
        return touched

    async def start_new(self, text: str | None = None) -> Session:
        """A new, empty project that becomes the current one; the others stay listed."""
        async with self._creating():
            return await self._create(detect_language(text), project_name(text))

    async def ensure(self, text: str | None = None) -> Session:
        """The current session, created now (language and name from `text`) if there is none yet."""
        session = await self.current()
        if session is not None:
            return session
        async with self._creating():
            # Another process may have created it while this one waited for the lock.
            return await self.current() or await self._create(detect_language(text), project_name(text))

    async def run(self, operation: Callable[[Session], Awaitable[ResultT]], text: str | None = None,
                  session: Session | None = None) -> tuple[ResultT, str | None]:
        """Run `operation` in `session` (by default the current one, created if there is none); on 1002 start a
        new session once and say so."""
        session = session or await self.ensure(text)
        try:
            return await operation(session), None
        except SessionNotFound:
            log.info("Session %s is gone; starting a new one", session.session_id)
            replacement = await self.replace(session)
            return await operation(replacement), NEW_SESSION_NOTICE

    async def replace(self, lost: Session) -> Session:
        """A new session in place of one the backend no longer knows (same language); the lost one is forgotten."""
        async with self._creating():
            current = await self.current()
            # A concurrent call (or process) may have replaced it already.
            if current is not None and current.session_id != lost.session_id:
                return current
            await self._store.delete(PROJECTS, lost.session_id)
            return await self._create(lost.language, lost.name)

    async def note_summary(self, session: Session, summary: str) -> None:
        """What is on the project, for the project list; also marks it used. `session` as last read: a summary
        it already has, marked used within the last minute, is not written again (`state` is asked often)."""
        if session.summary == summary and time.time() - session.last_used_at < USE_MARK_SECONDS:
            return

        def change(entry: dict | None) -> dict | None:
            return None if entry is None else {**entry, "summary": summary, "last_used_at": time.time()}

        await self._store.update(PROJECTS, session.session_id, change)

    async def project_link(self, session: Session | None = None) -> str | None:
        """The project's browser link, reused while valid; none when the backend offers none."""
        session = session or await self.current()
        if session is None or not session.task_id:
            return None
        stored = await self.project(session.session_id) or session
        if stored.project_link and stored.project_link_expires_at - CLAIM_LINK_MARGIN_SECONDS > time.time():
            return stored.project_link
        try:
            claim = await self._client.claim_token(session.task_id, session.session_id)
        except NemoError as error:
            log.info("No project link for %s: %s", session.session_id, type(error).__name__)
            return None
        link = f"{self._client.settings.web_url}/workspace/claim?ct={claim.claim_token}"
        expires_at = time.time() + (claim.expires_in or CLAIM_LINK_SECONDS)

        def change(entry: dict | None) -> dict | None:
            return None if entry is None else {**entry, "project_link": link, "project_link_expires_at": expires_at}

        await self._store.update(PROJECTS, session.session_id, change)
        return link

    async def _create(self, language: str, name: str | None) -> Session:
        created = await self._client.create_session(language)
        now = time.time()
        session = Session(session_id=created.session_id, task_id=created.task_id, user_id=created.user_id,
                          language=language, api_url=self._api_url, name=name, created_at=now, last_used_at=now)
        self._client.auth.note_user_id(created.user_id)
        await self._remember(session)
        # Right away, as the official skill does: the link is what keeps an anonymous user's work.
        await self.project_link(session)
        return await self.project(session.session_id) or session

    async def _remember(self, session: Session) -> None:
        """Keep the project and make it the current one."""
        await self._store.put(PROJECTS, session.session_id, session.model_dump())
        await self._store.put(CURRENT_PROJECTS, self._current_key, {"session_id": session.session_id})

    @staticmethod
    def _validated(entry: dict | None) -> Session | None:
        if entry is None:
            return None
        try:
            return Session.model_validate(entry)
        except ValidationError:
            return None
