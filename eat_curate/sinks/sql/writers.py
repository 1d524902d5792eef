"""Writing one batch of records into the SQL tables, the fast way for each database.

A batch is the records of one ``SqlSink.write``, one per (image, model), the
latest. It fills ``images`` (one row per image: the facts of its last record
in the batch), ``scores`` from the successes and ``errors`` from the failures.
Each table is upserted by primary key; a score removes the error it
supersedes and an error the score it supersedes.

A writer checks the records and prepares their rows (``rows``, outside any
transaction: a bad record fails before anything is sent) and applies them
inside the caller's transaction (``write``).

- SQLite: an ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE`` (and of
  ``DELETE``) per table: prepared once, the rows stream through it.
- PostgreSQL: one binary ``COPY`` of one tuple per record (built from the
  record while the COPY streams, no dict) into a session-private staging
  table, then one round trip of set-based statements for the three tables:
  a plain ``INSERT ... SELECT`` where the keys are expected to be new (falling
  back to ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` on a unique
  violation, see ``PostgresBatchWriter``), and ``DELETE ... USING`` for the
  superseded rows. The staging table is created once per connection and
  emptied at every commit, so one batch per transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

from eat_curate.records import NUM_BINS, ScoreRecord
from eat_curate.runs import RunSummary
from eat_curate.sinks.shots import shot_key
from eat_curate.sinks.sql import schema

_INSERT_BY_DIALECT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
_KEY = ("image_id", "model_id")


def upsert_statement(dialect: str, table: sa.Table) -> sa.Insert:
    """``INSERT INTO table ... ON CONFLICT (primary key) DO UPDATE SET`` every other column."""
    statement = _INSERT_BY_DIALECT[dialect](table)
    keys = [column.name for column in table.primary_key]
    updates = {column.name: statement.excluded[column.name] for column in table.columns if column.name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)


def insert_if_absent_statement(dialect: str, table: sa.Table) -> sa.Insert:
    """``INSERT ... ON CONFLICT DO NOTHING``: the first writer's row stays."""
    return _INSERT_BY_DIALECT[dialect](table).on_conflict_do_nothing()


# --- rows of a record ---------------------------------------------------------------------------------
# int()/float(): engines may hand over NumPy scalars, which drivers do not all accept.


def _int(value) -> int | None:
    return None if value is None else int(value)


def _float(value) -> float | None:
    return None if value is None else float(value)


def image_row(record: ScoreRecord, now: datetime) -> dict:
    return {
        "image_id": record.image_id,
        "path": record.path,
        "album": record.album,
        "content_hash": record.content_hash,
        "bytes": _int(record.bytes),
        "mtime": _float(record.mtime),
        "width": _int(record.width),
        "height": _int(record.height),
        "oriented_width": _int(record.oriented_width),
        "oriented_height": _int(record.oriented_height),
        "format": record.format,
        "phash": _int(record.phash),
        "captured_at": record.captured_at,
        "extra": json.dumps(record.extra, ensure_ascii=False, default=str) if record.extra else None,
        "updated_at": now,
        "shot": shot_key(record.path),
    }


def require_distribution(record: ScoreRecord) -> None:
    """A success must carry its 10-bin distribution; refused before anything of its batch is sent."""
    if record.ok and (record.probabilities is None or len(record.probabilities) != NUM_BINS):
        raise ValueError(f"record for {record.path} has no {NUM_BINS}-bin distribution but no error either")


def score_row(record: ScoreRecord) -> dict:
    require_distribution(record)
    row = {
        "image_id": record.image_id,
        "model_id": record.model_id,
        "album": record.album,
        "run_id": record.run_id,
        "mean": float(record.mean),
        "std": float(record.std),
        "scored_at": record.scored_at,
        "scored_bytes": _int(record.bytes),
        "scored_mtime": _float(record.mtime),
        "scored_content_hash": record.content_hash,
    }
    row.update({f"p{i}": float(p) for i, p in enumerate(record.probabilities, start=1)})
    return row


def error_row(record: ScoreRecord) -> dict:
    return {
        "image_id": record.image_id,
        "model_id": record.model_id,
        "run_id": record.run_id,
        "kind": record.error_kind,
        "message": record.error or "",
        "at": record.scored_at,
    }


class BatchWriter(Protocol):
    def rows(self, records: Sequence[ScoreRecord], now: datetime) -> object:
        """The rows of ``records`` (one per (image, model)), images stamped ``now``; raises on a bad record."""

    def write(self, connection: sa.Connection, batch: object) -> None:
        """Apply ``rows``'s result inside the caller's transaction (one batch per transaction)."""


