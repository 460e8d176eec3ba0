"""Real videos from the sandbox: the demo's music video, each variant's flow, the analysis behind
them, 1080p on request, the upload folder's life cycle, and the placeholder without the extra."""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from nemovideo_mcp.demo import DEMO_TEMPO, FLOWS, make_input, run_demo
from nemovideo_mcp.sandbox import Sandbox, SandboxServer
from nemovideo_mcp.sandbox.agent import plan_turn
from nemovideo_mcp.sandbox.studio import PLACEHOLDER, render_hint

av = pytest.importorskip("av")  # the render extra, which the README's first command and CI install
np = pytest.importorskip("numpy")

from nemovideo_mcp.sandbox.analysis import beats_of  # noqa: E402  (needs the render extra)
from nemovideo_mcp.sandbox.media import audio_blocks  # noqa: E402
from nemovideo_mcp.sandbox.render import FPS, draft_seconds  # noqa: E402
from nemovideo_mcp.sandbox.samples import make_track  # noqa: E402

ATTRIBUTION = {"X-Skill-Source": "nemovideo", "X-Skill-Version": "1.0.0", "X-Skill-Platform": "test"}


def streams_of(path: Path) -> tuple[list[str], float]:
    with av.open(str(path)) as container:
        names = sorted(f"{stream.type}:{stream.codec_context.name}" for stream in container.streams)
        return names, container.duration / av.time_base


def mono(path: Path) -> np.ndarray:
    return np.concatenate([block[0] for block in audio_blocks(path, 22050, "mono")])


def best_correlation(a: np.ndarray, b: np.ndarray, reach: int = 1500) -> float:
    """Normalised correlation of two signals at the best small lag (AAC adds a little delay)."""
    length = min(len(a), len(b)) - 2 * reach
    reference = b[reach:reach + length]
    scores = []
    for lag in range(0, 2 * reach + 1, 1):
        window = a[lag:lag + length]
        scores.append(float(np.dot(window, reference) / (np.linalg.norm(window) * np.linalg.norm(reference) + 1e-9)))
    return max(scores)


def frame_differences(path: Path) -> np.ndarray:
    """How much each frame differs from the one before (index 0 is 0)."""
    thumbnails = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            thumbnails.append(frame.reformat(64, 36, format="gray").to_ndarray().astype(np.float32))
    return np.array([0.0] + [float(np.abs(b - a).mean()) for a, b in zip(thumbnails, thumbnails[1:])])


def video_segments(draft: dict[str, Any]) -> list[dict[str, Any]]:
    return next(track["sg"] for track in draft["t"] if track["tt"] == 0)


