"""A RAW and a JPEG of one photograph are one shot: ranked and counted once, exported and rated together.

The library here is real files: DNGs written with pidng from generated
Bayer data (eat_curate.benchmarks.bayer_dngs) beside JPEGs of the same
picture named alike (IMG_0001.DNG + img_0001.jpg), scored by one real
`score` run into SQLite and a Parquet result, and by another into
PostgreSQL. Leads, ties and unscored files are pinned with chosen scores
(score_rows). The key itself is checked against its DuckDB twin, which
Parquet results compute on every read; and a database of the previous
schema version gets every shot filled by its migration.
"""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from PIL import Image

from eat_curate.benchmarks.bayer_dngs import bayer_dng
from eat_curate.io.phash import hamming
from eat_curate.library import DEFAULT_DISTANCE
from eat_curate.library.connection import read_connection
from eat_curate.library.hidden import shown_rows
from eat_curate.library.queries import ranked_scores
from eat_curate.records import ScoreRecord
from eat_curate.sinks import SqlSink
from eat_curate.sinks.shots import shot_key, with_shot_key_sql
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import create_engine, database_url
from read_library import invoke, scene, score_into, temporary_pg_database
from score_rows import scored, write_scores
from sink_records import MODEL, score_run
from test_parquet_read import assert_same_rows

# --- the key ------------------------------------------------------------------------------------------


def test_files_named_alike_but_for_the_extension_are_one_shot():
    assert shot_key("/photos/trip/IMG_0001.CR2") == shot_key("/photos/trip/img_0001.jpg") == "/photos/trip/img_0001"
    assert shot_key("/photos/trip/IMG_0001.CR2") != shot_key("/photos/beach/IMG_0001.JPG")  # another folder
    assert shot_key("/Photos/IMG_1.JPG") != shot_key("/photos/IMG_1.CR2")  # folders compare exactly
    assert shot_key("/p/IMG_1.edit.jpg") == "/p/img_1.edit"  # only the last extension goes
    assert shot_key("/p/.jpg") == "/p/.jpg" and shot_key("/p/README") == "/p/readme"
    assert shot_key("/p/Été.JPG") != shot_key("/p/été.CR2")  # only ASCII letters fold (camera names are ASCII)
    assert shot_key("s3://bucket/roll/DSC_7.NEF") == shot_key("s3://bucket/roll/DSC_7.jpg")
    assert shot_key("/data/manifest.parquet#12") is None  # an embedded image has no name: a shot alone


def long_folder(root: str, length: int, seed: int = 0) -> str:
    """A folder path of about ``length`` characters that compresses badly (as a signed URL's token does)."""
    rng = random.Random(seed)
    parts = []
    while len(root) + sum(len(part) + 1 for part in parts) < length:
        parts.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789é") for _ in range(200)))
    return "/".join([root.rstrip("/"), *parts])


def test_a_key_too_long_for_an_index_is_its_digest_and_still_pairs():
    folder = long_folder("/photos", 3000)
    key = shot_key(f"{folder}/IMG_1.CR2")
    assert key.startswith("sha256:") and len(key) == len("sha256:") + 64
    assert shot_key(f"{folder}/img_1.jpg") == key  # one shot, as with short names
    assert shot_key(f"{folder}/IMG_2.jpg") != key
    assert shot_key("/p/" + "x" * 1000 + ".JPG") == "/p/" + "x" * 1000  # 1,003 bytes: kept as it is
    assert shot_key("/p/" + "é" * 511 + ".JPG").startswith("sha256:")  # 1,025 bytes in UTF-8: a digest


