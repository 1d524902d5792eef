"""What a camera RAW's bytes say before LibRaw reads them: which format, when taken, how long it should be.

Pure Python, no rawpy: the decoder asks :func:`identify_raw` about every
input, so it must be cheap and must not need the extra.

Which format (:func:`identify_raw`), by content first:

- a maker's signature in the first bytes: CR2, CR3, CRW, RAF, ORF, RW2,
  X3F, MRW, IIQ (:func:`~eat_curate.io.formats.sniff_raw_signature`);
- TIFF-structured data with a ``DNGVersion`` tag in IFD0: DNG;
- TIFF-structured data with a colour-filter-array image (Photometric CFA or
  LinearRaw, or TIFF-EP's CFA pattern tags) in IFD0, a chained IFD or a
  SubIFD: a camera RAW, named by its maker (NIKON: NEF, SONY: ARW, ...; an
  unknown maker: "RAW"). An ordinary TIFF, even one exported from a RAW and
  carrying the camera's Make, has no CFA image, so it stays a TIFF;
- else, when the content is TIFF-structured or unknown (and not text), a
  file named with a RAW extension (KDC, SRF and others without a reliable
  signature, or a RAW whose SubIFDs were cut off): LibRaw then accepts or
  refuses it.

A JPEG or PNG named ``.NEF`` is decoded as what it is, and so is text (not
an image). The name is only a hint: callers without one (GPU decoding,
embedded manifest bytes) still find every RAW that its content shows.

When taken (:func:`capture_time`): EXIF ``DateTimeOriginal`` from the RAW's
own TIFF structure (IFD0's EXIF IFD; ORF and RW2 included). Other formats
(CR3, RAF, X3F) get theirs from LibRaw (:mod:`eat_curate.io.raw`).

How long it should be (:func:`declared_length`): the end of the last strip
or tile a TIFF-structured RAW declares, or of the last top-level box of an
ISO-BMFF one (CR3). A shorter file is truncated, even when its preview,
near the start, is whole.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from eat_curate.io.exif import parse_exif_datetime
from eat_curate.io.formats import SNIFF_BYTES, looks_like_text, raw_format_of_name, sniff_format, sniff_raw_signature
from eat_curate.io.tiff_ifd import EXIF_IFD, Directory, TiffError, TiffFile

_MAKE = 271
_PHOTOMETRIC = 262
_CFA_PHOTOMETRICS = {32803, 34892}  # CFA (Bayer and the like), LinearRaw (DNG from demosaiced sensors)
_TIFF_EP_CFA_TAGS = {33421, 33422}  # CFARepeatPatternDim, CFAPattern (TIFF-EP, in an image directory)
_DNG_VERSION = 50706
_DATE_TIME_ORIGINAL = 36867
# (offsets tag, byte counts tag) of the data a directory points at: strips, tiles, an embedded JPEG.
_DATA_TAGS = ((273, 279), (324, 325), (513, 514))

# Maker (IFD0 Make, upper case, by prefix) -> the RAW family its TIFF-based files belong to.
_FORMAT_OF_MAKER = {
    "NIKON": "NEF",
    "SONY": "ARW",
    "PENTAX": "PEF",
    "RICOH": "PEF",
    "SAMSUNG": "SRW",
    "HASSELBLAD": "3FR",
    "PHASE ONE": "IIQ",
    "EASTMAN KODAK": "KDC",
    "KODAK": "KDC",
    "CANON": "CR2",
    "OLYMPUS": "ORF",
    "PANASONIC": "RW2",
    "LEICA": "RWL",
    "EPSON": "ERF",
    "MAMIYA": "MEF",
    "LEAF": "MOS",
}


@dataclass(frozen=True)
class RawIdentity:
    format: str  # DNG, CR2, NEF, ... ("RAW" for a CFA TIFF by an unknown maker)
    by_content: bool  # False: only the file name says RAW (the content is not a known image format)


def identify_raw(data: bytes, name: str | None = None) -> RawIdentity | None:
    """The camera RAW ``data`` holds, or None for anything to decode as an ordinary image."""
    head = data[:SNIFF_BYTES]
    announced = sniff_format(head)
    if announced not in (None, "TIFF"):
        return None
    found = sniff_raw_signature(head) or (_tiff_raw_format(data) if announced == "TIFF" else None)
    if found:
        return RawIdentity(found, by_content=True)
    named = raw_format_of_name(name) if name else None
    if named and not looks_like_text(data[:512]):
        return RawIdentity(named, by_content=False)
    return None


def capture_time(data: bytes) -> datetime | None:
    """EXIF DateTimeOriginal from the RAW's own TIFF structure; None when absent or not TIFF-structured."""
    tiff = _tiff_or_none(data)
    if tiff is None:
        return None
    try:
        directories = tiff.directories()
        exif = tiff.directory_at(EXIF_IFD, directories[0]) if directories else None
        return parse_exif_datetime(tiff.text(exif.get(_DATE_TIME_ORIGINAL))) if exif else None
    except TiffError:
        return None


def declared_length(data: bytes) -> int | None:
    """The length the RAW's structure declares (TIFF strips and tiles, ISO-BMFF boxes); None if unknown."""
    if data[4:8] == b"ftyp":
        return _boxes_end(data)
    tiff = _tiff_or_none(data)
    if tiff is None:
        return None
    ends = [0]
    for directory in tiff.directories():
        for offsets_tag, counts_tag in _DATA_TAGS:
            try:
                offsets, counts = tiff.integers(directory.get(offsets_tag)), tiff.integers(directory.get(counts_tag))
            except TiffError:
                continue
            # Without byte counts (RW2 keeps only offsets) the data at least starts before the end.
            ends.extend(offset + count for offset, count in zip(offsets, counts or [1] * len(offsets)))
    return max(ends) or None


def _tiff_raw_format(data: bytes) -> str | None:
    tiff = _tiff_or_none(data)
    if tiff is None:
        return None
    directories = tiff.directories()
    if not directories:
        return None
    if _DNG_VERSION in directories[0]:
        return "DNG"
    if not any(_holds_cfa_image(tiff, directory) for directory in directories):
        return None
    try:
        make = (tiff.text(directories[0].get(_MAKE)) or "").upper()
    except TiffError:
        make = ""
    return next((family for maker, family in _FORMAT_OF_MAKER.items() if make.startswith(maker)), "RAW")


def _holds_cfa_image(tiff: TiffFile, directory: Directory) -> bool:
    try:
        photometric = tiff.integers(directory.get(_PHOTOMETRIC))
    except TiffError:
        photometric = []
    return bool(_CFA_PHOTOMETRICS.intersection(photometric)) or bool(_TIFF_EP_CFA_TAGS.intersection(directory))


def _tiff_or_none(data: bytes) -> TiffFile | None:
    try:
        return TiffFile(data)
    except TiffError:
        return None


def _boxes_end(data: bytes) -> int | None:
    """Where the last top-level ISO-BMFF box ends (past len(data) when the file is cut short)."""
    at = 0
    while at + 8 <= len(data):
        (size,) = struct.unpack(">I", data[at : at + 4])
        if size == 1:  # a 64-bit size follows the type
            if at + 16 > len(data):
                return at + 16
            (size,) = struct.unpack(">Q", data[at + 8 : at + 16])
        elif size == 0:  # the box runs to the end of the file
            return len(data)
        if size < 8:
            return None  # not boxes after all: no claim
        at += size
    return at if at >= len(data) else at + 8  # a box header cut in two counts as cut short
