"""Any Pillow image mode to 8-bit RGB, the one input the model takes.

Transparent pixels are composited on white: photos with alpha are mostly
cut-outs and logos shown on white pages, and black would read as a dark,
heavy picture. 16-bit and float images are scaled to 8 bits, not clipped
(Pillow's own ``convert`` clips 16-bit values, which turns them white).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

BACKGROUND = (255, 255, 255)

_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_UINT16_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


def has_transparency(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as RGB: alpha composited on white, high bit depths scaled to 8 bits.

    Raises ValueError for a mode Pillow cannot convert.
    """
    if image.mode in _UINT16_MODES or image.mode in ("I", "F"):
        return Image.fromarray(_to_uint8(image)).convert("RGB")
    if has_transparency(image):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "RGB":
        return image
    return image.convert("RGB")


def _to_uint8(image: Image.Image) -> np.ndarray:
    """Greyscale uint8 of a 16-bit, 32-bit integer or float image."""
    values = np.asarray(image)
    if image.mode in _UINT16_MODES:
        return (values.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if image.mode == "I":
        # 32-bit integers: 8-bit data stored wide stays as is; anything larger is taken as 16-bit.
        peak = 255 if values.size == 0 or values.max() <= 255 else 65535
        return (np.clip(values, 0, peak).astype(np.int64) * 255 // peak).astype(np.uint8)
    with np.errstate(over="ignore", invalid="ignore"):  # corrupt files hold NaNs and absurd values
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        # Float images are nearly always 0..1; those that are not are read as 0..255.
        scale = 255.0 if values.size == 0 or values.max() <= 1.0 else 1.0
        return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
