"""The deploy/ recipe stays true to the code: the image holds what a wheel is built from, and the compose
example runs the replicas against one database behind a proxy that checks their readiness."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile

import yaml

from tests.conftest import REPO

DEPLOY = REPO / "deploy"


def test_the_image_copies_what_the_wheel_is_built_from_and_starts_hosted(tmp_path) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    sources = [part for line in dockerfile.splitlines() if line.startswith("COPY ") for part in line.split()[1:-1]]
    context = tmp_path / "context"
    context.mkdir()
    for source in sources:
        subprocess.run(["cp", "-r", str(REPO / source), str(context / source)], check=True)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "wheel"), str(context)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "nemovideo_mcp/SKILL.md" in names and "nemovideo_mcp/postgres.py" in names
    assert re.search(r'CMD \["nemovideo-mcp", "--transport", "http", "--host", "0.0.0.0"', dockerfile)
    assert "/healthz" in dockerfile and "[hosted]" in dockerfile


def test_the_compose_example_runs_two_replicas_on_one_database_behind_a_proxy() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    replicas = [name for name in compose["services"] if name.startswith("replica")]
    assert len(replicas) == 2
    for name in replicas:
        assert compose["services"][name]["environment"]["NEMO_DATABASE_URL"].startswith("postgresql://")
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert all(f"{name}:8000" in caddyfile for name in replicas) and "health_uri /readyz" in caddyfile
    example = (DEPLOY / "example.env").read_text()
    for variable in ("NEMO_PUBLIC_URL", "NEMO_AUTH_ISSUER", "NEMO_SECRET_KEY", "NEMO_TOKEN"):
        assert f"{variable}=" in example