@pytest.mark.anyio
async def test_the_demo_ends_with_a_music_video_cut_on_the_beats_of_the_uploaded_track(tmp_path: Path) -> None:
    made = await run_demo(io.StringIO(), tmp_path / "out", "generator-from-music", walkthrough=False, seconds=4.0,
                          poll_scale=0.1, pace=0.25)
    assert made is not None and made.path.parent == tmp_path / "out"

    names, duration = streams_of(made.path)
    assert names == ["audio:aac", "video:h264"]
    assert abs(duration - draft_seconds(made.draft)) <= 0.2
    with av.open(str(made.path)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (1280, 720)

    # The soundtrack is the uploaded track: the demo's track is deterministic, so make it again.
    track = make_input("music", tmp_path / "again", real=True, seconds=4.0)
    assert best_correlation(mono(made.path), mono(track)) > 0.9

    # Cuts sit on the track's real beats (every 0.5 s at 120 BPM), as detected from its spectrum.
    cuts = [segment["st"] / 1000 for segment in video_segments(made.draft)][1:]
    beat = 60 / DEMO_TEMPO
    assert len(cuts) >= 6
    assert all(abs(cut - round(cut / beat) * beat) < 0.03 for cut in cuts)

    # The picture changes at those beats far more than between them.
    differences = frame_differences(made.path)
    at_beats = [differences[math.ceil(cut * FPS - 1e-6)] for cut in cuts]
    between = [differences[math.ceil((a + b) / 2 * FPS)] for a, b in zip(cuts, cuts[1:])]
    assert np.mean(at_beats) > 3 * np.mean(between)


@pytest.mark.anyio
async def test_each_variant_makes_a_playable_video_from_its_own_kind_of_input(tmp_path: Path) -> None:
    made = {}

    async def run(variant: str) -> None:
        made[variant] = await run_demo(io.StringIO(), tmp_path / variant, variant, walkthrough=False, seconds=2.0,
                                       poll_scale=0.1, pace=0.25)

    async with anyio.create_task_group() as group:
        for variant in FLOWS:
            if variant != "generator-from-music":  # the test above
                group.start_soon(run, variant)
    assert len(made) == len(FLOWS) - 1
    for variant, result in made.items():
        assert result is not None, variant
        names, duration = streams_of(result.path)
        assert names == ["audio:aac", "video:h264"], variant
        assert abs(duration - draft_seconds(result.draft)) <= 0.2, variant
        assert float(np.sqrt(np.mean(mono(result.path) ** 2))) > 0.01, variant  # music, not silence
        shots = video_segments(result.draft)
        sounds = [segment["m"] for track in result.draft["t"] if track["tt"] == 1 for segment in track["sg"]]
        flow = FLOWS[variant]
        if flow == "music":
            assert all(shot["m"]["fx"] == "visualizer" for shot in shots) and sounds[0]["name"] == "city nights.wav"
        elif flow == "score":  # the clip whole, with a generated bed
            assert [(shot["m"]["name"], shot["st"], shot["d"]) for shot in shots] == [("summer trip.mp4", 0, 2000)]
            assert "groove" in sounds[0], variant
        else:  # a new cut of the clip's shots, with transitions and a generated bed
            assert len(shots) >= 3 and all(shot["m"]["tr"] > 0 for shot in shots[1:]) and "groove" in sounds[0]


def test_beats_are_found_at_other_tempos(tmp_path: Path) -> None:
    for tempo in (96.0, 150.0):
        found = beats_of(make_track(tmp_path / f"{tempo}.wav", seconds=4.0, tempo=tempo))
        beat = 60 / tempo
        assert abs(found.tempo - tempo) / tempo < 0.02
        assert len(found.times) >= 4 * tempo / 60 - 2
        assert all(abs(t - round(t / beat) * beat) < 0.03 for t in found.times)


def test_the_same_upload_gives_the_same_draft(tmp_path: Path) -> None:
    track = make_track(tmp_path / "song.wav", seconds=3.0)
    drafts = []
    for _ in range(2):
        sandbox = Sandbox()
        try:
            with track.open("rb") as source:
                sandbox.studio.adopt("media_1", sandbox.studio.keep(source, "song.wav", "audio"))
            uploads = sandbox.studio.uploads([{"id": "media_1", "name": "song.wav", "type": "audio"}])
            turn = plan_turn("make a music video", uploads)
            drafts.append(turn.late_edit(turn.edit({"t": []})))
        finally:
            sandbox.close()
    assert drafts[0] == drafts[1] and len(video_segments(drafts[0])) >= 5


# -- the sandbox over HTTP -------------------------------------------------------------------------


@pytest.fixture
def http(sandbox_server: SandboxServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=sandbox_server.url, timeout=10) as client:
        yield client


def session_for(client: httpx2.Client) -> tuple[dict[str, str], str]:
    token = client.post("/api/auth/anonymous-token", headers={"X-Client-Id": "render-tests"}).json()["data"]["token"]
    auth = {"Authorization": f"Bearer {token}", **ATTRIBUTION}
    session_id = client.post("/api/tasks/me/with-session/nemo_agent", json={"language": "en"},
                             headers=auth).json()["data"]["session_id"]
    return auth, session_id


def test_uploads_live_in_a_private_folder_until_reset(sandbox, http, tmp_path: Path) -> None:
    track = make_track(tmp_path / "city nights.wav", seconds=2.0)
    auth, session_id = session_for(http)
    reply = http.post(f"/api/upload-video/nemo_agent/me/{session_id}", headers=auth,
                      files={"files": ("city nights.wav", track.read_bytes())})
    [stored] = reply.json()["data"]["files"]
    assert stored["duration"] == pytest.approx(2.0, abs=0.05)
    kept = sandbox.studio.path_of(stored["hash"])
    assert kept is not None and kept.read_bytes() == track.read_bytes()
    assert kept.parent.name.startswith("nemovideo-sandbox-")
    sandbox.reset()
    assert not kept.exists() and not kept.parent.exists()


def test_a_1080p_render_reports_progress_and_downloads_whole(sandbox, sandbox_server, http) -> None:
    sandbox.real_renders, sandbox.render_seconds = True, 0
    draft = {"t": [{"tt": 0, "sg": [{"st": 0, "d": 1200, "m": {"name": "card", "palette": 2}}]},
                   {"tt": 1, "sg": [{"st": 0, "d": 1200, "m": {"name": "bed", "groove": {"tempo": 100, "seed": 1}}}]}]}
    sandbox.start_render("render_hd", draft, {"resolution": "1080p"})
    seen = []
    deadline = time.monotonic() + 30
    while (status := sandbox.render_status("render_hd", sandbox_server.download_url))["status"] != "completed":
        assert status["status"] in ("pending", "processing") and time.monotonic() < deadline
        seen.append(status["progress"])
        time.sleep(0.01)
    assert seen == sorted(seen) and status["progress"] == 100
    downloaded = http.get(status["url"])
    assert int(downloaded.headers["content-length"]) == len(downloaded.content) == status["size"]
    path = sandbox.render_file("render_hd")
    assert path.read_bytes() == downloaded.content
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.width, video.height) == (1920, 1080)


def test_the_placeholder_clip_is_a_playable_mp4() -> None:
    with av.open(str(PLACEHOLDER)) as container:
        names = sorted(f"{stream.type}:{stream.codec_context.name}" for stream in container.streams)
        frames = sum(1 for _ in container.decode(video=0))
    assert names == ["audio:aac", "video:h264"] and frames == 50


def test_without_the_render_extra_the_sandbox_serves_the_placeholder_and_says_why(
        sandbox, sandbox_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.studio, "can_render", False)
    monkeypatch.setattr("nemovideo_mcp.sandbox.agent.rendering_available", lambda: False)
    sandbox.real_renders, sandbox.render_seconds = True, 0
    [upload] = sandbox.studio.uploads([{"id": "media_9", "name": "song.mp3", "type": "audio"}])
    assert render_hint() in plan_turn("make a music video", [upload]).text
    sandbox.start_render("render_plain", {"t": [{"tt": 0, "sg": [{"st": 0, "d": 9000, "m": {}}]}]})
    status = sandbox.render_status("render_plain", sandbox_server.download_url)
    assert status["status"] == "completed"
    downloaded = httpx2.get(status["url"])
    assert downloaded.content == PLACEHOLDER.read_bytes()
    assert int(downloaded.headers["content-length"]) == PLACEHOLDER.stat().st_size
