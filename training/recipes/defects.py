"""Controlled defects at graded strengths: the generator behind the built-in model's training data.

Each defect takes a strength in [0, 1]: 0 leaves the picture untouched, 1 is
the strongest version trained on (a photo anyone would discard). Strength is
mapped to a physical amount per defect (:data:`DEFECTS` says which), chosen so
that equal strengths look about equally bad at the 224-pixel view a model
sees. Everything random (a noise field, a blur direction, a cast's hue, a
crop's corner) comes from the seed: the same (picture, defects, seed) always
gives the same pixels.

Two kinds of defect:

- **framing** defects (tilt, off-subject crop) change which rectangle of the
  source is cut out (:mod:`training.recipes.crops`), so they are applied before the
  view is rendered;
- **pixel** defects act on the rendered picture, in the order a camera and
  its software would cause them: optics (blur), then tone and colour, then
  sensor noise, then compression.

Pixel defects work on float RGB in [0, 1]; exposure works in linear light.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from eat_curate.errors import EatCurateError
from training.recipes.crops import Crop, render, rotated, sub_crop

GAMMA = 2.2  # sRGB is close enough to a 2.2 power law for exposure changes
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class DegradationError(EatCurateError):
    """An unknown defect or a strength outside [0, 1]."""


@dataclass(frozen=True)
class Defect:
    """One defect at one strength."""

    name: str
    strength: float

    def __post_init__(self) -> None:
        if self.name not in DEFECTS:
            raise DegradationError(f"unknown defect {self.name!r}; known defects: {', '.join(DEFECTS)}")
        if not 0.0 <= self.strength <= 1.0:
            raise DegradationError(f"defect {self.name}: strength {self.strength} is not in [0, 1]")


# --- pixel defects: (H, W, 3) float32 in [0, 1] -> same -----------------------------


def _to_linear(pixels: np.ndarray) -> np.ndarray:
    # Filters leave values a rounding error outside [0, 1]; a negative base would give NaN.
    return np.power(np.clip(pixels, 0.0, 1.0), GAMMA)


def _from_linear(pixels: np.ndarray) -> np.ndarray:
    return np.power(np.clip(pixels, 0.0, 1.0), 1.0 / GAMMA)


def gaussian_blur(pixels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Out of focus: a Gaussian of sigma up to 3.5 px (short side 256)."""
    return gaussian_filter(pixels, sigma=(3.5 * strength, 3.5 * strength, 0), mode="reflect")


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line of ``length`` pixels at ``angle`` radians, drawn with sub-pixel splats."""
    size = 2 * math.ceil(length / 2) + 1
    kernel = np.zeros((size, size), dtype=np.float64)
    centre = size // 2
    steps = max(2, int(length * 8))
    for t in np.linspace(-length / 2, length / 2, steps):
        x, y = centre + t * math.cos(angle), centre + t * math.sin(angle)
        x0, y0 = math.floor(x), math.floor(y)
        fx, fy = x - x0, y - y0
        for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= x0 + dx < size and 0 <= y0 + dy < size:
                kernel[y0 + dy, x0 + dx] += weight
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(pixels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Camera shake: a straight streak of up to 20 px in a seeded direction."""
    kernel = motion_kernel(1.0 + 19.0 * strength, rng.uniform(0, math.pi))
    pad = kernel.shape[0] // 2
    padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    blurred = fftconvolve(padded, kernel[:, :, None], mode="valid")
    return np.clip(blurred, 0.0, 1.0).astype(np.float32)  # the FFT's rounding strays slightly outside


