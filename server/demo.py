"""`python -m server demo`: the real MCP tools against the embedded sandbox, as a host sees them.

Everything runs offline: a sandbox backend on loopback, a private temporary HOME (so
the demo never touches the user's token or project), and an in-memory MCP client.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import Client

from .cli import load_startup
from .sandbox import Sandbox, SandboxServer
from .settings import Settings
from .tools import build_server

GENERATE = "create a video with visuals synced to this music track"


class Narrator:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def call(self, client: Client, tool: str, arguments: dict[str, Any], user_says: str) -> Any:
        self.say(f'\n👤 user: "{user_says}"')
        self.say(f"🔧 host calls {tool}({json.dumps(arguments, ensure_ascii=False)})")
        result = await client.call_tool(tool, arguments)
        shown = result.content[0].text.replace("\n", "\n             ")
        self.say(f"⚠️  tool error: {shown}" if result.is_error else f"🤖 host shows: {shown}")
        return result


def write_sample_track(path: Path) -> Path:
    """Two seconds of a quiet 220 Hz tone: a real WAV file for the upload step."""
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


async def run_demo(out: TextIO, output_dir: Path) -> None:
    narrator = Narrator(out)
    with tempfile.TemporaryDirectory(prefix="nemovideo-demo-") as home, SandboxServer(Sandbox()) as backend:
        settings = Settings.from_env({"HOME": home}).with_api_url(backend.url)
        identity = load_startup(settings)
        narrator.say(f"NemoVideo MCP demo — sandbox backend at {backend.url}, skill {identity.name} {identity.version}")
        async with Client(build_server(settings, identity)) as client:
            tools = (await client.list_tools()).tools
            narrator.say("Tools: " + ", ".join(tool.name for tool in tools))
            await narrator.call(client, "credits", {}, "how many credits do I have left?")
            await narrator.call(client, "state", {}, "what's on the timeline?")
            track = write_sample_track(Path(home) / "Music" / "city nights.wav")
            request = f'{GENERATE} "{track}"'
            await narrator.call(client, "chat", {"message": request},
                                f"{request}  (routed: the file is checked and uploaded, then the request goes to the agent)")
            await narrator.call(client, "chat", {"message": "add a title 'Summer Nights'"},
                                "add a title 'Summer Nights'  (the backend edits silently; the server reports the change)")
            await narrator.call(client, "chat", {"message": "what next?"},
                                "what next?  (the backend answers with GUI directions; the server translates them)")
            await narrator.call(client, "chat", {"message": "what's my balance?"}, "what's my balance?  (routed, no agent turn)")

            backend.sandbox.turn_seconds = 3.0  # a slow turn, to show the handle a host gets back
            working = await narrator.call(client, "chat", {"message": "make the music quieter", "wait_seconds": 1},
                                          "make the music quieter  (a long turn: the tool returns a handle in time)")
            await narrator.call(client, "wait", {"job_id": working.structured_content["job_id"]}, "(host keeps waiting)")
            await narrator.call(client, "state", {}, "show tracks")
            exported = await narrator.call(client, "export", {"output_dir": str(output_dir)}, "export it as an MP4")
        if not exported.is_error:
            narrator.say(f"\n🎞️  The MP4 is on disk: {exported.structured_content['path']}")
        narrator.say("Done. Everything above went over real HTTP to the embedded sandbox.")


def main(argv: Sequence[str] = ()) -> int:
    # The demo's HOME is temporary; the video goes where the user can find it afterwards.
    output_dir = Path(os.environ.get("NEMO_OUTPUT_DIR") or Path.cwd() / "demo-output").expanduser().resolve()
    anyio.run(run_demo, sys.stdout, output_dir)
    return 0
