"""How a stored value becomes a Python value, whoever stored it: the column types of ``schema``.

People query and edit the database with their own tools (sqlite3, DB
Browser, pandas ``to_sql``, scripts), and SQLite is loosely typed: a column
keeps whatever such a tool stored, text in a time column, a blob in a number
column. PostgreSQL enforces its types, but holds values Python has none for
(``'-infinity'`` and years past 9999 in a timestamp, NaN in a double). Reading
must never end in a crash over them, and must not guess either. The rule,
applied as each row is read (no extra query, no extra pass):

- a time that is not ISO 8601 text (``2024-05-01 10:00:00[.ffffff][+HH:MM]``,
  what SQLite's date functions read) reads as no time at all (None), as SQL
  comparisons see it; so does a PostgreSQL time outside years 1-9999, such
  as ``'infinity'``. A capture time written with a zone reads as UTC without
  it, as ``library.timestamps.comparable_time`` compares it on SQLite;
- a count, size or hash that is not a whole 64-bit number, and a modification
  time that is not a number, read as unknown (None), as when never recorded;
- a path stored as a blob reads as its UTF-8 text;
- a score (``mean``, ``std``, ``p1``..``p10``) that is not a finite number, an
  album or model id stored as a blob, a path blob that is not UTF-8: no guess is honest
  (a score ranks, an album groups), so reading stops with
  :class:`UnreadableValue`, which ``library.connection`` completes with a
  row that holds the value and how to fix it.

Writing is unchanged: the same DDL, the same values written.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import partial

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from eat_curate.errors import StoreError

_INT64 = (-(2**63), 2**63 - 1)


class UnreadableValue(StoreError):
    """A stored value no reading would be honest about; ``located`` names a row that holds it."""

    def __init__(self, table: str, column: str, value: object, wanted: str, fix: str) -> None:
        self.table, self.column, self.value, self.wanted, self.fix = table, column, value, wanted, fix
        super().__init__(self.sentence())

    def sentence(self, where: str | None = None, row: dict | None = None) -> str:
        prefix = f"{where}: " if where else ""
        whose = ""
        if row:
            whose = " of " + ", ".join(f"{key.removesuffix('_id')} {value if isinstance(value, str) else _shown(value)}"
                                       for key, value in row.items())
        return (f"{prefix}{self.table}.{self.column}{whose} holds {_shown(self.value)}, not {self.wanted} "
                f"(written by another tool?); {self.fix}")

    def located(self, connection: sa.Connection, where: str) -> StoreError:
        """The same refusal, naming the first row that holds the value (a scan only now, on the way out)."""
        row = None
        try:
            row = first_row_holding(connection, self.table, self.column, self.value)
        except sa.exc.DBAPIError:
            pass  # the refusal stands without its row
        return StoreError(self.sentence(where, row))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def first_row_holding(connection: sa.Connection, table: str, column: str, value: object) -> dict | None:
    """The key columns (image id, model id) of the first row of ``table`` whose ``column`` is ``value``."""
    from eat_curate.sinks.sql.schema import metadata  # the schema is built from the types below

    found = metadata.tables[table]
    keys = [key for key in found.primary_key.columns if key.name != column]
    # Selected and compared as stored, without this module's reading (which would refuse the value again).
    raw = sa.literal_column(column, type_=sa.types.NullType())
    query = sa.select(*[sa.literal_column(key.name, type_=sa.types.NullType()).label(key.name) for key in keys])
    query = query.select_from(found).where(raw == sa.bindparam("value", value, type_=_raw_type(value)))
    row = connection.execute(query.order_by(*keys).limit(1)).first()
    return dict(row._mapping) if row is not None else None


def _raw_type(value: object) -> sa.types.TypeEngine:
    if isinstance(value, bytes):
        return sa.LargeBinary()
    if isinstance(value, float):
        return sa.Float(53)
    return sa.types.NullType()


# --- times ---------------------------------------------------------------------------------------


def _sqlite_time(value: object, naive: bool) -> datetime | None:
    if value.__class__ is not str:
        return None  # NULL, or a number or blob SQLite's date functions do not read as a time either
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if naive and parsed.tzinfo is not None:
        try:
            return parsed.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:  # its UTC time is outside years 1-9999 (0001-01-01 00:30+01:00): no time either
            return None
    return parsed


class _SqliteTime(sqlite.DATETIME):
    """SQLite's DATETIME (same DDL, same text written), reading any stored value by ``_sqlite_time``."""

    def result_processor(self, dialect, coltype):
        return partial(_sqlite_time, naive=not self.timezone)


def timestamp(timezone: bool) -> sa.types.TypeEngine:
    """A time column; PostgreSQL's out-of-range times are read by :func:`lenient_postgresql_times`."""
    return sa.DateTime(timezone=timezone).with_variant(_SqliteTime(timezone=timezone), "sqlite")


