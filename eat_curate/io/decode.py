"""The one decoder: bytes in, an oriented RGB image (or a short error) out.

(Minimal first version; the full decoder is being written.)
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from eat_curate.errors import EatCurateError


class DecodeError(EatCurateError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def open_image(data: bytes, min_size: int | None = None) -> Image.Image:
    """An EXIF-oriented RGB image from encoded bytes; raises DecodeError."""
    if not data:
        raise DecodeError("empty", "file is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
        image = ImageOps.exif_transpose(image)
        return image.convert("RGB")
    except Exception as exc:  # replaced by precise handling in the full decoder
        raise DecodeError("not-an-image", str(exc)) from None
