"""Near-duplicates and bursts among scored images, each group with its best member.

Two images are linked when their perceptual hashes differ in at most
``distance`` bits (re-encodes, resizes, small edits, near-identical shots),
and, when a ``window`` is given, also when they are in the same album and
were captured at most ``window`` seconds apart (a burst). Groups are the
connected sets of links.

A group's best member is its best original, not merely its best score: a
thumbnail or a re-encode can score a little above the photo it was made
from. Scores within ``NEAR_EQUAL_SCORE`` of the group's highest count as
equal; among those members the best is, in turn:

1. the one with the most pixels (full resolution beats any smaller copy);
2. colour over greyscale: a grey copy, even one stored larger (a PNG, a
   higher JPEG quality), is not the original. Colour is not stored with the
   scores, so it is read from the files (``colour.is_greyscale``), and only
   where it decides: among the near-equals of the most pixels, when there
   are several; a file that cannot be read counts as colour;
3. the larger file (a lightly compressed JPEG is larger than a heavily
   compressed one);
4. the higher score;
5. the older file (an exact copy is usually made after its original), then
   the smaller image id (as in album ranks).

A member scoring more than ``NEAR_EQUAL_SCORE`` below the highest is never
the best: there the score leads, as it should between different shots of a
burst. The files of one shot (RAW + JPEG) are one member, their lead
(``shots``): a RAW is never a duplicate of its own JPEG.

Hashes are compared all against all, vectorised in blocks: about a second
for 10,000 images, growing with the square of the count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from tqdm import tqdm

from eat_curate.io.phash import hamming
from eat_curate.library.colour import is_greyscale
from eat_curate.library.queries import SelectedImage, best_first

DEFAULT_DISTANCE = 8  # of 64 bits; unrelated photos differ in about 32
# Score gap below which copies count as equally good: re-encoding or resizing moves the score of the
# same picture by a few hundredths to a few tenths; different shots differ by more.
NEAR_EQUAL_SCORE = 0.25
_BLOCK = 512  # hashes compared against all others per step: 512 x N x 8 bytes of scratch
_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)
PROGRESS_FROM = 5000  # images; fewer compare in well under a second


@dataclass(frozen=True)
class DuplicateMember:
    image: SelectedImage
    distance: int | None  # phash bits differing from the best member; None without hashes
    seconds_from_best: float | None  # capture-time gap to the best member; None without times


@dataclass(frozen=True)
class DuplicateGroup:
    number: int  # 1.. in report order (album, then best score)
    kind: str  # "near-duplicates", "burst" or "near-duplicates+burst": what linked its members
    members: tuple[DuplicateMember, ...]  # the best original first (see module doc), then by score

    @property
    def best(self) -> SelectedImage:
        return self.members[0].image

    def to_dict(self) -> dict:
        return {
            "group": self.number,
            "kind": self.kind,
            "size": len(self.members),
            "best_image_id": self.best.image_id,
            "members": [
                {**member.image.to_dict(), "distance": member.distance, "seconds_from_best": member.seconds_from_best}
                for member in self.members
            ],
        }


class _Groups:
    """Union-find over positions 0..n-1, remembering what kind of link joined each set."""

    def __init__(self, count: int) -> None:
        self.parent = list(range(count))
        self.kinds: dict[int, set[str]] = {}

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def link(self, a: int, b: int, kind: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        kinds = self.kinds.pop(root_a, set()) | self.kinds.pop(root_b, set()) | {kind}
        self.parent[max(root_a, root_b)] = min(root_a, root_b)
        self.kinds[min(root_a, root_b)] = kinds


def _original_first(image: SelectedImage, grey: bool) -> tuple:
    """Among near-equal scores: most pixels, colour, most bytes, highest score, oldest file, smallest id."""
    unknown_time = image.mtime is None
    return (-image.pixels, grey, -(image.bytes or 0), -image.mean, unknown_time, image.mtime or 0.0, image.image_id)


def best_original_first(
    group: Sequence[SelectedImage],
    near_equal: float = NEAR_EQUAL_SCORE,
    greyscale: Callable[[str], bool | None] = is_greyscale,
) -> list[SelectedImage]:
    """``group`` with its best original first (see module doc), then the others by score.

    ``greyscale(path)``: whether a file's picture has no colour (None: unknown, counts as colour).
    """
    top = max(image.mean for image in group)
    near = [image for image in group if image.mean >= top - near_equal]
    largest = max(image.pixels for image in near)
    contenders = [image for image in near if image.pixels == largest]
    # Files are opened only where colour decides: between near-equals of the same, largest size.
    grey = {image.image_id: greyscale(image.path) is True for image in contenders} if len(contenders) > 1 else {}
    best = min(near, key=lambda image: _original_first(image, grey.get(image.image_id, False)))
    return [best, *sorted((image for image in group if image is not best), key=best_first)]


def _hash_links(hashes: np.ndarray, distance: int, progress: bool) -> Iterable[tuple[int, int]]:
    """Pairs (i, j), i < j, of uint64 hashes at most ``distance`` bits apart."""
    count = len(hashes)
    starts = range(0, count, _BLOCK)
    for start in tqdm(starts, desc="comparing hashes", unit="block", disable=not progress, leave=False):
        block = hashes[start : start + _BLOCK, None] ^ hashes[None, start:]  # (block, count - start)
        bits = _POPCOUNT[block.view(np.uint8)].reshape(*block.shape, 8).sum(axis=-1, dtype=np.uint16)
        rows, columns = np.nonzero(bits <= distance)
        for row, column in zip(rows.tolist(), columns.tolist()):
            i, j = start + row, start + column
            if i < j:
                yield i, j


def _burst_links(images: Sequence[SelectedImage], window: float) -> Iterable[tuple[int, int]]:
    """Consecutive captures of one album at most ``window`` seconds apart (chains make the burst)."""
    by_album: dict[str | None, list[int]] = {}
    for index, image in enumerate(images):
        if image.captured_at is not None:
            by_album.setdefault(image.album, []).append(index)
    for indices in by_album.values():
        indices.sort(key=lambda index: (images[index].captured_at, images[index].image_id))
        for a, b in pairwise(indices):
            if (images[b].captured_at - images[a].captured_at).total_seconds() <= window:
                yield a, b


def find_duplicate_groups(
    images: Sequence[SelectedImage],
    distance: int = DEFAULT_DISTANCE,
    window: float | None = None,
    progress: bool = False,
    near_equal: float = NEAR_EQUAL_SCORE,
    greyscale: Callable[[str], bool | None] = is_greyscale,
) -> list[DuplicateGroup]:
    """Groups of two or more linked images (see module doc), ordered by their best's album, then score."""
    if distance < 0:
        raise ValueError("distance must be >= 0")
    if near_equal < 0:
        raise ValueError("near_equal must be >= 0")
    ordered = sorted(images, key=lambda image: image.image_id)
    groups = _Groups(len(ordered))
    hashed = [index for index, image in enumerate(ordered) if image.phash is not None]
    hashes = np.array([ordered[index].phash for index in hashed], dtype=np.int64).view(np.uint64)
    show = progress and len(hashed) >= PROGRESS_FROM
    for i, j in _hash_links(hashes, distance, show):
        groups.link(hashed[i], hashed[j], "near-duplicates")
    if window is not None:
        for a, b in _burst_links(ordered, window):
            groups.link(a, b, "burst")

    members: dict[int, list[SelectedImage]] = {}
    for index, image in enumerate(ordered):
        members.setdefault(groups.find(index), []).append(image)
    found = []
    for root, group in members.items():
        if len(group) < 2:
            continue
        kind = "+".join(sorted(groups.kinds[root], key=("near-duplicates", "burst").index))
        found.append((best_original_first(group, near_equal, greyscale), kind))
    found.sort(key=lambda entry: (entry[0][0].album is not None, entry[0][0].album or "", best_first(entry[0][0])))
    return [DuplicateGroup(number, kind, _members(group)) for number, (group, kind) in enumerate(found, start=1)]


def _members(group: list[SelectedImage]) -> tuple[DuplicateMember, ...]:
    best = group[0]
    return tuple(
        DuplicateMember(
            image=image,
            distance=hamming(best.phash, image.phash) if best.phash is not None and image.phash is not None else None,
            seconds_from_best=(
                abs((image.captured_at - best.captured_at).total_seconds())
                if best.captured_at is not None and image.captured_at is not None
                else None
            ),
        )
        for image in group
    )


def keep_best(images: Sequence[SelectedImage], groups: Sequence[DuplicateGroup]) -> list[SelectedImage]:
    """``images`` without the members of ``groups`` that are not their group's best (order kept)."""
    dropped = {member.image.image_id for group in groups for member in group.members[1:]}
    return [image for image in images if image.image_id not in dropped]
