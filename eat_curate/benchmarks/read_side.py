"""`eat-curate bench read`: `albums` and `rank` over a million scores, with and without the rank index.

For each database (a temporary SQLite file, and a temporary database on a
PostgreSQL server) it creates the schema, loads synthetic scores (several
hundred albums of Zipf-like sizes, random 10-bin distributions), runs
ANALYZE, then times the read side's own queries (the functions the commands
call) twice: first without ``ix_scores_model_album_rank`` (the baseline: the
schema's other indexes only), then with it. Timings are medians of a few
rounds. Everything it creates is dropped at the end.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from tqdm import tqdm

from eat_curate.benchmarks.scratch_databases import DEFAULT_PG_SERVER, temporary_database
from eat_curate.library import album_stats, rank_images, resolve_model
from eat_curate.library.connection import open_read_engine
from eat_curate.sinks import database_url, describe
from eat_curate.sinks.sql import schema
from eat_curate.sinks.shots import shot_key
from eat_curate.sinks.sql.database import create_engine, create_or_upgrade

RANK_INDEX = "ix_scores_model_album_rank"
TARGET_S = 2.0
MODEL_ID = "bench@000000000000"
_CHUNK = 100_000


@dataclass
class QueryTiming:
    query: str
    indexed_s: float
    baseline_s: float

    @property
    def ratio(self) -> float:
        return self.baseline_s / self.indexed_s if self.indexed_s > 0 else float("inf")

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": round(self.ratio, 2)}


@dataclass
class BackendResult:
    backend: str
    where: str
    rows: int
    albums: int
    load_s: float
    timings: list[QueryTiming] = field(default_factory=list)

    @property
    def meets_target(self) -> bool:
        return all(t.indexed_s < TARGET_S for t in self.timings if t.query.startswith(("albums", "rank")))

    def to_dict(self) -> dict:
        return {
            "backend": self.backend,
            "where": self.where,
            "rows": self.rows,
            "albums": self.albums,
            "load_s": round(self.load_s, 2),
            "timings": [t.to_dict() for t in self.timings],
            "meets_target": self.meets_target,
        }


@dataclass
class ReadBenchResult:
    rows: int
    albums: int
    rounds: int
    backends: list[BackendResult]
    skipped: list[str]  # targets that could not be used, with the reason

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "albums": self.albums,
            "rounds": self.rounds,
            "target_s": TARGET_S,
            "backends": [b.to_dict() for b in self.backends],
            "skipped": self.skipped,
        }


# --- synthetic scores ----------------------------------------------------------------------------


def album_sizes(rows: int, albums: int) -> np.ndarray:
    """Zipf-like sizes: album-0000 is the biggest (about 11% of 1M rows in 400 albums)."""
    weights = 1.0 / np.arange(1, albums + 1) ** 0.9
    sizes = np.maximum(1, np.floor(weights / weights.sum() * rows)).astype(int)
    sizes[0] += rows - sizes.sum()
    return sizes


def synthetic_chunks(rows: int, albums: int, seed: int = 0) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """(image rows, score rows) in chunks, album by album as a folder scan would write them."""
    rng = np.random.default_rng(seed)
    album_of = np.repeat(np.arange(albums), album_sizes(rows, albums))
    ids = rng.permutation(rows)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    bins = np.arange(1, 11)
    for start in range(0, rows, _CHUNK):
        stop = min(start + _CHUNK, rows)
        p = rng.dirichlet(np.full(10, 0.8), size=stop - start).astype(np.float32)
        mean = (p * bins).sum(axis=1, dtype=np.float64)
        std = np.sqrt((p * (bins - mean[:, None]) ** 2).sum(axis=1, dtype=np.float64))
        image_ids = [f"{value:016x}" for value in ids[start:stop].tolist()]
        album_names = [f"album-{value:04d}" for value in album_of[start:stop].tolist()]
        phashes = rng.integers(-(2**63), 2**63 - 1, size=stop - start).tolist()
        paths = [f"/photos/{album}/{image_id}.jpg" for image_id, album in zip(image_ids, album_names)]
        images = [
            (image_id, path, shot_key(path), album, phash, now)
            for image_id, path, album, phash in zip(image_ids, paths, album_names, phashes)
        ]
        scores = [
            (image_id, MODEL_ID, album, "bench-run", *probabilities, m, s, now)
            for image_id, album, probabilities, m, s in zip(
                image_ids, album_names, p.tolist(), mean.tolist(), std.tolist()
            )
        ]
        yield images, scores


_IMAGE_COLUMNS = ("image_id", "path", "shot", "album", "phash", "updated_at")
_SCORE_COLUMNS = (
    "image_id", "model_id", "album", "run_id", *(f"p{i}" for i in range(1, 11)), "mean", "std", "scored_at",
)


def _load_sqlite(connection: sa.Connection, images: list[tuple], scores: list[tuple]) -> None:
    def insert(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        marks = ", ".join("?" * len(columns))
        values = [tuple(v.isoformat(" ") if isinstance(v, datetime) else v for v in row) for row in rows]
        connection.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)

    insert("images", _IMAGE_COLUMNS, images)
    insert("scores", _SCORE_COLUMNS, scores)


def _load_postgresql(connection: sa.Connection, images: list[tuple], scores: list[tuple]) -> None:
    cursor = connection.connection.driver_connection.cursor()
    with cursor:
        for table, columns, rows in (("images", _IMAGE_COLUMNS, images), ("scores", _SCORE_COLUMNS, scores)):
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def load_synthetic(engine: sa.Engine, rows: int, albums: int, seed: int, progress: bool) -> float:
    """Create the schema without the rank index, load the scores, ANALYZE; returns the seconds."""
    started = time.perf_counter()
    create_or_upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP INDEX {RANK_INDEX}")
    load = _load_sqlite if engine.dialect.name == "sqlite" else _load_postgresql
    chunks = synthetic_chunks(rows, albums, seed)
    with engine.begin() as connection:
        total = -(-rows // _CHUNK)
        for images, scores in tqdm(chunks, total=total, desc="loading", unit="chunk", disable=not progress):
            load(connection, images, scores)
    _analyze(engine)
    return time.perf_counter() - started


def _analyze(engine: sa.Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")


def create_rank_index(engine: sa.Engine) -> None:
    index = next(index for index in schema.scores.indexes if index.name == RANK_INDEX)
    with engine.begin() as connection:
        index.create(connection)
    _analyze(engine)


# --- timing --------------------------------------------------------------------------------------


def _median_seconds(run: Callable[[], object], rounds: int) -> float:
    run()  # warm the caches, as a second command on the same database would find them
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _queries(url: sa.URL, biggest_album: str, biggest_size: int) -> dict[str, Callable[[], object]]:
    where = describe(url)

    def with_connection(function: Callable[[sa.Connection, str], object]) -> Callable[[], object]:
        def run() -> object:
            engine = open_read_engine(url)
            try:
                with engine.connect() as connection:
                    return function(connection, MODEL_ID)
            finally:
                engine.dispose()

        return run

    return {
        "choose model": with_connection(lambda c, m: resolve_model(c, None, where)),
        "albums": with_connection(lambda c, m: album_stats(c, m)),
        "rank --top 10": with_connection(lambda c, m: rank_images(c, m, top=10)),
        f"rank --album ({biggest_size:,} rows)": with_connection(
            lambda c, m: rank_images(c, m, albums=[biggest_album])
        ),
    }


def bench_backend(url: sa.URL, rows: int, albums: int, rounds: int, seed: int, progress: bool) -> BackendResult:
    engine = create_engine(url)
    try:
        load_s = load_synthetic(engine, rows, albums, seed, progress)
    finally:
        engine.dispose()
    queries = _queries(url, "album-0000", int(album_sizes(rows, albums)[0]))
    baseline = {name: _median_seconds(run, rounds) for name, run in queries.items()}
    engine = create_engine(url)
    try:
        create_rank_index(engine)
    finally:
        engine.dispose()
    indexed = {name: _median_seconds(run, rounds) for name, run in queries.items()}
    return BackendResult(
        backend=url.get_backend_name(),
        where=describe(url),
        rows=rows,
        albums=albums,
        load_s=load_s,
        timings=[QueryTiming(name, indexed[name], baseline[name]) for name in queries],
    )


def bench_read(
    targets: list[str] | None = None,
    rows: int = 1_000_000,
    albums: int = 400,
    rounds: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> ReadBenchResult:
    """Run the bench on each target (default: a temporary SQLite file and the local PostgreSQL)."""
    with tempfile.TemporaryDirectory(prefix="eatc-bench-read-") as folder:
        targets = targets or [str(Path(folder) / "bench.db"), DEFAULT_PG_SERVER]
        results, skipped = [], []
        for target in targets:
            try:
                with temporary_database(target) as url:
                    results.append(bench_backend(url, rows, albums, rounds, seed, progress))
            except (sa.exc.OperationalError, FileExistsError) as error:
                reason = str(getattr(error, "orig", None) or error).strip().splitlines()[-1]
                skipped.append(f"{describe(database_url(target))}: {reason}")
    return ReadBenchResult(rows=rows, albums=albums, rounds=rounds, backends=results, skipped=skipped)


def report_lines(result: ReadBenchResult) -> list[str]:
    lines = [f"read side: {result.rows:,} scores in {result.albums} albums, median of {result.rounds} rounds"]
    for backend in result.backends:
        lines.append(f"\n{backend.backend} ({backend.where}): loaded and analysed in {backend.load_s:.1f} s")
        lines.append(f"  {'query':<28} {'indexed':>9} {'no rank index':>14} {'ratio':>7}")
        lines.extend(
            f"  {timing.query:<28} {timing.indexed_s:>8.3f}s {timing.baseline_s:>13.3f}s {timing.ratio:>6.1f}x"
            for timing in backend.timings
        )
        verdict = "met" if backend.meets_target else "NOT met"
        lines.append(f"  target: albums and rank under {TARGET_S:g} s: {verdict}")
    lines.extend(f"\nskipped {reason}" for reason in result.skipped)
    return lines
