"""Hosted mode's OAuth 2.1 resource server (nemovideo_mcp.oauth), end to end: tokens issued by a real
authorization server (oidc-provider, tests/oidc_issuer.py) presented to a real MCP Streamable HTTP server (the SDK's
app under uvicorn, on the loopback) whose one tool answers with the caller's user id.

The server's public URL is a name that is never resolved: it is the resource tokens are issued for, while the
tests reach the server on 127.0.0.1, as a reverse proxy would. Times are checked on a clock the test moves.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import anyio
import httpx2
import jwt
import pytest
import uvicorn
from jwt.utils import base64url_decode, base64url_encode
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer

from nemovideo_mcp.oauth import LEEWAY_SECONDS, REFETCH_INTERVAL_SECONDS, JwtTokenVerifier, auth_settings, user_id_of
from tests.oidc_issuer import Issuers, free_ports, running_issuers

PUBLIC_URL = "https://video.example.test"
RESOURCE = f"{PUBLIC_URL}/mcp"
METADATA_URL = f"{PUBLIC_URL}/.well-known/oauth-protected-resource/mcp"
# What oidc-provider issues: tokens valid for 300 s, with nbf = iat.
TOKEN_SECONDS = 300
# A JSON-RPC request: the bearer check answers before the body is read.
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@pytest.fixture(scope="module")
def issuers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuers]:
    with running_issuers(tmp_path_factory.mktemp("oidc") / "issuers.log") as running:
        yield running


@pytest.fixture(autouse=True)
def no_token_is_logged(issuers: Issuers, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for token in issuers.minted:
        assert token not in caplog.text
        # Nor its signature, the part that makes it a credential.
        assert token.rsplit(".", 1)[1] not in caplog.text


class Clock:
    """The wall clock, moved by `offset` seconds."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def serving(verifier: JwtTokenVerifier, scopes: str = "video") -> AsyncIterator[str]:
    """An MCP server checking tokens with `verifier`, served on a loopback port; yields its base URL."""
    server = MCPServer("oauth-test", auth=auth_settings(PUBLIC_URL, verifier.issuer, scopes), token_verifier=verifier)

    @server.tool()
    def whoami() -> str:
        token = get_access_token()
        assert token is not None
        return user_id_of(token)

    # Listening before uvicorn starts: a request sent meanwhile waits in the backlog, so there is nothing to poll.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    web = uvicorn.Server(uvicorn.Config(server.streamable_http_app(), log_config=None))
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(web.serve, [listener])
            try:
                yield f"http://127.0.0.1:{listener.getsockname()[1]}"
            finally:
                web.should_exit = True
    finally:
        listener.close()


async def whoami(url: str, token: str) -> str:
    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
                Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client):
        result = await client.call_tool("whoami", {})
    assert not result.is_error, result.content
    return result.structured_content["result"]


