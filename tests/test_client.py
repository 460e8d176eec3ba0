"""The backend client against the sandbox over real loopback HTTP: auth, retries, error mapping."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import anyio
import anyio.abc
import pytest
from pydantic import SecretStr

from nemovideo_mcp import errors
from nemovideo_mcp.client import NemoClient
from nemovideo_mcp.identity import SkillIdentity
from nemovideo_mcp.sandbox import Sandbox
from nemovideo_mcp.settings import Settings
from nemovideo_mcp.store import open_store
from nemovideo_mcp.tables import TOKENS
from nemovideo_mcp.users import LOCAL_USER

pytestmark = pytest.mark.anyio


class RecordingSleep:
    """Stands in for anyio.sleep: records the waits the retry rules ask for."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def client_for(settings: Settings, identity: SkillIdentity, sleep: RecordingSleep | None = None) -> NemoClient:
    return NemoClient(settings, identity, sleep=sleep or RecordingSleep())


def mints(sandbox: Sandbox) -> int:
    return sandbox.count("/api/auth/anonymous-token")


async def test_every_request_carries_bearer_and_attribution(sandbox: Sandbox, settings, identity) -> None:
    async with client_for(settings, identity) as client:
        await client.credits()
        session = await client.create_session("en")
        await client.state(session.session_id)
    api_requests = [r for r in sandbox.requests if r.path.startswith("/api/") and "anonymous-token" not in r.path]
    assert len(api_requests) == 3
    for request in api_requests:
        assert request.headers["authorization"].startswith("Bearer ")
        assert request.headers["x-skill-source"] == "generator-from-music"
        assert request.headers["x-skill-version"] == "1.0.0"
        assert request.headers["x-skill-platform"] == "unknown"
    mint = next(r for r in sandbox.requests if "anonymous-token" in r.path)
    assert "authorization" not in mint.headers and mint.headers["x-client-id"]


async def test_anonymous_token_is_cached_privately_and_reused_after_restart(sandbox, settings, identity) -> None:
    async with client_for(settings, identity) as client:
        first = await client.credits()
    store_files = sorted(settings.state_dir.glob("nemovideo.db*"))
    assert store_files and all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in store_files)
    assert stat.S_IMODE((settings.config_dir / "client_id").stat().st_mode) == 0o600
    async with client_for(settings, identity) as restarted:
        second = await restarted.credits()
    assert mints(sandbox) == 1
    assert first.available == second.available == 100


async def test_an_earlier_versions_token_file_is_moved_into_the_store_once(sandbox, settings, identity) -> None:
    async with client_for(settings, identity) as client:
        token = await client.auth.token()
    legacy = settings.config_dir / "anonymous_token.json"
    store = open_store(settings.config_dir, settings.state_dir).for_user(LOCAL_USER)
    entry = await store.get(TOKENS, settings.api_url)
    await store.delete(TOKENS, settings.api_url)
    legacy.write_text(json.dumps({settings.api_url: entry}))
    async with client_for(settings, identity) as upgraded:
        assert await upgraded.auth.token() == token
    assert not legacy.exists() and mints(sandbox) == 1


