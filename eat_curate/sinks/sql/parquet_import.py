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

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from tqdm import tqdm

from eat_curate.errors import StoreError
from eat_curate.records import NUM_BINS, ScoreRecord
from eat_curate.sinks.parquet.footer import parquet_file
from eat_curate.sinks.parquet.history import History
from eat_curate.sinks.parquet.result import ParquetResult, open_parquet_result
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import (
    check_database,
    command_engine,
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
        for batch in parquet_file(path).iter_batches(batch_size=rows):
            yield [ScoreRecord.from_row(row) for row in batch.to_pylist()]


# Text columns of the result -> the most characters their SQL column takes (PostgreSQL enforces it; SQLite
# would not, so both refuse alike).
_TEXT_LIMITS = {
    "image_id": schema.images.c.image_id.type.length,
    "model_id": schema.scores.c.model_id.type.length,
    "run_id": schema.scores.c.run_id.type.length,
    "content_hash": schema.images.c.content_hash.type.length,
    "format": schema.images.c.format.type.length,
    "error_kind": schema.errors.c.kind.type.length,
}
_TEXT_COLUMNS = ("image_id", "path", "album", "model_id", "run_id", "content_hash", "format", "error_kind", "error")
# What Python's datetime holds (years 1 to 9999), in microseconds since the epoch: a row is read through it.
_TIME_RANGE_US = (-62_135_596_800_000_000, 253_402_300_799_999_999)


def _first(mask: pa.Array) -> int | None:
    """The first position where ``mask`` is true (nulls count as false), or None."""
    hits = pc.indices_nonzero(pc.fill_null(mask, False))
    return hits[0].as_py() if len(hits) else None


def _not_finite(values: pa.Array) -> pa.Array:
    """True where ``values`` is null, NaN or infinite."""
    return pc.or_(pc.is_null(values), pc.invert(pc.fill_null(pc.is_finite(values), False)))


def row_problem(batch: pa.RecordBatch) -> tuple[int, str] | None:
    """The first row of ``batch`` that no database can hold as ``score`` would have written it, and why.

    A hand-edited result may have them: a success without its distribution, mean or std (or a NaN
    or infinite one, which SQLite stores as NULL and PostgreSQL sorts above every score), text the
    SQL columns cannot take (too long; a NUL character, which PostgreSQL refuses), ``extra`` that is
    not a JSON object, a time outside years 1 to 9999.
    """
    checks: list[tuple[pa.Array, str]] = []
    ok = pc.is_null(batch.column("error_kind"))
    probabilities = batch.column("probabilities")
    scores = {f"p{i + 1}": pc.list_element(probabilities, i) for i in range(NUM_BINS)}
    scores.update(mean=batch.column("mean"), std=batch.column("std"))
    for name, values in scores.items():
        checks.append((pc.and_(ok, _not_finite(values)), f"is a success whose {name} is missing, NaN or infinite"))
    for name in _TEXT_COLUMNS:
        column = batch.column(name)
        checks.append((pc.match_substring(column, "\x00"), f"has a NUL character in {name}"))
        if name in _TEXT_LIMITS:
            limit = _TEXT_LIMITS[name]
            checks.append((pc.greater(pc.utf8_length(column), limit), f"has {name} of more than {limit} characters"))
    for name in ("captured_at", "scored_at"):
        micros = pc.cast(batch.column(name), pa.int64())
        low, high = _TIME_RANGE_US
        checks.append((pc.or_(pc.less(micros, low), pc.greater(micros, high)), f"has {name} outside years 1-9999"))
    found = [(position, what) for mask, what in checks if (position := _first(mask)) is not None]
    for position, text in enumerate(batch.column("extra").to_pylist()):
        if text is not None and not _json_object(text):
            found.append((position, "has an extra that is not a JSON object"))
            break
    return min(found) if found else None


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def check_rows(result: ParquetResult, rows: int = BATCH_ROWS) -> None:
    """Raise StoreError at the result's first row a database cannot hold (:func:`row_problem`), before any write."""
    for path in result.files:
        offset = 0
        for batch in parquet_file(path).iter_batches(batch_size=rows):
            problem = row_problem(batch)
            if problem is not None:
                position, what = problem
                raise StoreError(
                    f"{path}: row {offset + position + 1} {what}; not a result as `score --out` writes it "
                    "(edited by hand?): fix or drop that row; nothing was imported"
                )
            offset += batch.num_rows


def import_parquet(source: str, db: str, batch_rows: int = BATCH_ROWS, progress: bool = True) -> ImportSummary:
    """Load the Parquet result at ``source`` into ``db`` (see the module doc); nothing is created on bad input."""
    started = time.perf_counter()
    if not Path(source).expanduser().exists():
        raise StoreError(f"{source}: no such file or folder (give the .parquet file or the folder `score --out` wrote)")
    result = open_parquet_result(source)
    url = database_url(db)
    check_database(url)
    check_rows(result, batch_rows)  # a bad row found mid-import would leave the rows before it imported
    summary = ImportSummary(source=result.where, database=describe(url), rows=result.rows(), imported=0, skipped=0)
    sink = SqlSink(db)
    with command_engine(url) as engine:  # a role without the privilege, a corrupt file: one line
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
    summary.added = {name: after[name] - before[name] for name in after}
    summary.seconds = time.perf_counter() - started
    return summary
