"""The in-process engine's stages: what each thread of :mod:`eat_curate.scoring.pipeline` does to an input.

    readers (thread pool)  read the bytes, hash them, parse the header; decode on the CPU
                           unless the GPU path's rule sends the image to the device
    Prep (prep thread)     cut batches; put each one's pixels into a slot: decoded on the
                           device (nvJPEG, upright, resized, hashed there), or copied from
                           the CPU decodes through pinned memory
    Compute (its thread)   the model on the slot's pixels; results to pinned memory
    RecordWriter (caller)  one record per input, from whole arrays; every sink

The steps are those of :mod:`eat_curate.scoring.tasks` (the same reads,
decodes and records), so the pipeline writes exactly the records the
one-thread loop did, and those of the Ray engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch

from eat_curate.io.decode import DecodedImage, decode_image
from eat_curate.io.phash import phash_tensor
from eat_curate.io.sources import SourceItem
from eat_curate.records import NUM_BINS, ScoreRecord
from eat_curate.scoring.buffers import BatchSlot, BusyClock, SlotPool, Streams
from eat_curate.scoring.decode_path import decodes_on_device
from eat_curate.scoring.gpu_decode import GpuJpegDecoder, encoded_tensor
from eat_curate.scoring.pipeline import batches
from eat_curate.scoring.progress import Progress
from eat_curate.scoring.tasks import decode_item, deliver, read_item, record_for


@dataclass
class Entry:
    """One input between the readers and the writer: its facts, and its pixels or its bytes."""

    item: SourceItem
    decoded: DecodedImage  # facts and, when decoded on the CPU, pixels; or why it failed
    encoded: torch.Tensor | None = None  # the file's bytes, when the device decodes it
    orientation: int = 1  # EXIF orientation, for the device to apply

    @property
    def ok(self) -> bool:
        return self.decoded.ok

    @property
    def on_device(self) -> bool:
        return self.encoded is not None


# --- readers: one input each, on the pool's threads ------------------------------------------------


def read_on_cpu(item: SourceItem, size: int, draft: bool, max_bytes: int | None) -> Entry:
    """Read and decode on the CPU (:func:`~eat_curate.scoring.tasks.decode_item`)."""
    return Entry(item, decode_item(item, size, draft=draft, max_bytes=max_bytes).decoded)


def read_for_device(item: SourceItem, size: int, fallback_draft: bool, max_bytes: int | None) -> Entry:
    """Read, hash and parse the header; a JPEG the device takes stays encoded, any other image is decoded here.

    The rule is :func:`~eat_curate.scoring.decode_path.decodes_on_device`: the
    image's own bytes decide, so its record never depends on its batch.
    """
    read = read_item(item, with_header=True, max_bytes=max_bytes)
    if not read.ok:
        return Entry(item, read.failure)
    if decodes_on_device(read.header, read.data):
        return Entry(item, read.header.facts, encoded_tensor(read.data), read.header.orientation)
    return Entry(item, decode_image(read.data, size=size, draft=fallback_draft))


# --- prep: batches and their pixels, on the prep thread ---------------------------------------------


@dataclass
class Batch:
    entries: list[Entry]  # in input order
    rows: list[int | None]  # each entry's row in the slot; None for an entry not scored (its error row)
    count: int  # rows filled: 0 .. count
    device_rows: int  # rows 0 .. device_rows decoded on the device (their hashes are the slot's)
    slot: BatchSlot


class Prep:
    """Cuts batches in input order and puts each one's pixels into a slot, on the prep stream."""

    def __init__(self, slots: SlotPool, streams: Streams, batch_size: int, size: int,
                 decoder: GpuJpegDecoder | None = None, fallback_draft: bool = False) -> None:
        self.slots = slots
        self.streams = streams
        self.batch_size = batch_size
        self.size = size
        self.decoder = decoder
        self.fallback_draft = fallback_draft

    def __call__(self, entries: Iterator[Entry]) -> Iterator[Batch]:
        for group in batches(entries, self.batch_size, lambda entry: entry.ok):
            yield self.prepare(group)

    def prepare(self, entries: Sequence[Entry]) -> Batch:
        entries = list(entries)
        rows: list[int | None] = [None] * len(entries)
        slot = self.slots.acquire()  # (allocated outside inference mode: plain tensors, reused in place)
        with torch.inference_mode(), self.streams.on(self.streams.prep):
            device_rows = self._decode_on_device(entries, rows, slot)
            count = self._stage_cpu_pixels(entries, rows, slot, device_rows)
            slot.ready.record()
        return Batch(entries, rows, count, device_rows, slot)

    def _decode_on_device(self, entries: list[Entry], rows: list[int | None], slot: BatchSlot) -> int:
        """Decode the batch's device-bound JPEGs into the first rows of the slot and hash them; the rows used.

        A file nvJPEG refuses after all is decoded on the CPU here instead
        (its entry replaced), which depends on that file alone.
        """
        waiting = [index for index, entry in enumerate(entries) if entry.on_device]
        if not waiting:
            return 0
        placed = self.decoder.decode_into([entries[i].encoded for i in waiting],
                                          [entries[i].orientation for i in waiting], slot.pixels)
        for index, row in zip(waiting, placed):
            entry = entries[index]
            if row is None:
                data = entry.encoded.numpy().tobytes()
                entries[index] = Entry(entry.item, decode_image(data, size=self.size, draft=self.fallback_draft))
            else:
                rows[index] = row
                entries[index] = replace(entry, encoded=None)  # the bytes are done with: free them early
        decoded = sum(row is not None for row in placed)
        if decoded:
            slot.hashes[:decoded].copy_(phash_tensor(slot.pixels[:decoded].permute(0, 3, 1, 2)))
        return decoded

    def _stage_cpu_pixels(self, entries: list[Entry], rows: list[int | None], slot: BatchSlot, first: int) -> int:
        """Copy CPU-decoded pixels into the slot's rows from ``first`` on (through pinned memory on a GPU)."""
        staging = slot.staging.numpy()
        row = first
        for index, entry in enumerate(entries):
            if rows[index] is None and entry.ok and entry.decoded.pixels is not None:
                staging[row] = entry.decoded.pixels
                entry.decoded.pixels = None  # copied: free it early
                rows[index] = row
                row += 1
        if row > first and slot.staged_apart:
            slot.pixels[first:row].copy_(slot.staging[first:row], non_blocking=True)
        return row


