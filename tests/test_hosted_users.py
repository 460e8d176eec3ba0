"""A hosted deployment's users at NemoVideo: each with their own client id and anonymous token, sealed in
the store with the deployment's key, or all on the team's NEMO_TOKEN; each with their own projects."""

from __future__ import annotations

import sqlite3

import pytest

from nemovideo_mcp.service import VideoService
from nemovideo_mcp.settings import Settings
from nemovideo_mcp.store import STORE_FILE, open_store
from nemovideo_mcp.users import UserContext
from tests.postgres_cluster import postgres_server, postgres_url  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

SECRET_KEY = "a-deployment-key-of-at-least-32-characters"
TEAM_TOKEN = "nemo_sk_team_of_the_deployment_01"


def hosted(env: dict[str, str], **extra: str) -> Settings:
    return Settings.from_env({**env, "NEMO_PUBLIC_URL": "https://video.example", "NEMO_AUTH_ISSUER":
                              "https://login.example", "NEMO_SECRET_KEY": SECRET_KEY, **extra})


def mint_requests(sandbox) -> list:
    return [request for request in sandbox.requests if request.path == "/api/auth/anonymous-token"]


async def test_each_user_mints_their_own_anonymous_token_and_it_is_stored_sealed(sandbox, env, identity) -> None:
    settings = hosted(env)
    store = open_store(settings.config_dir, settings.state_dir)
    tokens = {}
    for name in ("alice", "bob"):
        async with VideoService(settings, identity, user=UserContext(f"https://login.example|{name}"),
                                store=store) as service:
            await service.credits()
            tokens[name] = await service.client.auth.token()
    assert tokens["alice"] != tokens["bob"]
    async with VideoService(settings, identity, user=UserContext("https://login.example|alice"), store=store) as again:
        account_page = (await again.credits()).account_url
    assert account_page.startswith("https://video.example/link/")  # where linking or forgetting an account is
    assert len({request.headers["x-client-id"] for request in mint_requests(sandbox)}) == 2
    assert not (settings.config_dir / "client_id").exists()  # no file shared by every user
    raw = (settings.state_dir / STORE_FILE).read_bytes() + b"".join(
        path.read_bytes() for path in settings.state_dir.glob(f"{STORE_FILE}-wal"))
    assert tokens["alice"].encode() not in raw and tokens["bob"].encode() not in raw
    # A restart of the deployment uses what it stored: nothing minted again.
    async with VideoService(settings, identity, user=UserContext("https://login.example|alice"),
                            store=open_store(settings.config_dir, settings.state_dir)) as again:
        assert await again.client.auth.token() == tokens["alice"]
    assert len(mint_requests(sandbox)) == 2


async def test_a_team_token_serves_every_user_who_still_has_their_own_projects(sandbox, env, identity) -> None:
    settings = hosted(env, NEMO_TOKEN=TEAM_TOKEN)  # the sandbox takes any nemo_sk_ token as an account
    store = open_store(settings.config_dir, settings.state_dir)
    sessions = {}
    for name in ("alice", "bob"):
        async with VideoService(settings, identity, user=UserContext(f"https://login.example|{name}"),
                                store=store) as service:
            assert (await service.credits()).available == 1000
            await service.projects("new", f"{name}'s film")
            sessions[name] = [project.name for project in (await service.projects("list")).projects]
    assert sessions == {"alice": ["alice's film"], "bob": ["bob's film"]}
    assert mint_requests(sandbox) == []
    with sqlite3.connect(settings.state_dir / STORE_FILE) as db:
        assert db.execute("SELECT count(*) FROM tokens").fetchone() == (0,)


def test_a_signed_link_opens_only_what_it_was_made_for_and_only_until_it_expires() -> None:
    from nemovideo_mcp.links import LinkExpired, Links

    now = [1_800_000_000.0]
    links = Links(SECRET_KEY, "https://video.example", clock=lambda: now[0])
    link = links.make("https://login.example|alice", "download", "render_1", lifetime=60)
    token = link.removeprefix("https://video.example/download/")
    claims = links.read(token, "download")
    assert (claims.sub, claims.subject) == ("https://login.example|alice", "render_1")
    assert links.read(token, "upload") is None  # never accepted for another purpose
    assert Links("another-deployment-key-of-32-characters-or-more", "https://video.example").read(token, "download") is None
    now[0] += 61
    with pytest.raises(LinkExpired):
        links.read(token, "download")


async def test_a_request_naming_a_file_on_the_users_computer_waits_for_the_upload_page(sandbox, env, identity) -> None:
    """Hosted, "make a video synced to ~/song.mp3": the file can only arrive through our page, so no paid turn is
    sent without it, and the page's link reaches the user."""
    settings = hosted(env)
    async with VideoService(settings, identity, user=UserContext("https://login.example|alice"),
                            store=open_store(settings.config_dir, settings.state_dir)) as service:
        result = await service.chat("make a video synced to ~/Music/song.mp3")
    assert "https://video.example/upload/" in result.reply and "song.mp3" in result.reply
    assert '"make a video synced to' in result.reply  # the request, as the user wrote it, to send again
    assert sandbox.count("/run_sse") == 0


