"""The sink protocol: what every engine writes through (``ParquetSink``, ``SqlSink``).

An engine drives sinks like this (the in-process and the Ray engine alike)::

    sinks = open_sinks(out, db, retry)     # sinks.outputs: checks every output first; creates nothing
    for sink in sinks:
        sink.register_model(card_dict)     # optional; the card lands in models / history
        sink.begin_run(run)
    ...  for each chunk of ~1000 SourceItems:
        inputs = [item.version() for item in chunk]
        done = set.intersection(*(s.already_scored(inputs, model_id) for s in sinks))
        ...  score the others, then for each batch of records:
        tally = summary.with_records(records)      # the run's counts once the batch is saved
        for sink in sinks: sink.write(records, tally)   # durable when it returns
        summary.count(records)
    for sink in sinks:
        sink.end_run(run, summary, status)  # status in runs.RUN_STATUSES
        sink.close()                        # always (try/finally): finishes an unended run as interrupted

A sink fails in one line where its storage does (``sinks.faults``): a full or
read-only disk, a database unreachable past its retry limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from eat_curate.incremental import InputVersion
from eat_curate.records import ScoreRecord
from eat_curate.runs import RunInfo, RunSummary


@runtime_checkable
class Sink(Protocol):
    def register_model(self, card: dict) -> None:
        """The card (``ModelCard.to_dict()``) of the model of the coming run; call before ``begin_run``."""

    def begin_run(self, run: RunInfo) -> None:
        """Called once at the start: records the run as running."""

    def already_scored(self, inputs: Sequence[InputVersion], model_id: str) -> set[str]:
        """Keys of ``inputs`` needing no work: a success of ``model_id`` for the unchanged input exists.

        Unchanged: same key and, for inputs with a content hash, the same
        content hash, else the same (size, mtime). Error rows do not count.
        Rule and details: ``eat_curate.incremental``.
        """

    def write(self, records: Sequence[ScoreRecord], tally: RunSummary | None = None) -> None:
        """Store ``records``; durable when it returns.

        ``tally``, when given: the run's counts once ``records`` are saved. The
        sink keeps them, with a heartbeat, in the run's record (with the
        records where it can, at most every few seconds where it cannot), so
        the record is true while the run works and after it is killed.
        """

    def end_run(self, run: RunInfo, summary: RunSummary, status: str) -> None:
        """Record the run's outcome and finalise the output."""

    def close(self) -> None:
        """Release resources; safe to call more than once."""
