"""`--config` given a pipe: read in full as its writer writes, however slowly; a FIFO nothing writes to is
refused in a few seconds, not waited on for ever (opening a FIFO waits for a writer)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import training.config
import training.trainer  # noqa: F401  imported by the command before it reads --config: not part of the timing
from bounded_call import fifo_unblocker
from training.config import build_config

# Settings after more than a pipe's buffer (64 KiB) of comment: read only if the reader reads to the end.
SETTINGS = ("# " + "x" * 100_000 + "\n" + "lr: 1e-4\nbatch-size: 32\n").encode()


@contextmanager
def writing(open_writer, after: float) -> Iterator[None]:
    """A thread that opens the writing end (``open_writer()``, a descriptor) ``after`` seconds from now, writes
    SETTINGS in two parts a moment apart, and closes it; joined at the end of the block."""

    def write() -> None:
        time.sleep(after)
        descriptor = open_writer()
        half = len(SETTINGS) // 2
        os.write(descriptor, SETTINGS[:half])
        time.sleep(0.2)
        os.write(descriptor, SETTINGS[half:])
        os.close(descriptor)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield
    finally:
        writer.join(timeout=10)


def test_a_fifo_nothing_writes_to_is_refused_in_a_few_seconds_not_waited_on(
    tmp_path: Path, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(training.config, "FIFO_WRITER_WAIT_S", 0.5, raising=False)  # 3 s for a user
    fifo = tmp_path / "settings.yaml"
    os.mkfifo(fifo)

    started = time.monotonic()
    with fifo_unblocker([fifo]) as guard:  # opening it waited for a writer for ever: released after 5 s
        result = run("train", "--config", fifo, "--name", "never", expect_ok=False)
    seconds = time.monotonic() - started

    assert not guard.unblocked
    assert result.exit_code == 2
    assert result.output == (
        f"Error: config file {fifo} is a FIFO with no writer: nothing wrote to it within 0.5 s; "
        "give a YAML file, or write the settings into the FIFO\n"
    )
    assert 0.5 <= seconds < 2.5


def test_a_fifo_whose_writer_comes_a_second_late_is_read_in_full(tmp_path: Path) -> None:
    fifo = tmp_path / "settings.yaml"
    os.mkfifo(fifo)

    with writing(lambda: os.open(fifo, os.O_WRONLY), after=1.0):
        config = build_config(fifo)

    assert (config.lr, config.batch_size) == (1e-4, 32)


def test_a_pipe_as_bash_gives_for_process_substitution_is_read_in_full() -> None:
    """``--config <(cat settings.yaml)``: a pipe at /dev/fd/N whose writer is there from the start."""
    read_end, write_end = os.pipe()
    try:
        with writing(lambda: write_end, after=0.3):
            config = build_config(f"/proc/self/fd/{read_end}")
    finally:
        os.close(read_end)

    assert (config.lr, config.batch_size) == (1e-4, 32)
