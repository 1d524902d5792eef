"""The run history of Parquet output, so a Parquet-only user has one too.

A single file keeps it in its own key-value metadata (``eat_curate.runs``: a
JSON list of runs; ``eat_curate.models``: model id -> card); a dataset folder
keeps the same in ``_eat_curate.json``. A run not merged yet (in progress, or
cut short by a crash) is in the working folder's ``run.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from eat_curate.sinks.durable import read_json
from eat_curate.sinks.parquet.target import ParquetTarget

RUNS_KEY = b"eat_curate.runs"
MODELS_KEY = b"eat_curate.models"
RUN_FILE = "run.json"
MODELS_FILE = "models.json"


@dataclass
class History:
    runs: list[dict] = field(default_factory=list)  # oldest first
    models: dict[str, dict] = field(default_factory=dict)

    def add_run(self, record: dict) -> None:
        """Add or replace (by run id) a run record, keeping start order."""
        self.runs = [run for run in self.runs if run.get("run_id") != record.get("run_id")] + [record]
        self.runs.sort(key=lambda run: str(run.get("started_at") or ""))

    def to_metadata(self) -> dict[bytes, bytes]:
        return {
            RUNS_KEY: json.dumps(self.runs, default=str, ensure_ascii=False).encode(),
            MODELS_KEY: json.dumps(self.models, default=str, ensure_ascii=False).encode(),
        }

    def to_json(self) -> dict:
        return {"runs": self.runs, "models": self.models}

    @classmethod
    def from_metadata(cls, metadata: dict[bytes, bytes] | None) -> History:
        metadata = metadata or {}
        return cls(
            runs=json.loads(metadata.get(RUNS_KEY, b"[]")),
            models=json.loads(metadata.get(MODELS_KEY, b"{}")),
        )


def committed_history(target: ParquetTarget) -> History:
    """The history of merged runs."""
    if target.dataset:
        data = read_json(target.history_file, default={})
        return History(runs=data.get("runs", []), models=data.get("models", {}))
    if not target.path.is_file():
        return History()
    return History.from_metadata(pq.read_schema(target.path).metadata)


def read_history(target: ParquetTarget) -> History:
    """Every run: the merged ones plus the one in the working folder, if any."""
    history = committed_history(target)
    pending = read_json(target.work / RUN_FILE)
    if pending:
        history.add_run(pending)
    history.models.update(read_json(target.work / MODELS_FILE, default={}))
    return history
