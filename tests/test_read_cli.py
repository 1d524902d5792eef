"""`albums`, `rank`, `filter` and `dupes` as a user runs them, on databases filled by real `score` runs.

Outputs are read for their content: the rows, their order, the numbers,
the files they name.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from eat_curate.library.queries import Selection, select_images
from eat_curate.library.connection import read_connection, resolve_model
from read_library import HOSTILE_ALBUM, LOOKALIKE_ALBUM, invoke, save_jpeg, scene, score_into


@pytest.fixture
def db(databases) -> str:
    return databases["sqlite"]


def as_json(*arguments) -> list[dict]:
    return json.loads(invoke(*arguments, "--json").stdout)


def table_lines(result) -> list[str]:
    return result.stdout.strip().splitlines()


# --- albums and rank ----------------------------------------------------------------------------


def test_albums_table_lists_every_album_with_its_statistics(db, library):
    result = invoke("albums", "--db", db)
    header, rule, *rows = table_lines(result)
    assert header.split() == ["album", "images", "mean", "median", "top10_mean", "share>=5", "best_score", "best_image"]
    assert set(rule) <= {"-", " "}
    assert len(rows) == 5 and any(row.startswith(HOSTILE_ALBUM) for row in rows)
    data = as_json("albums", "--db", db)
    assert [row["album"] for row in data] == [line[: len(row["album"])] for line, row in zip(rows, data)]
    beach = next(row for row in data if row["album"] == "beach")
    assert beach["images"] == 5 and Path(beach["best_path"]).parent == library.album("beach")
    assert "model micro@" in result.stderr  # which model's scores, kept off stdout


def test_albums_sorted_as_asked(db):
    means = [row["mean"] for row in as_json("albums", "--db", db, "--sort", "mean")]
    assert means == sorted(means, reverse=True)
    names = [row["album"] for row in as_json("albums", "--db", db, "--sort", "album")]
    assert names == sorted(names)
    counts = [row["images"] for row in as_json("albums", "--db", db, "--sort", "images")]
    assert counts == [5, 5, 4, 2, 2]  # trips and beach, family (its broken file is no score), the two hostile


def test_share_above_follows_the_threshold(db):
    rows = as_json("albums", "--db", db, "--threshold", "10")
    assert all(row["share_above"] == 0 and row["threshold"] == 10 for row in rows)
    rows = as_json("albums", "--db", db, "--threshold", "1")
    assert all(row["share_above"] == 1 for row in rows)


def test_rank_top_n_per_album(db):
    result = invoke("rank", "--db", db, "--top", "2")
    header, _, *rows = table_lines(result)
    assert header.split() == ["album", "rank", "score", "std", "path"]
    data = as_json("rank", "--db", db, "--top", "2")
    assert len(rows) == len(data) == 10  # 5 albums x 2
    for album in {row["album"] for row in data}:
        members = [row for row in data if row["album"] == album]
        assert [row["rank"] for row in members] == [1, 2] and members[0]["mean"] >= members[1]["mean"]
        assert all(Path(row["path"]).is_file() for row in members)


def test_rank_one_album_by_spread(db):
    data = as_json("rank", "--db", db, "--album", "beach", "--by", "std")
    assert [row["album"] for row in data] == ["beach"] * 5
    assert [row["std"] for row in data] == sorted(row["std"] for row in data)
    worst = as_json("rank", "--db", db, "--album", "beach", "--reverse", "--top", "1")
    assert worst[0]["mean"] == min(row["mean"] for row in data)


def test_hostile_album_names_through_the_command_line(db):
    for album in (HOSTILE_ALBUM, LOOKALIKE_ALBUM):
        data = as_json("rank", "--db", db, "--album", album)
        assert [row["album"] for row in data] == [album, album]
        assert {Path(row["path"]).parent.name for row in data} == {album}
    wildcard = HOSTILE_ALBUM.replace("_", "%")  # a literal name, never a LIKE pattern: no such album
    refused = invoke("rank", "--db", db, "--album", wildcard, expect_ok=False)
    assert refused.exit_code == 2 and f"no album named {wildcard!r}" in refused.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_mistyped_album_is_refused_by_every_read_command_and_nothing_is_written(databases, backend, tmp_path):
    db = databases[backend]
    commands = {
        "rank": [],
        "filter": ["--manifest", tmp_path / "picked.parquet"],
        "dupes": [],
        "export": ["--to", tmp_path / "picks"],
        "report": ["--out", tmp_path / "report.html"],
        "xmp": ["--dry-run"],
    }
    for command, arguments in commands.items():
        result = invoke(command, "--db", db, "--album", "trips", "--album", "Family", *arguments, expect_ok=False)
        assert result.exit_code == 2, (command, result.output)
        assert "no album named 'Family' (did you mean 'family'?)" in result.stderr, command
        assert "'trips'" not in result.stderr, command  # a name that exists is not reported
    assert list(tmp_path.iterdir()) == []
    result = invoke("rank", "--db", db, "--album", "bech", "--album", "zebra", expect_ok=False)
    assert "no album named 'bech' (did you mean 'beach'?); no album named 'zebra' (the albums: " in result.stderr
    assert "'beach', 'family', 'trips')" in result.stderr
    result = invoke("rank", "--db", db, "--album", "", expect_ok=False)
    assert result.exit_code == 2 and "no image is without an album" in result.stderr


def test_an_album_whose_images_all_failed_is_known_and_reads_as_empty(micro_model_path, tmp_path):
    photos, db = tmp_path / "photos", str(tmp_path / "photos.db")
    (photos / "unreadable").mkdir(parents=True)
    (photos / "unreadable" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 not the rest of a JPEG")
    save_jpeg(photos / "fine" / "photo.jpg", scene(1))
    score_into(db, photos, model_path=micro_model_path)
    assert as_json("rank", "--db", db, "--album", "unreadable") == []
    assert as_json("rank", "--db", db, "--album", "fine")[0]["album"] == "fine"


def test_both_databases_print_the_same(databases):
    for command in (["albums"], ["rank", "--top", "3"], ["filter", "--min-score", "5.4"], ["dupes", "--window", "2"]):
        sqlite_out = as_json(*command, "--db", databases["sqlite"])
        pg_out = as_json(*command, "--db", databases["postgresql"])
        assert sqlite_out, command
        assert_same(pg_out, sqlite_out, command)


def assert_same(left, right, where, path="") -> None:
    """Equal JSON, except run facts (each database had its own run) and float sums' last bits."""
    if isinstance(left, dict):
        keys = set(left) - {"run_id", "scored_at"}
        assert keys == set(right) - {"run_id", "scored_at"}, (where, path)
        for key in keys:
            assert_same(left[key], right[key], where, f"{path}.{key}")
    elif isinstance(left, list):
        assert len(left) == len(right), (where, path)
        for index, (a, b) in enumerate(zip(left, right)):
            assert_same(a, b, where, f"{path}[{index}]")
    elif isinstance(left, float):
        assert left == pytest.approx(right, rel=1e-12), (where, path)
    else:
        assert left == right, (where, path)