def sensor_noise(pixels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """High-ISO noise: shot noise growing with brightness plus read noise, per channel (so also chroma).

    At full strength the noise's standard deviation is about 0.12 at mid-grey.
    """
    linear = _to_linear(pixels)
    sigma = strength * np.sqrt(0.03 * linear + 0.04**2)
    noisy = linear + sigma * rng.standard_normal(pixels.shape, dtype=np.float32)
    return _from_linear(noisy)


def underexposure(pixels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Too dark: up to 3.5 stops less light."""
    return _from_linear(_to_linear(pixels) * 2.0 ** (-3.5 * strength))


def overexposure(pixels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Too bright: up to 2.5 stops more light, highlights clipped."""
    return _from_linear(_to_linear(pixels) * 2.0 ** (2.5 * strength))


def low_contrast(pixels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Haze or a flat scan: the tonal range squeezed toward mid-grey, to 25% at full strength."""
    keep = 1.0 - 0.75 * strength
    haze = 0.55 + 0.1 * float(pixels.mean())
    return pixels * keep + haze * (1.0 - keep)


def colour_cast(pixels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Wrong white balance: channel gains along a seeded hue, brightness kept."""
    hue = rng.uniform(0, 2 * math.pi)
    # Two chroma directions orthogonal to grey: red-vs-blue and green-vs-magenta.
    direction = math.cos(hue) * np.array([1.0, 0.0, -1.0]) + math.sin(hue) * np.array([-0.5, 1.0, -0.5])
    gains = np.exp(1.0 * strength * direction).astype(np.float32)
    gains /= float(_LUMA @ gains)
    return _from_linear(_to_linear(pixels) * gains)


def oversaturation(pixels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Garish colour: chroma (distance from grey) multiplied by up to 3.5."""
    luma = (pixels @ _LUMA)[..., None]
    return np.clip(luma + (pixels - luma) * (1.0 + 2.5 * strength), 0.0, 1.0)


def jpeg_quality(strength: float) -> int:
    """JPEG quality for a blocking strength: 30 near 0, falling geometrically to 5 at 1."""
    return round(30.0 * (5.0 / 30.0) ** strength)


def jpeg_blocking(pixels: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Heavy compression: a JPEG round trip at :func:`jpeg_quality`."""
    return from_uint8(jpeg_round_trip(to_uint8(pixels), jpeg_quality(strength)))


def jpeg_round_trip(pixels: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, 3) uint8 ``pixels`` as they come back from a JPEG file of ``quality``."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


PixelDefect = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]

# In the order they are applied: optics, tone and colour, sensor, compression.
PIXEL_DEFECTS: dict[str, PixelDefect] = {
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "underexposure": underexposure,
    "overexposure": overexposure,
    "low_contrast": low_contrast,
    "colour_cast": colour_cast,
    "oversaturation": oversaturation,
    "noise": sensor_noise,
    "jpeg": jpeg_blocking,
}

# --- framing defects: a view -> another view of the same source ----------------------

MAX_TILT_DEGREES = 12.0
MIN_CROP_FRACTION = 0.4  # an off-subject crop at full strength keeps 40% of the width and height

# Where an off-subject crop is pushed: the four corners and the four edges.
CROP_DIRECTIONS = ((-1, -1), (1, -1), (-1, 1), (1, 1), (0, -1), (0, 1), (-1, 0), (1, 0))


def tilted_view(view: Crop, strength: float, size: tuple[int, int], rng: np.random.Generator) -> Crop:
    """The horizon off by up to 12 degrees, either way."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return rotated(view, sign * MAX_TILT_DEGREES * strength, size)


def tilt_ready_view(view: Crop, size: tuple[int, int]) -> Crop:
    """``view`` shrunk (same centre, same angle) to what still fits the photo turned by the full tilt.

    Tilting it then needs no further shrinking, so its tilted copies show the same rectangle and differ
    from it by the turn alone (a 12-degree turn of a 16:9 full frame otherwise keeps only 72% of each side).
    """
    return replace(rotated(view, MAX_TILT_DEGREES, size), angle=view.angle)


def off_subject_view(view: Crop, strength: float, size: tuple[int, int], rng: np.random.Generator) -> Crop:
    """A tight crop pushed to an edge or a corner, away from where the photographer put the subject."""
    fraction = 1.0 - (1.0 - MIN_CROP_FRACTION) * strength
    direction = CROP_DIRECTIONS[int(rng.integers(len(CROP_DIRECTIONS)))]
    return sub_crop(view, fraction, direction)


FramingDefect = Callable[[Crop, float, tuple[int, int], np.random.Generator], Crop]
FRAMING_DEFECTS: dict[str, FramingDefect] = {"tilt": tilted_view, "off_subject_crop": off_subject_view}

DEFECTS: tuple[str, ...] = (
    "gaussian_blur",
    "motion_blur",
    "noise",
    "underexposure",
    "overexposure",
    "low_contrast",
    "colour_cast",
    "jpeg",
    "tilt",
    "off_subject_crop",
    "oversaturation",
)
assert set(DEFECTS) == set(PIXEL_DEFECTS) | set(FRAMING_DEFECTS)


# --- the generator -------------------------------------------------------------------


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)


def from_uint8(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) / 255.0


def _defect_rng(seed: int, name: str) -> np.random.Generator:
    # One stream per defect, so adding a defect never changes how another one looks.
    return np.random.default_rng([seed, DEFECTS.index(name)])


def degraded_view(view: Crop, defects: Sequence[Defect], size: tuple[int, int], seed: int) -> Crop:
    """The view after the framing defects among ``defects`` (unchanged when there are none)."""
    for defect in defects:
        if defect.name in FRAMING_DEFECTS and defect.strength > 0:
            view = FRAMING_DEFECTS[defect.name](view, defect.strength, size, _defect_rng(seed, defect.name))
    return view


def apply_pixel_defects(pixels: np.ndarray, defects: Sequence[Defect], seed: int) -> np.ndarray:
    """(H, W, 3) uint8 with the pixel defects among ``defects`` applied in the camera's order."""
    strengths = {defect.name: defect.strength for defect in defects if defect.name in PIXEL_DEFECTS}
    if not any(strengths.values()):
        return pixels
    image = from_uint8(pixels)
    for name, function in PIXEL_DEFECTS.items():
        if strengths.get(name, 0.0) > 0:
            image = function(image, strengths[name], _defect_rng(seed, name))
    return to_uint8(image)


def degrade(
    source: Image.Image,
    view: Crop,
    defects: Sequence[Defect],
    seed: int,
    short_side: int = 256,
    rendered: dict[Crop, np.ndarray] | None = None,
) -> np.ndarray:
    """(H, W, 3) uint8: ``view`` of ``source`` with ``defects``, ``short_side`` pixels on its short side.

    With no defects (or only strength 0) this is exactly the rendered view.
    ``rendered`` caches the views already cut from this ``source`` at this
    ``short_side`` (cutting is the costly step; a photo's variants mostly share one).
    """
    framed = degraded_view(view, defects, source.size, seed)
    pixels = rendered.get(framed) if rendered is not None else None
    if pixels is None:
        pixels = np.asarray(render(source, framed, short_side))
        if rendered is not None:
            rendered[framed] = pixels
    return apply_pixel_defects(pixels, defects, seed)
