"""`eat-curate samples` writes a folder to try the tool on, and never overwrites a file that is there."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from eat_curate.cli import cli


def test_samples_keeps_a_users_file_at_a_sample_path_and_says_so(tmp_path):
    mine = tmp_path / "hiking" / "scene1_sharp.jpg"
    mine.parent.mkdir()
    mine.write_bytes(b"my own photo")

    result = CliRunner().invoke(cli, ["samples", str(tmp_path), "--scenes", "1"])

    assert result.exit_code == 0, result.output
    assert mine.read_bytes() == b"my own photo"
    assert "wrote 9 photos" in result.output and "kept 1 files already there" in result.output
    assert len(list(tmp_path.rglob("*.jpg"))) == 10


def test_samples_run_twice_writes_nothing_the_second_time(tmp_path):
    CliRunner().invoke(cli, ["samples", str(tmp_path), "--scenes", "1"])
    before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.jpg")}
    result = CliRunner().invoke(cli, ["samples", str(tmp_path), "--scenes", "1"])
    assert "wrote 0 photos" in result.output
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.jpg")} == before


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs needs root")
def test_samples_into_a_read_only_mount_is_one_line(tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    if os.system(f"mount -t tmpfs -o ro,size=1m tmpfs {mount} 2>/dev/null") != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        result = CliRunner().invoke(cli, ["samples", str(mount / "photos")])
    finally:
        os.system(f"umount {mount}")
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: cannot write sample photos into {mount / 'photos'}: Read-only file system"
