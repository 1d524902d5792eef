"""A small tmpfs of a test's own: a disk to fill up or to make read-only.

Mounting needs root and the mount privilege; where either is missing the
test is skipped, never failed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@contextmanager
def mounted_tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``4m``) at ``mount_point`` (made here), unmounted afterwards."""
    mount_point.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(mount_point))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and the mount privilege): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def remount(disk: Path, mode: str) -> None:
    """Make the tmpfs at ``disk`` read-only (``ro``) or writable again (``rw``)."""
    remounted = _mount("-o", f"remount,{mode}", str(disk))
    assert remounted.returncode == 0, remounted.stderr
