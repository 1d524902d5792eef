"""Which sinks a run writes to: ``--out`` (Parquet) and ``--db`` (SQL), checked before anything is written."""

from __future__ import annotations

from eat_curate.sinks.sql.database import check_database, database_url
from eat_curate.errors import StoreError
from eat_curate.sinks.parquet.sink import ParquetSink
from eat_curate.sinks.parquet.target import check_target, parquet_target
from eat_curate.sinks.contract import Sink
from eat_curate.sinks.sql.sink import SqlSink


def check_outputs(out: str | None, db: str | None) -> None:
    """Raise StoreError if ``--out`` or ``--db`` cannot be written; creates nothing anywhere."""
    if out is None and db is None:
        raise StoreError("nowhere to write scores: give --out FILE.parquet (or DIR/) and/or --db DATABASE")
    if out is not None:
        check_target(parquet_target(out))
    if db is not None:
        check_database(database_url(db))


def open_sinks(out: str | None, db: str | None) -> list[Sink]:
    """The sinks for ``--out`` (Parquet) and ``--db`` (SQL), after checking both; nothing is created yet."""
    check_outputs(out, db)
    sinks: list[Sink] = []
    if out is not None:
        sinks.append(ParquetSink(out))
    if db is not None:
        sinks.append(SqlSink(db))
    return sinks
