"""Picks by share: `--top-percent`, `--bottom-percent`, `--overall` and `--per-album`.

The rules these tests pin down (eat_curate/library/picks.py):

- a top share of P % of n images is ceil(P/100 x n), a bottom share
  floor(P/100 x n), computed on exact decimals;
- images are taken in rank order (score, then image id byte by byte), so a
  tie at the cut is split the same way every time;
- album, score, spread and time bounds apply first, then --keep-best, then
  the share, then --per-album, then --limit.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from eat_curate.exit_codes import NOTHING_EXPORTED
from eat_curate.library.picks import Picks, parse_percent, pick, share_count
from eat_curate.library.queries import SelectedImage
from read_library import invoke
from score_rows import scored, write_scores

# Albums of 1, 3 and 7 images; scores fall with the number, so "a1" is the best of album "a".
SIZES = {"one": 1, "three": 3, "seven": 7}


@pytest.fixture(scope="module")
def albums_db(tmp_path_factory) -> str:
    records = [
        scored(f"{album}-{number}", mean=8.0 - number / 10, album=album)
        for album, size in SIZES.items()
        for number in range(1, size + 1)
    ]
    return write_scores(tmp_path_factory.mktemp("picks") / "albums.db", records)


def chosen(db: str, *options: str) -> dict[str, list[str]]:
    """Album -> image ids that `filter` prints with ``options``, in its order."""
    rows = json.loads(invoke("filter", "--db", db, *options, "--json").stdout)
    by_album: dict[str, list[str]] = {}
    for row in rows:
        by_album.setdefault(row["album"], []).append(row["image_id"])
    return by_album


# --- the arithmetic -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "size", "top", "bottom"),
    [
        ("10", 1, 1, 0),
        ("10", 3, 1, 0),
        ("10", 7, 1, 0),
        ("20", 7, 2, 1),
        ("50", 7, 4, 3),
        ("50", 3, 2, 1),
        ("100", 7, 7, 7),
        ("15", 20, 3, 3),  # exactly 3: no float error rounds 3.0000000000000004 up to 4
        ("0.1", 1000, 1, 1),
        ("33.3", 3, 1, 0),
        ("10", 0, 0, 0),
    ],
)
def test_a_top_share_rounds_up_and_a_bottom_share_rounds_down(percent, size, top, bottom):
    assert share_count(parse_percent(percent), size, "top") == top
    assert share_count(parse_percent(percent), size, "bottom") == bottom


def test_top_and_bottom_shares_split_an_album_without_overlap_or_gap():
    for size in range(0, 41):
        for percent in ("5", "12.5", "30", "50", "70", "99"):
            top = share_count(parse_percent(percent), size, "top")
            rest = share_count(100 - parse_percent(percent), size, "bottom")
            assert top + rest == size, (size, percent)


def test_percentages_are_read_as_exact_decimals():
    assert parse_percent("15%") == 15 and parse_percent(" 2.5 % ") == Fraction(5, 2)
    assert parse_percent("0.1") == Fraction(1, 10)
    for bad in ("0", "-5", "100.5", "ten", "", "nan"):
        with pytest.raises(ValueError):
            parse_percent(bad)


def test_picks_refuse_a_top_and_a_bottom_share_at_once():
    with pytest.raises(ValueError, match="not both"):
        Picks(top_percent=Fraction(10), bottom_percent=Fraction(10))


def test_pick_keeps_the_order_it_was_given():
    images = [SelectedImage("a", rank, f"id-{rank}", f"/{rank}.jpg", 9.0 - rank, 1.0, None) for rank in (1, 2, 3, 4)]
    assert [image.image_id for image in pick(images, Picks(bottom_percent=Fraction(50)))] == ["id-3", "id-4"]
    assert pick(images, Picks()) == images


# --- through the command line ------------------------------------------------------------------


def test_top_percent_takes_the_best_of_every_album_of_1_3_and_7(albums_db):
    assert chosen(albums_db, "--top-percent", "10") == {"one": ["one-1"], "seven": ["seven-1"], "three": ["three-1"]}
    assert chosen(albums_db, "--top-percent", "50") == {
        "one": ["one-1"],
        "seven": ["seven-1", "seven-2", "seven-3", "seven-4"],
        "three": ["three-1", "three-2"],
    }


def test_bottom_percent_takes_the_lowest_and_never_rounds_up(albums_db):
    assert chosen(albums_db, "--bottom-percent", "10") == {}  # 10 % of 7 is 0.7 images: none
    assert chosen(albums_db, "--bottom-percent", "50") == {
        "seven": ["seven-5", "seven-6", "seven-7"],
        "three": ["three-3"],
    }
    assert chosen(albums_db, "--bottom-percent", "100", "--per-album", "1") == {
        "one": ["one-1"],
        "seven": ["seven-7"],
        "three": ["three-3"],
    }


def test_per_album_keeps_the_best_n_and_caps_a_share(albums_db):
    assert chosen(albums_db, "--per-album", "2") == {
        "one": ["one-1"],
        "seven": ["seven-1", "seven-2"],
        "three": ["three-1", "three-2"],
    }
    assert chosen(albums_db, "--top-percent", "50", "--per-album", "3")["seven"] == ["seven-1", "seven-2", "seven-3"]


def test_overall_counts_the_share_over_the_whole_selection(albums_db):
    # 11 images: ceil(20 % of 11) = 3, the three highest scores wherever they are
    assert chosen(albums_db, "--top-percent", "20", "--overall") == {
        "one": ["one-1"],
        "seven": ["seven-1"],
        "three": ["three-1"],
    }
    # ceil(30 % of 11) = 4: the three 7.9s, then one of the two 7.8s: "seven-2" < "three-2"
    assert chosen(albums_db, "--top-percent", "30", "--overall") == {
        "one": ["one-1"],
        "seven": ["seven-1", "seven-2"],
        "three": ["three-1"],
    }


def test_the_other_options_apply_before_the_share(albums_db):
    # --min-score 7.55 leaves seven-1..4 (7.9 to 7.6) of album seven: half of 4 is 2
    assert chosen(albums_db, "--min-score", "7.55", "--top-percent", "50")["seven"] == ["seven-1", "seven-2"]
    assert chosen(albums_db, "--album", "seven", "--bottom-percent", "30") == {"seven": ["seven-6", "seven-7"]}


def test_limit_counts_what_the_share_kept(albums_db):
    rows = json.loads(invoke("filter", "--db", albums_db, "--bottom-percent", "50", "--limit", "2", "--json").stdout)
    assert [row["image_id"] for row in rows] == ["seven-5", "seven-6"]


def test_a_tie_at_the_cut_is_split_by_image_id_byte_by_byte(tmp_path):
    # Four images with one score: half of them is two, and they must be the same two every time:
    # the smallest ids byte by byte ("img-10" < "img-2" < "img-9" < "img-ü"), as `rank` orders them.
    ids = ["img-9", "img-2", "img-ü", "img-10"]
    db = write_scores(tmp_path / "ties.db", [scored(image_id, mean=6.0) for image_id in ids])
    picked = chosen(db, "--top-percent", "50")
    assert picked == {"album": ["img-10", "img-2"]}
    assert chosen(db, "--top-percent", "50") == picked
    ranked = json.loads(invoke("rank", "--db", db, "--json").stdout)
    assert [row["image_id"] for row in ranked[:2]] == picked["album"]
    assert chosen(db, "--bottom-percent", "50") == {"album": ["img-9", "img-ü"]}


def test_keep_best_applies_before_the_share(tmp_path):
    # Three copies of one photo (one perceptual hash) and three different photos: keep-best leaves
    # four images, so half of the album is two. Without it, half of six is three, copies included.
    copies = [
        scored(f"copy-{n}", mean=7.0 - n / 100, phash=0x0F0F, width=800, height=600, bytes=1000) for n in (1, 2, 3)
    ]
    others = [scored(f"other-{n}", mean=6.5 - n / 10, phash=(n * 0x5A5A5A5A5A5A) & 0x7FFF_FFFF_FFFF) for n in (1, 2, 3)]
    db = write_scores(tmp_path / "copies.db", copies + others)
    assert chosen(db, "--top-percent", "50") == {"album": ["copy-1", "copy-2", "copy-3"]}
    assert chosen(db, "--keep-best", "--top-percent", "50") == {"album": ["copy-1", "other-1"]}


def test_export_and_report_take_the_same_picks(albums_db, tmp_path):
    options = ["--top-percent", "50", "--to", tmp_path / "out", "--dry-run", "--json"]
    exported = invoke("export", "--db", albums_db, *options, expect_ok=False)
    assert exported.exit_code == NOTHING_EXPORTED.code  # the files do not exist: nothing could be exported
    result = json.loads(exported.stdout)
    assert len(result["outcomes"]) == 7  # 1 + 2 + 4; the files do not exist, so each says so
    assert {outcome["reason"].split(":")[0] for outcome in result["outcomes"]} == {"missing"}
    out = tmp_path / "report.html"
    assert "in 2 albums" in invoke("report", "--db", albums_db, "--out", out, "--per-album", "3",
                                   "--bottom-percent", "50").stdout
    html = out.read_text()
    assert html.count('data-image-id="seven-') >= 3 and 'data-image-id="seven-1"' not in html
    assert "(3 chosen)" in html and "(1 chosen)" in html


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--top-percent", "10", "--bottom-percent", "10"], "not both"),
        (["--overall"], "--overall counts a share"),
        (["--top-percent", "0"], "above 0 and at most 100"),
        (["--top-percent", "150%"], "above 0 and at most 100"),
        (["--per-album", "0"], "--per-album"),
        (["--errors", "--top-percent", "5"], "not to --errors"),
    ],
)
def test_impossible_picks_are_refused(albums_db, options, message):
    result = invoke("filter", "--db", albums_db, *options, expect_ok=False)
    assert result.exit_code == 2 and message in result.output


def test_filter_help_states_the_rounding_rule():
    text = " ".join(invoke("filter", "--help").stdout.split())
    assert "ceil(P/100 x n)" in text and "floor(P/100 x n)" in text and "--keep-best" in text