# --- SQLite ---------------------------------------------------------------------------------------------


@dataclass
class RowBatch:
    images: Sequence[dict] = field(default_factory=list)  # unique by image_id
    scores: Sequence[dict] = field(default_factory=list)  # unique by (image_id, model_id)
    errors: Sequence[dict] = field(default_factory=list)  # unique by (image_id, model_id), none also in scores


class _DriverStatement:
    """A statement compiled once, run with ``executemany`` on raw tuples.

    SQLAlchemy's per-row parameter handling costs more than SQLite's own
    insert; this keeps only the conversions the column types need (datetimes
    to SQLAlchemy's text format), so SQLAlchemy reads the rows back as usual.
    """

    def __init__(self, statement: sa.Executable, dialect: sa.Dialect, types: dict[str, sa.types.TypeEngine]) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        names = list(compiled.positiontup)
        self._values = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
        processors = ((i, types[name].bind_processor(dialect)) for i, name in enumerate(names))
        self._processors = [(i, process) for i, process in processors if process is not None]

    def _convert(self, values: tuple) -> tuple:
        converted = list(values)
        for i, process in self._processors:
            converted[i] = process(converted[i])
        return tuple(converted)

    def run(self, connection: sa.Connection, rows: Sequence[dict]) -> None:
        values = list(map(self._values, rows))
        if self._processors:
            values = list(map(self._convert, values))
        connection.exec_driver_sql(self.sql, values)


