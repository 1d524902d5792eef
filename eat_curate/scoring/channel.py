"""Bounded queues between the stages of one pipeline, which stop together.

The channels of a pipeline share one :class:`Pipe`: one lock, so that a
thread can wait on two channels at once (the caller's thread waits for room
to hand over the next input *or* for a scored batch to write: a condition
that both channels notify, :meth:`Channel.notify_also`), and so that
stopping wakes every waiting thread. Each channel wakes only the threads
waiting on it: inputs pass one by one, and waking every thread of the
pipeline for each would cost more than the stages' own work on small images.

A channel ends in one of two ways:

- ``close()``: its producer is done. Its consumer still gets what is queued,
  then its iteration ends; a later ``put`` raises :class:`Stopped`.
- ``abort()``: the run is over for it. Every wait, ``put`` and ``get`` on it
  raises :class:`Stopped`, whatever is queued.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """The pipeline stopped (a stage failed, or the run was interrupted): this thread has nothing more to do."""


class Pipe:
    """The lock that the channels of one pipeline share, and the list of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.channels: list[Channel] = []

    def condition(self) -> threading.Condition:
        """A condition on the pipe's lock, for a thread that waits on several channels."""
        return threading.Condition(self.lock)

    def abort(self) -> None:
        """Abort every channel: each thread waiting on one raises Stopped."""
        with self.lock:
            for channel in self.channels:
                channel.aborted = True
                channel.notify()


class Channel(Generic[T]):
    """A bounded FIFO between threads of one pipe."""

    def __init__(self, pipe: Pipe, capacity: int, name: str = "") -> None:
        if capacity < 1:
            raise ValueError("a channel holds at least one value")
        self.pipe = pipe
        self.capacity = capacity
        self.name = name
        self.closed = False
        self.aborted = False
        self._values: deque[T] = deque()
        self._changed = pipe.condition()
        self._watchers = [self._changed]
        with pipe.lock:
            pipe.channels.append(self)

    def __len__(self) -> int:
        return len(self._values)

    def notify_also(self, condition: threading.Condition) -> None:
        """Notify ``condition`` (on the pipe's lock) too whenever this channel changes."""
        self._watchers.append(condition)

    # has_room, ready, take, push and notify: for a thread holding the pipe's lock.

    def has_room(self) -> bool:
        return len(self._values) < self.capacity

    def ready(self) -> bool:
        """A value is waiting."""
        return bool(self._values)

    def take(self) -> T:
        value = self._values.popleft()
        self.notify()
        return value

    def push(self, value: T) -> None:
        """Queue ``value`` (the caller saw ``has_room()``)."""
        self._values.append(value)
        self.notify()

    def notify(self) -> None:
        for condition in self._watchers:
            condition.notify_all()

    def _wait_for(self, ready: Callable[[], bool]) -> None:
        self._changed.wait_for(lambda: self.aborted or ready())
        if self.aborted:
            raise Stopped

    def put(self, value: T) -> None:
        """Queue ``value``, waiting for room; raises Stopped once the channel is closed or aborted."""
        with self.pipe.lock:
            self._wait_for(lambda: self.closed or self.has_room())
            if self.closed:
                raise Stopped
            self.push(value)

    def get(self) -> T:
        """The next value, waiting for one; raises Stopped once closed and drained, or aborted."""
        with self.pipe.lock:
            self._wait_for(lambda: self.closed or self.ready())
            if not self._values:
                raise Stopped
            return self.take()

    def close(self) -> None:
        with self.pipe.lock:
            self.closed = True
            self.notify()

    def abort(self) -> None:
        with self.pipe.lock:
            self.aborted = True
            self.notify()

    def __iter__(self) -> Iterator[T]:
        """The values in order until the channel is closed and drained; raises Stopped if it is aborted."""
        while True:
            try:
                value = self.get()
            except Stopped:
                if self.aborted:
                    raise
                return
            yield value
