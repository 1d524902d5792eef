"""Databases behind ``--db``: URLs, engines, checks before a run, and the schema version.

``--db`` takes a plain path (an SQLite file) or an SQLAlchemy URL
(``sqlite:///scores.db``, ``postgresql+psycopg://user@host/db``). Checks here
create nothing: a wrong URL, a missing folder or an unreachable server is
reported before any table or file exists.

The schema version lives in ``eat_meta`` (key ``schema_version``).
:func:`create_or_upgrade` creates the tables of a new database, refuses a
database written by a newer eat-curate, and runs :data:`MIGRATIONS` on an
older one.
"""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from eat_curate.sinks.shots import MAX_KEY_BYTES, shot_key
from eat_curate.sinks.sql import schema
from eat_curate.sinks.faults import RESUME_HINT, InfrastructureFailure
from eat_curate.sinks.sql.db_faults import (
    DatabaseUnreachable,
    holds_text_not_utf8,
    is_refusal,
    is_storage_fault,
    is_transient,
    reason,
)
from eat_curate.sinks.sql.stored_values import UnreadableValue, lenient_postgresql_times
from eat_curate.sinks.durable import ensure_writable_folder
from eat_curate.errors import StoreError

SQLITE_BUSY_TIMEOUT_S = 30
PG_CONNECT_TIMEOUT_S = 5
# Serialises concurrent create_or_upgrade calls on one PostgreSQL database (any fixed 64-bit number).
_PG_SCHEMA_LOCK = 0x6561_7463_7572_6174
_SQLITE_HEADER = b"SQLite format 3\x00"

# MIGRATIONS[n] upgrades a database at schema version n to n + 1, inside the upgrade transaction;
# each bump of schema.SCHEMA_VERSION adds its step here.
Migration = Callable[[sa.Connection], None]


def _v1_to_v2(connection: sa.Connection) -> None:
    """Runs record their driver's process id; two indexes no query used are gone."""
    connection.execute(sa.text("ALTER TABLE runs ADD COLUMN pid INTEGER"))
    connection.execute(sa.text("DROP INDEX IF EXISTS ix_images_album"))
    connection.execute(sa.text("DROP INDEX IF EXISTS ix_scores_model_album_mean"))


def _v2_to_v3(connection: sa.Connection) -> None:
    """Two indexes no query reads, which every write paid for, are gone (by content hash; scores by model and mean)."""
    connection.execute(sa.text("DROP INDEX IF EXISTS ix_images_content_hash"))
    connection.execute(sa.text("DROP INDEX IF EXISTS ix_scores_model_mean"))


def _v3_to_v4(connection: sa.Connection) -> None:
    """Runs record a heartbeat: when a running run last saved a batch (see eat_curate.runs.liveness)."""
    column_type = schema.runs.c.heartbeat_at.type.compile(dialect=connection.dialect)
    connection.execute(sa.text(f"ALTER TABLE runs ADD COLUMN heartbeat_at {column_type}"))


def _v4_to_v5(connection: sa.Connection, batch: int = 10_000) -> None:
    """Images know their shot (RAW + JPEG of one photograph), filled for every existing row from its path."""
    connection.execute(sa.text("ALTER TABLE images ADD COLUMN shot TEXT"))
    images = schema.images
    update = images.update().where(images.c.image_id == sa.bindparam("id")).values(shot=sa.bindparam("key"))
    # Batches by primary key, each read before it is written: memory stays flat, and no cursor is
    # open over the rows being updated.
    page = sa.select(images.c.image_id, images.c.path).order_by(images.c.image_id).limit(batch)
    last = None
    while True:
        rows = connection.execute(page if last is None else page.where(images.c.image_id > last)).all()
        if not rows:
            break
        connection.execute(update, [{"id": image_id, "key": shot_key(path)} for image_id, path in rows])
        last = rows[-1].image_id
    connection.execute(sa.text("CREATE INDEX ix_images_shot ON images (shot)"))


