"""Upload throughput and memory: a 1 GiB file to a standalone sandbox.

Alternates, in one run, `curl -F files=@…` (the anchor) and the `upload` tool of a
`python -m nemovideo_mcp` process, and reads that process's peak RSS (VmHWM) before and
after its uploads. Targets: >= 0.9x curl's throughput, peak RSS growth <= 32 MiB.

    python bench/upload.py [--size-mib 1024] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export import REPO, free_port, wait_for_port  # noqa: E402  (bench/ is not a package)


def api(base: str, path: str, body: dict | None = None, headers: dict | None = None) -> dict:
    request = urllib.request.Request(base + path, data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())["data"]


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def server_pid() -> int:
    """Our `python -m nemovideo_mcp` child (the MCP client spawned it; it does not expose the pid)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and command[1:3] == [b"-m", b"nemovideo_mcp"] and b"sandbox" not in command:
            return int(entry.name)
    raise RuntimeError("server process not found")


def curl_upload(base: str, token: str, session_id: str, path: Path) -> float:
    os.sync()  # the sandbox spools each upload to disk: start both tools with no writeback pending
    started = time.perf_counter()
    subprocess.run(
        ["curl", "-sS", "-f", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
         "-F", f"files=@{path};type=video/mp4", f"{base}/api/upload-video/nemo_agent/me/{session_id}"],
        check=True,
    )
    return time.perf_counter() - started


async def ours(base: str, home: Path, path: Path, rounds: int, curl_times: list[float], curl_args) -> tuple[list[float], int]:
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", ""), "NEMO_API_URL": base, "NEMO_MAX_UPLOAD_MB": "4096"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "nemovideo_mcp"], env=env, cwd=REPO)
    times = []
    async with Client(params) as client:
        await client.call_tool("upload", {"sources": [str(home / "warmup.mp3")]})
        pid = server_pid()
        before = peak_rss_kib(pid)
        async def upload_ours() -> None:
            os.sync()
            started = time.perf_counter()
            result = await client.call_tool("upload", {"sources": [str(path)]})
            times.append(time.perf_counter() - started)
            if result.is_error:
                raise SystemExit(result.content[0].text)

        for round_number in range(rounds):
            # Alternate who goes first, so neither always follows the other's disk traffic.
            if round_number % 2:
                await upload_ours()
            curl_times.append(await anyio.to_thread.run_sync(curl_upload, *curl_args))
            if not round_number % 2:
                await upload_ours()
        growth = peak_rss_kib(pid) - before
    return times, growth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed as the anchor")
    port = free_port()
    sandbox = subprocess.Popen([sys.executable, "-m", "nemovideo_mcp", "sandbox", "--port", str(port)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        api(base, "/_sandbox/config", {"max_upload_bytes": 8 * 1024 ** 3})
        token = api(base, "/api/auth/anonymous-token", headers={"X-Client-Id": str(uuid.uuid4())})["token"]
        session_id = api(base, "/api/tasks/me/with-session/nemo_agent", {"task_name": "project", "language": "en"},
                         {"Authorization": f"Bearer {token}"})["session_id"]
        with tempfile.TemporaryDirectory() as root:
            home = Path(root)
            (home / "warmup.mp3").write_bytes(b"\x01" * 4096)
            path = home / "big.mp4"
            with path.open("wb") as handle:
                block = os.urandom(1024 * 1024)
                for _ in range(args.size_mib):
                    handle.write(block)
            curl_times: list[float] = []
            our_times, growth_kib = anyio.run(ours, base, home, path, args.rounds, curl_times,
                                              (base, token, session_id, path))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    size_mb = args.size_mib * 1024 * 1024 / 1e6
    curl_rate, our_rate = size_mb / statistics.median(curl_times), size_mb / statistics.median(our_times)
    print(f"{args.size_mib} MiB file, {args.rounds} rounds each, alternated")
    print(f"curl -F (anchor): median {curl_rate:.0f} MB/s")
    print(f"upload tool:      median {our_rate:.0f} MB/s")
    print(f"ratio: {our_rate / curl_rate:.2f}x curl (target >= 0.9)")
    print(f"server peak RSS growth during uploads: {growth_kib / 1024:.1f} MiB (target <= 32 MiB)")


if __name__ == "__main__":
    main()
