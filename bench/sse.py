"""Decoding cost of `/run_sse`: httpx2 SSE parsing + AdkDecoder over every captured transcript.

The anchor, in the same run, is plain `json.loads` over the same `data` payloads: parsing
the JSON and nothing else. A frame that is not JSON (error_unescaped.sse's, on purpose) is
parsed until it fails, by the anchor as by the decoder, which then reads it as the run's error. The middle line, AdkDecoder.feed over the same payloads, splits
the cost between SSE parsing (including building each httpx2.Response) and event decoding.
The measurements alternate in rounds so machine noise hits them alike; each reports its
median round. MB/s counts payload bytes for every line, so its ratios equal the cost ratios.

    python bench/sse.py [--rounds 9] [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Runnable from a checkout without installing the package.
sys.path.insert(0, str(REPO))

import httpx2  # noqa: E402

from bench.timing import time_round  # noqa: E402
from nemovideo_mcp.sse import MAX_EVENT_BYTES, AdkDecoder  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "adk-sse"
ANCHOR = "json.loads (anchor)"
RUN_SSE = httpx2.Request("POST", "http://backend.test/run_sse")


def bodies() -> list[bytes]:
    out = []
    for path in sorted(FIXTURES.glob("*.sse")):
        raw = path.read_bytes()
        if raw.startswith(b"HTTP/1.1 "):
            raw = raw.split(b"\r\n\r\n", 1)[1]
        out.append(raw)
    return out


def sse_payloads(body: bytes) -> list[str]:
    response = httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body, request=RUN_SSE)
    return [event.data for event in httpx2.EventSource(response, max_event_size=MAX_EVENT_BYTES)]


def full_decode(all_bodies: list[bytes]) -> None:
    for body in all_bodies:
        response = httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body, request=RUN_SSE)
        decoder = AdkDecoder()
        for sse in httpx2.EventSource(response, max_event_size=MAX_EVENT_BYTES):
            decoder.feed(sse.data)


def feed_only(streams: list[list[str]]) -> int:
    events = 0
    for payloads in streams:
        decoder = AdkDecoder()
        for data in payloads:
            events += len(decoder.feed(data))
    return events


def is_json(data: str) -> bool:
    try:
        json.loads(data)
    except json.JSONDecodeError:
        return False
    return True


def json_anchor(streams: list[list[str]]) -> None:
    for payloads in streams:
        for data in payloads:
            is_json(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement, split over the rounds")
    args = parser.parse_args()

    all_bodies = bodies()
    streams = [sse_payloads(body) for body in all_bodies]
    frames = sum(len(payloads) for payloads in streams)
    not_json = sum(not is_json(data) for payloads in streams for data in payloads)
    payload_mb = sum(len(data.encode()) for payloads in streams for data in payloads) / 1e6

    measurements: dict[str, Callable[[], object]] = {
        "httpx2 EventSource + AdkDecoder": lambda: full_decode(all_bodies),
        "AdkDecoder.feed alone": lambda: feed_only(streams),
        ANCHOR: lambda: json_anchor(streams),
    }
    per_round = args.seconds / args.rounds
    for work in measurements.values():
        time_round(work, per_round / 4)  # warm-up: builds the pydantic schemas, fills caches
    samples: dict[str, list[float]] = {name: [] for name in measurements}
    for _ in range(args.rounds):
        for name, work in measurements.items():
            samples[name].append(time_round(work, per_round))

    events = feed_only(streams)
    print(f"{len(all_bodies)} transcripts per pass: {frames} SSE frames ({not_json} not JSON), "
          f"{payload_mb * 1e3:.1f} kB of payload, {events} ADK events; median of {args.rounds} rounds, "
          f"{args.seconds:g} s per measurement")
    anchor = statistics.median(samples[ANCHOR])
    for name, per_pass in samples.items():
        median = statistics.median(per_pass)
        produced = "-" if name == ANCHOR else f"{events / median:,.0f}"
        print(f"{name:33s} {frames / median:>9,.0f} frames/s  {produced:>9s} ADK events/s  "
              f"{payload_mb / median:6.1f} MB/s  decoder/anchor cost {median / anchor:5.2f}x")


if __name__ == "__main__":
    main()
