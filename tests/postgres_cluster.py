"""A real, throwaway PostgreSQL for the tests, made with the machine's `initdb` and `pg_ctl`.

`NEMO_TEST_DATABASE_URL` (postgresql://…, a user who may create schemas there) is used instead when it is
set; advisory locks and notifications belong to the whole database, so test processes (xdist workers) that
share it may see each other's. Each test gets a schema of its own, dropped after it. PostgreSQL refuses to
run as root, as the tests and CI do: there the cluster belongs to the unprivileged user `postgres`, and its
programs run as that user.
"""

from __future__ import annotations

import glob
import functools
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import psycopg
import pytest
from psycopg import sql

from tests.conftest import missing

PASSWORD = "s3cret-pass-word"  # trust authentication ignores it; messages must not repeat it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A data directory in a private temporary folder, and the server that runs it on a loopback port."""

    def __init__(self) -> None:
        # Debian keeps PostgreSQL's programs off PATH, in /usr/lib/postgresql/<version>/bin.
        initdb = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1:]), None)
        if initdb is None:
            missing("PostgreSQL's initdb is not on PATH (Debian: apt-get install postgresql); tests that need "
                    "only a running server can use NEMO_TEST_DATABASE_URL instead")
        self._bin = Path(initdb).resolve().parent
        self._runner: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="nemovideo-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                missing("PostgreSQL does not run as root, and there is no user `postgres` to run it as")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._runner = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()

    def initdb(self) -> None:
        self._run("initdb", "-D", str(self.root / "data"), "--auth=trust", "--username=postgres", "--no-sync",
                  "--encoding=UTF8", "--no-locale", "--no-instructions")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-o", options, "-w",
                  "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run([*self._runner, str(self._bin / program), *args], capture_output=True, text=True)
        if done.returncode != 0:
            log = self.root / "log"
            server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stderr.strip()}\n{server_log}")


@functools.cache
def _shared_cluster() -> Cluster:
    cluster = Cluster()
    try:
        cluster.initdb()
        cluster.start()
    except BaseException:
        cluster.remove()
        raise
    return cluster


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL (postgresql://…) of a database where schemas can be made.

    Each test module that imports this fixture has a session fixture of its own: they share one cluster per
    process, removed when the session ends."""
    if url := os.environ.get("NEMO_TEST_DATABASE_URL"):
        yield url
        return
    cluster = _shared_cluster()
    try:
        yield cluster.url()
    finally:
        cluster.remove()


_numbers = itertools.count()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of an empty schema of this test's own, first on the search path (a schema takes milliseconds
    to make, a database a third of a second)."""
    name = f"nemovideo_test_{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    address = urlsplit(postgres_server)
    query = "&".join(filter(None, [address.query, urlencode({"options": f"-c search_path={name}"}, quote_via=quote)]))
    try:
        yield address._replace(query=query).geturl()
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
