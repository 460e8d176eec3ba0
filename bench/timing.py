"""What the benches share: timing one piece of work by repeating it for a while."""

from __future__ import annotations

import time
from collections.abc import Callable


def time_round(work: Callable[[], object], seconds: float) -> float:
    """Seconds per call of `work`, called again until `seconds` have passed (at least once)."""
    passes = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        work()
        passes += 1
        now = time.perf_counter()
        if now >= deadline:
            return (now - started) / passes
