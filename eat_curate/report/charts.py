"""Inline SVG charts: a 10-bin score distribution and a histogram of mean scores."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

HISTOGRAM_BIN = 0.25  # score units per histogram bar, over 1..10


def distribution_svg(probabilities: Sequence[float], width: int = 100, height: int = 28) -> str:
    """Ten bars, bin 1 (left) to 10 (right), tallest = the most likely score."""
    top = max(probabilities) or 1.0
    bar = width / len(probabilities)
    bars = "".join(
        f'<rect x="{i * bar + 0.5:.1f}" y="{height - p / top * height:.1f}" width="{bar - 1:.1f}" '
        f'height="{p / top * height:.1f}" fill="{_bin_colour(i)}"><title>{i + 1}: {p:.1%}</title></rect>'
        for i, p in enumerate(probabilities)
    )
    return (
        f'<svg class="dist" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="score distribution">{bars}</svg>'
    )


def _bin_colour(index: int) -> str:
    # red (1) through amber to green (10)
    hue = int(index / 9 * 120)
    return f"hsl({hue},60%,45%)"


def histogram_counts(means: Sequence[float], bin_width: float = HISTOGRAM_BIN) -> list[int]:
    bins = int(round(9 / bin_width))
    counts = [0] * bins
    for mean in means:
        index = min(bins - 1, max(0, int((mean - 1) / bin_width)))
        counts[index] += 1
    return counts


def histogram_svg(means: Sequence[float], title: str, width: int = 360, height: int = 90) -> str:
    """Bars of how many images score in each 0.25-wide bin of 1..10, with the axis labelled 1..10."""
    counts = histogram_counts(means)
    top = max(counts) or 1
    plot = height - 16
    bar = width / len(counts)
    bars = "".join(
        f'<rect x="{i * bar:.1f}" y="{plot - c / top * plot:.1f}" width="{max(bar - 1, 1):.1f}" '
        f'height="{c / top * plot:.1f}" fill="#4a7ab5"><title>{1 + i * HISTOGRAM_BIN:.2f}-'
        f"{1 + (i + 1) * HISTOGRAM_BIN:.2f}: {c}</title></rect>"
        for i, c in enumerate(counts)
        if c
    )
    ticks = "".join(
        f'<text x="{(score - 1) / 9 * width:.1f}" y="{height - 2}" font-size="10" '
        f'text-anchor="{"start" if score == 1 else "end" if score == 10 else "middle"}">{score}</text>'
        for score in range(1, 11)
    )
    return (
        f'<svg class="hist" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><line x1="0" y1="{plot}" x2="{width}" y2="{plot}" stroke="#888"/>'
        f"{bars}{ticks}</svg>"
    )
