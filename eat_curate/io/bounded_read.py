"""Reading one input's bytes with a bound: regular files only, and never more than ``max_bytes``.

A photo folder can hold things that are not photos at all: a ``.jpg``
symlink to ``/dev/zero`` (endless), a FIFO (blocks until someone writes), a
socket, a sparse file that claims gigabytes. Reading them naively hangs the
run or grows it until the kernel kills it. So:

- the file's type is checked from ``stat`` before it is opened: devices,
  FIFOs and sockets are refused without being opened (opening some devices
  has effects of its own);
- a regular file larger than the cap is refused from its size alone, never
  read (kind ``too-large``);
- the file is opened non-blocking and checked again on the open handle, so
  a file swapped for a FIFO between the two checks cannot block either;
- whatever is read (a file that grew, a remote stream of unknown length)
  stops at ``max_bytes + 1`` bytes: one byte over the cap proves it too large.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO, Protocol

MiB = 1 << 20
# 512 MiB per image. The largest real photographs stay well under it: camera JPEGs are at most tens
# of MB, the largest medium-format RAW files about 200-300 MB, and a plain 8-bit RGB TIFF at the
# decoder's pixel limit (io.decode.DEFAULT_MAX_PIXELS, 179 MP x 3 bytes) just fits. Above it lie
# 16-bit scans and panoramas (raise the cap for those) or things that are not photos. The engine
# holds a window of inputs in flight (about 2 x batch size), so the cap also bounds its worst case.
DEFAULT_MAX_BYTES = 512 * MiB
STREAM_CHUNK = 1 * MiB  # read size when the length is not known up front

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


class ReadRefused(Exception):
    """An input whose bytes were not (or not all) read; ``kind`` is a ``records.ERROR_KINDS`` value."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind  # "unreadable" or "too-large"
        self.reason = reason


class Readable(Protocol):
    def read(self, size: int = -1) -> bytes: ...


def describe_size(count: int) -> str:
    """``3.0 GiB``, ``512 MiB``, ``800 bytes``: sizes as people read them."""
    for unit, name in ((1 << 30, "GiB"), (MiB, "MiB"), (1 << 10, "KiB")):
        if count >= unit:
            value = count / unit
            return f"{value:.0f} {name}" if value == int(value) else f"{value:.1f} {name}"
    return f"{count} bytes"


def over_limit(size: int, max_bytes: int) -> ReadRefused:
    size_text, limit_text = describe_size(size), describe_size(max_bytes)
    if size_text == limit_text:  # "2.0 KiB, over the limit of 2.0 KiB" says nothing: give the bytes
        size_text, limit_text = f"{size:,} bytes", f"{max_bytes:,} bytes"
    return ReadRefused("too-large", f"{size_text}, over the limit of {limit_text} per image")


def stream_over_limit(max_bytes: int) -> ReadRefused:
    """too-large for a stream found one byte over ``max_bytes``: its whole size is unknown."""
    return ReadRefused("too-large", f"over the limit of {describe_size(max_bytes)} per image")


def not_regular_reason(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read (``not a regular file (FIFO)``), None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    kind = next((name for test, name in _SPECIAL_KINDS if test(mode)), "special file")
    return f"not a regular file ({kind})"


def read_file(path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The content of the regular file at ``path`` (symlinks followed); raises :class:`ReadRefused`."""
    try:
        _check(os.stat(path), max_bytes)
        # O_NONBLOCK: opening a FIFO never waits for a writer; O_NOCTTY: a terminal never becomes ours.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        raise _refusal(path, error) from None
    with os.fdopen(descriptor, "rb", buffering=0) as handle:
        try:
            facts = os.fstat(descriptor)
            _check(facts, max_bytes)  # the same file as stat saw, or its replacement: check again
            return read_at_most(handle, max_bytes, expected=facts.st_size)
        except OSError as error:
            raise _refusal(path, error) from None


def read_head(path: str, count: int) -> bytes:
    """The first ``count`` bytes of the regular file at ``path`` (content sniffing); see :func:`open_regular`."""
    with open_regular(path) as handle:
        return handle.read(count)


def open_regular(path: str) -> BinaryIO:
    """The regular file at ``path``, opened for reading without blocking (a FIFO never waits for a writer);
    :class:`ReadRefused` when it is not a regular file, OSError when it cannot be opened."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    handle = os.fdopen(descriptor, "rb")
    reason = not_regular_reason(os.fstat(descriptor).st_mode)
    if reason is not None:
        handle.close()
        raise ReadRefused("unreadable", reason)
    return handle


def read_at_most(handle: Readable, max_bytes: int, expected: int | None = None) -> bytes:
    """All of ``handle``'s bytes, reading no more than ``max_bytes + 1``; too-large past ``max_bytes``.

    ``expected``: the length when known (a file's size), so the usual file is one read of the right size.
    """
    chunks: list[bytes] = []
    total = 0
    want = min(expected, max_bytes) + 1 if expected is not None else STREAM_CHUNK
    while total <= max_bytes:
        chunk = handle.read(min(want, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        want = STREAM_CHUNK
    if total > max_bytes:
        raise stream_over_limit(max_bytes)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _check(facts: os.stat_result, max_bytes: int) -> None:
    reason = not_regular_reason(facts.st_mode)
    if reason is not None:
        raise ReadRefused("unreadable", reason)
    if facts.st_size > max_bytes:
        raise over_limit(facts.st_size, max_bytes)


def _refusal(path: str, error: OSError) -> ReadRefused:
    if isinstance(error, FileNotFoundError):
        return ReadRefused("unreadable", "broken symlink (its target is gone)" if os.path.islink(path) else "not found")
    if isinstance(error, PermissionError):
        return ReadRefused("unreadable", "permission denied")
    if isinstance(error, IsADirectoryError):
        return ReadRefused("unreadable", "is a folder, not a file")
    return ReadRefused("unreadable", error.strerror or str(error))
