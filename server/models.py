"""Pydantic models of the backend's replies (the payload `replies.read_reply` hands over).

They accept what NemoVideo's documents allow, not only what one source shows: unknown
fields are ignored (the backend adds fields over time), every state field may be
missing or null, ids may be numbers or strings, and each field documented under two
names is read under both (`id`/`taskId`, `output.url`/`outputUrl`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


def _id_text(value: Any) -> Any:
    # A session id is a 19-digit number: as a JSON number it is still the same id.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _list_or_empty(value: Any) -> Any:
    return [] if value is None else value


def _epoch_seconds(value: Any) -> Any:
    """ISO-8601 (`2026-03-18T00:00:00Z`), epoch seconds or epoch milliseconds, as epoch seconds."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value / 1000 if value > 1e11 else float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return _epoch_seconds(float(text))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None  # unreadable: the caller falls back to the documented lifetime
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


Id = Annotated[str, BeforeValidator(_id_text)]
OptionalId = Annotated[str | None, BeforeValidator(_id_text)]
NullableList = Annotated[list[Any], BeforeValidator(_list_or_empty)]
EpochSeconds = Annotated[float | None, BeforeValidator(_epoch_seconds)]


class WireModel(BaseModel):
    # Schemas are built on first use, not at import: every server start pays for imports.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class AnonymousToken(WireModel):
    token: str = Field(repr=False, min_length=1)
    user_id: OptionalId = None
    credits: float | None = None
    expires_in: float | None = None
    expires_at: EpochSeconds = None


class SessionCreated(WireModel):
    task_id: OptionalId = None
    session_id: Id
    user_id: OptionalId = None


class Credits(WireModel):
    """`{available, frozen, total}`; NemoVideo's hosted MCP server says `granted`/`consumed` instead."""

    available: float
    frozen: float = 0
    total: float

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {key: value for key, value in data.items() if value is not None}
        granted, consumed = data.get("granted"), data.get("consumed")
        if "available" not in data and isinstance(granted, int | float):
            data["available"] = granted - (consumed if isinstance(consumed, int | float) else 0)
        if "total" not in data and "available" in data:
            frozen = data.get("frozen", 0)
            data["total"] = data["available"] + (frozen if isinstance(frozen, int | float) else 0)
        return data


class SessionState(WireModel):
    draft: dict[str, Any] | None = None
    video_infos: NullableList = Field(default_factory=list)
    # Its shape is never shown in the documents: kept as whatever JSON arrives.
    generated_media: Any = None
    canvas_config: dict[str, Any] | None = None
    video_analyses: Any = None

    def fingerprint(self) -> tuple[Any, ...]:
        """What a turn can change: compared before and after to tell whether work landed."""
        return self.draft, self.video_infos, self.generated_media


class StateReply(WireModel):
    session_id: OptionalId = None
    task_id: OptionalId = None
    task_name: str | None = None
    state: SessionState = Field(default_factory=SessionState)

    @model_validator(mode="before")
    @classmethod
    def _null_state(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("state") is None:
            return {**data, "state": {}}
        return data


class UploadedMedia(WireModel):
    """One stored file: `{filename, file_type, cdn_url, duration, …}` as documented; `name`/`type`/`id` accepted too."""

    id: OptionalId = None
    filename: str | None = None
    name: str | None = None
    file_type: str | None = None
    type: str | None = None
    cdn_url: str | None = None
    size: float | None = None
    duration: float | None = None
    hash: str | None = None

    @property
    def identifier(self) -> str | None:
        """What names the stored file: its id when the reply has one, else its content hash or CDN URL."""
        return self.id or self.hash or self.cdn_url

    @property
    def kind(self) -> str | None:
        return self.file_type or self.type

    @property
    def label(self) -> str | None:
        return self.filename or self.name


class UploadReply(WireModel):
    files: NullableList = Field(default_factory=list)

    @property
    def media(self) -> list[UploadedMedia]:
        return [UploadedMedia.model_validate(item) for item in self.files if isinstance(item, dict)]


class RenderJob(WireModel):
    """A render's status: bare `{taskId, status, output.url}` (v1.9) or `{id, status, outputUrl}` (API reference)."""

    id: OptionalId = None
    status: str = "pending"
    progress: float | None = None
    url: str | None = None
    error: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        output = data.get("output")
        url = data.get("outputUrl") or data.get("output_url") or (output.get("url") if isinstance(output, dict) else None)
        error = data.get("error") or data.get("errorMessage") or data.get("message")
        if isinstance(error, dict):
            error = error.get("message")
        return {
            "id": data.get("id") if data.get("id") is not None else data.get("taskId"),
            "status": str(data.get("status") or "pending").lower(),
            "progress": data.get("progress") if isinstance(data.get("progress"), int | float) else None,
            "url": url if isinstance(url, str) and url else None,
            "error": error if isinstance(error, str) else None,
        }


class ClaimToken(WireModel):
    claim_token: str = Field(repr=False, min_length=1)
    expires_in: float | None = None
