"""A scoring run from start to end: the bookkeeping every engine shares.

Registers the model, records the run as running in every sink, lets the
engine work, and records how it ended (completed, interrupted, failed) with
its counts, whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Protocol

from eat_curate.io.sources import SourceItem
from eat_curate.model.card import ModelCard
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
    summary: RunSummary | None = None,
) -> RunSummary:
    """Run ``engine`` over ``items`` into ``sinks`` and record the run; sinks are closed at the end.

    ``summary``: counted into as batches are saved (a new one by default), so
    a caller that passes it still has the counts when the run fails.
    """
    progress = progress or Progress()
    summary = summary if summary is not None else RunSummary()
    summary.outputs = list(outputs)
    status = "failed"
    failure: BaseException | None = None
    try:
        for sink in sinks:
            sink.register_model(card.to_dict())
            sink.begin_run(run)
        engine.run(items, sinks, run, progress, summary)
        status = "completed"
        return summary
    except BaseException as error:
        failure = error
        if isinstance(error, KeyboardInterrupt):
            status = "interrupted"
        raise
    finally:
        progress.close()
        summary.ended_at = utc_now()
        steps = [partial(sink.end_run, run, summary, status) for sink in sinks] + [sink.close for sink in sinks]
        finish_all(steps, failure)


def finish_all(steps: Sequence[Callable[[], None]], failure: BaseException | None) -> None:
    """Run every step, whatever the others do; then raise the first error, unless the run already failed.

    When the run is failing, the steps usually fail for the same reason (the
    database is gone, the disk is still full): the run's own error is the one
    to report, and the others ride along as its notes (seen with --debug).
    """
    first: Exception | None = None
    for step in steps:
        try:
            step()
        except Exception as error:
            if failure is not None:
                failure.add_note(f"then, while recording the run's end: {type(error).__name__}: {error}")
            first = first or error
    if first is not None and failure is None:
        raise first