def test_duckdb_computes_the_key_exactly_as_python():
    long_names = [long_folder("/p", 1100, seed) + name for seed, name in enumerate(["/A.JPG", "/a.cr2", "/B"])]
    # Around the bound: the UTF-8 length decides, not the number of characters.
    long_names += ["/p/" + "x" * n + ".JPG" for n in (1020, 1021, 1022)] + ["/p/" + "é" * n for n in (510, 511)]
    tricky = long_names + ["/p/IMG_1.CR2", ".jpg", "/p/.jpg", "/p/a.", "/p/a..jpg", "/p/x.tar.gz", "", "/", "/p/", "noslash.JPG",
              "/m.parquet#12", "/m.parquet#12\n", "/p/n\nme.JPG", "/p/Été.JPG", "/p/İX.JPG", "/p/ß.JPG",
              "C:\\photos\\IMG.JPG", "/p/b#1x.jpg", "/p/\U0001f389.JPG", "/p/\u0301X.JPG", "s3://b/K/DSC.NEF"]
    rng = random.Random(0)
    tricky += ["".join(rng.choice("aAzZ./#\n1é_ İß\u0301\r") for _ in range(rng.randint(0, 12))) for _ in range(3000)]
    connection = duckdb.connect()
    connection.execute("CREATE TABLE files (path TEXT)")
    connection.executemany("INSERT INTO files VALUES (?)", [(path,) for path in tricky])
    keyed = connection.execute(f"SELECT path, shot FROM ({with_shot_key_sql('SELECT path FROM files')})").fetchall()
    assert len(keyed) == len(tricky)
    assert [key for _, key in keyed] == [shot_key(path) for path, _ in keyed]


# --- a library of pairs, scored for real ---------------------------------------------------------------


def write_pairs(root: Path) -> dict[str, Path]:
    """trip/: two RAW + JPEG pairs (names differing in case too) and a JPEG alone; beach/: a JPEG named like a pair.

    Each DNG carries a JPEG preview of its picture, as a camera's does, and scoring reads that preview: the
    pair's pictures then hash as near-duplicates, which is what the shot rule must not report.
    """
    files = {}

    def picture(seed: int) -> np.ndarray:
        return scene(seed, (640, 480)).astype(np.uint8)

    for number, (raw, jpeg) in enumerate((("IMG_0001.DNG", "img_0001.jpg"), ("IMG_0002.DNG", "IMG_0002.JPG")), 1):
        files[raw] = root / "trip" / raw
        files[jpeg] = root / "trip" / jpeg
        files[raw].parent.mkdir(parents=True, exist_ok=True)
        files[raw].write_bytes(bayer_dng(picture(40 + number), preview="jpeg"))  # as cameras embed one
        Image.fromarray(picture(40 + number)).save(files[jpeg], quality=90)
    files["IMG_0003.JPG"] = root / "trip" / "IMG_0003.JPG"
    Image.fromarray(picture(43)).save(files["IMG_0003.JPG"], quality=90)
    files["beach/IMG_0001.JPG"] = root / "beach" / "IMG_0001.JPG"
    files["beach/IMG_0001.JPG"].parent.mkdir()
    Image.fromarray(picture(44)).save(files["beach/IMG_0001.JPG"], quality=90)
    return files


PAIRS = (("IMG_0001.DNG", "img_0001.jpg"), ("IMG_0002.DNG", "IMG_0002.JPG"))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, micro_model_path):
    """The library, and where it was scored: {"sqlite": db, "parquet": result, "postgresql": url}."""
    folder = tmp_path_factory.mktemp("shots")
    files = write_pairs(folder / "photos")
    stores = {"sqlite": str(folder / "photos.db"), "parquet": str(folder / "scores.parquet")}
    invoke("score", folder / "photos", "--model", micro_model_path, "--db", stores["sqlite"],
           "--out", stores["parquet"], "--quiet")
    with temporary_pg_database() as pg_url:
        score_into(pg_url, folder / "photos", model_path=micro_model_path)
        yield files, {**stores, "postgresql": pg_url}


def as_json(*arguments) -> object:
    return json.loads(invoke(*arguments, "--json").stdout)


def stored(db: str) -> dict[str, dict]:
    """Every image row with its score (None for none), by path, read with plain SQL."""
    engine = sa.create_engine(database_url(db))
    query = sa.select(schema.images.c.path, schema.images.c.image_id, schema.images.c.phash, schema.scores.c.mean)
    query = query.outerjoin(schema.scores, schema.scores.c.image_id == schema.images.c.image_id)
    try:
        with engine.connect() as connection:
            return {row.path: row._asdict() for row in connection.execute(query)}
    finally:
        engine.dispose()