def _v5_to_v6(connection: sa.Connection, batch: int = 10_000) -> None:
    """Paths of any length can be stored: the path index no query read is gone (PostgreSQL's B-tree refused a
    path over 2.7 KB), and a shot key over ``shots.MAX_KEY_BYTES`` becomes its digest (``sinks.shots``)."""
    connection.execute(sa.text("DROP INDEX IF EXISTS ix_images_path"))
    images = schema.images
    update = images.update().where(images.c.image_id == sa.bindparam("id")).values(shot=sa.bindparam("key"))
    # Only SQLite can hold such keys (PostgreSQL's index refused them); length() counts characters, each at
    # most 4 bytes, so this finds every key that may be too long. Paged by primary key as in _v4_to_v5.
    page = (sa.select(images.c.image_id, images.c.path, images.c.shot)
            .where(sa.func.length(images.c.shot) > MAX_KEY_BYTES // 4).order_by(images.c.image_id).limit(batch))
    last = None
    while rows := connection.execute(page if last is None else page.where(images.c.image_id > last)).all():
        changed = [{"id": row.image_id, "key": key} for row in rows if (key := shot_key(row.path)) != row.shot]
        if changed:
            connection.execute(update, changed)
        last = rows[-1].image_id


MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6}


# --- URLs --------------------------------------------------------------------------------------


def database_url(db: str) -> sa.URL:
    """``--db`` as an SQLAlchemy URL; a plain path becomes ``sqlite:///<absolute path>``."""
    if not db or not db.strip():
        raise StoreError("--db is empty: give an SQLite file path or a database URL")
    if "://" not in db:
        return sa.URL.create("sqlite", database=str(Path(db).expanduser().absolute()))
    try:
        url = sa.make_url(db)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise StoreError(f"--db is not a valid database URL ({exc})") from None  # not echoed: it may hold a password
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise StoreError(f"--db: driver {driver!r} is not supported; use postgresql+psycopg://user@host/db")
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise StoreError(f"--db: driver {driver!r} is not supported; use sqlite:///path/to/file.db")
        if not url.database or url.database == ":memory:":
            raise StoreError("--db: an in-memory SQLite database would lose every score; give a file")
        return url.set(drivername="sqlite", database=str(Path(url.database).expanduser().absolute()))
    raise StoreError(
        f"--db: unsupported database {backend!r}; use an SQLite path or URL, or postgresql+psycopg://user@host/db"
    )


def without_password(db: str) -> str:
    """``--db`` as the user gave it, for summaries and run records, with a URL's password hidden."""
    if "://" not in db:
        return db
    try:
        return sa.make_url(db).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "(a --db that is not a valid URL)"  # refused before anything is written; never echoed


def describe(url: sa.URL) -> str:
    """The URL for messages: the file for SQLite, the URL without its password otherwise."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)


# --- engines -----------------------------------------------------------------------------------


def create_engine(url: sa.URL, busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S) -> sa.Engine:
    """An engine configured for concurrent writers: WAL and a busy timeout on SQLite.

    Write transactions go through :func:`write_transaction`; on SQLite they
    start with ``BEGIN IMMEDIATE`` so that two writers queue on the busy
    timeout (``busy_timeout_s``) instead of failing when a reader upgrades
    to a writer.
    """
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_s})
        event.listen(engine, "connect", partial(_configure_sqlite_connection, busy_timeout_s=busy_timeout_s))
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    engine = sa.create_engine(url, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S})
    # A time another tool stored that Python cannot hold ('infinity', year 20000) reads as None, not as a crash.
    event.listen(engine, "connect", lenient_postgresql_times)
    return engine


def _configure_sqlite_connection(
    dbapi_connection: sqlite3.Connection, _record: object, busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S
) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _begin_sqlite_transaction)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    _switch_to_wal(cursor)
    # In WAL mode NORMAL survives any process crash; only a power cut may lose the last commits.
    cursor.execute("PRAGMA synchronous = NORMAL")
    # 64 MB of page cache (default 2 MB): index pages of a million-image database stay in memory
    # instead of costing a system call each.
    cursor.execute("PRAGMA cache_size = -65536")
    # Checkpoint every 64 MB of WAL (default 4 MB): a batch touches pages all over the indexes, and
    # checkpointing less often writes each page once for many batches (about 3x the rows/s at 100k rows).
    cursor.execute("PRAGMA wal_autocheckpoint = 16384")
    cursor.execute(f"PRAGMA journal_size_limit = {64 << 20}")
    cursor.close()


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    # Switching a new file to WAL needs an exclusive lock, and SQLite may answer "database is
    # locked" at once, without the busy handler, while another process creates the same file.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _begin_sqlite_transaction(connection: sa.Connection) -> None:
    write = connection.get_execution_options().get("eat_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One transaction that will write: committed when the block ends, rolled back on error."""
    with connect(engine, engine.url) as connection:
        connection.execution_options(eat_write=True)
        with connection.begin():
            yield connection


# --- checks before a run -------------------------------------------------------------------------


def check_database(url: sa.URL) -> None:
    """Raise StoreError unless ``url`` can hold our tables; creates no file, database or table."""
    if url.get_backend_name() == "sqlite":
        _check_sqlite(Path(url.database))
        return
    engine = sa.create_engine(url, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S})
    try:
        with connect(engine, url) as connection:
            check_schema(connection, describe(url))
    finally:
        engine.dispose()


