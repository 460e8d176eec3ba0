"""Hosted mode under load: simulated users, each with their own access token, through two replicas.

Two `nemovideo-mcp --transport http` replicas in the team mode (one NemoVideo account) share a throwaway PostgreSQL cluster and trust a real
authorization server (oidc-provider, as in the tests); NemoVideo is the sandbox (placeholder renders,
instant turns). Each user, concurrently: chats a generation and a title with their own name, asks for
`state` and `credits` several times (measured), and exports, on the replica their number picks.

Users are paced the way a host paces its tool calls: its model writes between two calls, here for a time
drawn from `--think` (1 to 3 seconds by default, shorter than most models take); `--think 0-0` is a stress
figure instead: every user calling back to back, which no host does.

Prints completed/failed users; cross-talk (another user's title in a user's state or project list,
or a download that is not theirs: must be 0); for `credits` and `state`, p50/p95 of the hosted call's
time and of the same call through one local stdio server (the anchor: the same backend requests, no
network, no token check, no database), their difference (the hosted mode's overhead beyond the
backend's own time) and the ratio: with the replicas otherwise quiet, and under each load, where the
anchor makes its calls at the same time as the users' (one small machine also runs the load, NemoVideo's
imitation and the database, and both sides wait for its CPUs alike; the CPU seconds each process used are
printed beside it); and each replica's memory (RSS) after the first tenth of the users and after all
of them.

    python bench/hosted.py [--users 50] [--calls 5] [--think 1-3]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.oidc_issuer import running_issuers  # noqa: E402
from tests.postgres_cluster import Cluster  # noqa: E402
from tests.test_http_transport import free_port, wait_until_listening  # noqa: E402

PUBLIC_URL = "https://video.example.test"
TEAM_TOKEN = "nemo_sk_bench_team_account_000001"  # the sandbox takes any nemo_sk_ token as an account
MEASURED = ("credits", "state")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Pace:
    """The pause a host's model takes before each tool call: uniform in [low, high] seconds, from a seeded
    generator (one per user, so runs are comparable)."""

    def __init__(self, low: float, high: float, seed: int) -> None:
        self.low, self.high, self._random = low, high, random.Random(seed)

    async def think(self) -> None:
        if self.high > 0:
            await anyio.sleep(self._random.uniform(self.low, self.high))


async def user_flow(number: int, url: str, token: str, calls: int, pace: Pace, timings: dict[str, list[float]],
                    outcome: dict[int, str]) -> None:
    title = f"Film of user {number:03d}"
    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http,
                Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client):
        for message in ("create a video of a city at night", f'add a title "{title}"'):
            await pace.think()
            chat = await client.call_tool("chat", {"message": message, "wait_seconds": 60})
            if chat.is_error or chat.structured_content["status"] != "done":
                outcome[number] = f"chat: {chat.content[0].text[:120]}"
                return
        failure = await timed_calls(client, calls, timings, pace)
        if failure is not None:
            outcome[number] = failure
            return
        await pace.think()
        state = (await client.call_tool("state", {})).structured_content["summary"]
        listed = (await client.call_tool("projects", {})).structured_content["projects"]
        await pace.think()
        exported = await client.call_tool("export", {"wait_seconds": 120})
    others = [word for word in state.split('"') if word.startswith("Film of user") and word != title]
    if title not in state or others or len(listed) != 1:
        outcome[number] = f"cross-talk: {state!r} {len(listed)}"
        return
    link = (exported.structured_content or {}).get("download_url") or ""
    if exported.is_error or not link.startswith(f"{PUBLIC_URL}/download/"):
        outcome[number] = f"export: {exported.content[0].text[:120]}"
        return
    async with httpx2.AsyncClient(timeout=60) as browser:
        video = await browser.get(link.replace(PUBLIC_URL, url))
    outcome[number] = "ok" if video.status_code == 200 and video.content else f"download: HTTP {video.status_code}"


async def timed_calls(client: Client, calls: int, timings: dict[str, list[float]], pace: Pace) -> str | None:
    """Each measured tool `calls` times, in turn; the first error's text, if any."""
    for _ in range(calls):
        for tool in MEASURED:
            await pace.think()
            started = time.perf_counter()
            result = await client.call_tool(tool, {})
            timings[tool].append(time.perf_counter() - started)
            if result.is_error:
                return f"{tool}: {result.content[0].text[:120]}"
    return None


async def quiet(url: str, token: str, calls: int) -> dict[str, list[float]]:
    """One user's calls to a replica with nothing else to do."""
    timings: dict[str, list[float]] = {tool: [] for tool in MEASURED}
    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
                Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client):
        await client.call_tool("chat", {"message": 'create a video titled "Quiet"', "wait_seconds": 60})
        await timed_calls(client, calls, timings, Pace(0, 0, 0))
    return timings


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(tool: str, hosted: list[float], local: list[float], label: str) -> None:
    hosted_ms, local_ms = [value * 1000 for value in hosted], [value * 1000 for value in local]
    p50, p95 = percentile(hosted_ms, 0.5), percentile(hosted_ms, 0.95)
    a50, a95 = percentile(local_ms, 0.5), percentile(local_ms, 0.95)
    print(f"  {tool}, {label}: hosted p50 {p50:.1f} ms, p95 {p95:.1f} ms; local stdio (anchor) p50 {a50:.1f} ms, "
          f"p95 {a95:.1f} ms; overhead p50 {p50 - a50:.1f} ms, p95 {p95 - a95:.1f} ms; ratio p50 {p50 / a50:.2f}x "
          f"({len(hosted_ms)} and {len(local_ms)} calls)")


