"""What ``eat-curate runs`` lists: the run records kept in a database or beside Parquet output, newest first.

A record still "running" whose process is gone (this host) or whose heartbeat
is stale (any host) is listed as interrupted (``eat_curate.runs.liveness``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa

from eat_curate.errors import StoreError
from eat_curate.library.connection import read_connection
from eat_curate.runs import liveness
from eat_curate.sinks.parquet.history import read_history
from eat_curate.sinks.parquet.target import parquet_target
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import runs_columns


def _record_from_sql(row: sa.RowMapping) -> dict:
    def when(value: datetime | None) -> str | None:
        if value is None:
            return None
        # SQLite gives back naive UTC, PostgreSQL the session's time zone: print UTC from both.
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return value.isoformat()

    record = {
        **{name: when(value) if isinstance(value, datetime) else value for name, value in row.items()},  # all times
        "sources": _stored_json(row["sources"], list),
        "options": _stored_json(row["options"], dict),
        "failed_by_kind": _stored_json(row["failed_by_kind"], dict),
        "outputs": _stored_json(row["outputs"], list),
    }
    return {**record, "status": liveness(record)}


def _stored_json(text: str | None, kind: type[list] | type[dict]) -> list | dict | str:
    """A JSON column of ``runs`` as its list or object (empty when unset). Text that is not JSON of that kind (a
    hand edit, another tool's write) is given as it is stored: one odd record must not stop the listing."""
    if not text:
        return kind()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, kind) else text


def runs_from_database(db: str, limit: int | None = None) -> list[dict]:
    """Run records from a database or a Parquet result read as one, newest first; nothing is created."""
    with read_connection(db, scores=False) as connection:
        query = sa.select(*runs_columns(connection)).order_by(  # an older database lacks the newer columns
            schema.runs.c.started_at.desc(), schema.runs.c.run_id.desc()
        )
        if limit:
            query = query.limit(limit)
        return [_record_from_sql(row) for row in connection.execute(query).mappings()]


def runs_from_parquet(out: str, limit: int | None = None) -> list[dict]:
    """Run records kept with Parquet output (file metadata or dataset history), newest first."""
    target = parquet_target(out)
    if not target.committed_files() and not target.work.is_dir() and not target.history_file.is_file():
        raise StoreError(f"--out {target.path}: no eat-curate Parquet output there")
    runs = [{**run, "status": liveness(run)} for run in reversed(read_history(target).runs)]
    return runs[:limit] if limit else runs
