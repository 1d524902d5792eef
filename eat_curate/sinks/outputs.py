"""Which sinks a run writes to: ``--out`` (Parquet) and ``--db`` (SQL), checked before anything is written."""

from __future__ import annotations

from eat_curate.errors import StoreError
from eat_curate.sinks.contract import Sink
from eat_curate.sinks.parquet.sink import ParquetSink
from eat_curate.sinks.parquet.target import check_target, parquet_target
from eat_curate.sinks.retry import Retrier, RetryPolicy, WaitListener
from eat_curate.sinks.sql.database import check_database, database_url, describe
from eat_curate.sinks.sql.db_faults import is_transient, reason
from eat_curate.sinks.sql.sink import SqlSink


def check_outputs(out: str | None, db: str | None, retry: RetryPolicy | None = None,
                  on_wait: WaitListener | None = None) -> None:
    """Raise StoreError if ``--out`` or ``--db`` cannot be written; creates nothing anywhere.

    With ``retry``, a database that cannot be reached yet (restarting, failing
    over) is waited for, as during the run.
    """
    if out is None and db is None:
        raise StoreError("nowhere to write scores: give --out FILE.parquet (or DIR/) and/or --db DATABASE")
    if out is not None:
        check_target(parquet_target(out))
    if db is not None:
        url = database_url(db)
        if retry is None:
            check_database(url)
        else:
            Retrier(retry, describe(url), is_transient, reason, on_wait).call(lambda: check_database(url))


def open_sinks(out: str | None, db: str | None, retry: RetryPolicy | None = None,
               on_wait: WaitListener | None = None) -> list[Sink]:
    """The sinks for ``--out`` (Parquet) and ``--db`` (SQL), after checking both; nothing is created yet.

    ``retry`` and ``on_wait``: how long the SQL sink waits out transient
    database errors, and who hears about the waits (default: no retries).
    """
    check_outputs(out, db, retry, on_wait)
    sinks: list[Sink] = []
    if out is not None:
        sinks.append(ParquetSink(out))
    if db is not None:
        sinks.append(SqlSink(db, retry, on_wait) if retry is not None else SqlSink(db))
    return sinks
