"""Small JPEG thumbnails as data: URIs, so the report needs no file beside it and no network.

Read from the original image files (the database only knows their paths).
A file that vanished or no longer decodes gets a placeholder and a reason;
so does anything at the path that is no photo to read: a FIFO (opening it
would wait forever), a device such as ``/dev/zero`` (endless), a file over
the size cap (it is never read whole into memory).
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass

from PIL import Image

from eat_curate.io import bounded_read
from eat_curate.io.decode import DecodeError, open_image

THUMBNAIL_SIDE = 160  # pixels, longer side
JPEG_QUALITY = 75
_PLACEHOLDER_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="120" viewBox="0 0 160 120">'
    '<rect width="160" height="120" fill="#ddd"/>'
    '<path d="M20 20L140 100M140 20L20 100" stroke="#999" stroke-width="4"/></svg>'
)
PLACEHOLDER_URI = "data:image/svg+xml;base64," + base64.b64encode(_PLACEHOLDER_SVG.encode()).decode("ascii")


@dataclass(frozen=True)
class Thumbnail:
    uri: str  # data: URI of a JPEG, or of the placeholder
    width: int
    height: int
    problem: str | None = None  # why the placeholder stands in (missing, unreadable, ...)


def _placeholder(problem: str) -> Thumbnail:
    return Thumbnail(PLACEHOLDER_URI, 160, 120, problem)


def make_thumbnail(path: str, side: int = THUMBNAIL_SIDE) -> Thumbnail:
    """A thumbnail of the image file at ``path`` (upright, longer side ``side``) or a placeholder."""
    if "://" in path:
        return _placeholder("not a local file")
    if not os.path.lexists(path):
        return _placeholder("missing")
    try:
        data = bounded_read.read_file(path)  # regular files only, and never more than the cap
    except bounded_read.ReadRefused as refused:
        return _placeholder(f"{refused.kind}: {refused.reason}")
    try:
        image = open_image(data, min_size=side)
    except DecodeError as error:
        return _placeholder(f"no longer decodes: {error}")
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return Thumbnail(uri, image.width, image.height)
