"""MCP Apps views (`io.modelcontextprotocol/ui`, issue 17): the player shown after `export` and the timeline shown
after `state` and `chat`, in hosts that render Apps. Hosts without Apps never read these; they get today's text
(and after an export the contact sheet, `preview.py`).

Each view is one self-contained HTML document: the official `App` class of `@modelcontextprotocol/ext-apps`
(its published single-file bundle, `ui/ext-apps-app.js`, pinned below by version and hash;
tests/apps/refresh_bundle.py fetches it again from npm and compares, byte for byte) inlined with the view's own
script, so Python users never need Node. A local MP4 reaches the view as `nemovideo://renders/<id>/parts/<n>` resources of
bounded size, read through the host: the iframe's permissions are never widened.
"""

from __future__ import annotations

import re
from functools import cache, partial
from pathlib import Path

from mcp.server.apps import Apps, ResourceCsp
from mcp.server.mcpserver.resources import FunctionResource

from .drops import MAX_PART_BYTES
from .settings import Settings

PLAYER_URI = "ui://nemovideo/player.html"
TIMELINE_URI = "ui://nemovideo/timeline.html"
RENDER_PARTS = "nemovideo://renders/{render_id}/parts/{part}"
# `project` is "current" (the only one a view is shown for); a template, so that the server knows whose it is.
PROJECT_VIDEOS = "nemovideo://projects/{project}/videos"
EXT_APPS = "@modelcontextprotocol/ext-apps@2.0.4"
EXT_APPS_BUNDLE_SHA256 = "d24b6ae50dbc989539db8287e217f41f0833f2b0a81ac4c6dbde444715ef5cd0"
# A part's size, both ways (a video to a view, a dropped file from one): far below hosts' message limits once
# base64 (256 KiB), and a multiple of 3 bytes so the parts' base64 texts join into one.
PART_BYTES = MAX_PART_BYTES

UI = Path(__file__).resolve().parent / "ui"


@cache
def _app_class() -> str:
    """The bundle as a script that defines `App` (its closing `export {…}` names the minified binding)."""
    bundle = (UI / "ext-apps-app.js").read_text(encoding="utf-8")
    exports = re.search(r"export\s*\{([^}]*)\}\s*;?\s*$", bundle)
    assert exports is not None, "ext-apps-app.js is not the single-file ESM bundle"
    names = dict(reversed(part.strip().split(" as ")) for part in exports.group(1).split(",") if " as " in part)
    return f"{bundle[:exports.start()]}\nconst App = {names['App']};\n"


@cache
def view_html(name: str, accepted: tuple[str, ...] = ()) -> str:
    """ui/<name>.html with the `App` class and what every view does with its host (ui/view.js) inlined: one
    self-contained document. `accepted`: the formats `upload` takes, which a file picker offers first."""
    shared = _app_class() + (UI / "view.js").read_text(encoding="utf-8")
    return ((UI / f"{name}.html").read_text(encoding="utf-8")
            .replace("/*EXT_APPS_APP*/", shared).replace("/*PART_BYTES*/", str(PART_BYTES))
            .replace("/*ACCEPT*/", ",".join(f".{extension}" for extension in accepted)))


def apps_extension(settings: Settings) -> Apps:
    """The views as an `Apps` extension: each `ui://` resource, with exactly the domains it loads media from (a
    hosted server's download links; nothing for a local one, whose files come as resources). Built when first
    read, not at every start: a host that shows no Apps never reads it."""
    apps = Apps()
    player: dict[str, object] = {"prefersBorder": True}
    if settings.hosted and settings.public_url:
        player["csp"] = ResourceCsp(resource_domains=[settings.public_url]).model_dump(by_alias=True,
                                                                                       exclude_none=True)
    apps.add_resource(FunctionResource(uri=PLAYER_URI, name="player", title="Video player",
                                       description="Plays the exported video in the conversation",
                                       fn=partial(view_html, "player"), meta={"ui": player}))
    apps.add_resource(FunctionResource(uri=TIMELINE_URI, name="timeline", title="Timeline",
                                       description="The project's tracks as a picture, following each turn",
                                       fn=partial(view_html, "timeline", settings.accepted_formats),
                                       meta={"ui": {"prefersBorder": True}}))
    return apps


def render_part(path: Path, part: int) -> bytes | None:
    """Part `part` of a rendered file; None past its end (blocking: reads the file)."""
    with path.open("rb") as file:
        file.seek(part * PART_BYTES)
        data = file.read(PART_BYTES)
    return data or None
