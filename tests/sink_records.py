"""What the sink tests write and read: ScoreRecords, SourceItems and runs, one run driven as an engine drives it.

Image ``i`` is ``/photos/{i}.jpg`` (id ``img-{i}``, ``1000 + i`` bytes,
content hash ``i`` in hex, mtime ``MTIME``); ``item(i)`` is that image
unchanged, as a source lists it on the next run. ``MTIME`` has a fraction a
float32 loses (1e9 + 0.25 becomes 1e9), so a sink keeping mtime less exactly
than a double fails the incremental checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from eat_curate.io.sources import SourceItem
from eat_curate.records import ScoreRecord
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.sinks.sql.database import database_url
from eat_curate.sinks.contract import Sink

TESTS = Path(__file__).resolve().parent
MODEL = "micro@000000000000"
MTIME = 1.0e9 + 0.25
CARD = {"name": "micro", "preset": "micro", "sha256": "0" * 64, "head_mode": "softmax", "trained": False}


def success(i: int, model: str = MODEL, run: str = "run-1", album: str | None = None, mean: float = 5.5) -> ScoreRecord:
    return ScoreRecord(
        image_id=f"img-{i}",
        path=f"/photos/{i}.jpg",
        album=album or f"album-{i % 3}",
        model_id=model,
        run_id=run,
        content_hash=f"{i:064x}",
        bytes=1000 + i,
        mtime=MTIME,
        width=640,
        height=480,
        format="JPEG",
        probabilities=[0.05] * 5 + [0.15] * 5,
        mean=mean,
        std=1.25,
        extra={"camera": "x100"},
    )


def failure(i: int, model: str = MODEL, run: str = "run-1") -> ScoreRecord:
    return ScoreRecord(
        image_id=f"img-{i}",
        path=f"/photos/{i}.jpg",
        album=f"album-{i % 3}",
        model_id=model,
        run_id=run,
        bytes=1000 + i,
        mtime=MTIME,
        error_kind="truncated",
        error="image file is truncated",
    )


def item(i: int, size: int | None = None, mtime: float = MTIME) -> SourceItem:
    return SourceItem(key=f"/photos/{i}.jpg", image_id=f"img-{i}", album=None, size=size or 1000 + i, mtime=mtime)


def run_info(run_id: str = "run-1") -> RunInfo:
    return RunInfo(
        run_id=run_id,
        model_id=MODEL,
        model_name="micro",
        model_sha256="0" * 64,
        sources=["/photos"],
        options={"batch_size": 16},
    )


def score_run(sink: Sink, batches: Sequence[Sequence[ScoreRecord]], run_id: str = "run-1") -> None:
    """One completed run of ``batches`` into ``sink``, driven as the engines drive it; closes the sink."""
    run = run_info(run_id)
    try:
        sink.register_model(CARD)
        sink.begin_run(run)
        for batch in batches:
            sink.write(batch)
        ok = sum(record.ok for batch in batches for record in batch)
        sink.end_run(run, RunSummary(ok=ok, failed=sum(len(batch) for batch in batches) - ok), "completed")
    finally:
        sink.close()


def query(db: str, sql: str) -> list[dict]:
    """The rows of ``sql`` on ``db`` (a path or URL), as dicts."""
    engine = sa.create_engine(database_url(db))
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(sa.text(sql)).mappings()]
    finally:
        engine.dispose()


def start_python(script: str, *args: str, **popen) -> subprocess.Popen:
    """``python -c script args`` in a child process that can import this module (a writer to kill -9)."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-c", script, *args]
    return subprocess.Popen(command, env={**os.environ, "PYTHONPATH": path}, text=True, **popen)
