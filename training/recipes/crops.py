"""Crops of a source photograph: the rectangle a training picture is cut from.

A :class:`Crop` is a rectangle of a source picture, possibly rotated and
mirrored. Its coordinates are in units of the source's short side (the
source spans ``[0, width/short] x [0, height/short]``), so a crop means the
same region whatever resolution the source was decoded at, and rotating it
keeps its shape.

Rendering rotates at the source's own resolution and only then scales down
(with Pillow's antialiased resize): a tilted crop is exactly as sharp as an
upright one of the same size, so a model cannot tell tilt by softness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageOps

# How far outside the source a crop may reach, in short-side units: float rounding only.
_FIT_TOLERANCE = 1e-6
# Pillow first shrinks by whole factors while the image is over this many times the target:
# much faster, and indistinguishable from a direct resize at this gap.
_REDUCING_GAP = 3.0
# Room a rotated crop keeps from the source's edges (short-side units): the resize filter
# around its corners then sees only the photo (~4 source pixels at 256 px, 1024 px sources).
ROTATION_MARGIN = 0.015


@dataclass(frozen=True)
class Crop:
    cx: float  # centre, in units of the source's short side
    cy: float
    width: float
    height: float
    angle: float = 0.0  # degrees, counter-clockwise: the crop is the source rotated by this much
    mirrored: bool = False

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def corners(self) -> np.ndarray:
        """(4, 2) corners (x, y) in source units, rotated about the centre."""
        half_w, half_h = self.width / 2, self.height / 2
        local = np.array([[-half_w, -half_h], [half_w, -half_h], [half_w, half_h], [-half_w, half_h]])
        turn = math.radians(self.angle)
        rotation = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
        return local @ rotation.T + np.array([self.cx, self.cy])


def source_extent(size: tuple[int, int]) -> tuple[float, float]:
    """A source's (width, height) in short-side units: one of them is 1."""
    width, height = size
    short = min(width, height)
    return width / short, height / short


def full_frame(size: tuple[int, int]) -> Crop:
    extent_w, extent_h = source_extent(size)
    return Crop(extent_w / 2, extent_h / 2, extent_w, extent_h)


def fits(crop: Crop, size: tuple[int, int]) -> bool:
    """True when every corner of ``crop`` lies inside the source."""
    extent_w, extent_h = source_extent(size)
    corners = crop.corners()
    return bool(
        (corners[:, 0] >= -_FIT_TOLERANCE).all()
        and (corners[:, 0] <= extent_w + _FIT_TOLERANCE).all()
        and (corners[:, 1] >= -_FIT_TOLERANCE).all()
        and (corners[:, 1] <= extent_h + _FIT_TOLERANCE).all()
    )


def rotated(crop: Crop, angle: float, size: tuple[int, int]) -> Crop:
    """``crop`` turned by ``angle`` degrees about its centre, shrunk (same centre) just enough to fit.

    A tilted photo is judged against its upright self at the same centre and,
    where the source allows, the same size. The fit keeps :data:`ROTATION_MARGIN`
    from the source's edges, so rendering never reaches past them.
    """
    extent_w, extent_h = source_extent(size)
    turned = replace(crop, angle=crop.angle + angle)
    turn = math.radians(turned.angle)
    cos, sin = abs(math.cos(turn)), abs(math.sin(turn))
    reach_x = (crop.width * cos + crop.height * sin) / 2  # half the rotated rectangle's bounding box
    reach_y = (crop.width * sin + crop.height * cos) / 2
    room_x = min(crop.cx, extent_w - crop.cx) - ROTATION_MARGIN
    room_y = min(crop.cy, extent_h - crop.cy) - ROTATION_MARGIN
    scale = min(1.0, room_x / reach_x, room_y / reach_y)
    return replace(turned, width=crop.width * scale, height=crop.height * scale)


