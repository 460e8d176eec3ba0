"""Cold start: spawn -> initialize -> tools/list, ours against a bare MCPServer with one tool.

Both run on this interpreter, alternated in one run so machine noise hits both alike.
Prints both medians and the ratio (target <= 1.10).

    python bench/coldstart.py [--rounds 25]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BARE_SERVER = """
from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")

@server.tool()
def ping() -> str:
    return "pong"

server.run()
"""

HANDSHAKE = "".join(
    json.dumps(message) + "\n"
    for message in (
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
    )
)


def time_one(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    process.stdin.write(HANDSHAKE)
    process.stdin.flush()
    for line in process.stdout:
        if json.loads(line).get("id") == 2:
            break
    elapsed = time.perf_counter() - started
    process.stdin.close()
    process.wait(timeout=30)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {"HOME": home, "PATH": os.environ.get("PATH", ""), "NEMO_API_URL": "http://127.0.0.1:9"}
        ours_command = [sys.executable, "-m", "nemovideo_mcp"]
        bare_command = [sys.executable, "-c", BARE_SERVER]
        # One warm-up each so both start from compiled bytecode.
        time_one(ours_command, env)
        time_one(bare_command, env)
        ours, bare = [], []
        for _ in range(args.rounds):
            ours.append(time_one(ours_command, env))
            bare.append(time_one(bare_command, env))
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    print(f"bare MCPServer (anchor): median {bare_median * 1000:.0f} ms over {args.rounds} runs")
    print(f"nemovideo-mcp:           median {ours_median * 1000:.0f} ms over {args.rounds} runs")
    print(f"ratio: {ours_median / bare_median:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
