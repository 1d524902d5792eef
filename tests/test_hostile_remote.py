"""Hostile or broken HTTP servers behind URL sources: each bad URL is one error row with a clear reason, never a hang.

The servers here are raw sockets on 127.0.0.1 that answer exactly the bytes a test scripts: a chunked body
whose chunk size is not a number, a ``100 Continue`` and then silence, a body trickling a byte at a time,
a status line that is not HTTP, a redirect without a Location. Every wait of a read is bounded by
``--remote-timeout`` (the headers, and each MiB of the body), and a URL's password is never printed.

Folder URLs are listed from index pages, which a server can make endless, loop, or not an index at all:
those come from raw sockets too, or from a small server answering scripted pages by path (PageServer).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.io import remote_folders, remote_index, remote_retry
from eat_curate.io.bounded_read import MiB, describe_size
from eat_curate.io.remote import RemoteError
from eat_curate.io.remote_read import url_facts
from eat_curate.io.remote_retry import RetryPolicy
from eat_curate.io.sources import SourceError, SourceItem, SourceReadError, iter_items, read_bytes
from hostile_files import encode, photo

pytest.importorskip("aiohttp")  # fsspec's HTTP backend: the eat-curate[http] extra

ONE_TRY = RetryPolicy(attempts=1, timeout_s=0.5)
JPEG = encode(photo(seed=22), "JPEG")
Answer = Callable[[socket.socket], None]  # writes a scripted answer on an accepted connection


def ok_answer(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(JPEG) + JPEG)


def broken_chunk(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    time.sleep(0.1)  # the headers on their own: the client is reading the body when the bad chunk comes
    connection.sendall(b"zz\r\nhello\r\n")


def continue_then_silence(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # an interim answer; the final one never comes


def trickle(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(JPEG))
    for byte in JPEG:  # every byte well within the timeout, the whole body far beyond it
        connection.sendall(bytes([byte]))
        time.sleep(0.05)


def not_http(connection: socket.socket) -> None:
    connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


def bad_content_length(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n" + JPEG)


def redirect_without_location(connection: socket.socket) -> None:
    body = b"<html>moved</html>"
    connection.sendall(b"HTTP/1.1 302 Found\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], str]]:
    """``serve(answer)`` -> a URL on 127.0.0.1 whose every connection gets ``answer``; all closed after the test."""
    listeners: list[socket.socket] = []
    stop = threading.Event()

    def start(answer: Answer) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.05)
        listeners.append(listener)

        def handle(connection: socket.socket) -> None:
            with connection:
                try:
                    connection.recv(65536)  # the request: its headers fit one read
                    answer(connection)
                    stop.wait(5)  # hold the connection open, as a stalled server would
                except OSError:
                    pass  # the client gave up and hung up: what these servers are for

        def accept() -> None:
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except (TimeoutError, socket.timeout):
                    continue
                except OSError:
                    return
                threading.Thread(target=handle, args=(connection,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}/photos/x.jpg"

    yield start
    stop.set()
    for listener in listeners:
        listener.close()


def refusal_of(url: str, retry: RetryPolicy = ONE_TRY) -> str:
    """The reason reading ``url`` fails, checked to come within a few seconds (so never a hang)."""
    started = time.monotonic()
    with pytest.raises(SourceReadError) as refused:
        read_bytes(SourceItem(key=url, image_id="x", album=None), retry=retry)
    assert time.monotonic() - started < 5
    assert refused.value.kind == "unreadable"
    return refused.value.reason


# --- stalls: every wait is bounded ----------------------------------------------------------------------


def test_a_broken_chunk_in_the_body_times_out_instead_of_hanging(serve) -> None:
    # aiohttp never wakes a read waiting on a body whose chunk it could not parse: the read used to wait for ever
    assert refusal_of(serve(broken_chunk)) == "timed out (less than 1 MiB arrived in 0.5 s) (1 try)"


def test_an_interim_100_answer_followed_by_silence_times_out(serve) -> None:
    assert refusal_of(serve(continue_then_silence)) == "timed out (no answer within 0.5 s) (1 try)"


def test_a_body_trickling_in_a_byte_at_a_time_is_cut_by_the_timeout(serve) -> None:
    # each byte comes long before the timeout, so a per-wait timeout alone never fires: each MiB has a deadline
    assert refusal_of(serve(trickle)) == "timed out (less than 1 MiB arrived in 0.5 s) (1 try)"


def test_a_stalling_server_times_out_each_try_and_is_tried_again(serve) -> None:
    reason = refusal_of(serve(trickle), RetryPolicy(attempts=2, first_wait_s=0.01, timeout_s=0.3))
    assert reason == "timed out (less than 1 MiB arrived in 0.3 s) (2 tries)"


def test_a_remote_folder_whose_server_stalls_fails_in_bounded_time(serve, monkeypatch) -> None:
    monkeypatch.setattr(remote_retry, "DEFAULT_RETRY", RetryPolicy(attempts=1, timeout_s=0.3))
    folder = serve(continue_then_silence).rsplit("/", 1)[0] + "/"
    started = time.monotonic()
    with pytest.raises(SourceError, match="cannot reach 127.0.0.1:.*timed out"):
        iter_items([folder])
    assert time.monotonic() - started < 5


# --- answers that are not what they claim ---------------------------------------------------------------


@pytest.mark.parametrize(
    "answer, reason",
    [
        (not_http, "malformed HTTP answer (Bad status line"),
        (bad_content_length, "malformed HTTP answer (Invalid character in Content-Length)"),
    ],
    ids=["not-http", "content-length-not-a-number"],
)
def test_a_malformed_answer_says_so_instead_of_http_400(serve, answer: Answer, reason: str) -> None:
    # aiohttp labels a response it cannot parse with status 400, as though the server had answered 400
    assert refusal_of(serve(answer)).startswith(reason)


def test_a_redirect_without_a_location_is_not_read_as_the_image(serve) -> None:
    # its body (an HTML page here, often nothing) used to be decoded as the photo: not-an-image or empty
    assert refusal_of(serve(redirect_without_location)) == "HTTP 302"


def test_a_working_server_still_reads_over_the_same_path(serve) -> None:
    assert read_bytes(SourceItem(key=serve(ok_answer), image_id="x", album=None), retry=ONE_TRY) == JPEG


# --- secrets --------------------------------------------------------------------------------------------


def test_an_unreachable_host_is_named_without_the_password_in_its_url() -> None:
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RemoteError) as refused:
        url_facts(f"http://bob:hunter2@127.0.0.1:{port}/a.jpg", ONE_TRY)
    assert str(refused.value).startswith(f"cannot reach 127.0.0.1:{port}: ")
    assert "hunter2" not in str(refused.value)


def test_a_source_url_s_password_is_neither_printed_nor_recorded_in_the_run(
    serve, tmp_path: Path, micro_model_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(remote_retry, "DEFAULT_RETRY", remote_retry.DEFAULT_RETRY)  # score replaces it: undo after
    scored_url = serve(ok_answer).replace("http://", "http://bob:hunter2@")
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        unreachable = f"http://bob:hunter2@127.0.0.1:{probe.getsockname()[1]}/a.jpg"
    db = str(tmp_path / "scores.db")

    def score(url: str):
        return CliRunner().invoke(cli, ["score", url, "--db", db, "--model", str(micro_model_path),
                                        "--remote-tries", "1", "--remote-timeout", "0.5"])

    refused = score(unreachable)
    assert refused.exit_code == 2 and "http://bob:***@127.0.0.1:" in refused.output, refused.output
    assert score(scored_url).exit_code == 0
    runs = CliRunner().invoke(cli, ["runs", db, "--json"])
    assert "http://bob:***@127.0.0.1:" in runs.output
    assert "hunter2" not in refused.output + runs.output


# --- through the command line: one row per URL, the good ones scored ------------------------------------


def test_a_manifest_of_hostile_urls_gives_one_error_row_each_and_scores_the_rest(
    serve, tmp_path: Path, micro_model_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(remote_retry, "DEFAULT_RETRY", remote_retry.DEFAULT_RETRY)  # score replaces it: undo after
    answers = [ok_answer, broken_chunk, continue_then_silence, trickle, not_http, redirect_without_location]
    urls = [serve(answer) for answer in answers]
    manifest = tmp_path / "urls.parquet"
    pq.write_table(pa.table({"uri": urls}), manifest)
    out = tmp_path / "scores.parquet"

    started = time.monotonic()
    result = CliRunner().invoke(
        cli,
        ["score", str(manifest), "--out", str(out), "--model", str(micro_model_path),
         "--remote-tries", "1", "--remote-timeout", "0.5"],
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 30
    rows = {row["path"]: row for row in pq.read_table(out).to_pylist()}
    assert sorted(rows) == sorted(urls)
    assert rows[urls[0]]["error"] is None and rows[urls[0]]["mean"] is not None
    assert all(rows[url]["error_kind"] == "unreadable" for url in urls[1:])
    assert "ok 1, failed 5 (unreadable 5)" in result.output


# --- remote folders: hostile index pages ----------------------------------------------------------------
# A folder URL (ending in "/") is listed from its index page. The page is read with a size bound and on a
# deadline; only links under the folder are followed, once each; a page that is not an index says so.

Page = tuple[str, bytes]  # (Content-Type, body) a path is answered with


def index_page(*links: str, content_type: str = "text/html; charset=utf-8") -> Page:
    return content_type, "".join(f'<a href="{link}">{link}</a><br>\n' for link in links).encode()


class PageServer:
    """An HTTP server on 127.0.0.1 answering each path in ``pages`` (or every path, with ``every``), 404 else."""

    def __init__(self, pages: dict[str, Page], every: Page | None = None) -> None:
        self.pages, self.every, self.asked = pages, every, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.asked.append(self.path)
                if self.path + "/" in server.pages:  # a folder asked for without its "/", as servers do
                    self.send_response(301)
                    self.send_header("Location", self.path + "/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                content_type, body = server.pages.get(self.path) or server.every or ("text/plain", b"")
                self.send_response(200 if self.path in server.pages or server.every else 404)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join()


@pytest.fixture
def serve_pages(monkeypatch) -> Iterator[Callable[..., PageServer]]:
    """``serve_pages(pages, every=None)`` -> a started PageServer; stopped after the test. One quick try per read."""
    monkeypatch.setattr(remote_retry, "DEFAULT_RETRY", RetryPolicy(attempts=1, timeout_s=0.5))
    servers: list[PageServer] = []

    def start(pages: dict[str, Page], every: Page | None = None) -> PageServer:
        servers.append(PageServer(pages, every))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def listed(folder: str, at_most: int = 50) -> list[tuple[str, str | None]]:
    """(key under the server, problem) of the first ``at_most`` items of ``folder``: a walk that loops stops here."""
    base = folder.split("/photos/")[0]
    return [(item.key.removeprefix(base), item.problem) for item in islice(iter_items([folder]), at_most)]


def test_links_back_to_the_folder_or_above_it_are_not_walked(serve_pages) -> None:
    server = serve_pages({})
    server.pages.update({
        "/photos/": index_page("./", "../", "../photos/", "/photos/", f"{server.base}/photos/", "%2e%2e/",
                               "sub/", "a.jpg"),
        "/photos/sub/": index_page("../", "../../photos/", "./", ".", "b.jpg"),
    })
    # "../photos/" used to be walked as /photos/../photos/, again and again: thousands of copies of a.jpg
    assert listed(f"{server.base}/photos/") == [("/photos/a.jpg", None), ("/photos/sub/b.jpg", None)]


def test_a_server_answering_every_path_with_the_same_page_is_walked_once(serve_pages) -> None:
    # a catch-all route (a web app's fallback page) or a symlink loop on the server: sub/sub/sub/... for ever
    server = serve_pages({}, every=index_page("sub/", "a.jpg"))
    assert listed(f"{server.base}/photos/") == [
        ("/photos/a.jpg", None),
        ("/photos/sub/", f"folder not walked: it lists what {server.base}/photos/ lists (a loop)"),
    ]
    assert server.asked == ["/photos/", "/photos/sub/"]


class EndlessTree(dict):
    """Pages for every folder below /photos/, without end: ``images`` images named by the folder's depth, and a
    folder "deeper/". Each page differs from those above it (as a page showing its own path would), so the loop
    check never sees a loop."""

    def __init__(self, images: int = 1) -> None:
        super().__init__()
        self.images = images

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path.startswith("/photos/") and path.endswith("/") and "//" not in path

    def get(self, path: str, default: Page | None = None) -> Page | None:
        if path not in self:
            return default
        depth = path.count("/") - 2
        return index_page(*(f"{depth}-{number}.jpg" for number in range(self.images)), "deeper/")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("max_depth", [3, None], ids=["lowered", "default"])
def test_a_tree_without_end_is_walked_down_to_the_depth_limit_and_no_further(
    serve_pages, monkeypatch, max_depth: int | None
) -> None:
    # its walk used to go down for ever, each folder's listing held on the way: memory without bound
    if max_depth is not None:
        monkeypatch.setattr(remote_folders, "MAX_FOLDER_DEPTH", max_depth)
    depth = remote_folders.MAX_FOLDER_DEPTH
    server = serve_pages(EndlessTree())
    folders = ["/photos/" + "deeper/" * level for level in range(depth + 2)]
    assert listed(f"{server.base}/photos/", at_most=depth + 100) == [
        *((f"{folder}{level}-0.jpg", None) for level, folder in enumerate(folders[:-1])),
        (folders[-1], f"folder not walked: it is nested more than {depth} folders deep below {server.base}/photos/ "
                      "(a loop the server hides?); give a manifest of its images' URLs instead"),
    ]
    assert server.asked == folders[:-1]  # the folder too deep is not even listed


@pytest.mark.timeout(20)
def test_a_sub_folder_whose_listing_would_hold_too_many_entries_with_those_above_it_is_one_error_row(
    serve_pages, monkeypatch
) -> None:
    # each folder on the way down holds its listing until its walk ends: nested pages of 100,000 entries
    # each, different at each level, used to add up without bound
    monkeypatch.setattr(remote_folders, "MAX_PENDING_ENTRIES", 10)
    server = serve_pages({
        "/photos/": index_page("a/", "b/", "x.jpg"),  # 3 entries held
        "/photos/a/": index_page("1.jpg", "2.jpg", "3.jpg", "4.jpg", "deep/"),  # 5 more: 8
        "/photos/a/deep/": index_page("5.jpg", "6.jpg", "7.jpg"),  # 3 more: 11, over 10
        "/photos/b/": index_page(*(f"b{number}.jpg" for number in range(7))),  # 7 more than the 3 above: 10
    })
    assert listed(f"{server.base}/photos/") == [
        *((f"/photos/a/{number}.jpg", None) for number in range(1, 5)),
        ("/photos/a/deep/", "folder not walked: its 3 entries, with the 8 of the folders above it still being "
                            "walked, are over the limit of 10 entries held at once; give a manifest of its images' "
                            "URLs instead"),
        *((f"/photos/b/b{number}.jpg", None) for number in range(7)),  # a's entries no longer held: walked
        ("/photos/x.jpg", None),
    ]


@pytest.mark.timeout(20)
def test_a_tree_without_end_of_wide_folders_ends_at_the_entries_limit(serve_pages, monkeypatch) -> None:
    monkeypatch.setattr(remote_folders, "MAX_PENDING_ENTRIES", 12)
    server = serve_pages(EndlessTree(images=4))  # 5 entries a folder: the third one down is over 12
    items = listed(f"{server.base}/photos/", at_most=200)
    assert items[-1] == ("/photos/deeper/deeper/", "folder not walked: its 5 entries, with the 10 of the folders "
                         "above it still being walked, are over the limit of 12 entries held at once; give a "
                         "manifest of its images' URLs instead")
    assert len(items) == 9 and server.asked == ["/photos/", "/photos/deeper/", "/photos/deeper/deeper/"]


def test_links_to_other_hosts_or_elsewhere_on_the_host_are_not_followed(serve_pages) -> None:
    elsewhere = serve_pages({"/photos/": index_page("c.jpg")}, every=index_page("d.jpg"))
    server = serve_pages({})
    server.pages["/photos/"] = index_page(
        f"{elsewhere.base}/photos/", f"{elsewhere.base}/photos/c.jpg", "//example.invalid/photos/e.jpg",
        "/other/", "/f.jpg", "mailto:x@example.invalid", "javascript:void(0)", "a.jpg",
    )
    assert listed(f"{server.base}/photos/") == [("/photos/a.jpg", None)]
    assert elsewhere.asked == [] and all(path.startswith("/photos") for path in server.asked)


def test_an_image_linked_from_above_its_folder_is_listed_once(serve_pages) -> None:
    server = serve_pages({
        "/photos/": index_page("sub/", "sub/b.jpg", "sub/b.jpg#top", "a.jpg"),
        "/photos/sub/": index_page("b.jpg"),
    })
    assert listed(f"{server.base}/photos/") == [("/photos/a.jpg", None), ("/photos/sub/b.jpg", None)]


def test_thousands_of_links_with_repeats_and_sort_orders_list_each_image_once_in_order(serve_pages) -> None:
    names = [f"IMG_{number:04d}.jpg" for number in range(3000)]
    # an Apache index: each file linked from its icon and its name, and column headers that sort the page
    links = ["?C=N;O=D", "?C=M;O=A"] + [link for name in reversed(names) for link in (name, name)]
    server = serve_pages({"/photos/": index_page(*links)})
    assert listed(f"{server.base}/photos/", at_most=10_000) == [(f"/photos/{name}", None) for name in names]


def test_html_escapes_in_a_link_are_undone(serve_pages) -> None:
    server = serve_pages({"/photos/": index_page("rock&amp;roll.jpg", "a&#32;b.jpg")})  # as Apache writes "&"
    assert listed(f"{server.base}/photos/") == [("/photos/a%20b.jpg", None), ("/photos/rock&roll.jpg", None)]


@pytest.mark.parametrize(
    "page, shown",
    [
        (("application/json", b'{"error": "token expired"}'), 'application/json: {"error": "token expired"}'),
        (("text/html", b'{"error":\n "token expired"}'), 'text/html: {"error": "token expired"}'),
        (("text/plain", b"Service unavailable \x1b[31m"), "text/plain: Service unavailable ?[31m"),
        (("image/jpeg", JPEG), "image/jpeg"),
    ],
    ids=["json-error", "json-error-called-html", "plain-text", "an-image"],
)
def test_a_page_that_is_not_an_html_index_is_refused_not_listed_as_empty(serve_pages, page: Page, shown: str) -> None:
    server = serve_pages({"/photos/": page})
    # it used to list nothing: "0 images", with no word on why
    with pytest.raises(SourceError) as refused:
        iter_items([f"{server.base}/photos/"])
    assert str(refused.value).startswith(
        f"{server.base}/photos/: cannot list the folder: not an HTML index page ({shown}"
    ), str(refused.value)
    assert "\n" not in str(refused.value) and "\x1b" not in str(refused.value)


INDEX_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"  # the body runs to the end


def endless_index(connection: socket.socket) -> None:
    connection.sendall(INDEX_HEAD)
    for _ in range(40):  # links without end, to the client: 4 MiB here, as a test must end
        connection.sendall(b'<a href="a.jpg">a.jpg</a>\n' * 4096)


def index_announced_at_5_gib(connection: socket.socket) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n" % (5 << 30))
    connection.sendall(b'<a href="a.jpg">a.jpg</a>\n')


def index_trickling_in(connection: socket.socket) -> None:
    connection.sendall(INDEX_HEAD)
    for _ in range(200):  # a byte every 50 ms: each within the timeout, a MiB in 14 hours
        connection.sendall(b"<")
        time.sleep(0.05)


def index_streaming_steadily(connection: socket.socket) -> None:
    connection.sendall(INDEX_HEAD)
    for _ in range(160):  # 20 MiB a second, each MiB well within the timeout, for as long as it is read
        connection.sendall(b"<br>" * 131072)
        time.sleep(0.025)


def folder_of(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/"


@pytest.mark.parametrize("answer, size", [(endless_index, ""), (index_announced_at_5_gib, " (5 GiB)")],
                         ids=["endless", "announced"])
def test_an_index_page_over_the_limit_is_refused_in_one_line(serve, monkeypatch, answer: Answer, size: str) -> None:
    # the page used to be read whole into memory, however large: multi-GB pages, or endless ones, until the timeout
    monkeypatch.setattr(remote_retry, "DEFAULT_RETRY", RetryPolicy(attempts=1, timeout_s=0.5))
    monkeypatch.setattr(remote_index, "MAX_INDEX_PAGE_BYTES", MiB)
    folder = folder_of(serve(answer))
    started = time.monotonic()
    with pytest.raises(SourceError) as refused:
        iter_items([folder])
    assert time.monotonic() - started < 5
    assert str(refused.value) == (f"{folder}: cannot list the folder: its index page{size} is over the limit "
                                  "of 1 MiB; give a manifest of its images' URLs instead")


def test_a_sub_folder_whose_index_page_is_over_the_limit_is_one_error_row(serve_pages, monkeypatch) -> None:
    monkeypatch.setattr(remote_index, "MAX_INDEX_PAGE_BYTES", 64 << 10)
    big = index_page(*(f"{number}.jpg" for number in range(4000)))
    server = serve_pages({"/photos/": index_page("big/", "a.jpg"), "/photos/big/": big})
    assert listed(f"{server.base}/photos/") == [
        ("/photos/a.jpg", None),
        ("/photos/big/", f"folder could not be listed: its index page ({describe_size(len(big[1]))}) is over the "
                         "limit of 64 KiB; give a manifest of its images' URLs instead"),
    ]


@pytest.mark.parametrize(
    "answer, reason",
    [
        (index_trickling_in, "less than 1 MiB arrived in 0.2 s"),
        (index_streaming_steadily, "the index page did not arrive within 0.8 s"),
    ],
    ids=["trickling", "streaming-for-ever"],
)
def test_an_index_page_that_never_ends_times_out(serve, monkeypatch, answer: Answer, reason: str) -> None:
    # each MiB must come within the timeout, and the whole page within four: a steady stream ends too
    monkeypatch.setattr(remote_retry, "DEFAULT_RETRY", RetryPolicy(attempts=1, timeout_s=0.2))
    folder = folder_of(serve(answer))
    started = time.monotonic()
    with pytest.raises(SourceError) as refused:
        iter_items([folder])
    assert time.monotonic() - started < 5
    assert str(refused.value) == f"{folder}: cannot list the folder: timed out ({reason})"
