"""Listing a Parquet manifest: one SourceItem per row, in row order, with the heavy per-row work
(the sha256 of embedded images, the stat of paths) done on a thread pool a record batch at a time.

Each test states what an item must hold by the manifest rules (``eat_curate.io.manifests``) and
compares it with what ``manifest_items`` gives. No timing is asserted: `bench listing` is for people.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.io import manifests
from eat_curate.io.items import SourceItem, image_id_for
from eat_curate.io.manifests import ROWS_PER_BATCH_EMBEDDED, manifest_items, open_manifest

ROWS = 2 * ROWS_PER_BATCH_EMBEDDED + 7  # three record batches, the last one short


def write_manifest(path: Path, table: pa.Table) -> str:
    pq.write_table(table, path)
    return str(path)


def image(row: int) -> bytes:
    """Stand-in image bytes: their content does not matter to listing, only that rows differ."""
    return random.Random(row).randbytes(3000 + row)


def embedded_item(manifest: str, row: int, data: bytes | None, album: str | None, extra: dict | None,
                  image_id: str | None = None) -> SourceItem:
    """An embedded row by the rules: key "<manifest>#<row>", id given or derived from the key,
    a null image as empty bytes (which decoding turns into an "empty" error row)."""
    key = f"{manifest}#{row}"
    data = data or b""
    return SourceItem(key=key, image_id=image_id or image_id_for(key), album=album, data=data,
                      content_hash=hashlib.sha256(data).hexdigest(), size=len(data), extra=extra)


def test_embedded_images_become_items_in_row_order_across_batches(tmp_path):
    images = [None if row == 5 else image(row) for row in range(ROWS)]
    albums = [f"album-{row % 3}" for row in range(ROWS)]
    captions = [f"photo {row}" for row in range(ROWS)]
    manifest = write_manifest(tmp_path / "embedded.parquet", pa.table({
        "image": pa.array(images, pa.binary()), "album": albums, "caption": captions,
    }))

    items = list(manifest_items(open_manifest(manifest)))

    assert items == [
        embedded_item(manifest, row, images[row], albums[row], {"caption": captions[row]}) for row in range(ROWS)
    ]
    assert items[5].data == b"" and type(items[6].data) is bytes


def test_hugging_face_image_structs_and_given_ids(tmp_path):
    cells = [{"bytes": image(row), "path": f"{row}.jpg"} for row in range(ROWS)]
    cells[3] = None  # a null struct
    cells[4] = {"bytes": None, "path": "lost.jpg"}  # a struct without bytes
    ids = [None if row == 7 else f"photo-{row}" for row in range(ROWS)]
    manifest = write_manifest(tmp_path / "hf.parquet", pa.table({"image": cells, "id": ids}))

    items = list(manifest_items(open_manifest(manifest)))

    assert items == [
        embedded_item(manifest, row, cell and cell["bytes"], None, None, ids[row])  # no other columns: no extra
        for row, cell in enumerate(cells)
    ]
    assert items[3].data == items[4].data == b"" and items[7].image_id == image_id_for(f"{manifest}#7")


def test_paths_become_items_with_their_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(manifests, "ROWS_PER_BATCH", 6)  # several batches from a few rows
    photos = tmp_path / "photos"
    for day in ("monday", "tuesday"):
        (photos / day).mkdir(parents=True)
    cells: list[str | None] = []
    for row in range(20):
        path = photos / ("monday" if row < 10 else "tuesday") / f"{row}.jpg"
        path.write_bytes(b"x" * (100 + row))
        cells.append(str(path))
    cells[3] = None  # an empty cell
    cells[8] = "   "  # a blank one
    cells[11] = str(photos / "tuesday" / "deleted.jpg")  # a file that is not there
    cells[14] = "photos/monday/0.jpg"  # relative to the manifest's folder
    manifest = write_manifest(tmp_path / "paths.parquet", pa.table({"path": cells, "stars": list(range(20))}))

    items = list(manifest_items(open_manifest(manifest, duplicates="keep")))

    expected = []
    for row, cell in enumerate(cells):
        extra = {"stars": row}
        if cell is None or not cell.strip():  # no path: an item that says so when it is read
            key = f"{manifest}#{row}"
            expected.append(SourceItem(key=key, image_id=image_id_for(key), album=None, extra=extra,
                                       problem=f"manifest row {row} has no path"))
            continue
        key = os.path.normpath(os.path.join(tmp_path, cell))
        location = None
        if row == 14:  # the same file as row 0: kept under a key of its own, read from the path
            key, location = f"{key}#14", key
        where = location or key
        stat = os.stat(where) if os.path.exists(where) else None
        expected.append(SourceItem(
            key=key, image_id=image_id_for(key), album=os.path.basename(os.path.dirname(where)),
            size=stat and stat.st_size, mtime=stat and stat.st_mtime, extra=extra, location=location,
        ))
    assert items == expected
    assert items[11].size is None and items[11].album == "tuesday"  # missing: reading it will say so


@pytest.mark.parametrize("kind", ["embedded", "paths"])
def test_hashing_and_stats_run_on_pool_threads_not_the_listing_thread(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(manifests, "LISTING_THREADS", 4)
    if kind == "embedded":
        manifest = write_manifest(tmp_path / "m.parquet", pa.table({"image": [image(row) for row in range(ROWS)]}))
        patched = "_sha256_hex"
    else:
        paths = [tmp_path / f"{row}.jpg" for row in range(ROWS)]
        for path in paths:
            path.write_bytes(b"x")
        manifest = write_manifest(tmp_path / "m.parquet", pa.table({"path": [str(path) for path in paths]}))
        patched = "_size_and_mtime"
    real = getattr(manifests, patched)
    workers: set[int] = set()
    lock, second_worker = threading.Lock(), threading.Event()

    def recording(value):
        with lock:
            workers.add(threading.get_ident())
            if len(workers) > 1:
                second_worker.set()
        # The first call waits for a second thread to take another row: the pool is used in
        # parallel, not one task after another. (A bound, not a timing: it only ends a broken run.)
        second_worker.wait(timeout=30)
        return real(value)

    monkeypatch.setattr(manifests, patched, recording)
    items = list(manifest_items(open_manifest(manifest)))

    assert len(items) == ROWS
    assert threading.get_ident() not in workers and len(workers) >= 2
    if kind == "embedded":
        assert [item.content_hash for item in items] == [hashlib.sha256(image(row)).hexdigest() for row in range(ROWS)]
    else:
        assert all(item.size == 1 for item in items)


def test_a_consumer_that_stops_early_leaves_no_pool_threads(tmp_path):
    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"image": [image(row) for row in range(ROWS)]}))
    items = manifest_items(open_manifest(manifest))
    assert [item.key for item in islice(items, 3)] == [f"{manifest}#{row}" for row in range(3)]
    items.close()
    for thread in threading.enumerate():
        if thread.name.startswith("eatc-manifest"):
            thread.join(timeout=30)
            assert not thread.is_alive()


def test_bench_listing_compares_the_old_lister_with_the_new_one(tmp_path):
    """On its own synthetic manifests (tiny here), then on a manifest given: a row per lister, and a ratio."""
    runner = CliRunner()
    result = runner.invoke(cli, ["bench", "listing", "--rows", str(ROWS), "--image-kb", "4", "--files", "30",
                                 "--rounds", "1"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    lines = result.output.splitlines()
    assert sum("whole rows, one thread (baseline)" in line for line in lines) == 2
    assert sum(bool(re.search(r"batched, .* items/s .* MB/s +\d+\.\d\dx ", line)) for line in lines) == 2
    assert f"{ROWS} embedded images" in result.output and "30 paths" in result.output

    manifest = write_manifest(tmp_path / "m.parquet", pa.table({"image": [image(row) for row in range(10)]}))
    result = runner.invoke(cli, ["bench", "listing", manifest, "--rounds", "1", "--json"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    (figure,) = json.loads(result.output)["figures"]
    assert figure["manifest"] == manifest and figure["items"] == 10
    assert figure["serial_items_per_s"] > 0 and figure["items_per_s"] > 0 and figure["ratio"] > 0
