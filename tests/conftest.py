from __future__ import annotations

import copy
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mcp import StdioServerParameters

from nemovideo_mcp.identity import SkillIdentity, load_identity
from nemovideo_mcp.sandbox import Sandbox, SandboxServer
from nemovideo_mcp.settings import Settings

REPO = Path(__file__).resolve().parent.parent
# Set by .ci/run: there every real part a test needs (uv, PyPI, the render extra, Node) must be present, and a
# test that would skip for want of one fails instead.
STRICT = os.environ.get("NEMO_TESTS_STRICT") == "1"


def missing(reason: str) -> None:
    """A real part this test needs is not on this machine: skip, saying which and how to get it (fail in CI)."""
    if STRICT:
        pytest.fail(f"{reason} (NEMO_TESTS_STRICT=1: CI must have it)")
    pytest.skip(reason)
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The seeds' example draft: a video, background music at 35% and a title.
SEED_DRAFT = {
    "t": [
        {"tt": 0, "sg": [{"st": 0, "d": 10000, "m": {"name": "city timelapse"}}]},
        {"tt": 1, "sg": [{"st": 0, "d": 10000, "m": {"name": "Lo-fi", "vol": 0.35, "role": "bgm"}}]},
        {"tt": 7, "sg": [{"st": 0, "d": 3000, "m": {"text": "Urban Dreams", "role": "title"}}]},
    ]
}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers per core. About a third of a worker's time is spent waiting (on sandbox turns and
    renders that take the time a test gives them, on server processes starting): a second worker per core runs
    while the first waits. Profiled on 2 cores: each of 2 workers used 37 s of CPU in 57 s; 4 workers finish the
    suite in ~46-50 s where 2 took ~58 s."""
    return 2 * (os.cpu_count() or 1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox()) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Sandbox:
    sandbox_server.sandbox.reset()
    sandbox_server.sandbox.render_seconds = 0.2
    # Protocol tests get the placeholder clip at once; tests of real rendering switch it on.
    sandbox_server.sandbox.real_renders = False
    return sandbox_server.sandbox


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def env(home: Path, sandbox: Sandbox, sandbox_server: SandboxServer) -> dict[str, str]:
    """The environment of a server process: a private HOME, pointed at the sandbox."""
    return {"HOME": str(home), "NEMO_API_URL": sandbox_server.url, "LANG": "en_US.UTF-8"}


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    # Renders in the sandbox take 0.2 s: polling keeps its shape on a 20× faster clock.
    return Settings.from_env(env).model_copy(update={"render_poll_scale": 0.05})


@pytest.fixture
def quick_settings(settings: Settings) -> Settings:
    """Polling schedules on a test scale (recovery after a cut stream, late writes): shapes kept, seconds shrunk."""
    return settings.model_copy(update={
        "recovery_delays_seconds": (0.05, 0.1), "recovery_give_up_seconds": 0.6,
        "late_write_delays_seconds": (0.05, 0.1), "late_write_watch_seconds": 1.5,
    })


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where a test's exports are saved."""
    return tmp_path / "Videos"


@pytest.fixture
async def quick_service(quick_settings: Settings, identity: SkillIdentity, out: Path):
    from nemovideo_mcp.service import VideoService

    async with VideoService(quick_settings.model_copy(update={"output_dir": out}), identity) as service:
        yield service


@pytest.fixture
def identity(home: Path) -> SkillIdentity:
    return load_identity(REPO / "SKILL.md", skill_source=None, home=home)


def subprocess_env(env: dict[str, str]) -> dict[str, str]:
    """What a host passes to `python -m nemovideo_mcp` (run with cwd=REPO, the skill folder)."""
    return {**env, "PATH": os.environ.get("PATH", "")}


@pytest.fixture
def seed_draft() -> dict:
    return copy.deepcopy(SEED_DRAFT)


@pytest.fixture
def stdio_params() -> Callable[..., StdioServerParameters]:
    """How a host starts the server over stdio: its environment, then extra arguments."""

    def params(env: dict[str, str], *args: str) -> StdioServerParameters:
        return StdioServerParameters(command=sys.executable, args=["-m", "nemovideo_mcp", *args], env=subprocess_env(env),
                                     cwd=REPO)

    return params