def lead_of(rows: dict[str, dict], files: tuple[Path, ...]) -> Path:
    """The file of a shot the read side shows: the highest mean, ties by image id."""
    return min(files, key=lambda path: (-rows[str(path)]["mean"], rows[str(path)]["image_id"]))


@pytest.mark.parametrize("backend", ["sqlite", "parquet", "postgresql"])
def test_a_pair_ranks_once_as_its_best_scored_file_naming_the_other(pairs, backend):
    files, stores = pairs
    rows = stored(stores["sqlite"])
    ranked = as_json("rank", "--db", stores[backend])
    assert [(row["album"], row["rank"]) for row in ranked] == [("beach", 1), ("trip", 1), ("trip", 2), ("trip", 3)]
    by_path = {row["path"]: row for row in ranked}
    for raw, jpeg in PAIRS:
        shot = (files[raw], files[jpeg])
        lead = lead_of(rows, shot)
        other = next(path for path in shot if path != lead)
        row = by_path[str(lead)]
        assert row["also"] == [{"image_id": rows[str(other)]["image_id"], "path": str(other)}]
        assert row["shot"] == shot_key(str(lead)) == shot_key(str(other))
        assert str(other) not in by_path
    assert by_path[str(files["IMG_0003.JPG"])]["also"] == []
    assert by_path[str(files["beach/IMG_0001.JPG"])]["also"] == []  # same name, another folder


@pytest.mark.parametrize("backend", ["sqlite", "parquet", "postgresql"])
def test_albums_count_shots(pairs, backend):
    _, stores = pairs
    stats = {row["album"]: row["images"] for row in as_json("albums", "--db", stores[backend])}
    assert stats == {"trip": 3, "beach": 1}  # five files in trip/, three shots


def test_the_table_shows_the_other_file_by_name(pairs):
    files, stores = pairs
    lines = invoke("rank", "--db", stores["sqlite"]).stdout.splitlines()
    assert lines[0].split() == ["album", "rank", "score", "std", "path", "also"]
    rows = stored(stores["sqlite"])
    lead = lead_of(rows, (files["IMG_0002.DNG"], files["IMG_0002.JPG"]))
    other = files["IMG_0002.JPG"] if lead == files["IMG_0002.DNG"] else files["IMG_0002.DNG"]
    assert any(line.split()[-2:] == [str(lead), other.name] for line in lines)


def test_a_raw_is_never_reported_as_a_duplicate_of_its_jpeg(pairs):
    files, stores = pairs
    rows = stored(stores["sqlite"])
    for raw, jpeg in PAIRS:  # the decoded pictures are alike: without shots they would be near-duplicates
        assert hamming(rows[str(files[raw])]["phash"], rows[str(files[jpeg])]["phash"]) <= DEFAULT_DISTANCE
    for backend in ("sqlite", "parquet", "postgresql"):
        assert as_json("dupes", "--db", stores[backend]) == []


# The read commands whose rows must match between the Parquet result and the database of the same run.
COMMANDS = [
    ["albums"],
    ["rank"],
    ["rank", "--top", "1", "--by", "std"],
    ["filter"],
    ["filter", "--top-percent", "50"],
    ["filter", "--keep-best", "--dupe-window", "2"],
    ["dupes", "--distance", "64"],  # every shot in one group: the leads, and what each carries along
    ["export", "--dry-run", "--to", "{tmp}/picks", "--layout", "album/rank"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command)[:40])
def test_the_parquet_result_reads_its_pairs_as_the_database_does(pairs, command, tmp_path):
    _, stores = pairs
    arguments = [part.replace("{tmp}", str(tmp_path)) for part in command]
    from_database = as_json(*arguments, "--db", stores["sqlite"])
    assert from_database
    assert_same_rows(as_json(*arguments, "--db", stores["parquet"]), from_database, " ".join(command))


RUN_FACTS = {"run_id", "scored_at"}  # PostgreSQL's library was scored by a run of its own


def without_run(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key not in RUN_FACTS} for row in rows]


