"""Which decoder takes an image on the GPU path: a fixed rule, read from the file's header.

The device (nvJPEG) takes whole baseline JPEGs: sequential Huffman-coded
DCT (SOF0/SOF1), 8-bit samples, YCbCr or greyscale. Everything else goes to
the CPU decoders: progressive and arithmetic-coded JPEGs, CMYK/YCCK, 12-bit,
other formats, files whose header cannot be read, and JPEGs that stop before
their end-of-image marker (a truncated file: the CPU decoder says so, where
nvJPEG might hand back a grey-filled picture).

The rule reads only the bytes of the image itself, so an image's decoder,
hence its pixels and record, never depend on timing or on the other images
of its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from eat_curate.io.decode import ImageHeader

DEVICE_MODES = ("RGB", "L")  # Pillow's modes of YCbCr and greyscale JPEGs; CMYK/YCCK are "CMYK"
BASELINE_FRAMES = (0xC0, 0xC1)  # SOF0 baseline, SOF1 extended sequential: Huffman-coded DCT
# Start-of-frame markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
START_OF_SCAN, END_OF_IMAGE = 0xDA, 0xD9
STANDALONE_MARKERS = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})  # TEM, SOI, RSTn: no length field


@dataclass(frozen=True)
class JpegFrame:
    """What a JPEG's frame header and its segments before the first scan say."""

    marker: int  # the SOFn marker: 0xC0 baseline, 0xC2 progressive, ...
    precision: int  # bits per sample
    components: int  # 1 greyscale, 3 YCbCr (or RGB), 4 CMYK/YCCK
    scan_start: int  # offset of the first start-of-scan marker


def jpeg_frame(data: bytes) -> JpegFrame | None:
    """The frame of the JPEG in ``data``, read from its segments up to the first scan; None if it has none.

    Walks the marker segments (a few, each skipped by its length: no pixel
    data is read) and stops at the first scan.
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    frame: tuple[int, int, int] | None = None
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None  # not at a marker: a broken file
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in STANDALONE_MARKERS:
            position += 2
            continue
        if marker == START_OF_SCAN:
            return JpegFrame(*frame, scan_start=position) if frame else None
        if marker == END_OF_IMAGE:
            return None
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in FRAME_MARKERS:
            if frame is not None or position + 10 > len(data):
                return None  # a second frame (hierarchical JPEG) or a cut header
            frame = (marker, data[position + 4], data[position + 9])
        position += 2 + length
    return None


def ends_whole(data: bytes, frame: JpegFrame) -> bool:
    """The JPEG's end-of-image marker follows its first scan (the file is not cut short).

    Inside entropy-coded data a 0xFF byte is always followed by 0x00 or a
    restart marker, so an FFD9 after the scan's start is the end of the
    image; one before it (an EXIF thumbnail's) does not count. Bytes after it
    (a phone's appended video) do not matter.
    """
    return data.rfind(b"\xff\xd9") > frame.scan_start


def decodes_on_device(header: ImageHeader, data: bytes) -> bool:
    """Whether the GPU path's device decoder takes this image (see the module's rule); else the CPU does."""
    facts = header.facts
    if not facts.ok or facts.format != "JPEG" or header.mode not in DEVICE_MODES:
        return False
    frame = jpeg_frame(data)
    return (
        frame is not None
        and frame.marker in BASELINE_FRAMES
        and frame.precision == 8
        and frame.components in (1, 3)
        and ends_whole(data, frame)
    )
