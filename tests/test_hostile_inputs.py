"""Things named like photos that are not files, or not sane ones: each is one error row or one line.

A ``.jpg`` symlink to /dev/zero, a FIFO, a socket, a 3 GiB sparse file: the
reader checks what it opens (devices, FIFOs and sockets are never opened),
refuses a file over the per-image cap from its size (never reading it), and
stops any stream one byte past the cap. Tests of a hang or a runaway read run
under guards (``bounded_call``), so on a reader without these checks they
fail instead of hanging or exhausting the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from bounded_call import GiB, Outcome, call_bounded, fifo_unblocker
from conftest import make_photo
from eat_curate.cli import cli
from eat_curate.io.bounded_read import DEFAULT_MAX_BYTES, ReadRefused, read_at_most
from eat_curate.io.folders import file_item
from eat_curate.io.sources import SourceError, SourceItem, SourceReadError, iter_items, read_bytes
from hostile_files import write_special_files

MiB = 1 << 20


def refusal(error: SourceReadError) -> tuple[str, str]:
    return error.kind, error.reason


# --- reading one input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pipe.jpg", "sock.jpg", "zero.jpg", "huge.jpg"])
def test_a_special_file_is_refused_without_being_read(tmp_path: Path, name: str) -> None:
    expected = write_special_files(tmp_path)
    item = file_item(str(tmp_path / name), album=None)

    # At most 256 MiB of allocations and 30 s: /dev/zero or the sparse file read whole, or a FIFO opened
    # for reading (which waits for a writer), would end as "out of memory" or "timed out".
    outcome = call_bounded(read_bytes, item, seconds=30, extra_memory=256 * MiB)

    assert outcome == Outcome("raised", ("SourceReadError", *expected[name]))


def test_a_file_over_the_cap_is_refused_from_its_size_and_one_at_the_cap_is_read(tmp_path: Path) -> None:
    photo = tmp_path / "big.jpg"
    photo.write_bytes(b"\xff\xd8" + b"\x00" * 1998)  # 2000 bytes
    item = file_item(str(photo), album=None)

    with pytest.raises(SourceReadError) as refused:
        read_bytes(item, max_bytes=1999)
    assert refusal(refused.value) == ("too-large", "2,000 bytes, over the limit of 1,999 bytes per image")
    assert len(read_bytes(item, max_bytes=2000)) == 2000


def test_the_default_cap_is_512_mib() -> None:
    assert DEFAULT_MAX_BYTES == 512 * MiB


def test_embedded_bytes_over_the_cap_are_refused_too() -> None:
    item = SourceItem(key="m.parquet#0", image_id="x", album=None, data=b"\x00" * 100)
    with pytest.raises(SourceReadError) as refused:
        read_bytes(item, max_bytes=99)
    assert refusal(refused.value) == ("too-large", "100 bytes, over the limit of 99 bytes per image")


class EndlessStream:
    """Like /dev/zero: answers every read in full, forever; counts what it gave."""

    def __init__(self) -> None:
        self.given = 0

    def read(self, size: int = -1) -> bytes:
        size = 1 << 16 if size < 0 else size
        self.given += size
        return b"\x00" * size


def test_a_stream_without_a_known_size_is_read_one_byte_past_the_cap_and_no_further() -> None:
    stream = EndlessStream()
    with pytest.raises(ReadRefused, match="over the limit of 3 MiB per image"):
        read_at_most(stream, 3 * MiB)
    assert stream.given == 3 * MiB + 1


def test_a_special_file_given_as_the_whole_source_fails_in_one_line(tmp_path: Path) -> None:
    write_special_files(tmp_path, with_dev_zero=False, with_sparse=False)
    with pytest.raises(SourceError, match=r"pipe\.jpg: not a regular file \(FIFO\)$"):
        iter_items([str(tmp_path / "pipe.jpg")])


# --- through the command line --------------------------------------------------------------------------


def test_score_gives_one_error_row_per_special_file_and_never_blocks(tmp_path: Path, micro_model_path) -> None:
    folder = tmp_path / "photos"
    expected = write_special_files(folder, with_dev_zero=False, with_sparse=False)  # in-process: nothing endless
    make_photo(folder / "photo.jpg", size=(64, 48))
    out = tmp_path / "scores.parquet"

    with fifo_unblocker([folder / "pipe.jpg"]) as guard:
        result = CliRunner().invoke(cli, ["score", str(folder), "--out", str(out), "--model", str(micro_model_path)])

    assert guard.unblocked == set(), "a reader waited on the FIFO"
    assert result.exit_code == 0, result.output
    rows = {Path(row["path"]).name: (row["error_kind"], row["error"]) for row in pq.read_table(out).to_pylist()}
    assert rows == {"photo.jpg": (None, None), **expected}
    assert "ok 1, failed 2 (unreadable 2)" in result.output


def test_a_file_over_the_cap_becomes_a_too_large_row(tmp_path: Path) -> None:
    from eat_curate.scoring.tasks import read_item

    photo = tmp_path / "big.jpg"
    with open(photo, "wb") as handle:
        handle.truncate(DEFAULT_MAX_BYTES + 1)  # sparse: no disk, and never read
    assert read_item(file_item(str(photo), album=None)).failure.error_kind == "too-large"


def test_score_max_bytes_sets_the_cap(tmp_path: Path, micro_model_path) -> None:
    small, large = make_photo(tmp_path / "photos" / "small.png", size=(8, 8)), tmp_path / "photos" / "large.png"
    make_photo(large, size=(256, 256))
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(cli, ["score", str(small.parent), "--max-bytes", "4K", "--out", str(out),
                                      "--model", str(micro_model_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {Path(row["path"]).name: (row["error_kind"], row["error"]) for row in pq.read_table(out).to_pylist()}
    over = f"{large.stat().st_size / 1024:.1f} KiB, over the limit of 4 KiB per image"
    assert rows == {"small.png": (None, None), "large.png": ("too-large", over)}


def test_explain_refuses_a_fifo_in_one_line_without_blocking(tmp_path: Path, micro_model_path) -> None:
    write_special_files(tmp_path, with_dev_zero=False, with_sparse=False)
    view = tmp_path / "view.png"

    with fifo_unblocker([tmp_path / "pipe.jpg"]) as guard:
        result = CliRunner().invoke(
            cli, ["explain", str(tmp_path / "pipe.jpg"), "--model", str(micro_model_path), "--out", str(view)]
        )

    assert guard.unblocked == set(), "explain waited on the FIFO"
    assert result.exit_code != 0
    assert result.output == f"Error: cannot read {tmp_path / 'pipe.jpg'}: not a regular file (FIFO)\n"
    assert not view.exists()


@pytest.mark.slow
def test_score_with_dev_zero_and_a_sparse_3_gib_file_in_the_folder_keeps_its_memory(
    tmp_path: Path, micro_model_path
) -> None:
    """Peak RSS of a `score` process with the hostile files is that of one without them."""
    hostile, plain = tmp_path / "hostile", tmp_path / "plain"
    expected = write_special_files(hostile)
    for folder in (hostile, plain):
        make_photo(folder / "photo.jpg", size=(64, 48))

    peaks = {}
    for folder in (plain, hostile):
        out = tmp_path / f"{folder.name}.parquet"
        peaks[folder.name] = peak_rss_of(
            [sys.executable, "-m", "eat_curate.cli", "score", str(folder), "--out", str(out),
             "--model", str(micro_model_path), "--quiet"]
        )  # fmt: skip
        rows = {Path(row["path"]).name: (row["error_kind"], row["error"]) for row in pq.read_table(out).to_pylist()}
        assert rows["photo.jpg"] == (None, None) and len(rows) == (1 if folder == plain else 1 + len(expected))

    print(f"peak RSS of score: plain folder {peaks['plain'] / MiB:.0f} MiB, with /dev/zero, a FIFO, a socket "
          f"and a 3 GiB sparse file {peaks['hostile'] / MiB:.0f} MiB")
    assert peaks["hostile"] < peaks["plain"] + 128 * MiB


def peak_rss_of(command: list[str], address_space: int = 8 * GiB, seconds: float = 120) -> int:
    """Run ``command`` and return its peak resident set size in bytes, from the kernel's accounting of
    that one child (``wait4``). Under an address-space limit and a time limit, so a runaway read
    fails the test instead of eating the machine."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit_memory)
        timer = threading.Timer(seconds, child.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            timer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        log.seek(0)
        output = log.read().decode(errors="replace")
    assert child.returncode == 0, f"exit {child.returncode}:\n{output[-2000:]}"
    return usage.ru_maxrss * 1024
