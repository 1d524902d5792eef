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

The work stays near-linear whatever the shapes of the hashes:

- equal hashes (a burst of black lens-cap frames, a timelapse of a wall)
  are linked to the first of their value without being compared;
- distinct hashes are compared only within buckets of a band of bits
  (``distance + 1`` bands: two hashes at most ``distance`` bits apart agree
  on a whole band), vectorised in blocks of bounded size; where buckets
  would not cut the work (a large ``distance``), all against all;
- pairs whose images are already in one group are not compared again, and
  only the links that merge two groups are kept (at most one per image), so
  20,000 hashes all within ``distance`` of each other cost about as much as
  20,000 unrelated ones, not 200 million links.

Groups are the same as from linking every close pair: only the work differs.
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
_CELLS = 1 << 20  # hash pairs compared per numpy step: about 10 MB of scratch, whatever the count
_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)
_BITWISE_COUNT = getattr(np, "bitwise_count", None)  # numpy >= 2.0
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
    contenders = sorted(
        (image for image in near if image.pixels == largest), key=lambda image: _original_first(image, False)
    )
    best = contenders[0]
    if len(contenders) > 1:
        # Files are opened only where colour decides: between near-equals of the same, largest size. Colour
        # comes before everything else in the order, so the first in it with colour is the best: files are
        # read in that order until one has colour (only a group of grey frames reads them all).
        best = next((image for image in contenders if greyscale(image.path) is not True), best)
    return [best, *sorted((image for image in group if image is not best), key=best_first)]


def _popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (numpy >= 2 counts them natively; older numpy by a byte table)."""
    if _BITWISE_COUNT is not None:
        return _BITWISE_COUNT(values)
    return _POPCOUNT[values.view(np.uint8)].reshape(*values.shape, 8).sum(axis=-1, dtype=np.uint8)


def _bands(distance: int) -> list[tuple[int, int]]:
    """(shift, bits) of ``distance + 1`` disjoint bands covering the 64 bits, as even as can be."""
    count = distance + 1
    widths = [64 // count + (1 if index < 64 % count else 0) for index in range(count)]
    shifts = np.cumsum([0, *widths[:-1]]).tolist()
    return list(zip(shifts, widths))


def _buckets(values: np.ndarray, distance: int) -> Iterable[np.ndarray]:
    """Sets of positions in ``values`` (distinct uint64) that hold every pair at most ``distance`` bits apart.

    Pigeonhole: cut the 64 bits into ``distance + 1`` bands; two hashes differing in at most
    ``distance`` bits agree on at least one whole band, so they share that band's bucket. Where
    the bands would not cut the comparisons down (many bands, or hashes alike in every band),
    everything is one bucket: the all-against-all comparison.
    """
    count = len(values)
    everything = np.arange(count)
    if distance >= 63 or count < 2:
        yield everything
        return
    banded = []
    pairs = 0
    for shift, bits in _bands(distance):
        keys = (values >> np.uint64(shift)) & np.uint64((1 << bits) - 1)
        order = np.argsort(keys, kind="stable")
        edges = np.flatnonzero(np.diff(keys[order])) + 1
        sizes = np.diff(np.concatenate(([0], edges, [count])))
        pairs += int((sizes * (sizes - 1) // 2).sum())
        banded.append(np.split(order, edges))
    if pairs >= count * (count - 1) // 2:
        yield everything
        return
    for buckets in banded:
        yield from (bucket for bucket in buckets if len(bucket) > 1)


class _HashComponents:
    """Components of "at most ``distance`` bits apart" among distinct hashes, merged block by block.

    ``root[i]`` is always the root of ``i``'s component. Pairs already in one component are
    masked out before anything is linked, so a block adds at most one link per merge: all the
    links together form a spanning forest (at most count - 1), never the pairs themselves, which
    are quadratic in number when thousands of hashes are alike.
    """

    def __init__(self, values: np.ndarray, distance: int) -> None:
        self.values = values
        self.distance = distance
        self.root = np.arange(len(values))
        self.compared = 0  # hash pairs compared, for tests and benchmarks

    def merge_bucket(self, bucket: np.ndarray) -> list[tuple[int, int]]:
        """Links (old root, new root) merging the components of ``bucket``'s close pairs."""
        links: list[tuple[int, int]] = []
        size = len(bucket)
        most = max(1, _CELLS // size)
        # A big bucket starts with one row and doubles: where its hashes are all alike, the first row
        # already joins them, and the rest is skipped instead of compared.
        rows_per_block = most if size <= most else 1
        start = 0
        while start < size - 1:
            rows, columns = bucket[start : start + rows_per_block], bucket[start + 1 :]
            labels = self.root[bucket[start:]]
            start += rows_per_block
            rows_per_block = min(most, 2 * rows_per_block)
            if (labels == labels[0]).all():  # one component already: nothing here can merge anything
                continue
            self.compared += len(rows) * len(columns)
            close = _popcount(self.values[rows, None] ^ self.values[None, columns]) <= self.distance
            row_at, column_at = np.nonzero(close)
            later = column_at >= row_at  # column k is bucket position start + 1 + k: only pairs i < j
            a, b = self.root[rows[row_at[later]]], self.root[columns[column_at[later]]]
            apart = a != b
            if apart.any():
                links += self._merge(a[apart], b[apart])
        return links

    def _merge(self, a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
        """Union of the components of each pair (a, b) of roots, by hooking onto the smaller root."""
        parent = self.root.copy()
        while True:
            low, high = np.minimum(a, b), np.maximum(a, b)
            moving = low != high
            if not moving.any():
                break
            np.minimum.at(parent, high[moving], low[moving])
            while True:  # pointer jumping until every node points at its root
                jumped = parent[parent]
                if (jumped == parent).all():
                    break
                parent = jumped
            a, b = parent[a], parent[b]
        merged = np.flatnonzero((parent != self.root) & (self.root == np.arange(len(parent))))
        self.root = parent
        return list(zip(merged.tolist(), parent[merged].tolist()))


def _hash_links(hashes: np.ndarray, distance: int, progress: bool) -> Iterable[tuple[int, int]]:
    """Pairs (i, j) of positions in ``hashes`` (uint64) whose links join exactly the groups of
    "at most ``distance`` bits apart": a spanning forest, at most one link per image.

    Equal hashes (a burst of black frames) are linked to the first of their value without being
    compared; distinct values are compared only within the buckets of ``_buckets``.
    """
    if len(hashes) == 0:
        return
    values, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    for position in np.flatnonzero(first[inverse] != np.arange(len(hashes))).tolist():
        yield int(first[inverse[position]]), position
    if distance == 0:
        return
    components = _HashComponents(values, distance)
    buckets = list(_buckets(values, distance))
    for bucket in tqdm(buckets, desc="comparing hashes", unit="bucket", disable=not progress, leave=False):
        for a, b in components.merge_bucket(bucket):
            yield int(first[a]), int(first[b])


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
