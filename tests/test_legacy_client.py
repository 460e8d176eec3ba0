"""A 2025-era host (the mcp 1.x SDK's `ClientSession`, in an environment of its own made by uv) gets what it got
before the Tasks extension: results, never a task (issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, missing, subprocess_env
from tests.test_start_commands import NETWORK_ENV, UNREACHABLE, UV, UV_CACHE

MCP_1 = "mcp>=1.23,<2"


def test_an_mcp_1_client_gets_results_and_no_task(sandbox, env, tmp_path) -> None:
    if UV is None:
        missing("uv is not installed: `pip install uv` (the test extra has it)")
    sandbox.late_write_seconds = None
    sandbox.real_renders = False  # the placeholder clip: what is tested is how the file travels, not its frames
    network = {name: os.environ[name] for name in NETWORK_ENV if os.environ.get(name)}
    done = subprocess.run(
        [UV, "run", "--no-project", "--quiet", "--with", MCP_1, "python", str(REPO / "tests" / "legacy" / "client.py"),
         sys.executable, "-m", "nemovideo_mcp"],
        input=json.dumps({**subprocess_env(env), "NEMO_OUTPUT_DIR": str(tmp_path / "out")}), capture_output=True,
        text=True, timeout=240, env={**network, "PATH": os.environ.get("PATH", ""), "UV_CACHE_DIR": str(UV_CACHE),
                                     "HOME": os.environ.get("HOME", str(tmp_path))}, cwd=REPO)
    if done.returncode and any(sign in done.stderr.lower() for sign in UNREACHABLE):
        missing(f"PyPI cannot be reached for {MCP_1}:\n{done.stderr[-500:]}")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["protocol"].startswith("2025")
    for call in ("chat", "export"):
        assert "resultType" not in seen[call] and "taskId" not in seen[call], seen[call]
        assert seen[call]["structuredContent"]["status"] == "done", seen[call]
    assert seen["export"]["structuredContent"]["path"].endswith(".mp4")
