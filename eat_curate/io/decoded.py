"""What a decode yields: :class:`DecodedImage` (pixels and facts, or an error kind) and :class:`DecodeError`.

Apart from :mod:`eat_curate.io.decode` so the format-specific decoders it
calls (:mod:`eat_curate.io.raw`) fill the same facts and raise the same
error without importing the decoder back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from eat_curate.errors import EatCurateError

# The fields a ScoreRecord takes from a decode, named as in ScoreRecord.
RECORD_FIELDS = (
    "content_hash",
    "bytes",
    "width",
    "height",
    "oriented_width",
    "oriented_height",
    "format",
    "phash",
    "captured_at",
    "error_kind",
    "error",
)


class DecodeError(EatCurateError):
    """An image that cannot be decoded; ``kind`` is one of ``records.ERROR_KINDS``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class DecodedImage:
    """One input's decode: pixels on success, otherwise ``error_kind``/``error``.

    Facts read before a failure (format, dimensions) are kept, so an error
    row still says what the file was.
    """

    content_hash: str | None  # sha256 hex of the encoded bytes; None when they could not be read
    bytes: int | None
    pixels: np.ndarray | None = field(default=None, repr=False)  # (size, size, 3) uint8
    width: int | None = None  # as stored (a camera RAW: its sensor image, before orientation)
    height: int | None = None
    oriented_width: int | None = None  # after EXIF orientation (a camera RAW: its own orientation)
    oriented_height: int | None = None
    format: str | None = None  # Pillow's format name (JPEG, PNG, WEBP, HEIF, ...) or a RAW's (DNG, CR2, NEF, ...)
    phash: int | None = None  # 64-bit perceptual hash as a signed int64
    captured_at: datetime | None = None  # EXIF DateTimeOriginal, naive
    error_kind: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None

    def to_record_fields(self) -> dict:
        """The ScoreRecord fields this decode fills, by their ScoreRecord names."""
        return {name: getattr(self, name) for name in RECORD_FIELDS}
