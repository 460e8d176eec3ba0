"""Real OAuth 2.1 authorization servers for the tests: `oidc-provider` (the certified OpenID Provider for Node.js)
run by tests/oidc/issuer.mjs, which says what the two issuers it starts are.

The npm package is installed once into the tests' cache (tests/npm_cache.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2

from tests.npm_cache import npm_installed

# 8.x is the line that supports Node 20 (the machine's); 9.x wants Node 22.
OIDC_PROVIDER = "oidc-provider@8.8.1"
SCRIPT = Path(__file__).resolve().parent / "oidc" / "issuer.mjs"
CLIENT = ("nemo-tests", "nemo-tests-secret")
STARTUP_SECONDS = 30.0


def oidc_provider_root() -> Path:
    """The folder where the pinned oidc-provider is installed, installing it the first time."""
    return npm_installed("oidc", OIDC_PROVIDER, why="the oidc-provider authorization server")


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on the loopback (all held at once, so none is handed out twice)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


class Issuers:
    """The two running issuers: `oidc` (OpenID Connect discovery) and `oauth` (RFC 8414 metadata only), with the
    same signing keys."""

    def __init__(self, oidc: str, oauth: str) -> None:
        self.oidc = oidc
        self.oauth = oauth
        # Every token handed out, for the check that none reaches a log.
        self.minted: list[str] = []

    def token(self, issuer: str, resource: str, scope: str = "video", user: str = CLIENT[0]) -> str:
        """An access token for `resource` from `issuer`, by the client_credentials grant of the client named `user`
        (nemo-tests, alice or bob; its `sub` is the client id)."""
        with httpx2.Client(timeout=10) as http:
            token_endpoint = http.get(f"{issuer}/.well-known/openid-configuration" if issuer == self.oidc else
                                      f"{issuer}/.well-known/oauth-authorization-server").json()["token_endpoint"]
            response = http.post(token_endpoint, auth=(user, f"{user}-secret"),
                                 data={"grant_type": "client_credentials", "resource": resource, "scope": scope})
        assert response.status_code == 200, response.text
        self.minted.append(response.json()["access_token"])
        return self.minted[-1]

    def rotate_keys(self) -> str:
        """Sign from now on with a new key, the old one still published; returns the new key's id."""
        with httpx2.Client(timeout=10) as http:
            response = http.post(f"{self.oidc}/rotate")
        response.raise_for_status()
        return response.json()["kid"]


def wait_for_discovery(process: subprocess.Popen, url: str, log: Path) -> None:
    """Poll `url` until it answers, backing off from 10 ms to 200 ms: Node starts in a few hundred ms here."""
    delay, deadline = 0.01, time.monotonic() + STARTUP_SECONDS
    with httpx2.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"the issuers exited with {process.returncode}:\n{log.read_text()}")
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    raise AssertionError(f"{url} did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


@contextmanager
def running_issuers(log: Path) -> Iterator[Issuers]:
    root = oidc_provider_root()
    ports = free_ports(2)
    issuers = Issuers(*(f"http://127.0.0.1:{port}" for port in ports))
    with log.open("w") as output:
        process = subprocess.Popen([shutil.which("node") or "node", str(SCRIPT), *map(str, ports)],
                                   env={**os.environ, "OIDC_PROVIDER_ROOT": str(root)},
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_discovery(process, f"{issuers.oidc}/.well-known/openid-configuration", log)
        wait_for_discovery(process, f"{issuers.oauth}/.well-known/oauth-authorization-server", log)
        yield issuers
    finally:
        process.terminate()
        process.wait(timeout=10)
