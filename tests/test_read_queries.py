"""The read side's SQL on real SQLite and PostgreSQL databases filled by real `score` runs.

Every statistic is checked against the scores themselves, computed here in
Python; the two databases must give the same rows; album names with
quotes, semicolons, % and _ must match exactly (bound parameters).
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest
import sqlalchemy as sa

from eat_curate.model.model_store import ModelStore
from eat_curate.sinks.sql import schema
from eat_curate.sinks.sql.database import create_engine, create_or_upgrade, database_url
from eat_curate.errors import StoreError
from eat_curate.library.queries import (
    Selection,
    album_stats,
    rank_images,
    ranked_scores,
    select_errors,
    select_images,
)
from eat_curate.library.connection import ModelChoiceError, read_connection, resolve_model
from eat_curate.library.hidden import shown_rows
from eat_curate.library.picks import KeepBest, Picks, choose_images
from eat_curate.library.sql_views import generate_views_sql
from read_library import HOSTILE_ALBUM, LOOKALIKE_ALBUM, score_into, temporary_pg_database

SQL_FOLDER = Path(__file__).resolve().parents[1] / "sql"
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def db(request, databases) -> str:
    return databases[request.param]


def raw_scores(db: str) -> list[dict]:
    """Every score row with its image path, read with the plainest SQL there is."""
    with read_connection(db) as connection:
        query = sa.select(schema.scores, schema.images.c.path, schema.images.c.captured_at).join(
            schema.images, schema.images.c.image_id == schema.scores.c.image_id
        )
        return [dict(row) for row in connection.execute(query).mappings()]


def read(db: str, function, *args, **kwargs):
    with read_connection(db) as connection:
        return function(connection, resolve_model(connection, None, db), *args, **kwargs)


def by_album(rows: list[dict]) -> dict:
    albums: dict = {}
    for row in rows:
        albums.setdefault(row["album"], []).append(row)
    for members in albums.values():
        members.sort(key=lambda row: (-row["mean"], row["image_id"]))
    return albums


# --- statistics and ranks -----------------------------------------------------------------------


def test_album_statistics_are_those_of_the_scores(db):
    rows = raw_scores(db)
    threshold = statistics.median(row["mean"] for row in rows)  # a threshold that splits the library
    stats = {row.album: row for row in read(db, album_stats, threshold=threshold)}
    expected = by_album(rows)
    assert set(stats) == set(expected) == {"trips", "family", "beach", HOSTILE_ALBUM, LOOKALIKE_ALBUM}
    for album, members in expected.items():
        means = [row["mean"] for row in members]
        got = stats[album]
        assert got.images == len(members)
        assert got.mean == pytest.approx(statistics.fmean(means), rel=1e-12)
        assert got.median == pytest.approx(statistics.median(means), rel=1e-12)
        assert got.top10_mean == pytest.approx(statistics.fmean(means[:10]), rel=1e-12)
        assert got.share_above == pytest.approx(sum(m >= threshold for m in means) / len(means))
        assert (got.best_score, got.best_image_id, got.best_path) == (
            means[0], members[0]["image_id"], members[0]["path"],
        )
        assert got.threshold == threshold


def test_albums_sort_by_the_chosen_statistic(db):
    for sort in ("mean", "median", "top10_mean", "images", "best_score"):
        values = [getattr(row, sort) for row in read(db, album_stats, sort=sort)]
        assert values == sorted(values, reverse=True), sort
    names = [row.album for row in read(db, album_stats, sort="album")]
    assert names == sorted(names)  # byte order, on both databases


def test_ranks_count_from_the_best_image_of_each_album(db):
    expected = by_album(raw_scores(db))
    ranked = read(db, rank_images)
    assert [(r.album, r.rank, r.image_id) for r in ranked] == [
        (album, rank, row["image_id"])
        for album in sorted(expected)
        for rank, row in enumerate(expected[album], start=1)
    ]
    top = read(db, rank_images, top=2)
    assert {(r.album, r.rank) for r in top} == {(album, rank) for album in expected for rank in (1, 2)}
    assert all(Path(r.path).is_file() and r.std > 0 for r in top)


def test_rank_by_other_keys_and_in_reverse(db):
    expected = by_album(raw_scores(db))["beach"]
    by_std = read(db, rank_images, albums=["beach"], by="std")
    def ids(rows, key) -> list[str]:
        return [row["image_id"] for row in sorted(rows, key=lambda row: (key(row), row["image_id"]))]

    assert [r.image_id for r in by_std] == ids(expected, lambda row: row["std"])
    by_p10 = read(db, rank_images, albums=["beach"], by="p10")
    assert [r.image_id for r in by_p10] == ids(expected, lambda row: -row["p10"])
    worst_first = read(db, rank_images, albums=["beach"], reverse=True)
    assert [r.image_id for r in worst_first] == ids(expected, lambda row: row["mean"])


def test_identical_photos_tie_and_the_image_id_breaks_the_tie(db):
    trips = [r for r in read(db, rank_images, albums=["trips"]) if Path(r.path).name.startswith("trip_1")]
    assert len(trips) == 2 and trips[0].mean == trips[1].mean  # same bytes, same score
    assert trips[0].image_id < trips[1].image_id and trips[1].rank == trips[0].rank + 1


# --- selections -----------------------------------------------------------------------------------


def test_selection_by_score_spread_album_and_limit(db):
    rows = raw_scores(db)
    middle = statistics.median(row["mean"] for row in rows)
    spread = statistics.median(row["std"] for row in rows)
    chosen = read(db, select_images, Selection(min_score=middle, max_std=spread))
    assert {image.image_id for image in chosen} == {
        row["image_id"] for row in rows if row["mean"] >= middle and row["std"] <= spread
    }
    low = read(db, select_images, Selection(max_score=middle, albums=("trips", "beach")))
    assert {image.image_id for image in low} == {
        row["image_id"] for row in rows if row["mean"] <= middle and row["album"] in ("trips", "beach")
    }
    assert len(read(db, select_images, Selection(limit=3))) == 3
    image = chosen[0]
    assert len(image.probabilities) == 10 and sum(image.probabilities) == pytest.approx(1, abs=1e-5)
    assert image.scored_at.tzinfo is not None and image.phash is not None


def test_selection_keeps_album_ranks(db):
    beach = read(db, select_images, Selection(albums=("beach",)))
    best_two = read(db, select_images, Selection(albums=("beach",), min_score=beach[1].mean))
    assert [(image.image_id, image.rank) for image in best_two] == [(image.image_id, image.rank) for image in beach[:2]]


def test_selection_by_capture_time(db):
    june = read(db, select_images, Selection(since=datetime(2024, 6, 1), until=datetime(2024, 7, 1)))
    assert sorted(Path(image.path).name for image in june) == [  # the copy keeps the original's EXIF
        "copy_of_trip_1.jpg", "trip_0.jpg", "trip_1.jpg", "trip_1_again.jpg", "trip_2.jpg", "trip_3.jpg",
    ]
    burst = read(db, select_images, Selection(since=datetime(2024, 7, 1, 10), until=datetime(2024, 7, 1, 10, 0, 2)))
    assert sorted(Path(image.path).name for image in burst) == ["burst_0.jpg", "burst_1.jpg"]  # until is exclusive


def test_selection_by_scoring_time(db):
    everything = read(db, select_images)
    scored = max(image.scored_at for image in everything)
    assert read(db, select_images, Selection(since=scored + timedelta(seconds=1), time_field="scored")) == []
    hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    recent = read(db, select_images, Selection(since=hour_ago.replace(tzinfo=None), time_field="scored"))
    assert len(recent) == len(everything)


def test_errors_say_which_file_and_why(db, library):
    (error,) = read(db, select_errors)
    assert (error.path, error.album, error.kind) == (str(library.broken), "family", "truncated")
    assert read(db, select_errors, Selection(albums=("trips",))) == []


# --- the same answers on both databases ----------------------------------------------------------


RUN_FACTS = ("run_id", "scored_at", "at")  # each database was filled by its own run


def _facts(rows) -> list[dict]:
    return [{key: item for key, item in row.to_dict().items() if key not in RUN_FACTS} for row in rows]


def _approximately(rows) -> list[dict]:
    """Floats within the last bits of a sum (AVG may add in another order)."""

    def value(key, item):
        return pytest.approx(item, rel=1e-12) if isinstance(item, float) else item

    return [{key: value(key, item) for key, item in row.items()} for row in rows]


@pytest.mark.parametrize(
    "function, kwargs",
    [
        (album_stats, {}),
        (album_stats, {"sort": "top10_mean", "threshold": 5.45}),
        (rank_images, {}),
        (rank_images, {"by": "std", "top": 2}),
        (rank_images, {"reverse": True, "albums": [HOSTILE_ALBUM, "beach"]}),
        (select_images, {"selection": Selection(min_score=5.4, max_std=2.9)}),
        (select_images, {"selection": Selection(since=datetime(2024, 1, 1))}),
        (select_errors, {}),
        (choose_images, {"picks": Picks(top_percent=Fraction(40)), "keep": KeepBest(window=2)}),
        (choose_images, {"picks": Picks(bottom_percent=Fraction(25), overall=True)}),
    ],
)
def test_sqlite_and_postgresql_answer_alike(databases, function, kwargs):
    sqlite_rows = read(databases["sqlite"], function, **kwargs)
    pg_rows = read(databases["postgresql"], function, **kwargs)
    assert sqlite_rows, "the comparison needs rows"
    assert _facts(pg_rows) == _approximately(_facts(sqlite_rows))


def test_selected_images_carry_the_file_facts_the_best_of_a_group_needs(db):
    stored = {row["image_id"]: row for row in raw_scores(db)}
    with read_connection(db) as connection:
        facts = connection.execute(sa.select(schema.images)).mappings().all()
    by_id = {row["image_id"]: row for row in facts}
    for image in read(db, select_images):
        row = by_id[image.image_id]
        assert (image.width, image.height, image.bytes, image.format) == (row["width"], row["height"], row["bytes"],
                                                                         row["format"])
        assert image.mtime == pytest.approx(row["mtime"]) and image.pixels == 320 * 240
        assert image.image_id in stored


# --- user values are bound parameters -----------------------------------------------------------


def test_hostile_album_names_match_exactly(db):
    rows = raw_scores(db)
    for album in (HOSTILE_ALBUM, LOOKALIKE_ALBUM):
        expected = {row["image_id"] for row in rows if row["album"] == album}
        assert len(expected) == 2
        assert {r.image_id for r in read(db, rank_images, albums=[album])} == expected
        assert {i.image_id for i in read(db, select_images, Selection(albums=(album,)))} == expected
    wildcard = HOSTILE_ALBUM.replace("_", "%")  # what a LIKE-based filter would happily match
    assert read(db, select_images, Selection(albums=(wildcard,))) == []
    assert len(raw_scores(db)) == len(rows)  # and nothing was dropped


# --- model choice and empty databases ------------------------------------------------------------


def test_model_is_the_only_one_or_must_be_named(library, micro_model_path, micro_preset, tmp_path):
    own_store = ModelStore(tmp_path / "models")  # not the session store: other tests list its models
    second = own_store.init(micro_preset, "micro-b", seed=1)
    db = str(tmp_path / "two.db")
    score_into(db, library.album("beach"), model_path=micro_model_path)
    score_into(db, library.album("beach"), model_path=own_store.resolve("micro-b"))
    with read_connection(db) as connection:
        with pytest.raises(ModelChoiceError, match="holds scores of 2 models; choose one with --model") as error:
            resolve_model(connection, None, db)
        assert second.model_id in str(error.value) and "(5 scores, 0 errors)" in str(error.value)
        assert resolve_model(connection, "micro-b", db) == second.model_id
        assert resolve_model(connection, second.model_id, db) == second.model_id
        with pytest.raises(ModelChoiceError, match="'nope' has no scores"):
            resolve_model(connection, "nope", db)


def test_databases_without_scores_are_refused(tmp_path, pg_url):
    with pytest.raises(StoreError, match=r"no scores in .*missing.db \(no such file\); run eat-curate score first"):
        with read_connection(str(tmp_path / "missing.db")):
            pass
    assert not (tmp_path / "missing.db").exists()  # reading created nothing
    for db in (str(tmp_path / "empty.db"), pg_url):
        engine = create_engine(database_url(db))
        create_or_upgrade(engine)  # the tables, but no scores
        engine.dispose()
        with read_connection(db) as connection:
            with pytest.raises(StoreError, match="no scores in .*; run eat-curate score first"):
                resolve_model(connection, None, db)
    with pytest.raises(StoreError, match="no scores in"):  # a PostgreSQL database without our tables
        with temporary_pg_database() as bare, read_connection(bare):
            pass


# --- views and the index ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", BACKENDS)
def test_views_files_are_generated_from_the_queries(dialect):
    assert (SQL_FOLDER / f"views_{dialect}.sql").read_text() == generate_views_sql(dialect), (
        f"regenerate: python -m eat_curate.library.sql_views {dialect} > sql/views_{dialect}.sql"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_views_give_what_the_commands_give(databases, backend, tmp_path):
    db = databases[backend]
    script = (SQL_FOLDER / f"views_{backend}.sql").read_text()
    engine = create_engine(database_url(db))
    try:
        with engine.begin() as connection:
            if backend == "sqlite":
                connection.connection.driver_connection.executescript(script)
            else:
                connection.exec_driver_sql(script)
            model_id = resolve_model(connection, None, db)
            stats = connection.execute(
                sa.text("SELECT * FROM eat_album_stats WHERE model_id = :m"), {"m": model_id}
            ).mappings().all()
            ranked = connection.execute(
                sa.text("SELECT image_id, album, rank, mean, path FROM eat_ranked_images WHERE model_id = :m"),
                {"m": model_id},
            ).mappings().all()
            expected_stats = {row.album: row for row in album_stats(connection, model_id)}
            expected_ranks = {row.image_id: row for row in select_images(connection, model_id)}
    finally:
        engine.dispose()
    assert {row["album"]: (row["images"], row["best_image_id"], row["threshold"]) for row in stats} == {
        album: (row.images, row.best_image_id, 5.0) for album, row in expected_stats.items()
    }
    for row in stats:
        assert row["median"] == pytest.approx(expected_stats[row["album"]].median, rel=1e-12)
    assert {row["image_id"]: (row["album"], row["rank"], row["path"]) for row in ranked} == {
        key: (row.album, row.rank, row.path) for key, row in expected_ranks.items()
    }


def test_ranking_streams_from_the_rank_index_on_sqlite(databases):
    with read_connection(databases["sqlite"]) as connection:
        model_id = resolve_model(connection, None, "")
        query = sa.select(ranked_scores(model_id, shown=shown_rows(connection, model_id)))  # as the commands read
        sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        plan = " | ".join(row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert "COVERING INDEX ix_scores_model_album_rank" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort: the index is already in rank order
