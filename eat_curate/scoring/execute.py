"""A scoring run from start to end: the bookkeeping every engine shares.

Registers the model, records the run as running in every sink, lets the
engine work, and records how it ended (completed, interrupted, failed) with
its counts, whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from eat_curate.io.sources import SourceItem
from eat_curate.model.checkpoint import ModelCard
from eat_curate.runs import RunInfo, RunSummary, utc_now
from eat_curate.scoring.progress import Progress


class Engine(Protocol):
    name: str

    def run(
        self, items: Iterable[SourceItem], sinks: Sequence, run: RunInfo, progress: Progress, summary: RunSummary
    ) -> RunSummary: ...


def execute_run(
    engine: Engine,
    items: Iterable[SourceItem],
    sinks: Sequence,
    run: RunInfo,
    card: ModelCard,
    progress: Progress | None = None,
    outputs: Sequence[str] = (),
) -> RunSummary:
    """Run ``engine`` over ``items`` into ``sinks`` and record the run; sinks are closed at the end."""
    progress = progress or Progress()
    summary = RunSummary(outputs=list(outputs))
    status = "failed"
    try:
        for sink in sinks:
            sink.register_model(card.to_dict())
            sink.begin_run(run)
        engine.run(items, sinks, run, progress, summary)
        status = "completed"
        return summary
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        progress.close()
        summary.ended_at = utc_now()
        try:
            for sink in sinks:
                sink.end_run(run, summary, status)
        finally:
            for sink in sinks:
                sink.close()
