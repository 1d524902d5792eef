"""ParquetSink: ScoreRecords to one Parquet file (``--out scores.parquet``) or a dataset folder (``--out dir/``).

How a run is kept safe (see ``parquet_target`` for where the files live):

1. ``write`` appends its records to a journal (``journal.py``): on disk when
   it returns; a kill -9 loses at most the batch being written.
2. Every ``rows_per_part`` rows the journal becomes a Parquet part (atomic
   rename), so the working folder stays compact.
3. ``end_run`` (or ``close`` without it) merges the output and the parts:
   one row per (path, model), the newest winning; a file is rewritten row
   group by row group and replaced atomically; a dataset gets the parts
   and loses the rows they supersede. The run joins the output's history.
4. A sink opening an output whose working folder holds a run cut short
   first finishes that merge (the run is recorded as interrupted, with the
   counts of the rows it saved), so running the same command again resumes
   without loss or duplicates.

While the run works, the working folder's run file holds its counts and
heartbeat, rewritten at most every ``RUN_FILE_EVERY_S`` seconds. A full or
read-only disk ends the run in one line (``sinks.faults``); what the journal
holds stays, and the next run merges it.

A lock on the working folder keeps two processes from writing one output.
The engine calls ``register_model(card)`` before ``begin_run``; the card is
kept in the output's history beside the runs.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from eat_curate.incremental import InputVersion
from eat_curate.records import ScoreRecord, records_to_table
from eat_curate.runs import RunInfo, RunSummary, new_run_id, run_record
from eat_curate.sinks.durable import fsync_folder, write_json
from eat_curate.sinks.faults import storage_faults
from eat_curate.sinks.file_lock import FolderLock
from eat_curate.sinks.parquet.journal import Journal, journal_problem, journal_to_part, part_counts
from eat_curate.sinks.parquet.history import MODELS_FILE, RUN_FILE, committed_history, pending_models, pending_run
from eat_curate.sinks.parquet.index import ScoredIndex
from eat_curate.sinks.parquet.merge import merge_into_dataset, merge_into_file
from eat_curate.sinks.parquet.target import check_target, parquet_target, schema_problem

ROWS_PER_PART = 50_000
ROW_GROUP_ROWS = 65_536
# The run file costs two fsyncs; batches land many times a second, and a few seconds of staleness
# is nothing next to the stale-heartbeat limit (runs.STALE_AFTER_S).
RUN_FILE_EVERY_S = 3.0
_SEQUENCE = re.compile(r"^(\d+)\.(arrows|parquet)$")
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DAMAGED_SUFFIX = ".damaged"


def unmerged_files(work: Path, suffix: str) -> list[Path]:
    """The working folder's journals (``arrows``) or parts (``parquet``), oldest first: rows not merged yet."""
    return sorted(path for path in work.glob(f"*.{suffix}") if _SEQUENCE.match(path.name))