async def test_client_id_respects_env_and_xdg(sandbox, env, identity, tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    settings = Settings.from_env({**env, "XDG_CONFIG_HOME": str(xdg)})
    async with client_for(settings, identity) as client:
        await client.credits()
    stored = (xdg / "nemovideo" / "client_id").read_text().strip()
    assert sandbox.requests[0].headers["x-client-id"] == stored

    sandbox.reset()
    fixed = Settings.from_env({**env, "XDG_CONFIG_HOME": str(tmp_path / "other"), "NEMO_CLIENT_ID": "my-client-id"})
    async with client_for(fixed, identity) as client:
        await client.credits()
    assert sandbox.requests[0].headers["x-client-id"] == "my-client-id"


async def test_an_expired_cached_token_is_replaced(sandbox, settings, identity) -> None:
    async with client_for(settings, identity) as client:
        await client.credits()
    store = open_store(settings.config_dir, settings.state_dir).for_user(LOCAL_USER)
    await store.update(TOKENS, settings.api_url, lambda entry: {**entry, "expires_at": 1.0})
    sandbox.expire_tokens()  # seven days later, at the backend too: a new token may be issued
    async with client_for(settings, identity) as client:
        await client.credits()
    assert mints(sandbox) == 2


async def test_1001_renews_the_anonymous_token_once_and_retries(sandbox, settings, identity) -> None:
    async with client_for(settings, identity) as client:
        await client.credits()
        sandbox.expire_tokens()
        balance = await client.credits()
    assert balance.total == 100
    assert mints(sandbox) == 2
    assert sandbox.count("/api/credits") == 3


async def test_1001_twice_in_a_row_is_an_authentication_error(sandbox, settings, identity) -> None:
    async with client_for(settings, identity) as client:
        await client.credits()
        sandbox.expire_tokens()
        sandbox.inject(1001, "/api/credits", times=2)  # the renewed token is refused too
        with pytest.raises(errors.AuthenticationError) as caught:
            await client.credits()
    assert not isinstance(caught.value, errors.TokenRejected)
    assert mints(sandbox) == 2


async def test_a_rejected_user_token_is_reported_not_replaced(sandbox, settings, identity) -> None:
    user_settings = settings.model_copy(update={"token": SecretStr("expired-user-token-123456")})
    async with client_for(user_settings, identity) as client:
        with pytest.raises(errors.TokenRejected, match="NEMO_TOKEN"):
            await client.credits()
    assert mints(sandbox) == 0


async def test_a_registered_user_token_is_used_as_is(sandbox, settings, identity) -> None:
    user_settings = settings.model_copy(update={"token": SecretStr("nemo_sk_registered_user_000001")})
    async with client_for(user_settings, identity) as client:
        balance = await client.credits()
    assert balance.total == 1000 and mints(sandbox) == 0
    assert sandbox.requests[0].headers["authorization"] == "Bearer nemo_sk_registered_user_000001"


async def test_400_missing_client_id_gets_a_new_client_id_and_retries(sandbox, settings, identity) -> None:
    sandbox.inject(400, "/api/auth/anonymous-token")
    async with client_for(settings, identity) as client:
        await client.credits()
    first, second = (r for r in sandbox.requests if "anonymous-token" in r.path)
    assert first.headers["x-client-id"] != second.headers["x-client-id"]
    assert (settings.config_dir / "client_id").read_text().strip() == second.headers["x-client-id"]


async def test_429_waits_retry_after_then_retries_once(sandbox, settings, identity) -> None:
    sleep = RecordingSleep()
    async with client_for(settings, identity, sleep) as client:
        await client.credits()
        sandbox.inject(429, "/api/credits", retry_after=7)
        await client.credits()
        assert sleep.waits == [7]
        sandbox.inject(429, "/api/credits", times=2, retry_after=None)
        with pytest.raises(errors.RateLimited, match="Wait about 30 seconds"):
            await client.credits()
    assert sleep.waits == [7, 30]


async def test_an_html_error_page_is_retried_for_reads_then_reported(sandbox, settings, identity) -> None:
    async with client_for(settings, identity) as client:
        await client.credits()
        sandbox.inject(502, "/api/credits", times=1)
        assert (await client.credits()).total == 100
        sandbox.inject(502, "/api/credits", times=3)
        with pytest.raises(errors.UnexpectedResponse, match="temporarily unavailable \\(HTTP 502\\)"):
            await client.credits()
        sandbox.inject(502, "/api/tasks", times=1)
        with pytest.raises(errors.UnexpectedResponse):
            await client.create_session("en")
    # A POST that might have done work is never repeated.
    assert sandbox.count("/api/tasks") == 1


async def test_an_unreachable_backend_is_a_clear_error(settings, identity) -> None:
    dead = settings.with_api_url("http://127.0.0.1:9")
    sleep = RecordingSleep()
    async with client_for(dead, identity, sleep) as client:
        with pytest.raises(errors.BackendUnavailable, match="Cannot reach NemoVideo"):
            await client.credits()
    assert sleep.waits == []  # it failed while minting, a POST: no retries


@pytest.mark.parametrize(
    ("code", "error_type", "advice"),
    [
        (1002, errors.SessionNotFound, "new, empty project|new project"),
        (2001, errors.OutOfCredits, "Register"),
        (4001, errors.UnsupportedFileType, "mp4, mov, avi, webm, mkv, jpg, png, gif, webp, mp3, wav, m4a, aac"),
        (4002, errors.FileTooLarge, "Compress it or trim it"),
        (402, errors.ExportBlocked, "registered NemoVideo account .*not about credits.*nemovideo-mcp login"),
        (400, errors.MissingClientId, "client id"),
    ],
)
async def test_each_backend_code_maps_to_its_advice(sandbox, settings, identity, code, error_type, advice) -> None:
    async with client_for(settings, identity) as client:
        await client.credits()
        sandbox.inject(code, "/api/credits")
        with pytest.raises(error_type, match=advice):
            await client.credits()


async def test_out_of_credits_links_registration_to_the_anonymous_user(sandbox, settings, identity) -> None:
    async with client_for(settings, identity) as client:
        created = await client.create_session("en")
        sandbox.inject(2001, "/api/credits")
        with pytest.raises(errors.OutOfCredits) as caught:
            await client.credits()
    assert created.user_id.startswith("anon_")
    assert f"{settings.web_url}/register?bind={created.user_id}" in str(caught.value)
    assert "nemovideo-mcp login" in str(caught.value)


async def test_the_registration_link_survives_a_restart_through_the_token_cache(sandbox, settings, identity) -> None:
    async with client_for(settings, identity) as client:
        await client.credits()
        user_id = client.auth.user_id
    sandbox.inject(2001, "/api/credits")
    async with client_for(settings, identity) as restarted:
        with pytest.raises(errors.OutOfCredits, match=f"register\\?bind={user_id}"):
            await restarted.credits()
    assert user_id and user_id.startswith("anon_") and mints(sandbox) == 1


async def test_registered_users_out_of_credits_are_told_to_top_up(sandbox, settings, identity) -> None:
    user_settings = settings.model_copy(update={"token": SecretStr("nemo_sk_registered_user_000002")})
    async with client_for(user_settings, identity) as client:
        sandbox.inject(2001, "/api/credits")
        with pytest.raises(errors.OutOfCredits, match="Top up"):
            await client.credits()


def test_every_backend_code_has_an_error_with_advice() -> None:
    assert set(errors.ERRORS_BY_CODE) == {1001, 1002, 2001, 4001, 4002, 400, 402, 429}
    for code, error_type in errors.ERRORS_BY_CODE.items():
        error = error_type(anonymous=True) if code == 2001 else error_type()
        assert error.code == code
        assert len(error.message) > 30 and "{" not in error.message


async def test_a_chat_request_cut_before_its_reply_is_an_interrupted_stream(settings, identity) -> None:
    """The backend read the message, then the connection died: that must not read as "try again"."""
    received = []

    async def read_then_hang_up(stream) -> None:
        async with stream:
            received.append(await stream.receive(65536))

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        # A user-set token: nothing needs minting from this half-broken backend.
        broken = settings.with_api_url(f"http://127.0.0.1:{port}").model_copy(
            update={"token": SecretStr("nemo_sk_registered_user_000003")})
        async with anyio.create_task_group() as group:
            group.start_soon(listener.serve, read_then_hang_up)
            async with client_for(broken, identity) as client:
                with pytest.raises(errors.StreamInterrupted):
                    async with client.run_sse("sess_1", "make a video") as events:
                        async for _ in events:
                            pass
            group.cancel_scope.cancel()
    assert b"POST /run_sse" in received[0]
