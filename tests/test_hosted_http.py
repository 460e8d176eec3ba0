"""A hosted deployment end to end: two replicas of `nemovideo-mcp --transport http` over one store, a real
authorization server (oidc-provider) issuing the users' access tokens, the sandbox as NemoVideo. Each user
sees, follows and cancels only their own work, from whichever replica a request reaches."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import REPO, subprocess_env
from tests.oidc_issuer import Issuers, running_issuers
from tests.postgres_cluster import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.test_http_transport import INITIALIZE, free_port, http_server_process

pytestmark = pytest.mark.anyio

PUBLIC_URL = "https://video.example.test"  # the address behind the operator's proxy: the tokens' audience
SECRET_KEY = "a-deployment-key-of-at-least-32-characters"
GENERATE = "create a video of a city at night"


@pytest.fixture(scope="module")
def issuers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuers]:
    with running_issuers(tmp_path_factory.mktemp("oidc") / "issuers.log") as running:
        yield running


def hosted_env(env: dict[str, str], issuers: Issuers) -> dict[str, str]:
    return {**env, "NEMO_PUBLIC_URL": PUBLIC_URL, "NEMO_AUTH_ISSUER": issuers.oidc, "NEMO_SECRET_KEY": SECRET_KEY}


class Replica(str):
    """A replica's URL, with its process."""

    process: subprocess.Popen


@contextmanager
def replica(env: dict[str, str], log: Path) -> Iterator[Replica]:
    """One replica on a free port of this machine's every address (as in a container)."""
    with http_server_process(env, log, "--host", "0.0.0.0") as (port, process):
        url = Replica(f"http://127.0.0.1:{port}")
        url.process = process
        yield url


@contextmanager
def replicas(env: dict[str, str], tmp_path: Path, count: int) -> Iterator[list[Replica]]:
    with ExitStack() as stack:
        yield [stack.enter_context(replica(env, tmp_path / f"replica{number}.log")) for number in range(count)]


async def call(url: str, token: str, tool: str, arguments: dict | None = None):
    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
                Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client):
        return await client.call_tool(tool, arguments or {})


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request) -> dict[str, str]:
    """What the replicas share: a PostgreSQL database, or (replicas on one machine) the SQLite file."""
    return {"NEMO_DATABASE_URL": request.getfixturevalue("postgres_url")} if request.param == "postgresql" else {}