@contextmanager
def connect(engine: sa.Engine, url: sa.URL) -> Iterator[sa.Connection]:
    """A connection; a server that cannot be reached or refuses the login is one line.

    Raises :class:`DatabaseUnreachable` where waiting may help (refused or
    reset connections, a server starting up or shutting down), a plain
    StoreError where it will not (a wrong password, a missing database).
    """
    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        if is_transient(exc):
            raise DatabaseUnreachable(describe(url), reason(exc)) from None
        if is_storage_fault(exc):
            raise InfrastructureFailure(f"--db {describe(url)}: {reason(exc)}; {RESUME_HINT}") from None
        raise StoreError(f"cannot connect to {describe(url)}: {reason(exc)}") from None
    with connection:
        yield connection


def _check_sqlite(path: Path) -> None:
    if path.exists():
        if not path.is_file():
            raise StoreError(f"--db {path} is not a file")
        with open(path, "rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
        if header and header != _SQLITE_HEADER:
            raise StoreError(f"--db {path} is not an SQLite database")
        if header:
            engine = readonly_sqlite_engine(path)
            try:
                with engine.connect() as connection:
                    check_schema(connection, str(path))
            except sa.exc.DatabaseError as exc:
                raise StoreError(f"--db {path} cannot be read: {exc.orig}") from None
            finally:
                engine.dispose()
        # SQLite writes its -wal and -shm files beside the database: the folder must take new files.
        ensure_writable_folder(path.parent, f"--db {path}")
        return
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"--db {path}: the folder {folder} does not exist")
    ensure_writable_folder(folder, f"--db {path}")


def read_only_engine(url: sa.URL) -> sa.Engine:
    """An engine for reading ``url``: an SQLite file it can neither create nor change; any other database as is."""
    if url.get_backend_name() == "sqlite":
        return readonly_sqlite_engine(Path(url.database))
    return create_engine(url)


def readonly_sqlite_engine(path: Path) -> sa.Engine:
    """An engine that can only read ``path`` (and never creates it).

    On a read-only mount SQLite cannot make the -shm file a WAL database is
    read through; nobody can write there either, so the file is read as
    immutable (no locks, no -shm), unless a -wal file holds commits not yet
    in the database file (a writer that crashed, or a snapshot of a live
    database): immutable would read past them, so the existing -shm is used,
    and without one the database is refused rather than read without them.
    """
    # Percent-encoded: a '?', '#' or '%' in a folder's name would otherwise end the path or
    # decode to another file's (and an unrecognised query would open, even create, it for writing).
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    if _on_read_only_mount(path):
        uri += "" if _pending_wal(path) else "&immutable=1"
    return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))


def _pending_wal(path: Path) -> bool:
    """Whether ``path``'s -wal holds commits; InfrastructureFailure where no reader can see them (no -shm)."""
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    try:
        if wal.stat().st_size == 0:
            return False
    except OSError:
        return False
    if shm.is_file():
        return True
    raise InfrastructureFailure(
        f"{path}: its write-ahead log {wal.name} holds commits not yet in the file, which SQLite cannot read on "
        f"this read-only mount without {shm.name}; let any eat-curate command open it once where its folder is "
        f"writable, or read a copy of {path.name} and {wal.name} in a writable folder"
    )


def _on_read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def database_failure(error: sa.exc.DBAPIError, where: str) -> StoreError | None:
    """A database error as the one line it is for the user, or None where it is a bug (e.g. our own SQL).

    Transient (a restart, a lock): exit 4, retried by sinks; the storage (full, read-only, failing):
    exit 4; a refusal (no privilege, a read-only server, a corrupt SQLite file): exit 2.
    """
    if is_transient(error):
        return DatabaseUnreachable(where, reason(error))
    if is_storage_fault(error):
        return InfrastructureFailure(f"{where}: {reason(error)}")
    if holds_text_not_utf8(error):
        return StoreError(f"{where} cannot be read: {reason(error)}; that text was stored by another tool as bytes "
                          "that are not UTF-8: store it as UTF-8 text")
    if is_refusal(error):
        return StoreError(f"{where} cannot be used: {reason(error)}")
    return None


@contextmanager
def database_errors(where: str, only_refusals: bool = False) -> Iterator[None]:
    """Database errors of the block as their one line (:func:`database_failure`); a bug's error stays as it is.

    ``only_refusals``: transient and storage errors pass as they are, for a caller that retries them
    or words them itself (``SqlSink``).
    """
    try:
        yield
    except sa.exc.DBAPIError as exc:
        if only_refusals and not is_refusal(exc):
            raise
        failure = database_failure(exc, where)
        if failure is None:
            raise
        raise failure from None


