"""File operations that survive a crash at any instant: fsync, then an atomic rename."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from eat_curate.errors import StoreError
from eat_curate.sinks.faults import is_storage_error, storage_failure


def fsync_folder(folder: Path) -> None:
    """Make the creation, rename or removal of entries in ``folder`` durable."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def publish(temporary: Path, final: Path) -> None:
    """Atomically put the finished file ``temporary`` at ``final`` (replacing it): all or nothing."""
    fsync_file(temporary)
    os.replace(temporary, final)
    fsync_folder(final.parent)


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True, default=str, ensure_ascii=False))
    publish(temporary, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def ensure_writable_folder(folder: Path, what: str) -> None:
    """Prove ``folder`` takes new files by creating (and removing) one; permission bits lie to root.

    A full or read-only disk is an infrastructure failure (it passes once an
    operator acts); anything else (no permission, not a folder) a refusal.
    """
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".eat-curate-probe-"):
            pass
    except OSError as exc:
        if is_storage_error(exc):
            raise storage_failure(exc, f"{what}: cannot write in {folder}") from None
        raise StoreError(f"{what}: cannot write in {folder}: {exc.strerror or exc}") from None
