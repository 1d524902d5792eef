"""An exclusive lock on an output's working folder, so two runs never interleave their files."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from eat_curate.errors import StoreError


class FolderLock:
    """``flock`` on ``<folder>/lock``; creates the folder, and may remove it on release.

    The lock file can be removed by the holder (with its folder) when the run
    is over; a process that opened the old file meanwhile notices that the
    file it locked is no longer the one at the path, and tries again.
    """

    def __init__(self, folder: Path, what: str) -> None:
        self.folder = folder
        self.what = what
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    def acquire(self) -> None:
        if self.held:
            return
        path = self.folder / "lock"
        while True:
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except PermissionError:  # another user's run left it: theirs to remove, not ours to take
                raise StoreError(f"{self.what}: the lock file {path} belongs to someone else (permission denied); "
                                 "ask its owner to remove it, or choose another output") from None
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(descriptor, 64, 0).decode(errors="replace").strip() or "?"
                os.close(descriptor)
                raise StoreError(f"{self.what} is being written by another eat-curate process (pid {holder})") from None
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is not None and current.st_ino == os.fstat(descriptor).st_ino:
                break
            os.close(descriptor)  # we locked a file its holder removed: try the new one
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, str(os.getpid()).encode(), 0)
        self._descriptor = descriptor

    def release(self, remove_folder: bool = False) -> None:
        """Unlock; with ``remove_folder``, also remove the lock file and the folder if nothing else is in it."""
        if self._descriptor is None:
            return
        if remove_folder:
            (self.folder / "lock").unlink(missing_ok=True)
            try:
                self.folder.rmdir()
            except OSError:  # not empty: something worth keeping is in it
                pass
        os.close(self._descriptor)
        self._descriptor = None
