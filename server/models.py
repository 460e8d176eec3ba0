"""Pydantic models of the backend's JSON replies (the `data` of each envelope).

Unknown fields are ignored everywhere: the backend adds fields over time and a
new one must never break a user's session.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class WireModel(BaseModel):
    # Schemas are built on first use, not at import: every server start pays for imports.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class Envelope(WireModel):
    code: int
    message: str | None = Field(default=None, alias="message")
    msg: str | None = None
    data: Any = None

    @property
    def text(self) -> str | None:
        return self.message or self.msg


class AnonymousToken(WireModel):
    token: str = Field(repr=False)
    credits: int | None = None
    expires_in: float | None = None
    expires_at: float | None = None


class SessionCreated(WireModel):
    task_id: str | None = None
    session_id: str


class Credits(WireModel):
    available: float
    frozen: float = 0
    total: float


class SessionState(WireModel):
    draft: dict[str, Any] | None = None
    video_infos: list[Any] = Field(default_factory=list)
    generated_media: list[Any] = Field(default_factory=list)
    canvas_config: dict[str, Any] | None = None


class StateReply(WireModel):
    state: SessionState = Field(default_factory=SessionState)


class UploadedMedia(WireModel):
    id: str | None = None
    name: str | None = None
    size: int | None = None
    type: str | None = None


class UploadReply(WireModel):
    files: list[UploadedMedia] = Field(default_factory=list)


class RenderOutput(WireModel):
    url: str | None = None


class RenderJob(WireModel):
    id: str | None = None
    status: str = "pending"
    progress: float | None = None
    output: RenderOutput | None = None
    error: str | None = None


class ClaimToken(WireModel):
    claim_token: str = Field(repr=False)
