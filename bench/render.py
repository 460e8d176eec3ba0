"""Sandbox rendering speed and memory: a 720p music video against its own audio's duration.

The music video is what the demo makes (the agent's draft for a synthesized track: the
audio-reactive layer cut on every detected beat, the track as soundtrack, a title), for a
30 s track and a longer one. Each render runs in a fresh subprocess that does nothing else,
so its peak RSS (VmHWM) is the renderer's. Anchor: the track's own duration, i.e. real
time. Targets: >= 2x faster than real time on this 2-core machine; peak memory flat in the
video's length.

    python bench/render.py [--seconds 30] [--long 120] [--runs 3] [--resolution 720p]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nemovideo_mcp.sandbox.director import music_video
from nemovideo_mcp.sandbox.samples import make_track
from nemovideo_mcp.sandbox.studio import Studio

REPO = Path(__file__).resolve().parent.parent


def memory_kib(field: str) -> int:
    """VmHWM (peak) or VmRSS of this process. Not ru_maxrss: Linux carries that over from the
    parent across exec, so a child would report the bench's own peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(draft_file: Path, media: Path, target: Path, resolution: str) -> None:
    """Render one draft and report the time and this process's peak RSS as JSON on stdout."""
    from nemovideo_mcp.sandbox.render import render

    draft = json.loads(draft_file.read_text())
    rss_before = memory_kib("VmRSS")
    started = time.perf_counter()
    result = render(draft, lambda media_id: media, target, resolution=resolution)
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": result.duration, "elapsed": elapsed, "size": result.size,
                      "rss_before_kib": rss_before, "rss_peak_kib": memory_kib("VmHWM")}))


def prepare(folder: Path, seconds: float) -> tuple[Path, Path, int]:
    """A synthesized track, analysed by the sandbox as an upload, and the agent's draft for it."""
    track = make_track(folder / f"track-{seconds:g}.wav", seconds=seconds, tempo=120.0)
    studio = Studio()
    try:
        with track.open("rb") as source:
            studio.adopt("media_1", studio.keep(source, track.name, "audio"))
        [upload] = studio.uploads([{"id": "media_1", "name": track.name, "type": "audio"}])
    finally:
        studio.close()
    plan = music_video(upload, [])
    draft_file = folder / f"draft-{seconds:g}.json"
    draft_file.write_text(json.dumps(plan.draft))
    shots = len(plan.draft["t"][0]["sg"])
    return draft_file, track, shots


def run(draft_file: Path, track: Path, folder: Path, resolution: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", str(draft_file), str(track), str(folder / "out.mp4"), resolution],
        check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--long", type=float, default=120.0, help="a longer video, to show memory stays flat")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--resolution", default="720p")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        draft_file, media, target, resolution = args.child
        child(Path(draft_file), Path(media), Path(target), resolution)
        return 0

    with tempfile.TemporaryDirectory(prefix="nemovideo-bench-render-") as scratch:
        folder = Path(scratch)
        draft_file, track, shots = prepare(folder, args.seconds)
        print(f"{args.seconds:g} s music video at {args.resolution}: {shots} shots cut on the detected beats")
        results = [run(draft_file, track, folder, args.resolution) for _ in range(args.runs)]
        for number, result in enumerate(results, 1):
            factor = result["seconds"] / result["elapsed"]
            print(f"  run {number}: {result['elapsed']:.2f} s to render {result['seconds']:g} s "
                  f"({factor:.2f}x real time), peak RSS {result['rss_peak_kib'] / 1024:.0f} MiB")
        elapsed = statistics.median(result["elapsed"] for result in results)
        factor = args.seconds / elapsed
        peak = statistics.median(result["rss_peak_kib"] for result in results) / 1024

        long_draft, long_track, long_shots = prepare(folder, args.long)
        long_result = run(long_draft, long_track, folder, args.resolution)
        long_peak = long_result["rss_peak_kib"] / 1024
        print(f"{args.long:g} s music video ({long_shots} shots): {long_result['elapsed']:.2f} s "
              f"({args.long / long_result['elapsed']:.2f}x real time), peak RSS {long_peak:.0f} MiB")

    print(f"\nreal-time factor: {factor:.2f}x (audio {args.seconds:g} s / render {elapsed:.2f} s, median of "
          f"{args.runs}); target >= 2x")
    print(f"peak memory: {peak:.0f} MiB for {args.seconds:g} s, {long_peak:.0f} MiB for {args.long:g} s "
          f"({long_peak / peak:.2f}x for {args.long / args.seconds:g}x the length); target flat")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
