"""`xmp` files per second: star ratings written into the sidecars of 10,000 images.

In a temporary folder it makes ``images`` tiny image files (the command only
checks that an image exists; it never decodes one) and an SQLite database of
their scores, written through the SQL sink with no model. Then it times what
`eat-curate xmp` does after parsing its options, choosing the images, giving
the stars, merging and writing the sidecars, three times over:

- ``create``: no sidecar exists yet, every one is written new;
- ``merge``: every image already has a darktable-shaped sidecar (an edit
  history of three steps, keywords), merged into and rewritten;
- ``unchanged``: a second run over those, which reads and compares but
  writes nothing.

Every sidecar is written as the command writes it: a temporary file flushed
to disk, then renamed, so the figures include the file system's fsync.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from eat_curate.library import (
    StarRule,
    choose_images,
    read_connection,
    resolve_model,
    sidecar_values,
    star_ratings,
    write_sidecars,
)
from eat_curate.library.ratings import DEFAULT_STARS
from eat_curate.records import ScoreRecord
from eat_curate.runs import RunInfo, RunSummary
from eat_curate.sinks import SqlSink

DEFAULT_IMAGES = 10_000
ALBUM_SIZE = 250  # images per folder (and album), as a day of shooting might be
MODEL_ID = "bench@000000000000"
_CARD = {"name": "bench", "preset": "tiny", "sha256": "0" * 64, "head_mode": "softmax", "trained": False}
_DARKTABLE_SIDECAR = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:darktable="http://darktable.sf.net/"
   xmp:Rating="1"
   xmpMM:DerivedFrom="{name}"
   darktable:xmp_version="5"
   darktable:history_end="3">
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="rawprepare" darktable:enabled="1" darktable:params="00000000"/>
     <rdf:li darktable:num="1" darktable:operation="exposure" darktable:enabled="1" darktable:params="0000803f"/>
     <rdf:li darktable:num="2" darktable:operation="filmicrgb" darktable:enabled="1" darktable:params="gz04eJxj"/>
    </rdf:Seq>
   </darktable:history>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>holiday</rdf:li>
    </rdf:Bag>
   </dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


@dataclass(frozen=True)
class XmpSpeed:
    images: int
    create_per_s: float  # sidecars written new
    merge_per_s: float  # darktable sidecars merged into and rewritten
    unchanged_per_s: float  # sidecars read, found up to date, left alone

    def to_dict(self) -> dict:
        return asdict(self)


def _records(folder: Path, images: int) -> list[ScoreRecord]:
    records = []
    for number in range(images):
        album = f"day-{number // ALBUM_SIZE:03d}"
        path = folder / album / f"IMG_{number:05d}.CR2"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"raw")
        records.append(
            ScoreRecord(
                image_id=f"img-{number:05d}",
                path=str(path),
                album=album,
                model_id=MODEL_ID,
                run_id="bench",
                probabilities=[0.1] * 10,
                mean=3.0 + (number * 7919 % 1000) / 200,  # spread over 3..8, albums mixed
                std=1.4,
            )
        )
    return records


def _write_database(db: Path, records: list[ScoreRecord]) -> None:
    sink = SqlSink(str(db))
    run = RunInfo(run_id="bench", model_id=MODEL_ID, model_name="bench", model_sha256="0" * 64,
                  sources=[], options={})
    try:
        sink.register_model(_CARD)
        sink.begin_run(run)
        for start in range(0, len(records), 2000):
            sink.write(records[start : start + 2000])
        sink.end_run(run, RunSummary(ok=len(records)), "completed")
    finally:
        sink.close()


def _timed(work: Callable[[], int]) -> float:
    start = time.perf_counter()
    count = work()
    return count / (time.perf_counter() - start)


def measure_xmp_speed(images: int = DEFAULT_IMAGES, folder: Path | None = None) -> XmpSpeed:
    """Sidecars per second for ``images`` images (see module doc); ``folder``: where (default: a temporary one)."""
    with tempfile.TemporaryDirectory(dir=folder, prefix="eatc-xmp-bench-") as scratch:
        root = Path(scratch)
        photos = root / "photos"
        photos.mkdir()
        records = _records(photos, images)
        _write_database(root / "scores.db", records)
        rule = StarRule.parse(DEFAULT_STARS)

        def run_xmp() -> int:
            with read_connection(str(root / "scores.db")) as connection:
                model_id = resolve_model(connection, None, "bench")
                chosen = choose_images(connection, model_id)
            values = sidecar_values(chosen, star_ratings(chosen, rule), model_id)
            report = write_sidecars(chosen, values)
            if report.problems or len(report.outcomes) != images:
                raise RuntimeError(f"the xmp run did not write every sidecar: {report.counts}")
            return len(report.outcomes)

        create = _timed(run_xmp)
        for record in records:
            Path(f"{record.path}.xmp").write_text(_DARKTABLE_SIDECAR.format(name=Path(record.path).name))
        merge = _timed(run_xmp)
        unchanged = _timed(run_xmp)
    return XmpSpeed(images=images, create_per_s=create, merge_per_s=merge, unchanged_per_s=unchanged)


def report_lines(result: XmpSpeed) -> list[str]:
    """The three passes, each against the first (writing every sidecar new) as the baseline."""
    return [
        f"eat-curate xmp on {result.images:,} images (one SQLite database, sidecars fsynced one by one)",
        f"  new sidecars                  {result.create_per_s:9.1f} files/s   1.00x (baseline)",
        f"  merged into darktable's       {result.merge_per_s:9.1f} files/s   {result.merge_per_s / result.create_per_s:.2f}x",
        f"  second run, nothing to change {result.unchanged_per_s:9.1f} files/s   "
        f"{result.unchanged_per_s / result.create_per_s:.2f}x",
    ]
