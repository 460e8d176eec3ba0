"""Hosted mode under load: simulated users, each with their own access token, through two replicas.

Two `nemovideo-mcp --transport http` replicas in the team mode (one NemoVideo account) share a throwaway PostgreSQL cluster and trust a real
authorization server (oidc-provider, as in the tests); NemoVideo is the sandbox (placeholder renders,
instant turns). Each user, concurrently: chats a generation and a title with their own name, asks for
`state` and `credits` several times (measured), and exports, on the replica their number picks.

Prints completed/failed users; cross-talk (another user's title in a user's state or project list,
or a download that is not theirs: must be 0); for `credits` and `state`, p50/p95 of the hosted call's
time and of the same call through one local stdio server (the anchor: the same backend requests, no
network, no token check, no database), their difference (the hosted mode's overhead beyond the
backend's own time) and the ratio, twice: measured by one user's calls while the replicas are
otherwise quiet, and while all the users run at once (on one small machine that also runs the load,
NemoVideo's imitation and the database, so the second adds waiting for a CPU: the CPU seconds each
process used are printed beside it); and each replica's memory (RSS) after the first tenth of the
users and after all of them.

    python bench/hosted.py [--users 50] [--calls 5]
"""

from __future__ import annotations

import argparse
import os
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


async def user_flow(number: int, url: str, token: str, calls: int, timings: dict[str, list[float]],
                    outcome: dict[int, str]) -> None:
    title = f"Film of user {number:03d}"
    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as http,
                Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client):
        for message in ("create a video of a city at night", f'add a title "{title}"'):
            chat = await client.call_tool("chat", {"message": message, "wait_seconds": 60})
            if chat.is_error or chat.structured_content["status"] != "done":
                outcome[number] = f"chat: {chat.content[0].text[:120]}"
                return
        failure = await timed_calls(client, calls, timings)
        if failure is not None:
            outcome[number] = failure
            return
        state = (await client.call_tool("state", {})).structured_content["summary"]
        listed = (await client.call_tool("projects", {})).structured_content["projects"]
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


async def timed_calls(client: Client, calls: int, timings: dict[str, list[float]]) -> str | None:
    """Each measured tool `calls` times, in turn; the first error's text, if any."""
    for _ in range(calls):
        for tool in MEASURED:
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
        await timed_calls(client, calls, timings)
    return timings


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(tool: str, hosted: list[float], local: list[float], label: str) -> None:
    hosted_ms, local_ms = [value * 1000 for value in hosted], [value * 1000 for value in local]
    p50, p95 = percentile(hosted_ms, 0.5), percentile(hosted_ms, 0.95)
    a50, a95 = percentile(local_ms, 0.5), percentile(local_ms, 0.95)
    print(f"{tool}, {label}: hosted p50 {p50:.1f} ms, p95 {p95:.1f} ms; local stdio (anchor) p50 {a50:.1f} ms, "
          f"p95 {a95:.1f} ms; overhead p50 {p50 - a50:.1f} ms, p95 {p95 - a95:.1f} ms; ratio p50 {p50 / a50:.2f}x "
          f"({len(hosted_ms)} and {len(local_ms)} calls)")


async def anchor(env: dict[str, str], calls: int) -> dict[str, list[float]]:
    """The same calls through one local stdio server: the backend's own time plus the least a server adds."""
    timings: dict[str, list[float]] = {tool: [] for tool in MEASURED}
    parameters = StdioServerParameters(command=sys.executable, args=["-m", "nemovideo_mcp", "--log-level", "WARNING"],
                                        env=env, cwd=str(REPO))
    async with Client(stdio_client(parameters)) as client:
        await client.call_tool("chat", {"message": 'create a video titled "Anchor"', "wait_seconds": 60})
        await timed_calls(client, calls, timings)
    return timings


def start(stack: ExitStack, arguments: list[str], env: dict[str, str], log: Path) -> tuple[str, subprocess.Popen]:
    """`nemovideo-mcp` with `arguments` and a free `--port`, in a process of its own; its URL."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "nemovideo_mcp", *arguments, "--port", str(port)], cwd=REPO,
                               env=env, stdin=subprocess.DEVNULL, stdout=log.open("w"), stderr=subprocess.STDOUT)
    stack.callback(process.wait)
    stack.callback(process.terminate)
    wait_until_listening(process, port, log)
    return f"http://127.0.0.1:{port}", process


async def main_async(users: int, calls: int) -> int:
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

        timings: dict[str, list[float]] = {tool: [] for tool in MEASURED}
        outcome: dict[int, str] = {}
        memory: list[list[float]] = []
        first_wave = max(1, users // 10)
        processes = {"replica 0": replicas[0][1].pid, "replica 1": replicas[1][1].pid,
                     "NemoVideo (sandbox)": sandbox_process.pid, "the users (this process)": os.getpid()}
        cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        wall = time.perf_counter()
        for wave in (range(first_wave), range(first_wave, users)):
            async with anyio.create_task_group() as group:
                for number in wave:
                    url = replicas[number % 2][0]
                    group.start_soon(user_flow, number, url, tokens[number], calls, timings, outcome)
            memory.append([rss_mb(process.pid) for _, process in replicas])
        wall = time.perf_counter() - wall
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in processes.items()}
        alone = await quiet(replicas[0][0], tokens[0], calls * 8)
        local = await anchor({**base, "HOME": str(Path(scratch) / "local")}, calls * 8)

    failed = {number: reason for number, reason in outcome.items() if reason != "ok"}
    cross_talk = sum(reason.startswith("cross-talk") for reason in failed.values())
    print(f"users: {users}, completed {users - len(failed)}, failed {len(failed)}, cross-talk {cross_talk}")
    for number, reason in sorted(failed.items())[:5]:
        print(f"  user {number}: {reason}")
    for tool in MEASURED:
        report(tool, alone[tool], local[tool], "one user, replicas otherwise quiet")
    for tool in MEASURED:
        report(tool, timings[tool], local[tool], f"all {users} users at once")
    print(f"CPU while the users ran ({wall:.1f} s of wall time, {os.cpu_count()} cores): "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu.items()))
    for number, (early, late) in enumerate(zip(*memory)):
        print(f"replica {number}: RSS {early:.0f} MB after {first_wave} users, {late:.0f} MB after {users}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    return anyio.run(main_async, args.users, args.calls)


if __name__ == "__main__":
    sys.exit(main())
