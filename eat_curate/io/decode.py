"""The one decoder: encoded bytes in, the model's pixels and the image's facts out.

Every engine and training use it, so an image decodes to the same pixels
wherever it is scored. :func:`decode_image` never raises: each input yields
one :class:`DecodedImage`, either with pixels or with an ``error_kind`` from
:data:`eat_curate.records.ERROR_KINDS` and a short reason. :func:`open_for_model`
is the same decode for callers that want the oriented RGB picture itself
(training, ``explain``) and raises :class:`DecodeError` instead;
:func:`open_image` decodes for other uses (thumbnails, the drawing).

What it does to a picture, in order:

- hands camera RAW files (CR2, NEF, ARW, DNG, ...: by content, see
  :mod:`eat_curate.io.raw_probe`) to :mod:`eat_curate.io.raw`, which develops
  their embedded preview or a half-size demosaic, upright by their own
  orientation; the pixel limit, RGB, resize and hash below hold for them too;
- refuses it when the header declares more than ``max_pixels`` (decompression
  bombs), before any pixel is decoded; Pillow's own bomb guard also counts;
- decodes JPEGs at a reduced scale (libjpeg's DCT scaling, Pillow's
  ``draft``) when the target is small, as far as the one rule of
  :mod:`eat_curate.io.resize` allows: the short side stays longer than
  ``PRE_REDUCTION_MARGIN`` times ``size``, so the drafted picture gives
  the model nearly the pixels the full one does;
- keeps only the first frame of animations (GIF, APNG, WebP);
- turns it upright by its EXIF orientation;
- converts any mode to RGB (see :mod:`eat_curate.io.rgb`: alpha on white,
  16-bit and float scaled);
- squashes it to the model's input with ``resize_for_model`` (the rest of
  the same reduction, then bicubic) and hashes that (:mod:`eat_curate.io.phash`).

Thread-safe: nothing here changes global state (Pillow's pixel limit and the
truncated-image switch are left alone), so engines decode in thread pools;
Pillow releases the GIL while decoding. The only one-time effect is
registering pillow-heif's HEIF opener the first time a HEIF file is seen
(and importing rawpy the first time a RAW is).
"""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass

from PIL import Image, JpegImagePlugin, UnidentifiedImageError, features

from eat_curate.io.decoded import RECORD_FIELDS, DecodedImage, DecodeError
from eat_curate.io.exif import read_exif, upright
from eat_curate.io.formats import SNIFF_BYTES, looks_like_text, sniff_format
from eat_curate.io.phash import phash
from eat_curate.io.raw import open_raw
from eat_curate.io.raw_probe import identify_raw
from eat_curate.io.rgb import to_rgb
from eat_curate.io.resize import draft_request, resize_for_model

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "RECORD_FIELDS",
    "DecodeError",
    "DecodedImage",
    "ImageHeader",
    "decode_image",
    "open_for_model",
    "open_image",
    "read_header",
]

# Pillow refuses images over twice its MAX_IMAGE_PIXELS (~179 MP) whatever we allow,
# so that is the most a default can be; it still takes 150 MP medium-format photos.
DEFAULT_MAX_PIXELS = 178_956_970

# Between ~89.5 MP and that, Pillow warns of a "decompression bomb DOS attack" once per size: for every
# 100 MP photo of a medium-format camera, where the limit that counts is ours (max_pixels, an error row
# over it). Filtered once, as this module is imported, not around each decode (catch_warnings is not
# thread-safe); it covers the Ray workers' decoding too.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

# The formats we try to open. Pillow's other plugins are never tried: fewer random
# files mistaken for exotic formats, and none that shells out (EPS runs Ghostscript).
DECODABLE_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "TIFF", "BMP", "AVIF", "HEIF", "JPEG2000")

HEIF_HINT = "HEIC/HEIF needs pillow-heif: pip install 'eat-curate[heif]'"

# Exceptions Pillow's decoders raise for data that ends early or is corrupt (RuntimeError: the AVIF and
# HEIF decoders' "Failed to decode image: ..."; OverflowError and TypeError: a TIFF whose strip offsets a
# damaged tag type turned into 64-bit numbers or text, which Pillow seeks to).
_CORRUPT_DATA_ERRORS = (
    OSError, SyntaxError, EOFError, ValueError, IndexError, RuntimeError, OverflowError, TypeError, struct.error,
    zlib.error,
)

# A RAW's embedded preview serves when its long side reaches this, for callers that name no size.
DEFAULT_PREVIEW_SIDE = 224


