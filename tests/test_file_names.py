"""Odd file names: not UTF-8 (a Latin-1 name from an old camera card or a Windows zip), or holding control characters.

Results are stored as UTF-8 text, so such a file cannot be scored under its
own name: it becomes one error row that names it with its odd bytes shown as
``\\xNN`` and says how to fix it. Nothing crashes, the other images are
scored, and a re-run retries the row without duplicating it. A manifest
whose own path is not UTF-8 is refused in one line.

Names with control characters (a newline, an ESC) are valid UTF-8 and are
scored under their own names; what prints them for people spells those
characters out, so that one image stays one line.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.io.items import NOT_UTF8_NAME, printable_path
from eat_curate.io.sources import iter_items
from hostile_files import LATIN1_NAME, write_odd_names


def score(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["score", *args])
    return result.exit_code, result.output


def test_printable_path_shows_bytes_that_are_not_utf8_and_leaves_other_names_alone() -> None:
    assert printable_path(os.fsdecode(b"/p/caf\xe9.jpg")) == "/p/caf\\xe9.jpg"
    assert printable_path("/p/café 東京.jpg") == "/p/café 東京.jpg"


def test_listing_names_the_file_as_text_with_the_reason(tmp_path: Path) -> None:
    photos = write_odd_names(tmp_path)

    items = {item.key: item for item in iter_items([str(photos)])}

    assert sorted(items) == [f"{photos}/caf\\xe9.jpg", f"{photos}/good.jpg", f"{photos}/m\\xfcnchen/x.jpg"]
    assert items[f"{photos}/caf\\xe9.jpg"].problem == NOT_UTF8_NAME
    assert items[f"{photos}/m\\xfcnchen/x.jpg"].album == "m\\xfcnchen"
    assert items[f"{photos}/good.jpg"].problem is None
    for key in items:
        key.encode("utf-8")  # storable


def test_score_writes_one_error_row_per_odd_name_to_parquet_and_sqlite(tmp_path: Path, micro_model_path) -> None:
    photos = write_odd_names(tmp_path)
    out, db = tmp_path / "scores.parquet", tmp_path / "scores.db"

    code, output = score(str(photos), "--out", str(out), "--db", str(db), "--model", str(micro_model_path), "--json")

    assert code == 0, output
    summary = json.loads(output[output.index("{"):])
    assert (summary["ok"], summary["failed"]) == (1, 2)
    rows = {Path(row["path"]).name: (row["error_kind"], row["error"]) for row in pq.read_table(out).to_pylist()}
    assert rows == {"good.jpg": (None, None), "caf\\xe9.jpg": ("unreadable", NOT_UTF8_NAME),
                    "x.jpg": ("unreadable", NOT_UTF8_NAME)}
    with sqlite3.connect(db) as connection:
        stored = connection.execute("SELECT path, message FROM images JOIN errors USING (image_id)").fetchall()
        assert connection.execute("SELECT count(*) FROM images").fetchone() == (3,)
    assert sorted(stored) == [(f"{photos}/caf\\xe9.jpg", NOT_UTF8_NAME), (f"{photos}/m\\xfcnchen/x.jpg", NOT_UTF8_NAME)]


def test_a_rerun_retries_the_odd_names_without_duplicating_them(tmp_path: Path, micro_model_path) -> None:
    photos = write_odd_names(tmp_path)
    db = tmp_path / "scores.db"

    for _ in range(2):
        code, output = score(str(photos), "--db", str(db), "--model", str(micro_model_path))
        assert code == 0, output

    assert "ok 0, failed 2 (unreadable 2), skipped 1" in output
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*), (SELECT count(*) FROM errors) FROM images").fetchone() == (3, 2)


def test_an_odd_name_given_as_the_whole_source_is_one_error_row(tmp_path: Path, micro_model_path) -> None:
    photos = write_odd_names(tmp_path)
    out = tmp_path / "scores.parquet"

    code, output = score(os.fsdecode(os.path.join(os.fsencode(photos), LATIN1_NAME)), "--out", str(out),
                         "--model", str(micro_model_path))

    assert code == 0, output
    assert [row["error"] for row in pq.read_table(out).to_pylist()] == [NOT_UTF8_NAME]


def test_a_manifest_whose_own_path_is_not_utf8_is_refused_in_one_line(tmp_path: Path, micro_model_path) -> None:
    photos = write_odd_names(tmp_path)
    manifest = os.path.join(os.fsencode(tmp_path), b"list\xe9.parquet")  # its embedded rows' keys would start with it
    with open(manifest, "wb") as file:
        pq.write_table(pa.table({"image": [(photos / "good.jpg").read_bytes()]}), file)

    code, output = score(os.fsdecode(manifest), "--out", str(tmp_path / "scores.parquet"),
                         "--model", str(micro_model_path))

    assert code != 0
    expected = f"manifest {tmp_path}/list\\xe9.parquet: its path is not valid UTF-8; rename it or its folder"
    assert output == f"Error: {expected}\n"


def test_control_characters_in_names_are_spelled_out_in_tables_and_the_dry_run_list(tmp_path: Path,
                                                                                     micro_model_path) -> None:
    # A newline or an ESC is legal in a file or folder name; printed as is, it would split a table's row
    # or the dry run's one-line-per-image list, or be run by the terminal as a command.
    photos = write_odd_names(tmp_path)
    album = photos / "red\x1b[31m"
    album.mkdir()
    (album / "two\nlines.jpg").write_bytes((photos / "good.jpg").read_bytes())
    db = str(tmp_path / "scores.db")

    listed = CliRunner().invoke(cli, ["score", str(photos), "--db", db, "--model", str(micro_model_path), "--dry-run"])
    assert f"{photos}/red\\x1b[31m/two\\nlines.jpg" in listed.stdout.splitlines()
    assert len(listed.stdout.splitlines()) == 4  # one line per image

    code, output = score(str(photos), "--db", db, "--model", str(micro_model_path))
    assert code == 0, output
    ranked = CliRunner().invoke(cli, ["rank", db])
    row = next(line for line in ranked.stdout.splitlines() if "two" in line)
    assert row.startswith("red\\x1b[31m ") and row.endswith(f"{photos}/red\\x1b[31m/two\\nlines.jpg")
    assert "\x1b" not in ranked.stdout and len(ranked.stdout.splitlines()) == 2 + 2  # header, rule, 2 scored
