"""What a scoring run is and what it did: recorded by every sink, printed by the CLI."""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime

from eat_curate.records import utc_now

RUN_STATUSES = ("running", "completed", "failed", "interrupted")


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