def test_postgresql_reads_its_pairs_as_sqlite_does(pairs):
    _, stores = pairs
    for command in (["albums"], ["rank"], ["filter"], ["dupes", "--distance", "64"]):
        from_sqlite = as_json(*command, "--db", stores["sqlite"])
        from_postgresql = as_json(*command, "--db", stores["postgresql"])
        if command[0] == "dupes":
            from_sqlite = [{**group, "members": without_run(group["members"])} for group in from_sqlite]
            from_postgresql = [{**group, "members": without_run(group["members"])} for group in from_postgresql]
        else:
            from_sqlite, from_postgresql = without_run(from_sqlite), without_run(from_postgresql)
        assert_same_rows(from_postgresql, from_sqlite, " ".join(command))


# --- both files travel together -----------------------------------------------------------------------


def test_export_copies_both_files_of_a_shot_side_by_side(pairs, tmp_path):
    files, stores = pairs
    invoke("export", "--db", stores["sqlite"], "--album", "trip", "--to", tmp_path / "best", "--layout", "album/rank")
    exported = sorted(path.name for path in (tmp_path / "best" / "trip").iterdir())
    assert len(exported) == 5  # three shots, five files
    for raw, jpeg in PAIRS:
        named = [name for name in exported if name.endswith((raw, jpeg))]
        assert len(named) == 2 and named[0][:5] == named[1][:5]  # "000N_": the shot's rank, on both
        for name in named:
            original = files[raw] if name.endswith(raw) else files[jpeg]
            assert (tmp_path / "best" / "trip" / name).read_bytes() == original.read_bytes()


def test_the_best_shot_of_an_album_brings_its_other_file(pairs, tmp_path):
    files, stores = pairs
    rows = stored(stores["sqlite"])
    shots = [(files[raw], files[jpeg]) for raw, jpeg in PAIRS] + [(files["IMG_0003.JPG"],)]
    def order(shot: tuple[Path, ...]) -> tuple:
        lead = rows[str(lead_of(rows, shot))]
        return (-lead["mean"], lead["image_id"])

    best = min(shots, key=order)
    for backend in ("sqlite", "parquet"):
        target = tmp_path / backend
        report = as_json("export", "--db", stores[backend], "--album", "trip", "--per-album", "1", "--to", target)
        assert sorted(outcome["source"] for outcome in report["outcomes"]) == sorted(map(str, best))


def test_a_selection_manifest_lists_both_files_and_exports_them_together(pairs, tmp_path):
    files, stores = pairs
    manifest = tmp_path / "trip.parquet"
    invoke("filter", "--db", stores["sqlite"], "--album", "trip", "--manifest", manifest)
    table = pq.read_table(manifest).to_pylist()
    assert len(table) == 5 and sum(row["lead"] for row in table) == 3
    for raw, jpeg in PAIRS:
        shot = [row for row in table if row["path"] in (str(files[raw]), str(files[jpeg]))]
        assert [row["lead"] for row in shot] == [True, False]  # the lead first, its other file right after
        assert shot[0]["rank"] == shot[1]["rank"] and shot[0]["mean"] == shot[1]["mean"]
    invoke("export", "--from-manifest", manifest, "--to", tmp_path / "out", "--layout", "album/rank")
    assert len(list((tmp_path / "out" / "trip").iterdir())) == 5


