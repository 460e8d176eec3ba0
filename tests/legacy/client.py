"""A 2025-era host: the mcp 1.x SDK's `ClientSession` over stdio (run by tests/test_legacy_client.py in its own
environment, since the project itself needs mcp 2.x). Starts the server as given on the command line, calls
`chat` and `export`, and prints one JSON line of what it got."""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(command: str, *args: str) -> None:
    params = StdioServerParameters(command=command, args=list(args), env=json.loads(sys.stdin.read()))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        initialized = await session.initialize()
        chat = await session.call_tool("chat", {"message": "create a video with visuals synced to this music track"})
        export = await session.call_tool("export", {})
    print(json.dumps({
        "protocol": initialized.protocolVersion,
        "extensions": getattr(initialized.capabilities, "extensions", None),
        "chat": chat.model_dump(mode="json", by_alias=True, exclude_none=True),
        "export": export.model_dump(mode="json", by_alias=True, exclude_none=True),
    }))


asyncio.run(main(*sys.argv[1:]))
