"""The media types NemoVideo takes: one table for upload checks, routing, the sandbox and the skill texts.

The formats are backend.md's documented list, which every seed repeats as its
"Supported formats". `.jpeg` is the same format as `.jpg`, spelled differently: it is
accepted and sent under the documented spelling, so a backend that checks the
extension sees `jpg`. FLAC is in no documented list, only in one seed's "stick to"
line; the backend's acceptance cannot be shown, so FLAC is not accepted and no skill
text recommends it. It stays recognisable in a message, so "use ~/song.flac" is
refused with the accepted formats instead of reaching the agent as words.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

MediaKind = Literal["video", "image", "audio"]

# The documented list, in its documented order (the order the skill texts show).
FORMATS: dict[str, MediaKind] = {
    **dict.fromkeys(("mp4", "mov", "avi", "webm", "mkv"), "video"),
    **dict.fromkeys(("jpg", "png", "gif", "webp"), "image"),
    **dict.fromkeys(("mp3", "wav", "m4a", "aac"), "audio"),
}
ACCEPTED_FORMATS: tuple[str, ...] = tuple(FORMATS)
# Other spellings of an accepted format.
ALIASES: dict[str, str] = {"jpeg": "jpg"}
# Media a user may well name that the backend is not known to take.
NOT_ACCEPTED: dict[str, MediaKind] = {"flac": "audio"}
# Every extension that makes a word in a message a media file.
RECOGNISED: tuple[str, ...] = (*ACCEPTED_FORMATS, *ALIASES, *NOT_ACCEPTED)


def extension_of(name: str) -> str:
    """The format a file name stands for: lower case, without the dot, aliases resolved ('' for none)."""
    extension = PurePath(name).suffix.lower().lstrip(".")
    return ALIASES.get(extension, extension)


def kind_of(name: str) -> MediaKind | None:
    extension = extension_of(name)
    return FORMATS.get(extension) or NOT_ACCEPTED.get(extension)


def sent_name(name: str) -> str:
    """The name a file is uploaded under: an alias spelling becomes the documented one (photo.jpeg → photo.jpg)."""
    path = PurePath(name)
    extension = path.suffix.lower().lstrip(".")
    return str(path.with_suffix("." + ALIASES[extension])) if extension in ALIASES else name


def dropped_name(name: str) -> str:
    """A name a browser gave a dropped file, as the user's system spelled it, without any folder and without control
    characters, which no file name needs and a multipart header must not carry."""
    printable = "".join(ch for ch in name if ch.isprintable())
    return printable.replace("\\", "/").rsplit("/", 1)[-1].strip()


def normalise_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    """A configured list of formats in the table's spelling, duplicates dropped."""
    return tuple(dict.fromkeys(ALIASES.get(name, name) for name in (part.lower().lstrip(".") for part in formats)))