@contextmanager
def command_engine(url: sa.URL) -> Iterator[sa.Engine]:
    """An engine for one command's work on ``url`` (``db init``, ``import``, ``prune``, ``albums``), disposed
    afterwards; the database's errors inside are their one line (:func:`database_errors`)."""
    engine = create_engine(url)
    try:
        with database_errors(describe(url)):
            try:
                yield engine
            except UnreadableValue as error:
                with engine.connect() as connection:
                    raise error.located(connection, describe(url)) from None
    finally:
        engine.dispose()


# --- schema version ----------------------------------------------------------------------------


def stored_version(connection: sa.Connection) -> int | None:
    """The database's schema version; None when it holds no eat-curate tables yet."""
    if not sa.inspect(connection).has_table(schema.eat_meta.name):
        return None
    value = connection.execute(
        sa.select(schema.eat_meta.c.value).where(schema.eat_meta.c.key == "schema_version")
    ).scalar_one_or_none()
    try:
        return int(value) if value is not None else None
    except ValueError:
        raise StoreError(f"eat_meta holds an invalid schema_version {value!r}") from None


# Columns of ``runs`` that a migration added, by the version that added them.
_RUNS_COLUMNS_SINCE = {"pid": 2, "heartbeat_at": 4}


def runs_columns(connection: sa.Connection) -> list[sa.Column]:
    """The columns of ``runs`` this database has: a reader of an older, not yet upgraded one leaves out the newer."""
    version = stored_version(connection) or schema.SCHEMA_VERSION
    return [column for column in schema.runs.c if _RUNS_COLUMNS_SINCE.get(column.name, 1) <= version]


def check_schema(connection: sa.Connection, where: str, target: int = schema.SCHEMA_VERSION) -> int | None:
    """Raise StoreError if the database is newer than ``target`` or has foreign tables with our names.

    A database this cannot even read (no privilege on ``eat_meta``, a corrupt file) is a StoreError too.
    """
    try:
        version = stored_version(connection)
        tables = set(sa.inspect(connection).get_table_names()) if version is None else set()
    except sa.exc.DBAPIError as exc:
        if is_transient(exc) or is_storage_fault(exc):
            raise  # the caller's to retry or to word (a lock, a server restarting, a failing disk)
        # Two trivial reads: whatever else fails here is the database's state, never eat-curate's SQL.
        raise StoreError(f"{where} cannot be read: {reason(exc)}") from None
    if version is None:
        existing = sorted(tables & set(schema.metadata.tables))
        if existing:
            raise StoreError(
                f"{where} already has tables eat-curate did not create ({', '.join(existing)}; "
                "no eat_meta schema version): use another database"
            )
    elif version > target:
        raise StoreError(
            f"{where} has schema version {version}, newer than this eat-curate understands ({target}): "
            "upgrade eat-curate"
        )
    return version


def create_or_upgrade(
    engine: sa.Engine, migrations: dict[int, Migration] = MIGRATIONS, target: int = schema.SCHEMA_VERSION
) -> int:
    """Create the tables of a new database or upgrade an older one; returns the schema version.

    Safe to call from several processes at once: SQLite serialises it with
    ``BEGIN IMMEDIATE``, PostgreSQL with an advisory lock; DDL is
    transactional on both, so a failed upgrade leaves the database as it was.
    """
    where = describe(engine.url)
    # A role that may not create tables (PostgreSQL 15's public schema), a read-only server: one line.
    with database_errors(where, only_refusals=True), write_transaction(engine) as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))
        version = check_schema(connection, where, target)
        if version is None:
            schema.metadata.create_all(connection)
            _set_version(connection, target)
            return target
        for step in range(version, target):
            if step not in migrations:
                raise StoreError(f"{where}: no migration from schema version {step} to {step + 1}")
            migrations[step](connection)
        if version != target:
            _set_version(connection, target)
        return target


def _set_version(connection: sa.Connection, version: int) -> None:
    table = schema.eat_meta
    updated = connection.execute(
        table.update().where(table.c.key == "schema_version").values(value=str(version))
    ).rowcount
    if not updated:
        connection.execute(table.insert().values(key="schema_version", value=str(version)))


@dataclass
class DatabaseStatus:
    where: str  # the file, or the URL without its password
    version: int
    previous_version: int | None  # None: the tables were just created
    rows: dict[str, int]  # our tables and their row counts

    def to_dict(self) -> dict:
        return asdict(self)


def init_database(db: str) -> DatabaseStatus:
    """Create or upgrade the tables at ``db`` (``eat-curate db init``); report what is there."""
    url = database_url(db)
    check_database(url)
    with command_engine(url) as engine:
        with connect(engine, url) as connection:
            previous = stored_version(connection)
        version = create_or_upgrade(engine)
        with connect(engine, url) as connection:
            rows = {
                table.name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                for table in schema.metadata.sorted_tables
            }
    return DatabaseStatus(where=describe(url), version=version, previous_version=previous, rows=rows)
