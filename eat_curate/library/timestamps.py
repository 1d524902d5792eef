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

A stored time the read side shows as no time must compare as no time too
(NULL), or ``--since`` keeps an image whose time reads as null. On
PostgreSQL that is a time outside Python's years 1-9999 (``'infinity'``,
``'-infinity'``, year 20000, BC: ``stored_values.lenient_postgresql_times``
reads them as None), which PostgreSQL itself compares after or before every
time; on SQLite, text strftime reads but Python does not, such as 'now'
(``_sqlite_text_with_date``). A Parquet result's views already hold NULL for
such times (``parquet_views.python_time``), so there ``x`` compares as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

SQLITE_LAYOUT = "%Y-%m-%d %H:%M:%f"
SQLITE_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"  # YYYY-MM-DD, then anything
FIRST_YEAR = "0001"  # below every time strftime writes from year 1 on, above year 0's
# The first and last instants a Python datetime holds, as PostgreSQL reads them in the session's time zone:
# the zone psycopg renders stored times in before Python reads them.
PYTHON_YEARS = ("0001-01-01 00:00:00", "9999-12-31 23:59:59.999999")


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
    rendered = compiler.process(value, **kw)
    normalised = f"strftime('{SQLITE_LAYOUT}', {rendered})"
    if isinstance(value, sa.BindParameter):
        return normalised  # ISO text SQLAlchemy wrote from a Python time
    # Year 0 (0001-01-01 00:30+01:00 in UTC) to NULL: max() and nullif() keep strftime to one call per row.
    from_year_one = f"nullif(max({normalised}, '{FIRST_YEAR}'), '{FIRST_YEAR}')"
    return f"CASE WHEN {_sqlite_text_with_date(rendered)} THEN {from_year_one} END"


def _sqlite_text_with_date(rendered: str) -> str:
    """Whether a stored SQLite value is text that starts with a date, as every time Python reads does.

    strftime alone also reads 'now' and Julian day numbers (2460000.5, as a number or as text) as times,
    which read as no time (``stored_values``). Cheap on purpose: it runs on every row --since/--until compare.
    """
    return f"typeof({rendered}) = 'text' AND {rendered} GLOB '{SQLITE_DATE_GLOB}'"


@compiles(comparable_time, "postgresql")
def _compile_postgresql(element: comparable_time, compiler, **kw) -> str:
    (value,) = element.clauses
    rendered = compiler.process(value, **kw)
    if isinstance(value, sa.BindParameter):
        return rendered  # a time from Python: inside its years by construction
    kind = "timestamptz" if getattr(value.type, "timezone", False) else "timestamp"
    first, last = (f"'{bound}'::{kind}" for bound in PYTHON_YEARS)
    return f"CASE WHEN {rendered} BETWEEN {first} AND {last} THEN {rendered} END"
