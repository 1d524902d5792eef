"""Picks by share: the best or worst P % of each album (or of the whole selection), or its best N.

People cull by share ("keep my best 15 % of each album"), because scores
bunch in a narrow band that moves from album to album. The rules:

- **Order.** Images are taken in album-rank order: mean score, highest
  first, ties by image id byte by byte (``queries.rank_order``). With
  ``overall`` the same order runs over the whole selection.
- **Rounding.** A top share of P % of n images is ``ceil(P/100 * n)``
  images, a bottom share ``floor(P/100 * n)``: shares round toward keeping a
  photo. Every album with an image gives at least one to a top share, a
  small album gives none to a bottom share smaller than one image, and
  ``--top-percent P`` and ``--bottom-percent 100-P`` split an album in two
  with nothing left over or taken twice. Percentages are exact decimals
  (15 % of 20 is 3, not 3.0000000000000004 rounded up to 4).
- **Ties.** The count is exact: images tied in score at the cut are split
  by image id, like ranks, so the same database always gives the same picks.
- **Per album.** ``per_album`` N then keeps at most N of each album's pick:
  alone, the best N of each album; after ``bottom_percent``, its worst N.

``choose_images`` applies everything in one documented order: the
selection's filters (album, score, spread, time: in SQL), then one image
per duplicate group (``keep_best``), then the share and the per-album cap,
then the row limit. So a share is a share of what the filters kept, and a
burst counts once in it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import sqlalchemy as sa

from eat_curate.library.dupes import DEFAULT_DISTANCE, find_duplicate_groups, keep_best
from eat_curate.library.queries import SelectedImage, Selection, best_first, select_images

SHARE_ENDS = ("top", "bottom")


def parse_percent(text: str | float | Fraction) -> Fraction:
    """``"15"``, ``"15%"`` or ``"2.5 %"`` as an exact fraction of 100 (15 -> 15); 0 < P <= 100."""
    if isinstance(text, Fraction):
        value = text
    else:
        cleaned = str(text).strip().removesuffix("%").strip()
        try:
            value = Fraction(cleaned)  # from the decimal text, so 0.1 stays exactly 1/10
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"not a percentage: {text!r}") from None
    if not 0 < value <= 100:
        raise ValueError(f"a percentage must be above 0 and at most 100, not {text!r}")
    return value


def share_count(percent: Fraction, size: int, end: str = "top") -> int:
    """How many of ``size`` images a ``percent`` share takes from ``end``: ceil at the top, floor at the bottom."""
    if end not in SHARE_ENDS:
        raise ValueError(f"end must be one of {SHARE_ENDS}, not {end!r}")
    exact = Fraction(percent) * size / 100
    return math.ceil(exact) if end == "top" else math.floor(exact)


@dataclass(frozen=True)
class Picks:
    """Which share of each album (or of everything, ``overall``) to keep; empty keeps everything."""

    top_percent: Fraction | None = None
    bottom_percent: Fraction | None = None
    per_album: int | None = None
    overall: bool = False

    def __post_init__(self) -> None:
        if self.top_percent is not None and self.bottom_percent is not None:
            raise ValueError("choose a top share or a bottom share, not both")
        for percent in (self.top_percent, self.bottom_percent):
            if percent is not None:
                parse_percent(percent)
        if self.per_album is not None and self.per_album < 1:
            raise ValueError("per_album must be at least 1")

    @property
    def active(self) -> bool:
        return self.percent is not None or self.per_album is not None

    @property
    def percent(self) -> Fraction | None:
        return self.top_percent if self.top_percent is not None else self.bottom_percent

    @property
    def end(self) -> str:
        return "bottom" if self.bottom_percent is not None else "top"


def _by_album(images: Iterable[SelectedImage]) -> dict[str | None, list[SelectedImage]]:
    albums: dict[str | None, list[SelectedImage]] = {}
    for image in images:
        albums.setdefault(image.album, []).append(image)
    return albums


def _take(ordered: list[SelectedImage], count: int, end: str) -> list[SelectedImage]:
    return ordered[:count] if end == "top" else ordered[len(ordered) - count :]


def pick(images: Sequence[SelectedImage], picks: Picks) -> list[SelectedImage]:
    """The images ``picks`` keeps (see module doc), in the order they came."""
    if not picks.active:
        return list(images)
    kept = list(images)
    if picks.percent is not None:
        groups = [kept] if picks.overall else list(_by_album(kept).values())
        chosen: list[SelectedImage] = []
        for group in groups:
            ordered = sorted(group, key=best_first)
            chosen += _take(ordered, share_count(picks.percent, len(ordered), picks.end), picks.end)
        kept = chosen
    if picks.per_album is not None:
        kept = [
            image
            for album in _by_album(kept).values()
            for image in _take(sorted(album, key=best_first), min(picks.per_album, len(album)), picks.end)
        ]
    chosen_ids = {image.image_id for image in kept}
    return [image for image in images if image.image_id in chosen_ids]


@dataclass(frozen=True)
class KeepBest:
    """One image per group of near-duplicates (and bursts, with ``window``): the group's best original."""

    distance: int = DEFAULT_DISTANCE
    window: float | None = None


def choose_images(
    connection: sa.Connection,
    model_id: str,
    selection: Selection = Selection(),
    picks: Picks = Picks(),
    keep: KeepBest | None = None,
    progress: bool = False,
) -> list[SelectedImage]:
    """The images of ``selection``, then one per duplicate group, then ``picks``, then the limit (module doc)."""
    later = keep is not None or picks.active
    # The row limit must count what survives keep-best and the share, so SQL may not apply it first.
    images = select_images(connection, model_id, replace(selection, limit=None) if later else selection)
    if keep is not None:
        images = keep_best(images, find_duplicate_groups(images, keep.distance, keep.window, progress=progress))
    images = pick(images, picks)
    if later and selection.limit is not None:
        images = images[: selection.limit]
    return images