class ParquetSink:
    """Writes ScoreRecords to ``out``; see the module doc for the guarantees."""

    def __init__(self, out: str | Path, rows_per_part: int = ROWS_PER_PART, row_group_rows: int = ROW_GROUP_ROWS):
        self.target = parquet_target(out)
        check_target(self.target)
        self.rows_per_part = rows_per_part
        self.row_group_rows = row_group_rows
        self._lock = FolderLock(self.target.work, str(self.target.path))
        self._journal: Journal | None = None
        self._sequence = 0
        self._card: dict | None = None
        self._indexes: dict[str, ScoredIndex] = {}
        self._run: RunInfo | None = None  # begun, not ended
        self._run_file_at = 0.0  # monotonic time the run file was last written
        self._where = f"--out {self.target.path}"

    def __repr__(self) -> str:
        return f"ParquetSink({str(self.target.path) + ('/' if self.target.dataset else '')!r})"

    # --- the working folder -------------------------------------------------------------------------

    def _open(self) -> Path:
        """Lock the working folder, finishing a run cut short there; returns the folder."""
        if not self._lock.held:
            self._lock.acquire()
            if self._pending():
                self._commit()
        return self.target.work

    def _files(self, suffix: str) -> list[Path]:
        return unmerged_files(self.target.work, suffix)

    def _pending(self) -> bool:
        work = self.target.work
        return bool(self._files("arrows") or self._files("parquet") or (work / RUN_FILE).exists())

    def _next_path(self, suffix: str) -> Path:
        self._sequence += 1
        return self.target.work / f"{self._sequence:08d}.{suffix}"

    def _seal_journal(self) -> None:
        """Turn the open journal into a Parquet part."""
        if self._journal is not None:
            self._journal.close()
            journal_to_part(self._journal.path, self._journal.path.with_suffix(".parquet"), self.row_group_rows)
            self._journal = None

    # --- the sink protocol ----------------------------------------------------------------------------

    def register_model(self, card: dict) -> None:
        """The card of the model about to write; kept in the output's history."""
        self._card = dict(card)

    def begin_run(self, run: RunInfo) -> None:
        with storage_faults(self._where):
            work = self._open()
            write_json(work / RUN_FILE, run_record(run, "running"))
            if self._card is not None:
                write_json(work / MODELS_FILE, {run.model_id: self._card})
        self._run, self._run_file_at = run, time.monotonic()

    def already_scored(self, inputs: Sequence[InputVersion], model_id: str) -> set[str]:
        """Keys of ``inputs`` with a current success of ``model_id`` in the output (rule: ``eat_curate.incremental``).

        The index covers the output as it was when this sink opened it; the
        items of one run are distinct, so rows written since need no lookup.
        """
        with storage_faults(self._where):
            self._open()
            if model_id not in self._indexes:
                self._indexes[model_id] = ScoredIndex.build(self.target.committed_files(), model_id)
        return self._indexes[model_id].done(inputs)

    def write(self, records: Sequence[ScoreRecord], tally: RunSummary | None = None) -> None:
        """Append ``records``; on disk when this returns.

        ``tally``: the run's counts once these records are saved, kept in
        the run file (with a heartbeat) at most every ``RUN_FILE_EVERY_S``.
        """
        if not records:
            return
        with storage_faults(self._where):
            self._open()
            if self._journal is None:
                existing = [int(_SEQUENCE.match(path.name).group(1)) for path in self._files("parquet")]
                self._sequence = max([self._sequence, *existing])
                self._journal = Journal(self._next_path("arrows"))
            self._journal.append(records_to_table(records))
            if self._journal.rows >= self.rows_per_part:
                self._seal_journal()
            if tally is not None:
                self._beat(tally)

    def _beat(self, tally: RunSummary) -> None:
        """Rewrite the run file with the run's counts and a heartbeat, if it is due."""
        if self._run is not None and time.monotonic() - self._run_file_at >= RUN_FILE_EVERY_S:
            write_json(self.target.work / RUN_FILE, run_record(self._run, "running", tally))
            self._run_file_at = time.monotonic()

    def end_run(self, run: RunInfo, summary: RunSummary, status: str) -> None:
        """Record the run's outcome and merge its rows into the output."""
        with storage_faults(self._where):
            work = self._open()
            write_json(work / RUN_FILE, run_record(run, status, summary))
            self._run = None
            self._commit()

    def close(self) -> None:
        """Merge whatever a run left unmerged (recorded as interrupted), and unlock."""
        if not self._lock.held:
            return
        try:
            with storage_faults(self._where):
                if self._pending():
                    self._commit()
        finally:
            if self._journal is not None:
                self._journal.close()
            self._lock.release(remove_folder=not self._pending())

    # --- merging ----------------------------------------------------------------------------------------

    def _set_aside_damaged(self) -> None:
        """Rename the journals and parts no merge can read to ``*.damaged``, saying so.

        Only a damaged disk, another tool or another eat-curate version leaves
        them: their rows are not in the output, so their images count as not
        scored and a run over them scores them again.
        """
        checks = [(path, journal_problem) for path in self._files("arrows")]
        checks += [(path, schema_problem) for path in self._files("parquet")]
        for path, problem_of in checks:
            problem = problem_of(path)
            if problem:
                aside = path.with_name(path.name + DAMAGED_SUFFIX)
                for number in itertools.count(2):  # one set aside by an earlier run stays as it is
                    if not aside.exists():
                        break
                    aside = path.with_name(f"{path.name}.{number}{DAMAGED_SUFFIX}")
                os.rename(path, aside)
                fsync_folder(path.parent)
                warnings.warn(
                    f"{path} {problem}: set aside as {aside.name}, not merged into {self._where}; "
                    "the images it held count as not scored",
                    stacklevel=2,
                )

    def _pending_run(self) -> dict | None:
        """The run file's record; an unreadable one (garbage, another version's) is dropped, saying so."""
        path = self.target.work / RUN_FILE
        record = pending_run(self.target.work)
        if record is None and path.exists():
            warnings.warn(
                f"{path}, the record of a run cut short, cannot be read; its rows are merged, the run is not listed",
                stacklevel=2,
            )
        return record

    def _commit(self) -> None:
        """Fold the working folder into the output; every step is atomic and safe to redo after a crash."""
        work = self.target.work
        self._seal_journal()
        leftovers = [*work.glob("*.tmp"), *(self.target.path.glob(".part-*.tmp") if self.target.dataset else [])]
        for leftover in leftovers:
            leftover.unlink()  # half-written by a crash; the data is still in its source
        self._set_aside_damaged()
        for journal in self._files("arrows"):
            part = journal.with_suffix(".parquet")
            if part.exists():  # sealed just before a crash: the part has every row
                journal.unlink()
            else:
                journal_to_part(journal, part, self.row_group_rows)
        parts = self._files("parquet")

        history = committed_history(self.target)
        run = self._pending_run()
        if run is not None:
            if run["status"] == "running":  # nobody will end it: it was cut short
                # Its run file lags its journal by up to RUN_FILE_EVERY_S: the parts hold the truth.
                run.update(status="interrupted", **part_counts(parts))
            history.add_run(run)
        history.models.update(pending_models(work))

        if self.target.dataset:
            # A run id names the parts; one edited into something no part name may hold is replaced.
            tag = run["run_id"] if run and _TAG.match(run["run_id"]) else new_run_id()
            # Named by sequence, so a commit redone after a crash never reuses a name.
            destinations = [self.target.path / f"part-{tag}-{part.stem}.parquet" for part in parts]
            merge_into_dataset(self.target.dataset_parts(), parts, destinations, self.row_group_rows)
            write_json(self.target.history_file, history.to_json())
        else:
            merge_into_file(self.target.path, parts, history.to_metadata(), work, self.row_group_rows)
            for part in parts:
                part.unlink()
        for name in (RUN_FILE, MODELS_FILE):
            (work / name).unlink(missing_ok=True)
        fsync_folder(work)
        self._sequence = 0
        self._indexes.clear()
