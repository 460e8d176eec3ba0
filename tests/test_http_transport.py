"""`--transport http`: the same server over streamable HTTP, reached with `mcp.Client`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from nemovideo_mcp.texts import APP_TOOLS
from nemovideo_mcp.variants import TOOLS
from tests.conftest import REPO, subprocess_env

STARTUP_SECONDS = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(process: subprocess.Popen, port: int, log: Path) -> bool:
    """True once the server listens; False when another program took the free port first (between the probe that
    found it and the server's bind: tests run in parallel), so the caller starts it again on another."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if "address already in use" in log.read_text():
                return False
            pytest.fail(f"the server exited with {process.returncode} before listening:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.02)  # the port cannot be awaited; a short poll interval keeps startup latency honest
    pytest.fail(f"the server did not listen on port {port} within {STARTUP_SECONDS} s:\n{log.read_text()}")


@contextmanager
def http_server(env: dict[str, str], log: Path, *args: str) -> Iterator[int]:
    """`nemovideo-mcp --transport http` with `args`, listening on a free port (yielded) until the block ends."""
    with http_server_process(env, log, *args) as (port, _):
        yield port


@contextmanager
def http_server_process(env: dict[str, str], log: Path, *args: str) -> Iterator[tuple[int, subprocess.Popen]]:
    """`http_server`, with its process."""
    for _ in range(3):
        port = free_port()
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "nemovideo_mcp", "--transport", "http", "--port", str(port), *args],
                cwd=REPO, env=subprocess_env(env), stdin=subprocess.DEVNULL, stdout=output, stderr=output,
            )
        try:
            listening = wait_until_listening(process, port, log)
        except BaseException:
            _stop(process)
            raise
        if listening:
            break
    else:
        pytest.fail(f"another program took the server's free port three times:\n{log.read_text()}")
    try:
        yield port, process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}


def assert_another_sites_page_is_refused(port: int) -> None:
    """A DNS-rebinding page sends its own Host and Origin: refused, while this machine's own names are served."""
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    with httpx2.Client(timeout=10) as http:
        url = f"http://127.0.0.1:{port}/mcp"
        assert http.post(url, json=INITIALIZE, headers=headers).status_code == 200
        assert http.post(url, json=INITIALIZE, headers={**headers, "host": f"rebound.example:{port}"}).status_code == 421
        assert http.post(url, json=INITIALIZE, headers={**headers, "origin": "http://rebound.example"}).status_code == 403


@pytest.mark.anyio
async def test_tools_over_streamable_http_and_a_page_of_another_site_cannot_reach_them(
    env: dict[str, str], tmp_path: Path, sandbox
) -> None:
    """On loopback (the default); one server process for both checks, as each start costs ~1 s of CPU."""
    with http_server(env, tmp_path / "server.log") as port:
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            credits = await client.call_tool("credits", {})
        assert tools == {tool.name for tool in (*TOOLS, *APP_TOOLS)}
        assert not credits.is_error and credits.structured_content["total"] == 100
        assert sandbox.count("/api/credits") == 1
        assert sandbox.requests[-1].headers["x-skill-source"] == "generator-from-music"
        assert_another_sites_page_is_refused(port)
    assert '"POST /mcp HTTP/1.1" 200' in (tmp_path / "server.log").read_text()  # request lines at INFO


def test_a_network_address_is_refused_without_the_explicit_flag(env: dict[str, str]) -> None:
    """Issue 15, item 16: off loopback, anyone could spend the user's credits; on 656501e it listened."""
    done = subprocess.run(
        [sys.executable, "-m", "nemovideo_mcp", "--transport", "http", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=REPO, env=subprocess_env(env), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=STARTUP_SECONDS,
    )
    assert done.returncode == 2
    assert "Refusing to listen on 0.0.0.0" in done.stderr and "--allow-network-without-auth" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_page_of_another_site_cannot_reach_the_server_on_the_network(env: dict[str, str], tmp_path: Path) -> None:
    """`--host 0.0.0.0 --allow-network-without-auth`; the loopback case is checked with the tools above."""
    with http_server(env, tmp_path / "server.log", "--host", "0.0.0.0", "--allow-network-without-auth",
                     "--log-level", "WARNING") as port:
        assert_another_sites_page_is_refused(port)
    assert "POST /mcp" not in (tmp_path / "server.log").read_text()  # no request lines below INFO


def test_the_address_it_listens_on_and_this_machines_names_are_served() -> None:
    """Found by review: clients of `--host 127.0.0.2`, or of the machine's own address on 0.0.0.0, got 421."""
    import socket

    from nemovideo_mcp.cli import http_security

    assert "127.0.0.2:*" in http_security("127.0.0.2", allow_network=False).allowed_hosts
    assert "[::1]:*" in http_security("::1", allow_network=False).allowed_hosts
    network = http_security("0.0.0.0", allow_network=True)
    assert f"{socket.gethostname()}:*" in network.allowed_hosts and "0.0.0.0:*" not in network.allowed_hosts
    assert "http://rebound.example:*" not in network.allowed_origins
