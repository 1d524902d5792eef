"""Camera RAW files through LibRaw: rawpy, the optional extra ``pip install 'eat-curate[raw]'``.

:func:`open_raw` turns a RAW into one upright RGB picture for the decoder
and fills the same facts as any image. rawpy is imported when the first RAW
is decoded, so nothing else pays for it; without it, a RAW is an
"unsupported" error row whose reason names the extra.

The picture comes the cheaper of two ways:

- the embedded preview (JPEG or bitmap; LibRaw offers the largest), when its
  long side is at least ``min_side`` (the model's input) and the file is as
  long as its structure declares (:func:`~eat_curate.io.raw_probe.declared_length`):
  no raw data is decoded at all, and a JPEG preview decodes at reduced scale
  like any JPEG (draft, as far as the caller's ``draft_to`` allows);
- otherwise LibRaw's demosaic at half size (each 2x2 Bayer quad becomes one
  pixel, no interpolation), camera white balance, 8 bits, sRGB; full size
  only for a sensor too small for half size to reach ``min_side``. Its
  failures are the file's: a truncated or corrupt RAW is an error row.

Orientation is the RAW's own (LibRaw's ``sizes.flip``, from the file's
orientation tag). The demosaic comes out of LibRaw already turned. Previews
are stored as the sensor saw them, and come out of LibRaw with EXIF: the
camera's, when the preview is a whole JPEG file (Fujifilm's RAF), or else a
header LibRaw writes in front holding the RAW's orientation and LibRaw's
timestamp. So a JPEG preview is turned by its EXIF orientation (a bitmap
preview by the RAW's), except one already a quarter turn off the sensor
(its long side along the sensor's short side), which is left as it is.

Facts: ``width``/``height`` are the sensor image as stored (LibRaw's visible
size, margins excluded, before orientation) whichever way the picture came,
so a row does not depend on the path; ``oriented_*`` after the RAW's
orientation. ``captured_at``, the first found of: EXIF DateTimeOriginal in
the RAW's TIFF structure (:func:`~eat_curate.io.raw_probe.capture_time`:
DNG, CR2, NEF, ARW, ORF, RW2, PEF, ...); the preview's EXIF DateTimeOriginal
(RAF); LibRaw's timestamp (every format LibRaw dates, CR3 and X3F
included), from the header it writes on a preview or, on the demosaic path,
from rawpy's ``other`` (which unpacks the raw data, so the preview path does
not ask it; rawpy releases without ``other`` simply give none). LibRaw's
timestamp is local time, as the camera clock said, like EXIF's.

Thread-safe: one LibRaw instance per call, and rawpy releases the GIL while
LibRaw works. LibRaw prints a line to stderr on data errors ("Unexpected end
of file"); the error row says the same.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import ModuleType

import numpy as np
from PIL import ExifTags, Image

from eat_curate.io.decoded import DecodedImage, DecodeError
from eat_curate.io.exif import QUARTER_TURNS, parse_exif_datetime, read_exif, upright
from eat_curate.io.raw_probe import RawIdentity, capture_time, declared_length
from eat_curate.io.rgb import to_rgb

RAW_EXTRA_HINT = "camera RAW files need rawpy (LibRaw): pip install 'eat-curate[raw]'"

# LibRaw's flip (bit 0: mirror left-right, bit 1: mirror top-bottom, bit 2: transpose first) -> EXIF orientation.
ORIENTATION_OF_FLIP = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}

# What Pillow raises for a preview it cannot decode; the raw data then decides.
_BROKEN_PREVIEW = (OSError, SyntaxError, EOFError, ValueError, IndexError, struct.error, Image.DecompressionBombError)


def open_raw(
    data: bytes,
    facts: DecodedImage,
    identity: RawIdentity,
    min_side: int,
    draft_to: tuple[int, int] | None,
    max_pixels: int,
) -> Image.Image:
    """The upright RGB picture of camera RAW ``data``; fills ``facts`` as it learns them. Raises DecodeError.

    ``draft_to``: a JPEG preview may decode at the smallest reduced scale
    that keeps both sides at least this (Pillow's ``draft``); None: as stored.
    """
    rawpy = _import_rawpy(identity)
    with rawpy.RawPy() as raw:
        with _libraw_failures(rawpy, identity):
            raw.open_buffer(io.BytesIO(data))
        sizes = raw.sizes
        sensor = (sizes.width, sizes.height)
        orientation = ORIENTATION_OF_FLIP.get(sizes.flip, 1)
        facts.width, facts.height = sensor
        facts.oriented_width, facts.oriented_height = sensor[::-1] if orientation in QUARTER_TURNS else sensor
        if sensor[0] * sensor[1] > max_pixels:
            raise DecodeError("too-large", f"{sensor[0]}x{sensor[1]} sensor pixels, over the limit of {max_pixels:,}")
        facts.captured_at = capture_time(data)
        declared = declared_length(data)
        if declared is None or declared <= len(data):  # a cut-short file must not pass on its preview alone
            preview = _preview(raw, rawpy, min_side, draft_to, sensor, orientation, len(data))
            if preview is not None:
                picture, taken = preview
                facts.captured_at = facts.captured_at or taken
                return picture
        with _libraw_failures(rawpy, identity):
            picture = _demosaic(raw, sensor, min_side)
        facts.captured_at = facts.captured_at or _libraw_capture_time(raw)
        return picture


def _import_rawpy(identity: RawIdentity) -> ModuleType:
    try:
        import rawpy
    except ImportError:
        raise DecodeError("unsupported", f"{identity.format}: {RAW_EXTRA_HINT}") from None
    return rawpy


def _preview(
    raw,
    rawpy: ModuleType,
    min_side: int,
    draft_to: tuple[int, int] | None,
    sensor: tuple[int, int],
    orientation: int,
    file_bytes: int,
) -> tuple[Image.Image, datetime | None] | None:
    """The embedded preview, upright, and its EXIF capture time; None when absent, too small or broken."""
    try:
        thumb = raw.extract_thumb()
    except rawpy.LibRawError:  # none, a kind LibRaw cannot extract, or broken
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        return _jpeg_preview(thumb.data, min_side, draft_to, sensor, orientation)
    if thumb.format == rawpy.ThumbFormat.BITMAP:
        return _bitmap_preview(thumb.data, min_side, sensor, orientation, file_bytes)
    return None


def _jpeg_preview(
    jpeg: bytes, min_side: int, draft_to: tuple[int, int] | None, sensor: tuple[int, int], orientation: int
) -> tuple[Image.Image, datetime | None] | None:
    try:
        image = Image.open(io.BytesIO(jpeg), formats=["JPEG"])
        if max(image.size) < min_side:
            return None
        stored = image.size
        if draft_to:
            image.draft("RGB", draft_to)  # Pillow keeps both sides >= draft_to
        image.load()
        exif = read_exif(image)  # the camera's, or the header LibRaw writes on previews without one
        turn = _unless_turned_already(exif.orientation if exif.has_orientation else orientation, stored, sensor)
        return to_rgb(upright(image, turn)), exif.captured_at or _libraw_header_time(image)
    except _BROKEN_PREVIEW:
        return None


def _bitmap_preview(
    pixels: np.ndarray, min_side: int, sensor: tuple[int, int], orientation: int, file_bytes: int
) -> tuple[Image.Image, datetime | None] | None:
    """``pixels``: rawpy's view of LibRaw's bitmap, shaped by the preview's declared size. A damaged size makes
    the view reach past LibRaw's buffer, and reading it ends the process (a segfault, not an exception): a
    preview stored uncompressed in the file cannot hold more bytes than the file, so such a view is never read
    (only its shape is looked at) and the demosaic serves instead."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (1, 3) or pixels.nbytes > file_bytes:
        return None
    height, width = pixels.shape[:2]
    if max(width, height) < min_side:
        return None
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    return to_rgb(upright(image, _unless_turned_already(orientation, (width, height), sensor))), None


def _unless_turned_already(orientation: int, preview: tuple[int, int], sensor: tuple[int, int]) -> int:
    """``orientation``, unless it turns a quarter and the preview is already a quarter turn off the sensor."""
    if orientation in QUARTER_TURNS and _is_portrait(preview) != _is_portrait(sensor):
        return 1
    return orientation


def _is_portrait(size: tuple[int, int]) -> bool:
    return size[1] > size[0]


def _demosaic(raw, sensor: tuple[int, int], min_side: int) -> Image.Image:
    half = max(sensor) // 2 >= min_side
    pixels = raw.postprocess(half_size=half, use_camera_wb=True, output_bps=8)  # LibRaw applies the flip
    if pixels.ndim == 3 and pixels.shape[2] == 1:  # a monochrome sensor
        pixels = pixels[..., 0]
    return to_rgb(Image.fromarray(pixels))


def _libraw_header_time(image: Image.Image) -> datetime | None:
    """LibRaw's timestamp from the EXIF header it writes on a preview (Software "dcraw v9.26", DateTime)."""
    try:
        exif = image.getexif()
        software, stamped = str(exif.get(ExifTags.Base.Software, "")), exif.get(ExifTags.Base.DateTime)
    except Exception:  # a corrupt EXIF block: no time, not a failure
        return None
    taken = parse_exif_datetime(stamped) if software.startswith("dcraw") else None
    return taken if taken is not None and taken.year > 1970 else None  # LibRaw writes the epoch when it has none


def _libraw_capture_time(raw) -> datetime | None:
    """LibRaw's timestamp (local time, as the camera clock said), or None: absent, zero, or an old rawpy."""
    try:
        taken = raw.other.timestamp
    except Exception:  # rawpy without `other` (AttributeError) or a LibRaw error: no time, not a failure
        return None
    return taken if isinstance(taken, datetime) and taken.year > 1970 else None


@contextmanager
def _libraw_failures(rawpy: ModuleType, identity: RawIdentity) -> Iterator[None]:
    """LibRaw's exceptions as DecodeErrors of our kinds."""
    try:
        yield
    except rawpy.LibRawFileUnsupportedError as error:
        if identity.by_content:
            raise DecodeError("unsupported", f"LibRaw cannot read this {identity.format}: {_reason(error)}") from None
        raise DecodeError(
            "not-an-image",
            f"not an image: named like a camera RAW ({identity.format}) but LibRaw does not recognise its content",
        ) from None
    except (rawpy.LibRawTooBigError, rawpy.LibRawUnsufficientMemoryError, rawpy.LibRawMemPoolOverflowError) as error:
        raise DecodeError("too-large", f"{identity.format} too large for LibRaw: {_reason(error)}") from None
    except (rawpy.LibRawNotImplementedError, rawpy.NotSupportedError) as error:
        raise DecodeError("unsupported", f"{identity.format}: {_reason(error)}") from None
    except rawpy.LibRawError as error:  # I/O error at the end of the data, corrupt data, ...
        raise DecodeError("truncated", f"truncated or corrupt {identity.format}: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    """rawpy's message (it passes LibRaw's as bytes: b'Input/output error') as plain text."""
    message = error.args[0] if error.args else type(error).__name__
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    return str(message).strip() or type(error).__name__
