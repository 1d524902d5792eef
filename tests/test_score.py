"""`eat-curate score` end to end: real folders and manifests into real Parquet, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from conftest import make_photo
from eat_curate.cli import cli
from hostile_files import write_hostile_folder
from stopped_run import signal_mid_run


def rows(out: Path) -> list[dict]:
    return pq.read_table(out).to_pylist()


def sql_rows(url: str, query: str) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(sa.text(query)).mappings()]
    finally:
        engine.dispose()


def test_a_folder_becomes_one_row_per_image(score, photo_folder, tmp_path):
    out = tmp_path / "scores.parquet"
    result = score(photo_folder, "--out", out, "-q")
    assert "scored" not in result.output  # -q (--quiet): no bar, no summary (the untrained warning stays)
    table = rows(out)
    assert sorted((Path(r["path"]).name, r["album"]) for r in table) == [
        ("a.png", "family"), ("b.jpg", "family"), ("trip_0.jpg", "trips"), ("trip_1.jpg", "trips"), ("trip_2.jpg", "trips"),
    ]
    for row in table:
        assert row["error"] is None and len(row["probabilities"]) == 10
        assert sum(row["probabilities"]) == pytest.approx(1, abs=1e-5)
        assert 1 <= row["mean"] <= 10 and row["std"] >= 0
        assert row["model_id"].startswith("micro@") and row["width"] == 320 and row["height"] == 240
        assert len(row["content_hash"]) == 64 and row["bytes"] == Path(row["path"]).stat().st_size
    assert pq.read_schema(out).field("probabilities").type == pa.list_(pa.float32(), 10)


def test_summary_and_json_summary(score, photo_folder, tmp_path):
    text = score(photo_folder, "--out", tmp_path / "a.parquet").output
    assert "scored 5 images" in text and "ok 5, failed 0, skipped 0" in text and "a.parquet" in text
    assert "untrained" in text  # the warning and the model's scope line say what these scores are
    summary = json.loads(score(photo_folder, "--out", tmp_path / "b.parquet", "--json").stdout)
    assert (summary["ok"], summary["failed"], summary["skipped"]) == (5, 0, 0)
    assert summary["images_per_s"] > 0 and summary["model_id"].startswith("micro@")


def test_every_hostile_file_is_one_row_and_the_run_completes(score, tmp_path):
    expected = write_hostile_folder(tmp_path / "odd")
    out = tmp_path / "odd.parquet"
    summary = json.loads(score(tmp_path / "odd", "--out", out, "--json").stdout)
    table = {Path(r["path"]).name: r for r in rows(out)}
    assert set(table) == set(expected)
    for name, kind in expected.items():
        assert table[name]["error_kind"] == kind, name
        assert (table[name]["mean"] is None) == (kind is not None), name
    assert summary["failed"] == sum(kind is not None for kind in expected.values())
    assert summary["failed_by_kind"] == {
        kind: list(expected.values()).count(kind) for kind in set(expected.values()) if kind
    }


def test_records_do_not_depend_on_workers_or_batch_size(score, photo_folder, tmp_path):
    score(photo_folder, "--out", tmp_path / "a.parquet", "--workers", "1", "--batch-size", "1", "--dtype", "fp32")
    score(photo_folder, "--out", tmp_path / "b.parquet", "--workers", "4", "--batch-size", "3", "--dtype", "fp32")
    a = {r["path"]: r for r in rows(tmp_path / "a.parquet")}
    b = {r["path"]: r for r in rows(tmp_path / "b.parquet")}
    assert a.keys() == b.keys()
    for key in a:
        assert np.allclose(a[key]["probabilities"], b[key]["probabilities"], atol=1e-5)
        assert {k: v for k, v in a[key].items() if k not in ("probabilities", "mean", "std", "run_id", "scored_at")} == {
            k: v for k, v in b[key].items() if k not in ("probabilities", "mean", "std", "run_id", "scored_at")
        }


def test_sqlite_and_runs(score, photo_folder, tmp_path):
    db = tmp_path / "photos.db"
    score(photo_folder, "--db", db, "--quiet")
    url = f"sqlite:///{db}"
    scores = sql_rows(url, "SELECT s.*, i.path FROM scores s JOIN images i USING (image_id)")
    assert len(scores) == 5 and {r["album"] for r in scores} == {"trips", "family"}
    assert all(abs(sum(r[f"p{i}"] for i in range(1, 11)) - 1) < 1e-5 for r in scores)
    run = sql_rows(url, "SELECT * FROM runs")[0]
    assert (run["status"], run["ok"], run["failed"], run["skipped"]) == ("completed", 5, 0, 0)
    assert json.loads(run["sources"]) == [str(photo_folder)]
    listed = json.loads(CliRunner().invoke(cli, ["runs", "--db", str(db), "--json"]).stdout)
    assert listed[0]["run_id"] == run["run_id"]


def test_postgresql_gets_the_same_scores_as_parquet(score, photo_folder, tmp_path, pg_url):
    out = tmp_path / "scores.parquet"
    score(photo_folder, "--out", out, "--db", pg_url, "--quiet", "--dtype", "fp32")
    from_parquet = {r["image_id"]: r["mean"] for r in rows(out)}
    from_pg = {r["image_id"]: r["mean"] for r in sql_rows(pg_url, "SELECT image_id, mean FROM scores")}
    assert from_parquet.keys() == from_pg.keys()
    assert all(abs(from_parquet[k] - from_pg[k]) < 1e-5 for k in from_pg)


def test_a_database_password_is_neither_printed_nor_recorded(score, photo_folder, tmp_path, pg_url):
    # The test server trusts every local connection, so any password lets the run in.
    with_password = pg_url.replace("://postgres@", "://postgres:pa55word@")
    assert with_password != pg_url
    out = tmp_path / "s.parquet"
    printed = score(photo_folder, "--out", out, "--db", with_password).stdout
    summary = score(photo_folder, "--out", out, "--db", with_password, "--json").stdout
    recorded = json.dumps(sql_rows(pg_url, "SELECT * FROM runs"), default=str)
    listed = CliRunner().invoke(cli, ["runs", with_password, "--json"]).stdout
    assert "postgres:***@" in printed and "postgres:***@" in summary and "postgres:***@" in recorded
    assert not any("pa55word" in text for text in (printed, summary, recorded, listed))
    assert b"postgres:***@" in str(pq.read_metadata(out).metadata).encode() and b"pa55word" not in out.read_bytes()


def test_a_summary_with_failures_says_how_to_list_them(score, photo_folder, tmp_path):
    (photo_folder / "trips" / "broken.jpg").write_bytes(b"not really a jpeg")
    out = tmp_path / "my scores.parquet"
    printed = score(photo_folder, "--out", out).stdout
    assert "failed 1 (not-an-image 1)" in printed
    assert f"eat-curate filter '{out}' --errors lists what failed" in printed and "the next run tries" in printed
    assert "--errors" not in score(photo_folder, "--out", tmp_path / "none_failed.parquet", "--limit", "2").stdout


def test_rerun_skips_unchanged_images_and_rescores_changed_ones(score, photo_folder, tmp_path):
    out, db = tmp_path / "s.parquet", tmp_path / "s.db"
    score(photo_folder, "--out", out, "--db", db, "--quiet")
    again = json.loads(score(photo_folder, "--out", out, "--db", db, "--json").stdout)
    assert (again["ok"], again["skipped"]) == (0, 5)

    changed = photo_folder / "trips" / "trip_1.jpg"
    make_photo(changed, seed=99, quality=70)  # new content, size and time
    make_photo(photo_folder / "trips" / "trip_3.jpg", seed=42)
    third = json.loads(score(photo_folder, "--out", out, "--db", db, "--json").stdout)
    assert (third["ok"], third["skipped"]) == (2, 4)
    table = rows(out)
    assert len(table) == 6 and len({r["path"] for r in table}) == 6
    assert len(sql_rows(f"sqlite:///{db}", "SELECT * FROM scores")) == 6

    forced = json.loads(score(photo_folder, "--out", out, "--db", db, "--rescore", "--json").stdout)
    assert (forced["ok"], forced["skipped"]) == (6, 0)
    assert len(rows(out)) == 6


def test_failed_images_are_retried_on_the_next_run(score, photo_folder, tmp_path):
    broken = photo_folder / "trips" / "broken.jpg"
    broken.write_bytes(b"not really a jpeg")
    out = tmp_path / "s.parquet"
    score(photo_folder, "--out", out, "--quiet")
    make_photo(broken, seed=5, fmt="JPEG")
    summary = json.loads(score(photo_folder, "--out", out, "--json").stdout)
    assert (summary["ok"], summary["skipped"]) == (1, 5)
    by_name = {Path(r["path"]).name: r for r in rows(out)}
    assert len(by_name) == 6 and by_name["broken.jpg"]["error"] is None


def test_manifest_of_paths_bytes_and_http_urls(score, photo_folder, tmp_path):
    handler = partial(SimpleHTTPRequestHandler, directory=str(photo_folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        manifest = tmp_path / "manifest.parquet"
        pq.write_table(pa.table({
            "uri": [f"{base}/trips/trip_0.jpg", str(photo_folder / "family" / "a.png"), f"{base}/nope.jpg"],
            "album": ["remote", "local", "remote"],
            "photographer": ["ann", "bob", "cy"],
        }), manifest)
        image_bytes = (photo_folder / "family" / "b.jpg").read_bytes()
        embedded = tmp_path / "embedded.parquet"
        pq.write_table(pa.table({"image": [image_bytes, b"junk"], "id": ["b1", "junk1"]}), embedded)

        out = tmp_path / "out.parquet"
        # --album-from album needs the column in every manifest: a clear error, nothing written
        result = score(manifest, embedded, "--out", out, "--album-from", "album", expect_ok=False)
        assert result.exit_code != 0 and "album" in result.output and not out.exists()

        score(manifest, "--out", out, "--album-from", "album", "--quiet")
        score(embedded, "--out", out, "--quiet")
    finally:
        server.shutdown()
        server.server_close()
    table = {r["path"]: r for r in rows(out)}
    assert len(table) == 5
    remote = table[f"{base}/trips/trip_0.jpg"]
    assert remote["album"] == "remote" and remote["error"] is None
    assert json.loads(remote["extra"]) == {"photographer": "ann"}
    assert table[f"{base}/nope.jpg"]["error_kind"] == "unreadable"
    by_id = {r["image_id"]: r for r in table.values()}
    assert by_id["b1"]["error"] is None and by_id["junk1"]["error_kind"] == "not-an-image"


def test_limit_scores_only_the_first_images(score, photo_folder, tmp_path):
    out = tmp_path / "s.parquet"
    score(photo_folder, "--out", out, "--limit", "2", "--quiet")
    assert len(rows(out)) == 2


def test_exclude_leaves_files_and_folders_out_and_the_run_record_keeps_the_patterns(score, photo_folder, tmp_path):
    db = tmp_path / "photos.db"
    score(photo_folder, "--db", db, "--exclude", "family/", "--exclude", "*_2.JPG", "--quiet")
    scored = sql_rows(f"sqlite:///{db}", "SELECT i.path FROM scores s JOIN images i USING (image_id)")
    assert sorted(Path(row["path"]).name for row in scored) == ["trip_0.jpg", "trip_1.jpg"]
    (run,) = sql_rows(f"sqlite:///{db}", "SELECT options FROM runs")
    assert json.loads(run["options"])["exclude"] == ["family/", "*_2.JPG"]
    refused = score(photo_folder, "--db", db, "--exclude", "/", expect_ok=False)
    assert refused.exit_code == 2 and "pattern '/' names nothing" in refused.output


def test_a_run_says_what_exclude_left_out_and_names_a_pattern_that_matched_nothing(score, photo_folder, tmp_path):
    told = score(photo_folder, "--out", tmp_path / "a.parquet", "--exclude", "family/", "--exclude", "*_2.jpg",
                 "--exclude", "famly").stderr
    assert "--exclude left out 1 folder (not entered) and 1 image file" in told
    assert "--exclude 'famly' matched nothing in the folders walked: a typo?" in told
    assert "'family/' matched nothing" not in told
    cut_short = score(photo_folder, "--out", tmp_path / "b.parquet", "--exclude", "famly", "--limit", "2").stderr
    assert "matched nothing" not in cut_short  # --limit stopped the walk: the rest was never looked at
    summary = json.loads(score(photo_folder, "--out", tmp_path / "c.parquet", "--exclude", "family/",
                               "--exclude", "famly", "--json").stdout)
    assert summary["excluded"] == {"patterns": ["family/", "famly"], "folders": 1, "image_files": 0,
                                   "matched_nothing": ["famly"]}
    assert "excluded" not in json.loads(score(photo_folder, "--out", tmp_path / "d.parquet", "--json").stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--out FILE.parquet and/or --db URL"),
        (("--db", "mysql+nodriver://x/y"), "mysql"),
        (("--db", "postgresql+psycopg://postgres@127.0.0.1:1/nope", "--db-retry-for", "0"), "127.0.0.1:1"),
        (("--out", "/proc/forbidden/scores.parquet"), "/proc/forbidden"),
    ],
)
def test_bad_outputs_are_one_line_errors_and_nothing_is_written(score, photo_folder, tmp_path, args, message):
    result = score(photo_folder, *args, expect_ok=False)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_missing_model_is_a_clear_error(photo_folder, tmp_path):
    result = CliRunner().invoke(cli, ["score", str(photo_folder), "--out", str(tmp_path / "x.parquet"),
                                      "--model", "no-such-model", "--models-dir", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no model 'no-such-model'" in result.output  # refused (exit_codes.REFUSED)
    assert not (tmp_path / "x.parquet").exists()


def test_json_stdout_stays_clean_of_what_libraries_print_during_the_run(score, photo_folder, tmp_path, monkeypatch):
    from eat_curate.scoring.predictor import Predictor

    def chatty(method):
        def noisy(self, *args, **kwargs):
            print("(raylet) a task failed; retrying")  # as Ray's driver prints its raylet's messages
            return method(self, *args, **kwargs)

        return noisy

    monkeypatch.setattr(Predictor, "scores_of_pixels", chatty(Predictor.scores_of_pixels))  # on the compute thread
    result = score(photo_folder, "--out", tmp_path / "x.parquet", "--json")

    assert json.loads(result.stdout)["ok"] == 5
    assert "(raylet) a task failed; retrying" in result.stderr


def test_sources_without_a_single_image_are_warned_about_not_refused(score, tmp_path):
    # An empty "incoming" folder is a normal night for a scheduled job, and more often a wrong folder for a person.
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a photo")
    for options in ([], ["--dry-run"]):
        result = score(folder, "--out", tmp_path / "s.parquet", *options)
        assert "warning: the sources hold no image files" in result.stderr, options
    assert "no image files" not in score(folder, "--out", tmp_path / "s.parquet", "--limit", "0").stderr
    assert "no image files" not in score(folder, "--out", tmp_path / "s.parquet", "--quiet").stderr
    assert json.loads(score(folder, "--out", tmp_path / "s.parquet", "--json").stdout)["outcome"] == "done"


def test_a_missing_source_is_a_clear_error(score, tmp_path):
    result = score(tmp_path / "nowhere", "--out", tmp_path / "x.parquet", expect_ok=False)
    assert result.exit_code == 2 and "nowhere" in result.output  # refused (exit_codes.REFUSED)


@pytest.mark.parametrize("name, hint", [("photos.db", "for SQLite, --db"), ("scores.sqlite3", "for SQLite, --db"),
                                        ("scores.csv", "name it .parquet")])
def test_out_named_like_a_database_or_a_table_says_which_option_was_meant(score, photo_folder, tmp_path, name, hint):
    result = score(photo_folder, "--out", tmp_path / name, expect_ok=False)

    assert result.exit_code == 2 and f"writes Parquet, not {Path(name).suffix}: {hint}" in result.output
    assert not (tmp_path / name).exists()


def _count(url: str) -> int:
    try:
        return sql_rows(url, "SELECT count(*) AS n FROM scores")[0]["n"]
    except sa.exc.SQLAlchemyError:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_kill_9_mid_run_then_resume_loses_nothing_and_duplicates_nothing(
    micro_model_path, tmp_path, database, request
):
    folder = tmp_path / "many"
    for i in range(80):
        make_photo(folder / f"album{i % 3}" / f"p{i:03d}.jpg", size=(160, 120), seed=i, quality=80)
    out = tmp_path / "scores.parquet"
    url = f"sqlite:///{tmp_path / 'scores.db'}" if database == "sqlite" else request.getfixturevalue("pg_url")
    command = [sys.executable, "-m", "eat_curate.cli", "score", str(folder), "--model", str(micro_model_path),
               "--out", str(out), "--db", url, "--batch-size", "2", "--workers", "1", "--quiet"]
    killed = signal_mid_run(command, partial(_count, url), signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    written_before = _count(url)
    assert 10 <= written_before < 80

    resumed = subprocess.run([*command[:-1], "--json"], capture_output=True, text=True, check=True)
    summary = json.loads(resumed.stdout)
    assert summary["skipped"] == written_before  # what both sinks held before the kill is not redone
    assert summary["ok"] + summary["skipped"] == 80
    table = pq.read_table(out).to_pylist()
    assert len(table) == 80 and len({r["path"] for r in table}) == 80
    assert _count(url) == 80


@pytest.mark.slow
def test_sigterm_mid_run_ends_it_interrupted_with_its_counts_and_the_rerun_resumes(micro_model_path, tmp_path):
    folder = tmp_path / "many"
    for i in range(60):
        make_photo(folder / f"p{i:03d}.jpg", size=(160, 120), seed=i, quality=80)
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    command = [sys.executable, "-m", "eat_curate.cli", "score", str(folder), "--model", str(micro_model_path),
               "--db", url, "--batch-size", "2", "--workers", "1", "--json"]
    stopped = signal_mid_run(command, partial(_count, url), signal.SIGTERM)  # what a scheduler sends a job it stops
    assert stopped.returncode == 130, stopped.stderr[-2000:]  # exit_codes.INTERRUPTED
    summary = json.loads(stopped.stdout)
    assert summary["outcome"] == "interrupted" and 10 <= summary["ok"] < 60
    (run,) = sql_rows(url, "SELECT status, ok FROM runs")
    assert (run["status"], run["ok"]) == ("interrupted", summary["ok"]) == ("interrupted", _count(url))

    resumed = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    assert (resumed["skipped"], resumed["ok"] + resumed["skipped"]) == (summary["ok"], 60)
    assert _count(url) == 60
