"""Scores written straight into an SQLite database, for read-side tests that need scores they choose.

Real scoring cannot be told what to score; these tests need exact ties, an
album of 7 or a thumbnail that outscores its original. ``write_scores`` runs
the real SQL sink (one completed run, as an engine writes it), so the
database is the one `score --db` would leave.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from eat_curate.records import ScoreRecord
from eat_curate.sinks import SqlSink
from sink_records import MODEL, score_run


def scored(
    image_id: str,
    mean: float,
    album: str | None = "album",
    path: str | Path | None = None,
    std: float = 1.25,
    **facts,
) -> ScoreRecord:
    """A successful score of ``image_id``; ``facts`` sets image columns (width, bytes, phash, ...)."""
    return ScoreRecord(
        image_id=image_id,
        path=str(path) if path is not None else f"/photos/{image_id}.jpg",
        album=album,
        model_id=MODEL,
        run_id="run-1",
        probabilities=[0.1] * 10,
        mean=mean,
        std=std,
        **facts,
    )


def write_scores(db: Path, records: Iterable[ScoreRecord]) -> str:
    """``records`` written into a new SQLite database at ``db``; its path as `--db` takes it."""
    score_run(SqlSink(str(db)), [list(records)])
    return str(db)
