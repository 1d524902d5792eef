"""Remote reads against real HTTP servers on 127.0.0.1: passing faults are tried again, the rest fail in one line.

A 503 is tried again after a short wait, and so is a timeout; a 404 or a host
that refuses connections is not. After the last try the input is an error row
of kind ``unreadable`` whose reason names the cause and the tries. A URL, or a
remote folder, that is the whole source fails the run in one line instead.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.io import remote_retry
from eat_curate.io.remote_retry import RetryPolicy, is_transient
from eat_curate.io.sources import SourceError, SourceItem, SourceReadError, iter_items, read_bytes
from hostile_files import encode, photo
from local_ray import ray_local  # noqa: F401 (a fixture: the Ray engine's tests start it)

pytest.importorskip("aiohttp")  # fsspec's HTTP backend: the eat-curate[http] extra

QUICK = RetryPolicy(attempts=3, first_wait_s=0.01, max_wait_s=0.05, timeout_s=5.0)
JPEG = encode(photo(seed=21), "JPEG")


@dataclass
class FlakyServer:
    """Answers GET with 503 ``failures`` times, then with the file; counts the GETs."""

    url: str
    gets: int = 0


@pytest.fixture
def flaky() -> Iterator:
    """``start(failures, body=JPEG, status=503)`` -> a FlakyServer on 127.0.0.1; all shut down after the test."""
    servers = []

    def start(failures: int, body: bytes = JPEG, status: int = 503) -> FlakyServer:
        state = FlakyServer(url="")
        left = [failures]

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                state.gets += 1
                if left[0] > 0:
                    left[0] -= 1
                    self.send_error(status)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        state.url = f"http://127.0.0.1:{server.server_address[1]}/photos/beach.jpg"
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A URL on a server that accepts connections (the kernel completes them) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/photos/never.jpg"


@pytest.fixture
def refused_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def url_item(url: str) -> SourceItem:
    return SourceItem(key=url, image_id="x", album=None)


def refusal_of(url: str, **options) -> tuple[str, str]:
    with pytest.raises(SourceReadError) as refused:
        read_bytes(url_item(url), **options)
    return refused.value.kind, refused.value.reason


# --- one read -----------------------------------------------------------------------------------------


def test_a_503_twice_then_the_file_reads_fine_on_the_third_try(flaky) -> None:
    server = flaky(failures=2)
    assert read_bytes(url_item(server.url), retry=QUICK) == JPEG
    assert server.gets == 3


def test_a_server_that_keeps_answering_503_is_unreadable_after_the_last_try(flaky) -> None:
    server = flaky(failures=99)
    assert refusal_of(server.url, retry=QUICK) == ("unreadable", "HTTP 503 (3 tries)")
    assert server.gets == 3


def test_a_404_is_not_tried_again(flaky) -> None:
    server = flaky(failures=99, status=404)
    assert refusal_of(server.url, retry=QUICK) == ("unreadable", "HTTP 404 not found")
    assert server.gets == 1


def test_a_server_that_never_answers_times_out_on_every_try_within_a_bounded_time(silent_url: str) -> None:
    policy = RetryPolicy(attempts=2, first_wait_s=0.05, timeout_s=0.5)
    started = time.monotonic()
    assert refusal_of(silent_url, retry=policy) == ("unreadable", "timed out (no answer within 0.5 s) (2 tries)")
    assert time.monotonic() - started < 5


def test_a_refused_connection_fails_at_once(refused_port: int) -> None:
    started = time.monotonic()
    kind, reason = refusal_of(f"http://127.0.0.1:{refused_port}/a.jpg", retry=RetryPolicy(first_wait_s=10))
    assert kind == "unreadable" and reason.startswith("ClientConnectorError: Cannot connect to host 127.0.0.1")
    assert time.monotonic() - started < 5  # not tried again: no 10 s wait


def test_a_remote_object_over_the_cap_is_refused_after_reading_one_byte_past_it(flaky) -> None:
    server = flaky(failures=0, body=b"\x00" * 4096)
    refused = refusal_of(server.url, max_bytes=1000, retry=QUICK)
    assert refused == ("too-large", "over the limit of 1000 bytes per image")


def test_an_unsupported_protocol_in_an_item_is_an_unreadable_row() -> None:
    kind, reason = refusal_of("ftp://x/y.jpg")
    assert kind == "unreadable" and reason.startswith("unsupported URL protocol ftp://")


# --- the policy -----------------------------------------------------------------------------------------


def test_waits_double_up_to_the_cap_and_are_jittered_down_to_half() -> None:
    policy = RetryPolicy(attempts=6, first_wait_s=0.5, max_wait_s=2.0)
    for attempt, base in ((2, 0.5), (3, 1.0), (4, 2.0), (5, 2.0)):
        waits = [policy.wait_before(attempt) for _ in range(50)]
        assert all(base / 2 <= wait <= base for wait in waits)


def test_only_timeouts_5xx_and_dropped_connections_are_transient() -> None:
    class Answer(Exception):
        def __init__(self, status: int) -> None:
            self.status = status

    assert is_transient(TimeoutError()) and is_transient(ConnectionResetError())
    assert is_transient(Answer(503)) and is_transient(Answer(500))
    assert not is_transient(Answer(404)) and not is_transient(Answer(403))
    assert not is_transient(ConnectionRefusedError()) and not is_transient(FileNotFoundError())


# --- whole sources and manifest entries, through the command line ---------------------------------------


def score(*args: str, model: Path) -> object:
    return CliRunner().invoke(cli, ["score", *args, "--model", str(model)], catch_exceptions=False)


@pytest.mark.parametrize(
    "source, message",
    [
        ("ftp://x/y.jpg", "Error: ftp://x/y.jpg: unsupported URL protocol ftp://"),
        ("http://127.0.0.1:{port}/dir/", "Error: http://127.0.0.1:{port}/dir/: cannot reach 127.0.0.1:{port}: "),
        ("http://127.0.0.1:{port}/a.jpg", "Error: http://127.0.0.1:{port}/a.jpg: cannot reach 127.0.0.1:{port}: "),
    ],
    ids=["unsupported-protocol", "unreachable-folder", "unreachable-file"],
)
def test_a_url_that_is_the_whole_source_fails_in_one_line(
    source: str, message: str, refused_port: int, tmp_path: Path, micro_model_path: Path
) -> None:
    source, message = source.format(port=refused_port), message.format(port=refused_port)
    result = score(source, "--out", str(tmp_path / "out.parquet"), model=micro_model_path)
    assert result.exit_code != 0  # which code a refusal gets is the command line's (eat_curate.exit_codes)
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "out.parquet").exists()


def test_unreadable_manifest_entries_are_error_rows_with_their_cause(
    flaky, silent_url: str, refused_port: int, tmp_path: Path, micro_model_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(remote_retry, "DEFAULT_RETRY", remote_retry.DEFAULT_RETRY)  # score replaces it: undo after
    server = flaky(failures=1)
    urls = [server.url, silent_url, "ftp://x/y.jpg", f"http://127.0.0.1:{refused_port}/gone.jpg"]
    manifest = tmp_path / "urls.parquet"
    pq.write_table(pa.table({"uri": urls}), manifest)
    out = tmp_path / "scores.parquet"

    started = time.monotonic()
    result = score(str(manifest), "--out", str(out), "--remote-tries", "2", "--remote-timeout", "0.5",
                   model=micro_model_path)

    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 60
    rows = {row["path"]: (row["error_kind"], row["error"] or "") for row in pq.read_table(out).to_pylist()}
    assert rows[server.url] == (None, "")  # a 503, then the file
    assert rows[silent_url] == ("unreadable", "timed out (no answer within 0.5 s) (2 tries)")
    assert rows["ftp://x/y.jpg"][1].startswith("unsupported URL protocol ftp://")
    assert rows[urls[3]][1].startswith("ClientConnectorError: Cannot connect to host")
    assert "ok 1, failed 3 (unreadable 3)" in result.output


def test_a_remote_folder_that_cannot_be_listed_fails_before_the_run(refused_port: int) -> None:
    with pytest.raises(SourceError, match=f"cannot reach 127.0.0.1:{refused_port}"):
        iter_items([f"http://127.0.0.1:{refused_port}/photos/"])


# The Ray engine reads in its workers' processes: the options must travel there (fractional CPUs: 2 cores).
ENGINES = {"local": [], "ray": ["--engine", "ray", "--cpus-per-actor", "0.5", "--decode-cpus", "0.25"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_tries_and_timeout_are_options_of_score(
    engine: str, flaky, silent_url: str, tmp_path: Path, micro_model_path: Path, monkeypatch, request
) -> None:
    """--remote-tries 1 gives up on the first 503; --remote-timeout bounds the wait for a silent host."""
    if engine == "ray":
        request.getfixturevalue("ray_local")
    monkeypatch.setattr(remote_retry, "DEFAULT_RETRY", remote_retry.DEFAULT_RETRY)  # score replaces it: undo after
    server = flaky(failures=1)
    manifest = tmp_path / "urls.parquet"
    pq.write_table(pa.table({"uri": [server.url, silent_url]}), manifest)
    out = tmp_path / "scores.parquet"

    result = score(str(manifest), "--out", str(out), "--remote-tries", "1", "--remote-timeout", "0.3",
                   *ENGINES[engine], model=micro_model_path)

    assert result.exit_code == 0, result.output
    rows = {row["path"]: row["error"] or "" for row in pq.read_table(out).to_pylist()}
    assert rows[server.url].startswith("HTTP 503") and rows[server.url].endswith("(1 try)")
    assert rows[silent_url] == "timed out (no answer within 0.3 s) (1 try)"