# --- compute: the model, on the compute thread -------------------------------------------------------


class BatchModel(Protocol):
    """What the compute stage runs: :class:`~eat_curate.scoring.predictor.Predictor` is one."""

    device: torch.device

    def scores_of_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(n, NUM_BINS + 2) float32 on the device for (n, S, S, 3) uint8 pixels there, without waiting."""


class HostModel:
    """A predictor with only ``predict(numpy pixels) -> Prediction`` (a stand-in, a constant) as a BatchModel."""

    device = torch.device("cpu")

    def __init__(self, predictor) -> None:
        self.predictor = predictor

    def scores_of_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        prediction = self.predictor.predict(pixels.numpy())
        packed = np.concatenate([prediction.probabilities, prediction.mean[:, None], prediction.std[:, None]], axis=1)
        return torch.from_numpy(packed.astype(np.float32))


def batch_model(predictor) -> BatchModel:
    return predictor if hasattr(predictor, "scores_of_pixels") else HostModel(predictor)


class Compute:
    """Scores a slot's pixels on the compute stream and queues the results' copy to the host."""

    def __init__(self, model: BatchModel, streams: Streams) -> None:
        self.model = model
        self.streams = streams
        self.clock = BusyClock(streams)  # how busy the stream was: gpu_check's figure

    def __call__(self, batch: Batch) -> Batch:
        if not batch.count:
            return batch  # only error rows: nothing to score
        slot = batch.slot
        with torch.inference_mode(), self.streams.on(self.streams.compute):
            self.streams.wait(slot.ready)
            with self.clock.timing():
                scores = self.model.scores_of_pixels(slot.pixels[: batch.count])
                slot.results[: batch.count].copy_(scores, non_blocking=True)
                if batch.device_rows and slot.host_hashes is not slot.hashes:
                    slot.host_hashes[: batch.device_rows].copy_(slot.hashes[: batch.device_rows], non_blocking=True)
            slot.done.record()
        return batch


# --- writer: records and sinks, on the caller's thread -----------------------------------------------


def batch_records(batch: Batch, model_id: str, run_id: str) -> list[ScoreRecord]:
    """One record per entry of ``batch``, in order; waits for its results to reach the host."""
    probabilities = means = stds = hashes = []
    if batch.count:
        slot = batch.slot
        slot.done.synchronize()
        # Whole arrays to Python at once (tolist), not a float() per value.
        values = slot.results[: batch.count].numpy()
        probabilities = values[:, :NUM_BINS].tolist()
        means, stds = values[:, NUM_BINS].tolist(), values[:, NUM_BINS + 1].tolist()
        hashes = slot.host_hashes[: batch.device_rows].tolist()
    records = []
    for entry, row in zip(batch.entries, batch.rows):
        record = record_for(entry.item, entry.decoded, model_id, run_id)
        if row is not None:
            record.probabilities, record.mean, record.std = probabilities[row], means[row], stds[row]
            if row < batch.device_rows:
                record.phash = hashes[row]
        records.append(record)
    return records


class RecordWriter:
    """Builds each batch's records, gives its slot back, and delivers the records to every sink."""

    def __init__(self, sinks: Sequence, summary, progress: Progress, model_id: str, run_id: str,
                 slots: SlotPool) -> None:
        self.sinks = sinks
        self.summary = summary
        self.progress = progress
        self.model_id = model_id
        self.run_id = run_id
        self.slots = slots

    def __call__(self, batch: Batch) -> None:
        records = batch_records(batch, self.model_id, self.run_id)
        self.slots.release(batch.slot)
        deliver(records, self.sinks, self.summary, self.progress)

