"""Hostile or broken HTTP servers behind URL sources: each bad URL is one error row with a clear reason, never a hang.

The servers here are raw sockets on 127.0.0.1 that answer exactly the bytes a test scripts: a chunked body
whose chunk size is not a number, a ``100 Continue`` and then silence, a body trickling a byte at a time,
a status line that is not HTTP, a redirect without a Location. Every wait of a read is bounded by
``--remote-timeout`` (the headers, and each MiB of the body), and a URL's password is never printed.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.io import remote_retry
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
