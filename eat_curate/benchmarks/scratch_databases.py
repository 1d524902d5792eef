"""Databases the SQL benchmarks create for one run and drop after it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from eat_curate.sinks import database_url

DEFAULT_PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def temporary_postgres(server: sa.URL) -> Iterator[sa.URL]:
    """A new database on the PostgreSQL server that ``server`` (an admin URL) reaches, dropped on exit."""
    name = f"eatc_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def temporary_database(target: str) -> Iterator[sa.URL]:
    """A new database for ``target``: an SQLite file (must not exist) or a temporary PostgreSQL database."""
    url = database_url(target)
    if url.get_backend_name() != "sqlite":
        with temporary_postgres(url) as scratch:
            yield scratch
        return
    path = Path(url.database)
    if path.exists():
        raise FileExistsError(f"{path} exists; the bench writes a new SQLite file and deletes it")
    try:
        yield url
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
