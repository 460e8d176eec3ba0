"""Uploads: local files streamed from disk as multipart, and http(s) URLs in one JSON request.

Every source is checked before anything is sent (exists, regular, non-empty, accepted
type, within the size limit), so a bad input costs no request. A file is read in
chunks while it is sent: memory does not grow with its size, and progress is
reported by bytes.
"""

from __future__ import annotations

import mimetypes
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path, PurePath
from urllib.parse import unquote, urlsplit

import anyio
from pydantic import BaseModel, Field

from .client import NemoClient
from .errors import FileTooLarge, NemoError, UnsupportedFileType
from .logs import without_userinfo
from .media import extension_of, kind_of, sent_name
from .results import UploadedItem
from .settings import Settings

CHUNK_BYTES = 1024 * 1024

ByteProgress = Callable[[int, int, str], Awaitable[None]]


class InvalidSource(NemoError):
    """A source that cannot be uploaded at all (missing, a folder, empty, a non-http link)."""


def human_size(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class LocalFile(BaseModel):
    path: Path = Field(description="where the bytes are read from (links resolved)")
    name: str = Field(description="the name the user gave it, sent to the backend and checked for its type")
    size: int


def check_file(source: str, settings: Settings) -> LocalFile:
    assert settings.max_upload_bytes is not None, "resolve limits with Settings.with_skill_limits first"
    try:
        path = Path(source).expanduser()
        exists = path.exists()
    except RuntimeError:  # "~someone/…" for a user that does not exist
        raise InvalidSource(f"There is no file at {source}. Give the full path (for example /Users/me/Music/song.mp3).") from None
    except ValueError:  # a NUL character, which no path may hold
        raise InvalidSource(f"There is no file at {source!r}: a path cannot contain a NUL character. "
                            "Check the path and try again.") from None
    if not exists:
        raise InvalidSource(f"There is no file at {source}. Check the path (an absolute path is safest) and try again.")
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise InvalidSource(f"{source} is {kind}. Upload the media files themselves.")
    if not os.access(path, os.R_OK):
        raise InvalidSource(f"{source} cannot be read (permission denied). Copy it somewhere readable and try again.")
    size = path.stat().st_size
    check_media(path.name, size, settings, shown=source)
    # A link is read through, but sent under its own name: that name is what was checked.
    return LocalFile(path=path.resolve(), name=path.name, size=size)


def check_media(name: str, size: int, settings: Settings, *, shown: str | None = None) -> None:
    """What NemoVideo takes, by the file's name and size: the same rules for a path and for a dropped file.
    `shown` is how the user knows the file when that is not its name (the path they gave)."""
    assert settings.max_upload_bytes is not None, "resolve limits with Settings.with_skill_limits first"
    if size == 0:
        raise InvalidSource(f"{shown or name} is empty (0 bytes). Check that the file was saved completely.")
    if extension_of(name) not in settings.accepted_formats:
        shown = PurePath(name).suffix.lower() or ".(no extension)"
        raise UnsupportedFileType(settings.accepted_formats, what=f"{shown} files", name=name)
    if size > settings.max_upload_bytes:
        raise FileTooLarge(
            f"{name} is {human_size(size)}, over the {human_size(settings.max_upload_bytes)} limit. "
            "Trim it to a shorter clip or compress it (lower resolution or bitrate), then upload again."
        )


def check_url(url: str) -> str:
    source = without_userinfo(url)  # as it is shown: a password in the link is not repeated
    invalid = InvalidSource(f"{source} is not a valid link. Check it (copy it again from the browser) and try again.")
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[::1": an unclosed IPv6 address
        raise invalid from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and not parts.hostname:
        raise invalid
    if scheme not in ("http", "https"):
        raise InvalidSource(
            f"{source} cannot be uploaded: only local files and http(s) links are supported"
            + (f", not {scheme}:// links." if scheme else ".")
            + (" Give the file's path instead of a file:// link." if scheme == "file" else "")
        )
    return url


def is_url(source: str) -> bool:
    return "://" in source


def check_sources(sources: list[str], settings: Settings) -> tuple[list[LocalFile], list[str]]:
    """Every source checked before any request; the first problem stops the whole upload."""
    cleaned = [source.strip().strip("'\"") for source in sources if source.strip()]
    if not cleaned:
        raise InvalidSource("Nothing to upload: give the path of a local file or an http(s) link.")
    files = [check_file(source, settings) for source in cleaned if not is_url(source)]
    urls = [check_url(source) for source in cleaned if is_url(source)]
    return files, urls


def url_name(url: str) -> str:
    """What a link's upload is called: its file name, else its host name, never the whole network location (that
    may hold a user name and password)."""
    parts = urlsplit(url)
    return unquote(Path(parts.path).name) or str(parts.hostname)


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


class FileChanged(InvalidSource):
    """The file on disk is not the one that was checked: its bytes no longer match the announced length."""

    def __init__(self, file: LocalFile, now: str) -> None:
        super().__init__(
            f"{file.name} changed while it was being uploaded ({human_size(file.size)} when checked, {now}), "
            "so it was not sent. Wait until the file is completely saved, then upload it again."
        )


def _form_field(name: str, boundary: str) -> tuple[bytes, bytes]:
    """What goes before and after a file's bytes in a `files` form field."""
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    # RFC 7578: UTF-8 file names go as they are inside the quoted filename parameter.
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="files"; filename="{_quoted(sent_name(name))}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode("utf-8")
    return head, f"\r\n--{boundary}--\r\n".encode()


def multipart_body(file: LocalFile, boundary: str, on_bytes: Callable[[int], Awaitable[None]]):
    """A `files` form field streamed from disk; returns (body factory, content length)."""
    head, tail = _form_field(file.name, boundary)

    async def body() -> AsyncIterator[bytes]:
        yield head
        sent = 0
        async with await anyio.open_file(file.path, "rb") as handle:
            # The request announced the checked size: never more bytes than that, and fewer is an error too.
            while chunk := await handle.read(min(CHUNK_BYTES, file.size - sent + 1)):
                if sent + len(chunk) > file.size:
                    raise FileChanged(file, "larger now")
                sent += len(chunk)
                yield chunk
                await on_bytes(sent)
        if sent < file.size:
            raise FileChanged(file, f"{human_size(sent)} now")
        yield tail

    return body, len(head) + file.size + len(tail)


class DropInterrupted(InvalidSource):
    default_message = "The file did not arrive whole, so it was not kept. Drop it again."


async def upload_stream(client: NemoClient, session_id: str, name: str, size: int,
                        chunks: AsyncIterator[bytes]) -> UploadedItem:
    """A file arriving from elsewhere (a browser's upload to a hosted server), passed on to NemoVideo as it
    arrives: never whole in memory or on disk. It can be sent once only, so a refusal that asks for a new
    token or waits out a rate limit fails it with a sentence instead of sending it again."""
    boundary = f"nemovideo-{uuid.uuid4().hex}"
    head, tail = _form_field(name, boundary)
    started = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal started
        if started:
            raise DropInterrupted("NemoVideo asked for the file again, and it can be sent once only. Drop it again.")
        started = True
        yield head
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > size:
                raise DropInterrupted()
            yield chunk
        if received < size:
            raise DropInterrupted()
        yield tail

    reply = await client.upload_files(session_id, body, f"multipart/form-data; boundary={boundary}",
                                      len(head) + size + len(tail))
    media = next(iter(reply.media), None)
    return UploadedItem(name=name, size_bytes=size, type=kind_of(name) or "video",
                        id=media.identifier if media else None, source="file")


async def upload_sources(
    client: NemoClient, session_id: str, files: list[LocalFile], urls: list[str], progress: ByteProgress | None = None
) -> list[UploadedItem]:
    items: list[UploadedItem] = []
    total = sum(file.size for file in files)
    done_before = 0
    # A refused request (a renewed token, a rate limit) streams its file again from the start;
    # the bytes already reported stay reported, so progress never goes backwards.
    reported = 0
    for file in files:
        boundary = f"nemovideo-{uuid.uuid4().hex}"

        async def on_bytes(sent: int, file: LocalFile = file, base: int = done_before) -> None:
            nonlocal reported
            if progress is not None and base + sent > reported:
                reported = base + sent
                await progress(reported, total, f"Uploading {file.name} ({human_size(sent)} of {human_size(file.size)})")

        body, length = multipart_body(file, boundary, on_bytes)
        reply = await client.upload_files(session_id, body, f"multipart/form-data; boundary={boundary}", length)
        media = next(iter(reply.media), None)
        items.append(UploadedItem(
            name=file.name, size_bytes=file.size, type=kind_of(file.name) or "video",
            id=media.identifier if media else None, source="file",
        ))
        done_before += file.size
    if urls:
        reply = await client.upload_urls(session_id, urls)
        stored = reply.media
        by_position = stored + [None] * (len(urls) - len(stored))
        for url, media in zip(urls, by_position):
            name = url_name(url)
            kind = media.kind if media and media.kind else (kind_of(name) or "video")
            items.append(UploadedItem(name=name, size_bytes=None, type=kind, id=media.identifier if media else None, source="url"))
    return items


def summarize_uploads(items: list[UploadedItem]) -> str:
    described = [
        f"{item.name} ({item.type}{', ' + human_size(item.size_bytes) if item.size_bytes else ''})" for item in items
    ]
    noun = "file" if len(items) == 1 else "files"
    return f"Uploaded {len(items)} {noun}: " + "; ".join(described) + "."

