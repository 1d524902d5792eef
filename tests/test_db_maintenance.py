"""Keeping a database true to the photos: `db prune` (files gone), `db albums` (the stable album rule),
and selecting the images that have no album (`--album ""`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import make_photo
from eat_curate.cli import cli
from score_rows import scored, write_scores


def eat_curate(*arguments: str | Path) -> str:
    result = CliRunner().invoke(cli, [str(argument) for argument in arguments])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def ranked_paths(db: Path, *options: str) -> list[str]:
    return sorted(row["path"] for row in json.loads(eat_curate("filter", "--db", db, "--json", *options)))


@pytest.fixture
def scored_folder(tmp_path, micro_model_path) -> tuple[Path, Path]:
    """Six photos in two albums, scored into photos.db by the real `score` command."""
    photos = tmp_path / "photos"
    for album in ("hiking", "beach"):
        for i in range(3):
            make_photo(photos / album / f"{album}_{i}.jpg", seed=hash(album) % 100 + i)
    db = tmp_path / "photos.db"
    eat_curate("score", photos, "--model", micro_model_path, "--db", db, "--quiet")
    return photos, db


# --- db prune ------------------------------------------------------------------------------------


def test_prune_deletes_the_rows_of_deleted_and_renamed_files(scored_folder):
    photos, db = scored_folder
    (photos / "hiking" / "hiking_0.jpg").unlink()
    (photos / "beach" / "beach_1.jpg").rename(photos / "beach" / "renamed.jpg")

    preview = json.loads(eat_curate("db", "prune", "--db", db, "--dry-run", "--json"))
    assert (preview["checked"], preview["missing"], preview["deleted"]) == (6, 2, 0)
    assert len(ranked_paths(db)) == 6  # a dry run changes nothing

    eat_curate("db", "prune", "--db", db)
    assert ranked_paths(db) == sorted(
        str(path) for path in (photos / "hiking" / "hiking_1.jpg", photos / "hiking" / "hiking_2.jpg",
                               photos / "beach" / "beach_0.jpg", photos / "beach" / "beach_2.jpg")
    )
    again = json.loads(eat_curate("db", "prune", "--db", db, "--json"))
    assert (again["missing"], again["deleted"]) == (0, 0)


def test_prune_below_a_folder_leaves_other_folders_alone(scored_folder):
    photos, db = scored_folder
    (photos / "hiking" / "hiking_0.jpg").unlink()
    (photos / "beach" / "beach_0.jpg").unlink()

    report = json.loads(eat_curate("db", "prune", photos / "beach", "--db", db, "--json"))
    assert (report["checked"], report["missing"]) == (3, 1)
    assert str(photos / "hiking" / "hiking_0.jpg") in ranked_paths(db)
    assert str(photos / "beach" / "beach_0.jpg") not in ranked_paths(db)


@pytest.mark.parametrize("unmounted", ["gone", "empty"])
def test_prune_of_a_folder_that_looks_like_an_unmounted_disk_is_refused_and_deletes_nothing(scored_folder, unmounted):
    photos, db = scored_folder
    disk = photos / "beach"
    for photo in disk.iterdir():
        photo.unlink()
    if unmounted == "gone":
        disk.rmdir()

    refused = CliRunner().invoke(cli, ["db", "prune", str(disk), "--db", str(db)])

    assert refused.exit_code == 2
    assert "(a disk that is not mounted?): nothing was pruned" in refused.output
    assert len(ranked_paths(db)) == 6
    above = json.loads(eat_curate("db", "prune", photos, "--db", db, "--json"))  # how to forget them
    assert (above["missing"], above["deleted"]) == (3, 3)


@pytest.mark.parametrize("unplugged", ["gone", "empty"])
def test_prune_without_folder_keeps_the_rows_of_a_scored_disk_that_looks_unplugged(
    scored_folder, unplugged, micro_model_path, monkeypatch
):
    photos, db = scored_folder
    disk = photos.parent / "usb"
    make_photo(disk / "trip" / "a.jpg", seed=7)
    make_photo(disk / "trip" / "b.jpg", seed=8)
    monkeypatch.chdir(photos.parent)
    eat_curate("score", "usb", "--model", micro_model_path, "--db", db, "--quiet")  # recorded as absolute
    for photo in (disk / "trip").iterdir():
        photo.unlink()
    (disk / "trip").rmdir()
    if unplugged == "gone":
        disk.rmdir()
    (photos / "hiking" / "hiking_0.jpg").unlink()  # a photo really deleted

    report = json.loads(eat_curate("db", "prune", "--db", db, "--json"))
    assert (report["checked"], report["missing"], report["deleted"]) == (6, 1, 1)
    why = "is not there" if unplugged == "gone" else "is empty"
    assert report["kept"] == {f"{disk}/": {"why": why, "rows": 2}}
    assert str(disk / "trip" / "a.jpg") in ranked_paths(db)
    text = eat_curate("db", "prune", "--db", db, "--dry-run")
    assert f"kept 2 rows below {disk}/, which {why} (a disk that is not mounted?)" in text

    above = json.loads(eat_curate("db", "prune", photos.parent, "--db", db, "--json"))  # how to forget them
    assert (above["missing"], above["deleted"], above["kept"]) == (2, 2, {})


def test_prune_never_judges_urls_or_embedded_manifest_images(tmp_path):
    db = write_scores(tmp_path / "x.db", [
        scored("a", 6.0, path="https://photos.example/a.jpg"),
        scored("b", 6.0, path=str(tmp_path / "manifest.parquet") + "#3"),
        scored("c", 6.0, path=str(tmp_path / "gone.jpg")),
    ])
    report = json.loads(eat_curate("db", "prune", "--db", db, "--json"))
    assert (report["checked"], report["missing"], report["examples"]) == (1, 1, [str(tmp_path / "gone.jpg")])


def test_prune_of_a_missing_database_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["db", "prune", "--db", str(tmp_path / "typo.db")])
    assert result.exit_code == 2 and "no such database" in result.output
    assert not (tmp_path / "typo.db").exists()


# --- db albums -----------------------------------------------------------------------------------


def test_db_albums_moves_folder_paths_to_the_parent_folder_name_and_keeps_manifest_albums(tmp_path):
    db = write_scores(tmp_path / "old.db", [
        scored("a", 7.0, album="p1/hiking", path="/coll/p1/hiking/a.jpg"),  # `score coll`, the old rule
        scored("b", 6.0, album=None, path="/coll/p1/hiking/b.jpg"),  # `score coll/p1/hiking`
        scored("c", 5.0, album="hiking", path="/coll/p1/hiking/c.jpg"),  # already right
        scored("d", 4.0, album="wedding", path="/coll/p1/hiking/d.jpg"),  # a manifest's album column
        scored("e", 3.0, album=None, path="/data/m.parquet#4"),  # embedded in a manifest: no folder
    ])
    preview = json.loads(eat_curate("db", "albums", "--db", db, "--dry-run", "--json"))
    assert preview["changed"] == 2

    eat_curate("db", "albums", "--db", db)
    albums = {row["album"]: row["images"] for row in json.loads(eat_curate("albums", "--db", db, "--json"))}
    assert albums == {"hiking": 3, "wedding": 1, None: 1}
    assert json.loads(eat_curate("db", "albums", "--db", db, "--json"))["changed"] == 0


def test_album_empty_string_selects_the_images_without_an_album(tmp_path):
    db = write_scores(tmp_path / "x.db", [
        scored("a", 7.0, album="trips"),
        scored("b", 6.0, album=None),
        scored("c", 5.0, album=None),
    ])
    without = json.loads(eat_curate("filter", "--db", db, "--album", "", "--json"))
    assert sorted(row["image_id"] for row in without) == ["b", "c"]
    both = json.loads(eat_curate("rank", "--db", db, "--album", "", "--album", "trips", "--json"))
    assert sorted(row["image_id"] for row in both) == ["a", "b", "c"]