# --- filter -------------------------------------------------------------------------------------


def test_filter_prints_the_selected_images(db):
    everything = as_json("filter", "--db", db)
    threshold = sorted(row["mean"] for row in everything)[len(everything) // 2]
    kept = as_json("filter", "--db", db, "--min-score", str(threshold))
    assert {row["image_id"] for row in kept} == {row["image_id"] for row in everything if row["mean"] >= threshold}
    header, _, *rows = table_lines(invoke("filter", "--db", db, "--min-score", str(threshold)))
    assert header.split() == ["album", "rank", "score", "std", "captured_at", "path"] and len(rows) == len(kept)
    assert all(len(row["probabilities"]) == 10 for row in kept)


def test_score_bounds_outside_what_a_score_can_be_are_refused(db):
    for bound, reason in (
        (["--min-score", "11"], "'--min-score': 11.0 is not in the range 1<=x<=10"),
        (["--max-std", "5"], "'--max-std': 5.0 is not in the range 0<=x<=4.5"),
        (["--min-score", "7", "--max-score", "6.5"], "--min-score 7 is above --max-score 6.5: no score is both"),
    ):
        result = invoke("filter", "--db", db, *bound, expect_ok=False)
        assert result.exit_code == 2 and reason in result.stderr, bound


def test_filter_by_capture_time_and_album(db):
    burst = as_json(
        "filter", "--db", db, "--album", "beach", "--since", "2024-07-01 10:00:01", "--until", "2024-07-01 10:30"
    )
    assert sorted(Path(row["path"]).name for row in burst) == ["burst_1.jpg", "burst_2.jpg", "burst_3.jpg"]
    assert as_json("filter", "--db", db, "--since", "2030-01-01", "--time", "scored") == []


def test_filter_csv_has_one_row_per_image_and_the_distribution(db):
    text = invoke("filter", "--db", db, "--album", "trips", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 5 and all(row["album"] == "trips" for row in rows)
    assert {f"p{i}" for i in range(1, 11)} <= set(rows[0]) and "probabilities" not in rows[0]
    assert sum(float(rows[0][f"p{i}"]) for i in range(1, 11)) == pytest.approx(1, abs=1e-5)
    assert [int(row["rank"]) for row in rows] == [1, 2, 3, 4, 5]


def test_filter_manifest_is_a_manifest_score_accepts(db, tmp_path, micro_model_path):
    manifest = tmp_path / "good.parquet"
    result = invoke("filter", "--db", db, "--album", "beach", "--manifest", manifest)
    assert f"wrote 5 images to {manifest}" in result.stdout
    table = pq.read_table(manifest).to_pylist()
    assert [row["rank"] for row in table] == [1, 2, 3, 4, 5]
    assert all(Path(row["path"]).is_file() and row["album"] == "beach" for row in table)
    rescored = str(tmp_path / "again.db")
    score_into(rescored, manifest, model_path=micro_model_path)
    again = as_json("rank", "--db", rescored)
    assert [(row["image_id"], row["rank"]) for row in again] == [(row["id"], row["rank"]) for row in table]
    assert [row["mean"] for row in again] == pytest.approx([row["mean"] for row in table], abs=1e-6)
    refused = invoke("filter", "--db", db, "--manifest", manifest, expect_ok=False)
    assert refused.exit_code == 2 and "exists; remove it or choose another name" in refused.output


def test_filter_errors_lists_what_could_not_be_scored_and_can_be_retried(db, library, tmp_path):
    header, _, row = table_lines(invoke("filter", "--db", db, "--errors"))
    assert header.split() == ["album", "kind", "message", "path"]
    assert row.startswith("family") and "truncated" in row and row.endswith(str(library.broken))
    (error,) = as_json("filter", "--db", db, "--errors")
    assert (error["kind"], error["path"]) == ("truncated", str(library.broken))
    retry = tmp_path / "retry.parquet"
    invoke("filter", "--db", db, "--errors", "--manifest", retry)
    assert pq.read_table(retry).to_pylist()[0]["path"] == str(library.broken)


def test_filter_keep_best_keeps_one_per_duplicate_group(db):
    everything = {row["image_id"]: row for row in as_json("filter", "--db", db)}
    kept = {row["image_id"] for row in as_json("filter", "--db", db, "--keep-best")}
    dropped = set(everything) - kept
    names = sorted(Path(everything[key]["path"]).name for key in dropped)
    # the burst keeps its best of 4, the three identical trip_1 files keep one
    assert len(dropped) == 5 and sum(name.startswith("burst_") for name in names) == 3
    assert sum(name in ("trip_1.jpg", "trip_1_again.jpg", "copy_of_trip_1.jpg") for name in names) == 2


# --- dupes --------------------------------------------------------------------------------------


def test_dupes_finds_the_burst_and_the_copies_with_their_best(db, library):
    groups = as_json("dupes", "--db", db)
    assert sorted(group["size"] for group in groups) == [3, 4]
    burst = next(group for group in groups if group["size"] == 4)
    assert burst["kind"] == "near-duplicates"
    assert sorted(Path(m["path"]) for m in burst["members"]) == sorted(library.burst)
    # the best original first (here, shots of one size: the largest file among near-equal scores), then by score
    best, *others = burst["members"]
    means = [member["mean"] for member in others]
    assert means == sorted(means, reverse=True) and burst["best_image_id"] == best["image_id"]
    near = [m for m in burst["members"] if m["mean"] >= max(means + [best["mean"]]) - 0.25]
    assert best["bytes"] == max(m["bytes"] for m in near) and best["width"] == 320
    distances = [member["distance"] for member in burst["members"]]
    assert distances[0] == 0 and max(distances) <= 8 and any(distances)  # near, not identical
    copies = next(group for group in groups if group["size"] == 3)
    assert {m["distance"] for m in copies["members"]} == {0}  # identical bytes
    assert {m["album"] for m in copies["members"]} == {"trips", "family"}  # found across albums


def test_dupes_with_a_time_window_marks_bursts(db):
    groups = as_json("dupes", "--db", db, "--window", "2", "--album", "beach")
    (burst,) = groups
    assert burst["kind"] == "near-duplicates+burst"
    assert sorted(m["seconds_from_best"] for m in burst["members"])[0] == 0
    assert max(m["seconds_from_best"] for m in burst["members"]) <= 3
    assert as_json("dupes", "--db", db, "--distance", "0", "--album", "beach") == []  # no exact copies there
    (time_only,) = as_json("dupes", "--db", db, "--distance", "0", "--window", "1", "--album", "beach")
    assert time_only["kind"] == "burst" and time_only["size"] == 4  # 1 s apart; the sunset an hour later is not


def test_dupes_table_marks_the_best_of_each_group(db):
    result = invoke("dupes", "--db", db)
    lines = table_lines(result)
    assert lines[0].startswith("2 groups, 7 of ") and "(distance <= 8)" in lines[0]
    assert lines[1].split() == [
        "group", "kind", "best", "score", "std", "size", "bytes", "distance", "seconds", "album", "path"
    ]
    assert sum(" * " in line for line in lines[3:]) == 2


# --- refusals -----------------------------------------------------------------------------------


def test_commands_refuse_a_database_without_scores(tmp_path):
    for command in ("albums", "rank", "filter", "dupes"):
        result = invoke(command, "--db", tmp_path / "nothing.db", expect_ok=False)
        assert result.exit_code == 2
        assert result.output.strip().startswith("Error: no scores in") and "run eat-curate score first" in result.output
        assert len(result.output.strip().splitlines()) == 1  # one line, no traceback


def test_commands_refuse_an_unknown_model_and_list_the_scored_ones(db):
    result = invoke("rank", "--db", db, "--model", "other", expect_ok=False)
    assert result.exit_code == 2 and "'other' has no scores" in result.output and "micro@" in result.output


def test_output_switches_are_exclusive(db, tmp_path):
    result = invoke("filter", "--db", db, "--json", "--csv", expect_ok=False)
    assert result.exit_code == 2 and "choose one of --json, --csv and --manifest" in result.output


def test_every_read_command_explains_itself():
    for command, words in {
        "albums": "median", "rank": "ranked inside each album", "filter": "--manifest",
        "export": "overwritten", "dupes": "near-duplicates", "report": "thumbnails", "explain": "interest points",
        "xmp": "sidecar",
    }.items():
        text = " ".join(invoke(command, "--help").stdout.split())  # unwrapped
        assert words in text, command
        assert ("--db" in text) == (command != "explain"), command


def test_filter_top_percent_on_a_real_library(db):
    # trips has 5 images: ceil(40 % of 5) = 2; family 4: ceil(1.6) = 2; beach 5: 2; the two hostile: 1 each
    picked = as_json("filter", "--db", db, "--top-percent", "40")
    counts = {album: sum(row["album"] == album for row in picked) for album in {row["album"] for row in picked}}
    assert counts == {"trips": 2, "family": 2, "beach": 2, HOSTILE_ALBUM: 1, LOOKALIKE_ALBUM: 1}
    assert all(row["rank"] <= 2 for row in picked)
    assert {row["width"] for row in picked} == {320} and all(row["bytes"] > 0 for row in picked)


def test_select_images_streams_in_album_order(db):
    with read_connection(db) as connection:
        rows = select_images(connection, resolve_model(connection, None, db), Selection())
    keys = [(row.album, row.rank) for row in rows]
    assert keys == sorted(keys)
