"""A full or read-only disk under --out or --db: one line, what was saved kept, and the next run resumes.

Each test mounts a small tmpfs of its own (root only; skipped where mounting
is not permitted), fills it with a file, and runs the real `score` command.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from conftest import make_photo
from eat_curate.cli import cli
from eat_curate.exit_codes import INFRASTRUCTURE
from eat_curate.sinks.sql.database import readonly_sqlite_engine
from small_disk import mounted_tmpfs, remount

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of this test's own, unmounted afterwards."""
    with mounted_tmpfs(tmp_path / "disk", "4m") as disk:
        yield disk


def fill(disk: Path, leave_bytes: int) -> Path:
    """A file taking all the free space of ``disk`` but ``leave_bytes``; remove it to free the space."""
    stats = os.statvfs(disk)
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        remaining = stats.f_bavail * stats.f_frsize - leave_bytes
        while remaining > 0:
            remaining -= handle.write(b"\0" * min(remaining, 1 << 20))
    return filler


def photos(folder: Path, first: int, count: int) -> Path:
    for i in range(first, first + count):
        make_photo(folder / f"album{i % 3}" / f"p{i:03d}.jpg", size=(64, 48), seed=i, quality=80)
    return folder


@pytest.fixture
def score(micro_model_path):
    def invoke(*args):
        return CliRunner().invoke(cli, ["score", *map(str, args), "--model", str(micro_model_path), "--workers", "1"])

    return invoke


def assert_one_line_infrastructure_failure(result, *words: str) -> dict:
    """Exit code 4, one error line naming ``words``, no traceback; returns the --json summary."""
    assert result.exit_code == INFRASTRUCTURE.code, result.output + repr(result.exception)
    assert isinstance(result.exception, SystemExit)  # handled: no traceback
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and all(word in errors[0] for word in words), result.output
    assert "run the same command again" in errors[0]
    summary = json.loads(result.stdout)  # --json: the summary on stdout, the error line on stderr
    assert summary["outcome"] == "infrastructure"
    return summary


def parquet_paths(out: Path) -> list[str]:
    return pq.read_table(out, columns=["path"]).column("path").to_pylist()


def sqlite_count(db: Path) -> int:
    """Rows in ``scores``, read as the read side reads (a read-only mount included)."""
    engine = readonly_sqlite_engine(db)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT COUNT(*) FROM scores")).scalar_one()
    finally:
        engine.dispose()


def test_a_full_disk_under_out_ends_the_run_in_one_line_and_the_next_run_resumes(score, small_disk, tmp_path):
    folder = photos(tmp_path / "photos", 0, 10)
    out = small_disk / "scores.parquet"
    assert score(folder, "--out", out, "--quiet").exit_code == 0
    photos(folder, 10, 30)
    filler = fill(small_disk, leave_bytes=40 << 10)

    full = score(folder, "--out", out, "--batch-size", "2", "--json")

    summary = assert_one_line_infrastructure_failure(full, f"--out {out}", "no space left on device")
    assert summary["ok"] < 30
    assert len(parquet_paths(out)) == 10  # what an earlier run finished is untouched and readable
    filler.unlink()
    resumed = score(folder, "--out", out, "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["skipped"] >= 10 + summary["ok"]  # acknowledged rows were kept
    paths = parquet_paths(out)
    assert len(paths) == len(set(paths)) == 40


def test_a_full_disk_under_db_ends_the_run_in_one_line_and_the_next_run_resumes(score, small_disk, tmp_path):
    folder = photos(tmp_path / "photos", 0, 10)
    db = small_disk / "photos.db"
    assert score(folder, "--db", db, "--quiet").exit_code == 0
    photos(folder, 10, 30)
    filler = fill(small_disk, leave_bytes=96 << 10)

    full = score(folder, "--db", db, "--batch-size", "2", "--json")

    summary = assert_one_line_infrastructure_failure(full, f"--db {db}", "full")
    assert 10 + summary["ok"] == sqlite_count(db)  # every acknowledged batch is there, whole, and readable
    filler.unlink()
    resumed = score(folder, "--db", db, "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["skipped"] == 10 + summary["ok"]
    assert sqlite_count(db) == 40


def test_a_read_only_mount_is_one_line_and_leaves_both_outputs_readable(score, small_disk, tmp_path):
    folder = photos(tmp_path / "photos", 0, 6)
    out, db = small_disk / "scores.parquet", small_disk / "photos.db"
    assert score(folder, "--out", out, "--db", db, "--quiet").exit_code == 0
    photos(folder, 6, 4)
    remount(small_disk, "ro")

    for outputs in (("--out", out), ("--db", db)):
        refused = score(folder, *outputs, "--json")
        assert_one_line_infrastructure_failure(refused, "read-only file system")
    assert len(parquet_paths(out)) == 6 and sqlite_count(db) == 6


def test_files_the_read_side_writes_end_in_one_line_on_a_full_disk_and_leave_nothing_half_written(
        score, small_disk, tmp_path):
    folder = photos(tmp_path / "photos", 0, 6)
    db = tmp_path / "scores.db"
    assert score(folder, "--db", db).exit_code == 0
    fill(small_disk, leave_bytes=0)

    for command, out in (("report", "--out"), ("filter", "--manifest")):
        target = small_disk / f"{command}.out"
        result = CliRunner().invoke(cli, [command, str(db), out, str(target)])
        assert result.exit_code == INFRASTRUCTURE.code, (command, result.output, repr(result.exception))
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and f"{out} {target}" in errors[0] and "no space left" in errors[0].lower(), errors
        assert sorted(path.name for path in small_disk.iterdir()) == ["filler"]  # no half file, no partial