async def test_a_new_users_first_project_and_export_need_one_held_lock_at_a_time(sandbox, env, identity, postgres_url) -> None:
    """Found by review: a new user's first project took the project lock, then the token lock inside it to mint
    the token creating the project needs; with PostgreSQL's pool of lock connections, thirty new users at once
    each held one and waited for another that never came. One lock connection must be enough for one user."""
    from nemovideo_mcp.postgres import PostgresDatabase
    from nemovideo_mcp.store import Store

    settings = hosted(env)
    store = Store(PostgresDatabase(postgres_url, max_locks=1, timeout_seconds=2.0))
    try:
        async with VideoService(settings.model_copy(update={"render_poll_scale": 0.05}), identity,
                                user=UserContext("https://login.example|new"), store=store) as new:
            made = await new.projects("new", "first film")
            await new.chat('add a title "One lock"')
            exported = await new.export(wait_seconds=30)  # the export lock alone: no second one inside it
        assert "first film" in made.reply and exported.status == "done" and exported.download_url
    finally:
        await store.aclose()


async def test_an_export_whose_token_is_renewed_on_the_way_needs_one_held_lock(sandbox, env, identity,
                                                                               postgres_url) -> None:
    """Found by review: a token renewed after a 1001 during the render start (under its lock) took a second lock
    connection; with a pool of one the export failed."""
    from nemovideo_mcp.postgres import PostgresDatabase
    from nemovideo_mcp.store import Store

    settings = hosted(env).model_copy(update={"render_poll_scale": 0.05})
    store = Store(PostgresDatabase(postgres_url, max_locks=1, timeout_seconds=2.0))
    try:
        async with VideoService(settings, identity, user=UserContext("https://login.example|carol"),
                                store=store) as carol:
            await carol.projects("new", "first film")
            await carol.chat('add a title "One lock"')
            sandbox.expire_tokens()  # a week on: NemoVideo answers 1001, and the next call renews the token
            exported = await carol.export(wait_seconds=30)
        assert exported.status == "done" and exported.download_url
    finally:
        await store.aclose()


async def test_a_users_token_is_redacted_while_their_service_runs_and_forgotten_after(sandbox, env, identity) -> None:
    """Found by review: every user's token stayed in the process's redaction set for good, so memory and the
    cost of every log line and result grew with each user a replica had ever served."""
    from nemovideo_mcp import logs

    settings = hosted(env)
    async with VideoService(settings, identity, user=UserContext("https://login.example|alice"),
                            store=open_store(settings.config_dir, settings.state_dir)) as service:
        await service.credits()
        token = await service.client.auth.token()
        assert logs.redact(f"echo {token}") == f"echo {logs.REDACTED}"
    assert token not in logs._secrets


async def test_a_users_token_stays_redacted_while_another_service_of_theirs_still_holds_it(sandbox, env,
                                                                                           identity) -> None:
    """Found by review: an idle service stopping took the user's token out of redaction while the service that
    replaced it (same user, same token) still ran, so its log lines and results could show the token."""
    from nemovideo_mcp import logs

    settings = hosted(env)
    alice = UserContext("https://login.example|alice")
    store = open_store(settings.config_dir, settings.state_dir)
    try:
        async with VideoService(settings, identity, user=alice, store=store) as replacing:
            async with VideoService(settings, identity, user=alice, store=store) as stopping:
                await stopping.credits()
                await replacing.credits()
                token = await stopping.client.auth.token()
                assert await replacing.client.auth.token() == token
            assert logs.redact(f"echo {token}") == f"echo {logs.REDACTED}"
        assert token not in logs._secrets
    finally:
        await store.aclose()


async def test_a_linked_accounts_token_is_forgotten_once_the_users_service_stops(sandbox, env, identity) -> None:
    """Found by review: the client that checks a pasted token before linking it kept it redacted for good."""
    from nemovideo_mcp import logs

    settings = hosted(env)
    account = "nemo_sk_bob_own_account_000000001"
    store = open_store(settings.config_dir, settings.state_dir)
    try:
        async with VideoService(settings, identity, user=UserContext("https://login.example|bob"),
                                store=store) as service:
            assert "linked" in (await service.link_account(account)).summary
            assert logs.redact(f"echo {account}") == f"echo {logs.REDACTED}"
        assert account not in logs._secrets
    finally:
        await store.aclose()


def test_a_hosted_server_tells_the_agent_about_its_pages_not_about_a_terminal(env, identity) -> None:
    from nemovideo_mcp.tools import build_server

    local, remote = build_server(Settings.from_env(env), identity), build_server(hosted(env), identity)
    assert "nemovideo-mcp login" in local.instructions and "nemovideo-mcp login" not in remote.instructions
    assert "download link" in remote.instructions and "page" in remote.instructions