async def anchor(env: dict[str, str], calls: int, pace: Pace, timings: dict[str, list[float]]) -> None:
    """The same calls through one local stdio server: the backend's own time plus the least a server adds."""
    parameters = StdioServerParameters(command=sys.executable, args=["-m", "nemovideo_mcp", "--log-level", "WARNING"],
                                        env=env, cwd=str(REPO))
    async with Client(stdio_client(parameters)) as client:
        await client.call_tool("chat", {"message": 'create a video titled "Anchor"', "wait_seconds": 60})
        await timed_calls(client, calls, timings, pace)


def empty() -> dict[str, list[float]]:
    return {tool: [] for tool in MEASURED}


def start(stack: ExitStack, arguments: list[str], env: dict[str, str], log: Path) -> tuple[str, subprocess.Popen]:
    """`nemovideo-mcp` with `arguments` and a free `--port`, in a process of its own; its URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "nemovideo_mcp", *arguments, "--port", str(port)], cwd=REPO,
                               env=env, stdin=subprocess.DEVNULL, stdout=log.open("w"), stderr=subprocess.STDOUT)
    stack.callback(process.wait)
    stack.callback(process.terminate)
    wait_until_listening(process, port, log)
    return f"http://127.0.0.1:{port}", process


async def main_async(users: int, calls: int, think: tuple[float, float]) -> int:
    cluster = Cluster()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="nemovideo-bench-") as scratch:
        # NemoVideo in a process of its own, as it is: its work never shares this process with the users'.
        path = {"PATH": os.environ.get("PATH", "")}
        sandbox_url, sandbox_process = start(stack, ["sandbox"], path, Path(scratch) / "sandbox.log")
        httpx2.post(f"{sandbox_url}/_sandbox/config", json={"real_renders": False}).raise_for_status()
        cluster.initdb()
        cluster.start()
        stack.callback(cluster.remove)
        issuers = stack.enter_context(running_issuers(Path(scratch) / "issuers.log"))
        base = {**path, "HOME": str(Path(scratch) / "home"), "NEMO_API_URL": sandbox_url}
        hosted = {**base, "NEMO_PUBLIC_URL": PUBLIC_URL, "NEMO_AUTH_ISSUER": issuers.oidc,
                  "NEMO_SECRET_KEY": "bench-key-of-at-least-thirty-two-characters", "NEMO_DATABASE_URL": cluster.url(),
                  # The team mode: NemoVideo's allowance of about 10 anonymous tokens per address would stop
                  # the 11th user, and this measures the server, not that allowance.
                  "NEMO_TOKEN": TEAM_TOKEN}
        replicas = [start(stack, ["--transport", "http", "--log-level", "WARNING"], hosted,
                          Path(scratch) / f"replica{number}.log") for number in range(2)]
        tokens = [issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user=f"user{number}") for number in range(users)]
        processes = {"replica 0": replicas[0][1].pid, "replica 1": replicas[1][1].pid,
                     "NemoVideo (sandbox)": sandbox_process.pid, "the users (this process)": os.getpid()}

        async def load(label: str, low: float, high: float) -> bool:
            """Every user once, the first tenth first; the anchor's calls at the same time as the others'."""
            timings, during, outcome, memory = empty(), empty(), {}, []
            first_wave = max(1, users // 10)
            cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
            wall = time.perf_counter()
            for wave in (range(first_wave), range(first_wave, users)):
                async with anyio.create_task_group() as group:
                    if wave.start:
                        # Four times the calls at a quarter of the pause: the anchor's calls span the users' time.
                        group.start_soon(anchor, {**base, "HOME": str(Path(scratch) / "local-load")}, calls * 4,
                                         Pace(low / 4, high / 4, -1), during)
                    for number in wave:
                        group.start_soon(user_flow, number, replicas[number % 2][0], tokens[number], calls,
                                         Pace(low, high, number), timings, outcome)
                memory.append([rss_mb(process.pid) for _, process in replicas])
            wall = time.perf_counter() - wall
            cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in processes.items()}
            failed = {number: reason for number, reason in outcome.items() if reason != "ok"}
            cross_talk = sum(reason.startswith("cross-talk") for reason in failed.values())
            print(f"{label}: users {users}, completed {users - len(failed)}, failed {len(failed)}, "
                  f"cross-talk {cross_talk}")
            for number, reason in sorted(failed.items())[:5]:
                print(f"  user {number}: {reason}")
            for tool in MEASURED:
                report(tool, timings[tool], during[tool], label)
            print(f"  CPU ({wall:.1f} s of wall time, {os.cpu_count()} cores): "
                  + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu.items()))
            for number, (early, late) in enumerate(zip(*memory)):
                print(f"  replica {number}: RSS {early:.0f} MB after {first_wave} users, {late:.0f} MB after {users}")
            return not failed

        quiet_user = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")  # none of the load's users
        alone, local = await quiet(replicas[0][0], quiet_user, calls * 8), empty()
        await anchor({**base, "HOME": str(Path(scratch) / "local")}, calls * 8, Pace(0, 0, 0), local)
        for tool in MEASURED:
            report(tool, alone[tool], local[tool], "one user, replicas otherwise quiet")
        label = f"{users} users, {think[0]:g} to {think[1]:g} s between calls" if think[1] else \
            f"{users} users calling back to back (stress)"
        return 0 if await load(label, *think) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--think", default="1-3", help="seconds a host's model writes between two calls: LOW-HIGH")
    args = parser.parse_args()
    low, high = (float(value) for value in args.think.split("-"))
    return anyio.run(main_async, args.users, args.calls, (low, high))


if __name__ == "__main__":
    sys.exit(main())
