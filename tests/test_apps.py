"""MCP Apps (issue 17) in a real browser: Debian's Chromium driven by Playwright hosts each view through the official
`AppBridge` (`@modelcontextprotocol/ext-apps`, bundled for the page by esbuild from npm), connected to the real
server against the sandbox."""

from __future__ import annotations

import subprocess
import os
from pathlib import Path

import anyio
import pytest
from mcp import Client

from nemovideo_mcp.tools import build_server
from nemovideo_mcp.views import PLAYER_URI, TIMELINE_URI, view_html
from tests.conftest import REPO
from tests.npm_cache import npm_installed
from tests.test_hosted_pages import SCREENS, browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.anyio

GENERATE = "create a video with visuals synced to this music track"
# How long a page may take to connect a view, or a video to load or advance, before the test fails (never hangs).
MEDIA_SECONDS = 30
BRIDGE_PACKAGES = ("@modelcontextprotocol/ext-apps@2.0.4", "@modelcontextprotocol/client@2.4.0",
                   "@modelcontextprotocol/core@2.4.0", "zod@4.6.7", "esbuild@0.28.2")


def app_bridge_script() -> Path:
    """tests/apps/bridge.mjs bundled into one browser script (once per version of the script)."""
    root = npm_installed("ext-apps-bridge", *BRIDGE_PACKAGES, why="the MCP Apps host side (AppBridge)")
    entry, bundle = root / "bridge.mjs", root / "bridge.js"
    source = (REPO / "tests" / "apps" / "bridge.mjs").read_text()
    if not bundle.exists() or not entry.exists() or entry.read_text() != source:
        entry.write_text(source)
        done = subprocess.run([str(root / "node_modules" / ".bin" / "esbuild"),
                               str(entry), "--bundle", "--format=iife", f"--outfile={bundle}"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    return bundle


def screens(tmp_path: Path) -> Path:
    """Where the views' screenshots go: the README's (docs/screens) with NEMO_TEST_SCREENS=1, which a change to a view
    should refresh; else the test's own folder, since they hold a file name and a time that change on every run."""
    folder = SCREENS if os.environ.get("NEMO_TEST_SCREENS") else tmp_path / "screens"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def dumped(result) -> dict:
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


async def host_view(browser, client: Client, view, tool_result, reads: list[str] | None = None):
    """A page that hosts `view` (the resource as read) through the official AppBridge (tests/apps/host.js) under the
    policy its `_meta.ui.csp` asks for, its calls forwarded to the server through `client`, and hands it
    `tool_result`; the resource URIs it reads go to `reads`."""
    page = await browser.new_page()

    async def call_server_tool(params: dict) -> dict:
        return dumped(await client.call_tool(params["name"], params.get("arguments") or {}))

    async def read_server_resource(params: dict) -> dict:
        if reads is not None:
            reads.append(params["uri"])
        return dumped(await client.read_resource(params["uri"]))

    await page.expose_function("callServerTool", call_server_tool)
    await page.expose_function("readServerResource", read_server_resource)
    await page.set_content("<!doctype html><html><body></body></html>")
    await page.add_script_tag(path=str(app_bridge_script()))
    await page.add_script_tag(path=str(REPO / "tests" / "apps" / "host.js"))
    csp = ((view.meta or {}).get("ui") or {}).get("csp") or {}
    with anyio.fail_after(MEDIA_SECONDS):
        await page.evaluate("([html, result, csp]) => window.hostView(html, result, csp)",
                            [view.text, dumped(tool_result), csp])
    return page


async def test_the_player_plays_the_exported_video_in_a_host(sandbox, settings, identity, tmp_path,
                                                             browser) -> None:  # noqa: F811
    import av

    sandbox.late_write_seconds = None
    async with Client(build_server(settings.model_copy(update={"output_dir": tmp_path / "out"}), identity)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert tools["export"].meta["ui"]["resourceUri"] == PLAYER_URI
        await client.call_tool("chat", {"message": GENERATE})
        exported = await client.call_tool("export", {})
        assert exported.structured_content["status"] == "done", exported.content[0].text
        [view] = (await client.read_resource(PLAYER_URI)).contents
        assert view.mime_type == "text/html;profile=mcp-app" and view.text == view_html("player")

        reads: list[str] = []
        page = await host_view(browser, client, view, exported, reads)
        frame = page.frame_locator("iframe")
        await frame.locator("#status").get_by_text("Ready to play.").wait_for(timeout=20_000)
        video = frame.locator("video")
        # Bounded: a video that never loads or plays must fail the test, not hang the suite.
        with anyio.fail_after(MEDIA_SECONDS):
            duration = await video.evaluate("async (video) => { if (!Number.isFinite(video.duration) || !video.duration)"
                                        " await new Promise((r) => video.addEventListener('loadedmetadata', r, {once: true}));"
                                        " return video.duration; }")
        await frame.get_by_role("button", name="Play").click()
        with anyio.fail_after(MEDIA_SECONDS):
            advanced = await video.evaluate("(video) => new Promise((resolve) => { const start = video.currentTime;"
                                        " video.addEventListener('timeupdate', function seen() {"
                                        " if (video.currentTime > start + 0.2) { video.removeEventListener('timeupdate', seen);"
                                        " resolve(video.currentTime); } }); })")
        await page.screenshot(path=str(screens(tmp_path) / "apps-player.png"))
    with av.open(exported.structured_content["path"]) as container:
        expected = container.duration / 1_000_000
    assert abs(duration - expected) < 0.25, (duration, expected)
    assert advanced > 0.2
    parts = [uri for uri in reads if uri.startswith("nemovideo://renders/")]
    assert parts and all(uri.startswith(f"nemovideo://renders/{exported.structured_content['render_id']}/parts/")
                         for uri in parts)


def test_the_committed_app_bundle_is_the_published_one_byte_for_byte() -> None:
    import hashlib

    from nemovideo_mcp.views import EXT_APPS_BUNDLE_SHA256, UI

    committed = (UI / "ext-apps-app.js").read_bytes()
    assert hashlib.sha256(committed).hexdigest() == EXT_APPS_BUNDLE_SHA256
    root = npm_installed("ext-apps-bridge", *BRIDGE_PACKAGES, why="the MCP Apps host side (AppBridge)")
    published = root / "node_modules" / "@modelcontextprotocol" / "ext-apps" / "dist" / "src" / "app-with-deps.js"
    assert published.read_bytes() == committed


async def test_a_view_reads_only_the_users_own_exports(sandbox, settings, identity, tmp_path) -> None:
    async with Client(build_server(settings, identity)) as client:
        with pytest.raises(Exception, match="not on this computer"):
            await client.read_resource("nemovideo://renders/render_123/parts/0")


def test_the_player_declares_exactly_the_domains_it_loads_media_from(settings) -> None:
    from nemovideo_mcp.views import apps_extension

    local = {binding.resource.uri: binding.resource for binding in apps_extension(settings).resources()}
    assert all("csp" not in view.meta["ui"] for view in local.values())  # a local file comes as resources: nothing to load from anywhere
    hosted = settings.model_copy(update={"public_url": "https://video.example.test",
                                         "auth_issuer": "https://login.example.test"})
    assert hosted.hosted
    served = {binding.resource.uri: binding.resource for binding in apps_extension(hosted).resources()}
    assert served[PLAYER_URI].meta["ui"]["csp"] == {"resourceDomains": ["https://video.example.test"]}
    assert "csp" not in served[TIMELINE_URI].meta["ui"]  # it draws what `state` returns: it loads nothing


async def test_the_timeline_shows_each_track_at_its_place_and_marks_what_a_turn_changed(
        sandbox, settings, identity, seed_draft, tmp_path, browser) -> None:  # noqa: F811
    from nemovideo_mcp.service import VideoService

    async with VideoService(settings, identity) as service:
        session = await service.sessions.ensure("make a video")
    sandbox.set_draft(session.session_id, seed_draft)  # Video 0-10 s, BGM "Lo-fi" 0-10 s at 35%, Title 0-3 s
    sandbox.late_write_seconds = None
    async with Client(build_server(settings, identity)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert tools["state"].meta["ui"]["resourceUri"] == tools["chat"].meta["ui"]["resourceUri"] == TIMELINE_URI
        [view] = (await client.read_resource(TIMELINE_URI)).contents
        state = await client.call_tool("state", {})
        page = await host_view(browser, client, view, state)
        frame = page.frame_locator("iframe")
        await frame.locator(".item").first.wait_for(timeout=20_000)
        placed = await frame.locator(".item").evaluate_all(
            "(items) => items.map((item) => [item.parentElement.dataset.lane, item.textContent,"
            " Math.round(parseFloat(item.style.left)), Math.round(parseFloat(item.style.width))])")
        assert placed == [["video", "city timelapse", 0, 100], ["music", "Lo-fi · 35%", 0, 100],
                          ["title", "Urban Dreams", 0, 30]]
        as_text = await frame.locator("#tracks li").all_text_contents()
        assert as_text[2] == "3. Title: Urban Dreams (0–3 s)"
        await page.screenshot(path=str(screens(tmp_path) / "apps-timeline.png"))
        await page.close()

        edited = await client.call_tool("chat", {"message": 'add a title "Relay"'})
        assert edited.structured_content["changes"], edited.content[0].text
        page = await host_view(browser, client, view, edited)
        frame = page.frame_locator("iframe")
        await frame.locator(".item.changed").first.wait_for(timeout=20_000)
        assert await frame.locator(".item.changed").all_text_contents() == ["Relay"]
        assert await frame.locator("#changes li").all_text_contents() == edited.structured_content["changes"]


async def test_files_dropped_in_the_timeline_arrive_in_the_project_and_a_refused_one_says_why(
        sandbox, settings, identity, tmp_path, browser) -> None:  # noqa: F811
    song, notes = tmp_path / "long song.mp3", tmp_path / "notes.txt"
    song.write_bytes(bytes(range(256)) * 2000)  # 512 000 bytes: three parts
    notes.write_text("not media")
    async with Client(build_server(settings, identity)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert tools["add_dropped_file"].meta["ui"]["visibility"] == ["app"]  # hosts keep it from the model
        [view] = (await client.read_resource(TIMELINE_URI)).contents
        page = await host_view(browser, client, view, await client.call_tool("state", {}))
        frame = page.frame_locator("iframe")
        await frame.get_by_label("Choose files").set_input_files([str(notes), str(song)])
        rows = frame.locator("#sent li")
        await rows.nth(1).get_by_text("Arrived.").wait_for(timeout=20_000)
        refused = await rows.nth(0).text_content()
        assert "notes.txt" in refused and "does not accept" in refused
        state = await client.call_tool("state", {})
        await page.screenshot(path=str(screens(tmp_path) / "apps-drop.png"), full_page=True)
    assert state.structured_content["uploads"] == 1
    [upload] = [request for request in sandbox.requests if "/api/upload-video/" in request.path]
    assert upload.method == "POST"
    assert not any((settings.state_dir / "drops").glob("*/*"))  # nothing kept once it was sent


async def test_the_player_offers_the_projects_earlier_videos(sandbox, settings, identity, tmp_path,
                                                              browser) -> None:  # noqa: F811
    sandbox.late_write_seconds = None
    sandbox.real_renders = False
    async with Client(build_server(settings.model_copy(update={"output_dir": tmp_path / "out"}), identity)) as client:
        await client.call_tool("chat", {"message": GENERATE})
        first = await client.call_tool("export", {})
        await client.call_tool("chat", {"message": 'add a title "Second"'})
        second = await client.call_tool("export", {})
        assert first.structured_content["render_id"] != second.structured_content["render_id"]
        [view] = (await client.read_resource(PLAYER_URI)).contents
        reads: list[str] = []
        page = await host_view(browser, client, view, second, reads)
        frame = page.frame_locator("iframe")
        earlier = frame.get_by_label("Earlier videos of this project")
        await earlier.wait_for(timeout=20_000)
        assert await earlier.locator("option").evaluate_all("(options) => options.map((option) => option.value)") == [
            first.structured_content["render_id"]]
        await frame.get_by_role("button", name="Watch it").click()
        await frame.locator("#status").get_by_text("Ready to play.").wait_for(timeout=20_000)
        with anyio.fail_after(MEDIA_SECONDS):
            await frame.locator("video").evaluate("(video) => new Promise((resolve) => video.readyState >= 1 ? resolve()"
                                              " : video.addEventListener('loadedmetadata', resolve, {once: true}))")
    assert any(uri.startswith(f"nemovideo://renders/{first.structured_content['render_id']}/") for uri in reads)


async def test_the_timeline_follows_a_generations_music_and_titles_as_they_land(sandbox, settings, identity,
                                                                                browser) -> None:  # noqa: F811
    sandbox.late_write_seconds = 4.0  # the second stage: music and titles land after the turn's reply
    async with Client(build_server(settings, identity)) as client:
        [view] = (await client.read_resource(TIMELINE_URI)).contents
        generated = await client.call_tool("chat", {"message": GENERATE})
        assert generated.structured_content["follow_up_job_id"], generated.content[0].text
        page = await host_view(browser, client, view, generated)
        frame = page.frame_locator("iframe")
        await frame.locator(".lane[data-lane=video] .item").first.wait_for(timeout=20_000)
        assert await frame.locator(".lane[data-lane=music] .item").count() == 0  # not landed yet
        await frame.locator(".lane[data-lane=music] .item").first.wait_for(timeout=20_000)
