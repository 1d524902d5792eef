"""The ranking order as one ORDER BY item, rendered for each database: a key column, ties by image id.

``rank_key(scores.c.mean, True, scores.c.image_id)`` renders ``mean DESC,
bytewise(image_id)`` on SQLite and PostgreSQL, the two keys that
``ix_scores_model_album_rank`` serves, and on DuckDB (Parquet results) the
single key ``struct_pack(k := -mean, i := image_id)``, which orders the same
rows the same way: structs compare field by field, and DuckDB compares text
byte by byte. The single key matters there: DuckDB answers "the first N of
each album" (``row_number() ... <= N``, ``ORDER BY ... LIMIT N`` per album)
with a top-N per group instead of sorting every row, about ten times less
work at a million scores, but only for one ordering key.

The key column must be numeric and NOT NULL (scores' mean, std, p1..p10):
descending order is its negation.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from eat_curate.sinks.sql.bytewise import bytewise


class _RankKey(FunctionElement):
    """``(key column, image id)``; the direction is the class, so cached statements tell them apart."""

    type = sa.types.NullType()
    inherit_cache = True
    descending: bool


class descending_rank_key(_RankKey):  # noqa: N801 - reads as a SQL construct
    name = "descending_rank_key"
    inherit_cache = True
    descending = True


class ascending_rank_key(_RankKey):  # noqa: N801 - reads as a SQL construct
    name = "ascending_rank_key"
    inherit_cache = True
    descending = False


def rank_key(column: ColumnElement, descending: bool, image_id: ColumnElement) -> _RankKey:
    """``column`` in its direction, then ``image_id`` byte by byte, as one ORDER BY item."""
    stored = column.type.impl_instance if isinstance(column.type, sa.TypeDecorator) else column.type  # stored_values.Score
    if not isinstance(stored, (sa.Float, sa.Integer)):
        raise TypeError(f"rank_key orders by a numeric column, not {column.type!r}")
    return (descending_rank_key if descending else ascending_rank_key)(column, image_id)


@compiles(descending_rank_key)
@compiles(ascending_rank_key)
def _compile_two_keys(element: _RankKey, compiler, **kw) -> str:
    column, image_id = element.clauses
    ordered = column.desc() if element.descending else column.asc()
    return f"{compiler.process(ordered, **kw)}, {compiler.process(bytewise(image_id), **kw)}"


@compiles(descending_rank_key, "duckdb")
@compiles(ascending_rank_key, "duckdb")
def _compile_struct(element: _RankKey, compiler, **kw) -> str:
    column, image_id = (compiler.process(clause, **kw) for clause in element.clauses)
    key = f"-({column})" if element.descending else column
    return f"struct_pack(k := {key}, i := {image_id})"
