"""Hostile shapes of a library: what must stay near-linear, and what must stay readable.

Real libraries hold thousands of identical frames (a lens-cap burst, a
timelapse of a wall), thousands of shots that are all near-duplicates of
each other, bursts of thousands of shots within one second, one album
holding everything, and names thousands of bytes long. None of that may
make a command quadratic or its output unusable. These tests pin, without
timing anything:

- duplicate groups: the same groups as linking every close pair (a brute
  force run here on smaller inputs), from work that is counted: equal
  hashes are never compared, alike hashes are compared about once each, and
  at most one link per image is made;
- the best of a big group: files are opened for colour only until the
  answer is known;
- `dupes` and `report`: a group of thousands is counted, not listed whole
  (`--show`, `--per-group`; `--json` still lists every member);
- `export`: thousands of files with one name get -2, -3, ... in one step
  each, as the step-by-step search named them;
- tables: one very long name does not pad every other line to its length.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from eat_curate.commands.output import MAX_ALIGNED_WIDTH, format_table
from eat_curate.library import dupes
from eat_curate.library.dupes import best_original_first, find_duplicate_groups
from eat_curate.library.export import ExportItem, PlannedNames, _numbered, export_images
from eat_curate.library.queries import SelectedImage
from read_library import invoke
from score_rows import scored, write_scores

BASE_HASH = 0x9A3C_5F01_77E2_B40D


def signed(value: int) -> int:
    """A uint64 as the int64 the database stores."""
    return value - (1 << 64) if value >= 1 << 63 else value


def flipped(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def shaped_hashes(shape: str, count: int, seed: int = 3) -> list[int]:
    """``count`` uint64 hashes of a shape: same, near (all within 8 bits of each other), clusters, random."""
    rng = random.Random(seed)
    if shape == "same":
        return [BASE_HASH] * count
    if shape == "near":  # each within 4 bits of one hash: any two within 8
        return [flipped(BASE_HASH, rng.sample(range(64), rng.randint(0, 4))) for _ in range(count)]
    if shape == "clusters":  # a few bursts, chains of small edits, and unrelated photos
        centres = [rng.getrandbits(64) for _ in range(6)]
        return [
            flipped(rng.choice(centres), rng.sample(range(64), rng.randint(0, 7))) if rng.random() < 0.7
            else rng.getrandbits(64)
            for _ in range(count)
        ]
    return [rng.getrandbits(64) for _ in range(count)]


def brute_force_groups(hashes: list[int], distance: int) -> set[frozenset[int]]:
    """Groups of two or more positions, from linking every pair at most ``distance`` bits apart."""
    parent = list(range(len(hashes)))

    def find(item: int) -> int:
        while parent[item] != item:
            item = parent[item]
        return item

    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            if bin(hashes[i] ^ hashes[j]).count("1") <= distance:
                parent[max(find(i), find(j))] = min(find(i), find(j))
    groups: dict[int, set[int]] = {}
    for item in range(len(hashes)):
        groups.setdefault(find(item), set()).add(item)
    return {frozenset(group) for group in groups.values() if len(group) > 1}


def image(number: int, phash: int | None = None, mean: float | None = None, **facts) -> SelectedImage:
    return SelectedImage(
        "burst", 1, f"img-{number:05d}", f"/photos/{number}.jpg", 5.0 + (number % 97) / 100 if mean is None else mean,
        1.0, facts.pop("captured_at", None), phash=None if phash is None else signed(phash),
        width=facts.pop("width", 4000), height=3000, bytes=facts.pop("bytes", 2_000_000 + number), **facts,
    )


def found_groups(hashes: list[int], distance: int) -> set[frozenset[int]]:
    groups = find_duplicate_groups([image(n, h) for n, h in enumerate(hashes)], distance, greyscale=lambda path: None)
    return {frozenset(int(member.image.image_id[4:]) for member in group.members) for group in groups}


class CountingComponents(dupes._HashComponents):
    """The merging of hash groups, counting its work where the test can read it."""

    made: list[dupes._HashComponents] = []

    def __init__(self, values: np.ndarray, distance: int) -> None:
        super().__init__(values, distance)
        CountingComponents.made.append(self)


@pytest.fixture
def counted(monkeypatch) -> list[dupes._HashComponents]:
    CountingComponents.made = []
    monkeypatch.setattr(dupes, "_HashComponents", CountingComponents)
    return CountingComponents.made


# --- duplicate groups ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["same", "near", "clusters", "random"])
@pytest.mark.parametrize("distance", [0, 3, 8, 20, 64])
def test_groups_are_those_of_linking_every_close_pair(shape, distance):
    hashes = shaped_hashes(shape, 150)
    assert found_groups(hashes, distance) == brute_force_groups(hashes, distance)


def test_big_buckets_compared_block_by_block_give_the_same_groups(monkeypatch):
    monkeypatch.setattr(dupes, "_CELLS", 101)  # blocks of a few rows: every bucket is a "big" one
    for shape in ("near", "clusters"):
        hashes = shaped_hashes(shape, 300, seed=11)
        assert found_groups(hashes, 8) == brute_force_groups(hashes, 8)


def test_equal_hashes_are_grouped_without_being_compared(counted):
    hashes = np.array([BASE_HASH] * 5000, dtype=np.uint64)
    links = list(dupes._hash_links(hashes, 8, progress=False))
    assert sorted(links) == [(0, position) for position in range(1, 5000)]  # each to the first of its value
    assert counted[0].compared == 0  # one distinct value: nothing to compare


def test_thousands_of_alike_hashes_are_compared_about_once_each(counted):
    count = 5000
    hashes = np.array(shaped_hashes("near", count), dtype=np.uint64)
    links = list(dupes._hash_links(hashes, 8, progress=False))
    assert len(links) == count - 1  # one group, joined by a spanning tree: not the 12.5 million close pairs
    # Every pair is close, yet once the first comparisons join them, the rest is known without comparing.
    assert counted[0].compared <= 20 * count < count * (count - 1) // 2 // 100


def test_unrelated_hashes_are_compared_only_within_their_band_buckets(counted):
    count = 5000
    hashes = np.array(shaped_hashes("random", count), dtype=np.uint64)
    assert list(dupes._hash_links(hashes, 8, progress=False)) == []
    # Nine bands of 7 or 8 bits: buckets of about 1/150 of the hashes, against every pair of the brute force.
    assert counted[0].compared < count * (count - 1) // 2 // 5


def test_a_big_distance_compares_all_against_all_and_still_groups_right():
    hashes = shaped_hashes("clusters", 120)
    assert list(dupes._buckets(np.unique(np.array(hashes, dtype=np.uint64)), 40)) != []
    assert found_groups(hashes, 40) == brute_force_groups(hashes, 40)


def test_a_burst_of_5000_shots_in_one_second_is_one_group():
    start = datetime(2024, 5, 1, 12)
    shots = [image(n, captured_at=start + timedelta(microseconds=200 * n)) for n in range(5000)]
    (group,) = find_duplicate_groups(shots, window=1.0, greyscale=lambda path: None)
    assert group.kind == "burst" and len(group.members) == 5000
    # Scores within 0.25 of the best (5.96) are equal: of those, the largest file (the latest shot here) leads.
    assert group.members[0].image.image_id == "img-04946"


def test_a_big_group_of_grey_copies_opens_files_only_until_one_has_colour():
    looked_at: list[str] = []

    def greyscale(path: str) -> bool:
        looked_at.append(path)
        return path != "/photos/3.jpg"  # one colour original among grey copies stored larger

    copies = [image(n, BASE_HASH, mean=7.0, bytes=9_000_000 - n) for n in range(2000)]
    best = best_original_first(copies, greyscale=greyscale)[0]
    assert best.image_id == "img-00003"
    assert looked_at == [f"/photos/{n}.jpg" for n in range(4)]  # by bytes, largest first, up to the colour one


# --- what people read ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lens_cap(tmp_path_factory) -> str:
    """3,000 black frames (one hash) and two unrelated shots, in one album."""
    records = [scored(f"cap-{n:05d}", 3.0 + (n % 50) / 1000, album="cap", phash=signed(BASE_HASH), width=4000,
                      height=3000, bytes=1_000_000) for n in range(3000)]
    records += [scored("tree", 6.0, album="cap", phash=1), scored("sea", 6.5, album="cap", phash=-1)]
    return write_scores(tmp_path_factory.mktemp("cap") / "cap.db", records)


def test_dupes_counts_a_huge_group_and_lists_only_its_first_members(lens_cap):
    lines = invoke("dupes", lens_cap).stdout.splitlines()
    assert lines[0].startswith("1 groups, 3000 of 3002 images")
    rows = lines[3:]
    assert len(rows) == 21  # the best and the next 19 by score, then the count of the rest
    assert rows[0].split()[2] == "*" and rows[-1].endswith("... 2980 more of 3000 (--show 0 or --json lists them)")
    assert len(invoke("dupes", lens_cap, "--show", "0").stdout.splitlines()) == 3 + 3000
    (group,) = json.loads(invoke("dupes", lens_cap, "--json").stdout)
    assert group["size"] == len(group["members"]) == 3000


def test_keep_best_keeps_one_frame_of_the_lens_cap_burst(lens_cap):
    kept = json.loads(invoke("filter", lens_cap, "--keep-best", "--json").stdout)
    assert sorted(row["image_id"] for row in kept) == ["cap-00049", "sea", "tree"]


def test_report_shows_a_few_tiles_of_a_huge_group_and_counts_the_rest(lens_cap, tmp_path):
    out = tmp_path / "report.html"
    invoke("report", lens_cap, "--out", out, "--per-album", "5", "--top", "3")
    page = out.read_text(encoding="utf-8")
    duplicates = page.split('<section id="duplicates">', 1)[1].split("</section>", 1)[0]
    assert "Group 1: 3000 images" in duplicates and "and 2988 more, not shown" in duplicates
    assert duplicates.count('<figure class="tile') == 12
    assert len(page) < 200_000  # 3,000 tiles would be megabytes


def test_a_long_name_is_written_whole_without_padding_every_line():
    rows = [{"album": "a" * 3000 if n == 0 else "b", "rank": n, "path": f"/p/{n}.jpg"} for n in range(1000)]
    lines = format_table(rows).splitlines()
    assert "a" * 3000 in lines[2]
    assert max(len(line) for line in lines[3:]) <= MAX_ALIGNED_WIDTH + 20


# --- export -------------------------------------------------------------------------------------


def stepwise_unique(relative: Path, taken: set[str], tried: list[int]) -> Path:
    """The search as it was: try name, name-2, name-3, ... from the start every time (the reference)."""
    candidate, number = relative, 1
    tried[0] += 1
    while str(candidate).casefold() in taken:
        number += 1
        candidate = relative.with_name(_numbered(relative.name, number))
        tried[0] += 1
    taken.add(str(candidate).casefold())
    return candidate


def test_thousands_of_one_name_are_numbered_in_a_few_steps_each():
    # One name in two cases (one file on a camera card), and a name that is also one of their numbered ones.
    wanted = [Path(name) for name in ["IMG_0001.JPG", "img_0001.jpg", "IMG_0001-3.JPG", "IMG_0001.JPG"] * 300]
    names, taken, reference_tried = PlannedNames(), set(), [0]
    assert [names.unique(path) for path in wanted] == [stepwise_unique(path, taken, reference_tried) for path in wanted]
    # Each spelling resumes where it stopped, stepping over what the others took since: a few steps each.
    assert names.tried <= 4 * len(wanted) and reference_tried[0] > 100 * len(wanted)


def test_export_of_5000_files_with_one_name_gives_each_its_own(tmp_path):
    sources = []
    for n in range(5000):
        folder = tmp_path / "card" / f"{n:04d}"
        folder.mkdir(parents=True)
        (folder / "IMG_0001.JPG").write_bytes(b"jpeg")
        sources.append(ExportItem(str(folder / "IMG_0001.JPG")))
    report = export_images(sources, tmp_path / "out", layout="flat", dry_run=True)
    names = [Path(outcome.destination).name for outcome in report.outcomes]
    assert names[:3] == ["IMG_0001.JPG", "IMG_0001-2.JPG", "IMG_0001-3.JPG"] and names[-1] == "IMG_0001-5000.JPG"
    assert len(set(names)) == 5000


def test_bench_dupes_times_each_shape_against_all_pairs_and_finds_the_same_groups():
    timings = json.loads(invoke("bench", "dupes", "--images", "300", "--json").stdout)

    assert [(timing["shape"], timing["images"]) for timing in timings] == [("same", 300), ("near", 300), ("random", 300)]
    assert all(timing["same_groups"] is True and timing["baseline_s"] is not None for timing in timings)
    assert [timing["groups"] for timing in timings][:2] == [1, 1]
