"""``db import``: a Parquet result (``score --out``) into an SQL database, without rescoring.

The rows go through the SQL sink's own batch upserts (``SqlSink.write``), so
the tables end exactly as if the run had written ``--db`` itself. Before
anything is written the history is recorded: each model's card in
``models`` and each merged run in ``runs`` (both only where absent), so
every imported row's run id names a recorded run.

The newest record of an (image, model) wins, as in the Parquet output
itself: a row is written only when the database holds no record of that
image and model or an older one (by scoring time). So an import is
idempotent (a second one writes nothing), and importing an old result into
a database that has since rescored an image does not bring back the old
score. The import is not a scoring run and adds no run record of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import sqlalchemy as sa
from tqdm import tqdm

from eat_curate.errors import StoreError
from eat_curate.records import ScoreRecord
from eat_curate.sinks.parquet.history import History
from eat_curate.sinks.parquet.result import ParquetResult, open_parquet_result
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import (
    check_database,
    create_engine,
    create_or_upgrade,
    database_url,
    describe,
    write_transaction,
)
from eat_curate.sinks.sql.sink import SqlSink, model_row, sql_run_row
from eat_curate.sinks.sql.writers import insert_if_absent_statement

BATCH_ROWS = 10_000  # rows per transaction; also the ids of one lookup, far below the bound-parameter limits
_TABLES = (schema.images, schema.scores, schema.errors, schema.models, schema.runs)


@dataclass
class ImportSummary:
    source: str  # the Parquet file, or the folder (ending in '/')
    database: str  # the SQLite file, or the URL without its password
    rows: int  # in the Parquet result
    imported: int  # rows written: new to the database, or newer than its record
    skipped: int  # rows whose image and model the database holds as recently or more recently
    added: dict[str, int] = field(default_factory=dict)  # rows each table gained
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 3)}


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive times (written in UTC), PostgreSQL aware ones."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def table_counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in _TABLES
        }


def record_history(engine: sa.Engine, history: History) -> None:
    """Each model card and run of ``history`` where the database lacks it; what is there stays."""
    dialect = engine.dialect.name
    with write_transaction(engine) as connection:
        if history.models:
            rows = [model_row(model_id, card) for model_id, card in sorted(history.models.items())]
            connection.execute(insert_if_absent_statement(dialect, schema.models), rows)
        if history.runs:
            runs = [sql_run_row(run) for run in history.runs]
            connection.execute(insert_if_absent_statement(dialect, schema.runs), runs)


def stored_times(connection: sa.Connection, records: Sequence[ScoreRecord]) -> dict[tuple[str, str], datetime]:
    """When the database's score or error of each (image id, model id) of ``records`` was recorded (UTC)."""
    by_model: dict[str, set[str]] = {}
    for record in records:
        by_model.setdefault(record.model_id, set()).add(record.image_id)
    found: dict[tuple[str, str], datetime] = {}
    for table, when in ((schema.scores, schema.scores.c.scored_at), (schema.errors, schema.errors.c.at)):
        for model_id, image_ids in by_model.items():
            query = sa.select(table.c.image_id, when).where(
                table.c.model_id == model_id, table.c.image_id.in_(image_ids)
            )
            for image_id, at in connection.execute(query):
                found[(image_id, model_id)] = _utc(at)
    return found


def newer_records(connection: sa.Connection, records: Sequence[ScoreRecord]) -> list[ScoreRecord]:
    """The newest record of each (image, model) of ``records``, where the database holds none as recent."""
    newest: dict[tuple[str, str], ScoreRecord] = {}
    for record in records:
        key = (record.image_id, record.model_id)
        if key not in newest or record.scored_at > newest[key].scored_at:
            newest[key] = record
    stored = stored_times(connection, records)
    return [record for key, record in newest.items() if key not in stored or record.scored_at > stored[key]]


def record_batches(result: ParquetResult, rows: int) -> Iterator[list[ScoreRecord]]:
    """The result's rows as ScoreRecords, ``rows`` at a time, file by file."""
    for path in result.files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield [ScoreRecord.from_row(row) for row in batch.to_pylist()]


def import_parquet(source: str, db: str, batch_rows: int = BATCH_ROWS, progress: bool = True) -> ImportSummary:
    """Load the Parquet result at ``source`` into ``db`` (see the module doc); nothing is created on bad input."""
    started = time.perf_counter()
    if not Path(source).expanduser().exists():
        raise StoreError(f"{source}: no such file or folder (give the .parquet file or the folder `score --out` wrote)")
    result = open_parquet_result(source)
    url = database_url(db)
    check_database(url)
    summary = ImportSummary(source=result.where, database=describe(url), rows=result.rows(), imported=0, skipped=0)
    engine = create_engine(url)
    sink = SqlSink(db)
    try:
        create_or_upgrade(engine)
        before = table_counts(engine)
        record_history(engine, result.committed_history())
        with tqdm(total=summary.rows, unit="row", desc="importing", disable=None if progress else True) as bar:
            for records in record_batches(result, batch_rows):
                with engine.connect() as connection:
                    newer = newer_records(connection, records)
                sink.write(newer)
                summary.imported += len(newer)
                summary.skipped += len(records) - len(newer)
                bar.update(len(records))
        after = table_counts(engine)
    finally:
        sink.close()
        engine.dispose()
    summary.added = {name: after[name] - before[name] for name in after}
    summary.seconds = time.perf_counter() - started
    return summary
