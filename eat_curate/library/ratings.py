"""Star ratings from scores: 0 to 5 stars, or -1 for a reject, as photo managers store them.

Two ways to turn a score into stars, written ``STARS:VALUE`` pairs separated
by commas (``StarRule.parse``):

- **shares**, ``5:5%,4:15%,3:30%,2:30%,1:20%`` (the default): per album (or
  over the whole selection), the best 5 % get five stars, the next 15 % four,
  and so on down the album-rank order. Bands are cut where their cumulative
  share ends, rounded up as a top share is (``picks.share_count``): the best
  ``ceil(5 % of n)`` images get five stars, the best ``ceil(20 % of n)`` at
  least four, ... An album of one image gets five stars. Images past the
  last band (shares adding up to less than 100 %) get 0 stars.
- **thresholds**, ``5:8,4:7,3:6,2:5,1:4``: a mean score of at least 8 gives
  five stars, at least 7 four, ...; below every threshold, 0 stars. A higher
  star needs a higher threshold.

A reject share (``reject_bottom``) then gives -1 to the lowest images of each
album, ``floor(P % of n)`` of them as a bottom share is, whatever their stars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from eat_curate.library.picks import parse_percent, share_count
from eat_curate.library.queries import SelectedImage, best_first

DEFAULT_STARS = "5:5%,4:15%,3:30%,2:30%,1:20%"
REJECTED = -1
# The colour labels that Adobe's xmp:Label holds and darktable reads back (by these exact names).
LABEL_COLOURS = ("Red", "Yellow", "Green", "Blue", "Purple")


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(","):
        key, separator, value = part.partition(":")
        if not separator or not key.strip() or not value.strip():
            raise ValueError(f"expected KEY:VALUE, not {part.strip()!r}")
        pairs.append((key.strip(), value.strip()))
    return pairs


@dataclass(frozen=True)
class StarRule:
    """How scores become stars: ``thresholds`` (stars, lowest mean) or ``shares`` (stars, percent), best first."""

    thresholds: tuple[tuple[int, float], ...] = ()
    shares: tuple[tuple[int, Fraction], ...] = ()

    @classmethod
    def parse(cls, text: str) -> StarRule:
        """``5:5%,4:15%,...`` (shares) or ``5:8,4:7,...`` (score thresholds); see the module doc."""
        entries: dict[int, str] = {}
        for key, value in _pairs(text):
            if key not in {"1", "2", "3", "4", "5"}:
                raise ValueError(f"stars are 1 to 5, not {key!r}")
            if int(key) in entries:
                raise ValueError(f"{key} stars given twice")
            entries[int(key)] = value
        order = sorted(entries, reverse=True)
        as_share = [value.endswith("%") for value in entries.values()]
        if all(as_share):
            shares = tuple((stars, parse_percent(entries[stars])) for stars in order)
            if sum(share for _, share in shares) > 100:
                raise ValueError(f"star shares add up to more than 100 %: {text!r}")
            return cls(shares=shares)
        if any(as_share):
            raise ValueError("use shares (5:5%,...) or score thresholds (5:8,...), not both")
        try:
            thresholds = tuple((stars, float(entries[stars])) for stars in order)
        except ValueError:
            raise ValueError(f"a threshold is a score such as 7.5: {text!r}") from None
        if not all(1 <= minimum <= 10 for _, minimum in thresholds):  # NaN and infinities fail this too
            raise ValueError(f"a threshold is a score from 1 to 10: {text!r}")
        lowest = [minimum for _, minimum in thresholds]
        if lowest != sorted(lowest, reverse=True) or len(set(lowest)) != len(lowest):
            raise ValueError(f"a higher star needs a higher threshold: {text!r}")
        return cls(thresholds=thresholds)

    def describe(self) -> str:
        """One line for the user: ``5 stars: best 5 %, 4 stars: next 15 %, ..., 1 star: next 20 %``."""
        if self.shares:
            bands = [
                f"{_stars(stars)}: {'best' if index == 0 else 'next'} {float(share):g} %"
                for index, (stars, share) in enumerate(self.shares)
            ]
            rest = 100 - sum(share for _, share in self.shares)
            return ", ".join(bands + ([f"0 stars: the other {float(rest):g} %"] if rest else []))
        bands = [f"{_stars(stars)}: score >= {minimum:g}" for stars, minimum in self.thresholds]
        return ", ".join(bands + ["0 stars: below"])


def _stars(count: int) -> str:
    return "1 star" if count == 1 else f"{count} stars"


def parse_labels(text: str) -> dict[int, str]:
    """``5:Green,4:Yellow,-1:Red``: the colour label for each rating (-1 is a reject)."""
    labels: dict[int, str] = {}
    colours = {colour.lower(): colour for colour in LABEL_COLOURS}
    for key, value in _pairs(text):
        if key not in {"-1", "0", "1", "2", "3", "4", "5"}:
            raise ValueError(f"a label belongs to a rating from -1 (reject) to 5, not {key!r}")
        if value.lower() not in colours:
            raise ValueError(f"label colours are {', '.join(LABEL_COLOURS)}; not {value!r}")
        labels[int(key)] = colours[value.lower()]
    return labels


def _groups(images: Sequence[SelectedImage], overall: bool) -> list[list[SelectedImage]]:
    if overall:
        return [sorted(images, key=best_first)]
    albums: dict[str | None, list[SelectedImage]] = {}
    for image in images:
        albums.setdefault(image.album, []).append(image)
    return [sorted(album, key=best_first) for album in albums.values()]


def star_ratings(
    images: Sequence[SelectedImage],
    rule: StarRule,
    reject_bottom: Fraction | None = None,
    overall: bool = False,
) -> dict[str, int]:
    """Image id -> rating (-1..5) of every image, per album unless ``overall`` (see module doc)."""
    ratings: dict[str, int] = {}
    for ordered in _groups(images, overall):
        if rule.shares:
            cumulative = Fraction(0)
            start = 0
            for stars, share in rule.shares:
                cumulative += share
                end = share_count(cumulative, len(ordered), "top")
                for image in ordered[start:end]:
                    ratings[image.image_id] = stars
                start = max(start, end)
            for image in ordered[start:]:
                ratings[image.image_id] = 0
        else:
            for image in ordered:
                ratings[image.image_id] = next(
                    (stars for stars, minimum in rule.thresholds if image.mean >= minimum), 0
                )
        if reject_bottom is not None:
            rejected = share_count(reject_bottom, len(ordered), "bottom")
            for image in ordered[len(ordered) - rejected :]:
                ratings[image.image_id] = REJECTED
    return ratings