def decode_image(
    data: bytes, size: int = 224, draft: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS, name: str | None = None
) -> DecodedImage:
    """Decode ``data`` to (size, size, 3) uint8 model pixels and the image's facts; never raises.

    ``draft`` lets JPEGs (and RAW previews) decode at a reduced scale, as far
    as :func:`eat_curate.io.resize.draft_request` allows; a RAW's preview
    serves when its long side reaches ``size``. ``name``: the file name or
    key, consulted only for a RAW extension when the content is TIFF or no
    known format.
    """
    result = DecodedImage(content_hash=hashlib.sha256(data).hexdigest(), bytes=len(data))
    try:
        image = _open_upright(data, result, size, draft_request(size) if draft else None, max_pixels, name)
        result.pixels = resize_for_model(image, size)
        result.phash = phash(Image.fromarray(result.pixels))
    except DecodeError as error:
        result.error_kind, result.error = error.kind, str(error)
    except MemoryError:
        result.error_kind, result.error = "too-large", "out of memory while decoding"
    except Exception as error:  # a bug (ours or a plugin's): an error row that says so, never a crash
        result.error_kind, result.error = "internal", f"{type(error).__name__}: {error}"
    if not result.ok:
        result.pixels = result.phash = None
    return result


@dataclass
class ImageHeader:
    """What the header says, without decoding pixels: for decoders that decode elsewhere (the GPU)."""

    facts: DecodedImage  # hash, size, format, dimensions, capture time; error_kind set if unusable
    orientation: int = 1  # EXIF orientation, 1..8
    mode: str | None = None  # Pillow's mode as stored: RGB (YCbCr JPEG), L, CMYK, ...