class RunProgress:
    """The UPDATE that brings a running run's row up to date (counts, heartbeat) in each batch's transaction.

    Sent at driver level, as the batches' own statements are: through
    SQLAlchemy's statement handling this one-row update cost SQLite about a
    third of a 16-row batch (0.23 ms against 0.09 ms here).
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        columns = ("ok", "failed", "skipped", "failed_by_kind", "heartbeat_at")
        updates = ", ".join(f'"{name}" = {marker}' for name in columns)
        self.sql = f"UPDATE {schema.runs.name} SET {updates} WHERE run_id = {marker}"
        moment = schema.runs.c.heartbeat_at.type.dialect_impl(dialect)  # SQLite: SQLAlchemy's text, as started_at
        self._moment = moment.bind_processor(dialect) or (lambda value: value)

    def run(self, connection: sa.Connection, run_id: str, tally: RunSummary, now: datetime) -> None:
        kinds = json.dumps(dict(tally.failed_by_kind))
        connection.exec_driver_sql(self.sql, (tally.ok, tally.failed, tally.skipped, kinds, self._moment(now), run_id))


class SqliteBatchWriter:
    def __init__(self, dialect: sa.Dialect) -> None:
        self._upserts = {
            table.name: _DriverStatement(
                upsert_statement("sqlite", table), dialect, {column.name: column.type for column in table.columns}
            )
            for table in (schema.images, schema.scores, schema.errors)
        }
        self._deletes = {
            table.name: _DriverStatement(
                table.delete().where(sa.and_(*(table.c[name] == sa.bindparam(name) for name in _KEY))),
                dialect,
                {name: table.c[name].type for name in _KEY},
            )
            for table in (schema.scores, schema.errors)
        }

    def rows(self, records: Sequence[ScoreRecord], now: datetime) -> RowBatch:
        return RowBatch(
            images=list({record.image_id: image_row(record, now) for record in records}.values()),
            scores=[score_row(record) for record in records if record.ok],
            errors=[error_row(record) for record in records if not record.ok],
        )

    def write(self, connection: sa.Connection, batch: RowBatch) -> None:
        for table, rows in (
            (schema.images, batch.images),
            (schema.scores, batch.scores),
            (schema.errors, batch.errors),
        ):
            if rows:
                self._upserts[table.name].run(connection, rows)
        if batch.scores:
            self._deletes[schema.errors.name].run(connection, batch.scores)
        if batch.errors:
            self._deletes[schema.scores.name].run(connection, batch.errors)


# --- PostgreSQL -----------------------------------------------------------------------------------------


def _postgres_type(column_type: sa.types.TypeEngine) -> str:
    """The PostgreSQL type a binary COPY sends for a column of ours."""
    if isinstance(column_type, sa.TypeDecorator):  # stored_values.Score: stored as its impl
        column_type = column_type.impl_instance
    if isinstance(column_type, sa.Boolean):
        return "bool"
    if isinstance(column_type, sa.BigInteger):
        return "int8"
    if isinstance(column_type, sa.Integer):
        return "int4"
    if isinstance(column_type, sa.Float):
        return "float4" if (column_type.precision or 53) <= 24 else "float8"
    if isinstance(column_type, sa.DateTime):
        return "timestamptz" if column_type.timezone else "timestamp"
    if isinstance(column_type, (sa.String, sa.Text)):
        return "text"
    raise TypeError(f"no COPY type for {column_type!r}")


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


_STAGING = "eat_staging_records"
_PROBABILITIES = tuple(f"p{i}" for i in range(1, NUM_BINS + 1))
# One staging row per record: the image's columns, then the score's or the error's.
_STAGED_COLUMNS: list[tuple[str, sa.types.TypeEngine]] = [
    *((column.name, column.type) for column in schema.images.columns),
    ("is_image", sa.Boolean()),  # this record's image facts are the batch's latest for its image
    *((name, schema.scores.c[name].type) for name in ("model_id", "run_id", *_PROBABILITIES, "mean", "std")),
    ("scored_at", schema.scores.c.scored_at.type),
    ("error_kind", schema.errors.c.kind.type),  # NULL: a success
    ("error", schema.errors.c.message.type),
]
# Table column -> staging column, where the names differ.
_FROM_STAGING = {
    "scores": {"scored_bytes": "bytes", "scored_mtime": "mtime", "scored_content_hash": "content_hash"},
    "errors": {"kind": "error_kind", "message": "error", "at": "scored_at"},
}
_NO_SCORE = (None,) * (NUM_BINS + 2)


def _staged_row(record: ScoreRecord, now: datetime, is_image: bool) -> tuple:
    """The staging row of ``record``: what image_row and score_row or error_row hold, as one tuple."""
    if record.error_kind is None:  # PostgresBatchWriter.rows required the distribution
        outcome = (*map(float, record.probabilities), float(record.mean), float(record.std), record.scored_at, None, None)
    else:
        outcome = (*_NO_SCORE, record.scored_at, record.error_kind, record.error or "")
    extra = record.extra
    return (
        record.image_id,
        record.path,
        record.album,
        record.content_hash,
        _int(record.bytes),
        _float(record.mtime),
        _int(record.width),
        _int(record.height),
        _int(record.oriented_width),
        _int(record.oriented_height),
        record.format,
        _int(record.phash),
        record.captured_at,
        json.dumps(extra, ensure_ascii=False, default=str) if extra else None,
        now,
        shot_key(record.path),
        is_image,
        record.model_id,
        record.run_id,
    ) + outcome


def _insert_from_staging(table: sa.Table, condition: str) -> tuple[str, str]:
    """``INSERT INTO table SELECT ... FROM staging WHERE condition``: plain, and as an upsert by primary key."""
    names = [column.name for column in table.columns]
    sources = [_FROM_STAGING.get(table.name, {}).get(name, name) for name in names]
    keys = [column.name for column in table.primary_key]
    updates = ", ".join(f'"{name}" = excluded."{name}"' for name in names if name not in keys)
    insert = f"INSERT INTO {table.name} ({_quoted(names)}) SELECT {_quoted(sources)} FROM {_STAGING} WHERE {condition}"
    return insert, f"{insert} ON CONFLICT ({_quoted(keys)}) DO UPDATE SET {updates}"


def _delete_staged(table: sa.Table, condition: str) -> str:
    """Rows of ``table`` whose (image, model) is staged with ``condition``."""
    same = " AND ".join(f'target."{name}" = staged."{name}"' for name in _KEY)
    return f"DELETE FROM {table.name} AS target USING {_STAGING} AS staged WHERE {same} AND staged.{condition}"


@dataclass(frozen=True)
class _Step:
    """Fill ``table`` from the staged rows (plain ``insert`` or ``upsert``), then run ``then``."""

    table: str
    insert: str
    upsert: str
    then: tuple[str, ...] = ()


class _InsertFirst:
    """Whether a table's next batch tries a plain INSERT before the upsert.

    A plain INSERT costs the server about a third less than ``ON CONFLICT DO
    UPDATE`` when every key is new (no pre-check of the key, no speculative
    insertion); when a key exists it fails with a unique violation, and the
    batch is upserted instead. After such a conflict the table upserts
    directly for 1, 2, 4 ... 64 batches before trying again, so a run that
    rewrites existing rows (a second model over the same images) pays for
    few failed tries.
    """

    LONGEST_WAIT = 64

    def __init__(self) -> None:
        self._wait = 0  # batches to upsert before the next try
        self._backoff = 0

    def worth_trying(self) -> bool:
        if self._wait:
            self._wait -= 1
            return False
        return True

    def inserted(self) -> None:
        self._backoff = 0

    def conflicted(self) -> None:
        self._backoff = min(max(1, 2 * self._backoff), self.LONGEST_WAIT)
        self._wait = self._backoff


@dataclass
class StagedBatch:
    rows: Iterator[tuple]  # one per record, see _STAGED_COLUMNS; read once, by the COPY
    scores: bool  # holds a success
    errors: bool  # holds a failure


_SAVEPOINT = "eat_new_rows"


class PostgresBatchWriter:
    """Prepares every new connection of ``engine`` (create it before the engine's first connection).

    A batch is one ``COPY`` into the staging table and one round trip for the
    statements that apply it: per table a plain INSERT inside a savepoint
    where :class:`_InsertFirst` says it is worth trying, else the upsert. A
    unique violation (a key that exists, committed by anyone, or one a
    concurrent writer commits meanwhile) rolls back to the savepoint and that
    table is upserted: the rows end the same either way.
    """

    _create = (
        f"CREATE TEMPORARY TABLE {_STAGING} "
        f"({', '.join(f'{chr(34)}{name}{chr(34)} {_postgres_type(kind)}' for name, kind in _STAGED_COLUMNS)}) "
        "ON COMMIT DELETE ROWS"
    )
    _copy = f"COPY {_STAGING} ({_quoted([name for name, _ in _STAGED_COLUMNS])}) FROM STDIN (FORMAT BINARY)"
    _types = [_postgres_type(kind) for _, kind in _STAGED_COLUMNS]
    _images = _Step("images", *_insert_from_staging(schema.images, "is_image"))
    _scores = _Step(
        "scores",
        *_insert_from_staging(schema.scores, "error_kind IS NULL"),
        then=(_delete_staged(schema.errors, "error_kind IS NULL"),),
    )
    _errors = _Step(
        "errors",
        *_insert_from_staging(schema.errors, "error_kind IS NOT NULL"),
        then=(_delete_staged(schema.scores, "error_kind IS NOT NULL"),),
    )

    def __init__(self, engine: sa.Engine) -> None:
        from psycopg.errors import UniqueViolation  # psycopg: the postgres extra, needed only here

        self._unique_violation = UniqueViolation
        create = self._create

        def create_staging_table(dbapi_connection, _record) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(create)
            dbapi_connection.commit()

        event.listen(engine, "connect", create_staging_table)
        self._insert_first = {step.table: _InsertFirst() for step in (self._images, self._scores, self._errors)}

    def rows(self, records: Sequence[ScoreRecord], now: datetime) -> StagedBatch:
        for record in records:
            require_distribution(record)
        last = {record.image_id: position for position, record in enumerate(records)}
        # Built while the COPY streams (the server stores the first rows while later ones are built).
        rows = (_staged_row(record, now, last[record.image_id] == position) for position, record in enumerate(records))
        failed = sum(record.error_kind is not None for record in records)
        return StagedBatch(rows, scores=failed < len(records), errors=failed > 0)

    def write(self, connection: sa.Connection, batch: StagedBatch) -> None:
        steps = [self._images, *((self._scores,) if batch.scores else ()), *((self._errors,) if batch.errors else ())]
        trying = {step.table for step in steps if self._insert_first[step.table].worth_trying()}
        cursor = connection.connection.driver_connection.cursor()
        with cursor:
            with cursor.copy(self._copy) as copy:
                copy.set_types(self._types)
                write_row = copy.write_row
                for row in batch.rows:
                    write_row(row)
            while steps:
                try:
                    cursor.execute(";\n".join(self._statements(steps, trying)))
                except self._unique_violation as error:
                    failed = next((k for k, step in enumerate(steps) if step.table == error.diag.table_name), None)
                    if failed is None or steps[failed].table not in trying:
                        raise
                    # The steps before it are done; its own savepoint is the latest of that name.
                    cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; RELEASE SAVEPOINT {_SAVEPOINT}")
                    for step in steps[:failed]:
                        if step.table in trying:
                            self._insert_first[step.table].inserted()
                    self._insert_first[steps[failed].table].conflicted()
                    trying.discard(steps[failed].table)
                    steps = steps[failed:]
                else:
                    for table in trying:
                        self._insert_first[table].inserted()
                    steps = []

    @staticmethod
    def _statements(steps: Sequence[_Step], trying: set[str]) -> list[str]:
        statements = []
        for step in steps:
            if step.table in trying:
                statements += [f"SAVEPOINT {_SAVEPOINT}", step.insert, f"RELEASE SAVEPOINT {_SAVEPOINT}"]
            else:
                statements.append(step.upsert)
            statements += step.then
        return statements


def batch_writer_for(engine: sa.Engine) -> BatchWriter:
    if engine.dialect.name == "postgresql":
        return PostgresBatchWriter(engine)
    return SqliteBatchWriter(engine.dialect)
