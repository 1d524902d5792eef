"""The engine-independent steps of scoring, shared by the in-process and Ray engines.

An engine only decides where these run and how work flows between them:

    items ──► pending_items (incremental skip) ──► decode_item ──► batch
          ──► Predictor.predict ──► records_for_batch ──► sinks

so both engines produce identical records for the same input. (The
in-process engine's pipeline, :mod:`eat_curate.scoring.stages`, runs the
same steps on buffers it reuses: the same reads, decodes, ``record_for``
and ``deliver``.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from eat_curate.io.decode import DecodedImage, ImageHeader, decode_image, read_header
from eat_curate.io.sources import SourceItem, SourceReadError, read_bytes
from eat_curate.records import ScoreRecord

if TYPE_CHECKING:  # the predictor needs torch; decode workers import this module without it
    from eat_curate.scoring.predictor import Prediction


@dataclass
class DecodedItem:
    item: SourceItem
    decoded: DecodedImage

    @property
    def ok(self) -> bool:
        return self.decoded.ok


def decode_item(item: SourceItem, size: int, draft: bool = True, max_bytes: int | None = None) -> DecodedItem:
    """Read and decode one input; never raises for bad input (the failure is in the result).

    ``max_bytes``: the most read for one input (None: ``io.sources.DEFAULT_MAX_BYTES``).
    """
    read = read_item(item, max_bytes=max_bytes)
    if not read.ok:
        return DecodedItem(item, read.failure)
    return DecodedItem(item, decode_image(read.data, size=size, draft=draft))


@dataclass
class ReadItem:
    """An input's bytes, read but not decoded yet (the GPU decodes them batch by batch)."""

    item: SourceItem
    data: bytes | None
    failure: DecodedImage | None = None  # set when the bytes could not be read
    header: ImageHeader | None = None  # read beside the bytes, in the reading thread

    @property
    def ok(self) -> bool:
        return self.failure is None


def read_item(item: SourceItem, with_header: bool = False, max_bytes: int | None = None) -> ReadItem:
    """The bytes of ``item`` (and, for GPU decoding, its parsed header); never raises for bad input."""
    try:
        data = read_bytes(item, max_bytes)
        return ReadItem(item, data, header=read_header(data) if with_header else None)
    except SourceReadError as error:
        # "unreadable", or "too-large" for an input over the cap (refused from its size, unread)
        failed = DecodedImage(content_hash=None, bytes=item.size, error_kind=error.kind, error=error.reason)
        return ReadItem(item, None, failed)


def decode_read_items(entries: Sequence[ReadItem], decoder) -> list[DecodedItem]:
    """Decode a batch of read inputs together (``decoder.decode(list of bytes)``), keeping read failures."""
    readable = [entry for entry in entries if entry.ok]
    headers = [entry.header for entry in readable]
    decoded = iter(decoder.decode([entry.data for entry in readable], headers if all(headers) else None))
    return [DecodedItem(entry.item, next(decoded) if entry.ok else entry.failure) for entry in entries]


def record_for(item: SourceItem, decoded: DecodedImage, model_id: str, run_id: str) -> ScoreRecord:
    """The record of ``item`` with what its decode says (no scores yet; the error, if it failed)."""
    return ScoreRecord(
        image_id=item.image_id,
        path=item.key,
        album=item.album,
        model_id=model_id,
        run_id=run_id,
        mtime=item.mtime,
        extra=item.extra,
        **decoded.to_record_fields(),
    )


def _base_record(entry: DecodedItem, model_id: str, run_id: str) -> ScoreRecord:
    return record_for(entry.item, entry.decoded, model_id, run_id)


def error_record(entry: DecodedItem, model_id: str, run_id: str) -> ScoreRecord:
    return _base_record(entry, model_id, run_id)


def records_for_batch(
    entries: Sequence[DecodedItem], prediction: Prediction, model_id: str, run_id: str
) -> list[ScoreRecord]:
    """Records for successfully decoded entries, in order, from one prediction of their pixels."""
    # One tolist() per array: the same Python floats as float() of each value, about 8 times faster.
    probabilities, means, stds = prediction.probabilities.tolist(), prediction.mean.tolist(), prediction.std.tolist()
    records = []
    for i, entry in enumerate(entries):
        record = _base_record(entry, model_id, run_id)
        record.probabilities, record.mean, record.std = probabilities[i], means[i], stds[i]
        records.append(record)
    return records


def stack_pixels(entries: Sequence[DecodedItem]) -> np.ndarray:
    return np.stack([entry.decoded.pixels for entry in entries])


def score_entries(entries: Sequence[DecodedItem], predictor, model_id: str, run_id: str) -> list[ScoreRecord]:
    """One record per entry, in order: the decoded ones scored in one model call, the rest as error records."""
    good = [entry for entry in entries if entry.ok]
    scored = iter(records_for_batch(good, predictor.predict(stack_pixels(good)), model_id, run_id) if good else ())
    return [next(scored) if entry.ok else error_record(entry, model_id, run_id) for entry in entries]


def chunked(items: Iterable[SourceItem], size: int) -> Iterator[list[SourceItem]]:
    chunk: list[SourceItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def deliver(records: Sequence[ScoreRecord], sinks: Sequence, summary, progress) -> None:
    """Write ``records`` to every sink, then count and report them (in that order: counted means saved).

    Each sink gets the run's counts as they stand once the batch is saved, to
    keep the run record true while the run works.
    """
    tally = summary.with_records(records)
    for sink in sinks:
        sink.write(records, tally)
    summary.count(records)
    progress.advance(records)


LOOKUP_CHUNK = 1000  # items per incremental lookup: one query per sink for each


def items_to_score(
    items: Iterable[SourceItem], sinks: Sequence, model_id: str, rescore: bool, lookup_chunk: int,
    summary, progress,
) -> Iterator[SourceItem]:
    """The items that need scoring, streamed; the others are counted as skipped (incremental runs).

    Looked up in chunks of ``lookup_chunk`` so each sink answers with one query per chunk.
    """
    for chunk in chunked(items, lookup_chunk):
        todo = chunk if rescore else pending_items(chunk, sinks, model_id)
        if len(todo) < len(chunk):
            summary.skipped += len(chunk) - len(todo)
            progress.skip(len(chunk) - len(todo))
        yield from todo


def pending_items(chunk: Sequence[SourceItem], sinks: Sequence, model_id: str) -> list[SourceItem]:
    """The items of ``chunk`` that some sink still lacks (scored by this model, unchanged)."""
    done: set[str] | None = None
    inputs = [item.version() for item in chunk]
    for sink in sinks:
        scored = sink.already_scored(inputs, model_id)
        done = scored if done is None else done & scored
    if not done:
        return list(chunk)
    return [item for item in chunk if item.key not in done]
