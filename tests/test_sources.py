"""Sources: folders, single files, Parquet manifests and URLs become one SourceItem per image, streamed."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import threading
from datetime import datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eat_curate.errors import EatCurateError
from eat_curate.io.decode import decode_image
from eat_curate.io.exclusions import ExclusionError, Exclusions
from eat_curate.io.sources import (
    ManifestError,
    SourceError,
    SourceItem,
    SourceReadError,
    image_id_for,
    iter_items,
    read_bytes,
)
from hostile_files import encode, photo, write_hostile_folder

RUNNING_AS_ROOT = os.geteuid() == 0


def keys_under(root: Path, items: list[SourceItem]) -> list[str]:
    return [os.path.relpath(item.key, root) for item in items]


def write_manifest(path: Path, columns: dict[str, list], row_group_size: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


# --- folders -----------------------------------------------------------------------------------------


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A photo library with the usual clutter: hidden folders, sidecars, a symlink loop, odd names."""
    root = tmp_path / "library"
    jpeg = encode(photo(seed=1), "JPEG")
    for name in ("b.jpg", "a.png", ".hidden.jpg", ".thumbnails/x.jpg", "2023/iceland/c.jpg", "trips/D.JPG"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(jpeg)
    (root / "scan_0001").write_bytes(encode(photo(seed=2), "PNG"))  # no extension: found by its bytes
    (root / "README").write_text("holiday photos, 2023\n")  # no extension, not an image
    (root / "b.xmp").write_text("<x:xmpmeta/>")  # a sidecar
    (root / "shopping.jpg").write_text("milk, eggs")  # named like an image: listed, to become an error row
    os.symlink("../..", root / "2023/iceland/back_to_top")  # a loop
    os.symlink("../2023", root / "trips/same_as_2023")  # a second way into a folder already walked
    return root


@pytest.mark.timeout(60)  # a walk that followed the symlink loop would never end
def test_folder_walk_lists_images_in_a_stable_sorted_order(library):
    items = list(iter_items([str(library)]))
    assert keys_under(library, items) == [
        "2023/iceland/c.jpg",
        "a.png",
        "b.jpg",
        "scan_0001",
        "shopping.jpg",
        "trips/D.JPG",
    ]
    assert [item.key for item in iter_items([str(library)])] == [item.key for item in items]


def test_a_deep_folder_tree_is_walked_resolving_only_symlinked_folders(tmp_path, monkeypatch):
    """Resolving every sub-folder's whole path made a tree N folders deep cost N^2 lookups (12 s at 1,200)."""
    root = tmp_path / "deep"
    bottom = root.joinpath(*[f"level{depth}" for depth in range(150)])
    bottom.mkdir(parents=True)
    (bottom / "last.jpg").write_bytes(encode(photo(seed=1), "JPEG"))
    os.symlink(str(root / "level0"), bottom / "back_to_the_top")  # a loop, found through its resolved path
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "linked.jpg").write_bytes(encode(photo(seed=2), "JPEG"))
    os.symlink(str(tmp_path / "elsewhere"), root / "level0" / "linked_folder")
    resolved = []
    real_resolve = os.path.realpath
    monkeypatch.setattr(os.path, "realpath", lambda path, **kw: resolved.append(path) or real_resolve(path, **kw))

    items = list(iter_items([str(root)]))

    assert keys_under(root, items) == [f"{bottom.relative_to(root)}/last.jpg", "level0/linked_folder/linked.jpg"]
    assert len(resolved) <= 5  # the root and the two symlinked folders, not each of the 150 levels


def test_album_is_the_name_of_the_folder_holding_the_file_whichever_folder_is_given(library):
    albums = {os.path.relpath(item.key, library): item.album for item in iter_items([str(library)])}
    assert albums["2023/iceland/c.jpg"] == "iceland"
    assert albums["trips/D.JPG"] == "trips"
    assert albums["a.png"] == library.name  # files directly in the folder given: that folder's name
    from_deeper = {item.key: item.album for item in iter_items([str(library / "2023" / "iceland")])}
    assert from_deeper[str(library / "2023" / "iceland" / "c.jpg")] == "iceland"  # the same album


