"""Manifests and sources that are plausible but hostile: each is one clear refusal or one error row, never a crash.

A manifest comes from anywhere: pandas, Spark, a database export, a hand-made
script. Its columns can be repeated, of an unexpected type, or hold values
the outputs cannot store (an id over the SQL column's 128 characters, a NUL
that PostgreSQL text refuses, a date beyond Python's range that a database
wrote for "infinity"). What concerns the whole manifest is refused before
anything is scored (exit 2, one line); what concerns one row is that row's
error, and the other rows are scored.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import make_photo
from eat_curate.io.manifests import ManifestError
from eat_curate.io.sources import SourceError, SourceReadError, iter_items, read_bytes
from hostile_files import encode, photo


def write_manifest(path: Path, table: pa.Table) -> str:
    pq.write_table(table, path)
    return str(path)


@pytest.fixture
def jpeg(tmp_path: Path) -> Path:
    return make_photo(tmp_path / "holiday" / "beach.jpg", size=(64, 48))


# --- the whole manifest is wrong: one line before anything is scored ---------------------------------


@pytest.mark.parametrize("name", ["path", "image", "caption"])
def test_a_manifest_with_two_columns_of_one_name_is_refused(tmp_path: Path, name: str) -> None:
    table = pa.Table.from_arrays([pa.array(["a.jpg"]), pa.array([b"x"]), pa.array(["c"]), pa.array(["d"])],
                                 names=["path", "image", "caption", name])
    manifest = write_manifest(tmp_path / "twice.parquet", table)

    with pytest.raises(ManifestError, match=f"more than one column named '{name}'"):
        list(iter_items([manifest]))


@pytest.mark.parametrize("kind", [pa.struct([("bytes", pa.string())]), pa.struct([("bytes", pa.int64())])])
def test_an_image_struct_whose_bytes_field_is_not_binary_is_refused(tmp_path: Path, kind: pa.DataType) -> None:
    value = {"bytes": "not bytes"} if kind.field(0).type == pa.string() else {"bytes": 7}
    manifest = write_manifest(tmp_path / "hf.parquet", pa.table({"image": pa.array([value], kind)}))

    with pytest.raises(ManifestError, match=r"column image holds struct<bytes: \w+>, not image bytes"):
        iter_items([manifest])


@pytest.mark.parametrize("cells", [pa.array([1, 2]), pa.array([b"a.jpg"]), pa.array([1.5])])
def test_a_path_column_that_holds_no_text_is_refused(tmp_path: Path, cells: pa.Array) -> None:
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": cells}))

    with pytest.raises(ManifestError, match=f"column path holds {cells.type}, not paths or URLs as text"):
        iter_items([manifest])


def test_an_id_longer_than_the_outputs_keep_is_refused_naming_its_row(tmp_path: Path, jpeg: Path) -> None:
    ids = ["ok-1", "x" * 129]
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": [str(jpeg), str(jpeg) + "?"], "id": ids}))

    with pytest.raises(ManifestError, match=r"row 1: its id 'x{40}'\.\.\. is 129 characters long; ids are at most 128"):
        iter_items([manifest])


def test_an_id_holding_a_nul_is_refused(tmp_path: Path, jpeg: Path) -> None:
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": [str(jpeg)], "id": ["a\x00b"]}))

    with pytest.raises(ManifestError, match=r"row 0: its id 'a\\x00b' holds a NUL character"):
        iter_items([manifest])


def test_an_id_kept_for_a_repeated_row_must_still_fit(tmp_path: Path, jpeg: Path) -> None:
    other = make_photo(tmp_path / "holiday" / "pier.jpg", size=(64, 48))
    long_id = "i" * 127  # fits; the repeated row's "i...i#1" would not
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": [str(jpeg), str(other)], "id": [long_id] * 2}))

    with pytest.raises(ManifestError, match="given to a repeated row is over 128 characters"):
        iter_items([manifest], duplicates="keep")


def test_an_album_too_long_to_be_a_name_is_refused_naming_its_row_and_column(tmp_path: Path, jpeg: Path) -> None:
    captions = ["Beach", "word " * 300]  # 1,500 bytes: a caption column given as --album-from
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": [str(jpeg), "b.jpg"], "caption": captions}))

    with pytest.raises(ManifestError, match=r"row 1: its album \(column caption\) is 1,500 bytes long, over the limit"):
        iter_items([manifest], album_from="caption")


def test_a_parquet_dataset_folder_is_refused_rather_than_walked_for_images(tmp_path: Path, jpeg: Path) -> None:
    dataset = tmp_path / "manifest.parquet"  # as Spark writes one: a folder of part files
    dataset.mkdir()
    write_manifest(dataset / "part-00000.parquet", pa.table({"path": [str(jpeg)]}))
    (dataset / "_SUCCESS").touch()

    with pytest.raises(SourceError, match=r"is a folder \(a Parquet dataset\?\).*give its part files"):
        iter_items([str(dataset)])


# --- one row is wrong: that row's error, the others scored -------------------------------------------------


def test_a_path_holding_a_nul_is_that_rows_error(tmp_path: Path, jpeg: Path) -> None:
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": ["beach\x00.jpg", str(jpeg)]}))

    bad, good = iter_items([manifest])

    assert bad.key == f"{manifest}#0" and "\x00" not in bad.key  # no NUL reaches the outputs
    with pytest.raises(SourceReadError, match="manifest row 0: its path holds a NUL character"):
        read_bytes(bad)
    assert read_bytes(good) == jpeg.read_bytes()


def test_a_url_that_cannot_be_parsed_is_that_rows_error(tmp_path: Path, jpeg: Path) -> None:
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": ["http://[::1/beach.jpg", str(jpeg)]}))

    bad, good = iter_items([manifest])

    with pytest.raises(SourceReadError, match=r"manifest row 0: its path is not a valid URL \(Invalid IPv6 URL\)"):
        read_bytes(bad)
    assert (good.key, good.album) == (str(jpeg), "holiday")


def test_dates_beyond_pythons_range_are_carried_as_arrows_text(tmp_path: Path, jpeg: Path) -> None:
    infinity = pa.array([2**63 - 1], pa.timestamp("us"))  # how some databases export "infinity"
    table = pa.table({"path": [str(jpeg)], "taken": infinity, "day": pa.array([2**31 - 1], pa.date32())})
    manifest = write_manifest(tmp_path / "m.parquet", table)

    (item,) = iter_items([manifest], album_from="taken")

    assert item.album == "<value out of range: 9223372036854775807>"
    assert item.extra == {"day": "<value out of range: 2147483647>"}


# --- odd but usable: read as meant --------------------------------------------------------------------------


def test_nan_blank_and_nul_albums_and_ids(tmp_path: Path, jpeg: Path) -> None:
    paths = [str(jpeg), "b.jpg", "c.jpg", "d.jpg"]
    table = pa.table({"path": paths, "album": [float("nan"), 2.5, float("inf"), None],
                      "id": [float("nan"), 7.0, None, float("-inf")]})
    manifest = write_manifest(tmp_path / "floats.parquet", table)
    blank = write_manifest(tmp_path / "blank.parquet", pa.table({"path": paths[:2], "album": ["  ", "a\x00b"],
                                                                   "id": ["", "x"]}))

    nan, number, inf, null = iter_items([manifest])
    empty, nul = iter_items([blank])

    # NaN is a missing value, not the album or id "nan"; a blank cell is one too
    assert [item.album for item in (nan, number, inf, null, empty)] == [None, "2.5", None, None, None]
    assert [item.image_id for item in (number, nul)] == ["7.0", "x"]
    for item in (nan, inf, null, empty):
        assert len(item.image_id) == 16 and item.image_id != "nan"  # derived from the path
    assert nul.album == "a\\x00b"  # shown, as PostgreSQL text cannot hold a NUL


@pytest.mark.parametrize("kind", ["large_binary", "fixed_size_binary", "dictionary"])
def test_embedded_images_in_any_binary_type_are_read(tmp_path: Path, kind: str) -> None:
    images = [encode(photo(seed=1), "PNG"), encode(photo(seed=2), "PNG")]
    column = {
        "large_binary": pa.array(images, pa.large_binary()),
        "fixed_size_binary": pa.array([image[:64] for image in images], pa.binary(64)),  # cut: still one row each
        "dictionary": pa.array([images[0], images[0]]).dictionary_encode(),
    }[kind]
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"image": column}))

    items = list(iter_items([manifest]))

    cells = column.dictionary_decode() if kind == "dictionary" else column
    assert [read_bytes(item) for item in items] == cells.to_pylist()


# --- through the command ---------------------------------------------------------------------------------


def test_score_refuses_a_hostile_manifest_in_one_line_with_exit_2(score, tmp_path: Path, jpeg: Path) -> None:
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": [str(jpeg)], "id": ["x" * 200]}))

    result = score(manifest, "--out", tmp_path / "scores.parquet", expect_ok=False)

    assert result.exit_code == 2, result.output
    assert "is 200 characters long" in result.output and "a bug in eat-curate" not in result.output


def test_score_gives_a_nul_path_its_own_error_row_and_scores_the_rest(score, tmp_path: Path, jpeg: Path) -> None:
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": ["x\x00.jpg", str(jpeg)],
                                                                 "when": pa.array([2**63 - 1, 0], pa.timestamp("us"))}))
    out = tmp_path / "scores.parquet"

    score(manifest, "--out", out)

    rows = {row["path"]: row for row in pq.read_table(out).to_pylist()}
    assert rows[f"{manifest}#0"]["error"] == "manifest row 0: its path holds a NUL character"
    assert rows[str(jpeg)]["error_kind"] is None and rows[str(jpeg)]["mean"] is not None


def test_score_gives_a_path_that_is_not_utf8_its_own_error_row_and_scores_the_rest(
    score, tmp_path: Path, jpeg: Path
) -> None:
    """Parquet does not check that text is UTF-8, and another tool may write such a cell; reading it raised."""
    cells = pa.array([b"holiday/caf\xe9.jpg", str(jpeg).encode()], pa.binary()).view(pa.string())
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": cells, "album": cells}))
    out = tmp_path / "scores.parquet"

    result = score(manifest, "--out", out)

    rows = {row["path"]: row for row in pq.read_table(out).to_pylist()}
    assert rows[f"{manifest}#0"]["error"] == "manifest row 0: its path is not valid UTF-8 text ('holiday/caf\ufffd.jpg')"
    assert rows[str(jpeg)]["error_kind"] is None and rows[str(jpeg)]["mean"] is not None
    assert "a bug in eat-curate" not in result.output


def test_score_ends_a_manifest_whose_pages_are_damaged_in_one_line_with_exit_2(score, tmp_path: Path, jpeg: Path) -> None:
    """Its footer and its path column read (so it passes the checks before the run); a carried column does not."""
    paths = [str(jpeg)] + [str(tmp_path / f"gone{row}.jpg") for row in range(1, 50)]
    table = pa.table({"path": paths, "caption": [f"caption number {row}" * 20 for row in range(50)]})
    path = tmp_path / "m.parquet"
    pq.write_table(table, path, compression="zstd", use_dictionary=False)
    caption = pq.ParquetFile(path).metadata.row_group(0).column(1)
    data = bytearray(path.read_bytes())
    start = caption.data_page_offset
    data[start : start + 16] = b"\xff" * 16  # over the header of the captions' page
    path.write_bytes(data)

    result = score(path, "--out", tmp_path / "scores.parquet", expect_ok=False)

    assert result.exit_code == 2, result.output  # was 1: "unexpected OSError ... a bug in eat-curate"
    assert f"Error: manifest {path}: its rows cannot be read, the file is damaged (" in result.output
    assert "a bug in eat-curate" not in result.output


def folder_deeper_than_an_album(root: Path, length: int = 1500) -> Path:
    """A folder whose path under ``root`` is about ``length`` bytes: eight names of 190 letters."""
    folder = root
    for level in range(length // 190 + 1):
        folder = folder / (chr(ord("a") + level) * 190)
    return folder


def test_a_folder_path_too_long_to_be_an_album_gives_its_images_error_rows(tmp_path: Path) -> None:
    deep = make_photo(folder_deeper_than_an_album(tmp_path / "photos") / "IMG_1.jpg", size=(64, 48))
    near = make_photo(tmp_path / "photos" / "trip" / "IMG_2.jpg", size=(64, 48))

    items = {item.key: item for item in iter_items([str(tmp_path / "photos")], album_from="relative")}

    assert items[str(near)].album == "trip" and items[str(near)].problem is None
    assert items[str(deep)].album is None
    assert "bytes of folder path) is longer than the 1,024 bytes an album may be" in items[str(deep)].problem
    assert "--album-from parent" in items[str(deep)].problem
    parent = {item.key: item for item in iter_items([str(tmp_path / "photos")])}[str(deep)]
    assert parent.album == deep.parent.name and parent.problem is None  # a folder's own name always fits


def test_paths_and_albums_past_what_postgresql_can_index_score_there(score, pg_url, tmp_path: Path) -> None:
    folder = folder_deeper_than_an_album(tmp_path / "photos", length=3200)  # PostgreSQL indexes ~2.7 KB a row
    deep = make_photo(folder / "IMG_1.jpg", size=(64, 48))
    near = make_photo(tmp_path / "photos" / "IMG_2.jpg", size=(64, 48))

    for rule in ("relative", "parent"):
        score(tmp_path / "photos", "--db", pg_url, "--album-from", rule, "--out", tmp_path / f"{rule}.parquet")

    relative = {row["path"]: row for row in pq.read_table(tmp_path / "relative.parquet").to_pylist()}
    assert "longer than the 1,024 bytes an album may be" in relative[str(deep)]["error"]
    assert relative[str(near)]["error"] is None and relative[str(near)]["mean"] is not None
    parent = {row["path"]: row for row in pq.read_table(tmp_path / "parent.parquet").to_pylist()}
    assert parent[str(deep)]["error"] is None and parent[str(deep)]["album"] == folder.name
