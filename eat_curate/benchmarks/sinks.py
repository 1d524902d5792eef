"""`eat-curate bench sinks`: rows/s of each sink against the naive way, measured in the same run.

Synthetic ScoreRecords (realistic field sizes) are written in batches, as an
engine writes them, into a fresh temporary target for each sink:

- SQLite (temporary file) and PostgreSQL (a temporary database created and
  dropped through an admin URL), each against the naive baseline: one
  upsert per row and a commit per row, on fewer rows;
- Parquet (temporary file, including the final merge), against one
  ``pyarrow.parquet.write_table`` of every row at the end: fast, but a crash
  before the end loses everything.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import sqlalchemy as sa
from tqdm import tqdm

from eat_curate.benchmarks.scratch_databases import DEFAULT_PG_SERVER, temporary_postgres
from eat_curate.records import ScoreRecord, records_to_table, utc_now
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.sinks import ParquetSink, SqlSink, database_url, describe
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import create_engine, create_or_upgrade, write_transaction
from eat_curate.sinks.sql.writers import image_row, score_row, upsert_statement

MODEL_ID = "bench@000000000000"


@dataclass
class SinkFigure:
    sink: str
    rows: int
    rows_per_s: float
    baseline: str
    baseline_rows: int
    baseline_rows_per_s: float

    @property
    def ratio(self) -> float:
        return self.rows_per_s / self.baseline_rows_per_s if self.baseline_rows_per_s else float("inf")


@dataclass
class SinkBenchResult:
    rows: int
    batch_size: int
    figures: list[SinkFigure] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # sink -> why it was not measured

    def to_dict(self) -> dict:
        data = asdict(self)
        for figure, row in zip(self.figures, data["figures"]):
            row["ratio"] = round(figure.ratio, 2)
        return data


def synthetic_records(count: int, seed: int = 0, start: int = 0) -> list[ScoreRecord]:
    """``count`` successful records shaped like real ones (100 albums, Dirichlet distributions)."""
    rng = np.random.default_rng(seed)
    distributions = rng.dirichlet(np.full(10, 2.0), size=count).astype(np.float32)
    bins = np.arange(1, 11, dtype=np.float64)
    means = distributions @ bins
    stds = np.sqrt((distributions * (bins - means[:, None]) ** 2).sum(axis=1))
    now = utc_now()
    return [
        ScoreRecord(
            image_id=f"{i:016x}",
            path=f"/photos/album-{i % 100:03d}/IMG_{i:07d}.jpg",
            album=f"album-{i % 100:03d}",
            model_id=MODEL_ID,
            run_id="bench",
            content_hash=f"{i:064x}",
            bytes=2_000_000 + i,
            mtime=1.7e9 + i,
            width=4000,
            height=3000,
            oriented_width=4000,
            oriented_height=3000,
            format="JPEG",
            probabilities=distributions[k].tolist(),
            mean=float(means[k]),
            std=float(stds[k]),
            scored_at=now + timedelta(microseconds=i),
        )
        for k, i in enumerate(range(start, start + count))
    ]


def _batches(records: Sequence[ScoreRecord], size: int) -> list[Sequence[ScoreRecord]]:
    return [records[k : k + size] for k in range(0, len(records), size)]


def _rate(rows: int, work: Callable[[], None]) -> float:
    start = time.perf_counter()
    work()
    return rows / (time.perf_counter() - start)


def _sql_sink_rate(db: str, batches: Sequence[Sequence[ScoreRecord]]) -> float:
    sink = SqlSink(db)
    sink.write(synthetic_records(1, start=10**9))  # connect and create the tables outside the timing
    try:
        return _rate(sum(map(len, batches)), lambda: [sink.write(batch) for batch in batches])
    finally:
        sink.close()


def _naive_sql_rate(db: str, records: Sequence[ScoreRecord]) -> float:
    """The obvious way: one upsert per table per row, a commit per row."""
    engine = create_engine(database_url(db))
    create_or_upgrade(engine)
    upsert_image = upsert_statement(engine.dialect.name, schema.images)
    upsert_score = upsert_statement(engine.dialect.name, schema.scores)

    def write_row_by_row() -> None:
        for record in records:
            with write_transaction(engine) as connection:
                connection.execute(upsert_image, image_row(record, utc_now()))
                connection.execute(upsert_score, score_row(record))

    try:
        return _rate(len(records), write_row_by_row)
    finally:
        engine.dispose()


def _parquet_rates(
    folder: Path, batches: Sequence[Sequence[ScoreRecord]], records: Sequence[ScoreRecord]
) -> tuple[float, float]:
    sink = ParquetSink(folder / "scores.parquet")
    run = RunInfo(run_id="bench", model_id=MODEL_ID, model_name="bench", model_sha256="0" * 64, sources=["synthetic"])

    def write_run() -> None:
        sink.begin_run(run)
        for batch in batches:
            sink.write(batch)
        sink.end_run(run, RunSummary(ok=len(records)), "completed")
        sink.close()

    ours = _rate(len(records), write_run)
    baseline = _rate(len(records), lambda: pq.write_table(records_to_table(records), folder / "baseline.parquet"))
    return ours, baseline


def bench_sinks(
    rows: int = 100_000,
    batch_size: int = 1000,
    baseline_rows: int = 2000,
    pg_admin_url: str | None = DEFAULT_PG_SERVER,
) -> SinkBenchResult:
    records = synthetic_records(rows)
    batches = _batches(records, batch_size)
    naive = records[:baseline_rows]
    naive_label = "row at a time, commit per row"
    result = SinkBenchResult(rows=rows, batch_size=batch_size)
    progress = tqdm(total=3, unit="sink", desc="bench sinks", disable=None, leave=False)
    with progress, tempfile.TemporaryDirectory(prefix="eat-curate-bench-sinks-") as scratch, ExitStack() as databases:
        folder = Path(scratch)
        sqlite_rate = _sql_sink_rate(str(folder / "sink.db"), batches)
        naive_rate = _naive_sql_rate(str(folder / "naive.db"), naive)
        result.figures.append(SinkFigure("sqlite", rows, sqlite_rate, naive_label, len(naive), naive_rate))
        progress.update()

        if pg_admin_url:
            server = database_url(pg_admin_url)
            try:
                sink_db = databases.enter_context(temporary_postgres(server))
                naive_db = databases.enter_context(temporary_postgres(server))
            except sa.exc.DBAPIError as error:
                reason = str(error.orig or error).strip().splitlines()[0]
                result.skipped["postgresql"] = f"cannot use {describe(server)}: {reason}"
            else:
                postgres_rate = _sql_sink_rate(sink_db.render_as_string(hide_password=False), batches)
                naive_rate = _naive_sql_rate(naive_db.render_as_string(hide_password=False), naive)
                result.figures.append(
                    SinkFigure("postgresql", rows, postgres_rate, naive_label, len(naive), naive_rate)
                )
        progress.update()

        ours, baseline = _parquet_rates(folder, batches, records)
        result.figures.append(
            SinkFigure("parquet", rows, ours, "one write_table at the end (not crash-safe)", rows, baseline)
        )
        progress.update()
    return result


def report_lines(result: SinkBenchResult) -> list[str]:
    lines = [f"{result.rows:,} synthetic score records in batches of {result.batch_size:,}"]
    for figure in result.figures:
        lines.append(
            f"  {figure.sink:<10} {figure.rows_per_s:>10,.0f} rows/s   baseline ({figure.baseline}, "
            f"{figure.baseline_rows:,} rows) {figure.baseline_rows_per_s:>10,.0f} rows/s   {figure.ratio:6.2f}x"
        )
    lines.extend(f"  {sink:<10} skipped: {reason}" for sink, reason in result.skipped.items())
    return lines
