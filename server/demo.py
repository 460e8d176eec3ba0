"""`python -m server demo`: the real MCP tools against the embedded sandbox, as a host sees them.

Everything runs offline: a sandbox backend on loopback, a private temporary HOME (so
the demo never touches the user's token or project), and an in-memory MCP client.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, TextIO

import anyio
from mcp import Client

from .cli import load_startup
from .sandbox import Sandbox, SandboxServer
from .service import VideoService
from .settings import Settings
from .tools import build_server

DEMO_DRAFT = {
    "t": [
        {"tt": 0, "sg": [{"st": 0, "d": 10000, "m": {"name": "city timelapse"}}]},
        {"tt": 1, "sg": [{"st": 0, "d": 10000, "m": {"name": "Lo-fi", "vol": 0.35, "role": "bgm"}}]},
        {"tt": 7, "sg": [{"st": 0, "d": 3000, "m": {"text": "Urban Dreams", "role": "title"}}]},
    ]
}


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
        if result.is_error:
            self.say(f"⚠️  tool error: {result.content[0].text}")
        else:
            self.say(f"🤖 host shows: {result.structured_content['summary']}")
        return result


async def run_demo(out: TextIO) -> None:
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

            # Until the `chat` tool lands, the sandbox stands in for a generated project.
            narrator.say("\n(sandbox: a project is created and filled with a generated 3-track draft)")
            service = VideoService(settings, identity)
            session = await service.sessions.ensure("create a video with visuals synced to this music track")
            await service.aclose()
            backend.sandbox.set_draft(session.session_id, DEMO_DRAFT)
            await narrator.call(client, "state", {}, "show tracks")

            backend.sandbox.inject(2001, "/api/credits")
            await narrator.call(client, "credits", {}, "what's my balance?")
        narrator.say("\nDone. Everything above went over real HTTP to the embedded sandbox.")


def main(argv: Sequence[str] = ()) -> int:
    anyio.run(run_demo, sys.stdout)
    return 0
