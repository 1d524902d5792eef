"""Where EAT looked: interest points and deformable sampling positions drawn over the photo.

EAT's deformable blocks (stages 3 and 4) predict, for every location of
their feature map, an *interest point* and, per attention group, an offset
from it; keys and values are sampled at interest + offset. Drawing both over
the image, beside the predicted score distribution, is the picture the EAT
paper uses to show what the model attends to.

Coordinates come out of the model as normalised (y, x) in [-1, 1], the
convention of ``grid_sample(align_corners=True)``: -1 and 1 are the centres
of the first and last feature cells. The model sees the image squashed to a
square, so the same fractions place the points on the original, unsquashed
photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from eat_curate.model.checkpoint import LoadedModel
from eat_curate.model.eat import score_moments
from eat_curate.scoring.predictor import resolve_dtype
from eat_curate.scoring.preprocess import preprocess

STAGE_COLOURS = {0: (255, 140, 0), 1: (255, 0, 200), 2: (0, 229, 255), 3: (255, 220, 0)}  # sampling positions
INTEREST_COLOUR = (255, 40, 40)
PANEL_WIDTH = 320


@dataclass(frozen=True)
class BlockPoints:
    """One deformable block's points for one image, as fractions of the image (x right, y down)."""

    stage: int  # 0-based
    block: int
    feature_size: tuple[int, int]  # (H, W) of the block's feature map
    interest: np.ndarray  # (H*W, 2) fractions (x, y) in [0, 1]; shared by every group
    positions: np.ndarray  # (groups*H*W, 2) fractions (x, y); may fall outside [0, 1]


@dataclass(frozen=True)
class Explanation:
    image: Image.Image  # the upright RGB photo
    probabilities: np.ndarray  # (10,)
    mean: float
    std: float
    blocks: list[BlockPoints]
    model_id: str
    trained: bool


def normalised_to_fraction(coordinates: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(..., 2) normalised (y, x) in [-1, 1] -> (N, 2) fractions (x, y) of the image.

    -1/1 are the centres of the first/last of ``height``/``width`` cells
    (align_corners=True), which sit half a cell inside the image's edges.
    """
    flat = coordinates.reshape(-1, 2).double()
    y = ((flat[:, 0] + 1) / 2 * (height - 1) + 0.5) / height
    x = ((flat[:, 1] + 1) / 2 * (width - 1) + 0.5) / width
    return torch.stack([x, y], dim=1).numpy()


def deformable_stages(loaded: LoadedModel) -> list[int]:
    """0-based indices of the stages that have deformable blocks."""
    return [index for index, kinds in enumerate(loaded.model.preset.stage_specs) if "D" in kinds]


@torch.inference_mode()
def explain_image(
    loaded: LoadedModel,
    image: Image.Image,
    stages: Sequence[int] | None = None,
    last_block_only: bool = True,
    dtype: str = "auto",
) -> Explanation:
    """Score ``image`` and collect the points of the deformable blocks of ``stages`` (0-based).

    The model sees ``resize_for_model(image)``, as scoring does: an ``image``
    from :func:`eat_curate.io.decode.open_for_model` gets the score ``score``
    gives (one decoded at full size, the ``--no-draft`` score). Default
    stages: the last two with deformable blocks; ``last_block_only`` keeps
    one block per stage (its last), which is what a reader can take in.
    ``dtype``: as ``score --dtype`` (auto: bf16 where the device is fast at
    it); the built-in model's score moves by 0.04 on average between fp32 and bf16.
    """
    model = loaded.model.eval()
    available = deformable_stages(loaded)
    chosen = list(stages) if stages is not None else available[-2:]
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise ValueError(
            f"stages {[s + 1 for s in unknown]} have no deformable blocks; "
            f"this model has them in stages {[s + 1 for s in available]}"
        )
    device = next(model.parameters()).device
    batch = preprocess(image, loaded.card.input_size)[None].to(device)
    bf16 = resolve_dtype(dtype, device) == torch.bfloat16
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):  # as the Predictor scores
        logits, points = model.forward_with_points(batch)
    distribution = model.distribution(logits)
    mean, std = score_moments(distribution)
    selected = [p for p in points if p.stage in chosen]
    if last_block_only:
        last = {p.stage: p.block for p in selected}
        selected = [p for p in selected if p.block == last[p.stage]]
    blocks = []
    for p in selected:
        _, _, height, width, _ = p.positions.shape
        blocks.append(
            BlockPoints(
                stage=p.stage,
                block=p.block,
                feature_size=(height, width),
                interest=normalised_to_fraction(p.interest[0, 0].float().cpu(), height, width),
                positions=normalised_to_fraction(p.positions[0].float().cpu(), height, width),
            )
        )
    return Explanation(
        image=image,
        probabilities=distribution[0].float().cpu().numpy(),
        mean=float(mean[0]),
        std=float(std[0]),
        blocks=blocks,
        model_id=loaded.card.model_id,
        trained=loaded.card.trained,
    )


# --- drawing -----------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _scaled(image: Image.Image, longer_side: int) -> Image.Image:
    scale = longer_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def pixel_positions(fractions: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, 2) fractions (x, y) -> (N, 2) pixel coordinates in an image of ``size`` (w, h)."""
    return fractions * np.array(size, dtype=np.float64)


def _draw_points(photo: Image.Image, blocks: Sequence[BlockPoints]) -> Image.Image:
    overlay = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    radius = max(2, round(max(photo.size) / 300))
    for block in blocks:
        colour = STAGE_COLOURS.get(block.stage, (255, 255, 255))
        for x, y in pixel_positions(block.positions, photo.size):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(*colour, 170))
    for block in blocks:
        for x, y in pixel_positions(block.interest, photo.size):
            r = radius + 2
            draw.ellipse((x - r, y - r, x + r, y + r), outline=(*INTEREST_COLOUR, 255), width=2)
    return Image.alpha_composite(photo.convert("RGBA"), overlay).convert("RGB")


