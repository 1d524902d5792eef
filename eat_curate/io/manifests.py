"""Parquet manifests: one row per image, streamed in record batches.

Columns, by name:

- where the image is, first found of: ``image`` (the encoded bytes, or a
  ``{"bytes": ...}`` struct as Hugging Face datasets write it), ``path``,
  ``uri``. Relative paths resolve against the manifest's folder (or URL);
  ``file://`` becomes a local path; other URLs stay URLs.
- ``album`` (optional), ``id`` (optional: the image id; else derived from the key).
- every other column is carried to the item's ``extra`` as JSON-able values
  (dates as ISO text, bytes as base64, NaN as null).

Up front, the footer is read (to check the columns) and the location and id
columns are scanned for rows naming a path or an id twice, which the outputs
could not keep apart: such a manifest is refused, or every row kept under a
key and id of its own (:mod:`eat_curate.io.manifest_duplicates`). Rows then
stream a batch at a time, so a manifest of 10 million rows costs the memory
of two batches (one handed on while the next one's images are hashed, or its
files stat-ed, on a small thread pool) and the scan's two hashes per row.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem

from eat_curate.errors import EatCurateError
from eat_curate.io.folders import ALBUM_RULES, PARENT
from eat_curate.io.items import SourceItem, image_id_for, printable_path
from eat_curate.io.manifest_duplicates import (
    DUPLICATE_POLICIES,
    REFUSE,
    Renamed,
    RowIdentity,
    find_duplicates,
    refusal,
    renames,
)
from eat_curate.io.remote import RemoteError, filesystem, is_remote, join_url, local_path, parent_name, protocol_of
from eat_curate.io.remote_read import describe_failure

MANIFEST_SUFFIXES = (".parquet", ".pq")
LOCATION_COLUMNS = ("image", "path", "uri")  # the first present says where each image is
ROWS_PER_BATCH = 4096
ROWS_PER_BATCH_EMBEDDED = 64  # rows holding whole images: keep a batch to a few tens of MB
# Threads hashing embedded images or stat-ing paths for the lister; at least two, as a stat on a
# network file system waits rather than computes.
LISTING_THREADS = min(8, max(2, os.cpu_count() or 1))


class ManifestError(EatCurateError):
    """A manifest that cannot be used as given: missing, not Parquet, or without the columns it needs."""


@dataclass
class Manifest:
    uri: str  # absolute local path or URL: the prefix of embedded rows' keys
    fs: AbstractFileSystem
    fs_path: str
    metadata: pq.FileMetaData
    location_column: str
    album_column: str | None  # None: the album is the image's parent folder
    extra_columns: list[str]
    id_column: str | None = None  # "id" when the manifest has one
    renamed: dict[int, Renamed] = field(default_factory=dict)  # kept duplicate rows: row -> own key and id

    @property
    def embedded(self) -> bool:
        return self.location_column == "image"


def is_manifest_name(location: str) -> bool:
    path = location.split("?", 1)[0].split("#", 1)[0]
    return path.lower().endswith(MANIFEST_SUFFIXES)


def open_manifest(location: str, album_from: str = PARENT, duplicates: str = REFUSE) -> Manifest:
    """Read ``location``'s footer, check its columns and look for rows naming a path or an id twice;
    raise ManifestError with the reason. ``duplicates``: ``"refuse"`` such rows, or ``"keep"`` them all."""
    if duplicates not in DUPLICATE_POLICIES:
        raise ManifestError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}, not {duplicates!r}")
    uri = location if is_remote(location) else local_path(location)
    if printable_path(uri) != uri:  # its rows' keys start with it, and keys are stored as UTF-8 text
        raise ManifestError(f"manifest {printable_path(uri)}: its path is not valid UTF-8; rename it or its folder")
    try:
        fs, fs_path = filesystem(uri)
    except RemoteError as error:
        raise ManifestError(f"manifest {uri}: {error}") from None
    try:
        with _seekable(fs, fs_path) as handle:
            metadata = pq.ParquetFile(handle).metadata
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {uri}") from None
    except PermissionError:
        raise ManifestError(f"manifest {uri}: permission denied") from None
    except (pa.ArrowInvalid, OSError) as error:
        raise ManifestError(f"{uri} is not a readable Parquet file: {_first_line(error)}") from None
    except Exception as error:  # network failures of any backend
        raise ManifestError(f"manifest {uri} could not be read: {describe_failure(error)}") from None

    schema = metadata.schema.to_arrow_schema()
    columns = schema.names
    has = f"it has: {', '.join(columns) or 'no columns'}"
    location_column = next((name for name in LOCATION_COLUMNS if name in columns), None)
    if location_column is None:
        raise ManifestError(f"manifest {uri} has no path, uri or image column ({has})")
    if location_column == "image" and not _holds_bytes(schema.field("image").type):
        raise ManifestError(f"manifest {uri}: column image holds {schema.field('image').type}, not image bytes")
    if album_from in ALBUM_RULES:  # the album column if there is one, else each file's folder
        album_column = "album" if "album" in columns else None
    elif album_from in columns:
        album_column = album_from
    else:
        raise ManifestError(f"album column {album_from!r} is not in manifest {uri} ({has})")
    used = {location_column, album_column, "id"}
    manifest = Manifest(
        uri=uri,
        fs=fs,
        fs_path=fs_path,
        metadata=metadata,
        location_column=location_column,
        album_column=album_column,
        extra_columns=[name for name in columns if name not in used],
        id_column="id" if "id" in columns else None,
    )
    try:
        found = find_duplicates(lambda: _identities(manifest))
    except (pa.ArrowInvalid, OSError) as error:
        raise ManifestError(f"{uri} is not a readable Parquet file: {_first_line(error)}") from None
    if found and duplicates == REFUSE:
        raise ManifestError(refusal(uri, found))
    manifest.renamed = renames(found)
    return manifest


def manifest_items(manifest: Manifest) -> Iterator[SourceItem]:
    """One item per row, in row order, reading one record batch at a time.

    The per-row work that would hold back this one listing thread (copying
    every embedded image out of Arrow and its sha256, the ``os.stat`` of every
    path) runs on a small thread pool: hashlib and os.stat release the GIL.
    The next batch's work is started before this batch's items are handed on,
    so it overlaps with the readers; at most two batches are in memory.
    """
    batch_size = ROWS_PER_BATCH_EMBEDDED if manifest.embedded else ROWS_PER_BATCH
    # A pool per listing, not per process: a module-level pool's threads would not survive a fork.
    pool = ThreadPoolExecutor(LISTING_THREADS, thread_name_prefix="eatc-manifest")
    # Arrow reads a local manifest itself: through a Python file object every read takes the GIL and
    # a copy, and embedded images came off the file at about half the rate.
    local = isinstance(manifest.fs, LocalFileSystem)
    try:
        with (pa.OSFile(manifest.fs_path) if local else _seekable(manifest.fs, manifest.fs_path)) as handle:
            parquet = pq.ParquetFile(handle, metadata=manifest.metadata)
            row = 0
            ready: Iterator[SourceItem] = iter(())
            for batch in parquet.iter_batches(batch_size=batch_size):
                started = _start_batch(manifest, row, batch, pool)
                row += batch.num_rows
                yield from ready
                ready = started
            yield from ready
    finally:  # a consumer that stops early (--limit) leaves no work queued
        pool.shutdown(wait=False, cancel_futures=True)


def _identities(manifest: Manifest) -> Iterator[RowIdentity]:
    """Each row's key and id, reading only the columns they come from."""
    columns = [name for name in (manifest.location_column, manifest.id_column) if name]
    if manifest.embedded:
        if manifest.id_column is None:
            return  # keys are "<manifest>#<row>" and ids derive from them: nothing can repeat
        columns = [manifest.id_column]  # never the image bytes
    row = 0
    with _seekable(manifest.fs, manifest.fs_path) as handle:
        parquet = pq.ParquetFile(handle, metadata=manifest.metadata)
        for batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH, columns=columns):
            for values in batch.to_pylist():
                yield _identity(manifest, row, values.get(manifest.location_column), values.get("id"))
                row += 1


