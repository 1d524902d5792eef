"""A PostgreSQL cluster of a test's own, on a free loopback port, to restart and stop at will.

The shared server on 127.0.0.1:5432 is never touched: each cluster is made
with Debian's postgresql-common tools (``pg_createcluster``,
``pg_ctlcluster``, ``pg_dropcluster``) under a random name, listens on
127.0.0.1 only, trusts local logins, and is dropped afterwards. It needs
root (the tools switch to the ``postgres`` user themselves); without root
or the tools, :func:`own_cluster` skips the test and says why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

POSTGRESQL_ROOT = Path("/usr/lib/postgresql")
CONFIG_ROOT = Path("/etc/postgresql")

# Throwaway data: no fsync, small memory, loopback only.
SETTINGS = """
listen_addresses = '127.0.0.1'
fsync = off
full_page_writes = off
shared_buffers = 16MB
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _installed_version() -> str | None:
    versions = sorted(path.name for path in POSTGRESQL_ROOT.glob("*") if (path / "bin" / "postgres").exists())
    return versions[-1] if versions else None


def why_unavailable() -> str | None:
    """Why this machine cannot make a cluster of its own, or None when it can."""
    if os.geteuid() != 0:
        return "making a PostgreSQL cluster of the test's own needs root (pg_createcluster)"
    if not all(shutil.which(tool) for tool in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster")):
        return "postgresql-common's pg_createcluster/pg_ctlcluster/pg_dropcluster are not installed"
    if _installed_version() is None:
        return f"no PostgreSQL server under {POSTGRESQL_ROOT}"
    return None


@dataclass
class PgCluster:
    version: str
    name: str
    port: int

    def url(self, database: str = "eat", user: str = "postgres") -> str:
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def _ctl(self, action: str) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action],
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop")

    def restart(self) -> None:
        self._ctl("restart")

    def create_database(self, name: str = "eat") -> str:
        """A new, empty database; returns its URL."""
        admin = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def wait_until_up(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            engine = sa.create_engine(self.url("postgres"), connect_args={"connect_timeout": 2})
            try:
                with engine.connect():
                    return
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
            finally:
                engine.dispose()


@contextmanager
def own_cluster(prefix: str = "eattest") -> Iterator[PgCluster]:
    """A started cluster on a free port, dropped (stopped first) when the block ends."""
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    cluster = PgCluster(_installed_version(), f"{prefix}_{uuid.uuid4().hex[:8]}", free_port())
    subprocess.run(
        ["pg_createcluster", cluster.version, cluster.name, "-p", str(cluster.port), "--start-conf=manual",
         "--", "--auth-local=trust", "--auth-host=trust"],
        check=True, capture_output=True, timeout=120,
    )
    try:
        with open(CONFIG_ROOT / cluster.version / cluster.name / "postgresql.conf", "a") as config:
            config.write(SETTINGS)
        cluster.start()
        cluster.wait_until_up()
        yield cluster
    finally:
        subprocess.run(["pg_dropcluster", "--stop", cluster.version, cluster.name], capture_output=True, timeout=120)
