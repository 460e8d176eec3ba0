"""The pages a hosted deployment's users open in a browser, in Debian's Chromium driven by Playwright: the upload
page (a file dropped with its progress, a refused one with its sentence, an expired or forged link), checked
end to end against the sandbox through a replica."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import anyio
import pytest

from nemovideo_mcp.sandbox.samples import make_track
from nemovideo_mcp.upload import human_size
from tests.conftest import REPO, missing
from tests.oidc_issuer import Issuers, running_issuers
from tests.test_hosted_http import PUBLIC_URL, SECRET_KEY, call, hosted_env, replicas

pytestmark = pytest.mark.anyio

CHROMIUM = "/usr/bin/chromium"
# The probe's flags: headless as root, and none of Chromium's own connections, which this machine refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENS = REPO / "docs" / "screens"


@pytest.fixture(scope="module")
def issuers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuers]:
    with running_issuers(tmp_path_factory.mktemp("oidc") / "issuers.log") as running:
        yield running


@pytest.fixture
async def browser():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        missing("Debian's Chromium is not installed (apt-get install chromium): the pages are tested in it")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def test_files_dropped_on_the_upload_page_arrive_in_the_project_and_a_refused_one_says_why(
        sandbox, env, issuers, browser, tmp_path) -> None:
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    song, notes = make_track(tmp_path / "song.wav", seconds=20.0), tmp_path / "notes.txt"
    notes.write_text("not media")
    with replicas(hosted_env(env, issuers), tmp_path, 2) as (first, second):
        asked = await call(first, alice, "upload", {"sources": ["/Users/alice/Music/song.wav"]})
        assert not asked.is_error, asked.content[0].text
        link = asked.structured_content["upload_url"]
        assert link.startswith(f"{PUBLIC_URL}/upload/") and asked.structured_content["to_drop"] == ["song.wav"]
        assert "song.wav" in asked.content[0].text and sandbox.count("/api/upload-video") == 0

        page = await browser.new_page()
        await page.goto(link.replace(PUBLIC_URL, second))  # any replica serves it
        await page.get_by_label("Drop files here, or press Enter to choose them").set_input_files([str(song), str(notes)])
        await page.locator("li.arrived").wait_for()
        await page.locator("li.refused").wait_for()
        assert await page.locator("li.arrived").inner_text() == f"song.wav arrived ({human_size(song.stat().st_size)})."
        bar = page.get_by_role("progressbar", name="song.wav arrived")
        assert await bar.evaluate("bar => bar.value === bar.max && bar.max > 0")
        assert "notes.txt: NemoVideo does not accept .txt files" in await page.locator("li.refused").inner_text()
        SCREENS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENS / "upload-page.png"), full_page=True)

        assert sandbox.count("/api/upload-video", "POST") == 1  # the refused file was never sent
        state = await call(first, alice, "state")
        assert state.structured_content["uploads"] == 1


async def test_the_server_refuses_what_the_page_would_and_an_old_or_forged_link_says_what_to_do(
        sandbox, env, issuers, browser, tmp_path) -> None:
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    with replicas({**hosted_env(env, issuers), "NEMO_MAX_UPLOAD_MB": "1"}, tmp_path, 1) as (url,):
        link = (await call(url, alice, "upload", {"sources": ["clip.mov"]})).structured_content["upload_url"]
        local = link.replace(PUBLIC_URL, url)
        async with httpx2.AsyncClient(timeout=30) as http:  # not through the page: the server checks too
            too_big = await http.post(local, content=b"\x00" * 2_000_000, headers={"x-file-name": "clip.mov"})
            wrong = await http.post(local, content=b"text", headers={"x-file-name": "notes.txt"})
        assert too_big.status_code == 422 and "over the 1.0 MB limit" in too_big.json()["sentence"]
        assert wrong.status_code == 422 and "does not accept .txt files" in wrong.json()["sentence"]
        assert sandbox.count("/api/upload-video", "POST") == 0

        page = await browser.new_page()
        forged = await page.goto(local[:-6] + "AAAAAA")
        assert forged.status == 404 and "Ask for the upload again" in await page.inner_text("main")
        from nemovideo_mcp.links import Links

        two_hours_ago = Links(SECRET_KEY, PUBLIC_URL, clock=lambda: time.time() - 7200)
        old = two_hours_ago.make(f"{issuers.oidc}|alice", "upload", "any", 3600).replace(PUBLIC_URL, url)
        expired = await page.goto(old)
        assert expired.status == 410 and "Ask for the upload again" in await page.inner_text("main")


async def test_a_user_past_the_free_allowance_links_their_own_account_on_our_page_and_can_forget_it(
        sandbox, env, issuers, browser, tmp_path) -> None:
    sandbox.anonymous_tokens_per_address = 1  # every user of a deployment comes from its address
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    bob = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="bob")
    account = "nemo_sk_bob_own_account_000000001"  # the sandbox takes any nemo_sk_ token as an account
    with replicas(hosted_env(env, issuers), tmp_path, 2) as (first, second):
        assert not (await call(first, alice, "credits")).is_error
        refused = await call(first, bob, "credits")
        sentence = refused.content[0].text
        assert refused.is_error and "429" not in sentence and "nemovideo-mcp login" not in sentence
        link = re.search(rf"{re.escape(PUBLIC_URL)}/link/\S+", sentence).group()

        page = await browser.new_page()
        await page.goto(link.replace(PUBLIC_URL, second))
        await page.get_by_label("NemoVideo token").fill("not-a-nemovideo-token")
        await page.get_by_role("button", name="Use my account").click()
        assert "did not accept that token" in await page.get_by_role("status").inner_text()
        await page.get_by_label("NemoVideo token").fill(account)
        await page.get_by_role("button", name="Use my account").click()
        assert "linked: 1000 credits available" in await page.get_by_role("status").inner_text()
        SCREENS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENS / "account-page.png"), full_page=True)

        assert (await call(first, bob, "credits")).structured_content["available"] == 1000  # the other replica
        stored = b"".join(path.read_bytes() for path in Path(env["HOME"]).rglob("nemovideo.db*"))
        assert account.encode() not in stored  # sealed

        await page.get_by_role("button", name="Forget my linked account").click()
        assert "no longer used here" in await page.get_by_role("status").inner_text()
        assert (await call(first, bob, "credits")).is_error  # back to the anonymous allowance, which is used
    logs = "".join(path.read_text() for path in tmp_path.glob("replica*.log"))
    assert account not in logs and "not-a-nemovideo-token" not in logs
    key = link.rsplit("/", 1)[1]
    assert "/link/…" in logs and key not in logs and key.rsplit(".", 1)[1] not in logs  # the page's key neither
    assert '"GET /link/… HTTP/1.1" 200' in logs and "Logging error" not in logs  # uvicorn's own request lines


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def test_a_dropped_file_passes_through_the_server_without_being_held_whole(sandbox, env, issuers, tmp_path) -> None:
    if not Path("/proc/self/status").exists():
        missing("reading a process's peak memory needs Linux's /proc")
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    size = 64 * 1024 * 1024
    with replicas(hosted_env(env, issuers), tmp_path, 1) as (url,):
        link = (await call(url, alice, "upload", {"sources": ["big.mp4"]})).structured_content["upload_url"]
        before = peak_rss_mb(url.process.pid)

        async def body():
            for _ in range(size // (1024 * 1024)):
                yield b"\x00" * (1024 * 1024)

        async with httpx2.AsyncClient(timeout=120) as http:
            sent = await http.post(link.replace(PUBLIC_URL, url), content=body(),
                                   headers={"x-file-name": "big.mp4", "content-length": str(size)})
        assert sent.status_code == 200, sent.text
        assert peak_rss_mb(url.process.pid) - before < 24  # a 64 MB file: never held whole


async def test_a_dropped_files_name_arrives_without_folders_or_control_characters(sandbox, env, issuers, tmp_path) -> None:
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    with replicas(hosted_env(env, issuers), tmp_path, 1) as (url,):
        link = (await call(url, alice, "upload", {"sources": ["clip.mp4"]})).structured_content["upload_url"]
        async with httpx2.AsyncClient(timeout=30) as http:
            sent = await http.post(link.replace(PUBLIC_URL, url), content=b"\x00" * 1000,
                                   headers={"x-file-name": "..%2F..%2Fetc%2Fclip%00%0A.mp4"})
    assert sent.status_code == 200 and sent.json()["sentence"].startswith("clip.mp4 arrived"), sent.text

