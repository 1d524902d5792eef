"""The two EXIF facts the pipeline uses: orientation and when the photo was taken.

Cameras write EXIF, and some write it badly: an unreadable EXIF block or a
nonsense value counts as absent, never as a broken image.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from PIL import ExifTags, Image

# EXIF orientation -> the transpose that displays the picture upright (EXIF 2.32, tag 0x0112).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
QUARTER_TURNS = frozenset({5, 6, 7, 8})  # orientations that swap width and height


@dataclass(frozen=True)
class ExifFacts:
    orientation: int = 1  # 1..8; 1 = stored upright
    captured_at: datetime | None = None  # DateTimeOriginal, naive local time as the camera recorded it
    has_orientation: bool = False  # the tag is there (1 included): a RAW's preview that says so needs no other turn

    @property
    def swaps_sides(self) -> bool:
        return self.orientation in QUARTER_TURNS


def read_exif(image: Image.Image) -> ExifFacts:
    try:
        exif = image.getexif()
        orientation = exif.get(ExifTags.Base.Orientation)
        taken = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal)
    except Exception:  # a corrupt EXIF block: the picture itself may be fine
        return ExifFacts()
    return ExifFacts(
        orientation=orientation if orientation in _UPRIGHT else 1,
        captured_at=parse_exif_datetime(taken),
        has_orientation=orientation == 1 or orientation in _UPRIGHT,
    )


def parse_exif_datetime(value: object) -> datetime | None:
    """EXIF's "YYYY:MM:DD HH:MM:SS" (NUL-padded, sometimes with dashes) as a naive datetime."""
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str):
        return None
    text = value.strip("\x00 \t")[:19]
    for layout in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    return None  # absent, blank ("    :  :  ") or zero ("0000:00:00 00:00:00")


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` turned the way EXIF ``orientation`` says it is meant to be seen."""
    method = _UPRIGHT.get(orientation)
    return image.transpose(method) if method is not None else image
