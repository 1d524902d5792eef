"""Which files are images: by extension, and by the magic bytes at their start.

Shared by the folder walk (which files become items) and the decoder (to tell
"an image format we cannot decode here" from "not an image at all").
"""

from __future__ import annotations

# Extensions listed without reading the file. Lower case, with the dot.
IMAGE_EXTENSIONS = frozenset(
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

# Files the walk skips without reading their first bytes: photo folders are full
# of sidecars and videos, and opening each of them (on a network share, too)
# to sniff would cost more than the images. Camera RAW files are skipped as
# well: Pillow cannot develop them, and their JPEG siblings are what gets scored.
NOT_IMAGE_EXTENSIONS = frozenset(
    {
        ".xmp", ".json", ".txt", ".md", ".xml", ".csv", ".db", ".ini", ".aae", ".thm", ".pp3", ".dop",
        ".mp4", ".mov", ".m4v", ".avi", ".mkv", ".mts", ".m2ts", ".3gp", ".wav", ".mp3", ".aac",
        ".pdf", ".zip", ".gz", ".parquet",
        ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
        ".pef", ".dng", ".srw", ".x3f", ".3fr", ".iiq", ".erf", ".kdc", ".mrw", ".rwl",
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



def has_image_extension(name: str) -> bool:
    return _suffix(name) in IMAGE_EXTENSIONS


def has_non_image_extension(name: str) -> bool:
    return _suffix(name) in NOT_IMAGE_EXTENSIONS


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""