def sub_crop(crop: Crop, fraction: float, toward: tuple[float, float]) -> Crop:
    """A part of ``crop``, ``fraction`` of its width and height, pushed toward an edge or a corner.

    ``toward`` is (x, y) in [-1, 1] in the crop's own frame: (-1, -1) is the
    top-left corner, (1, 0) the right edge, (0, 0) the centre.
    """
    width, height = crop.width * fraction, crop.height * fraction
    shift_x = toward[0] * (crop.width - width) / 2
    shift_y = toward[1] * (crop.height - height) / 2
    if crop.mirrored:
        shift_x = -shift_x  # `toward` is as the crop is seen, after mirroring
    turn = math.radians(crop.angle)
    dx = shift_x * math.cos(turn) - shift_y * math.sin(turn)
    dy = shift_x * math.sin(turn) + shift_y * math.cos(turn)
    return replace(crop, cx=crop.cx + dx, cy=crop.cy + dy, width=width, height=height)


def output_size(crop: Crop, short_side: int) -> tuple[int, int]:
    """(width, height) in pixels of ``crop`` rendered with ``short_side`` pixels on its short side."""
    if crop.width >= crop.height:
        return max(short_side, round(short_side * crop.aspect)), short_side
    return short_side, max(short_side, round(short_side / crop.aspect))


def render(source: Image.Image, crop: Crop, short_side: int) -> Image.Image:
    """The pixels of ``crop`` as an RGB image with ``short_side`` pixels on its short side."""
    size = output_size(crop, short_side)
    image = _render_upright(source, crop, size) if crop.angle == 0 else _render_rotated(source, crop, size)
    return ImageOps.mirror(image) if crop.mirrored else image


def _render_upright(source: Image.Image, crop: Crop, size: tuple[int, int]) -> Image.Image:
    unit = min(source.size)  # pixels per short-side unit
    cx, cy = crop.cx * unit, crop.cy * unit
    half_w, half_h = crop.width * unit / 2, crop.height * unit / 2
    # Clamped: a crop flush with the photo's edge may overshoot it by float rounding.
    box = (max(0.0, cx - half_w), max(0.0, cy - half_h), min(source.width, cx + half_w), min(source.height, cy + half_h))
    return source.resize(size, Image.Resampling.BICUBIC, box=box, reducing_gap=_REDUCING_GAP)


def _render_rotated(source: Image.Image, crop: Crop, size: tuple[int, int]) -> Image.Image:
    """Cut the rotated rectangle's bounding box, turn it upright, then scale the upright rectangle down.

    The patch is first averaged down to no less than twice the output's
    resolution: rotating there is as sharp after the final scaling, and much
    cheaper than at full size.
    """
    unit = min(source.size)
    cx, cy = crop.cx * unit, crop.cy * unit
    half_w, half_h = crop.width * unit / 2, crop.height * unit / 2
    corners = crop.corners() * unit
    # The resize filter reaches ~2 output pixels beyond the rectangle; keep all of that
    # inside the patch, or the corners would blend in the rotation's black fill.
    margin = math.ceil(3 * (2 * half_h) / size[1]) + 2
    left = max(0, math.floor(corners[:, 0].min()) - margin)
    top = max(0, math.floor(corners[:, 1].min()) - margin)
    right = min(source.width, math.ceil(corners[:, 0].max()) + margin)
    bottom = min(source.height, math.ceil(corners[:, 1].max()) + margin)
    patch = source.crop((left, top, right, bottom))
    factor = max(1, int(min(half_w, half_h) / min(size)))
    if factor > 1:
        patch = patch.reduce(factor)
    centre = ((cx - left) / factor, (cy - top) / factor)
    half_w, half_h = half_w / factor, half_h / factor
    upright = patch.rotate(crop.angle, resample=Image.Resampling.BICUBIC, center=centre)
    box = (centre[0] - half_w, centre[1] - half_h, centre[0] + half_w, centre[1] + half_h)
    return upright.resize(size, Image.Resampling.BICUBIC, box=box, reducing_gap=_REDUCING_GAP)