async def post(url: str, token: str | None) -> httpx2.Response:
    headers = {"Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient() as http:
        return await http.post(f"{url}/mcp", json=PING, headers=headers)


def assert_refused(response: httpx2.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert f'resource_metadata="{METADATA_URL}"' in response.headers["www-authenticate"]


@pytest.mark.anyio
async def test_a_token_issued_for_this_server_reaches_the_tool_with_the_callers_user_id(issuers: Issuers) -> None:
    async with serving(JwtTokenVerifier(issuers.oidc, RESOURCE)) as url:
        # A client_credentials token speaks for the client: oidc-provider makes its id the subject.
        assert await whoami(url, issuers.token(issuers.oidc, RESOURCE)) == f"{issuers.oidc}|nemo-tests"


@pytest.mark.anyio
async def test_without_a_token_the_answer_is_401_naming_the_metadata_that_names_the_issuer(issuers: Issuers) -> None:
    async with serving(JwtTokenVerifier(issuers.oidc, RESOURCE)) as url:
        assert_refused(await post(url, None))
        # RFC 9728 §3.1: the metadata's path is the resource's, after the well-known prefix.
        async with httpx2.AsyncClient() as http:
            metadata = (await http.get(f"{url}/.well-known/oauth-protected-resource/mcp")).json()
    assert metadata["resource"] == RESOURCE
    assert metadata["authorization_servers"] == [issuers.oidc]
    assert metadata["scopes_supported"] == ["video"]


@pytest.mark.anyio
async def test_a_token_issued_for_another_resource_is_refused(issuers: Issuers) -> None:
    async with serving(JwtTokenVerifier(issuers.oidc, RESOURCE)) as url:
        assert_refused(await post(url, issuers.token(issuers.oidc, "https://other.example.test/mcp")))
        assert_refused(await post(url, "not-a-jwt"))


@pytest.mark.anyio
async def test_a_token_altered_after_issue_is_refused(issuers: Issuers) -> None:
    header, payload, signature = issuers.token(issuers.oidc, RESOURCE).split(".")
    claims = json.loads(base64url_decode(payload))
    unsigned = base64url_encode(json.dumps({**jwt.get_unverified_header(f"{header}.{payload}.{signature}"),
                                            "alg": "none"}).encode()).decode()
    another_user = base64url_encode(json.dumps({**claims, "sub": "someone-else"}).encode()).decode()
    async with serving(JwtTokenVerifier(issuers.oidc, RESOURCE)) as url:
        assert_refused(await post(url, f"{unsigned}.{payload}."))
        assert_refused(await post(url, f"{header}.{another_user}.{signature}"))


@pytest.mark.anyio
async def test_a_token_of_another_issuer_is_refused_though_signed_with_the_same_keys(issuers: Issuers) -> None:
    async with serving(JwtTokenVerifier(issuers.oidc, RESOURCE)) as url:
        assert_refused(await post(url, issuers.token(issuers.oauth, RESOURCE)))
    # The other way round, with an issuer found by its RFC 8414 metadata (it publishes no OpenID configuration).
    async with serving(JwtTokenVerifier(issuers.oauth, RESOURCE)) as url:
        assert await whoami(url, issuers.token(issuers.oauth, RESOURCE)) == f"{issuers.oauth}|nemo-tests"
        assert_refused(await post(url, issuers.token(issuers.oidc, RESOURCE)))


@pytest.mark.anyio
async def test_a_token_is_refused_once_expired_and_before_it_is_valid(issuers: Issuers) -> None:
    clock = Clock()
    async with serving(JwtTokenVerifier(issuers.oidc, RESOURCE, clock=clock)) as url:
        token = issuers.token(issuers.oidc, RESOURCE)
        # Within the leeway on either side the token still serves: clocks differ a little.
        for offset in (TOKEN_SECONDS + LEEWAY_SECONDS - 5, -LEEWAY_SECONDS + 5):
            clock.offset = offset
            assert await whoami(url, token) == f"{issuers.oidc}|nemo-tests"
        for offset in (TOKEN_SECONDS + LEEWAY_SECONDS + 5, -LEEWAY_SECONDS - 5):
            clock.offset = offset
            assert_refused(await post(url, token))


@pytest.mark.anyio
async def test_a_token_without_a_required_scope_is_403_insufficient_scope(issuers: Issuers) -> None:
    async with serving(JwtTokenVerifier(issuers.oidc, RESOURCE), scopes="video, other") as url:
        response = await post(url, issuers.token(issuers.oidc, RESOURCE, scope="video"))
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        assert await whoami(url, issuers.token(issuers.oidc, RESOURCE, scope="other video")) \
            == f"{issuers.oidc}|nemo-tests"


@pytest.mark.anyio
async def test_after_the_issuer_rotates_its_key_new_tokens_are_accepted_without_a_restart(issuers: Issuers) -> None:
    clock = Clock()
    async with serving(JwtTokenVerifier(issuers.oidc, RESOURCE, clock=clock)) as url:
        before = issuers.token(issuers.oidc, RESOURCE)
        assert await whoami(url, before) == f"{issuers.oidc}|nemo-tests"
        kid = issuers.rotate_keys()
        after = issuers.token(issuers.oidc, RESOURCE)
        assert jwt.get_unverified_header(after)["kid"] == kid != jwt.get_unverified_header(before)["kid"]
        # The keys were fetched a moment ago: an unknown key makes them be fetched again only after the interval
        # (else made-up key ids would have the server hammer its issuer).
        assert_refused(await post(url, after))
        clock.offset = REFETCH_INTERVAL_SECONDS
        assert await whoami(url, after) == f"{issuers.oidc}|nemo-tests"
        # The old key is still published, so the tokens it signed still serve.
        assert await whoami(url, before) == f"{issuers.oidc}|nemo-tests"


@pytest.mark.anyio
async def test_an_issuer_out_of_reach_is_logged_and_its_tokens_refused(
        issuers: Issuers, caplog: pytest.LogCaptureFixture) -> None:
    [port] = free_ports(1)
    absent = f"http://127.0.0.1:{port}"
    async with serving(JwtTokenVerifier(absent, RESOURCE)) as url:
        assert_refused(await post(url, issuers.token(issuers.oidc, RESOURCE)))
    assert f"the keys of {absent} could not be fetched" in caplog.text


@pytest.mark.anyio
async def test_the_verified_token_keeps_its_text_out_of_reprs_and_dumps(issuers: Issuers) -> None:
    token = issuers.token(issuers.oidc, RESOURCE)
    verified = await JwtTokenVerifier(issuers.oidc, RESOURCE).verify_token(token)
    assert verified is not None and verified.token == token
    assert token not in repr(verified) and token not in verified.model_dump_json()
    assert verified.scopes == ["video"] and verified.resource == RESOURCE and verified.client_id == "nemo-tests"


def test_scopes_are_read_from_scope_and_from_scp_as_okta_and_entra_send_them() -> None:
    from nemovideo_mcp.oauth import _Claims

    base = {"iss": "https://login.example", "sub": "alice", "exp": 2_000_000_000.0}
    assert _Claims.model_validate({**base, "scope": "video.read video.write"}).scopes == ["video.read", "video.write"]
    assert _Claims.model_validate({**base, "scp": ["video.read", "video.write"]}).scopes == ["video.read", "video.write"]
    assert _Claims.model_validate({**base, "scp": "video.read"}).scopes == ["video.read"]


@pytest.mark.anyio
@pytest.mark.parametrize("written", ["with", "without"])
async def test_an_issuer_whose_identifier_ends_with_a_slash_is_trusted_however_the_operator_wrote_it(written) -> None:
    """Found by review: Auth0's identifiers end with "/" (https://TENANT.auth0.com/), and a trailing "/" removed
    from NEMO_AUTH_ISSUER made every token of such an issuer refused. A minimal real issuer: discovery and JWKS
    over HTTP, tokens signed with its key."""
    import json
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    from nemovideo_mcp.oauth import JwtTokenVerifier
    from nemovideo_mcp.settings import Settings

    key = ec.generate_private_key(ec.SECP256R1())
    public = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())), "kid": "k1", "alg": "ES256"}
    documents: dict[str, dict] = {}

    class Issuer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(documents.get(self.path, {})).encode()
            self.send_response(200 if self.path in documents else 404)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Issuer)
    identifier = f"http://127.0.0.1:{server.server_address[1]}/"
    documents["/.well-known/openid-configuration"] = {"issuer": identifier, "jwks_uri": identifier + "jwks"}
    documents["/jwks"] = {"keys": [public]}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        configured = identifier if written == "with" else identifier.rstrip("/")
        settings = Settings.from_env({"HOME": "/tmp", "NEMO_AUTH_ISSUER": configured, "NEMO_PUBLIC_URL": PUBLIC_URL})
        verifier = JwtTokenVerifier(settings.auth_issuer, f"{PUBLIC_URL}/mcp")
        now = int(time.time())
        token = jwt.encode({"iss": identifier, "sub": "auth0|alice", "aud": f"{PUBLIC_URL}/mcp", "exp": now + 300,
                            "iat": now}, key, algorithm="ES256", headers={"kid": "k1"})
        assert await verifier.verify_token(token) is not None
        other = jwt.encode({"iss": identifier + "x", "sub": "auth0|alice", "aud": f"{PUBLIC_URL}/mcp", "exp": now + 300,
                            "iat": now}, key, algorithm="ES256", headers={"kid": "k1"})
        assert await verifier.verify_token(other) is None  # still exactly one issuer
    finally:
        server.shutdown()
        server.server_close()
