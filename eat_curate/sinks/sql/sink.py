"""SqlSink: scores into the SQL tables of ``schema.py`` (SQLite file or PostgreSQL).

Every ``write`` is one transaction, so it is all on disk or not at all when it
returns. It is idempotent: writing the same records again leaves the same rows.
For each (image, model) the latest record wins: a success upserts ``scores``
and removes the image's error for that model; a failure upserts ``errors`` and
removes the score it replaces. ``images`` holds the latest facts of each image.

The tables are created (or upgraded) on first use; the engine calls
:meth:`SqlSink.register_model` with the model card before ``begin_run``, and
the card lands in ``models`` once per model id.
"""

from __future__ import annotations

import json
from datetime import datetime
import os
from collections.abc import Iterator, Sequence
from typing import TypeVar

import sqlalchemy as sa

from eat_curate.records import ScoreRecord
from eat_curate.runs import RunInfo, RunSummary, run_record, utc_now
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import create_engine, create_or_upgrade, database_url, describe, write_transaction
from eat_curate.incremental import InputVersion, stored_versions
from eat_curate.sinks.sql.writers import BatchWriter, batch_writer_for, insert_if_absent_statement, upsert_statement

# Ids per lookup query: far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
_LOOKUP_CHUNK = 10_000

_SCORED = (
    sa.select(
        schema.scores.c.image_id,
        schema.images.c.path,
        schema.scores.c.scored_bytes,
        schema.scores.c.scored_mtime,
        schema.scores.c.scored_content_hash,
    )
    .join_from(schema.scores, schema.images, schema.images.c.image_id == schema.scores.c.image_id)
    .where(
        schema.scores.c.model_id == sa.bindparam("model_id"),
        schema.scores.c.image_id.in_(sa.bindparam("image_ids", expanding=True)),
    )
)

T = TypeVar("T")


def _chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def model_row(model_id: str, card: dict) -> dict:
    return {
        "model_id": model_id,
        "name": card.get("name") or model_id.split("@")[0],
        "preset": card.get("preset") or "",
        "sha256": card.get("sha256") or "",
        "head_mode": card.get("head_mode") or "",
        "trained": bool(card.get("trained", False)),
        "card": json.dumps(card, default=str, sort_keys=True, ensure_ascii=False),
        "registered_at": utc_now(),
    }


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class SqlSink:
    """Writes ScoreRecords and runs to ``db`` (a path or an SQLAlchemy URL); see the module doc."""

    def __init__(self, db: str) -> None:
        self.url = database_url(db)
        self._engine: sa.Engine | None = None
        self._batches: BatchWriter | None = None
        self._card: dict | None = None
        self._registered: set[str] = set()
        self._open_run: RunInfo | None = None  # begun and not yet ended

    def __repr__(self) -> str:
        return f"SqlSink({describe(self.url)!r})"

    def _ready(self) -> tuple[sa.Engine, BatchWriter]:
        """The engine, the tables created or upgraded on first use."""
        if self._engine is None:
            engine = create_engine(self.url)
            batches = batch_writer_for(engine)  # before the first connection: it prepares every connection
            try:
                create_or_upgrade(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine, self._batches = engine, batches
        return self._engine, self._batches

    def register_model(self, card: dict) -> None:
        """The card of the model about to write; stored in ``models`` at ``begin_run``."""
        self._card = dict(card)

    def _register(self, connection: sa.Connection, model_id: str) -> None:
        if self._card is None or model_id in self._registered:
            return
        statement = insert_if_absent_statement(connection.dialect.name, schema.models)
        connection.execute(statement, [model_row(model_id, self._card)])
        self._registered.add(model_id)

    def _save_run(self, record: dict) -> None:
        engine, _ = self._ready()
        with write_transaction(engine) as connection:
            self._register(connection, record["model_id"])
            connection.execute(upsert_statement(engine.dialect.name, schema.runs), [sql_run_row(record)])

    def begin_run(self, run: RunInfo) -> None:
        """Record ``run`` as running (and register its model); runs a crash left "running" become interrupted."""
        self._mark_crashed_runs(run.host)
        self._save_run(run_record(run, "running"))
        self._open_run = run

    def _mark_crashed_runs(self, host: str) -> None:
        """Runs of this host still "running" whose process is gone were killed (kill -9, power loss)."""
        engine, _ = self._ready()
        runs = schema.runs
        with engine.connect() as connection:
            candidates = connection.execute(
                sa.select(runs.c.run_id, runs.c.pid).where(runs.c.status == "running", runs.c.host == host)
            ).all()
        crashed = [row.run_id for row in candidates if row.pid is not None and not process_alive(row.pid)]
        if crashed:
            with write_transaction(engine) as connection:
                connection.execute(
                    runs.update().where(runs.c.run_id.in_(crashed), runs.c.status == "running").values(status="interrupted")
                )

    def already_scored(self, inputs: Sequence[InputVersion], model_id: str) -> set[str]:
        """Keys of ``inputs`` with a current success of ``model_id`` (rule: ``eat_curate.incremental``)."""
        engine, _ = self._ready()
        done: set[str] = set()
        with engine.connect() as connection:
            for chunk in _chunks(inputs, _LOOKUP_CHUNK):
                ids = list({one.image_id for one in chunk})
                rows = connection.execute(_SCORED, {"model_id": model_id, "image_ids": ids})
                stored = {
                    row.image_id: (
                        row.path,
                        stored_versions(row.scored_bytes, row.scored_mtime, row.scored_content_hash),
                    )
                    for row in rows
                }
                for one in chunk:
                    path, versions = stored.get(one.image_id, (None, ()))
                    if path == one.key and one.version in versions:
                        done.add(one.key)
        return done

    def write(self, records: Sequence[ScoreRecord]) -> None:
        """Upsert ``records`` in one transaction; committed when this returns."""
        if not records:
            return
        engine, batches = self._ready()
        latest = list({(record.image_id, record.model_id): record for record in records}.values())
        batch = batches.rows(latest, utc_now())
        with write_transaction(engine) as connection:
            batches.write(connection, batch)

    def end_run(self, run: RunInfo, summary: RunSummary, status: str) -> None:
        """Record the run's outcome: status, counts, speed, end time, outputs."""
        self._save_run(run_record(run, status, summary))
        self._open_run = None

    def close(self) -> None:
        """Record a run that was begun and never ended as interrupted, and release the connections."""
        try:
            if self._open_run is not None:
                self._save_run(run_record(self._open_run, "interrupted"))
                self._open_run = None
        finally:
            self._dispose()

    def _dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


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
