"""SqlSink: scores into the SQL tables of ``schema.py`` (SQLite file or PostgreSQL).

Every ``write`` is one transaction, so it is all on disk or not at all when it
returns. It is idempotent: writing the same records again leaves the same rows.
For each (image, model) the latest record wins: a success upserts ``scores``
and removes the image's error for that model; a failure upserts ``errors`` and
removes the score it replaces. ``images`` holds the latest facts of each image.

Given the run's counts, a ``write`` also updates the run's row (counts and
heartbeat) in the same transaction: the run record is true at every commit.

Every operation (a batch, a lookup, a run record) runs under a retry policy
(``sinks.retry``): a database restarting, failing over or locked by another
writer is waited for, and the whole transaction is tried again — harmless,
since it is idempotent. A full or read-only disk ends the run in one line.

The tables are created (or upgraded) on first use; the engine calls
:meth:`SqlSink.register_model` with the model card before ``begin_run``, and
the card lands in ``models`` once per model id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa

from eat_curate.errors import StoreError
from eat_curate.incremental import InputVersion, stored_versions
from eat_curate.records import ScoreRecord
from eat_curate.runs import RunInfo, RunSummary, process_alive, run_record, utc_now
from eat_curate.sinks.faults import RESUME_HINT, InfrastructureFailure
from eat_curate.sinks.retry import NO_RETRY, Retrier, RetryPolicy, WaitListener
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import (
    SQLITE_BUSY_TIMEOUT_S,
    create_engine,
    create_or_upgrade,
    database_url,
    describe,
    write_transaction,
)
from eat_curate.sinks.sql.db_faults import is_refusal, is_storage_fault, is_transient, reason
from eat_curate.sinks.sql.writers import (
    BatchWriter,
    RunProgress,
    batch_writer_for,
    insert_if_absent_statement,
    upsert_statement,
)

# Ids per lookup query: far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
_LOOKUP_CHUNK = 10_000
# Under a retry policy SQLite's own silent wait for a lock stays short: a longer wait is the
# policy's, shown ("database is locked; retrying in ...") and bounded by its limit.
RETRYING_BUSY_TIMEOUT_S = 5.0

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


def scored_keys(connection: sa.Connection, inputs: Sequence[InputVersion], model_id: str) -> set[str]:
    """Keys of ``inputs`` the database holds a current success of ``model_id`` for (``eat_curate.incremental``)."""
    done: set[str] = set()
    for chunk in _chunks(inputs, _LOOKUP_CHUNK):
        ids = list({one.image_id for one in chunk})
        rows = connection.execute(_SCORED, {"model_id": model_id, "image_ids": ids})
        stored = {
            row.image_id: (row.path, stored_versions(row.scored_bytes, row.scored_mtime, row.scored_content_hash))
            for row in rows
        }
        for one in chunk:
            path, versions = stored.get(one.image_id, (None, ()))
            if path == one.key and one.version in versions:
                done.add(one.key)
    return done


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


class SqlSink:
    """Writes ScoreRecords and runs to ``db`` (a path or an SQLAlchemy URL); see the module doc.

    ``retry``: how long to wait out transient database errors (default: not
    at all); ``on_wait`` hears what is being waited for (a progress bar).
    """

    def __init__(self, db: str, retry: RetryPolicy = NO_RETRY, on_wait: WaitListener | None = None) -> None:
        self.url = database_url(db)
        self.where = describe(self.url)
        self._engine: sa.Engine | None = None
        self._batches: BatchWriter | None = None
        self._run_progress: RunProgress | None = None
        self._upgraded = False
        self._card: dict | None = None
        self._registered: set[str] = set()
        self._open_run: RunInfo | None = None  # begun and not yet ended
        self._retry = Retrier(retry, self.where, is_transient, reason, on_wait, before_retry=self._drop_connections)

    def __repr__(self) -> str:
        return f"SqlSink({self.where!r})"

    # --- connections, retries and faults ---------------------------------------------------------------

    def _ready(self) -> sa.Engine:
        """The engine, the tables created or upgraded on first use."""
        if self._engine is None:
            busy = RETRYING_BUSY_TIMEOUT_S if self._retry.policy.limit_s > 0 else SQLITE_BUSY_TIMEOUT_S
            engine = create_engine(self.url, busy_timeout_s=min(busy, SQLITE_BUSY_TIMEOUT_S))
            self._batches = batch_writer_for(engine)  # before the first connection: it prepares every connection
            self._run_progress = RunProgress(engine.dialect)
            self._engine = engine
        if not self._upgraded:
            create_or_upgrade(self._engine)
            self._upgraded = True
        return self._engine

    def _drop_connections(self) -> None:
        # A restarted server killed every pooled connection; the next attempt opens fresh ones.
        if self._engine is not None:
            self._engine.dispose()

    def _attempt(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` (one transaction, or a read) under the retry policy; a failing disk is one line."""
        try:
            return self._retry.call(operation)
        except Exception as error:
            if is_storage_fault(error):
                raise InfrastructureFailure(f"--db {self.where}: {reason(error)}; {RESUME_HINT}") from None
            if is_refusal(error):  # a role that may read but not write, a hot standby: fix the grant or the URL
                raise StoreError(f"--db {self.where} cannot be written: {reason(error)}") from None
            raise

    # --- the sink protocol ------------------------------------------------------------------------------

    def register_model(self, card: dict) -> None:
        """The card of the model about to write; stored in ``models`` at ``begin_run``."""
        self._card = dict(card)

    def _save_run(self, record: dict) -> None:
        """Upsert a run's row, registering its model first if this sink has not yet."""

        def save() -> None:
            engine = self._ready()
            registering = self._card is not None and record["model_id"] not in self._registered
            with write_transaction(engine) as connection:
                if registering:
                    statement = insert_if_absent_statement(engine.dialect.name, schema.models)
                    connection.execute(statement, [model_row(record["model_id"], self._card)])
                connection.execute(upsert_statement(engine.dialect.name, schema.runs), [sql_run_row(record)])
            if registering:  # only once committed: a transaction tried again registers again
                self._registered.add(record["model_id"])

        self._attempt(save)

    def begin_run(self, run: RunInfo) -> None:
        """Record ``run`` as running (and register its model); runs a crash left "running" become interrupted."""
        self._mark_crashed_runs(run.host)
        self._save_run(run_record(run, "running"))
        self._open_run = run

    def _mark_crashed_runs(self, host: str) -> None:
        """Runs of this host still "running" whose process is gone were killed (kill -9, power loss)."""
        runs = schema.runs

        def candidates() -> list[sa.Row]:
            with self._ready().connect() as connection:
                query = sa.select(runs.c.run_id, runs.c.pid).where(runs.c.status == "running", runs.c.host == host)
                return connection.execute(query).all()

        rows = self._attempt(candidates)
        crashed = [row.run_id for row in rows if row.pid is not None and not process_alive(row.pid)]
        if crashed:
            self._set_status(crashed, "interrupted", ended_at=runs.c.heartbeat_at)  # last known alive

    def _set_status(self, run_ids: Sequence[str], status: str, ended_at: datetime | sa.Column) -> None:
        """Mark runs still "running" with ``status``, keeping the counts their heartbeats saved."""
        runs = schema.runs

        def update() -> None:
            with write_transaction(self._ready()) as connection:
                connection.execute(
                    runs.update()
                    .where(runs.c.run_id.in_(list(run_ids)), runs.c.status == "running")
                    .values(status=status, ended_at=ended_at)
                )

        self._attempt(update)

    def already_scored(self, inputs: Sequence[InputVersion], model_id: str) -> set[str]:
        """Keys of ``inputs`` with a current success of ``model_id`` (rule: ``eat_curate.incremental``)."""

        def lookup() -> set[str]:
            with self._ready().connect() as connection:
                return scored_keys(connection, inputs, model_id)

        return self._attempt(lookup)

    def write(self, records: Sequence[ScoreRecord], tally: RunSummary | None = None) -> None:
        """Upsert ``records`` in one transaction, committed when this returns.

        ``tally``: the run's counts once these records are saved; they and
        the heartbeat go into the run's row in the same transaction.
        """
        if not records:
            return
        latest = list({(record.image_id, record.model_id): record for record in records}.values())
        run = self._open_run

        def save() -> None:
            engine = self._ready()
            now = utc_now()
            batch = self._batches.rows(latest, now)  # per attempt: PostgreSQL's rows are a one-pass stream
            with write_transaction(engine) as connection:
                self._batches.write(connection, batch)
                if tally is not None and run is not None:
                    self._run_progress.run(connection, run.run_id, tally, now)

        self._attempt(save)

    def end_run(self, run: RunInfo, summary: RunSummary, status: str) -> None:
        """Record the run's outcome: status, counts, speed, end time, outputs."""
        self._save_run(run_record(run, status, summary))
        self._open_run = None

    def close(self) -> None:
        """Record a run that was begun and never ended as interrupted, and release the connections."""
        try:
            if self._open_run is not None:
                run, self._open_run = self._open_run, None
                self._set_status([run.run_id], "interrupted", ended_at=utc_now())
        finally:
            self._dispose()

    def _dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._upgraded = False


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
        "heartbeat_at": datetime.fromisoformat(record["heartbeat_at"]) if record.get("heartbeat_at") else None,
    }
