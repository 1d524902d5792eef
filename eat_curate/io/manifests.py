"""Parquet manifests: one row per image, streamed in record batches.

Columns, by name:

- where the image is, first found of: ``image`` (the encoded bytes, or a
  ``{"bytes": ...}`` struct as Hugging Face datasets write it), ``path``,
  ``uri``. Relative paths resolve against the manifest's folder (or URL);
  ``file://`` becomes a local path; other URLs stay URLs.
- ``album`` (optional), ``id`` (optional: the image id; else derived from the key).
  A null, NaN or blank cell in either counts as absent.
- every other column is carried to the item's ``extra`` as JSON-able values
  (dates as ISO text, bytes as base64, NaN as null).

Up front, the footer is read (to check the columns) and the location and id
columns are scanned for rows naming a path or an id twice, which the outputs
could not keep apart: such a manifest is refused, or every row kept under a
key and id of its own (:mod:`eat_curate.io.manifest_duplicates`). The same
pass refuses ids and albums the outputs cannot store (an id over 128
characters or holding a NUL, an album over 1 KiB). Rows then
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
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractFileSystem

from eat_curate.errors import EatCurateError
from eat_curate.io.folders import ALBUM_RULES, PARENT
from eat_curate.io.items import (
    MAX_ALBUM_BYTES,
    MAX_GIVEN_ID_LENGTH,
    SourceItem,
    album_bytes,
    image_id_for,
    printable_path,
)
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
    repeated = [name for name, count in Counter(columns).items() if count > 1]
    if repeated:  # columns are taken by name: Arrow cannot pick one of two, nor an output keep both
        named = ", ".join(repr(name) for name in repeated)
        raise ManifestError(f"manifest {uri} has more than one column named {named}; give each column its own name")
    location_column = next((name for name in LOCATION_COLUMNS if name in columns), None)
    if location_column is None:
        raise ManifestError(f"manifest {uri} has no path, uri or image column ({has})")
    location_type = schema.field(location_column).type
    if location_column == "image" and not _holds_bytes(location_type):
        raise ManifestError(f"manifest {uri}: column image holds {location_type}, not image bytes")
    if location_column != "image" and not _holds_text(location_type):
        raise ManifestError(f"manifest {uri}: column {location_column} holds {location_type}, not paths or URLs "
                            "as text")
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
    longer = next((name for name in manifest.renamed.values() if len(name.image_id) > MAX_GIVEN_ID_LENGTH), None)
    if longer is not None:  # a kept duplicate's id, with "#<row>" appended
        raise ManifestError(f"manifest {uri}: the id {longer.image_id!r} given to a repeated row is over "
                            f"{MAX_GIVEN_ID_LENGTH} characters; give that row an id of its own")
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
            ready: Iterator[SourceItem] = iter(())
            for row, batch in _readable_batches(manifest, parquet.iter_batches(batch_size=batch_size)):
                started = _start_batch(manifest, row, batch, pool)
                yield from ready
                ready = started
            yield from ready
    finally:  # a consumer that stops early (--limit) leaves no work queued
        pool.shutdown(wait=False, cancel_futures=True)


def _readable_batches(
    manifest: Manifest, batches: Iterator[pa.RecordBatch]
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Each of ``batches`` with the number of its first row, or a ManifestError at the first that cannot be read:
    a damaged file whose footer reads (so it passed ``open_manifest``) but whose pages do not decompress or
    decode."""
    row = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as error:
            which = f"its rows from row {row:,} on" if row else "its rows"
            raise ManifestError(
                f"manifest {manifest.uri}: {which} cannot be read, the file is damaged ({_first_line(error)})"
            ) from None
        yield row, batch
        row += batch.num_rows


def _identities(manifest: Manifest) -> Iterator[RowIdentity]:
    """Each row's key and id, reading only the columns they come from (never the image bytes); raises
    ManifestError at the first row whose id or album the outputs could not store."""
    location = None if manifest.embedded else manifest.location_column  # embedded keys are "<manifest>#<row>"
    columns = list(dict.fromkeys(name for name in (location, manifest.id_column, manifest.album_column) if name))
    if not columns:
        return  # embedded, no id and no album column: keys and ids derive from row numbers, nothing can repeat
    row = 0
    with _seekable(manifest.fs, manifest.fs_path) as handle:
        parquet = pq.ParquetFile(handle, metadata=manifest.metadata)
        for batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH, columns=columns):
            cells, given_ids = _column(batch, location), _column(batch, manifest.id_column)
            for cell, given_id, album in zip(cells, given_ids, _column(batch, manifest.album_column)):
                _check_album(manifest, row, _album(album))
                yield _identity(manifest, row, cell, given_id)
                row += 1


def _identity(manifest: Manifest, row: int, cell: Any, given_id: Any) -> RowIdentity:
    if manifest.embedded or _path_problem(manifest, row, cell):
        key = f"{manifest.uri}#{row}"
    else:
        key = _resolve(manifest.uri, cell.strip())
    given = _given_id(manifest, row, given_id)
    return RowIdentity(row, key, image_id_for(key) if given is None else given, id_given=given is not None)


def _missing(cell: Any) -> bool:
    """A null cell, or a NaN or infinite one: how pandas and NumPy write a missing value."""
    return cell is None or (isinstance(cell, float) and not math.isfinite(cell))