def _identity(manifest: Manifest, row: int, cell: Any, given_id: Any) -> RowIdentity:
    if manifest.embedded or not isinstance(cell, str) or not cell.strip():
        key = f"{manifest.uri}#{row}"
    else:
        key = _resolve(manifest.uri, cell.strip())
    image_id = image_id_for(key) if given_id is None else str(given_id)
    return RowIdentity(row, key, image_id, id_given=given_id is not None)


def _start_batch(manifest: Manifest, first_row: int, batch: pa.RecordBatch, pool: Executor) -> Iterator[SourceItem]:
    """Start ``batch``'s hashing or stats on ``pool``; its items, in row order, as that work finishes.

    Columns are taken whole, never ``batch.to_pylist()``, which would build a dict per row around
    the image bytes: the small columns become Python values here, the images on the pool.
    """
    rows = range(first_row, first_row + batch.num_rows)
    given_ids = _column(batch, manifest.id_column)
    albums = [None if album is None else str(album) for album in _column(batch, manifest.album_column)]
    extras = _extras(manifest, batch)

    if manifest.embedded:
        # Copying the bytes out of Arrow is a large part of the work: the pool does it with the hashing.
        images = _map(pool, _owned_and_hashed, _image_cells(batch.column(manifest.location_column)))
        names = [_name(manifest, row, None, given) for row, given in zip(rows, given_ids)]
        return (
            SourceItem(key=name.key, image_id=name.image_id, album=album, data=data, content_hash=digest,
                       size=len(data), extra=extra)
            for name, album, (data, digest), extra in zip(names, albums, images, extras)
        )

    cells = batch.column(manifest.location_column).to_pylist()
    names = [_name(manifest, row, cell, given) for row, cell, given in zip(rows, cells, given_ids)]
    wheres = [name.location or name.key if _names_a_path(cell) else None for name, cell in zip(names, cells)]
    stats = _map(pool, _size_and_mtime, wheres)
    return (
        _path_item(manifest, row, name, where, album, extra, size_mtime)
        for row, name, where, album, extra, size_mtime in zip(rows, names, wheres, albums, extras, stats)
    )


