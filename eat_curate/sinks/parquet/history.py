"""The run history of Parquet output, so a Parquet-only user has one too.

A single file keeps it in its own key-value metadata (``eat_curate.runs``: a
JSON list of runs; ``eat_curate.models``: model id -> card); a dataset folder
keeps the same in ``_eat_curate.json``. A run not merged yet (in progress, or
cut short by a crash) is in the working folder's ``run.json``.

The history is a record, not the data: whatever another tool (or a damaged
disk, or another eat-curate version) left there that cannot be read as one
is skipped, never fatal, and the next merge writes the history without it.
It is kept to the newest runs that fit in ``MAX_RUNS_BYTES``: a file's footer
holds it (twice, with Arrow's copy of the schema), and pyarrow refuses a
footer holding more than about 75 MB of it (``footer.py`` reads one all the
same). A file an older eat-curate wrote without the cap is read as kept to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from eat_curate.sinks.parquet.footer import read_schema
from eat_curate.sinks.parquet.target import ParquetTarget

RUNS_KEY = b"eat_curate.runs"
MODELS_KEY = b"eat_curate.models"
RUN_FILE = "run.json"
MODELS_FILE = "models.json"
MAX_RUNS_BYTES = 1 << 20  # about 1,300 runs of the usual size
_KEPT_SOURCES = 20  # a run over thousands of sources keeps this many of them (and says how many more)

# What every reader of a run record takes from it (``runs``, the ``runs`` table of views and imports).
_RUN_FIELDS: dict[str, type | tuple[type, ...]] = {
    "run_id": str,
    "model_id": str,
    "status": str,
    "engine": str,
    "host": str,
    "sources": list,
    "options": dict,
    "started_at": str,
    "ended_at": (str, type(None)),
    "ok": int,
    "failed": int,
    "skipped": int,
    "failed_by_kind": dict,
    "images_per_s": (int, float, type(None)),
    "outputs": list,
}


def usable_run(record: Any) -> bool:
    """Whether ``record`` is a run record every reader can take: its fields there, of their types, times ISO 8601."""
    if not isinstance(record, dict):
        return False
    if any(name not in record or not isinstance(record[name], kind) for name, kind in _RUN_FIELDS.items()):
        return False
    try:
        for name in ("started_at", "ended_at", "heartbeat_at"):
            if record.get(name) is not None:
                datetime.fromisoformat(record[name])
    except (TypeError, ValueError):
        return False
    return True


def _runs(value: Any) -> list[dict]:
    return [run for run in value if usable_run(run)] if isinstance(value, list) else []


def _models(value: Any) -> dict[str, dict]:
    if not isinstance(value, dict):
        return {}
    return {model_id: card for model_id, card in value.items() if isinstance(card, dict)}


def _loads(text: bytes | str | None) -> Any:
    """JSON, or None where there is none or it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _stored_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def read_json_record(path: Path) -> Any:
    """The JSON in ``path``; None when it is missing, unreadable or not JSON (a crash or another tool left it)."""
    return _loads(_stored_bytes(path))


def _shrunk(run: dict) -> dict:
    """``run`` with a long source list cut, so that one run alone never outgrows the history.

    A list cut already (the kept sources and "... and N more") stays as it is, whatever merge reads it again.
    """
    sources = run["sources"]
    if len(sources) <= _KEPT_SOURCES + 1:
        return run
    return {**run, "sources": [*sources[:_KEPT_SOURCES], f"... and {len(sources) - _KEPT_SOURCES} more"]}


def _newest_that_fit(newest_first: Iterable[dict]) -> list[dict]:
    """The first runs of ``newest_first`` that fit in ``MAX_RUNS_BYTES`` (long source lists cut), oldest first."""
    kept: list[dict] = []
    size = 2
    for run in newest_first:
        run = _shrunk(run)
        size += len(json.dumps(run, default=str, ensure_ascii=False).encode()) + 2  # and ", "
        if size > MAX_RUNS_BYTES:
            break
        kept.append(run)
    return kept[::-1]


@dataclass
class History:
    runs: list[dict] = field(default_factory=list)  # oldest first
    models: dict[str, dict] = field(default_factory=dict)

    def add_run(self, record: dict) -> None:
        """Add or replace (by run id) a run record, keeping start order."""
        self.runs = [run for run in self.runs if run.get("run_id") != record.get("run_id")] + [record]
        self.runs.sort(key=lambda run: str(run.get("started_at") or ""))

    def kept_runs(self) -> list[dict]:
        """The newest runs whose JSON fits in ``MAX_RUNS_BYTES``, oldest first."""
        return _newest_that_fit(reversed(self.runs))

    def to_metadata(self) -> dict[bytes, bytes]:
        return {
            RUNS_KEY: json.dumps(self.kept_runs(), default=str, ensure_ascii=False).encode(),
            MODELS_KEY: json.dumps(self.models, default=str, ensure_ascii=False).encode(),
        }

    def to_json(self) -> dict:
        return {"runs": self.kept_runs(), "models": self.models}

    @classmethod
    def from_metadata(cls, metadata: dict[bytes, bytes] | None) -> History:
        metadata = metadata or {}
        text = metadata.get(RUNS_KEY) or b""
        return cls(runs=_stored_runs(_loads(text), len(text)), models=_models(_loads(metadata.get(MODELS_KEY))))

    @classmethod
    def from_json(cls, data: Any, size: int = 0) -> History:
        """The history a dataset folder's JSON record ``data`` (``size`` bytes) holds."""
        data = data if isinstance(data, dict) else {}
        return cls(runs=_stored_runs(data.get("runs"), size), models=_models(data.get("models")))


def _stored_runs(runs: Any, size: int) -> list[dict]:
    """The usable runs of a stored history of ``size`` bytes, oldest first.

    Only an older eat-curate wrote more than ``MAX_RUNS_BYTES``, up to 100,000s of runs: of such a history,
    the runs the next merge keeps, as a result of today holds them, rather than check and list them all in
    every reader.
    """
    if size > MAX_RUNS_BYTES and isinstance(runs, list):
        return _newest_that_fit(run for run in reversed(runs) if usable_run(run))
    return _runs(runs)


def committed_history(target: ParquetTarget) -> History:
    """The history of merged runs."""
    if target.dataset:
        text = _stored_bytes(target.history_file) or b""
        return History.from_json(_loads(text), len(text))
    if not target.path.is_file():
        return History()
    return History.from_metadata(read_schema(target.path).metadata)


def pending_run(work: Path) -> dict | None:
    """The record of the run not merged yet in the working folder ``work``; None if none, or none readable."""
    record = read_json_record(work / RUN_FILE)
    return record if usable_run(record) else None


def pending_models(work: Path) -> dict[str, dict]:
    """The model cards of the run not merged yet (those readable)."""
    return _models(read_json_record(work / MODELS_FILE))


def read_history(target: ParquetTarget) -> History:
    """Every run: the merged ones plus the one in the working folder, if any."""
    history = committed_history(target)
    pending = pending_run(target.work)
    if pending is not None:
        history.add_run(pending)
    history.models.update(pending_models(target.work))
    return history
