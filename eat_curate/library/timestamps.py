"""Times compared as instants on every database, whatever text SQLite happens to hold.

PostgreSQL compares timestamps as timestamps. SQLite has no such type: a
time is text, and the same instant can be written '2024-07-01 10:00:00',
'2024-07-01 10:00:00.000000' or '2024-07-01 10:00:00+00:00' depending on
who wrote it, which compare wrongly as strings. ``comparable_time(x)``
renders ``strftime('%Y-%m-%d %H:%M:%f', x)`` on SQLite (one layout,
converted to UTC when a zone is written, to the millisecond) and ``x``
elsewhere: PostgreSQL, and DuckDB reading a Parquet result, whose columns
are real timestamps (scoring times with their zone, capture times without).
Wrap both sides of a comparison in it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

SQLITE_LAYOUT = "%Y-%m-%d %H:%M:%f"


class comparable_time(FunctionElement):  # noqa: N801 - reads as a SQL function at call sites
    """``comparable_time(x)``: a column or bound time in a form that compares as an instant."""

    type = sa.DateTime()
    name = "comparable_time"
    inherit_cache = True


@compiles(comparable_time)
def _compile_default(element: comparable_time, compiler, **kw) -> str:
    (value,) = element.clauses
    return compiler.process(value, **kw)


@compiles(comparable_time, "sqlite")
def _compile_sqlite(element: comparable_time, compiler, **kw) -> str:
    (value,) = element.clauses
    return f"strftime('{SQLITE_LAYOUT}', {compiler.process(value, **kw)})"
