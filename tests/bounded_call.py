"""Guards for tests of hangs and runaway reads: such a test must fail, not hang or exhaust the machine.

- :func:`call_bounded` runs a function in a fresh process with a time limit
  and an address-space limit (what it may allocate beyond its start).
- :func:`fifo_unblocker` rescues a reader blocked on a FIFO (by opening the
  FIFO for writing, then closing it) and records that it had to.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GiB = 1 << 30


@dataclass
class Outcome:
    status: str  # "returned", "raised", "out of memory", "timed out" or "died"
    value: Any = None  # returned: the value (bytes as their length); raised: (type name, kind, reason)


def call_bounded(function: Callable, *args: Any, seconds: float = 30.0, extra_memory: int = 1 * GiB) -> Outcome:
    """``function(*args)`` in a spawned process that may allocate ``extra_memory`` beyond its start."""
    context = multiprocessing.get_context("spawn")  # not fork: the test process may hold threads and locks
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, function, args, extra_memory), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(seconds):
            return Outcome("timed out")
        try:
            return Outcome(*receive.recv())
        except EOFError:
            return Outcome("died", child.exitcode)
    finally:
        child.kill()
        child.join()
        receive.close()


def _child(send, function: Callable, args: tuple, extra_memory: int) -> None:
    size = _address_space()
    resource.setrlimit(resource.RLIMIT_AS, (size + extra_memory, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        value = function(*args)
        send.send(("returned", len(value) if isinstance(value, bytes) else value))
    except MemoryError:
        send.send(("out of memory", None))
    except BaseException as error:  # sent as plain values: not every exception pickles
        send.send(("raised", (type(error).__name__, getattr(error, "kind", None), getattr(error, "reason", None))))


def _address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


@dataclass
class FifoGuard:
    unblocked: set[str] = field(default_factory=set)  # FIFOs someone was blocked reading


@contextlib.contextmanager
def fifo_unblocker(fifos: list[Path], after: float = 5.0) -> Iterator[FifoGuard]:
    """While the block runs, any reader still waiting on one of ``fifos`` after ``after`` seconds is
    released (an empty read) and the FIFO noted in ``guard.unblocked``."""
    guard = FifoGuard()
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + after
        while not stop.wait(0.1):
            if time.monotonic() < deadline:
                continue
            for fifo in fifos:
                try:  # succeeds only while a reader waits: that reader is blocked
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                    guard.unblocked.add(Path(fifo).name)
                except OSError as error:
                    if error.errno not in (errno.ENXIO, errno.ENOENT):
                        raise

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield guard
    finally:
        stop.set()
        watcher.join()
