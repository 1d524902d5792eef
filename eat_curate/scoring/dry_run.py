"""``score --dry-run``: the inputs a run would score, found the way the run finds them, with nothing written.

The inputs are listed as for a run (sources, ``--exclude``, ``--limit``,
duplicate rows) and looked up in chunks by the run's own
:func:`~eat_curate.scoring.tasks.items_to_score`, against read-only lookups
of the outputs (``eat_curate.sinks.preview``). No model is loaded (nor
torch imported) and no image is decoded: what would fail to decode is listed
as to be scored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from eat_curate.io.sources import SourceItem
from eat_curate.runs import RunSummary
from eat_curate.scoring.progress import Progress
from eat_curate.scoring.tasks import LOOKUP_CHUNK, items_to_score


@dataclass
class DryRun:
    model_id: str
    to_score: int = 0
    already_scored: int = 0

    def to_dict(self) -> dict:
        return {"dry_run": True, "model_id": self.model_id, "to_score": self.to_score,
                "already_scored": self.already_scored}


def dry_run(
    items: Iterable[SourceItem],
    lookups: Sequence,
    model_id: str,
    rescore: bool,
    on_item: Callable[[SourceItem], None],
    lookup_chunk: int = LOOKUP_CHUNK,
) -> DryRun:
    """Count what a run of ``model_id`` would score and skip; ``on_item`` hears each input to score, in order."""
    skipped = RunSummary()
    result = DryRun(model_id)
    for item in items_to_score(items, lookups, model_id, rescore, lookup_chunk, skipped, Progress()):
        result.to_score += 1
        on_item(item)
    result.already_scored = skipped.skipped
    return result
