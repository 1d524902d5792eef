"""Read commands on the Parquet result of `score --out`, compared row by row with the database of the same run.

One `score` run writes both outputs (`--out` and `--db`), so every row of
every command must come out the same from either: ranks, statistics, ties,
hostile album names, errors, duplicate groups, runs, export plans. Reading
Parquet must create nothing, and what is not a Parquet result is refused in
one line. The DuckDB renderings of the read side's own SQL constructs are
checked against SQLite, PostgreSQL and Python.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from eat_curate.benchmarks.read_parquet import bench_read_parquet, synthetic_table, write_synthetic_result
from eat_curate.library.connection import read_connection, resolve_model
from eat_curate.library.queries import Selection, album_stats, rank_images, select_images
from eat_curate.library.rank_key import rank_key
from eat_curate.model.model_store import ModelStore
from eat_curate.sinks.sql.bytewise import bytewise
from read_library import HOSTILE_ALBUM, invoke, temporary_pg_database
from test_cli_startup import heavy_imports_of

LAYOUTS = {"file": "scores.parquet", "folder": "scores/"}

# Every read command, with options that reach each of its queries (time bounds: captured and scored).
COMMANDS = [
    ["albums"],
    ["albums", "--sort", "album", "--threshold", "5.5"],
    ["rank"],
    ["rank", "--top", "2", "--by", "std", "--reverse"],
    ["rank", "--album", HOSTILE_ALBUM, "--album", "beach", "--by", "p10"],
    ["filter"],
    ["filter", "--min-score", "5", "--max-std", "3"],
    ["filter", "--since", "2024-06-02", "--until", "2024-07-01 10:00:02"],
    ["filter", "--time", "scored", "--since", "2020-01-01", "--limit", "7"],
    ["filter", "--errors"],
    ["filter", "--keep-best", "--dupe-window", "2"],
    ["dupes", "--window", "2"],
    ["runs"],
    ["export", "--dry-run", "--to", "{tmp}/picks", "--layout", "album/rank", "--min-score", "5"],
]


def score_both(library_root: Path, model_path: Path, out: str, db: str) -> None:
    """One real `score` run writing the Parquet result ``out`` and the database ``db``."""
    invoke("score", library_root, "--model", model_path, "--out", out, "--db", db, "--quiet")


@pytest.fixture(scope="module")
def results(library, micro_model_path, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """{layout: (database, Parquet result)}, each pair written by one run over the read-side library."""
    pairs = {}
    for layout, name in LAYOUTS.items():
        folder = tmp_path_factory.mktemp(f"scored-{layout}")
        pairs[layout] = (str(folder / "photos.db"), f"{folder}/{name}")
        score_both(library.root, micro_model_path, pairs[layout][1], pairs[layout][0])
    return pairs


def as_json(*arguments) -> object:
    return json.loads(invoke(*arguments, "--json").stdout)


# A run's heartbeat is when that sink last saved a batch: each sink beats on its own schedule.
PER_SINK = {"heartbeat_at"}


def assert_same_rows(parquet: object, database: object, where: str = "") -> None:
    """Equal JSON, row by row and field by field; sums of floats may differ in their last bits."""
    if isinstance(database, dict):
        assert isinstance(parquet, dict) and parquet.keys() == database.keys(), where
        for key in database.keys() - PER_SINK:
            assert_same_rows(parquet[key], database[key], f"{where}.{key}")
    elif isinstance(database, list):
        assert isinstance(parquet, list) and len(parquet) == len(database), where
        for index, (left, right) in enumerate(zip(parquet, database)):
            assert_same_rows(left, right, f"{where}[{index}]")
    elif isinstance(database, float):
        assert parquet == pytest.approx(database, rel=1e-12), where
    else:
        assert parquet == database, where


# --- the same rows from both outputs of one run ---------------------------------------------------------


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command)[:40])
def test_a_parquet_result_reads_as_the_database_of_the_same_run(results, layout, command, tmp_path):
    database, parquet = results[layout]
    arguments = [part.replace("{tmp}", str(tmp_path)) for part in command]
    from_database = as_json(*arguments, "--db", database)
    from_parquet = as_json(*arguments, "--db", parquet)
    assert from_database, "every command has rows to compare"
    assert_same_rows(from_parquet, from_database, " ".join(command))


def test_the_comparison_sees_a_difference(results):
    # The check above can fail: the file and the folder come from two runs, with their own run ids.
    first = as_json("filter", "--db", results["file"][1])
    second = as_json("filter", "--db", results["folder"][1])
    with pytest.raises(AssertionError):
        assert_same_rows(first, second)


def test_tables_look_the_same_too(results):
    database, parquet = results["file"]
    for command in (["albums"], ["rank", "--top", "1"], ["dupes"]):
        assert invoke(*command, "--db", parquet).stdout == invoke(*command, "--db", database).stdout


def test_report_reads_a_parquet_result(results, tmp_path):
    database, parquet = results["folder"]
    from_database = invoke("report", "--db", database, "--out", tmp_path / "db.html").stdout
    from_parquet = invoke("report", "--db", parquet, "--out", tmp_path / "parquet.html").stdout
    assert from_parquet.replace("parquet.html", "db.html") == from_database
    assert "18 images in 5 albums" in from_parquet
    as_argument = invoke("report", parquet, "--out", tmp_path / "parquet.html", "--force").stdout
    assert as_argument == from_parquet
    page = (tmp_path / "parquet.html").read_text()
    assert "micro@" in page and "beach" in page  # the model card and the albums made it in


def test_scoring_time_bounds_hold_to_the_microsecond_as_on_postgresql(results):
    # (SQLite compares times rounded to the millisecond; the scores of one run lie microseconds apart.)
    _, parquet = results["file"]
    with read_connection(parquet) as connection:
        model_id = resolve_model(connection, None, parquet)
        everything = select_images(connection, model_id)
        middle = sorted(image.scored_at for image in everything)[len(everything) // 2]
        since = select_images(connection, model_id, Selection(since=middle, time_field="scored"))
        until = select_images(connection, model_id, Selection(until=middle, time_field="scored"))
    assert since == [image for image in everything if image.scored_at >= middle]
    assert until == [image for image in everything if image.scored_at < middle]
    assert len(since) + len(until) == len(everything) and since and until


def test_a_dataset_folder_reads_without_its_trailing_slash(results):
    database, parquet = results["folder"]
    assert as_json("rank", "--db", parquet.rstrip("/")) == as_json("rank", "--db", parquet)


@pytest.mark.parametrize("command", [*COMMANDS[::3], COMMANDS[11], COMMANDS[13], ["xmp", "--dry-run"]],
                         ids=lambda command: " ".join(command)[:40])
def test_the_scores_to_read_may_be_the_first_argument(results, command, tmp_path):
    # `eat-curate rank scores.parquet` is what a user types after `score ./photos --out scores.parquet`.
    arguments = [part.replace("{tmp}", str(tmp_path)) for part in command]
    for scores in results["file"]:
        assert as_json(arguments[0], scores, *arguments[1:]) == as_json(*arguments, "--db", scores)


def test_the_scores_to_read_are_named_once(results, tmp_path):
    database, parquet = results["file"]
    assert as_json("rank", parquet, "--db", parquet) == as_json("rank", parquet)  # the same twice is harmless
    twice = invoke("rank", parquet, "--db", database, expect_ok=False)
    assert twice.exit_code == 2 and f"two sets of scores to read: {parquet} (the argument) and --db {database}" in twice.output
    for command in (["albums"], ["rank"], ["filter"], ["dupes"], ["xmp"], ["report", "--out", tmp_path / "r.html"], ["runs"]):
        nothing = invoke(*command, expect_ok=False)
        assert nothing.exit_code == 2, command
        assert "scores.parquet" in nothing.output and "--db" in nothing.output, command


def test_reading_parquet_imports_no_heavy_library(results):
    for command in (["albums"], ["rank", "--top", "2"], ["runs"]):
        assert heavy_imports_of(*command, "--db", results["file"][1]) == []


def test_runs_with_db_lists_what_runs_with_out_lists(results):
    for _, parquet in results.values():
        assert as_json("runs", "--db", parquet) == as_json("runs", "--out", parquet)


def test_a_result_of_two_models_reads_like_its_database(library, micro_model_path, micro_preset, tmp_path):
    store = ModelStore(tmp_path / "models")  # not the session store: other tests list its models
    second = store.init(micro_preset, "micro-b", seed=1)
    database, parquet = str(tmp_path / "two.db"), str(tmp_path / "two.parquet")
    score_both(library.root, micro_model_path, parquet, database)
    score_both(library.album("beach"), store.resolve("micro-b"), parquet, database)

    refused = invoke("rank", "--db", parquet, expect_ok=False)
    assert refused.exit_code == 2 and "holds scores of 2 models; choose one with --model" in refused.output
    for model in ("micro", "micro-b"):
        for command in (["albums"], ["rank"], ["filter"], ["filter", "--errors"], ["dupes", "--window", "2"]):
            from_database = as_json(*command, "--db", database, "--model", model)
            assert_same_rows(as_json(*command, "--db", parquet, "--model", model), from_database, f"{model} {command}")
    assert [row["model_id"] for row in as_json("rank", "--db", parquet, "--model", "micro-b")] == [second.model_id] * 5


# --- reading creates nothing; what is not a result is refused ------------------------------------------


def tree(folder: Path) -> dict[str, tuple[int, float]]:
    return {str(path): (path.stat().st_size, path.stat().st_mtime) for path in sorted(folder.rglob("*"))}


def test_reading_a_result_creates_and_changes_nothing(results, tmp_path):
    for _, parquet in results.values():
        folder = Path(parquet).parent
        before = tree(folder)
        for command in (["albums"], ["rank"], ["filter"], ["dupes"], ["runs"]):
            invoke(*command, "--db", parquet)
        invoke("export", "--db", parquet, "--to", tmp_path / "picks", "--dry-run")
        assert tree(folder) == before
        assert not (tmp_path / "picks").exists()


@pytest.mark.parametrize("missing", ["gone.parquet", "gone/"])
def test_a_missing_result_is_an_error_and_stays_missing(tmp_path, missing):
    for command in ("albums", "rank", "filter", "dupes", "runs"):
        result = invoke(command, "--db", f"{tmp_path}/{missing}", expect_ok=False)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert result.output.startswith("Error: no scores in") and "gone" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_folder_without_parquet_files_has_no_scores(tmp_path):
    (tmp_path / "notes.txt").write_text("not scores")
    result = invoke("albums", "--db", f"{tmp_path}/", expect_ok=False)
    assert result.exit_code == 2 and "no Parquet files in the folder" in result.output


def test_parquet_that_is_not_a_result_is_refused_in_one_line(tmp_path):
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"path": ["/photos/a.jpg"], "album": ["a"]}), manifest)
    fake = tmp_path / "fake.parquet"
    fake.write_text("path,album\n")
    for db, reason in ((manifest, "is not a result of eat-curate score --out (columns differ: image_id"),
                       (fake, "cannot be read as Parquet")):
        result = invoke("rank", "--db", db, expect_ok=False)
        assert result.exit_code == 2 and reason in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_a_parquet_file_under_any_name_is_read_as_parquet(results, tmp_path):
    renamed = tmp_path / "scores.backup"
    renamed.write_bytes(Path(results["file"][1]).read_bytes())  # the magic bytes tell, not the name
    assert as_json("albums", "--db", renamed) == as_json("albums", "--db", results["file"][1])


# --- DuckDB renders the read side's constructs as SQLite and PostgreSQL order ----------------------------

TRICKY_TEXT = [
    "", " ", "B", "a", "b", "ab", "a b", "a_b", "a%b", "Z", "z", "é", "e\u0301", "É", "ä", "Ä", "ß", "ss", "ﬃ",
    "\u00ff", "\u0100", "\uffff", "\U0001f389", "\U0001f600", "日本", "O'Brien", "tab\tin", "line\nbreak", "a",
]


def ordered_texts(url: str, order) -> list[tuple[str, int]]:
    """TRICKY_TEXT (text, position) in a table on ``url``, read back in the order ``order(table)`` gives."""
    table = sa.Table("texts", sa.MetaData(), sa.Column("text", sa.Text), sa.Column("n", sa.Integer))
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            table.create(connection)
            connection.execute(table.insert(), [{"text": text, "n": n} for n, text in enumerate(TRICKY_TEXT)])
            query = sa.select(table.c.text, table.c.n).order_by(*order(table))
            return [tuple(row) for row in connection.execute(query)]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_duckdb_orders_text_byte_by_byte_like_sqlite_postgresql_and_python(tmp_path):
    texts = list(enumerate(TRICKY_TEXT))
    assert sorted(TRICKY_TEXT, key=lambda text: text.encode("utf-8")) == sorted(TRICKY_TEXT)  # bytes: code points
    # The two "a" tie under the byte order, so the next key decides between them.
    expected = [(text, n) for n, text in sorted(texts, key=lambda item: (item[1].encode("utf-8"), -item[0]))]
    with temporary_pg_database() as pg_url:
        for url in ("duckdb:///:memory:", f"sqlite:///{tmp_path}/texts.db", pg_url):
            assert ordered_texts(url, lambda table: [bytewise(table.c.text), table.c.n.desc()]) == expected, url


def ranked_ids(url: str, rows: list[dict], descending: bool) -> list[list[str]]:
    """Image ids per album, ordered by ``rank_key`` inside ``row_number()`` and inside ORDER BY ... LIMIT."""
    table = sa.Table(
        "ranked", sa.MetaData(), sa.Column("album", sa.Text), sa.Column("image_id", sa.Text),
        sa.Column("mean", sa.Float(53)),
    )
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            table.create(connection)
            connection.execute(table.insert(), rows)
            key = rank_key(table.c.mean, descending, table.c.image_id)
            position = sa.func.row_number().over(partition_by=table.c.album, order_by=[key]).label("position")
            numbered = sa.select(table.c.album, table.c.image_id, position).subquery()
            windowed = sa.select(numbered.c.image_id).order_by(numbered.c.album, numbered.c.position)
            limited = sa.select(table.c.image_id).order_by(key).limit(4)
            return [connection.execute(query).scalars().all() for query in (windowed, limited)]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_rank_key_orders_like_two_keys_on_every_database(tmp_path):
    # Ties in the key, ids that sort differently by bytes than by locale, a negative and a zero key.
    rows = [
        {"album": album, "image_id": image_id, "mean": mean}
        for album in ("x", "y")
        for image_id, mean in (("b", 5.5), ("B", 5.5), ("é", 5.5), ("a", 7.0), ("_z", 0.0), ("Ä", -1.0), ("aa", 5.5))
    ]
    for descending in (True, False):
        def order(row: dict) -> tuple:
            return (-row["mean"] if descending else row["mean"], row["image_id"])

        in_album = [row["image_id"] for row in sorted(rows[:7], key=order)]
        expected = [in_album * 2, [row["image_id"] for row in sorted(rows, key=order)[:4]]]
        with temporary_pg_database() as pg_url:
            for url in ("duckdb:///:memory:", f"sqlite:///{tmp_path}/ranked-{descending}.db", pg_url):
                assert ranked_ids(url, rows, descending) == expected, (url, descending)


def test_rank_key_renders_two_keys_on_sqlite_and_one_on_duckdb():
    table = sa.table("scores", sa.column("mean", sa.Float()), sa.column("image_id", sa.Text()))
    query = sa.select(table.c.image_id).order_by(rank_key(table.c.mean, True, table.c.image_id))
    sqlite_sql = str(query.compile(dialect=sqlite.dialect()))
    duckdb_sql = str(query.compile(dialect=sa.create_engine("duckdb:///:memory:").dialect))
    assert sqlite_sql.endswith("ORDER BY scores.mean DESC, scores.image_id")
    assert duckdb_sql.endswith("ORDER BY struct_pack(k := -(scores.mean), i := scores.image_id)")
    with pytest.raises(TypeError, match="numeric"):
        rank_key(table.c.image_id, True, table.c.image_id)


# --- the million-row figure ----------------------------------------------------------------------------


def test_a_synthetic_result_reads_as_it_was_made(tmp_path):
    rows, albums = 5000, 7
    path = write_synthetic_result(tmp_path / "bench.parquet", rows, albums)
    table = synthetic_table(rows, albums)
    assert pq.read_table(path).equals(table)
    assert len(set(table.column("image_id").to_pylist())) == rows  # ids are unique, as image_id_for's are
    with read_connection(str(path)) as connection:
        model_id = table.column("model_id")[0].as_py()
        stats = album_stats(connection, model_id)
        assert sum(row.images for row in stats) == rows and len(stats) == albums
        best = rank_images(connection, model_id, top=1)
    means = table.column("mean").to_numpy()
    assert max(row.mean for row in best) == pytest.approx(float(means.max()))
    assert all(Path(row.path).parent.name == row.album for row in best)


def test_the_parquet_read_bench_reports_best_and_median():
    result = bench_read_parquet(rows=3000, albums=5, rounds=2)
    figures = {figure.query: figure for figure in result.queries}
    assert set(figures) == {"albums", "rank --top 10"}
    assert all(len(f.seconds) == 2 and f.best_s <= f.median_s for f in figures.values())
    assert result.to_dict()["rows"] == 3000 and result.file_bytes > 0
