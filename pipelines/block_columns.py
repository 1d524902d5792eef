"""The columns of the blocks between the Ray engine's stages, and their conversions.

    item rows (pipelines.item_rows)      the driver's to-do list
      ─► decode task ─► decoded rows:    CARRIED + facts + pixels
      ─► read task   ─► read rows:       CARRIED + facts + data, orientation, mode  (GPU decoding: the actor decodes)
      ─► scoring actor ─► scored rows:   CARRIED + facts + probabilities, mean, std
      ─► driver: one ScoreRecord per row (pipelines.score_records)

Facts are what a decode says of an image (``DecodedImage``'s record fields),
typed as the Parquet output types them; pixels are one fixed-shape uint8
tensor column, zeros on rows whose decode failed. Blocks carry arrays and
bytes, never pickled Python objects. No torch here: decode workers import it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from eat_curate.io.decode import DecodedImage, ImageHeader
from eat_curate.io.decoded import RECORD_FIELDS
from eat_curate.records import NUM_BINS, PARQUET_SCHEMA
from eat_curate.scoring.tasks import ReadItem

CARRIED = ("key", "image_id", "album", "mtime", "extra")  # item columns a record takes as they are
FACT_TYPES = {name: PARQUET_SCHEMA.field(name).type for name in RECORD_FIELDS}
SCORE_TYPES = {name: PARQUET_SCHEMA.field(name).type for name in ("probabilities", "mean", "std")}
PIXELS = "pixels"
READ_COLUMNS = ("data", "orientation", "mode")  # what a read task adds for the actor's decoder


def decoded_rows(items: pa.Table, decoded: Sequence[DecodedImage], size: int) -> pa.Table:
    """Decoded rows: ``items``' carried columns, each decode's facts and its (size, size, 3) pixels."""
    from ray.data.extensions import ArrowTensorArray

    pixels = np.zeros((len(decoded), size, size, 3), dtype=np.uint8)
    for row, image in enumerate(decoded):
        if image.ok:
            pixels[row] = image.pixels
    return _with_facts(items.select(CARRIED), decoded).append_column(PIXELS, ArrowTensorArray.from_numpy(pixels))


def read_rows(items: pa.Table, read: Sequence[ReadItem]) -> pa.Table:
    """Read rows: ``items``' carried columns with each input's bytes and header (or why it could not be read)."""
    facts = [entry.header.facts if entry.ok else entry.failure for entry in read]
    table = _with_facts(items.select(CARRIED), facts)
    table = table.append_column("data", pa.array([entry.data for entry in read], pa.large_binary()))
    table = table.append_column("orientation", pa.array(
        [entry.header.orientation if entry.ok else None for entry in read], pa.int8()))
    return table.append_column("mode", pa.array([entry.header.mode if entry.ok else None for entry in read],
                                                pa.string()))


def decode_read_rows(rows: pa.Table, decoder, size: int) -> pa.Table:
    """Read rows decoded together by ``decoder`` (``GpuJpegDecoder.decode``) into decoded rows."""
    facts = fact_images(rows)
    datas = rows["data"].to_pylist()
    orientations, modes = rows["orientation"].to_pylist(), rows["mode"].to_pylist()
    readable = [row for row, data in enumerate(datas) if data is not None]
    headers = [ImageHeader(facts[row], orientations[row], modes[row]) for row in readable]
    for row, image in zip(readable, decoder.decode([datas[row] for row in readable], headers)):
        facts[row] = image
    return decoded_rows(rows, facts, size)


def fact_images(rows: pa.Table) -> list[DecodedImage]:
    """Each row's facts as a DecodedImage without pixels."""
    columns = {name: rows[name].to_pylist() for name in RECORD_FIELDS}
    return [DecodedImage(**{name: columns[name][row] for name in RECORD_FIELDS}) for row in range(rows.num_rows)]


def decoded_ok(rows: pa.Table) -> np.ndarray:
    """Which rows decoded (no error kind): a boolean array."""
    return pc.is_null(rows["error_kind"]).to_numpy(zero_copy_only=False)


def pixels_of(rows: pa.Table) -> np.ndarray:
    """The pixels column of decoded rows as one (N, size, size, 3) uint8 array."""
    return rows[PIXELS].combine_chunks().to_numpy()


def scored_rows(rows: pa.Table, ok: np.ndarray, probabilities: np.ndarray, mean: np.ndarray,
                std: np.ndarray) -> pa.Table:
    """Scored rows: ``rows`` without pixels (or bytes), with the scores of the ``ok`` rows (null elsewhere).

    ``probabilities``, ``mean``, ``std``: the model's outputs for the ``ok`` rows, in order.
    """
    failed = pa.array(~ok)
    count = rows.num_rows
    all_probabilities = np.zeros((count, NUM_BINS), dtype=np.float32)
    all_mean, all_std = np.zeros(count, dtype=np.float32), np.zeros(count, dtype=np.float32)
    all_probabilities[ok], all_mean[ok], all_std[ok] = probabilities, mean, std
    table = rows.drop_columns([name for name in (PIXELS, *READ_COLUMNS) if name in rows.column_names])
    table = table.append_column("probabilities", pa.FixedSizeListArray.from_arrays(
        pa.array(all_probabilities.ravel()), type=SCORE_TYPES["probabilities"], mask=failed))
    table = table.append_column("mean", pa.array(all_mean, SCORE_TYPES["mean"], mask=~ok))
    return table.append_column("std", pa.array(all_std, SCORE_TYPES["std"], mask=~ok))


def _with_facts(table: pa.Table, facts: Sequence[DecodedImage]) -> pa.Table:
    for name, kind in FACT_TYPES.items():
        table = table.append_column(name, pa.array([getattr(image, name) for image in facts], kind))
    return table