def _path_item(manifest: Manifest, row: int, name: Renamed, where: str | None, album: str | None,
               extra: dict | None, size_mtime: tuple[int | None, float | None]) -> SourceItem:
    """A path row's item; ``where`` is None when the row names no path."""
    if where is None:
        return SourceItem(
            key=name.key,
            image_id=name.image_id,
            album=album,
            extra=extra,
            problem=f"manifest row {row} has no {manifest.location_column}",
        )
    size, mtime = size_mtime
    return SourceItem(
        key=name.key,
        image_id=name.image_id,
        album=album if manifest.album_column else parent_name(where),
        size=size,
        mtime=mtime,
        extra=extra,
        location=name.location,
    )


def _name(manifest: Manifest, row: int, cell: Any, given_id: Any) -> Renamed:
    """The row's key and id, and where its bytes are when a kept duplicate's key no longer says."""
    identity = _identity(manifest, row, cell, given_id)
    return manifest.renamed.get(row) or Renamed(identity.key, identity.image_id, None)


def _names_a_path(cell: Any) -> bool:
    return isinstance(cell, str) and bool(cell.strip())


def _column(batch: pa.RecordBatch, name: str | None) -> list[Any]:
    return batch.column(name).to_pylist() if name else [None] * batch.num_rows


def _extras(manifest: Manifest, batch: pa.RecordBatch) -> list[dict | None]:
    """Each row's other columns as JSON-able values (small: converted a column at a time)."""
    if not manifest.extra_columns:
        return [None] * batch.num_rows
    columns = [[jsonable(value) for value in _column(batch, name)] for name in manifest.extra_columns]
    return [dict(zip(manifest.extra_columns, values)) for values in zip(*columns)]


