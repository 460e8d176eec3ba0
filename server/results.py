"""Tool results: pydantic models that become structured output, each with a text for people."""

from __future__ import annotations

from mcp.types import ContentBlock
from pydantic import BaseModel, Field

from .timeline import TrackSummary


class ToolResult(BaseModel):
    """A result with a text for people; hosts that ignore structured content show only that text."""

    def as_text(self) -> str:
        raise NotImplementedError

    def extra_content(self) -> list[ContentBlock]:
        """Content beyond the text, such as a link to a saved file."""
        return []


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
