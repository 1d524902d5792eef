"""`eat-curate bench listing`: how fast a Parquet manifest becomes SourceItems, against the old way.

The in-process engine lists a manifest on one thread and reads on others, so
whatever the lister does per row bounds the whole run. Two listers are timed
on the same manifest, taking turns every round, after a pass checking that
they give the same items:

- the baseline, the lister as it was: the file read through fsspec's Python
  file object, every row through ``batch.to_pylist()`` (the image bytes
  included), then its sha256 (embedded images) or its ``os.stat`` (paths),
  one row after another on the listing thread;
- :func:`eat_curate.io.manifests.manifest_items`: a local file read by Arrow
  itself, columns taken a record batch at a time, a batch's images copied out
  of Arrow and hashed (or its files stat-ed) on a small thread pool while the
  previous batch's items are handed on.

Stats of local files take microseconds, so a path manifest on a local disk
shows the pool's cost more than its use, which is on network file systems.

Without a manifest of the user's, two synthetic ones are made in a temporary
folder: embedded images (random bytes, the size of a 2-MP JPEG) and paths to
small files. MB/s counts the image bytes listed: hashed for embedded images,
the files' sizes (as stat-ed) for paths.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from eat_curate.benchmarks.raw_decode import cpu_description
from eat_curate.benchmarks.timing import interleaved_rates
from eat_curate.io import manifests
from eat_curate.io.items import SourceItem
from eat_curate.io.manifest_duplicates import KEEP, Renamed
from eat_curate.io.manifests import LISTING_THREADS, Manifest, manifest_items, open_manifest
from eat_curate.io.remote import is_remote, parent_name

DEFAULT_ROWS = 512
DEFAULT_IMAGE_KB = 600  # a 2-MP JPEG is about 0.5-1 MB
DEFAULT_FILES = 20_000
FILES_PER_FOLDER = 1000


@dataclass(frozen=True)
class ListingFigure:
    manifest: str  # what was listed, for people
    items: int
    megabytes: float  # image bytes listed (see the module doc)
    serial_items_per_s: float  # the baseline
    items_per_s: float  # manifest_items
    # CPU time of the listing thread alone (not the pool's, nor Arrow's own threads), per item (median):
    # what bounds the lister on a machine with cores to spare, and steadier than items/s on a busy one.
    serial_lister_us: float
    lister_us: float

    @property
    def ratio(self) -> float:
        return self.items_per_s / self.serial_items_per_s

    def megabytes_per_s(self, items_per_s: float) -> float:
        return items_per_s * self.megabytes / self.items


@dataclass
class ListingBenchResult:
    threads: int  # manifest_items' pool
    rounds: int
    cpu: str
    figures: list[ListingFigure] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        for figure, row in zip(self.figures, data["figures"]):
            row["serial_mb_per_s"] = round(figure.megabytes_per_s(figure.serial_items_per_s), 1)
            row["mb_per_s"] = round(figure.megabytes_per_s(figure.items_per_s), 1)
            row["ratio"] = round(figure.ratio, 2)
        return data


def bench_listing(
    manifest: str | None = None,
    rows: int = DEFAULT_ROWS,
    image_kb: int = DEFAULT_IMAGE_KB,
    files: int = DEFAULT_FILES,
    rounds: int = 5,
) -> ListingBenchResult:
    """Both listers on ``manifest`` (a path or URL; rows naming a path twice are kept), or without one on
    a synthetic embedded manifest of ``rows`` images of ``image_kb`` KB and a path manifest of ``files`` files."""
    result = ListingBenchResult(threads=LISTING_THREADS, rounds=rounds, cpu=cpu_description())
    if manifest is not None:
        result.figures.append(_measure(open_manifest(manifest, duplicates=KEEP), manifest, rounds))
        return result
    with tempfile.TemporaryDirectory(prefix="eatc-bench-listing-") as scratch:
        embedded = _embedded_manifest(Path(scratch) / "embedded.parquet", rows, image_kb * 1000)
        label = f"synthetic: {rows:,} embedded images of {image_kb:,} KB"
        result.figures.append(_measure(open_manifest(str(embedded)), label, rounds))
        paths = _path_manifest(Path(scratch), files)
        label = f"synthetic: {files:,} paths to 1 KB files"
        result.figures.append(_measure(open_manifest(str(paths)), label, rounds))
    return result


def _measure(manifest: Manifest, label: str, rounds: int) -> ListingFigure:
    items = size = 0
    # Both listers side by side, one item at a time: a large manifest is never held in memory.
    for ours, baseline in zip_longest(manifest_items(manifest), _serial_items(manifest)):
        if ours != baseline:
            raise RuntimeError(f"the two listers disagree on {label}, row {items}")
        items, size = items + 1, size + (ours.size or 0)
    if not items:
        raise RuntimeError(f"{label} has no rows")
    lister_us: dict[str, list[float]] = {"serial": [], "batched": []}

    def counted(name: str, lister: Callable[[Manifest], Iterator[SourceItem]]) -> Callable[[], int]:
        def run() -> int:
            started = time.thread_time()  # this thread's CPU time: the lister's, not the pool's
            count = sum(1 for _ in lister(manifest))
            lister_us[name].append(1e6 * (time.thread_time() - started) / count)
            return count

        return run

    rates = interleaved_rates(
        {"serial": counted("serial", _serial_items), "batched": counted("batched", manifest_items)},
        rounds=rounds,
        warmup=0,  # the checking pass above read the manifest once already
    )
    return ListingFigure(label, items, size / 1e6, rates["serial"], rates["batched"],
                         statistics.median(lister_us["serial"]), statistics.median(lister_us["batched"]))


def _embedded_manifest(path: Path, rows: int, image_bytes: int) -> Path:
    """``rows`` random "images" with an album and a caption, written a batch of rows at a time."""
    rng = np.random.default_rng(0)
    schema = pa.schema([("image", pa.binary()), ("album", pa.string()), ("caption", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, manifests.ROWS_PER_BATCH_EMBEDDED):
            numbers = range(start, min(rows, start + manifests.ROWS_PER_BATCH_EMBEDDED))
            writer.write_table(pa.table({
                "image": [rng.bytes(image_bytes) for _ in numbers],
                "album": [f"album-{number % 8}" for number in numbers],
                "caption": [f"photo {number}" for number in numbers],
            }, schema=schema))
    return path


def _path_manifest(folder: Path, files: int) -> Path:
    """``files`` files of 1 KB in folders of FILES_PER_FOLDER, and a manifest of their absolute paths."""
    paths = []
    for number in range(files):
        path = folder / "photos" / f"day-{number // FILES_PER_FOLDER:03d}" / f"IMG_{number:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\xff" * 1000)
        paths.append(str(path))
    pq.write_table(pa.table({"path": paths, "stars": [number % 6 for number in range(files)]}),
                   folder / "paths.parquet")
    return folder / "paths.parquet"


def _serial_items(manifest: Manifest) -> Iterator[SourceItem]:
    """The baseline: the lister before it worked a batch at a time (whole rows, one at a time, one thread)."""
    batch_size = manifests.ROWS_PER_BATCH_EMBEDDED if manifest.embedded else manifests.ROWS_PER_BATCH
    row = 0
    with manifests._seekable(manifest.fs, manifest.fs_path) as handle:
        parquet = pq.ParquetFile(handle, metadata=manifest.metadata)
        for batch in parquet.iter_batches(batch_size=batch_size):
            for values in batch.to_pylist():
                yield _serial_row_item(manifest, row, values)
                row += 1


def _serial_row_item(manifest: Manifest, row: int, values: dict[str, Any]) -> SourceItem:
    extra = {name: manifests.jsonable(values[name]) for name in manifest.extra_columns} or None
    album = values.get(manifest.album_column) if manifest.album_column else None
    album = None if album is None else str(album)
    cell = values[manifest.location_column]
    identity = manifests._identity(manifest, row, cell, values.get("id"))
    renamed = manifest.renamed.get(row) or Renamed(identity.key, identity.image_id, None)
    if manifest.embedded:
        data = bytes((cell.get("bytes") if isinstance(cell, dict) else cell) or b"")
        return SourceItem(key=renamed.key, image_id=renamed.image_id, album=album, data=data,
                          content_hash=hashlib.sha256(data).hexdigest(), size=len(data), extra=extra)
    if not isinstance(cell, str) or not cell.strip():
        return SourceItem(key=renamed.key, image_id=renamed.image_id, album=album, extra=extra,
                          problem=f"manifest row {row} has no {manifest.location_column}")
    where = renamed.location or renamed.key
    size = mtime = None
    if not is_remote(where):
        try:
            stat = os.stat(where)
            size, mtime = stat.st_size, stat.st_mtime
        except OSError:
            pass
    return SourceItem(key=renamed.key, image_id=renamed.image_id,
                      album=album if manifest.album_column else parent_name(where),
                      size=size, mtime=mtime, extra=extra, location=renamed.location)


def report_lines(result: ListingBenchResult) -> list[str]:
    lines = [
        f"manifest listing, median of {result.rounds} rounds; {result.cpu}",
        "  (listing thread: CPU time of the thread that lists, without the pool's and Arrow's threads)",
    ]
    for figure in result.figures:
        lines.append(f"  {figure.manifest} ({figure.items:,} rows, {figure.megabytes:,.1f} MB of images)")
        for name, rate, ratio, lister_us in (
            ("whole rows, one thread (baseline)", figure.serial_items_per_s, "1.00x", figure.serial_lister_us),
            (f"batched, {result.threads} hashing/stat threads", figure.items_per_s, f"{figure.ratio:.2f}x",
             figure.lister_us),
        ):
            lines.append(f"    {name:<36} {rate:>10,.0f} items/s {figure.megabytes_per_s(rate):>9,.1f} MB/s "
                         f"{ratio:>7}   listing thread {lister_us:7.1f} CPU us/item")
    return lines
