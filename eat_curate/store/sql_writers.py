"""Writing one batch of rows into the SQL tables, the fast way for each database.

A batch is the rows of one ``SqlSink.write``: ``images`` (unique by image),
``scores`` of the successes and ``errors`` of the failures (unique by image
and model). Each table is upserted by primary key; a score removes the error
it supersedes and an error the score it supersedes.

- SQLite: an ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE`` (and of
  ``DELETE``) per table: prepared once, the rows stream through it.
- PostgreSQL: a binary ``COPY`` of each table's rows into a session-private
  staging table, then set-based ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``
  and ``DELETE ... USING`` statements. The staging tables are created once per
  connection and emptied at every commit, so one batch per transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite

from eat_curate.store import schema

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


@dataclass
class RowBatch:
    images: Sequence[dict] = field(default_factory=list)  # unique by image_id
    scores: Sequence[dict] = field(default_factory=list)  # unique by (image_id, model_id)
    errors: Sequence[dict] = field(default_factory=list)  # unique by (image_id, model_id), none also in scores


class BatchWriter(Protocol):
    def write(self, connection: sa.Connection, batch: RowBatch) -> None:
        """Apply ``batch`` inside the caller's transaction (one batch per transaction)."""


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


def _postgres_type(column_type: sa.types.TypeEngine) -> str:
    """The PostgreSQL type a binary COPY sends for a column of ours."""
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


class _Staged:
    """A table's session-private staging copy and the statements that apply it."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.names = [column.name for column in table.columns]
        self.types = [_postgres_type(column.type) for column in table.columns]
        self._values = itemgetter(*self.names)
        self.staging = sa.table(f"eat_staging_{table.name}", *(sa.column(name) for name in self.names))
        columns = ", ".join(f'"{name}" {kind}' for name, kind in zip(self.names, self.types))
        self.create = f"CREATE TEMPORARY TABLE {self.staging.name} ({columns}) ON COMMIT DELETE ROWS"
        quoted = ", ".join(f'"{name}"' for name in self.names)
        self.copy = f"COPY {self.staging.name} ({quoted}) FROM STDIN (FORMAT BINARY)"
        rows = sa.select(*(self.staging.c[name] for name in self.names))
        upsert = postgresql.insert(table).from_select(self.names, rows)
        keys = [column.name for column in table.primary_key]
        updates = {name: upsert.excluded[name] for name in self.names if name not in keys}
        self.upsert = upsert.on_conflict_do_update(index_elements=keys, set_=updates)

    def delete_matching(self, other: sa.Table) -> sa.Delete:
        """``DELETE FROM other USING staging``: rows of ``other`` with a staged (image, model)."""
        return other.delete().where(sa.and_(*(other.c[name] == self.staging.c[name] for name in _KEY)))

    def load(self, connection: sa.Connection, rows: Sequence[dict]) -> None:
        cursor = connection.connection.driver_connection.cursor()
        with cursor, cursor.copy(self.copy) as copy:
            copy.set_types(self.types)
            for values in map(self._values, rows):
                copy.write_row(values)


class PostgresBatchWriter:
    """Prepares every new connection of ``engine`` (create it before the engine's first connection)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._images, self._scores, self._errors = (_Staged(t) for t in (schema.images, schema.scores, schema.errors))
        self._delete_errors = self._scores.delete_matching(schema.errors)
        self._delete_scores = self._errors.delete_matching(schema.scores)
        create = [staged.create for staged in (self._images, self._scores, self._errors)]

        def create_staging_tables(dbapi_connection, _record) -> None:
            with dbapi_connection.cursor() as cursor:
                for statement in create:
                    cursor.execute(statement)
            dbapi_connection.commit()

        event.listen(engine, "connect", create_staging_tables)

    def write(self, connection: sa.Connection, batch: RowBatch) -> None:
        if batch.images:
            self._images.load(connection, batch.images)
            connection.execute(self._images.upsert)
        if batch.scores:
            self._scores.load(connection, batch.scores)
            connection.execute(self._scores.upsert)
            connection.execute(self._delete_errors)
        if batch.errors:
            self._errors.load(connection, batch.errors)
            connection.execute(self._errors.upsert)
            connection.execute(self._delete_scores)


def batch_writer_for(engine: sa.Engine) -> BatchWriter:
    if engine.dialect.name == "postgresql":
        return PostgresBatchWriter(engine)
    return SqliteBatchWriter(engine.dialect)