def _draw_panel(explanation: Explanation, height: int) -> Image.Image:
    panel = Image.new("RGB", (PANEL_WIDTH, max(height, 420)), (250, 250, 250))
    draw = ImageDraw.Draw(panel)
    draw.text((16, 14), "EAT score", fill=(60, 60, 60), font=_font(16))
    draw.text((16, 36), f"{explanation.mean:.2f}", fill=(20, 20, 20), font=_font(40))
    draw.text((130, 56), f"± {explanation.std:.2f}", fill=(90, 90, 90), font=_font(18))
    # The distribution: one bar per score 1..10, height by probability.
    left, bottom, chart_height, bar = 16, 270, 150, (PANEL_WIDTH - 32) // 10
    top = float(explanation.probabilities.max()) or 1.0
    for index, p in enumerate(explanation.probabilities):
        x = left + index * bar
        bar_height = round(float(p) / top * chart_height)
        hue_colour = (int(200 - 140 * index / 9), int(70 + 110 * index / 9), 70)
        draw.rectangle((x + 2, bottom - bar_height, x + bar - 2, bottom), fill=hue_colour)
        draw.text((x + bar // 2, bottom - bar_height - 3), f"{float(p):.0%}", fill=(60, 60, 60), font=_font(10),
                  anchor="md")
        draw.text((x + bar // 2, bottom + 4), str(index + 1), fill=(60, 60, 60), font=_font(12), anchor="ma")
    draw.line((left, bottom, left + 10 * bar, bottom), fill=(120, 120, 120))
    y = bottom + 30
    legend = [(INTEREST_COLOUR, "interest points (ring)")]
    legend += [(STAGE_COLOURS.get(b.stage, (255, 255, 255)), f"sampling, stage {b.stage + 1} block {b.block + 1}")
               for b in explanation.blocks]
    for index, (colour, label) in enumerate(legend):
        if index == 0:
            draw.ellipse((16, y + 3, 26, y + 13), outline=colour, width=2)
        else:
            draw.ellipse((16, y + 3, 26, y + 13), fill=colour)
        draw.text((34, y), label, fill=(40, 40, 40), font=_font(12))
        y += 20
    draw.text((16, y + 8), explanation.model_id, fill=(90, 90, 90), font=_font(11))
    if not explanation.trained:
        draw.text((16, y + 26), "untrained model: scores mean nothing", fill=(170, 30, 30), font=_font(12))
    return panel


def render_explanation(explanation: Explanation, longer_side: int = 768) -> Image.Image:
    """The photo (aspect kept) with the points drawn over it, and the distribution panel on its right."""
    photo = _draw_points(_scaled(explanation.image, longer_side), explanation.blocks)
    panel = _draw_panel(explanation, photo.height)
    canvas = Image.new("RGB", (photo.width + panel.width, max(photo.height, panel.height)), (250, 250, 250))
    canvas.paste(photo, (0, 0))
    canvas.paste(panel, (photo.width, 0))
    return canvas
