"""What a scoring run is and what it did: the run record every sink stores and the CLI prints."""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

RUN_STATUSES = ("running", "completed", "failed", "interrupted")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_run_id() -> str:
    """Sortable by start time, unique across hosts: ``20261126T141859Z-3fa9c2d1``."""
    return utc_now().strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


@dataclass
class RunInfo:
    run_id: str
    model_id: str
    model_name: str
    model_sha256: str
    sources: list[str]
    engine: str = "local"
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)  # with host: tells a crashed run from a live one
    started_at: datetime = field(default_factory=utc_now)
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    failed_by_kind: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    ended_at: datetime | None = None
    outputs: list[str] = field(default_factory=list)

    def count(self, records) -> None:
        """Add written records (successes, and failures by kind) to the counts."""
        for record in records:
            if record.ok:
                self.ok += 1
            else:
                self.failed += 1
                self.failed_by_kind[record.error_kind] += 1

    @property
    def scored(self) -> int:
        """Images that went through the model or failed trying (skipped ones excluded)."""
        return self.ok + self.failed

    @property
    def images_per_s(self) -> float:
        return self.scored / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["failed_by_kind"] = dict(self.failed_by_kind)
        data["images_per_s"] = round(self.images_per_s, 3)
        return data


def run_record(run: RunInfo, status: str, summary: RunSummary | None = None) -> dict:
    """A run as one flat, JSON-ready dict (times as ISO 8601 text)."""
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {', '.join(RUN_STATUSES)}")
    record = {
        "run_id": run.run_id,
        "status": status,
        "model_id": run.model_id,
        "engine": run.engine,
        "host": run.host,
        "pid": run.pid,
        "sources": list(run.sources),
        "options": run.options,
        "started_at": run.started_at.isoformat(),
        "ended_at": None,
        "ok": 0,
        "failed": 0,
        "skipped": 0,
        "failed_by_kind": {},
        "images_per_s": None,
        "outputs": [],
    }
    if summary is not None:
        record.update(
            ended_at=(summary.ended_at or utc_now()).isoformat(),
            ok=summary.ok,
            failed=summary.failed,
            skipped=summary.skipped,
            failed_by_kind=dict(summary.failed_by_kind),
            images_per_s=round(summary.images_per_s, 3),
            outputs=list(summary.outputs),
        )
    return record
