from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from tests.conftest import FIXTURES, REPO


def _bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sse_bench_runs_over_every_fixture(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # One pass of each measurement: what a full run does to every transcript, without the timing.
    monkeypatch.setattr(sys, "argv", ["sse.py", "--rounds", "1", "--seconds", "0"])
    _bench("sse").main()
    transcripts = len(list((FIXTURES / "adk-sse").glob("*.sse")))
    assert capsys.readouterr().out.startswith(f"{transcripts} transcripts per pass:")


def test_the_gui_bench_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["gui.py", "--rounds", "1", "--seconds", "0"])
    _bench("gui").main()
    assert "the anchor at the budget" in capsys.readouterr().out
