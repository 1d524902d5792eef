"""Text compared byte by byte on every database, so orders and ties come out the same.

SQLite compares text with memcmp (its BINARY collation); PostgreSQL uses the
database's collation, which for en_US and most locales orders punctuation,
case and accents differently. ``bytewise(column)`` renders ``column COLLATE
"C"`` on PostgreSQL and on DuckDB (which reads Parquet results; its default
is already byte order, but a ``default_collation`` setting would change it)
and the bare column elsewhere: all then order UTF-8 text by code point,
which is also how Python sorts ``str``.

Used in ORDER BY clauses and in the index that serves them (an index only
provides an order for the collation it was built with).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class bytewise(FunctionElement):  # noqa: N801 - reads as a SQL function at call sites
    """``bytewise(column)``: ``column`` under byte-order collation (see module doc)."""

    type = sa.Text()
    name = "bytewise"
    inherit_cache = True


@compiles(bytewise)
def _compile_default(element: bytewise, compiler, **kw) -> str:
    (column,) = element.clauses
    return compiler.process(column, **kw)


@compiles(bytewise, "postgresql")
@compiles(bytewise, "duckdb")
def _compile_c_collation(element: bytewise, compiler, **kw) -> str:
    (column,) = element.clauses
    return f'{compiler.process(column, **kw)} COLLATE "C"'
