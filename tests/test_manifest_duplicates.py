"""Manifests naming an image or an id twice: refused up front with the rows named, or every row kept.

The outputs keep one row per path (Parquet) and one per id (SQL), so such a
manifest used to be counted in full and written short, silently. Now the
counts of a run always equal the rows it wrote.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from conftest import make_photo
from eat_curate.cli import cli
from eat_curate.io.items import image_id_for
from eat_curate.io.sources import ManifestError, SourceError, iter_items, read_bytes
from hostile_files import encode, photo



@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return [make_photo(tmp_path / "photos" / f"{name}.jpg", size=(64, 48), seed=seed)
            for seed, name in enumerate(["a", "b", "c"])]  # fmt: skip


def manifest(file: Path, **columns: list) -> str:
    pq.write_table(pa.table(columns), file)
    return str(file)


# --- refused, with the rows named ---------------------------------------------------------------------


def test_rows_sharing_an_id_across_albums_are_refused_naming_the_rows(photos, tmp_path) -> None:
    listed = manifest(tmp_path / "m.parquet", path=[str(p) for p in photos[:2]], album=["A", "B"], id=["p1", "p1"])
    with pytest.raises(ManifestError, match=r"row 1 has the id of row 0 \('p1'\)"):
        iter_items([listed])


def test_repeated_rows_are_refused_naming_the_rows(photos, tmp_path) -> None:
    paths = [str(p) for p in (photos[0], photos[1], photos[0], photos[1])]
    with pytest.raises(ManifestError) as refused:
        iter_items([manifest(tmp_path / "m.parquet", path=paths)])
    message = str(refused.value)
    assert f"row 2 repeats row 0 ({photos[0]}); row 3 repeats row 1 ({photos[1]})" in message
    assert "--duplicates keep" in message and "\n" not in message


def test_one_path_under_two_ids_is_refused(photos, tmp_path) -> None:
    listed = manifest(tmp_path / "m.parquet", path=[str(photos[0]), "photos/a.jpg"], id=["x", "y"])
    with pytest.raises(ManifestError, match=rf"row 1 repeats the path of row 0 \({photos[0]}\)"):
        iter_items([listed])  # "photos/a.jpg" resolves against the manifest's folder to the same file


def test_a_refusal_names_five_rows_and_counts_the_rest(photos, tmp_path) -> None:
    with pytest.raises(ManifestError, match=r"row 5 repeats row 0 \(.*\); and 3 more\."):
        iter_items([manifest(tmp_path / "m.parquet", path=[str(photos[0])] * 9)])


def test_embedded_images_sharing_an_id_are_refused(tmp_path) -> None:
    jpeg = encode(photo(seed=1), "JPEG")
    with pytest.raises(ManifestError, match=r"row 1 has the id of row 0 \('same'\)"):
        iter_items([manifest(tmp_path / "m.parquet", image=[jpeg, jpeg], id=["same", "same"])])


def test_a_manifest_without_duplicates_lists_as_before(photos, tmp_path) -> None:
    items = list(iter_items([manifest(tmp_path / "m.parquet", path=[str(p) for p in photos])]))
    assert [(item.key, item.image_id, item.location) for item in items] == [
        (str(p), image_id_for(str(p)), None) for p in photos
    ]


def test_a_source_given_twice_is_refused(photos) -> None:
    folder = str(photos[0].parent)
    with pytest.raises(SourceError, match="is given twice"):
        iter_items([folder, folder + "/"])


# --- kept, each row under a key and id of its own -----------------------------------------------------


def test_keep_gives_later_rows_their_own_key_and_id_by_row_number(photos, tmp_path) -> None:
    a, b = str(photos[0]), str(photos[1])
    listed = manifest(
        tmp_path / "m.parquet",
        path=[a, b, a, str(photos[2]), a],
        album=["A", "B", "best-of", "C", "D"],
        id=["p1", "p1", None, "p3", "p3"],
    )
    items = list(iter_items([listed], duplicates="keep"))
    assert [(item.key, item.image_id, item.album) for item in items] == [
        (a, "p1", "A"),
        (b, "p1#1", "B"),  # the id of row 0: suffixed with its row
        (f"{a}#2", image_id_for(f"{a}#2"), "best-of"),  # the path of row 0, no id: key and id of its own
        (str(photos[2]), "p3", "C"),
        (f"{a}#4", "p3#4", "D"),  # the path of row 0 and the id of row 3
    ]
    assert read_bytes(items[2]) == read_bytes(items[0])  # a renamed row still reads its path
    assert items[2].size == photos[0].stat().st_size


def test_keep_is_the_same_on_every_listing(photos, tmp_path) -> None:
    listed = manifest(tmp_path / "m.parquet", path=[str(photos[0])] * 3)
    first = [(item.key, item.image_id) for item in iter_items([listed], duplicates="keep")]
    assert first == [(item.key, item.image_id) for item in iter_items([listed], duplicates="keep")]
    assert len(set(first)) == 3


# --- counts equal rows written ------------------------------------------------------------------------


def the_issue_manifest(photos: list[Path], tmp_path: Path) -> str:
    """The two cases of the issue in one: an id shared by two albums, and a row listed twice."""
    a, b, c = (str(p) for p in photos)
    return manifest(tmp_path / "m.parquet", path=[a, b, c, c], album=["A", "B", "C", "C"], id=["p1", "p1", "p3", "p3"])


def written(out: Path, db: Path) -> tuple[int, int, int]:
    """(Parquet rows, SQL score rows, SQL image rows)."""
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        scores = connection.execute(sa.text("SELECT count(*) FROM scores")).scalar_one()
        images = connection.execute(sa.text("SELECT count(*) FROM images")).scalar_one()
    engine.dispose()
    return pq.read_metadata(out).num_rows, scores, images


def test_score_refuses_such_a_manifest_in_one_line_before_writing(photos, tmp_path, micro_model_path) -> None:
    out, db = tmp_path / "x.parquet", tmp_path / "x.db"
    result = CliRunner().invoke(
        cli, ["score", the_issue_manifest(photos, tmp_path), "--out", str(out), "--db", str(db),
              "--model", str(micro_model_path)],  # fmt: skip
    )
    assert result.exit_code != 0
    assert result.output.startswith("Error: manifest ") and result.output.count("\n") == 1
    assert "row 1 has the id of row 0 ('p1')" in result.output and "row 3 repeats row 2" in result.output
    assert not out.exists() and not db.exists()


@pytest.mark.filterwarnings("ignore:model .micro. is untrained")
def test_kept_rows_are_all_counted_and_all_written_to_parquet_and_sql(photos, tmp_path, micro_model_path) -> None:
    from eat_curate.model.checkpoint import load_model
    from eat_curate.runs import RunInfo, new_run_id
    from eat_curate.scoring.engine import LocalEngine
    from eat_curate.scoring.execute import execute_run
    from eat_curate.scoring.predictor import Predictor
    from eat_curate.sinks import open_sinks

    out, db = tmp_path / "x.parquet", tmp_path / "x.db"
    loaded = load_model(micro_model_path)
    card = loaded.card
    run = RunInfo(new_run_id(), card.model_id, card.name, card.sha256, sources=["m.parquet"])
    items = iter_items([the_issue_manifest(photos, tmp_path)], duplicates="keep")

    summary = execute_run(LocalEngine(Predictor(loaded, device="cpu")), items, open_sinks(out=str(out), db=str(db)),
                          run, card)

    assert (summary.scored, summary.ok) == (4, 4)
    assert written(out, db) == (4, 4, 4)


def test_score_duplicates_keep_counts_what_it_writes(photos, tmp_path, micro_model_path) -> None:
    out, db = tmp_path / "x.parquet", tmp_path / "x.db"
    result = CliRunner().invoke(
        cli, ["score", the_issue_manifest(photos, tmp_path), "--duplicates", "keep", "--out", str(out),
              "--db", str(db), "--model", str(micro_model_path)],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert "ok 4," in result.output
    assert written(out, db) == (4, 4, 4)
