"""Export latency and polling cost for a 45 s render.

A standalone sandbox renders in `--render-seconds`; `--runs` MCP servers (each its own
process and HOME) export at once. For each run it prints the time from the render's
completion to the file on disk, and the status requests per 5 s of rendering.
The anchor is the seeds' cadence (a poll every 30 s): 0.17 requests per 5 s and, on
average, 15 s from completion to the next poll, before the download even starts.
Targets: completion-to-file <= 2 s median, <= 1 status request per 5 s on average.

    python bench/export.py [--render-seconds 45] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def control(base: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read() or b"null")


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("sandbox did not start")


async def one_export(base: str, home: Path, render_seconds: float) -> tuple[float, float]:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", ""), "NEMO_API_URL": base,
           "NEMO_OUTPUT_DIR": str(home / "out")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "nemovideo_mcp"], env=env, cwd=REPO)
    async with Client(params) as client:
        await client.call_tool("chat", {"message": "create a video with visuals synced to this music track"})
        started = time.monotonic()
        result = await client.call_tool("export", {"wait_seconds": render_seconds + 60})
        landed = time.monotonic()
    if result.is_error or result.structured_content["status"] != "done":
        raise SystemExit(f"export failed: {result.content[0].text}")
    # The render starts right after `started` (one state read, one POST); this overstates the latency slightly.
    return landed - (started + render_seconds), landed - started


async def run(base: str, runs: int, render_seconds: float, root: Path) -> list[tuple[float, float]]:
    results: list[tuple[float, float]] = [(0.0, 0.0)] * runs

    async def slot(index: int) -> None:
        results[index] = await one_export(base, root / f"home{index}", render_seconds)

    async with anyio.create_task_group() as group:
        for index in range(runs):
            group.start_soon(slot, index)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--render-seconds", type=float, default=45.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    sandbox = subprocess.Popen([sys.executable, "-m", "nemovideo_mcp", "sandbox", "--port", str(port),
                                "--render-seconds", str(args.render_seconds)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as root:
            results = anyio.run(run, base, args.runs, args.render_seconds, Path(root))
        polls = sum(1 for r in control(base, "/_sandbox/requests")["data"]["requests"]
                    if r["method"] == "GET" and r["path"].startswith("/api/render/proxy/lambda/"))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    latencies = [latency for latency, _ in results]
    per_five = polls / args.runs / (args.render_seconds / 5)
    print(f"{args.runs} exports of a {args.render_seconds:.0f} s render, in parallel")
    print("completion-to-file: " + ", ".join(f"{value:.2f} s" for value in latencies)
          + f"; median {statistics.median(latencies):.2f} s (target <= 2 s; 30 s polling: 15 s on average)")
    print(f"status requests: {polls} in all, {per_five:.2f} per 5 s of rendering "
          f"(target <= 1; 30 s polling: {5 / 30:.2f}); ratio to the 30 s anchor {per_five / (5 / 30):.1f}x")


if __name__ == "__main__":
    main()
