"""`python -m server demo`: the real MCP tools against the embedded sandbox, as a host sees them.

Everything runs offline: a sandbox backend on loopback, a private temporary HOME (so
the demo never touches the user's token or project), and an in-memory MCP client. The demo
makes its own media (a synthesized track, or a clip with a few shots), sends it through the
flow of a published skill, and ends with the MP4 the sandbox rendered from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import Client

from .cli import load_startup
from .sandbox import Sandbox, SandboxServer
from .sandbox.studio import PLACEHOLDER, render_hint, rendering_available
from .settings import Settings, env_value
from .tools import build_server
from .upload import human_size
from .variants import TOP_LEVEL_VARIANT, variant_named

# Which flow of the offline backend each published skill promises (server/variants.py).
FLOWS = {
    "generator-from-music": "music",
    "music-ab2n-0330": "music",
    "ai-music-generator-free-ab-old": "score",
    "ai-with-music": "score",
    "video-to-generator": "recut",
}
DEMO_TEMPO = 120.0
FLOW_NAMES = {"music": "music → video", "score": "video → music", "recut": "video → new video"}


class Narrator:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def call(self, client: Client, tool: str, arguments: dict[str, Any], user_says: str | None,
                   aside: str | None = None) -> Any:
        """One tool call as a host makes it: what the user said (quoted as said), the demo's aside, the result."""
        self.say()
        if user_says is not None:
            self.say(f"👤 user: {user_says}")
        if aside is not None:
            self.say(f"   ({aside})")
        self.say(f"🔧 host calls {tool}({json.dumps(arguments, ensure_ascii=False)})")
        result = await client.call_tool(tool, arguments)
        shown = result.content[0].text.replace("\n", "\n             ")
        self.say(f"⚠️  tool error: {shown}" if result.is_error else f"🤖 host shows: {shown}")
        return result


def write_tone(path: Path) -> Path:
    """Two seconds of a quiet 220 Hz tone with the standard library: the track when the render extra is missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 8000
    samples = b"".join(int(3000 * math.sin(2 * math.pi * 220 * n / rate)).to_bytes(2, "little", signed=True)
                       for n in range(rate * 2))
    with wave.open(str(path), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(samples)
    return path


def make_input(flow: str, folder: Path, *, real: bool, seconds: float = 6.0) -> Path:
    """The user's own media for a flow: a track for music → video, a clip with shots otherwise."""
    if flow == "music":
        target = folder / "Music" / "city nights.wav"
        if not real:
            return write_tone(target)
        from .sandbox.samples import make_track

        return make_track(target, seconds=seconds, tempo=DEMO_TEMPO)
    target = folder / "Movies" / "summer trip.mp4"
    if not real:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PLACEHOLDER, target)
        return target
    from .sandbox.samples import make_clip

    return make_clip(target, seconds=seconds, shots=5 if flow == "recut" else 3, size=(320, 180))


def describe_file(path: Path, *, real: bool) -> str:
    size = human_size(path.stat().st_size)  # as the export's own result states it
    if not real:
        return f"{size} (the placeholder clip). {render_hint('demo')}"
    from .sandbox.samples import describe

    return f"{size}, {describe(path)}"


@dataclass(frozen=True)
class Made:
    path: Path
    draft: dict[str, Any]  # what the sandbox rendered


