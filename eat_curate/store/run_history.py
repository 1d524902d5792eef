"""Runs as plain records: what every sink stores about a run and what ``eat-curate runs`` lists."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from eat_curate.records import utc_now
from eat_curate.runs import RUN_STATUSES, RunInfo, RunSummary
from eat_curate.store import schema
from eat_curate.store.database import (
    check_schema,
    connect,
    create_engine,
    database_url,
    describe,
    readonly_sqlite_engine,
)
from eat_curate.store.errors import StoreError
from eat_curate.store.parquet_history import read_history
from eat_curate.store.parquet_target import parquet_target


def run_record(run: RunInfo, status: str, summary: RunSummary | None = None) -> dict:
    """A run as one flat, JSON-ready dict (times as ISO 8601 text)."""
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {', '.join(RUN_STATUSES)}")
    record = {
        "run_id": run.run_id,
        "status": status,
        "model_id": run.model_id,
        "engine": run.engine,
        "host": run.host,
        "pid": run.pid,
        "sources": list(run.sources),
        "options": run.options,
        "started_at": run.started_at.isoformat(),
        "ended_at": None,
        "ok": 0,
        "failed": 0,
        "skipped": 0,
        "failed_by_kind": {},
        "images_per_s": None,
        "outputs": [],
    }
    if summary is not None:
        record.update(
            ended_at=(summary.ended_at or utc_now()).isoformat(),
            ok=summary.ok,
            failed=summary.failed,
            skipped=summary.skipped,
            failed_by_kind=dict(summary.failed_by_kind),
            images_per_s=round(summary.images_per_s, 3),
            outputs=list(summary.outputs),
        )
    return record


def sql_run_row(record: dict) -> dict:
    """A run record as a row of the ``runs`` table."""
    return {
        "run_id": record["run_id"],
        "model_id": record["model_id"],
        "status": record["status"],
        "engine": record["engine"],
        "host": record["host"],
        "pid": record.get("pid"),
        "sources": json.dumps(record["sources"], ensure_ascii=False),
        "options": json.dumps(record["options"], default=str, ensure_ascii=False),
        "started_at": datetime.fromisoformat(record["started_at"]),
        "ended_at": datetime.fromisoformat(record["ended_at"]) if record["ended_at"] else None,
        "ok": record["ok"],
        "failed": record["failed"],
        "skipped": record["skipped"],
        "failed_by_kind": json.dumps(record["failed_by_kind"]),
        "images_per_s": record["images_per_s"],
        "outputs": json.dumps(record["outputs"], ensure_ascii=False),
    }


def _record_from_sql(row: sa.RowMapping) -> dict:
    def when(value: datetime | None) -> str | None:
        if value is None:
            return None
        # SQLite gives back naive UTC, PostgreSQL the session's time zone: print UTC from both.
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
        return value.isoformat()

    return {
        **row,
        "sources": json.loads(row["sources"]),
        "options": json.loads(row["options"]),
        "started_at": when(row["started_at"]),
        "ended_at": when(row["ended_at"]),
        "failed_by_kind": json.loads(row["failed_by_kind"]) if row["failed_by_kind"] else {},
        "outputs": json.loads(row["outputs"]) if row["outputs"] else [],
    }


def runs_from_database(db: str, limit: int | None = None) -> list[dict]:
    """Run records from a database, newest first; the database must exist (nothing is created)."""
    url = database_url(db)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        if not path.is_file():
            raise StoreError(f"--db {path}: no such database")
        engine = readonly_sqlite_engine(path)
    else:
        engine = create_engine(url)
    try:
        with connect(engine, url) as connection:
            if check_schema(connection, describe(url)) is None:
                raise StoreError(
                    f"{describe(url)} holds no eat-curate tables yet (create them with `eat-curate db init`)"
                )
            query = sa.select(schema.runs).order_by(schema.runs.c.started_at.desc(), schema.runs.c.run_id.desc())
            if limit:
                query = query.limit(limit)
            return [_record_from_sql(row) for row in connection.execute(query).mappings()]
    finally:
        engine.dispose()


def runs_from_parquet(out: str, limit: int | None = None) -> list[dict]:
    """Run records kept with Parquet output (file metadata or dataset history), newest first."""
    target = parquet_target(out)
    if not target.committed_files() and not target.work.is_dir() and not target.history_file.is_file():
        raise StoreError(f"--out {target.path}: no eat-curate Parquet output there")
    runs = list(reversed(read_history(target).runs))
    return runs[:limit] if limit else runs
