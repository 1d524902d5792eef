"""A minimal TIFF directory reader: a few tags of a file, never its pixels.

Most camera RAWs are TIFF inside (NEF, ARW, CR2, PEF, SRW, DNG, ...), and
some put a maker's number where TIFF has 42 (ORF's "RO", RW2's "U"), which
Pillow refuses; this reads any "II"/"MM" header. It follows the IFD chain
and each directory's SubIFDs (where NEF, ARW and DNG keep the raw data),
and is bounded: at most :data:`MAX_DIRECTORIES` directories of at most
:data:`MAX_ENTRIES` entries, every offset checked against the data, so a
hostile file costs microseconds and raises nothing but :class:`TiffError`;
a directory that cannot be read ends the walk, keeping those read before it
(what a truncated file still says).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_DIRECTORIES = 16
MAX_ENTRIES = 1024

SUB_IFDS = 330
EXIF_IFD = 34665

# TIFF field types -> struct code of one value (ASCII and UNDEFINED read as bytes).
_TYPE_CODES = {
    1: "B", 2: "c", 3: "H", 4: "I", 5: "II", 6: "b", 7: "c", 8: "h", 9: "i", 10: "ii", 11: "f", 12: "d", 13: "I",
}  # fmt: skip
_INTEGER_TYPES = {1, 3, 4, 6, 8, 9, 13}


class TiffError(ValueError):
    """Not TIFF-structured, or a directory that points outside the data."""


@dataclass(frozen=True)
class Entry:
    type: int
    count: int
    at: int  # where the value starts in the data: inside the entry when it fits in 4 bytes, else its offset


Directory = dict[int, Entry]  # tag -> entry


class TiffFile:
    """The directories of TIFF-structured ``data``; values are read on request."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 8 or data[:2] not in (b"II", b"MM"):
            raise TiffError("no TIFF byte-order mark")
        self.data = data
        self.order = "<" if data[:2] == b"II" else ">"
        self.first_offset = self._unpack("I", 4)[0]

    def directories(self) -> list[Directory]:
        """IFD0 and the IFDs chained after it, each followed by its SubIFDs; at most MAX_DIRECTORIES."""
        found: list[Directory] = []
        seen: set[int] = set()
        chain = self.first_offset
        while chain and chain not in seen and len(found) < MAX_DIRECTORIES:
            seen.add(chain)
            try:
                directory, chain = self._directory(chain)
            except TiffError:
                break  # a truncated file: the directories before the cut still count
            found.append(directory)
            for offset in self._sub_ifd_offsets(directory):
                if offset not in seen and len(found) < MAX_DIRECTORIES:
                    seen.add(offset)
                    try:
                        found.append(self._directory(offset)[0])
                    except TiffError:
                        continue
        return found

    def directory_at(self, tag: int, parent: Directory) -> Directory | None:
        """The directory a pointer tag (EXIF_IFD, ...) of ``parent`` leads to, or None."""
        offsets = self.integers(parent.get(tag))
        return self._directory(offsets[0])[0] if offsets else None

    def integers(self, entry: Entry | None) -> list[int]:
        """An integer tag's values; [] when absent or not integers."""
        if entry is None or entry.type not in _INTEGER_TYPES:
            return []
        return list(self._unpack(f"{entry.count}{_TYPE_CODES[entry.type]}", entry.at))

    def text(self, entry: Entry | None) -> str | None:
        """An ASCII tag's value without its trailing NULs, or None."""
        if entry is None or entry.type != 2:
            return None
        raw = self._slice(entry.at, entry.count)
        return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()

    def _sub_ifd_offsets(self, directory: Directory) -> list[int]:
        try:
            return self.integers(directory.get(SUB_IFDS))
        except TiffError:
            return []

    def _directory(self, offset: int) -> tuple[Directory, int]:
        """The entries at ``offset`` and the offset of the next directory in the chain (0: none)."""
        (count,) = self._unpack("H", offset)
        if count > MAX_ENTRIES:
            raise TiffError(f"directory at {offset} claims {count} entries")
        directory: Directory = {}
        for index in range(count):
            start = offset + 2 + 12 * index
            tag, kind, values = self._unpack("HHI", start)
            code = _TYPE_CODES.get(kind)
            if code is None:
                continue  # a type this reader has no use for
            size = struct.calcsize(self.order + code) * values
            at = start + 8 if size <= 4 else self._unpack("I", start + 8)[0]
            directory[tag] = Entry(kind, values, at)
        (following,) = self._unpack("I", offset + 2 + 12 * count)
        return directory, following

    def _unpack(self, code: str, at: int) -> tuple:
        try:
            layout = struct.Struct(self.order + code)
        except struct.error as error:  # a count too large to lay out ("total struct size too long")
            raise TiffError(str(error)) from None
        return layout.unpack(self._slice(at, layout.size))

    def _slice(self, at: int, size: int) -> bytes:
        if at < 0 or size < 0 or at + size > len(self.data):
            raise TiffError(f"{size} bytes at {at} lie outside the {len(self.data)}-byte file")
        return self.data[at : at + size]
