"""A batch's buffers, allocated once and reused, and the CUDA streams and events the stages order them with.

A :class:`BatchSlot` travels with its batch from prep to compute to the
writer, which gives it back to the :class:`SlotPool`: the pool's size bounds
the batches in flight, and nothing is allocated per batch.

On a CUDA device:

- prep writes the model's pixels into ``pixels`` (on the device) on the prep
  stream: decoded there, or copied from ``staging`` (pinned host memory)
  without blocking; it records ``ready``;
- compute waits for ``ready`` on the compute stream (the GPU waits, not the
  thread), runs the model and copies the results into ``results`` and
  ``host_hashes`` (pinned) without blocking; it records ``done``;
- the writer waits for ``done`` (the only wait of a batch), builds the
  records, and gives the slot back. Everything queued on the slot is done
  by then, so the next batch may overwrite it.

On the CPU the same code runs with plain tensors, ``pixels`` and
``staging`` are one, and the streams and events are no-ops.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from eat_curate.records import NUM_BINS
from eat_curate.scoring.channel import Channel, Stopped

RESULT_COLUMNS = NUM_BINS + 2  # per image: the probabilities, the mean, the std


class HostEvent:
    """A CUDA event's stand-in on the CPU, where work is done when the call returns."""

    def record(self) -> None:
        pass

    def synchronize(self) -> None:
        pass


class Streams:
    """The prep and compute streams of one device (None on the CPU), and events that order them."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.prep = torch.cuda.Stream(device) if self.cuda else None
        self.compute = torch.cuda.Stream(device) if self.cuda else None

    def on(self, stream: torch.cuda.Stream | None) -> contextlib.AbstractContextManager:
        """Work queued in this block goes to ``stream`` (this thread's current stream; nothing on the CPU)."""
        return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()

    def event(self) -> torch.cuda.Event | HostEvent:
        return torch.cuda.Event() if self.cuda else HostEvent()

    def wait(self, event: torch.cuda.Event | HostEvent) -> None:
        """Make this thread's current stream wait for ``event`` (the GPU waits; the thread goes on)."""
        if self.cuda:
            torch.cuda.current_stream(self.device).wait_event(event)


class BusyClock:
    """How long the compute stage kept its stream busy: CUDA events around each batch's work.

    The GPU timestamps the events when the stream reaches them, so the sum
    of the spans is the time the stream ran the model (and its copies), and
    the gaps between them the time it waited. On a CPU: the compute thread's
    time in the model, by the host's clock.
    """

    def __init__(self, streams: Streams) -> None:
        self.cuda = streams.cuda
        self._spans: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._host_busy = 0.0
        self._host_first: float | None = None
        self._host_last = 0.0

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        """Around one batch's work, queued on this thread's current stream."""
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self._spans.append((start, end))
            return
        started = time.perf_counter()
        yield
        self._host_first = started if self._host_first is None else self._host_first
        self._host_last = time.perf_counter()
        self._host_busy += self._host_last - started

    def busy_seconds(self) -> float:
        """Time spent working (waits for the device to get there)."""
        if not self.cuda:
            return self._host_busy
        return sum(start.elapsed_time(end) for start, end in self._spans) / 1000

    def span_seconds(self) -> float:
        """From the first batch's start to the last one's end: busy plus the gaps in between."""
        if not self.cuda:
            return self._host_last - self._host_first if self._host_first is not None else 0.0
        return self._spans[0][0].elapsed_time(self._spans[-1][1]) / 1000 if self._spans else 0.0


@dataclass
class BatchSlot:
    """The buffers of one batch in flight (see the module's docstring for who uses which, and when)."""

    pixels: torch.Tensor  # (B, S, S, 3) uint8 on the device: the model's input, channels-last
    hashes: torch.Tensor  # (B,) int64 on the device: perceptual hashes of the pictures decoded there
    staging: torch.Tensor  # (B, S, S, 3) uint8 on the host (pinned on CUDA): CPU-decoded pixels
    results: torch.Tensor  # (B, RESULT_COLUMNS) float32 on the host (pinned on CUDA)
    host_hashes: torch.Tensor  # (B,) int64 on the host (pinned on CUDA)
    ready: torch.cuda.Event | HostEvent  # prep's work on the slot is queued up to here
    done: torch.cuda.Event | HostEvent  # the results are on the host once this completes

    @classmethod
    def allocate(cls, batch_size: int, size: int, streams: Streams) -> "BatchSlot":
        device, pinned = streams.device, streams.cuda
        pixels = torch.empty((batch_size, size, size, 3), dtype=torch.uint8, device=device)
        hashes = torch.zeros(batch_size, dtype=torch.int64, device=device)
        return cls(
            pixels=pixels,
            hashes=hashes,
            staging=torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True) if pinned else pixels,
            results=torch.empty((batch_size, RESULT_COLUMNS), dtype=torch.float32, pin_memory=pinned),
            host_hashes=torch.empty(batch_size, dtype=torch.int64, pin_memory=True) if pinned else hashes,
            ready=streams.event(),
            done=streams.event(),
        )

    @property
    def staged_apart(self) -> bool:
        """CPU-decoded pixels need a copy from ``staging`` to ``pixels`` (on a GPU)."""
        return self.staging is not self.pixels


class SlotPool:
    """At most ``channel.capacity`` slots, allocated on first need, handed out and given back."""

    def __init__(self, channel: Channel[BatchSlot], allocate: Callable[[], BatchSlot]) -> None:
        self.channel = channel
        self.allocate = allocate
        self.allocated = 0

    def acquire(self) -> BatchSlot:
        """A free slot; waits for one while all are in flight (raises Stopped if the pipeline stops)."""
        with self.channel.pipe.lock:
            if not self.channel.ready() and self.allocated < self.channel.capacity:
                self.allocated += 1
                fresh = True
            else:
                fresh = False
        return self.allocate() if fresh else self.channel.get()

    def release(self, slot: BatchSlot) -> None:
        with contextlib.suppress(Stopped):  # a stopping pipeline needs it no more
            self.channel.put(slot)
