"""`albums` and `rank` over a million scores in a Parquet result (`score --out`), as the commands read it.

A synthetic result of the shape ``read_side`` loads into SQL (several hundred
albums of Zipf-like sizes, random 10-bin distributions) is written as one
Parquet file, built column by column with Arrow (a few seconds for 1M rows),
with the run and model history a real run leaves in its metadata. Each query
is timed as a command runs it: open the result (``read_connection``), choose
the model, run the read side's query, fetch every row. Every round opens the
result afresh, as each command does; the figures are the best and the
median wall time of the rounds, and the median CPU time of the process
(all DuckDB threads), which a machine shared with other work inflates less.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from eat_curate.benchmarks.read_side import MODEL_ID, TARGET_S, album_sizes
from eat_curate.library import album_stats, rank_images, read_connection, resolve_model
from eat_curate.records import NUM_BINS, PARQUET_SCHEMA
from eat_curate.sinks.parquet.history import History

ROW_GROUP_ROWS = 65_536  # as the Parquet sink writes them
RUN_ID = "20260101T000000Z-bench000"
_HEX_PAIRS = np.array([ord(f"{value:02x}"[0]) | ord(f"{value:02x}"[1]) << 8 for value in range(256)], dtype="<u2")


# --- a synthetic result --------------------------------------------------------------------------


def _hex_ids(values: np.ndarray) -> pa.Array:
    """``values`` (uint64) as 16-digit hex strings, like ``image_id_for``'s ids, without a Python loop."""
    digits = _HEX_PAIRS[values.astype(">u8").view(np.uint8)]  # two ASCII digits per byte, big-endian
    offsets = np.arange(0, 16 * len(values) + 1, 16, dtype=np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(digits.tobytes())]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


def synthetic_table(rows: int, albums: int, seed: int = 0) -> pa.Table:
    """``rows`` successes of one model in ``albums`` albums, album by album as a folder scan writes them."""
    rng = np.random.default_rng(seed)
    names = pa.array([f"album-{index:04d}" for index in range(albums)])
    album = pa.DictionaryArray.from_arrays(
        pa.array(np.repeat(np.arange(albums, dtype=np.int32), album_sizes(rows, albums))), names
    ).dictionary_decode()
    image_id = _hex_ids(rng.permutation(rows).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    path = pc.binary_join_element_wise("/photos", album, pc.binary_join_element_wise(image_id, ".jpg", ""), "/")
    p = rng.dirichlet(np.full(NUM_BINS, 0.8), size=rows).astype(np.float32)
    bins = np.arange(1, NUM_BINS + 1, dtype=np.float32)
    mean = (p * bins).sum(axis=1, dtype=np.float32)
    std = np.sqrt((p * (bins - mean[:, None]) ** 2).sum(axis=1, dtype=np.float32))
    start = np.datetime64("2024-01-01T00:00:00", "us")
    captured = start + rng.integers(0, 365 * 86_400, size=rows).astype("timedelta64[s]")
    scored = np.datetime64("2026-01-01T00:00:00", "us") + np.arange(rows).astype("timedelta64[ms]")
    columns = {
        "image_id": image_id,
        "path": path,
        "album": album,
        "model_id": pa.array(np.full(rows, MODEL_ID, dtype=object), pa.string()),
        "run_id": pa.array(np.full(rows, RUN_ID, dtype=object), pa.string()),
        "content_hash": pa.nulls(rows, pa.string()),
        "bytes": pa.array(rng.integers(200_000, 8_000_000, size=rows), pa.int64()),
        "mtime": pa.array(1.7e9 + rng.random(rows) * 1e7, pa.float64()),
        "width": pa.array(np.full(rows, 4000, dtype=np.int32)),
        "height": pa.array(np.full(rows, 3000, dtype=np.int32)),
        "oriented_width": pa.array(np.full(rows, 4000, dtype=np.int32)),
        "oriented_height": pa.array(np.full(rows, 3000, dtype=np.int32)),
        "format": pa.array(np.full(rows, "JPEG", dtype=object), pa.string()),
        "phash": pa.array(rng.integers(-(2**63), 2**63 - 1, size=rows, dtype=np.int64)),
        "captured_at": pa.array(captured, pa.timestamp("us")),
        "probabilities": pa.FixedSizeListArray.from_arrays(pa.array(p.ravel()), NUM_BINS),
        "mean": pa.array(mean),
        "std": pa.array(std),
        "scored_at": pa.array(scored, pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC")),
        "error_kind": pa.nulls(rows, pa.string()),
        "error": pa.nulls(rows, pa.string()),
        "extra": pa.nulls(rows, pa.string()),
    }
    return pa.Table.from_pydict(columns, schema=PARQUET_SCHEMA)


def synthetic_history(rows: int) -> History:
    """The run and model records a real run of ``rows`` images leaves with its output."""
    started = datetime(2026, 1, 1, tzinfo=timezone.utc)
    run = {
        "run_id": RUN_ID,
        "status": "completed",
        "model_id": MODEL_ID,
        "engine": "local",
        "host": "bench",
        "pid": 1,
        "sources": ["/photos"],
        "options": {},
        "started_at": started.isoformat(),
        "ended_at": (started + timedelta(seconds=rows / 1000)).isoformat(),
        "ok": rows,
        "failed": 0,
        "skipped": 0,
        "failed_by_kind": {},
        "images_per_s": 1000.0,
        "outputs": [],
    }
    name, sha = MODEL_ID.split("@")
    card = {"name": name, "preset": "tiny", "sha256": sha, "head_mode": "softmax", "trained": True}
    return History(runs=[run], models={MODEL_ID: card})


def write_synthetic_result(path: Path, rows: int = 1_000_000, albums: int = 400, seed: int = 0) -> Path:
    """Write a Parquet result of ``rows`` scores to ``path`` (one file, as ``score --out x.parquet``)."""
    table = synthetic_table(rows, albums, seed)
    table = table.replace_schema_metadata(synthetic_history(rows).to_metadata())
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS)
    return path


# --- timing --------------------------------------------------------------------------------------


@dataclass
class QueryFigures:
    query: str
    seconds: list[float]  # wall time of every round, in order
    cpu_seconds: list[float]  # CPU time of this process (all DuckDB threads), which other load inflates less

    @property
    def best_s(self) -> float:
        return min(self.seconds)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpu_seconds)

    def to_dict(self) -> dict:
        return {
            "query": self.query,
            "best_s": round(self.best_s, 3),
            "median_s": round(self.median_s, 3),
            "median_cpu_s": round(self.median_cpu_s, 3),
            "seconds": [round(value, 3) for value in self.seconds],
        }


