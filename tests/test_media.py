"""Uploads and exports against the sandbox over loopback: checks before requests, files that land whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from nemovideo_mcp import errors
from nemovideo_mcp.client import NemoClient
from nemovideo_mcp.export import NothingToExport, RenderFailed, next_poll_delay
from nemovideo_mcp.sandbox.agent import GENERATED_DRAFT
from nemovideo_mcp.service import VideoService
from nemovideo_mcp.tools import build_server
from nemovideo_mcp.upload import InvalidSource, check_sources, upload_sources

pytestmark = pytest.mark.anyio


@pytest.fixture
async def service(settings, identity, out):
    async with VideoService(settings.model_copy(update={"output_dir": out}), identity) as service:
        yield service


def media(folder: Path, name: str, size: int = 4096) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"\x00" * size)
    return path


async def project_with_content(service: VideoService, sandbox) -> None:
    session = await service.sessions.ensure("make a video")
    sandbox.set_draft(session.session_id, GENERATED_DRAFT)


def mp4s(folder: Path) -> list[Path]:
    return sorted(folder.glob("*")) if folder.exists() else []


# Uploads


@pytest.mark.parametrize(
    ("make_source", "error_type", "advice"),
    [
        (lambda tmp: str(tmp / "missing.mp3"), InvalidSource, "There is no file at"),
        (lambda tmp: str(tmp), InvalidSource, "is a folder"),
        (lambda tmp: str(media(tmp, "empty.mp3", 0)), InvalidSource, "is empty"),
        (lambda tmp: str(media(tmp, "setup.exe")), errors.UnsupportedFileType, "Accepted formats: mp4, mov"),
        (lambda tmp: str(media(tmp, "noext")), errors.UnsupportedFileType, "Accepted formats"),
        (lambda tmp: str(media(tmp, "huge.mp4", 3 * 1024 * 1024)), errors.FileTooLarge, "over the 2.0 MB limit. Trim"),
        (lambda tmp: "file:///tmp/song.mp3", InvalidSource, "not file:// links"),
        (lambda tmp: "ftp://example.com/song.mp3", InvalidSource, "not ftp:// links"),
    ],
)
async def test_bad_inputs_are_refused_before_any_request(sandbox, settings, identity, tmp_path, make_source,
                                                         error_type, advice) -> None:
    limited = settings.model_copy(update={"max_upload_bytes": 2 * 1024 * 1024})
    source = make_source(tmp_path)
    async with VideoService(limited, identity) as service:
        with pytest.raises(error_type, match=advice):
            await service.upload([str(media(tmp_path, "fine.mp3")), source])
    assert sandbox.requests == []


async def test_the_skill_states_the_limit_and_the_environment_overrides_it(sandbox, settings, identity, env,
                                                                          tmp_path) -> None:
    from nemovideo_mcp.settings import Settings

    song = str(media(tmp_path, "song.mp3", 4096))
    strict = identity.model_copy(update={"max_upload_mb": 0.002})  # about 2 KB, as SKILL.md would state it
    async with VideoService(settings, strict) as service:
        with pytest.raises(errors.FileTooLarge, match="over the 2.0 KB limit"):
            await service.upload([song])
    overridden = Settings.from_env({**env, "NEMO_MAX_UPLOAD_MB": "1"})
    async with VideoService(overridden, strict) as service:
        assert (await service.upload([song])).uploads[0].size_bytes == 4096
    assert identity.max_upload_mb == 200  # the repository's skill is generator-from-music


async def test_several_files_and_a_url_including_a_unicode_name(sandbox, service, tmp_path) -> None:
    song = media(tmp_path, "café – ñandú 🎵.mp3", 5000)
    clip = media(tmp_path, "clip.MOV", 7000)
    result = await service.upload([str(song), f"  '{clip}' ", "https://cdn.example.com/b-roll%20one.mp4"])
    assert [(item.name, item.type, item.size_bytes, item.source) for item in result.uploads] == [
        ("café – ñandú 🎵.mp3", "audio", 5000, "file"),
        ("clip.MOV", "video", 7000, "file"),
        ("b-roll one.mp4", "video", None, "url"),
    ]
    assert all(item.id for item in result.uploads)
    stored = sandbox.sessions[(await service.sessions.current()).session_id].video_infos
    assert [entry["name"] for entry in stored] == ["café – ñandú 🎵.mp3", "clip.MOV", "b-roll one.mp4"]
    assert [entry.get("size") for entry in stored[:2]] == [5000, 7000]
    assert result.summary.startswith("Uploaded 3 files: café – ñandú 🎵.mp3 (audio")


async def test_the_backend_limit_is_reported_with_advice(sandbox, service, tmp_path) -> None:
    sandbox.max_upload_bytes = 1000
    with pytest.raises(errors.FileTooLarge, match="Compress it or trim it"):
        await service.upload([str(media(tmp_path, "song.mp3", 5000))])


async def test_upload_progress_by_bytes_through_mcp(sandbox, settings, identity, tmp_path) -> None:
    song = media(tmp_path, "song.wav", 3 * 1024 * 1024 + 17)
    updates: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total))

    async with Client(build_server(settings, identity)) as client:
        result = await client.call_tool("upload", {"sources": [str(song)]}, progress_callback=on_progress)
    assert not result.is_error, result.content[0].text
    assert result.structured_content["uploads"][0]["size_bytes"] == song.stat().st_size
    sent = [progress for progress, _ in updates]
    assert sent == sorted(sent) and len(sent) >= 4 and sent[-1] == song.stat().st_size
    assert {total for _, total in updates} == {song.stat().st_size}


async def test_a_refused_and_repeated_upload_never_reports_less_progress(sandbox, settings, identity,
                                                                          tmp_path) -> None:
    song = media(tmp_path, "song.wav", 3 * 1024 * 1024 + 17)
    sent: list[int] = []
    waits: list[float] = []

    async def on_progress(progress: int, total: int, message: str) -> None:
        sent.append(progress)

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    async with NemoClient(settings.with_skill_limits(None), identity, sleep=no_sleep) as client:
        session = await client.create_session("en")
        sandbox.inject(429, "/api/upload-video")  # refused once: the file is streamed again after the wait
        files, _ = check_sources([str(song)], client.settings)
        await upload_sources(client, session.session_id, files, [], on_progress)
    assert waits == [30] and sandbox.count("/api/upload-video") == 2
    assert sent == sorted(set(sent)) and sent[-1] == song.stat().st_size


@pytest.mark.parametrize(("change", "now"), [("grow", "larger now"), ("shrink", "1.0 MB now")])
async def test_a_file_that_changes_after_its_checks_is_not_sent_and_says_why(sandbox, service, tmp_path, change,
                                                                            now) -> None:
    clip = media(tmp_path, "clip.mp4", 3 * 1024 * 1024)

    async def edit_the_file(progress: int, total: int, message: str) -> None:
        if progress == 1024 * 1024:  # the first chunk is on its way: the file changes under the upload
            with clip.open("ab" if change == "grow" else "r+b") as handle:
                handle.write(b"\x01" * 10) if change == "grow" else handle.truncate(1024 * 1024)

    await service.sessions.ensure("make a video")
    with pytest.raises(InvalidSource, match=f"clip.mp4 changed while it was being uploaded \\(3.0 MB when checked, {now}\\)"):
        await service.upload([str(clip)], edit_the_file)
    assert sandbox.sessions[(await service.sessions.current()).session_id].video_infos == []


async def test_jpeg_is_sent_as_jpg_and_flac_is_refused_before_any_request(sandbox, service, tmp_path) -> None:
    photo = media(tmp_path, "photo.JPEG")
    result = await service.upload([str(photo)])  # the sandbox accepts only backend.md's spellings
    assert [(item.name, item.type) for item in result.uploads] == [("photo.JPEG", "image")]
    stored = sandbox.sessions[(await service.sessions.current()).session_id].video_infos
    assert [entry["name"] for entry in stored] == ["photo.jpg"]
    with pytest.raises(errors.UnsupportedFileType, match=r"song.flac: NemoVideo does not accept .flac files. "
                                                         r"Accepted formats: mp4, mov, avi, webm, mkv, jpg, png"):
        await service.upload([str(media(tmp_path, "song.flac"))])
    assert sandbox.count("/api/upload-video") == 1


# Exports


async def test_nothing_to_export_without_content(sandbox, service) -> None:
    with pytest.raises(NothingToExport, match="describe or upload something first"):
        await service.export()
    await service.sessions.ensure("hi")
    with pytest.raises(NothingToExport):
        await service.export()
    assert sandbox.count("/api/render") == 0


async def test_export_lands_a_whole_mp4_and_keeps_the_token_at_the_api(sandbox, service, out, sandbox_server) -> None:
    await project_with_content(service, sandbox)
    result = await service.export(wait_seconds=20)
    assert result.status == "done"
    path = Path(result.path)
    assert path.parent == out and path.is_absolute() and path.suffix == ".mp4"
    assert path.read_bytes()[4:8] == b"ftyp" and path.stat().st_size == result.size_bytes
    assert mp4s(out) == [path]  # no .part left behind
    assert result.url.startswith(sandbox_server.download_url)
    assert result.project_link.startswith("https://nemovideo.com/workspace/claim?ct=clm_")
    downloads = [r for r in sandbox.requests if r.host == "download"]
    assert downloads and all("authorization" not in r.headers and "x-skill-source" not in r.headers for r in downloads)
    assert sandbox.count("/api/render/proxy/lambda", "POST") == 1


async def test_an_unchanged_draft_is_not_rendered_twice(sandbox, service, out) -> None:
    await project_with_content(service, sandbox)
    first = await service.export(wait_seconds=20)
    again = await service.export(wait_seconds=20)
    assert again.path == first.path and again.reply.startswith("Already exported")
    assert sandbox.count("/api/render/proxy/lambda", "POST") == 1


async def test_a_cut_download_is_retried_and_leaves_no_partial_file(sandbox, service, out) -> None:
    await project_with_content(service, sandbox)
    sandbox.cut_next_download = True
    result = await service.export(wait_seconds=20)
    assert Path(result.path).stat().st_size == result.size_bytes
    assert mp4s(out) == [Path(result.path)]


async def test_a_failed_download_leaves_nothing_and_the_next_export_delivers(sandbox, service, out) -> None:
    await project_with_content(service, sandbox)
    sandbox.inject(502, "/files/", times=1)
    sandbox.inject(502, "/api/render/proxy/render_", times=2)  # the fallback download
    with pytest.raises(Exception, match="could not be downloaded completely"):
        await service.export(wait_seconds=20)
    assert mp4s(out) == []
    result = await service.export(wait_seconds=20)
    assert mp4s(out) == [Path(result.path)]
    assert sandbox.count("/api/render/proxy/lambda", "POST") == 1


async def test_an_expired_download_url_is_refreshed_from_the_render_status(sandbox, service, out) -> None:
    await project_with_content(service, sandbox)
    first = await service.export(wait_seconds=20)
    record = await service.exporter.registry.get(first.render_id)
    # Days later the signed URL has expired and the file is gone from disk: only a fresh URL works.
    Path(first.path).unlink()
    await service.exporter.registry.save(record.model_copy(update={
        "status": "completed", "url": record.url.replace(".mp4", "-expired.mp4"), "path": None}))
    again = await service.export(wait_seconds=20)
    assert Path(again.path).is_file() and again.url == record.url
    assert sandbox.count("/api/render/proxy/render_") == 0  # no fallback needed
    assert sandbox.count("/api/render/proxy/lambda", "POST") == 1


async def test_the_words_around_several_uploads_all_reach_the_agent(sandbox, service, tmp_path,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    media(tmp_path, "intro.mp4")
    media(tmp_path / "My Videos", "outro clip.mov")
    message = "use ~/intro.mp4 as the opening and ~/My Videos/outro clip.mov as the ending"
    result = await service.chat(message)
    assert result.action == "upload" and result.reply.startswith("Uploaded 2 files: intro.mp4")
    session = sandbox.sessions[(await service.sessions.current()).session_id]
    assert [entry["name"] for entry in session.video_infos] == ["intro.mp4", "outro clip.mov"]
    assert session.messages == [message + "\n[uploaded: intro.mp4, outro clip.mov]"]


@pytest.mark.parametrize("blank", ["   \n", "\t", "\u3000"])
async def test_a_blank_message_is_refused_before_any_request(sandbox, service, blank) -> None:
    with pytest.raises(errors.InvalidInput, match="The message is empty"):
        await service.chat(blank)
    assert sandbox.requests == []


async def test_a_message_over_the_limit_is_refused_before_any_request(sandbox, service) -> None:
    with pytest.raises(errors.InvalidInput, match="characters long"):
        await service.chat("中" * 128_000)
    assert sandbox.requests == []


async def test_402_is_about_the_plan_not_credits(sandbox, service) -> None:
    await project_with_content(service, sandbox)
    sandbox.inject(402, "/api/render/proxy/lambda")
    with pytest.raises(errors.ExportBlocked, match="registered NemoVideo account .*not about credits.*open it in the browser: https://nemovideo.com/workspace/claim\\?ct=clm_.*nemovideo-mcp login"):
        await service.export()


async def test_a_failed_render_is_a_clear_error(sandbox, service) -> None:
    await project_with_content(service, sandbox)
    sandbox.fail_renders = True
    with pytest.raises(RenderFailed, match="failed on NemoVideo's side"):
        await service.export(wait_seconds=20)


async def test_a_refused_render_start_is_retried_once_with_a_new_id(sandbox, service) -> None:
    await project_with_content(service, sandbox)
    sandbox.replay("/api/render/proxy/lambda", {"success": False, "error": {"code": 1, "message": "busy"}}, times=1)
    result = await service.export(wait_seconds=20)
    assert result.status == "done" and len(sandbox.render_ids()) == 1
    starts = [r for r in sandbox.requests if r.path == "/api/render/proxy/lambda"]
    assert len(starts) == 2


async def test_a_long_render_returns_a_handle_and_wait_delivers(sandbox, service) -> None:
    await project_with_content(service, sandbox)
    sandbox.render_seconds = 1.5
    working = await service.export(wait_seconds=0.2)
    assert working.status == "working" and working.job_id
    done = await service.wait(working.job_id, wait_seconds=20)
    assert done.status == "done" and Path(done.path).is_file()


async def test_chat_routes_export_and_upload_directly(sandbox, quick_service, tmp_path) -> None:
    # An export after a turn waits for that turn's late writes to settle: that watch on the test scale (2 s each).
    service = quick_service
    song = media(tmp_path, "track.mp3")
    uploaded = await service.chat(f"make a video synced to {song}")
    assert uploaded.action == "upload" and uploaded.reply.startswith("Uploaded 1 file: track.mp3")
    # The instruction went on to the agent after the upload, word for word, with what was uploaded.
    session = sandbox.sessions[(await service.sessions.current()).session_id]
    assert session.messages == [f"make a video synced to {song}\n[uploaded: track.mp3]"]
    exported = await service.chat("send me the video")
    assert exported.action == "export" and "✅ Exported" in exported.reply
    elsewhere = tmp_path / "Desktop"
    await service.chat("add a title 'Two'")  # a changed draft, so a new render
    saved = await service.chat(f"export it to {elsewhere}")
    assert saved.action == "export" and f"{elsewhere}/nemovideo-" in saved.reply


async def test_export_through_mcp_returns_a_resource_link(sandbox, settings, identity, out) -> None:
    async with VideoService(settings, identity) as seeding:
        await project_with_content(seeding, sandbox)
    async with Client(build_server(settings, identity)) as client:
        result = await client.call_tool("export", {"output_dir": str(out), "wait_seconds": 20})
    assert not result.is_error, result.content[0].text
    link = result.content[1]
    assert link.type == "resource_link" and link.uri == Path(result.structured_content["path"]).as_uri()
    assert link.mime_type == "video/mp4"


async def test_a_restarted_server_re_attaches_to_the_render(sandbox, settings, identity, env, out, stdio_params) -> None:
    """Kill the server mid-render, export again: one render start, one file."""
    async with VideoService(settings, identity) as seeding:
        await project_with_content(seeding, sandbox)
    sandbox.render_seconds = 2.0
    env = {**env, "NEMO_OUTPUT_DIR": str(out)}
    async with Client(stdio_params(env)) as first:
        working = await first.call_tool("export", {"wait_seconds": 0.2})
    assert working.structured_content["status"] == "working"
    async with Client(stdio_params(env)) as second:
        done = await second.call_tool("export", {"wait_seconds": 30})
    assert done.structured_content["status"] == "done", done.content[0].text
    assert sandbox.count("/api/render/proxy/lambda", "POST") == 1
    assert mp4s(out) == [Path(done.structured_content["path"])]


def test_polling_asks_again_just_before_the_expected_end() -> None:
    assert next_poll_delay(elapsed=2, progress=4, polls=1) == pytest.approx(48 * 0.6)
    assert next_poll_delay(elapsed=40, progress=90, polls=5) == pytest.approx(40 * 10 / 90 * 0.6)
    assert next_poll_delay(elapsed=44.5, progress=99, polls=8) == 0.5
    assert next_poll_delay(elapsed=5, progress=None, polls=0) == 2.0
    assert next_poll_delay(elapsed=500, progress=None, polls=20) == 30.0


async def test_two_exports_at_once_share_one_render_and_one_file(sandbox, service, out) -> None:
    import anyio

    await project_with_content(service, sandbox)
    results = []

    async def export() -> None:
        results.append(await service.export(wait_seconds=20))

    async with anyio.create_task_group() as group:
        group.start_soon(export)
        group.start_soon(export)
    assert sandbox.count("/api/render/proxy/lambda", "POST") == 1
    assert {result.path for result in results} == {str(mp4s(out)[0])} and len(mp4s(out)) == 1


async def test_a_render_abandoned_long_ago_does_not_block_new_exports(sandbox, service, settings) -> None:
    import time

    from nemovideo_mcp.export import RenderRecord, draft_hash

    await project_with_content(service, sandbox)
    session = await service.sessions.current()
    await service.exporter.registry.save(RenderRecord(
        render_id="render_lost", api_url=settings.api_url, session_id=session.session_id,
        draft_hash=draft_hash(GENERATED_DRAFT), started_at=time.time() - 16 * 60,
    ))
    result = await service.export(wait_seconds=20)
    assert result.status == "done" and result.render_id != "render_lost"
    assert sandbox.count("/api/render/proxy/lambda", "POST") == 1


async def test_a_delivered_video_asked_for_elsewhere_is_copied_not_rendered_again(sandbox, service, tmp_path) -> None:
    await project_with_content(service, sandbox)
    first = await service.export(wait_seconds=20)
    second = await service.export(str(tmp_path / "Desktop"), wait_seconds=20)
    assert Path(second.path).parent == tmp_path / "Desktop"
    assert Path(second.path).read_bytes() == Path(first.path).read_bytes()
    assert sandbox.count("/api/render/proxy/lambda", "POST") == 1


@pytest.mark.parametrize("make_dir", [lambda tmp: str(media(tmp, "a-file.mp4")), lambda tmp: "~nosuchuser_x/videos"])
async def test_an_unusable_output_folder_is_refused_before_rendering(sandbox, service, tmp_path, make_dir) -> None:
    from nemovideo_mcp.export import OutputDirUnusable

    await project_with_content(service, sandbox)
    with pytest.raises(OutputDirUnusable, match="Choose another folder"):
        await service.export(make_dir(tmp_path))
    assert sandbox.count("/api/render") == 0


def test_target_names_are_reserved(tmp_path) -> None:
    from nemovideo_mcp.export import reserve_target

    first, second = reserve_target(tmp_path, "clip"), reserve_target(tmp_path, "clip")
    assert (first.name, second.name) == ("clip.mp4", "clip-2.mp4")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip-2.mp4.part", "clip.mp4.part"]


async def test_a_link_is_sent_under_its_own_checked_name(sandbox, service, tmp_path) -> None:
    blob = media(tmp_path / "store", "blob_abc123", 3000)
    link = tmp_path / "clip.mp4"
    link.symlink_to(blob)
    result = await service.upload([str(link)])
    assert result.uploads[0].name == "clip.mp4"
    assert sandbox.sessions[(await service.sessions.current()).session_id].video_infos[0]["name"] == "clip.mp4"


async def test_a_path_of_an_unknown_user_is_a_clear_error(sandbox, service) -> None:
    with pytest.raises(InvalidSource, match="There is no file at ~nosuchuser_x/a.mp4"):
        await service.upload(["~nosuchuser_x/a.mp4"])
    assert sandbox.requests == []