def read_header(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHeader:
    """The header facts of ``data`` (never raises; a failure is in ``facts.error_kind``)."""
    facts = DecodedImage(content_hash=hashlib.sha256(data).hexdigest(), bytes=len(data))
    header = ImageHeader(facts)
    try:
        if not data:
            raise DecodeError("empty", "file is empty (0 bytes)")
        camera = identify_raw(data)
        if camera is not None:  # developed on the CPU (decode_image): the format is all a header tells
            facts.format = camera.format
            return header
        image = _identify(data, sniff_format(data[:SNIFF_BYTES]))
        facts.format, header.mode = image.format, image.mode
        facts.width, facts.height = image.size
        if facts.width * facts.height > max_pixels:
            raise DecodeError("too-large", f"{facts.width}x{facts.height} pixels, over the limit of {max_pixels:,}")
        exif = read_exif(image)
        header.orientation, facts.captured_at = exif.orientation, exif.captured_at
        facts.oriented_width, facts.oriented_height = (
            (facts.height, facts.width) if exif.swaps_sides else (facts.width, facts.height)
        )
    except DecodeError as error:
        facts.error_kind, facts.error = error.kind, str(error)
    except Exception as error:  # never a crash: the CPU decoder will say what is wrong
        facts.error_kind, facts.error = "internal", f"{type(error).__name__}: {error}"
    return header


def open_image(data: bytes, min_size: int | None = None, name: str | None = None) -> Image.Image:
    """An EXIF-oriented RGB image from encoded bytes; raises :class:`DecodeError`.

    ``min_size``: JPEGs may decode at a reduced scale whose sides stay at
    least this, and a RAW's preview serves when its long side reaches it.
    For the model's input, :func:`open_for_model` (which keeps more).
    """
    draft_to = (min_size, min_size) if min_size else None
    return _open_scratch(data, min_size or DEFAULT_PREVIEW_SIDE, draft_to, name)


def open_for_model(data: bytes, size: int, name: str | None = None) -> Image.Image:
    """The EXIF-oriented RGB picture as scoring decodes it for a ``size`` model; raises :class:`DecodeError`.

    ``resize_for_model(open_for_model(data, size), size)`` is exactly
    ``decode_image(data, size).pixels``: for training and ``explain``, which
    need the picture, to see what ``score`` scores.
    """
    return _open_scratch(data, size, draft_request(size), name)


def _open_scratch(data: bytes, preview_side: int, draft_to: tuple[int, int] | None, name: str | None) -> Image.Image:
    """:func:`_open_upright` for callers that want the picture and learn failures by exception."""
    facts = DecodedImage(content_hash=None, bytes=len(data))  # scratch: these callers report by raising
    try:
        return _open_upright(data, facts, preview_side, draft_to, DEFAULT_MAX_PIXELS, name)
    except MemoryError:
        raise DecodeError("too-large", "out of memory while decoding") from None


def _open_upright(
    data: bytes,
    facts: DecodedImage,
    preview_side: int,
    draft_to: tuple[int, int] | None,
    max_pixels: int,
    name: str | None,
) -> Image.Image:
    """The upright RGB picture; fills ``facts`` as it learns them. Raises DecodeError.

    ``preview_side``: a RAW's embedded preview serves when its long side
    reaches it. ``draft_to``: JPEGs (RAW previews too) decode at the
    smallest reduced scale that keeps both sides at least this; None: as stored.
    """
    if not data:
        raise DecodeError("empty", "file is empty (0 bytes)")
    camera = identify_raw(data, name)
    if camera is not None:
        facts.format = camera.format
        return open_raw(data, facts, camera, preview_side, draft_to, max_pixels)
    announced = sniff_format(data[:SNIFF_BYTES])
    if announced == "HEIF" and not heif_opener_registered():
        raise DecodeError("unsupported", HEIF_HINT)
    image = _identify(data, announced)
    facts.format = image.format
    facts.width, facts.height = image.size
    if facts.width * facts.height > max_pixels:
        raise DecodeError(
            "too-large",
            f"{facts.width}x{facts.height} = {facts.width * facts.height:,} pixels, over the limit of {max_pixels:,}",
        )
    if draft_to and isinstance(image, JpegImagePlugin.JpegImageFile):
        image.draft("RGB", draft_to)  # Pillow keeps both sides >= draft_to
    _refuse_uncovered_tiff(image)
    _load(image)
    exif = read_exif(image)
    facts.captured_at = exif.captured_at
    facts.oriented_width, facts.oriented_height = (
        (facts.height, facts.width) if exif.swaps_sides else (facts.width, facts.height)
    )
    try:
        return to_rgb(upright(image, exif.orientation))
    except ValueError as error:
        raise DecodeError("unsupported", f"{image.format} in colour mode {image.mode}: {error}") from None


def _identify(data: bytes, announced: str | None) -> Image.Image:
    """Pillow's image for ``data``, header read and pixels not yet decoded."""
    Image.init()  # registers Pillow's plugins once, so the format list below is complete
    formats = [name for name in DECODABLE_FORMATS if name in Image.OPEN]
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DecodeError("too-large", _first_line(error)) from None
    except UnidentifiedImageError:
        raise _unidentified(data, announced) from None
    except _CORRUPT_DATA_ERRORS as error:
        raise DecodeError("truncated", f"corrupt {announced or 'image'} header: {_first_line(error)}") from None


def _unidentified(data: bytes, announced: str | None) -> DecodeError:
    """Why Pillow found no image: not one at all, one it cannot decode here, or a broken one."""
    if announced is None:
        if looks_like_text(data[:512]):
            return DecodeError("not-an-image", "not an image: the file holds text")
        return DecodeError("not-an-image", "not an image: no known image format in its first bytes")
    unsupported = {
        "JXL": "JPEG XL is not supported (convert to JPEG or PNG)",
        "AVIF": None if features.check("avif") else "AVIF needs Pillow built with libavif (Pillow >= 11.2 wheels)",
        "JPEG2000": None if features.check_codec("jpg_2000") else "JPEG 2000 needs Pillow built with OpenJPEG",
    }.get(announced)
    if unsupported:
        return DecodeError("unsupported", unsupported)
    return DecodeError("truncated", f"corrupt or truncated {announced}: its header cannot be read")


def _refuse_uncovered_tiff(image: Image.Image) -> None:
    """A TIFF whose strips or tiles cover less than its size (a damaged height or width tag) would decode,
    slowly, to a picture that is black beyond them, and be scored as one."""
    if image.format != "TIFF":
        return
    try:
        covered = int(sum((x1 - x0) * (y1 - y0) for _, (x0, y0, x1, y1), *_ in image.tile))
    except (TypeError, ValueError, OverflowError):  # a damaged tag type: text, a fraction of no size
        raise DecodeError("truncated", "corrupt TIFF: where its image data lies cannot be read") from None
    if covered < image.width * image.height:
        raise DecodeError(
            "truncated",
            f"corrupt TIFF: its image data covers {covered:,} of its {image.width}x{image.height} pixels",
        )


def _load(image: Image.Image) -> None:
    """Decode the pixels (of the first frame); map Pillow's failures to our kinds."""
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DecodeError("too-large", _first_line(error)) from None
    except _CORRUPT_DATA_ERRORS as error:
        message = _first_line(error)
        if isinstance(error, OSError) and "not available" in message:  # e.g. "decoder jpeg2k not available"
            raise DecodeError("unsupported", f"{image.format}: {message}") from None
        raise DecodeError("truncated", f"truncated or corrupt {image.format}: {message}") from None


_heif_lock = threading.Lock()
_heif_registered: bool | None = None


def heif_opener_registered() -> bool:
    """Register pillow-heif's opener on first use; False when pillow-heif is not installed."""
    global _heif_registered
    with _heif_lock:
        if _heif_registered is None:
            try:
                from pillow_heif import register_heif_opener
            except ImportError:
                _heif_registered = False
            else:
                register_heif_opener()
                _heif_registered = True
        return _heif_registered


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