@dataclass
class ParquetReadResult:
    rows: int
    albums: int
    rounds: int
    write_s: float  # making the synthetic result
    file_bytes: int
    queries: list[QueryFigures] = field(default_factory=list)

    @property
    def meets_target(self) -> bool:
        return all(figures.median_s < TARGET_S for figures in self.queries)

    def to_dict(self) -> dict:
        return {
            "backend": "parquet (duckdb)",
            "rows": self.rows,
            "albums": self.albums,
            "rounds": self.rounds,
            "write_s": round(self.write_s, 2),
            "file_bytes": self.file_bytes,
            "target_s": TARGET_S,
            "queries": [figures.to_dict() for figures in self.queries],
            "meets_target": self.meets_target,
        }


def command_queries(result: Path) -> dict[str, Callable[[], int]]:
    """What `albums` and `rank --top 10` do, from opening ``result`` to the last row; each returns its row count."""

    def as_command(query: Callable) -> Callable[[], int]:
        def run() -> int:
            with read_connection(str(result)) as connection:
                model_id = resolve_model(connection, None, str(result))
                return len(query(connection, model_id))

        return run

    return {
        "albums": as_command(lambda connection, model_id: album_stats(connection, model_id)),
        "rank --top 10": as_command(lambda connection, model_id: rank_images(connection, model_id, top=10)),
    }


def time_queries(queries: dict[str, Callable[[], int]], rounds: int) -> list[QueryFigures]:
    """Each query ``rounds`` times after one warm-up, the queries taking turns so noise hits them alike."""
    for run in queries.values():
        run()
    wall: dict[str, list[float]] = {name: [] for name in queries}
    cpu: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(rounds):
        for name, run in queries.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    return [QueryFigures(name, wall[name], cpu[name]) for name in queries]


def bench_read_parquet(rows: int = 1_000_000, albums: int = 400, rounds: int = 5, seed: int = 0) -> ParquetReadResult:
    """Write a synthetic result of ``rows`` scores into a temporary folder and time the read commands on it."""
    with tempfile.TemporaryDirectory(prefix="eatc-bench-parquet-") as folder:
        path = Path(folder) / "scores.parquet"
        started = time.perf_counter()
        write_synthetic_result(path, rows, albums, seed)
        write_s = time.perf_counter() - started
        figures = time_queries(command_queries(path), rounds)
        return ParquetReadResult(rows, albums, rounds, write_s, path.stat().st_size, figures)


def report_lines(result: ParquetReadResult) -> list[str]:
    lines = [
        f"parquet (duckdb): {result.rows:,} scores in {result.albums} albums, one file of "
        f"{result.file_bytes / 1e6:.0f} MB written in {result.write_s:.1f} s; {result.rounds} rounds",
        f"  {'query':<28} {'best':>9} {'median':>9} {'median CPU':>11}",
    ]
    lines.extend(
        f"  {f.query:<28} {f.best_s:>8.3f}s {f.median_s:>8.3f}s {f.median_cpu_s:>10.3f}s" for f in result.queries
    )
    verdict = "met" if result.meets_target else "NOT met"
    lines.append(f"  target: albums and rank under {TARGET_S:g} s (median): {verdict}")
    return lines
