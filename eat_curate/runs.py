"""What a scoring run is and what it did: the run record every sink stores and the CLI prints.

While a run works, its record tells the truth: its counts and its heartbeat
(``heartbeat_at``) are saved as batches land (with every SQL batch, in the
same transaction; in the Parquet working folder's run file at most every few
seconds). A record left "running" by a process that is gone is shown as
interrupted (:func:`liveness`): on the same host when its process no longer
exists, on any host when its heartbeat is stale.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone

RUN_STATUSES = ("running", "completed", "failed", "interrupted")

# A live run beats with every batch it saves. One silent this long (plus the time it may spend
# waiting for its database, --db-retry-for) has stopped: a batch never takes minutes, and a run
# waiting for its database beats again as soon as the database is back.
STALE_AFTER_S = 600.0


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

    def count(self, records: Iterable) -> None:
        """Add written records (successes, and failures by kind) to the counts."""
        for record in records:
            if record.ok:
                self.ok += 1
            else:
                self.failed += 1
                self.failed_by_kind[record.error_kind] += 1

    def with_records(self, records: Iterable) -> RunSummary:
        """A copy with ``records`` counted: the run as it stands once they are saved."""
        after = replace(self, failed_by_kind=Counter(self.failed_by_kind), outputs=list(self.outputs))
        after.count(records)
        return after

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


def run_record(
    run: RunInfo, status: str, summary: RunSummary | None = None, heartbeat_at: datetime | None = None
) -> dict:
    """A run as one flat, JSON-ready dict (times as ISO 8601 text).

    A running record carries the counts so far and no end; ``heartbeat_at``
    (default: now) is when the run was last known alive.
    """
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
        "heartbeat_at": (heartbeat_at or utc_now()).isoformat(),
        "ok": 0,
        "failed": 0,
        "skipped": 0,
        "failed_by_kind": {},
        "images_per_s": None,
        "outputs": [],
    }
    if summary is not None:
        record.update(
            ok=summary.ok,
            failed=summary.failed,
            skipped=summary.skipped,
            failed_by_kind=dict(summary.failed_by_kind),
            outputs=list(summary.outputs),
        )
        if status != "running":
            record.update(
                ended_at=(summary.ended_at or utc_now()).isoformat(), images_per_s=round(summary.images_per_s, 3)
            )
    return record


# --- is a "running" record still running? ---------------------------------------------------------


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _as_utc(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment  # naive: SQLite's UTC


def stale_after(record: dict) -> timedelta:
    """How long a run may stay silent before it is taken for gone: longer when it may wait for its database."""
    options = record.get("options") or {}
    waits = options.get("db_retry_for") if isinstance(options, dict) else None
    return timedelta(seconds=STALE_AFTER_S + float(waits or 0))


def liveness(record: dict, now: datetime | None = None, host: str | None = None) -> str:
    """The status to show for a stored run record: "interrupted" for a "running" one whose process is gone.

    Gone: on this host (``host``, default this machine), its process no
    longer exists; on any host, its heartbeat is older than
    :func:`stale_after`. A record without a heartbeat (written before
    heartbeats existed) keeps its status: nothing tells.
    """
    status = record.get("status")
    if status != "running":
        return status
    pid = record.get("pid")
    if record.get("host") == (host or socket.gethostname()) and pid and not process_alive(int(pid)):
        return "interrupted"
    beat = _as_utc(record.get("heartbeat_at"))
    if beat is None:
        return status
    now = _as_utc(now) or utc_now()
    return "interrupted" if now - beat > stale_after(record) else status


# --- --max-failed ---------------------------------------------------------------------------------

_LIMIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class FailureLimit:
    """``--max-failed N`` (images) or ``P%`` (of the images scored this run; skipped ones do not count)."""

    value: float
    percent: bool

    @classmethod
    def parse(cls, text: str) -> FailureLimit:
        match = _LIMIT.match(text)
        if not match:
            raise ValueError(f"{text!r} is neither a number of images (10) nor a percentage (2.5%)")
        value, percent = float(match.group(1)), bool(match.group(2))
        if percent and value > 100:
            raise ValueError(f"{text!r}: a percentage is at most 100%")
        if not percent and not value.is_integer():
            raise ValueError(f"{text!r}: a number of images is a whole number")
        return cls(value, percent)

    def exceeded(self, summary: RunSummary) -> bool:
        if self.percent:
            return summary.scored > 0 and 100 * summary.failed / summary.scored > self.value
        return summary.failed > self.value

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{int(self.value)}"