def lenient_postgresql_times(dbapi_connection, _record: object = None) -> None:
    """On a new psycopg connection: a timestamp Python cannot hold (±infinity, years outside 1-9999) reads as None.

    psycopg's own loaders stay in charge of every other value (they are C and cannot be subclassed:
    a thin Python loader calls one).
    """
    import psycopg
    from psycopg.adapt import Loader

    adapters = dbapi_connection.adapters
    for name in ("timestamp", "timestamptz"):
        oid = adapters.types[name].oid
        inner = adapters.get_loader(oid, psycopg.pq.Format.TEXT)

        class OutOfRangeAsNone(Loader):
            _inner_class = inner

            def __init__(self, oid: int, context=None) -> None:
                super().__init__(oid, context)
                self._inner = self._inner_class(oid, context)

            def load(self, data):
                try:
                    return self._inner.load(data)
                except psycopg.DataError:  # "timestamp too large (after year 10K)", "too small", "infinity"
                    return None

        adapters.register_loader(name, OutOfRangeAsNone)


# --- numbers ------------------------------------------------------------------------------------


def _whole(value: object) -> int | None:
    if value.__class__ is int or value is None:
        return value
    if isinstance(value, float) and value.is_integer() and _INT64[0] <= value <= _INT64[1]:
        return int(value)
    return None  # text, a blob, a fraction, a hash past 64 bits


def _number(value: object) -> float | None:
    if value.__class__ is float or value is None:
        return value
    return float(value) if value.__class__ is int else None


class _SqliteWhole(sa.Integer):
    def result_processor(self, dialect, coltype):
        return _whole


class _SqliteBigWhole(sa.BigInteger):
    def result_processor(self, dialect, coltype):
        return _whole


class _SqliteNumber(sa.Float):
    def result_processor(self, dialect, coltype):
        return _number


def whole(big: bool = False) -> sa.types.TypeEngine:
    """A count, size or hash: on SQLite, anything but a whole 64-bit number reads as None."""
    if big:
        return sa.BigInteger().with_variant(_SqliteBigWhole(), "sqlite")
    return sa.Integer().with_variant(_SqliteWhole(), "sqlite")


def number() -> sa.types.TypeEngine:
    """A measurement (seconds since the epoch, images per second): on SQLite, anything but a number reads as None."""
    return sa.Float(53).with_variant(_SqliteNumber(53), "sqlite")


_SCORE_FIX = (
    "put the number back, or delete that row and score the image again (eat-curate score PHOTOS --db ...)"
)


class Score(sa.TypeDecorator):
    """``mean``, ``std``, ``p1``..``p10``: a finite number on every database, else :class:`UnreadableValue`."""

    impl = sa.Float
    cache_ok = True

    def __init__(self, precision: int, column: str) -> None:
        super().__init__(precision=precision)
        self.precision, self.column = precision, column

    def process_result_value(self, value, dialect):
        if value.__class__ is float and value - value == 0.0:  # finite: NaN and ±inf give NaN
            return value
        if value.__class__ is int:
            return float(value)
        if value is None:
            return None  # an outer join's missing row; the column itself is NOT NULL
        raise UnreadableValue("scores", self.column, value, "a finite number", _SCORE_FIX)


# --- text ---------------------------------------------------------------------------------------


class _SqliteTextMixin:
    def __init__(self, length: int | None, table: str, column: str, decode: bool) -> None:
        super().__init__(length)
        self.table, self.column, self.decode = table, column, decode

    def result_processor(self, dialect, coltype):
        return partial(_text, table=self.table, column=self.column, decode=self.decode)


class _SqliteText(_SqliteTextMixin, sa.Text):  # TEXT in the DDL, as before
    pass


class _SqliteString(_SqliteTextMixin, sa.String):  # VARCHAR(n) in the DDL, as before
    pass


def _text(value: object, table: str, column: str, decode: bool) -> str | None:
    if value.__class__ is str or value is None:
        return value
    if isinstance(value, bytes) and decode:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if isinstance(value, bytes):
        if decode:  # not UTF-8: only the one who stored it knows its text
            raise UnreadableValue(table, column, value, "UTF-8 text", f"store the {column} as UTF-8 text")
        fix = f"store it as text: UPDATE {table} SET {column} = CAST({column} AS TEXT) WHERE typeof({column}) = 'blob'"
        raise UnreadableValue(table, column, value, "text", fix)
    return str(value)  # SQLite's TEXT affinity stores numbers as text already; a view may not


def stored_text(table: str, column: str, length: int | None = None) -> sa.types.TypeEngine:
    """A name SQL groups or matches by (album, model id): on SQLite, a blob is refused (it is never equal to the
    same name stored as text, so reading it as text would show one album or model as two)."""
    if length:
        return sa.String(length).with_variant(_SqliteString(length, table, column, decode=False), "sqlite")
    return sa.Text().with_variant(_SqliteText(None, table, column, decode=False), "sqlite")


def path_text(table: str) -> sa.types.TypeEngine:
    """A path: on SQLite, a blob reads as its UTF-8 text."""
    return sa.Text().with_variant(_SqliteText(None, table, "path", decode=True), "sqlite")
