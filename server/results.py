"""Tool results: pydantic models that become structured output, each with a text for people."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from mcp.types import Annotations, ContentBlock, ImageContent, ResourceLink
from pydantic import BaseModel, Field

from .preview import contact_sheet
from .spending import cost_line
from .timeline import TrackSummary

# What a user message is routed to (intents.py decides).
Action = Literal["export", "credits", "state", "upload", "chat"]

# A question of NemoVideo's left without an answer, however it was asked (a task, an elicitation, a round trip).
UNANSWERED_QUESTION = "The question was left unanswered; nothing more was sent to NemoVideo."


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
    account_url: str | None = Field(default=None, description=(
        "hosted: the page where the user links their own NemoVideo account, or forgets it"))

    def as_text(self) -> str:
        if self.account_url:
            return (f"{self.summary}\nTo use your own NemoVideo account here, or stop using it: {self.account_url} "
                    "(the link works for an hour).")
        return self.summary


class StateResult(ToolResult):
    summary: str = Field(description="the timeline in one line, to show the user as it is")
    tracks: list[TrackSummary]
    empty: bool = Field(description="true when nothing has been made yet")
    uploads: int = Field(description="media files uploaded to this project")
    notice: str | None = Field(default=None, description="something the user should know, e.g. a new project was started")

    def as_text(self) -> str:
        return f"{self.notice}\n{self.summary}" if self.notice else self.summary


NextTool = Literal["export", "state", "credits", "chat", "upload", "wait", "cancel"]


class NextAction(BaseModel):
    tool: NextTool
    arguments: dict[str, Any] = Field(default_factory=dict)
    why: str


class ChatResult(ToolResult):
    reply: str = Field(description="what to show the user, as it is")
    action: Action = Field(description="what the message was routed to")
    status: Literal["done", "working", "needs_input"] = Field(
        description="needs_input: NemoVideo asked the user a question (the reply); ask the user, do not `wait`"
    )
    job_id: str | None = Field(default=None, description="when working: pass it to `wait` to continue")
    changes: list[str] = Field(default_factory=list, description="what this turn changed on the timeline")
    timeline: str | None = Field(default=None, description="the timeline summary, when it is relevant")
    next_actions: list[NextAction] = Field(default_factory=list, description="tool calls that would help next")
    follow_up_job_id: str | None = Field(default=None, description=(
        "the project is watched for work that lands after the reply (a generation's music and titles, the rest of "
        "an edit): `wait` with this id reports it, and so does the next result about this project"))
    generated: bool = Field(default=False, description="the turn generated a video: its music and titles may land later")
    project_link: str | None = Field(default=None, description="a browser link to the project on NemoVideo")
    notice: str | None = None
    credits_before: float | None = Field(default=None, description="a paid turn: credits available before it")
    credits_after: float | None = Field(default=None, description="a paid turn: credits available after it")
    cost_estimate: float | None = Field(default=None, description=(
        "needs_input about spending: NemoVideo's documented cost of the turn that was not sent; to send it, call "
        "`chat` again with the same message and confirm_cost=true"))

    def as_text(self) -> str:
        parts = [self.notice, self.reply]
        if self.credits_before is not None and self.credits_after is not None:
            parts.append(cost_line(self.credits_before, self.credits_after))
        if self.project_link:
            parts.append(f"Open the project in the browser: {self.project_link}")
        if self.status == "working":
            parts.append(f'(Still running: call `wait` with job_id "{self.job_id}" to continue.)')
        if self.status == "needs_input" and self.cost_estimate is not None:
            parts.append("(Nothing was sent. If the user agrees, call `chat` again with the same message and "
                         "confirm_cost=true.)")
        # Named only after a generation, whose second stage people wait for; after an edit, what lands late is
        # reported with the next result, so a host need not spend a minute waiting on every edit.
        if self.follow_up_job_id and self.generated:
            parts.append(f'(NemoVideo may still add music or titles: call `wait` with job_id "{self.follow_up_job_id}" '
                         "to see them when they land.)")
        parts += [f"Next: `{action.tool}` — {action.why}" for action in self.next_actions if action.tool != "wait"]
        return "\n".join(part for part in parts if part)


class ProjectSummary(BaseModel):
    number: int = Field(description="1 = most recently used; pass it to switch")
    name: str
    current: bool
    last_used: str = Field(description="when it was last used, e.g. 2026-11-23 14:05")
    summary: str | None = Field(default=None, description="what is on its timeline, as last seen")
    link: str | None = Field(default=None, description="a browser link to the project")


class ProjectsResult(ToolResult):
    reply: str = Field(description="what to show the user")
    projects: list[ProjectSummary]

    def as_text(self) -> str:
        return self.reply


class CancelResult(ToolResult):
    reply: str = Field(description="what to show the user")
    job_id: str
    kind: Literal["turn", "export", "upload", "follow_up"]
    cancelled_at_backend: bool = Field(description="true when NemoVideo itself was asked to stop (renders)")

    def as_text(self) -> str:
        return self.reply


class UploadedItem(BaseModel):
    name: str
    size_bytes: int | None = Field(description="size of the local file; unknown for URLs")
    type: str = Field(description="video, audio or image")
    id: str | None = Field(description="the backend's id for the media")
    source: Literal["file", "url"]


class UploadResult(ToolResult):
    uploads: list[UploadedItem]
    summary: str
    upload_url: str | None = Field(default=None, description=(
        "hosted: the page where the user drops the files named in `to_drop` (the server cannot read their disk)"))
    to_drop: list[str] = Field(default_factory=list)
    notice: str | None = None
    status: Literal["done", "working"] = Field(default="done", description=(
        "working only for a client that follows tasks: a large upload goes on as a task"))
    job_id: str | None = Field(default=None, description="when working: the task's id")

    def as_text(self) -> str:
        parts = [self.notice] if self.notice else []
        if self.uploads:
            parts.append(f"{self.summary} Now describe what to make with it." if not self.upload_url else self.summary)
        elif self.status == "working":
            parts.append(self.summary)
        if self.upload_url:
            parts.append(f"This server cannot read files on your computer. Open this page and drop "
                         f"{', '.join(self.to_drop)} there: {self.upload_url} (the link works for an hour). "
                         "Then describe what to make with them.")
        return "\n".join(parts)


class ExportResult(ToolResult):
    reply: str = Field(description="what to show the user")
    status: Literal["done", "working"]
    job_id: str | None = Field(default=None, description="when working: pass it to `wait` to continue")
    path: str | None = Field(default=None, description="absolute path of the saved MP4")
    download_url: str | None = Field(default=None, description="hosted: a link that downloads the MP4 in a browser")
    size_bytes: int | None = None
    url: str | None = Field(default=None, description="where the backend serves the rendered file")
    render_id: str | None = None
    project_link: str | None = Field(default=None, description="a browser link to the project on NemoVideo")
    notice: str | None = None

    def as_text(self) -> str:
        text = f"{self.notice}\n{self.reply}" if self.notice else self.reply
        if self.status == "working":
            return f'{text}\n(Still rendering: call `wait` with job_id "{self.job_id}" to continue.)'
        return text

    def extra_content(self) -> list[ContentBlock]:
        """The file as a link and, where the video can be decoded here, a contact sheet of it (blocking: decodes)."""
        if self.download_url and self.render_id:
            return [ResourceLink(type="resource_link", uri=self.download_url, name=f"{self.render_id}.mp4",
                                 mime_type="video/mp4")]
        if not self.path:
            return []
        path = Path(self.path)
        link = ResourceLink(type="resource_link", uri=path.as_uri(), name=path.name, mime_type="video/mp4",
                            size=self.size_bytes)
        sheet = contact_sheet(path) if self.status == "done" else None
        if sheet is None:
            return [link]
        return [link, ImageContent(type="image", data=base64.b64encode(sheet).decode("ascii"), mime_type="image/jpeg",
                                   annotations=Annotations(audience=["user"]))]


# What an answer says to the question it answers (a needs_input result): the words to send (a yes to spending is
# "yes"), or None. Read by the MCP layer from a form, acted on by the service.
Meaning = Callable[[ChatResult], str | None]
