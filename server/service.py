"""What the skill can do, in plain Python: the MCP layer only adapts these calls.

Results are pydantic models: they become the tools' structured output, and their
`summary`/`reply` fields are what a host should show the user.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from .client import NemoClient
from .identity import SkillIdentity
from .sessions import Session, SessionManager
from .settings import Settings
from .timeline import TrackSummary, summarize, tracks_of


class ToolResult(BaseModel):
    """A result with a text for people; hosts that ignore structured content show only that text."""

    def as_text(self) -> str:
        raise NotImplementedError


class CreditsResult(ToolResult):
    available: float = Field(description="credits that can be spent now")
    frozen: float = Field(description="credits reserved by work that is still running")
    total: float
    summary: str = Field(description="one sentence to show the user")

    def as_text(self) -> str:
        return self.summary


class StateResult(ToolResult):
    summary: str = Field(description="the timeline in one line, to show the user as it is")
    tracks: list[TrackSummary]
    empty: bool = Field(description="true when nothing has been made yet")
    uploads: int = Field(description="media files uploaded to this project")
    notice: str | None = Field(default=None, description="something the user should know, e.g. a new project was started")

    def as_text(self) -> str:
        return f"{self.notice}\n{self.summary}" if self.notice else self.summary


def _amount(value: float) -> str:
    return f"{value:g}"


class VideoService:
    def __init__(self, settings: Settings, identity: SkillIdentity) -> None:
        self.settings = settings
        self.client = NemoClient(settings, identity)
        self.sessions = SessionManager(self.client)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def credits(self) -> CreditsResult:
        balance = await self.client.credits()
        summary = f"You have {_amount(balance.available)} credits available"
        if balance.frozen:
            summary += f" ({_amount(balance.frozen)} reserved by work in progress, {_amount(balance.total)} in total)"
        return CreditsResult(
            available=balance.available, frozen=balance.frozen, total=balance.total, summary=summary + "."
        )

    async def state(self) -> StateResult:
        if self.sessions.current is None:
            # No project yet: creating one just to report it empty would waste a session.
            return StateResult(summary=summarize([]), tracks=[], empty=True, uploads=0)

        async def fetch(session: Session):
            return await self.client.state(session.session_id)

        reply, notice = await self.sessions.run(fetch)
        tracks = tracks_of(reply.state.draft)
        return StateResult(
            summary=summarize(tracks),
            tracks=tracks,
            empty=not tracks,
            uploads=len(reply.state.video_infos),
            notice=notice,
        )