async def run_demo(out: TextIO, output_dir: Path, variant_name: str = TOP_LEVEL_VARIANT, *,
                   walkthrough: bool = True, seconds: float = 6.0, poll_scale: float = 1.0,
                   pace: float = 1.0) -> Made | None:
    """The demo; returns the exported MP4 and its draft. `walkthrough` adds a tour of every tool
    around the flow; `seconds` is the length of the media the demo makes; `poll_scale` speeds up
    the export's render polling and `pace` the demo's own waits: the late music, the slow turn (tests)."""
    narrator = Narrator(out)
    variant = variant_named(variant_name)
    flow = FLOWS[variant.name]
    real = rendering_available()
    # Real renders take their own time; render_seconds would only add to it. Music and titles land a moment after
    # the generation's reply, as NemoVideo's second stage does, and the demo follows them.
    sandbox = Sandbox(render_seconds=0)
    sandbox.late_write_seconds = 1.0 * pace
    with tempfile.TemporaryDirectory(prefix="nemovideo-demo-") as home, SandboxServer(sandbox) as backend:
        # The watch for late work looks every second here (NemoVideo's second stage takes minutes, the sandbox's one).
        settings = Settings.from_env({"HOME": home}).with_api_url(backend.url)
        settings = settings.model_copy(update={
            "render_poll_scale": poll_scale, "late_write_delays_seconds": (1.0 * pace,),
            "recovery_delays_seconds": tuple(delay * pace for delay in settings.recovery_delays_seconds)})
        identity = load_startup(settings).model_copy(update={
            "name": variant.name, "version": variant.version, "max_upload_mb": variant.max_upload_mb})
        narrator.say(f"NemoVideo MCP demo — sandbox backend at {backend.url}, skill {identity.name} {identity.version}"
                     f" ({FLOW_NAMES[flow]})")
        if not real:
            narrator.say(f"⚠️  {render_hint('demo')}")
        async with Client(build_server(settings, identity)) as client:
            tools = (await client.list_tools()).tools
            narrator.say("Tools: " + ", ".join(tool.name for tool in tools))
            await narrator.call(client, "credits", {}, "how many credits do I have left?")
            if walkthrough:
                await narrator.call(client, "state", {}, "what's on the timeline?")
            media = make_input(flow, Path(home), real=real, seconds=seconds)
            request = f'{variant.example_request} "{media}"'
            made = await narrator.call(client, "chat", {"message": request}, request,
                                       "routed: the file is checked and uploaded, then the request goes to the agent")
            follow_up = (made.structured_content or {}).get("follow_up_job_id")
            if follow_up and made.structured_content.get("generated"):
                await narrator.call(client, "wait", {"job_id": follow_up}, None,
                                    "the host follows the second stage: music and titles land after the reply")
            if walkthrough:
                caption = "add a caption 'Summer Nights'"
                await narrator.call(client, "chat", {"message": caption}, caption,
                                    "the backend edits silently; the server reports the change")
                await narrator.call(client, "chat", {"message": "what next?"}, "what next?",
                                    "the backend answers with GUI directions; the server translates them")
                await narrator.call(client, "chat", {"message": "what's my balance?"}, "what's my balance?",
                                    "routed: no agent turn")
                backend.sandbox.turn_seconds = 3.0 * pace  # a slow turn, to show the handle a host gets back
                working = await narrator.call(client, "chat", {"message": "make the music louder",
                                                               "wait_seconds": 1 * pace},
                                              "make the music louder",
                                              "a long turn: the tool returns a handle in time")
                await narrator.call(client, "wait", {"job_id": working.structured_content["job_id"]}, None,
                                    "the host keeps waiting")
            await narrator.call(client, "state", {}, "show tracks")
            exported = await narrator.call(client, "export", {"output_dir": str(output_dir)}, "export it as an MP4")
            [session] = backend.sandbox.sessions.values()
            draft = session.draft
        if exported.is_error:
            return None
        path = Path(exported.structured_content["path"])
        narrator.say(f"\n🎞️  The MP4 is on disk: {path}")
        narrator.say(f"    {describe_file(path, real=real)}")
        narrator.say("Done. Everything above went over real HTTP to the embedded sandbox.")
        return Made(path, draft)


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(prog="nemovideo-mcp demo", description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=list(FLOWS),
                        help="run the flow of this published skill (music → video, video → music, video → new video)")
    args = parser.parse_args(argv)
    # The narration is the demo's output: the server's and the sandbox's INFO lines would interleave with it.
    logging.getLogger().setLevel(logging.WARNING)
    # The demo's HOME is temporary; the video goes where the user can find it afterwards.
    output_dir = Path(env_value(os.environ, "NEMO_OUTPUT_DIR") or Path.cwd() / "demo-output").expanduser().resolve()
    exported = anyio.run(partial(run_demo, sys.stdout, output_dir, args.variant or TOP_LEVEL_VARIANT,
                                 walkthrough=args.variant is None))
    return 0 if exported else 1
