"""Files written whole or not at all: into a hidden sibling first, then renamed into place.

A crash, a full disk or Ctrl-C midway leaves the old file (or none) where
the new one goes, never half of one; the sibling is removed on any failure.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

MAX_NAME_BYTES = 255  # bytes in one file name, on every common file system


def partial_sibling(path: Path) -> Path:
    """The hidden sibling ``path`` is written into: named after it while that fits in one name (``--out`` may
    take all 255 bytes), else after this process."""
    name = f".{path.name}.partial"
    if len(os.fsencode(name)) > MAX_NAME_BYTES:
        name = f".eat-curate-{os.getpid()}.partial"
    return path.with_name(name)


@contextlib.contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """Yield the sibling to write; it becomes ``path`` when the block ends, and is removed if the block raises."""
    partial = partial_sibling(path)
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
