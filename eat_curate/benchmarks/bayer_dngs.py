"""Real DNG files from generated pictures, for the RAW benchmark and the tests: no camera, no download.

A picture (H, W, 3 uint8, as the sensor would see it, before orientation)
is sampled through an RGGB colour filter into 12-bit Bayer data and written
with pidng (a dev dependency: ``pip install pidng``) as an uncompressed DNG
that LibRaw reads like a camera's:

- the raw image in IFD0, or, with a preview, the preview in IFD0 (as Adobe's
  converter and cameras do: NewSubfileType 1) and the raw image in its SubIFD;
- the preview a baseline JPEG (Compression 7, YCbCr) or an RGB bitmap
  (uncompressed), of the same picture, stored the same way (not turned);
- the orientation tag, Make/Model, and an EXIF IFD with DateTimeOriginal
  when asked.

pidng's own writer (``RAW2DNG``) makes a DNG of one directory, and its
pointer tags (SubIFD, EXIF IFD) fail to build, so the directories are put
together here from pidng's parts with a mended pointer tag.
"""

from __future__ import annotations

import functools
import io
from datetime import datetime

import numpy as np
from PIL import Image

BITS = 12
WHITE = (1 << BITS) - 1


def bayer_dng(
    picture: np.ndarray,
    orientation: int = 1,
    preview: str | None = None,
    preview_side: int = 512,
    captured_at: datetime | None = None,
    preview_exif: Image.Exif | None = None,
    preview_of: np.ndarray | None = None,
    make: str = "eat-curate",
    dng: bool = True,
    captured_tag: str = "DateTimeOriginal",
) -> bytes:
    """A DNG of ``picture`` (H, W even), with a ``preview`` ("jpeg" or "bitmap", long side ``preview_side``) if asked.

    ``captured_at`` goes into the EXIF IFD as ``captured_tag`` (DateTimeOriginal), or into IFD0 as
    "DateTime" (which LibRaw reads and the EXIF readers here do not).
    ``preview_exif``: EXIF at the head of a JPEG preview, as cameras write it (no JFIF segment before it).
    ``preview_of``: another picture to store as the preview (to tell which of the two a decoder used).
    ``dng=False`` leaves out the DNG version tags: a TIFF-EP raw, as NEF, ARW and PEF are (LibRaw will
    not develop it, but it shows what the content alone says).
    """
    from pidng.defs import CFAPattern, DNGVersion
    from pidng.dng import DNG, Tag, dngIFD, dngTag

    height, width = picture.shape[:2]
    if width % 2 or height % 2:
        raise ValueError(f"a Bayer picture needs even sides, not {width}x{height}")
    layout = DNG()
    raw_strip = _pack12(_mosaic(picture))
    raw = dngIFD()
    raw_offsets = dngTag(Tag.StripOffsets, [0])
    raw.tags += [
        dngTag(Tag.NewSubfileType, [0]),
        dngTag(Tag.ImageWidth, [width]),
        dngTag(Tag.ImageLength, [height]),
        dngTag(Tag.BitsPerSample, [BITS]),
        dngTag(Tag.Compression, [1]),
        dngTag(Tag.PhotometricInterpretation, [32803]),  # CFA
        dngTag(Tag.SamplesPerPixel, [1]),
        dngTag(Tag.RowsPerStrip, [height]),
        raw_offsets,
        dngTag(Tag.StripByteCounts, [len(raw_strip)]),
        dngTag(Tag.CFARepeatPatternDim, [2, 2]),
        dngTag(Tag.CFAPattern, CFAPattern.RGGB),
        dngTag(Tag.BlackLevel, [0]),
        dngTag(Tag.WhiteLevel, [WHITE]),
    ]
    offsets = [(raw_offsets, raw_strip)]
    if preview is None:
        main = raw
    else:
        shown = picture if preview_of is None else preview_of
        preview_strip, preview_tags = _preview(shown, preview, preview_side, preview_exif)
        main = dngIFD()
        preview_offsets = dngTag(Tag.StripOffsets, [0])
        main.tags += preview_tags + [preview_offsets, dngTag(Tag.StripByteCounts, [len(preview_strip)])]
        main.tags.append(_pointer_tag(Tag.SubIFD, raw))
        offsets.insert(0, (preview_offsets, preview_strip))
    if dng:
        main.tags += [dngTag(Tag.DNGVersion, DNGVersion.V1_4), dngTag(Tag.DNGBackwardVersion, DNGVersion.V1_2)]
    main.tags += [
        dngTag(Tag.Make, make),
        dngTag(Tag.Model, "generated Bayer"),
        dngTag(Tag.UniqueCameraModel, "eat-curate generated Bayer"),
        dngTag(Tag.Orientation, [orientation]),
        dngTag(Tag.ColorMatrix1, [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]),
        dngTag(Tag.CalibrationIlluminant1, [21]),  # D65
        dngTag(Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
    ]
    if captured_at is not None and captured_tag == "DateTime":
        main.tags.append(dngTag(Tag.DateTime, captured_at.strftime("%Y:%m:%d %H:%M:%S")))
    elif captured_at is not None:
        exif = dngIFD()
        exif.tags.append(dngTag(getattr(Tag, captured_tag), captured_at.strftime("%Y:%m:%d %H:%M:%S")))
        main.tags.append(_pointer_tag(Tag.EXIF_IFD, exif))
    for _, strip in offsets:
        layout.ImageDataStrips.append(strip)
    layout.IFDs.append(main)
    buffer = bytearray(layout.dataLen())  # lays the strips out: their offsets are known from here on
    for index, (tag, _) in enumerate(offsets):
        tag.setValue([layout.StripOffsets[index]])
    layout.setBuffer(buffer)
    layout.write()
    return bytes(buffer)


def marked_picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A picture whose orientation can be read back: a bright block in the top-left quarter over a gradient."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grey = 40 + 120 * xx / width + 40 * yy / height
    grey[: height // 4, : width // 4] = 250
    picture = np.stack([grey, grey * 0.9, grey * 0.8], axis=-1) + rng.normal(0, 4, (height, width, 3))
    return np.clip(picture, 0, 255).astype(np.uint8)


def _mosaic(picture: np.ndarray) -> np.ndarray:
    """RGGB samples of ``picture``, linearised (gamma 2.2) and scaled to 12 bits."""
    linear = (picture.astype(np.float32) / 255.0) ** 2.2 * WHITE
    bayer = np.empty(picture.shape[:2], dtype=np.uint16)
    bayer[0::2, 0::2] = linear[0::2, 0::2, 0]
    bayer[0::2, 1::2] = linear[0::2, 1::2, 1]
    bayer[1::2, 0::2] = linear[1::2, 0::2, 1]
    bayer[1::2, 1::2] = linear[1::2, 1::2, 2]
    return bayer


def _pack12(bayer: np.ndarray) -> bytes:
    from pidng.packing import pack12

    return pack12(bayer).tobytes()


def _preview(picture: np.ndarray, kind: str, side: int, exif: Image.Exif | None) -> tuple[bytes, list]:
    from pidng.dng import Tag, dngTag

    image = Image.fromarray(picture)
    image = image.resize(_scaled(image.size, side), Image.Resampling.BILINEAR)
    width, height = image.size
    if kind == "jpeg":
        encoded = io.BytesIO()
        image.save(encoded, "JPEG", quality=90, **({"exif": exif} if exif is not None else {}))
        strip = encoded.getvalue() if exif is None else _without_jfif(encoded.getvalue())
        compression, photometric = 7, 6  # JPEG, YCbCr
    elif kind == "bitmap":
        strip, compression, photometric = image.tobytes(), 1, 2  # uncompressed RGB
    else:
        raise ValueError(f"preview must be 'jpeg' or 'bitmap', not {kind!r}")
    tags = [
        dngTag(Tag.NewSubfileType, [1]),  # a reduced-resolution copy
        dngTag(Tag.ImageWidth, [width]),
        dngTag(Tag.ImageLength, [height]),
        dngTag(Tag.BitsPerSample, [8, 8, 8]),
        dngTag(Tag.Compression, [compression]),
        dngTag(Tag.PhotometricInterpretation, [photometric]),
        dngTag(Tag.SamplesPerPixel, [3]),
        dngTag(Tag.RowsPerStrip, [height]),
    ]
    return strip, tags


def _without_jfif(jpeg: bytes) -> bytes:
    """``jpeg`` without Pillow's JFIF segment, so its EXIF comes right after the start marker, as cameras put it.

    (LibRaw keeps a preview's EXIF only there; elsewhere it writes its own header in front.)
    """
    if jpeg[2:4] != b"\xff\xe0":
        return jpeg
    length = int.from_bytes(jpeg[4:6], "big")
    return jpeg[:2] + jpeg[4 + length :]


def _scaled(size: tuple[int, int], side: int) -> tuple[int, int]:
    scale = side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _pointer_tag(tag: tuple, directory):
    """A pointer tag (SubIFD, EXIF IFD) to ``directory``, laid out in its parent's data area as pidng means to."""
    return _pointer_tag_class()(tag, [directory])


@functools.cache
def _pointer_tag_class() -> type:
    from pidng.dng import dngTag

    class PointerTag(dngTag):
        def setValue(self, value):  # pidng's own sets a str, then appends bytes to it
            self.Value = b"\x00\x00\x00\x00"
            self.subIFD = value[0]

    return PointerTag
