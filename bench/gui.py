"""Cost of GUI translation on the replies that made it quadratic (issue 14).

Each reply is one line made of one of tests/test_gui.py's QUADRATIC_RUNS (unclosed quotes,
stops, spaces) with a GUI word in it, so every step of translation reads it. The anchor, in
the same run, is an ordinary reply of the same length: sentences of content with an
instruction among them. Both are measured at a quarter of the translation budget and at the
budget: cost linear in the length keeps a run's ratio to the anchor at both sizes, quadratic
cost multiplies it by four. Last, the issue's reply of 80 000 characters, which is past the
budget, against the anchor at the budget. The measurements alternate in rounds so machine
noise hits them alike; each reports its median round.

    python bench/gui.py [--rounds 9] [--seconds 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Runnable from a checkout without installing the package.
sys.path.insert(0, str(REPO))

from bench.timing import time_round  # noqa: E402
from nemovideo_mcp.gui import MAX_TRANSLATED_CHARS, translate  # noqa: E402
from tests.test_gui import QUADRATIC_RUNS  # noqa: E402

ANCHOR = "ordinary reply (anchor)"
ISSUE_CHARS = 80_000


def line_of(run: str, chars: int) -> str:
    start, end = "I set the export title to ", "x."
    return start + run * ((chars - len(start) - len(end)) // len(run)) + end


def ordinary(chars: int) -> str:
    sentences = "I synced the cuts to the beat and added a title. Click Export to download it. "
    return (sentences * (chars // len(sentences) + 1))[:chars]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement, split over the rounds")
    args = parser.parse_args()

    sizes = (MAX_TRANSLATED_CHARS // 4, MAX_TRANSLATED_CHARS)
    replies: dict[tuple[str, int], str] = {}
    for chars in sizes:
        replies[ANCHOR, chars] = ordinary(chars)
        for run in QUADRATIC_RUNS:
            replies[repr(run), chars] = line_of(run, chars)
    replies[f"{ISSUE_CHARS:,} characters of {QUADRATIC_RUNS[0]!r}", ISSUE_CHARS] = line_of(QUADRATIC_RUNS[0], ISSUE_CHARS)

    per_round = args.seconds / args.rounds
    samples: dict[tuple[str, int], list[float]] = {key: [] for key in replies}
    for reply in replies.values():
        time_round(lambda reply=reply: translate(reply), per_round / 4)  # warm-up
    for _ in range(args.rounds):
        for key, reply in replies.items():
            samples[key].append(time_round(lambda reply=reply: translate(reply), per_round))

    print(f"translation budget {MAX_TRANSLATED_CHARS:,} characters; median of {args.rounds} rounds, "
          f"{args.seconds:g} s per measurement")
    print(f"{'reply':40s} " + "  ".join(f"{chars:>7,} chars: ms, cost/anchor" for chars in sizes))
    medians = {key: statistics.median(values) for key, values in samples.items()}
    for name in [ANCHOR, *(repr(run) for run in QUADRATIC_RUNS)]:
        print(f"{name:40s} " + "  ".join(
            f"{medians[name, chars] * 1e3:>12.2f} {medians[name, chars] / medians[ANCHOR, chars]:>10.2f}x"
            for chars in sizes))
    issue = next(key for key in replies if key[1] == ISSUE_CHARS)
    print(f"{issue[0]:40s} {medians[issue] * 1e3:.3f} ms, "
          f"{medians[issue] / medians[ANCHOR, MAX_TRANSLATED_CHARS]:.3f}x the anchor at the budget")


if __name__ == "__main__":
    main()
