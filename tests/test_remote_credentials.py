"""A server that asks for a password: given in ~/.netrc it reaches the server and stays out of the results.

A password in the URL works too, but every image's path keeps it (and every export, report and shared
result file made from them), so `score` warns and says where it belongs. The server here answers only
requests that carry HTTP basic credentials alice / s3cret, like a photo share behind a login.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from eat_curate.cli import cli
from eat_curate.io import remote_retry
from hostile_files import encode, photo

pytest.importorskip("aiohttp")  # fsspec's HTTP backend: the eat-curate[http] extra

USER, PASSWORD = "alice", "s3cret"
JPEG = encode(photo(seed=5), "JPEG")
INDEX = b'<html><body><a href="../">../</a><a href="a.jpg">a.jpg</a></body></html>'


class LoginHandler(BaseHTTPRequestHandler):
    """A folder /photos/ with one photo, for alice only."""

    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="photos"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, kind = {"/photos/": (INDEX, "text/html"), "/photos/a.jpg": (JPEG, "image/jpeg")}.get(
            self.path, (b"", "text/plain"))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def photo_share(monkeypatch) -> Iterator[str]:
    """The server's folder URL, without credentials; $NETRC points nowhere unless a test writes one."""
    monkeypatch.setattr(remote_retry, "DEFAULT_RETRY", remote_retry.DEFAULT_RETRY)  # score replaces it: undo after
    monkeypatch.setenv("NETRC", "/nonexistent/netrc")  # never the tester's own ~/.netrc
    server = ThreadingHTTPServer(("127.0.0.1", 0), LoginHandler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/photos/"
    finally:
        server.shutdown()
        server.server_close()


def score(url: str, out: Path, micro_model_path: Path):
    return CliRunner().invoke(cli, ["score", url, "--out", str(out), "--model", str(micro_model_path),
                                    "--remote-tries", "1", "--remote-timeout", "2"])


def test_credentials_in_netrc_reach_the_server_and_stay_out_of_the_results(
    photo_share: str, tmp_path: Path, micro_model_path: Path, monkeypatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))

    result = score(photo_share, tmp_path / "scores.parquet", micro_model_path)

    assert result.exit_code == 0, result.output
    (row,) = pq.read_table(tmp_path / "scores.parquet").to_pylist()
    assert row["path"] == f"{photo_share}a.jpg" and row["error"] is None and row["mean"] is not None
    assert "password" not in result.output


def test_without_credentials_the_folder_is_refused_saying_the_server_wants_a_login(
    photo_share: str, tmp_path: Path, micro_model_path: Path
) -> None:
    result = score(photo_share, tmp_path / "scores.parquet", micro_model_path)

    assert result.exit_code == 2
    assert "401" in result.output, result.output


def test_a_password_in_the_url_works_and_is_warned_about_without_showing_it(
    photo_share: str, tmp_path: Path, micro_model_path: Path
) -> None:
    with_password = photo_share.replace("http://", f"http://{USER}:{PASSWORD}@")

    result = score(with_password, tmp_path / "scores.parquet", micro_model_path)

    assert result.exit_code == 0, result.output
    (row,) = pq.read_table(tmp_path / "scores.parquet").to_pylist()
    assert row["error"] is None
    assert f"warning: the password of http://{USER}:***@127.0.0.1:" in result.output
    assert f"put it in ~/.netrc instead (machine 127.0.0.1 login {USER} password ...)" in result.output
    assert PASSWORD not in result.output