def nested_folders(root: Path, depth: int) -> Path:
    """``root``/a/a/.../a, ``depth`` folders deep, made one level at a time through folder descriptors (as deep
    as the file system allows, whatever the length of the whole path); the deepest folder's path."""
    root.mkdir()
    folder = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("a", dir_fd=folder)
            deeper = os.open("a", os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = deeper
    finally:
        os.close(folder)
    return root.joinpath(*["a"] * depth)


def test_a_tree_deeper_than_pythons_recursion_limit_is_walked(tmp_path):
    deepest = nested_folders(tmp_path / "photos", sys.getrecursionlimit() + 200)  # a legal tree: 2.4 KB of path
    (deepest / "x.jpg").write_bytes(encode(photo(seed=1), "JPEG"))
    (tmp_path / "photos" / "top.jpg").write_bytes(encode(photo(seed=2), "JPEG"))

    try:
        items = list(iter_items([str(tmp_path / "photos")]))
    finally:
        (deepest / "x.jpg").unlink()
        for folder in [deepest, *deepest.parents][: sys.getrecursionlimit() + 200]:  # shutil.rmtree would recurse
            folder.rmdir()

    assert [item.key for item in items] == [str(deepest / "x.jpg"), str(tmp_path / "photos" / "top.jpg")]
    assert [item.problem for item in items] == [None, None]


def test_album_from_relative_is_the_folder_path_under_the_folder_given(library):
    albums = {os.path.relpath(item.key, library): item.album for item in iter_items([str(library)], "relative")}
    assert albums["2023/iceland/c.jpg"] == "2023/iceland"
    assert albums["trips/D.JPG"] == "trips"
    assert albums["a.png"] is None


def excluding(*patterns: str) -> Exclusions:
    return Exclusions.parse(patterns)


def test_exclude_leaves_out_names_at_any_depth_and_paths_under_the_folder(library):
    def listed(*patterns: str) -> list[str]:
        return keys_under(library, list(iter_items([str(library)], exclusions=excluding(*patterns))))

    assert listed("iceland") == ["a.png", "b.jpg", "scan_0001", "shopping.jpg", "trips/D.JPG"]  # a folder name
    assert listed("*.JPG") == ["a.png", "scan_0001"]  # a file-name glob, whatever the case
    assert listed("2023/*", "trips/d.jpg") == ["a.png", "b.jpg", "scan_0001", "shopping.jpg"]  # paths
    assert listed("trips") == ["2023/iceland/c.jpg", "a.png", "b.jpg", "scan_0001", "shopping.jpg"]


def test_a_pattern_ending_in_a_slash_leaves_out_folders_only(tmp_path):
    jpeg = encode(photo(seed=3), "JPEG")
    for name in ("exports/final.jpg", "holiday/exports", "holiday/beach.jpg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(jpeg)  # holiday/exports: a photo with no extension, found by its bytes
    items = list(iter_items([str(tmp_path)], exclusions=excluding("exports/")))
    assert keys_under(tmp_path, items) == ["holiday/beach.jpg", "holiday/exports"]


def test_an_excluded_folder_is_never_opened(library, monkeypatch):
    opened = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: opened.append(os.path.relpath(path, library)) or real_scandir(path))
    list(iter_items([str(library)], exclusions=excluding("iceland")))
    assert sorted(opened) == [".", ".", "2023", "trips"]  # the check before the walk, then the walk: no iceland


def test_exclude_is_refused_when_no_source_is_a_folder(library):
    with pytest.raises(SourceError, match="--exclude applies inside folders, and no source is one"):
        iter_items([str(library / "b.jpg")], exclusions=excluding("*.png"))
    both = iter_items([str(library / "b.jpg"), str(library / "trips")], exclusions=excluding("same_as_2023"))
    assert keys_under(library, list(both)) == ["b.jpg", "trips/D.JPG"]  # the file as given, the folder walked


def test_an_empty_pattern_is_refused():
    for pattern in ("", "/", "//"):
        with pytest.raises(ExclusionError, match="names nothing"):
            Exclusions.parse([pattern])


def test_a_folder_inside_another_given_folder_is_refused(library):
    with pytest.raises(SourceError, match="is inside .*, which is given too"):
        iter_items([str(library), str(library / "trips")])


def test_folder_items_carry_absolute_keys_stable_ids_size_and_mtime(library):
    item = next(item for item in iter_items([str(library)]) if item.key.endswith("b.jpg"))
    path = library / "b.jpg"
    assert item.key == str(path.absolute())
    assert item.image_id == image_id_for(item.key) == hashlib.sha1(item.key.encode()).hexdigest()[:16]
    assert (item.size, item.mtime) == (path.stat().st_size, path.stat().st_mtime)
    assert item.data is None and item.extra is None


def test_photo_folder_albums_are_the_folder_names(photo_folder):
    albums = [item.album for item in iter_items([str(photo_folder)])]
    assert albums == ["family", "family", "trips", "trips", "trips"]


def test_the_root_is_walked_even_when_hidden(tmp_path):
    root = tmp_path / ".cache" / "photos"
    (root / "album").mkdir(parents=True)
    (root / "album" / "x.jpg").write_bytes(encode(photo(), "JPEG"))
    assert [item.album for item in iter_items([str(root)])] == ["album"]


def test_every_hostile_file_is_listed_once(tmp_path):
    expected = write_hostile_folder(tmp_path / "hostile")
    listed = [os.path.basename(item.key) for item in iter_items([str(tmp_path / "hostile")])]
    assert sorted(listed) == sorted(expected)


def test_listing_streams_as_it_is_consumed(tmp_path):
    root = tmp_path / "growing"
    root.mkdir()
    items = iter_items([str(root)])
    (root / "added_after_the_call.jpg").write_bytes(encode(photo(), "JPEG"))
    assert [os.path.basename(item.key) for item in items] == ["added_after_the_call.jpg"]


# --- single files and limits -------------------------------------------------------------------------


def test_a_single_file_takes_its_folder_name_as_album(photo_folder):
    path = photo_folder / "trips" / "trip_1.jpg"
    (item,) = iter_items([str(path)])
    assert (item.key, item.album, item.size) == (str(path), "trips", path.stat().st_size)
    assert read_bytes(item) == path.read_bytes()


def test_file_urls_become_local_paths(photo_folder):
    path = photo_folder / "family" / "a.png"
    (item,) = iter_items([path.as_uri()])
    assert item.key == str(path)


def test_limit_caps_the_items_across_all_sources(photo_folder):
    sources = [str(photo_folder / "trips"), str(photo_folder / "family")]
    assert len(list(iter_items(sources))) == 5
    assert [item.album for item in iter_items(sources, limit=4)] == ["trips", "trips", "trips", "family"]
    assert keys_under(photo_folder, list(iter_items(sources, limit=4)))[-1] == "family/a.png"
    assert list(iter_items(sources, limit=0)) == []


# --- reading -----------------------------------------------------------------------------------------


def test_read_bytes_reports_a_vanished_file_as_unreadable(tmp_path):
    path = tmp_path / "gone.jpg"
    path.write_bytes(encode(photo(), "JPEG"))
    (item,) = iter_items([str(path)])
    path.unlink()
    with pytest.raises(SourceReadError) as raised:
        read_bytes(item)
    assert (raised.value.kind, raised.value.reason) == ("unreadable", "not found")


def test_a_broken_symlink_named_like_an_image_is_listed_and_unreadable(tmp_path):
    os.symlink("nowhere.jpg", tmp_path / "link.jpg")
    (item,) = iter_items([str(tmp_path)])
    with pytest.raises(SourceReadError, match="broken symlink"):
        read_bytes(item)


@pytest.mark.skipif(RUNNING_AS_ROOT, reason="root reads files whatever their permissions")
def test_a_file_without_read_permission_is_unreadable(tmp_path):
    path = tmp_path / "locked.jpg"
    path.write_bytes(encode(photo(), "JPEG"))
    path.chmod(0)
    (item,) = iter_items([str(tmp_path)])
    with pytest.raises(SourceReadError) as raised:
        read_bytes(item)
    assert raised.value.reason == "permission denied"


@pytest.mark.skipif(RUNNING_AS_ROOT, reason="root lists folders whatever their permissions")
def test_a_sub_folder_that_cannot_be_listed_becomes_one_unreadable_item(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x.jpg").write_bytes(encode(photo(), "JPEG"))
    locked.chmod(0)
    try:
        (item,) = iter_items([str(tmp_path)])
        with pytest.raises(SourceReadError, match="folder could not be listed"):
            read_bytes(item)
    finally:
        locked.chmod(0o755)


# --- sources that cannot be used fail before anything runs -------------------------------------------


def test_a_missing_source_fails_at_the_call_not_midway(photo_folder):
    with pytest.raises(SourceError, match="no such file or folder: .*nope"):
        iter_items([str(photo_folder), str(photo_folder / "nope")])


@pytest.mark.skipif(RUNNING_AS_ROOT, reason="root lists folders whatever their permissions")
def test_an_unreadable_folder_source_fails_at_the_call(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(SourceError, match="cannot read folder"):
            iter_items([str(locked)])
    finally:
        locked.chmod(0o755)


def test_an_album_column_is_refused_for_folders(photo_folder):
    with pytest.raises(SourceError, match="applies to Parquet manifests"):
        iter_items([str(photo_folder)], album_from="event")


def test_unknown_url_protocols_fail_at_the_call():
    with pytest.raises(SourceError, match="unknown URL protocol nosuch://"):
        iter_items(["nosuch://bucket/photo.jpg"])


# --- manifests ---------------------------------------------------------------------------------------


def test_manifest_paths_resolve_against_the_manifest_folder(photo_folder, tmp_path):
    manifest = write_manifest(
        tmp_path / "lists" / "picks.parquet",
        {"path": ["../photos/trips/trip_0.jpg", str(photo_folder / "family" / "b.jpg")]},
    )
    items = list(iter_items([str(manifest)]))
    assert [item.key for item in items] == [str(photo_folder / "trips/trip_0.jpg"), str(photo_folder / "family/b.jpg")]
    assert [item.album for item in items] == ["trips", "family"]  # no album column: the parent folder
    assert items[0].size == (photo_folder / "trips/trip_0.jpg").stat().st_size
    assert read_bytes(items[1]) == (photo_folder / "family/b.jpg").read_bytes()


def test_manifest_album_and_id_columns_and_extra_carried_through(photo_folder, tmp_path):
    manifest = write_manifest(
        tmp_path / "m.parquet",
        {
            "uri": [str(photo_folder / "trips/trip_0.jpg"), str(photo_folder / "trips/trip_1.jpg")],
            "album": ["Best of", None],
            "id": [101, 102],
            "rating": [4, 5],
            "taken": [datetime(2023, 5, 1, 12, 0), None],
            "tags": [["sea", "dusk"], []],
            "weight": [0.5, float("nan")],
        },
    )
    first, second = iter_items([str(manifest)])
    assert (first.album, first.image_id, second.album, second.image_id) == ("Best of", "101", None, "102")
    assert first.extra == {"rating": 4, "taken": "2023-05-01T12:00:00", "tags": ["sea", "dusk"], "weight": 0.5}
    assert second.extra["weight"] is None  # NaN is not JSON
    json.dumps([first.extra, second.extra], allow_nan=False)


def test_album_from_names_the_manifest_column_to_use(photo_folder, tmp_path):
    manifest = write_manifest(
        tmp_path / "m.parquet", {"path": [str(photo_folder / "trips/trip_2.jpg")], "album": ["x"], "event": ["Wedding"]}
    )
    (item,) = iter_items([str(manifest)], album_from="event")
    assert item.album == "Wedding"
    assert item.extra == {"album": "x"}  # the album column is then just another column


def test_embedded_image_bytes(tmp_path):
    images = [encode(photo(seed=seed), "JPEG") for seed in range(3)] + [None]
    manifest = write_manifest(tmp_path / "embedded.parquet", {"image": images, "caption": ["a", "b", "c", "d"]})
    items = list(iter_items([str(manifest)]))
    assert [item.key for item in items] == [f"{manifest}#{row}" for row in range(4)]
    assert items[1].data == images[1] and read_bytes(items[1]) == images[1]
    assert items[1].content_hash == hashlib.sha256(images[1]).hexdigest() and items[1].size == len(images[1])
    assert items[1].album is None and items[1].extra == {"caption": "b"}
    assert decode_image(read_bytes(items[3])).error_kind == "empty"  # a null cell: one error row


def test_embedded_images_as_hugging_face_structs(tmp_path):
    jpeg = encode(photo(), "JPEG")
    manifest = write_manifest(tmp_path / "hf.parquet", {"image": [{"bytes": jpeg, "path": "x.jpg"}]})
    (item,) = iter_items([str(manifest)])
    assert item.data == jpeg


def test_a_manifest_row_without_a_path_is_one_unreadable_item(photo_folder, tmp_path):
    manifest = write_manifest(tmp_path / "m.parquet", {"path": [str(photo_folder / "family/a.png"), None]})
    ok, missing = iter_items([str(manifest)])
    assert read_bytes(ok)
    assert missing.key == f"{manifest}#1"
    with pytest.raises(SourceReadError, match="manifest row 1 has no path"):
        read_bytes(missing)


def test_large_manifests_stream_in_batches_and_stop_at_the_limit(tmp_path):
    rows = 50_000
    manifest = write_manifest(
        tmp_path / "big.parquet", {"path": [f"img_{i:06d}.jpg" for i in range(rows)]}, row_group_size=10_000
    )
    assert sum(1 for _ in iter_items([str(manifest)])) == rows
    first_three = list(iter_items([str(manifest)], limit=3))
    assert [os.path.basename(item.key) for item in first_three] == [f"img_00000{i}.jpg" for i in range(3)]


def test_a_parquet_file_is_a_manifest_whatever_its_name(photo_folder, tmp_path):
    manifest = write_manifest(tmp_path / "picks.list", {"path": [str(photo_folder / "family/a.png")]})
    (item,) = iter_items([str(manifest)])
    assert item.key == str(photo_folder / "family/a.png")


def test_a_manifest_without_location_columns_names_the_columns_it_has(tmp_path):
    manifest = write_manifest(tmp_path / "m.parquet", {"filename": ["a.jpg"], "score": [5.0]})
    with pytest.raises(ManifestError, match=r"no path, uri or image column \(it has: filename, score\)"):
        iter_items([str(manifest)])


def test_an_unknown_album_column_names_the_columns_it_has(tmp_path):
    manifest = write_manifest(tmp_path / "m.parquet", {"path": ["a.jpg"]})
    with pytest.raises(ManifestError, match=r"album column 'event' is not in manifest .* \(it has: path\)"):
        iter_items([str(manifest)], album_from="event")


def test_a_text_file_named_parquet_is_refused(tmp_path):
    fake = tmp_path / "m.parquet"
    fake.write_text("path\na.jpg\n")
    with pytest.raises(ManifestError, match="is not a readable Parquet file"):
        iter_items([str(fake)])


def test_an_image_column_of_the_wrong_type_is_refused(tmp_path):
    manifest = write_manifest(tmp_path / "m.parquet", {"image": ["a.jpg"]})
    with pytest.raises(ManifestError, match="column image holds string, not image bytes"):
        iter_items([str(manifest)])


def test_source_errors_are_user_facing_errors(tmp_path):
    with pytest.raises(EatCurateError):
        iter_items([str(tmp_path / "missing.parquet")])


# --- URLs, served by a real HTTP server on 127.0.0.1 -------------------------------------------------


class QuietHandler(SimpleHTTPRequestHandler):
    """Python's own file server: no range requests, like ``python -m http.server``."""

    def log_message(self, format, *args) -> None:
        pass


class RangeHandler(QuietHandler):
    """Also answers ``Range: bytes=a-b`` with 206, as S3, nginx and CDNs do."""

    def send_head(self):
        requested = self.headers.get("Range", "")
        if not requested.startswith("bytes="):
            return super().send_head()
        try:
            data = Path(self.translate_path(self.path)).read_bytes()
        except OSError:
            self.send_error(404)
            return None
        first, _, last = requested[len("bytes=") :].partition("-")
        start = len(data) - int(last) if not first else int(first)
        end = min(int(last), len(data) - 1) if first and last else len(data) - 1
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        return io.BytesIO(data[start : end + 1])


class SignedUrlHandler(BaseHTTPRequestHandler):
    """An object store behind signed URLs: the image only for the exact request target it signed, else 403;
    and an API that redirects to it."""

    signed = "/roll/IMG%201.jpg?X-Amz-Credential=AKIA%2F20261207%2Fs3&X-Amz-Signature=ab%2Bc%3D"
    image = b""
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path == "/api/photos/1":  # an API handing out signed URLs by redirect
            self.send_response(302)
            self.send_header("Location", f"http://{self.headers['Host']}{self.signed}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        allowed = self.path == self.signed
        self.send_response(200 if allowed else 403)
        self.send_header("Content-Length", str(len(self.image) if allowed else 0))
        self.end_headers()
        if allowed:
            self.wfile.write(self.image)

    do_HEAD = do_GET

    def log_message(self, format, *args) -> None:
        pass


def test_a_signed_url_is_requested_exactly_as_written_given_or_redirected_to(tmp_path):
    """Its escapes (%2F, %2B, %3D) are signed as written: decoding them voids the signature (HTTP 403)."""
    pytest.importorskip("aiohttp")
    SignedUrlHandler.image, SignedUrlHandler.seen = encode(photo(seed=9), "JPEG"), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SignedUrlHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}{SignedUrlHandler.signed}"
        manifest = tmp_path / "signed.parquet"
        api = f"http://127.0.0.1:{server.server_address[1]}/api/photos/1"
        pq.write_table(pa.table({"path": [url, url.replace("IMG%201", "IMG 1"), api]}), manifest)

        items = list(iter_items([str(manifest)]))
        read = [read_bytes(item) for item in items]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

    assert read == [SignedUrlHandler.image] * 3  # a raw space is the one thing encoded
    assert set(SignedUrlHandler.seen) == {SignedUrlHandler.signed, "/api/photos/1"}


@pytest.fixture(params=[QuietHandler, RangeHandler], ids=["plain-server", "range-server"])
def served(request, tmp_path: Path):
    """(base URL, folder it serves) from an HTTP server started for the test and shut down after."""
    pytest.importorskip("aiohttp")  # fsspec's HTTP backend: the eat-curate[http] extra
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(request.param, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_image_url_is_one_item_with_size_and_mtime_from_the_server(served):
    base, root = served
    jpeg = encode(photo(seed=5), "JPEG")
    (root / "holiday").mkdir()
    (root / "holiday" / "beach.jpg").write_bytes(jpeg)
    (item,) = iter_items([f"{base}/holiday/beach.jpg"])
    assert (item.key, item.album, item.size) == (f"{base}/holiday/beach.jpg", "holiday", len(jpeg))
    assert math.isclose(item.mtime, (root / "holiday" / "beach.jpg").stat().st_mtime, abs_tol=1.0)
    assert read_bytes(item) == jpeg


def test_a_missing_url_is_listed_and_reads_as_http_404(served):
    base, _ = served
    (item,) = iter_items([f"{base}/nowhere.jpg"])
    assert item.size is None
    with pytest.raises(SourceReadError) as raised:
        read_bytes(item)
    assert (raised.value.kind, raised.value.reason) == ("unreadable", "HTTP 404 not found")


def test_a_manifest_url_with_relative_paths_reads_images_from_the_same_server(served):
    base, root = served
    jpegs = [encode(photo(seed=seed), "JPEG") for seed in range(2)]
    for index, jpeg in enumerate(jpegs):
        (root / "photos").mkdir(exist_ok=True)
        (root / "photos" / f"{index}.jpg").write_bytes(jpeg)
    write_manifest(root / "lists" / "m.parquet", {"path": ["../photos/0.jpg", "/photos/1.jpg"], "stars": [3, 5]})
    items = list(iter_items([f"{base}/lists/m.parquet"]))
    assert [item.key for item in items] == [f"{base}/photos/0.jpg", f"{base}/photos/1.jpg"]
    assert [item.album for item in items] == ["photos", "photos"]
    assert [item.extra for item in items] == [{"stars": 3}, {"stars": 5}]
    assert [read_bytes(item) for item in items] == jpegs


def test_a_manifest_url_with_embedded_images(served):
    base, root = served
    jpeg = encode(photo(seed=7), "JPEG")
    write_manifest(root / "embedded.parquet", {"image": [jpeg]})
    (item,) = iter_items([f"{base}/embedded.parquet"])
    assert (item.key, item.data) == (f"{base}/embedded.parquet#0", jpeg)


def test_a_missing_manifest_url_fails_at_the_call(served):
    base, _ = served
    with pytest.raises(ManifestError, match="manifest not found"):
        iter_items([f"{base}/missing.parquet"])


def test_a_url_ending_in_a_slash_is_a_remote_folder_walked_like_a_local_one(served):
    base, root = served
    jpeg = encode(photo(seed=6), "JPEG")
    for name in ("2023/iceland/b.jpg", "2023/iceland/a.jpg", "top.jpg", ".hidden/x.jpg", "notes.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"notes" if name.endswith(".txt") else jpeg)
    items = list(iter_items([f"{base}/"]))
    assert [(item.key.removeprefix(base), item.album) for item in items] == [
        ("/2023/iceland/a.jpg", "iceland"),
        ("/2023/iceland/b.jpg", "iceland"),
        ("/top.jpg", None),  # the server's top folder has no name, as for a single URL
    ]
    relative = list(iter_items([f"{base}/"], "relative"))
    assert [item.album for item in relative] == ["2023/iceland", "2023/iceland", None]
    assert read_bytes(items[0]) == jpeg
    kept = iter_items([f"{base}/"], exclusions=Exclusions.parse(["iceland/", "TOP.jpg"]))
    assert [item.key.removeprefix(base) for item in kept] == []
    kept = iter_items([f"{base}/"], exclusions=Exclusions.parse(["2023/iceland/a.*"]))
    assert [item.key.removeprefix(base) for item in kept] == ["/2023/iceland/b.jpg", "/top.jpg"]


def test_a_remote_folder_too_deep_for_its_path_to_be_an_album_gives_error_rows(served):
    base, root = served
    deep = root.joinpath(*(letter * 190 for letter in "abcdef"))  # 1,145 bytes of folder path
    deep.mkdir(parents=True)
    (deep / "x.jpg").write_bytes(encode(photo(seed=8), "JPEG"))
    (item,) = iter_items([f"{base}/"], "relative")
    assert item.album is None and "longer than the 1,024 bytes an album may be" in item.problem
    (item,) = iter_items([f"{base}/"])
    assert item.album == "f" * 190 and item.problem is None
