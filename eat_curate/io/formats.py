"""Which files are images: by extension, and by the magic bytes at their start.

Shared by the folder walk (which files become items) and the decoder (to tell
"an image format we cannot decode here" from "not an image at all"). Camera
RAW files are images too: found by extension, and by their first bytes where
a maker's signature is reliable (:func:`sniff_raw_signature`); the TIFF-based
ones need a look at their tags (:mod:`eat_curate.io.raw_probe`).
"""

from __future__ import annotations

import codecs

# Camera RAW extensions (LibRaw reads them all): the common ones first, then older or rarer families.
RAW_EXTENSIONS = frozenset(
    {
        ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
        ".pef", ".dng", ".srw", ".3fr", ".iiq", ".kdc", ".x3f",
        ".crw", ".dcr", ".erf", ".fff", ".mef", ".mos", ".mrw", ".rwl",
    }
)  # fmt: skip

# Ordinary pictures (Pillow's formats and those a plugin adds). Lower case, with the dot.
PICTURE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".jif", ".pjpeg", ".pjp",
        ".png", ".apng",
        ".webp",
        ".gif",
        ".bmp", ".dib",
        ".tif", ".tiff",
        ".heic", ".heif", ".hif",
        ".avif",
        ".jp2", ".j2k", ".jpx",
        ".jxl",
    }
)  # fmt: skip
# Extensions listed without reading the file.
IMAGE_EXTENSIONS = PICTURE_EXTENSIONS | RAW_EXTENSIONS

# Files the walk skips without reading their first bytes: photo folders are full
# of sidecars and videos, and opening each of them (on a network share, too)
# to sniff would cost more than the images.
NOT_IMAGE_EXTENSIONS = frozenset(
    {
        ".xmp", ".json", ".txt", ".md", ".xml", ".csv", ".db", ".ini", ".aae", ".thm", ".pp3", ".dop",
        ".mp4", ".mov", ".m4v", ".avi", ".mkv", ".mts", ".m2ts", ".3gp", ".wav", ".mp3", ".aac",
        ".pdf", ".zip", ".gz", ".parquet",
    }
)  # fmt: skip

SNIFF_BYTES = 32  # enough for every signature below

# ISO-BMFF (`ftyp` box) brands of still images; video brands (isom, mp42, qt) are not images.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
# "BM" alone is too common a start for text; the DIB header size after it pins BMP down.
_BMP_HEADER_SIZES = {size.to_bytes(4, "little") for size in (12, 40, 52, 56, 64, 108, 124)}


def sniff_format(head: bytes) -> str | None:
    """The image format the first bytes announce (a Pillow-style name), or None.

    Names: JPEG, PNG, GIF, BMP, TIFF, WEBP, HEIF, AVIF, JPEG2000, JXL. Only
    the signature is checked: a file that starts right may still be corrupt.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head.startswith(b"BM") and len(head) >= 18 and head[14:18] in _BMP_HEADER_SIZES:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIF"
        return None
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "JPEG2000"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "JXL"
    return None


def sniff_raw_signature(head: bytes) -> str | None:
    """The camera RAW format a maker's signature in the first bytes names (CR2, CR3, RAF, ...), or None.

    Only the formats with a signature of their own; NEF, ARW, PEF, DNG and the
    other TIFF-based ones start like any TIFF (see :mod:`eat_curate.io.raw_probe`).
    """
    if head.startswith(b"II*\x00") and head[8:11] == b"CR\x02":
        return "CR2"
    if head[4:12] == b"ftypcrx ":
        return "CR3"
    if head[:2] == b"II" and head[6:14] == b"HEAPCCDR":
        return "CRW"
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return "RAF"
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR"):
        return "ORF"
    if head.startswith(b"IIU\x00"):
        return "RW2"
    if head.startswith(b"FOVb"):
        return "X3F"
    if head.startswith(b"\x00MRM"):
        return "MRW"
    if head[:2] in (b"II", b"MM") and (b"IIII" in head or b"MMMM" in head):  # Phase One's block (LibRaw looks alike)
        return "IIQ"
    return None


def looks_like_text(head: bytes) -> bool:
    """Whether ``head`` reads as printable UTF-8 text (a text file named like an image)."""
    try:  # incremental: a character cut at the end of `head` is not an error
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return bool(text) and all(char.isprintable() or char in "\r\n\t" for char in text)


def has_image_extension(name: str) -> bool:
    """Named like an image: an ordinary picture or a camera RAW."""
    return _suffix(name) in IMAGE_EXTENSIONS


def raw_format_of_name(name: str) -> str | None:
    """The RAW format a name's extension says ("IMG_1.CR2" -> "CR2"), or None."""
    suffix = _suffix(name)
    return suffix[1:].upper() if suffix in RAW_EXTENSIONS else None


def has_non_image_extension(name: str) -> bool:
    return _suffix(name) in NOT_IMAGE_EXTENSIONS


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""
