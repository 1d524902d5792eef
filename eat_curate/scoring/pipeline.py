"""The in-process engine's pipeline: stages on threads of their own, bounded queues between them.

    caller's thread ─► readers ──────────► prep thread ──────► compute thread ─► caller's thread
    lister: items      (a thread pool)     batches, pixels     the model          writer: records
    (incremental       read, hash, parse,  (device decode,                        ─► sinks
     skip)             CPU decode          hash, copies)

Each stage works on the next batch while the one after it works on the
previous one, so a run takes about as long as its slowest stage, not the
sum of them. Records keep the input order: reads are queued in input
order and the prep stage takes them in that order.

The caller's thread both lists and writes: every sink call (the
incremental lookups while listing, the writes) happens on that one thread,
as it did before the pipeline, so sinks need no locks and Ctrl-C interrupts
a database wait at once. While it waits for room to queue the next input,
it writes whatever batch is ready.

Bounded: at most ``window`` inputs between the lister and the prep stage
(being read or read), at most ``depth`` batches between prep and compute,
and as many between compute and the writer. Stages that hold buffers
(:mod:`eat_curate.scoring.buffers`) bound themselves further with a
:meth:`Pipeline.channel` of their own.

Stopping, whatever stops it:

- a stage raises (a bug, a device error): the stages before the writer stop,
  the writer still writes what was handed to it, every thread is joined,
  and the run raises the stage's exception;
- the caller's thread raises (a sink fails, Ctrl-C): everything stops at
  once, the threads are joined, and the exception goes on. The writer writes
  whole batches only, so a resumed run scores exactly what was not written.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from eat_curate.scoring.channel import Channel, Pipe, Stopped

T = TypeVar("T")  # an input
E = TypeVar("E")  # an input, read
B = TypeVar("B")  # a batch

THREAD_PREFIX = "eat-curate-"


class Pipeline(Generic[T, E, B]):
    """One run of the stages; build a new one for each run."""

    def __init__(self, workers: int, window: int, depth: int = 2) -> None:
        self.workers = workers
        self.pipe = Pipe()
        self.window: Channel[Future[E]] = Channel(self.pipe, window, "window")
        self.prepared: Channel[B] = Channel(self.pipe, depth, "prepared")
        self.scored: Channel[B] = Channel(self.pipe, depth, "scored")
        # The caller's thread waits for room in the window or a batch to write: either wakes it.
        self.room_or_batch = self.pipe.condition()
        self.window.notify_also(self.room_or_batch)
        self.scored.notify_also(self.room_or_batch)
        self.failure: BaseException | None = None

    def channel(self, capacity: int, name: str) -> Channel:
        """A bounded channel that stops with the pipeline: for a stage's own pool of buffers."""
        return Channel(self.pipe, capacity, name)

    def run(
        self,
        items: Iterable[T],
        read: Callable[[T], E],
        prepare: Callable[[Iterator[E]], Iterator[B]],
        compute: Callable[[B], B],
        write: Callable[[B], None],
    ) -> None:
        """``read`` each input (a pool of ``workers`` threads), ``prepare`` batches of them in input order,
        ``compute`` each batch, ``write`` each on this thread; return once all is written or raise.

        ``items`` is iterated on this thread too, lazily: what it does (sink lookups) stays here.
        """
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix=THREAD_PREFIX + "read")
        threads = [
            threading.Thread(target=self._stage, args=(lambda: prepare(self._read_in_order()), self.prepared),
                             name=THREAD_PREFIX + "prep", daemon=True),
            threading.Thread(target=self._stage, args=(lambda: map(compute, self.prepared), self.scored),
                             name=THREAD_PREFIX + "compute", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            try:
                for item in items:
                    self._hand_over(pool, read, item, write)
                self.window.close()
            except Stopped:
                pass  # a stage failed: write what it handed over (below), then raise its exception
            for batch in self.scored:
                write(batch)
        except BaseException:
            self.pipe.abort()
            raise
        finally:
            self.pipe.abort()  # after a normal end every channel is drained: this only wakes nobody
            pool.shutdown(wait=False, cancel_futures=True)  # reads not started never start
            for thread in threads:
                thread.join()
            pool.shutdown(wait=True)
        if self.failure is not None:
            raise self.failure

    def _hand_over(self, pool: ThreadPoolExecutor, read: Callable[[T], E], item: T,
                   write: Callable[[B], None]) -> None:
        """Queue the read of ``item``; while the window is full, write the batches that are ready."""
        while True:
            with self.pipe.lock:
                self.room_or_batch.wait_for(
                    lambda: self.window.aborted or self.window.has_room() or self.scored.ready())
                if self.window.aborted:
                    raise Stopped
                if self.window.has_room():
                    self.window.push(pool.submit(read, item))  # the pool's threads never take the pipe's lock
                    return
                batch = self.scored.take()
            write(batch)

    def _read_in_order(self) -> Iterator[E]:
        for future in self.window:
            yield future.result()  # a reader's exception is raised here, in the prep stage

    def _stage(self, produce: Callable[[], Iterable[B]], out: Channel[B]) -> None:
        """A stage's thread: pass on what it produces; on an exception, stop the stages and keep it."""
        try:
            for value in produce():
                out.put(value)
            out.close()
        except Stopped:
            pass
        except BaseException as error:  # KeyboardInterrupt raised in a stage included: the run re-raises it
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        """Stop every stage before the writer; the writer drains what it was handed."""
        with self.pipe.lock:
            if self.window.aborted and self.failure is None:
                return  # the caller's thread is already stopping the run (its own exception goes on)
            if self.failure is None:
                self.failure = error
            for channel in self.pipe.channels:
                if channel is self.scored:
                    channel.closed = True
                else:
                    channel.aborted = True
                channel.notify()


def batches(entries: Iterable[E], size: int, scored: Callable[[E], bool]) -> Iterator[list[E]]:
    """``entries`` in order, cut into batches of ``size`` entries the model scores.

    Entries it does not score (error rows) ride along in the batch where they
    fall; a batch is also cut at ``4 * size`` entries, so a long run of bad
    inputs is written without waiting for good ones. The cut depends only on
    the entries, never on timing.
    """
    batch: list[E] = []
    counted = 0
    for entry in entries:
        batch.append(entry)
        counted += scored(entry)
        if counted >= size or len(batch) >= 4 * size:
            yield batch
            batch, counted = [], 0
    if batch:
        yield batch