def rating(sidecar: Path) -> str:
    root = ET.parse(sidecar).getroot()
    description = next(root.iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description"))
    return description.get("{http://ns.adobe.com/xap/1.0/}Rating")


def test_xmp_counts_a_shot_once_and_rates_both_files(pairs):
    _, stores = pairs
    # 40 % of the album's 3 shots is 2 shots (ceil 1.2); of its 5 files it would be 2 files.
    result = as_json("xmp", "--db", stores["sqlite"], "--album", "trip", "--stars", "5:40%,1:60%", "--dry-run")
    assert len(result["outcomes"]) == 5 and result["counts"] == {"would create": 5}
    by_shot: dict[str, set[int]] = {}
    for outcome in result["outcomes"]:
        by_shot.setdefault(shot_key(outcome["image"]), set()).add(outcome["rating"])
    assert sorted(by_shot.values(), key=sorted) == [{1}, {5}, {5}]  # one rating per shot, shared by its files


def test_xmp_writes_the_same_rating_beside_each_file(tmp_path):
    folder = tmp_path / "roll"
    folder.mkdir()
    for name in ("DSC_1.NEF", "DSC_1.JPG", "DSC_2.NEF"):
        (folder / name).write_bytes(b"x")
    db = write_scores(tmp_path / "roll.db", [
        scored("raw-1", 6.0, path=folder / "DSC_1.NEF"),
        scored("jpeg-1", 7.0, path=folder / "DSC_1.JPG"),
        scored("raw-2", 5.0, path=folder / "DSC_2.NEF"),
    ])
    invoke("xmp", "--db", db, "--stars", "5:7,1:1")
    assert [rating(folder / name) for name in ("DSC_1.NEF.xmp", "DSC_1.JPG.xmp", "DSC_2.NEF.xmp")] == ["5", "5", "1"]


# --- which file leads ---------------------------------------------------------------------------------


def failed(image_id: str, path: Path, kind: str = "unsupported") -> ScoreRecord:
    return ScoreRecord(image_id=image_id, path=str(path), album="trip", model_id=MODEL, run_id="run-1",
                       error_kind=kind, error="install eat-curate[raw] to read camera RAW files")


def test_the_best_scored_file_leads_and_a_tie_goes_to_the_smaller_id(tmp_path):
    folder = tmp_path / "trip"
    db = write_scores(tmp_path / "lead.db", [
        scored("b-raw", 7.0, album="trip", path=folder / "IMG_1.CR2"),
        scored("a-jpeg", 6.0, album="trip", path=folder / "IMG_1.JPG"),
        scored("d-raw", 5.0, album="trip", path=folder / "IMG_2.CR2"),
        scored("c-jpeg", 5.0, album="trip", path=folder / "IMG_2.JPG"),
    ])
    ranked = as_json("rank", "--db", db)
    assert [(row["image_id"], row["rank"], [also["image_id"] for also in row["also"]]) for row in ranked] == [
        ("b-raw", 1, ["a-jpeg"]),
        ("c-jpeg", 2, ["d-raw"]),
    ]
    # The lead does not follow --by: a shot is one row whatever the ranking key.
    assert [row["image_id"] for row in as_json("rank", "--db", db, "--reverse")] == ["c-jpeg", "b-raw"]


def test_a_file_the_model_could_not_score_never_leads_but_travels_along(tmp_path):
    folder = tmp_path / "trip"
    folder.mkdir()
    for name in ("IMG_1.CR3", "IMG_1.JPG"):
        (folder / name).write_bytes(b"x")
    db = write_scores(tmp_path / "unscored.db", [
        scored("jpeg", 6.0, album="trip", path=folder / "IMG_1.JPG"),
        failed("raw", folder / "IMG_1.CR3"),
    ])
    (row,) = as_json("filter", "--db", db)
    assert row["image_id"] == "jpeg" and row["also"] == [{"image_id": "raw", "path": str(folder / "IMG_1.CR3")}]
    assert [error["image_id"] for error in as_json("filter", "--db", db, "--errors")] == ["raw"]
    report = as_json("export", "--db", db, "--to", tmp_path / "out")
    assert sorted(outcome["action"] for outcome in report["outcomes"]) == ["copied", "copied"]


def test_each_model_has_its_own_lead(tmp_path):
    folder = tmp_path / "trip"
    records = [scored("raw", 7.0, album="trip", path=folder / "IMG_1.CR2"),
               scored("jpeg", 6.0, album="trip", path=folder / "IMG_1.JPG")]
    other = [replace(records[0], model_id="other@1", mean=5.0), replace(records[1], model_id="other@1", mean=8.0)]
    db = write_scores(tmp_path / "models.db", records + other)
    assert [row["image_id"] for row in as_json("rank", "--db", db, "--model", MODEL)] == ["raw"]
    assert [row["image_id"] for row in as_json("rank", "--db", db, "--model", "other@1")] == ["jpeg"]


def test_the_sql_views_show_one_row_per_shot(tmp_path):
    folder = tmp_path / "trip"
    db = write_scores(tmp_path / "views.db", [
        scored("raw", 7.0, album="trip", path=folder / "IMG_1.CR2"),
        scored("jpeg", 6.0, album="trip", path=folder / "IMG_1.JPG"),
        scored("alone", 6.5, album="trip", path=folder / "IMG_2.JPG"),
    ])
    script = (Path(__file__).resolve().parents[1] / "sql" / "views_sqlite.sql").read_text()
    engine = create_engine(database_url(db))
    try:
        with engine.begin() as connection:
            connection.connection.driver_connection.executescript(script)
            ranked = connection.execute(sa.text("SELECT image_id, rank, paired FROM eat_ranked_images ORDER BY rank"))
            stats = connection.execute(sa.text("SELECT images, best_image_id FROM eat_album_stats")).all()
            assert [tuple(row) for row in ranked] == [("raw", 1, 1), ("alone", 2, 0)]
            assert [tuple(row) for row in stats] == [(2, "raw")]
    finally:
        engine.dispose()


def test_with_pairs_ranking_still_streams_from_the_rank_index(tmp_path):
    folder = tmp_path / "trip"
    db = write_scores(tmp_path / "plan.db", [
        scored("raw", 7.0, album="trip", path=folder / "IMG_1.CR2"),
        scored("jpeg", 6.0, album="trip", path=folder / "IMG_1.JPG"),
        scored("alone", 6.5, album="trip", path=folder / "IMG_2.JPG"),
    ])
    with read_connection(db) as connection:
        shown = shown_rows(connection, MODEL)
        query = sa.select(ranked_scores(MODEL, shown=shown))
        sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        plan = " | ".join(row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert "COVERING INDEX ix_scores_model_album_rank" in plan and "TEMP B-TREE" not in plan, plan
    assert "USING INDEX sqlite_autoindex_eat_left_out_1_1 FOR IN-OPERATOR" in plan, plan  # one probe a row


# --- a database of the previous schema version ---------------------------------------------------------


def downgrade_to_version_4(db: str) -> None:
    """``db`` as schema version 4 left it: no images.shot, no index on it."""
    engine = sa.create_engine(database_url(db))
    with engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX ix_images_shot"))
        connection.execute(sa.text("ALTER TABLE images DROP COLUMN shot"))
        connection.execute(sa.text("UPDATE eat_meta SET value = '4' WHERE key = 'schema_version'"))
    engine.dispose()


def stored_shots(db: str) -> dict[str, str | None]:
    engine = sa.create_engine(database_url(db))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(schema.images.c.path, schema.images.c.shot))
            return {path: shot for path, shot in rows}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_db_init_fills_the_shot_of_every_row_of_a_version_4_database(backend, tmp_path, request):
    db = str(tmp_path / "old.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    folder = tmp_path / "trip"
    records = [scored(f"img-{n}", 5.0 + n, album="trip", path=folder / name)
               for n, name in enumerate(["IMG_1.CR2", "img_1.JPG", "IMG_2.JPG", "IMG_3.NEF"])]
    records.append(replace(records[0], image_id="embedded", path="/lists/m.parquet#3", mean=1.0))
    score_run(SqlSink(db), [records])
    downgrade_to_version_4(db)

    refused = invoke("rank", "--db", db, expect_ok=False)
    assert refused.exit_code == 2 and "schema version 4" in refused.output
    assert "eat-curate db init --db" in refused.output
    assert invoke("runs", "--db", db, "--json").stdout  # the run listing still reads it

    upgraded = json.loads(invoke("db", "init", "--db", db, "--json").stdout)
    assert (upgraded["previous_version"], upgraded["version"]) == (4, schema.SCHEMA_VERSION)
    shots = stored_shots(db)
    assert shots == {record.path: shot_key(record.path) for record in records}
    assert shots["/lists/m.parquet#3"] is None
    ranked = as_json("rank", "--db", db)
    assert [(row["image_id"], [also["image_id"] for also in row["also"]]) for row in ranked] == [
        ("img-3", []), ("img-2", []), ("img-1", ["img-0"]), ("embedded", []),
    ]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_shot_in_a_folder_too_deep_for_an_index_is_stored_and_paired(backend, tmp_path, request):
    db = str(tmp_path / "deep.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    folder = long_folder("/photos", 3500)  # past PostgreSQL's 2,704-byte index entries, compressed or not
    signed = "https://bucket.example/roll/IMG_9.jpg?X-Amz-Security-Token=" + long_folder("", 3500).replace("/", "")
    records = [scored("raw", 7.0, album="deep", path=f"{folder}/IMG_1.CR2"),
               scored("jpeg", 6.0, album="deep", path=f"{folder}/img_1.JPG"),
               scored("signed", 5.0, album="deep", path=signed)]
    score_run(SqlSink(db), [records])

    assert stored_shots(db) == {record.path: shot_key(record.path) for record in records}
    ranked = as_json("rank", "--db", db)
    assert [(row["image_id"], [also["path"] for also in row["also"]]) for row in ranked] == [
        ("raw", [f"{folder}/img_1.JPG"]), ("signed", []),
    ]


def as_version_5(db: str, whole_keys: dict[str, str]) -> None:
    """``db`` as schema version 5 left it: an index on path, and ``whole_keys`` (image id -> key) not digested."""
    engine = sa.create_engine(database_url(db))
    with engine.begin() as connection:
        for image_id, key in whole_keys.items():
            connection.execute(sa.text("UPDATE images SET shot = :key WHERE image_id = :id"), {"key": key, "id": image_id})
        connection.execute(sa.text("CREATE INDEX ix_images_path ON images (path)"))
        connection.execute(sa.text("UPDATE eat_meta SET value = '5' WHERE key = 'schema_version'"))
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_version_5_database_reads_as_it_is_unless_it_holds_a_key_version_6_digests(backend, tmp_path):
    with ExitStack() as stack:
        def database(name: str, records: list[ScoreRecord]) -> str:
            db = str(tmp_path / name) if backend == "sqlite" else stack.enter_context(temporary_pg_database())
            score_run(SqlSink(db), [records])
            return db

        folder = long_folder("/photos", 600)  # a long path, but a key within the bound: the same in 5 and 6
        short = database("short.db", [scored("raw", 7.0, album="a", path=f"{folder}/IMG_1.CR2"),
                                      scored("jpeg", 6.0, album="a", path=f"{folder}/img_1.JPG")])
        as_version_5(short, {})
        assert [[also["image_id"] for also in row["also"]] for row in as_json("rank", "--db", short)] == [["jpeg"]]

        folder = long_folder("/photos", 1100)  # PostgreSQL's index held keys up to 2.7 KB
        long = database("long.db", [scored("raw", 7.0, album="a", path=f"{folder}/IMG_1.CR2")])
        as_version_5(long, {"raw": f"{folder}/img_1"})
        refused = invoke("rank", "--db", long, expect_ok=False)
    assert refused.exit_code == 2 and "schema version 5" in refused.output
    assert "eat-curate db init --db" in refused.output


def test_upgrading_a_version_5_database_turns_its_long_keys_into_digests(tmp_path):
    folder = long_folder("/photos", 2000)
    records = [scored("raw", 7.0, album="deep", path=f"{folder}/IMG_1.CR2"),
               scored("jpeg", 6.0, album="deep", path=f"{folder}/img_1.JPG"),
               scored("short", 5.0, album="deep", path="/photos/IMG_2.JPG")]
    db = write_scores(tmp_path / "v5.db", records)
    as_version_5(db, {"raw": f"{folder}/img_1", "jpeg": f"{folder}/img_1"})

    upgraded = json.loads(invoke("db", "init", "--db", db, "--json").stdout)

    assert (upgraded["previous_version"], upgraded["version"]) == (5, schema.SCHEMA_VERSION)
    assert stored_shots(db) == {record.path: shot_key(record.path) for record in records}
    assert [[also["image_id"] for also in row["also"]] for row in as_json("rank", "--db", db)] == [["jpeg"], []]


def test_the_sinks_store_the_key_of_every_path(pairs):
    files, stores = pairs
    for backend in ("sqlite", "postgresql"):
        shots = stored_shots(stores[backend])
        assert shots == {str(path): shot_key(str(path)) for path in files.values()}