def _image_cells(column: pa.Array) -> pa.Array:
    """The encoded images as an Arrow binary array, one cell per row."""
    if pa.types.is_struct(column.type):  # Hugging Face's {"bytes": ..., "path": ...}
        column = column.flatten()[column.type.get_field_index("bytes")]  # flatten keeps the struct's nulls
    return column


def _owned_and_hashed(cell: pa.Scalar) -> tuple[bytes, str]:
    """The cell's image copied once out of Arrow into ``bytes``, and its sha256. A null cell is
    ``b""``: an empty image, which becomes an "empty" error row."""
    data = cell.as_py() or b""
    return data, _sha256_hex(data)


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _size_and_mtime(where: str | None) -> tuple[int | None, float | None]:
    """A local file's size and mtime; unknown for URLs and files that cannot be stat-ed
    (reading them will say why, on their own rows)."""
    if where is None or is_remote(where):
        return None, None
    try:
        stat = os.stat(where)
    except OSError:
        return None, None
    return stat.st_size, stat.st_mtime


def _map(pool: Executor, function: Callable[[Any], Any], values: Sequence[Any] | pa.Array) -> Iterator[Any]:
    """``map(function, values)``, started now on ``pool``; the results in order, as they are needed.

    One task per thread, not per value: every task is a hand-over between threads, and with a task
    per image a loaded machine listed slower than with no pool at all.
    """
    size = max(1, -(-len(values) // LISTING_THREADS))
    tasks = [pool.submit(_map_chunk, function, values[start : start + size]) for start in range(0, len(values), size)]
    return (result for task in tasks for result in task.result())


def _map_chunk(function: Callable[[Any], Any], values: Sequence[Any] | pa.Array) -> list[Any]:
    return [function(value) for value in values]


def _resolve(manifest_uri: str, location: str) -> str:
    """A row's path or URL as a key: absolute local path, or URL."""
    if is_remote(location):
        return location
    if protocol_of(location) is not None:  # file://
        return local_path(location)
    if is_remote(manifest_uri):  # "a/b.jpg" and "/a/b.jpg" are on the manifest's host, as in a web page
        return join_url(manifest_uri, location)
    return os.path.normpath(os.path.join(os.path.dirname(manifest_uri), location))


def jsonable(value: Any) -> Any:
    """A Parquet cell as a value ``json.dumps`` writes as standard JSON."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        # Arrow maps arrive as lists of (key, value) pairs; lists stay lists.
        return [jsonable(item) for item in value]
    return str(value)


def _holds_bytes(kind: pa.DataType) -> bool:
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return True
    return pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0


@contextmanager
def _seekable(fs: AbstractFileSystem, fs_path: str) -> Iterator[IO[bytes]]:
    """A random-access handle on the manifest.

    Parquet reads its footer first, which needs HTTP range requests; from a
    server without them (e.g. ``python -m http.server``) the manifest is
    first copied to a temporary file.
    """
    with fs.open(fs_path, "rb") as handle:
        try:
            handle.seek(-8, os.SEEK_END)
            handle.read(8)
            handle.seek(0)
            ranged = True
        except ValueError:  # fsspec's "server doesn't appear to support range requests"
            ranged = False
        if ranged:
            yield handle
            return
    with fs.open(fs_path, "rb", block_size=0) as stream, tempfile.TemporaryFile() as copy:
        shutil.copyfileobj(stream, copy, length=1 << 20)
        copy.seek(0)
        yield copy


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
