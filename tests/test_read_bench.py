"""`eat-curate bench read` runs end to end on a small scale and leaves nothing behind.

(No timing is asserted: the figures are for people; see sql/README.md.)
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from conftest import PG_ADMIN_URL
from eat_curate.benchmarks.read_side import album_sizes, synthetic_chunks
from read_library import invoke


def _bench_databases() -> set[str]:
    engine = sa.create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as connection:
            names = connection.execute(sa.text("SELECT datname FROM pg_database")).scalars()
            return {name for name in names if name.startswith("eatc_bench_")}
    finally:
        engine.dispose()


def test_bench_read_times_both_databases_and_cleans_up(tmp_path):
    before = _bench_databases()
    sqlite_file = tmp_path / "bench.db"
    result = invoke("bench", "read", "--rows", "3000", "--albums", "12", "--rounds", "1",
                    "--db", sqlite_file, "--db", PG_ADMIN_URL, "--json")
    report = json.loads(result.stdout)
    assert [backend["backend"] for backend in report["backends"]] == ["sqlite", "postgresql"]
    for backend in report["backends"]:
        assert backend["rows"] == 3000 and backend["albums"] == 12
        assert [t["query"] for t in backend["timings"]] == [
            "choose model", "albums", "rank --top 10", f"rank --album ({album_sizes(3000, 12)[0]:,} rows)",
        ]
        assert all(t["indexed_s"] > 0 and t["baseline_s"] > 0 for t in backend["timings"])
    assert not list(tmp_path.iterdir())  # the SQLite file (and its -wal, -shm) deleted
    assert _bench_databases() == before  # the temporary PostgreSQL database dropped


def test_bench_refuses_to_reuse_an_existing_sqlite_file(tmp_path):
    existing = tmp_path / "mine.db"
    existing.write_bytes(b"precious")
    report = json.loads(invoke("bench", "read", "--rows", "1000", "--db", existing, "--json").stdout)
    assert report["backends"] == [] and "exists" in report["skipped"][0]
    assert existing.read_bytes() == b"precious"


def test_synthetic_scores_are_distributions_in_albums():
    images, scores = next(synthetic_chunks(rows=2000, albums=7, seed=1))
    assert len(images) == len(scores) == 2000
    assert len({row[2] for row in scores}) == 7 and sum(album_sizes(2000, 7)) == 2000
    for row in scores[:50]:
        probabilities, mean, std = row[4:14], row[14], row[15]
        assert abs(sum(probabilities) - 1) < 1e-5 and 1 <= mean <= 10 and std >= 0
        assert abs(sum(i * p for i, p in enumerate(probabilities, start=1)) - mean) < 1e-5
