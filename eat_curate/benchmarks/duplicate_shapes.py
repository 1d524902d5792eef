"""`dupes` on hostile shapes of hashes: banded, component-aware grouping against all-against-all.

Shapes: ``same`` (every image one hash: a lens-cap burst), ``near`` (every
hash within 4 bits of one: any two within 8, all distinct), ``random``
(unrelated photos). For each shape and size it times
``library.find_duplicate_groups`` and, as the baseline, the comparison it
replaced: every hash against every other in blocks of 512 rows, every close
pair linked in a union-find. The baseline is skipped where it would link
more than ``BASELINE_MAX_PAIRS`` pairs (it takes minutes there). Both must
find the same groups; a mismatch is reported, not hidden.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass

import numpy as np

from eat_curate.library.dupes import DEFAULT_DISTANCE, find_duplicate_groups
from eat_curate.library.queries import SelectedImage

SHAPES = ("same", "near", "random")
BASELINE_MAX_PAIRS = 20_000_000
_BASE = 0x9A3C_5F01_77E2_B40D
_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint8)


@dataclass
class ShapeTiming:
    shape: str
    images: int
    groups: int
    seconds: float
    baseline_s: float | None  # None: skipped (too many close pairs)
    same_groups: bool | None

    @property
    def ratio(self) -> float | None:
        return None if self.baseline_s is None else self.baseline_s / max(self.seconds, 1e-9)

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": None if self.ratio is None else round(self.ratio, 1)}


def shaped_hashes(shape: str, count: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    if shape == "same":
        return [_BASE] * count
    if shape == "near":
        hashes = []
        for _ in range(count):
            value = _BASE
            for bit in rng.sample(range(64), 4):
                value ^= 1 << bit
            hashes.append(value)
        return hashes
    return [rng.getrandbits(64) for _ in range(count)]


def _images(hashes: list[int]) -> list[SelectedImage]:
    return [
        SelectedImage("album", 1, f"img-{n:07d}", f"/bench/{n}.jpg", 5.0 + (n % 100) / 100, 1.0, None,
                      phash=value - (1 << 64) if value >= 1 << 63 else value, width=4000, height=3000, bytes=n)
        for n, value in enumerate(hashes)
    ]


def _all_pairs_groups(hashes: list[int], distance: int) -> set[frozenset[int]]:
    """The replaced method: every pair compared, every close pair linked."""
    values = np.array(hashes, dtype=np.uint64)
    parent = list(range(len(values)))

    def find(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for start in range(0, len(values), 512):
        block = values[start : start + 512, None] ^ values[None, start:]
        bits = _POPCOUNT[block.view(np.uint8)].reshape(*block.shape, 8).sum(axis=-1, dtype=np.uint16)
        rows, columns = np.nonzero(bits <= distance)
        for row, column in zip(rows.tolist(), columns.tolist()):
            i, j = start + row, start + column
            if i < j:
                a, b = find(i), find(j)
                parent[max(a, b)] = min(a, b)
    groups: dict[int, set[int]] = {}
    for item in range(len(values)):
        groups.setdefault(find(item), set()).add(item)
    return {frozenset(group) for group in groups.values() if len(group) > 1}


def measure_duplicate_shapes(
    sizes: tuple[int, ...] = (5000, 10000, 20000), distance: int = DEFAULT_DISTANCE
) -> list[ShapeTiming]:
    """Seconds to group each shape at each size, and the all-against-all baseline's where it is feasible."""
    timings = []
    for shape in SHAPES:
        for size in sizes:
            hashes = shaped_hashes(shape, size)
            images = _images(hashes)
            start = time.perf_counter()
            groups = find_duplicate_groups(images, distance, greyscale=lambda path: None)
            seconds = time.perf_counter() - start
            found = {frozenset(int(member.image.image_id[4:]) for member in group.members) for group in groups}
            baseline_s = same = None
            linked = size * (size - 1) // 2 if shape != "random" else 0  # every pair of same/near is close
            if linked <= BASELINE_MAX_PAIRS:
                start = time.perf_counter()
                expected = _all_pairs_groups(hashes, distance)
                baseline_s = time.perf_counter() - start
                same = expected == found
            timings.append(ShapeTiming(shape, size, len(groups), seconds, baseline_s, same))
    return timings


def report_lines(timings: list[ShapeTiming]) -> list[str]:
    lines = [f"{'shape':8} {'images':>7} {'groups':>6} {'dupes s':>8} {'all-pairs s':>12} {'ratio':>7}  same groups"]
    for t in timings:
        baseline = "skipped" if t.baseline_s is None else f"{t.baseline_s:.2f}"
        ratio = "" if t.ratio is None else f"{t.ratio:.1f}x"
        same = "" if t.same_groups is None else ("yes" if t.same_groups else "NO")
        lines.append(f"{t.shape:8} {t.images:>7} {t.groups:>6} {t.seconds:>8.2f} {baseline:>12} {ratio:>7}  {same}")
    lines.append(f"all-pairs skipped above {BASELINE_MAX_PAIRS:,} close pairs (minutes each)")
    return lines