def _given_id(manifest: Manifest, row: int, cell: Any) -> str | None:
    """The row's id as text; None when the cell is null, NaN or blank. ManifestError for an id the
    outputs cannot store (too long, or with a NUL, which PostgreSQL text refuses)."""
    if _missing(cell):
        return None  # not the id "nan"
    given = str(cell)
    if not given.strip():
        return None
    if len(given) > MAX_GIVEN_ID_LENGTH or "\x00" in given:
        shown = f"{given[:40]!r}..." if len(given) > 40 else repr(given)
        why = f"is {len(given):,} characters long" if len(given) > MAX_GIVEN_ID_LENGTH else "holds a NUL character"
        raise ManifestError(f"manifest {manifest.uri} row {row}: its id {shown} {why}; ids are at most "
                            f"{MAX_GIVEN_ID_LENGTH} characters of text (drop the id column to derive ids from paths)")
    return given


def _album(cell: Any) -> str | None:
    """An album cell as a name: None for null, NaN and blank cells; a NUL shown as ``\\x00`` (PostgreSQL
    text cannot hold one)."""
    if _missing(cell):
        return None
    if isinstance(cell, (bytes, bytearray)):
        cell = bytes(cell).decode("utf-8", "backslashreplace")
    album = str(cell)
    return album.replace("\x00", "\\x00") if album.strip() else None


def _check_album(manifest: Manifest, row: int, album: str | None) -> None:
    size = album_bytes(album)
    if size > MAX_ALBUM_BYTES:
        raise ManifestError(
            f"manifest {manifest.uri} row {row}: its album (column {manifest.album_column}) is {size:,} bytes "
            f"long, over the limit of {MAX_ALBUM_BYTES:,}: albums are names; is it the column meant?"
        )


def _start_batch(manifest: Manifest, first_row: int, batch: pa.RecordBatch, pool: Executor) -> Iterator[SourceItem]:
    """Start ``batch``'s hashing or stats on ``pool``; its items, in row order, as that work finishes.

    Columns are taken whole, never ``batch.to_pylist()``, which would build a dict per row around
    the image bytes: the small columns become Python values here, the images on the pool.
    """
    rows = range(first_row, first_row + batch.num_rows)
    given_ids = _column(batch, manifest.id_column)
    albums = [_album(album) for album in _column(batch, manifest.album_column)]
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

    cells = _column(batch, manifest.location_column)
    names = [_name(manifest, row, cell, given) for row, cell, given in zip(rows, cells, given_ids)]
    problems = [_path_problem(manifest, row, cell) for row, cell in zip(rows, cells)]
    wheres = [None if problem else name.location or name.key for name, problem in zip(names, problems)]
    stats = _map(pool, _size_and_mtime, wheres)
    return (
        _path_item(manifest, name, where, problem, album, extra, size_mtime)
        for name, where, problem, album, extra, size_mtime in zip(names, wheres, problems, albums, extras, stats)
    )


def _path_item(manifest: Manifest, name: Renamed, where: str | None, problem: str | None, album: str | None,
               extra: dict | None, size_mtime: tuple[int | None, float | None]) -> SourceItem:
    """A path row's item; ``where`` is None, and ``problem`` says why, when the row names no usable path."""
    if where is None:
        return SourceItem(key=name.key, image_id=name.image_id, album=album, extra=extra, problem=problem)
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


def _path_problem(manifest: Manifest, row: int, cell: Any) -> str | None:
    """Why the row's cell names no path or URL that can be read (the row's own error); None when it names one."""
    if not isinstance(cell, str) or not cell.strip():
        return f"manifest row {row} has no {manifest.location_column}"
    if isinstance(cell, NotUtf8):
        return f"manifest row {row}: its {manifest.location_column} is not valid UTF-8 text ({cell!r})"
    if "\x00" in cell:  # the OS refuses such a path, and PostgreSQL such a key
        return f"manifest row {row}: its {manifest.location_column} holds a NUL character"
    if is_remote(cell.strip()):
        try:
            urlsplit(cell.strip())
        except ValueError as error:  # "http://[::1/x.jpg": Invalid IPv6 URL
            return f"manifest row {row}: its {manifest.location_column} is not a valid URL ({error})"
    return None


def _column(batch: pa.RecordBatch, name: str | None) -> list[Any]:
    """The column's cells as Python values; all None when ``name`` is None."""
    if not name:
        return [None] * batch.num_rows
    column = batch.column(name)
    try:
        return column.to_pylist()
    except (OverflowError, ValueError):  # a date or duration beyond Python's (a database's "infinity")
        return [_cell(column[index]) for index in range(len(column))]


class NotUtf8(str):
    """A text cell whose bytes are not valid UTF-8 (Parquet does not check; another tool may write such), read
    with U+FFFD for what is not: an album, an id or a carried column shows so; a path is the row's error."""


def _cell(scalar: pa.Scalar) -> Any:
    """One cell as a Python value; one Python cannot hold as Arrow writes it ("<value out of range: ...>"),
    else None."""
    try:
        return scalar.as_py()
    except UnicodeDecodeError:
        return NotUtf8(scalar.cast(pa.binary()).as_py().decode("utf-8", errors="replace"))
    except (OverflowError, ValueError):
        try:
            return scalar.cast(pa.string()).as_py()
        except (pa.ArrowException, OverflowError, ValueError):  # nested: no text form
            return None


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
    if pa.types.is_dictionary(column.type):  # repeated images stored once: each row's own cell
        column = column.dictionary_decode()
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
    """Whether an ``image`` column of this type holds encoded images: any binary type, plain or
    dictionary-encoded, or a struct whose ``bytes`` field is one (Hugging Face's image feature)."""
    if pa.types.is_struct(kind):
        index = kind.get_field_index("bytes")  # -1 when absent (or there twice)
        return index >= 0 and _is_binary(kind.field(index).type)
    return _is_binary(kind)


def _is_binary(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind)
            or pa.types.is_binary_view(kind))


def _holds_text(kind: pa.DataType) -> bool:
    """Whether a ``path``/``uri`` column of this type holds text (plain or dictionary-encoded); an all-null
    column counts too (every row is one that has no path)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
            or pa.types.is_null(kind))


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
