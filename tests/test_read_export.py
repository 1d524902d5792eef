"""`eat-curate export`: selections copied, hard-linked or symlinked into a folder, checked file by file.

Album names and stored paths are untrusted: manifests below give albums
like '../escape' and '/etc', and the export must stay inside its folder,
never overwrite, and say what it skipped and why.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eat_curate.exit_codes import NOTHING_EXPORTED
from eat_curate.library.export import ExportError, ExportItem, export_images, safe_component
from read_library import (
    HOSTILE_ALBUM,
    LOOKALIKE_ALBUM,
    invoke,
    save_jpeg,
    scene,
    score_into,
)


@pytest.fixture
def db(databases) -> str:
    return databases["sqlite"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(folder: Path) -> list[Path]:
    return sorted(path.relative_to(folder) for path in folder.rglob("*") if path.is_file() or path.is_symlink())


def export_json(*arguments) -> dict:
    return json.loads(invoke("export", *arguments, "--json").stdout)


# --- what lands where -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_copy_by_album_puts_every_selected_file_in_its_album_folder(databases, backend, library, tmp_path):
    target = tmp_path / "best"
    selected = json.loads(invoke("filter", "--db", databases[backend], "--min-score", "5.45", "--json").stdout)
    report = export_json("--db", databases[backend], "--min-score", "5.45", "--to", target)
    assert report["counts"] == {"copied": len(selected)} and len(selected) >= 3
    expected = sorted(Path(row["album"]) / Path(row["path"]).name for row in selected)
    assert files_under(target) == expected
    for row in selected:
        copy = target / row["album"] / Path(row["path"]).name
        assert sha256(copy) == sha256(Path(row["path"]))  # the same bytes
        assert copy.stat().st_mtime == pytest.approx(Path(row["path"]).stat().st_mtime)  # and time


def test_album_rank_layout_numbers_files_by_rank(db, tmp_path):
    invoke("export", "--db", db, "--album", "beach", "--to", tmp_path / "out", "--layout", "album/rank")
    ranked = json.loads(invoke("rank", "--db", db, "--album", "beach", "--json").stdout)
    assert files_under(tmp_path / "out") == [
        Path("beach", f"{row['rank']:04d}_{Path(row['path']).name}") for row in ranked
    ]


def test_flat_layout_keeps_both_files_of_the_same_name(db, tmp_path):
    result = invoke("export", "--db", db, "--album", HOSTILE_ALBUM, "--album", LOOKALIKE_ALBUM,
                    "--to", tmp_path / "flat", "--layout", "flat")
    assert "copied 4" in result.stdout
    assert files_under(tmp_path / "flat") == [Path(name) for name in
                                              ("photo_0-2.jpg", "photo_0.jpg", "photo_1-2.jpg", "photo_1.jpg")]


def test_hardlinks_and_symlinks_point_at_the_originals(db, library, tmp_path):
    invoke("export", "--db", db, "--album", "trips", "--to", tmp_path / "hard", "--mode", "hardlink")
    invoke("export", "--db", db, "--album", "trips", "--to", tmp_path / "soft", "--mode", "symlink")
    for original in sorted(library.album("trips").iterdir()):
        hard = tmp_path / "hard" / "trips" / original.name
        soft = tmp_path / "soft" / "trips" / original.name
        assert hard.stat().st_ino == original.stat().st_ino and not hard.is_symlink()
        assert soft.is_symlink() and soft.resolve() == original.resolve()


def test_hardlinks_across_file_systems_are_skipped_with_the_reason_and_exit_5(db, tmp_path):
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system (/dev/shm) beside the test's temporary folder")
    target = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="eatc-export-"))
    try:
        result = invoke("export", "--db", db, "--album", "beach", "--to", target, "--mode", "hardlink", "--json",
                        expect_ok=False)
        assert result.exit_code == NOTHING_EXPORTED.code  # nothing exported: a scheduler can tell
        report = json.loads(result.stdout)
        assert report["counts"] == {"skipped": 5} and report["skipped_by_reason"] == {"cross-device": 5}
        assert "use --mode copy" in report["outcomes"][0]["reason"]
        assert list(target.iterdir()) == []  # not even an empty beach/ folder is left behind
    finally:
        shutil.rmtree(target)


# --- never overwrite, never outside ------------------------------------------------------------------


def test_nothing_is_overwritten_and_a_rerun_skips_what_exists(db, library, tmp_path):
    target = tmp_path / "out"
    mine = target / "beach" / "sunset.jpg"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own file")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"not to be touched")
    (target / "beach" / "burst_0.jpg").symlink_to(outside)  # a link planted where an export will go

    first = export_json("--db", db, "--album", "beach", "--to", target)
    assert first["counts"] == {"copied": 3, "skipped": 2} and first["skipped_by_reason"] == {"exists": 2}
    assert mine.read_bytes() == b"my own file" and outside.read_bytes() == b"not to be touched"

    second = invoke("export", "--db", db, "--album", "beach", "--to", target)
    assert second.stdout.startswith("nothing exported -> ")
    assert "skipped 5 (exists 5):" in second.stdout
    assert sum(line.endswith("exists") for line in second.stdout.splitlines()) == 5  # each file, with its reason


def test_an_album_folder_that_links_out_of_the_target_is_not_followed(db, tmp_path):
    target, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    target.mkdir()
    elsewhere.mkdir()
    (target / "trips").symlink_to(elsewhere, target_is_directory=True)
    report = export_json("--db", db, "--album", "trips", "--album", "beach", "--to", target)
    assert report["counts"] == {"copied": 5, "skipped": 5}
    assert report["skipped_by_reason"] == {"outside the export folder": 5}
    assert list(elsewhere.iterdir()) == []


@pytest.fixture
def hostile_manifest_db(tmp_path, micro_model_path):
    """Photos scored from a manifest whose album names try to escape, and one that vanished after scoring."""
    albums = ["../escape", "/etc/cron.d", "a/b/../../c", "..", ".", "", "CON", "nul.txt", "tab\there", "é" * 200, None]
    paths = [save_jpeg(tmp_path / "src" / f"p{i}.jpg", scene(40 + i)) for i in range(len(albums) + 1)]
    albums.append("gone")
    manifest = tmp_path / "hostile.parquet"
    pq.write_table(pa.table({"path": [str(p) for p in paths], "album": albums}), manifest)
    db = str(tmp_path / "hostile.db")
    score_into(db, manifest, model_path=micro_model_path)
    paths[-1].unlink()
    return db, albums


def test_hostile_album_names_stay_inside_the_target(hostile_manifest_db, tmp_path):
    db, albums = hostile_manifest_db
    target = tmp_path / "deep" / "out"
    before = {path for path in tmp_path.rglob("*")}
    report = export_json("--db", db, "--to", target)
    assert report["counts"] == {"copied": len(albums) - 1, "skipped": 1}
    (skipped,) = [o for o in report["outcomes"] if o["action"] == "skipped"]
    assert skipped["reason"].startswith("missing: ") and skipped["source"].endswith(f"p{len(albums) - 1}.jpg")
    created = {path for path in tmp_path.rglob("*")} - before
    created = {path for path in created if not path.name.startswith("hostile.db")}  # SQLite's -wal/-shm on read
    outside = [path for path in created if target not in path.parents and path not in (target, target.parent)]
    assert outside == []
    assert {path.name for path in target.iterdir()} == {
        "_escape", "_etc_cron.d", "a_b_.._.._c", "no-album", "_CON", "_nul.txt", "tab_here", "é" * 127,
    }
    assert sorted(path.name for path in (target / "no-album").iterdir()) == ["p10.jpg", "p3.jpg", "p4.jpg", "p5.jpg"]
    assert (target / "_escape" / "p0.jpg").read_bytes() == (tmp_path / "src" / "p0.jpg").read_bytes()


def test_safe_component_names():
    assert safe_component("../../etc/passwd", "x") == "_.._etc_passwd"
    assert safe_component("..", "x") == "x" and safe_component(" . ", "x") == "x" and safe_component(None, "x") == "x"
    assert safe_component("lpt1", "x") == "_lpt1" and safe_component("Con.jpg", "x") == "_Con.jpg"
    assert safe_component('a<b>c:d"e|f?g*h', "x") == "a_b_c_d_e_f_g_h"
    assert safe_component("O'Brien; 50%_off 🎉", "x") == "O'Brien; 50%_off 🎉"
    long = safe_component("é" * 300 + ".jpg", "x")
    assert long.endswith(".jpg") and len(long.encode()) <= 255


def test_export_api_reports_sources_it_cannot_use(tmp_path):
    real = save_jpeg(tmp_path / "real.jpg", scene(1))
    items = [
        ExportItem("https://example.com/a.jpg", "web"),
        ExportItem(f"{tmp_path / 'm.parquet'}#3", "embedded"),
        ExportItem("relative/b.jpg", "rel"),
        ExportItem(str(tmp_path), "folder"),
        ExportItem(str(real), "ok"),
    ]
    report = export_images(items, tmp_path / "out")
    assert [(o.action, (o.reason or "").split(":")[0]) for o in report.outcomes] == [
        ("skipped", "not a local file"),
        ("skipped", "embedded in a manifest, no file to export"),
        ("skipped", "not an absolute path"),
        ("skipped", "not a file"),
        ("copied", ""),
    ]


# --- dry runs, manifests, keep-best ------------------------------------------------------------------


def test_dry_run_writes_nothing_and_says_what_it_would_do(db, tmp_path):
    target = tmp_path / "out"
    result = invoke("export", "--db", db, "--album", "trips", "--to", target, "--dry-run", "--layout", "album/rank")
    assert result.stdout.startswith("dry run, nothing written: would be copied 5 -> ")
    assert not target.exists()
    report = export_json("--db", db, "--album", "trips", "--to", target, "--dry-run")
    assert {o["action"] for o in report["outcomes"]} == {"would be copied"} and not target.exists()


def test_export_from_a_filter_manifest(db, tmp_path):
    manifest = tmp_path / "beach.parquet"
    invoke("filter", "--db", db, "--album", "beach", "--min-score", "1", "--manifest", manifest)
    invoke("export", "--from-manifest", manifest, "--to", tmp_path / "out", "--layout", "album/rank")
    ranks = pq.read_table(manifest).to_pylist()
    assert files_under(tmp_path / "out") == [Path("beach", f"{r['rank']:04d}_{Path(r['path']).name}") for r in ranks]
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"path": [ranks[0]["path"]]}), plain)
    refused = invoke(
        "export", "--from-manifest", plain, "--to", tmp_path / "o2", "--layout", "album/rank", expect_ok=False
    )
    assert refused.exit_code == 2 and "needs a rank column" in refused.output
    for scores in (["--db", db], [db]):
        mixed = invoke("export", "--from-manifest", plain, *scores, "--to", tmp_path / "o3", expect_ok=False)
        assert mixed.exit_code == 2 and "drop the scores to read (--db) and the filter options" in mixed.output


def test_keep_best_exports_one_of_each_duplicate_group(db, library, tmp_path):
    export_json("--db", db, "--album", "beach", "--keep-best", "--to", tmp_path / "out")
    exported = files_under(tmp_path / "out" / "beach")
    bursts = [name for name in exported if name.name.startswith("burst_")]
    assert len(bursts) == 1 and Path("sunset.jpg") in exported
    groups = json.loads(invoke("dupes", "--db", db, "--album", "beach", "--json").stdout)
    assert Path(groups[0]["members"][0]["path"]).name == bursts[0].name  # the best one


def test_a_file_as_target_is_refused(db, tmp_path):
    (tmp_path / "file").write_text("x")
    result = invoke("export", "--db", db, "--to", tmp_path / "file", expect_ok=False)
    assert result.exit_code == 2 and "Invalid value for '--to'" in result.output and "is a file" in result.output
    assert (tmp_path / "file").read_text() == "x"
    with pytest.raises(ExportError, match="exists and is not a folder"):  # the library says so too
        export_images([], tmp_path / "file")