async def test_each_user_sees_and_follows_only_their_own_work_from_any_replica(
        sandbox, env, issuers, database, tmp_path) -> None:
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    bob = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="bob")
    with replicas({**hosted_env(env, issuers), **database}, tmp_path, 2) as (first, second):
        async with httpx2.AsyncClient() as http:
            for url in (first, second):
                assert (await http.get(f"{url}/healthz")).status_code == 200
                assert (await http.get(f"{url}/readyz")).json() == {"status": "ready"}
            refused = await http.post(f"{first}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                      headers={"Accept": "application/json, text/event-stream"})
            assert refused.status_code == 401
            assert "oauth-protected-resource/mcp" in refused.headers["www-authenticate"]

        sandbox.turn_seconds = 1.0
        sandbox.real_renders = False  # the download link is what is tested here, not the video
        working = await call(first, alice, "chat", {"message": GENERATE, "wait_seconds": 0})
        job_id = working.structured_content["job_id"]
        assert working.structured_content["status"] == "working"

        for tool in ("wait", "cancel"):
            stranger = await call(second, bob, tool, {"job_id": job_id, **({"wait_seconds": 0} if tool == "wait" else {})})
            assert stranger.is_error and "no job with that id" in stranger.content[0].text
        assert (await call(second, bob, "projects")).structured_content["projects"] == []

        done = await call(second, alice, "wait", {"job_id": job_id, "wait_seconds": 30})  # the other replica
        assert done.structured_content["status"] == "done", done.content[0].text
        assert not (await call(first, alice, "state")).structured_content["empty"]
        assert (await call(first, bob, "state")).structured_content["empty"]
        assert (await call(first, bob, "credits")).structured_content["available"] == 100  # his own free credits

        exported = await call(first, alice, "export", {"wait_seconds": 60})
        assert exported.structured_content["status"] == "done", exported.content[0].text
        link = exported.structured_content["download_url"]
        assert link.startswith(f"{PUBLIC_URL}/download/") and exported.structured_content["path"] is None
        assert [block.uri for block in exported.content if block.type == "resource_link"] == [link]
        async with httpx2.AsyncClient(timeout=60) as browser:  # no access token: the link says whose it is
            video = await browser.get(link.replace(PUBLIC_URL, second))  # served by the other replica
            assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
            [render_id] = sandbox.render_ids()
            assert video.content == sandbox.render_file(render_id).read_bytes()
            forged = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
            assert (await browser.get(forged.replace(PUBLIC_URL, first))).status_code == 404
    assert sandbox.count("/run_sse") == 1  # followed from the second replica, never sent again
    mints = {request.headers["x-client-id"] for request in sandbox.requests if request.path == "/api/auth/anonymous-token"}
    assert len(mints) == 2  # each user their own client id and token
    assert not list(Path(env["HOME"]).rglob("*.mp4"))  # nothing written on the server for the user


def test_a_hosted_server_will_not_start_without_what_it_needs(env, issuers) -> None:
    base = hosted_env(env, issuers)
    for missing, expected in (("NEMO_PUBLIC_URL", "NEMO_PUBLIC_URL"), ("NEMO_SECRET_KEY", "NEMO_SECRET_KEY")):
        started = subprocess.run(
            [sys.executable, "-m", "nemovideo_mcp", "--transport", "http", "--port", str(free_port())],
            cwd=REPO, env=subprocess_env({**base, missing: ""}), capture_output=True, text=True, timeout=30)
        assert started.returncode == 2 and expected in started.stderr, started.stderr
    over_stdio = subprocess.run([sys.executable, "-m", "nemovideo_mcp"], cwd=REPO, env=subprocess_env(base),
                                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert over_stdio.returncode == 2 and "--transport http" in over_stdio.stderr
    assert SECRET_KEY not in over_stdio.stderr


async def test_an_operator_reads_tool_calls_backend_answers_and_jobs_at_metrics(sandbox, env, issuers, tmp_path) -> None:
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    with replicas(hosted_env(env, issuers), tmp_path, 1) as (url,):
        await call(url, alice, "credits")
        await call(url, alice, "wait", {"job_id": "turn_000000000000", "wait_seconds": 0})
        await call(url, alice, "chat", {"message": GENERATE, "wait_seconds": 30})
        async with httpx2.AsyncClient() as http:
            text = (await http.get(f"{url}/metrics")).text  # no token: the operator's scraper has none
    assert 'nemovideo_tool_calls_total{outcome="ok",tool="credits"} 1.0' in text
    assert 'nemovideo_tool_calls_total{outcome="error",tool="wait"} 1.0' in text
    assert 'nemovideo_tool_seconds_count{tool="chat"} 1.0' in text
    assert 'nemovideo_backend_responses_total{status="200"}' in text
    assert 'nemovideo_jobs{kind="turn",state="done"} 1.0' in text


async def test_a_2025_client_is_served_by_any_replica_without_a_session(sandbox, env, issuers, tmp_path) -> None:
    """A 2025-era client initializes on one replica and calls a tool on the other: nothing binds it to the first
    (no Mcp-Session-Id to keep), as a load balancer without sticky sessions needs."""
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    headers = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {alice}",
               "mcp-protocol-version": "2025-06-18"}
    with replicas(hosted_env(env, issuers), tmp_path, 2) as (first, second):
        async with httpx2.AsyncClient(timeout=30) as http:
            initialized = await http.post(f"{first}/mcp", json=INITIALIZE, headers=headers)
            assert initialized.status_code == 200 and "mcp-session-id" not in initialized.headers
            called = await http.post(f"{second}/mcp", headers=headers, json={
                "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "credits", "arguments": {}}})
    assert called.status_code == 200, called.text
    assert '"available"' in called.text and '"isError":false' in called.text.replace(" ", "")
