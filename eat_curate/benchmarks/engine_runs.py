"""Scoring runs that write nowhere, so engine benchmarks time scoring, not writing."""

from __future__ import annotations

from collections.abc import Sequence

from eat_curate.incremental import InputVersion
from eat_curate.io.sources import SourceItem
from eat_curate.records import ScoreRecord
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.scoring.progress import Progress
from eat_curate.scoring.execute import Engine


class CountingSink:
    """Accepts records and keeps only the means (per path), to compare engines' scores."""

    def __init__(self) -> None:
        self.means: dict[str, float | None] = {}

    def register_model(self, card: dict) -> None:
        pass

    def begin_run(self, run: RunInfo) -> None:
        pass

    def already_scored(self, inputs: Sequence[InputVersion], model_id: str) -> set[str]:
        return set()

    def write(self, records: Sequence[ScoreRecord], tally: RunSummary | None = None) -> None:
        self.means.update((record.path, record.mean) for record in records)

    def end_run(self, run: RunInfo, summary: RunSummary, status: str) -> None:
        pass

    def close(self) -> None:
        pass


def counted_run(
    engine: Engine, items: Sequence[SourceItem], run: RunInfo, sink: CountingSink | None = None
) -> RunSummary:
    """``engine`` over ``items`` into ``sink`` (a new counting sink by default); the summary holds img/s."""
    summary = RunSummary()
    engine.run(items, [sink or CountingSink()], run, Progress(), summary)
    return summary
