"""Reading remote objects: bounded, timed out, tried again on passing faults, failing in one short line.

- At most the per-image cap is read (:func:`~eat_curate.io.bounded_read.read_at_most`);
  a size the store announces up front is checked before anything is read.
- Over HTTP the object is streamed: fsspec's random-access file would take a
  server's whole answer at once when the server ignores range requests.
- Timeouts and 5xx answers are tried again (:mod:`eat_curate.io.remote_retry`);
  after the last try the reason says so: ``HTTP 503 (3 tries)``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO
from urllib.parse import urlsplit

from fsspec.spec import AbstractFileSystem

from eat_curate.io import remote_retry
from eat_curate.io.bounded_read import DEFAULT_MAX_BYTES, ReadRefused, over_limit, read_at_most
from eat_curate.io.remote import RemoteError, check_protocol, filesystem, info_mtime, protocol_of
from eat_curate.io.remote_retry import GaveUp, RetryPolicy, http_status, with_retries


def read_url(url: str, max_bytes: int = DEFAULT_MAX_BYTES, retry: RetryPolicy | None = None) -> bytes:
    """The content at ``url``; RemoteError with a short reason (``HTTP 404 not found``, ``HTTP 503 (3 tries)``,
    ``timed out (no answer within 30 s) (3 tries)``), :class:`ReadRefused` when it is over ``max_bytes``."""
    retry = retry or remote_retry.DEFAULT_RETRY
    check_protocol(url)

    def attempt() -> bytes:
        fs, path = filesystem(url, retry.timeout_s)
        with _stream(fs, path, url) as handle:
            size = getattr(handle, "size", None)  # known when the store announces it (s3, gs), not when streamed
            size = size if isinstance(size, int) else None
            if size is not None and size > max_bytes:
                raise over_limit(size, max_bytes)
            return read_at_most(handle, max_bytes, expected=size)

    try:
        return with_retries(attempt, retry)
    except (ReadRefused, RemoteError):
        raise
    except GaveUp as gave_up:
        tries = f"{gave_up.attempts} tries" if gave_up.attempts > 1 else "1 try"
        raise RemoteError(f"{describe_failure(gave_up.error, retry.timeout_s)} ({tries})") from None
    except FileNotFoundError:
        raise RemoteError("HTTP 404 not found" if protocol_of(url) in ("http", "https") else "not found") from None
    except PermissionError:
        raise RemoteError("permission denied") from None
    except Exception as error:  # network stacks raise many types; all of them mean "could not read"
        raise RemoteError(describe_failure(error, retry.timeout_s)) from None


def url_facts(url: str, retry: RetryPolicy | None = None) -> tuple[int | None, float | None]:
    """(size, mtime) from the server's answer (a HEAD for http), None where it gives none.

    Raises RemoteError when the host cannot be reached at all: a URL given as the whole
    source then fails in one line. Any other failure (404, a server without HEAD) gives
    (None, None); reading the URL later says what is wrong, on its own row.
    """
    retry = retry or remote_retry.DEFAULT_RETRY
    fs, path = filesystem(url, retry.timeout_s)
    try:
        info = with_retries(lambda: fs.info(path), retry)
    except Exception as error:  # as in read_url: any type; only "unreachable" matters here
        cause = _root_cause(error.error if isinstance(error, GaveUp) else error)
        if is_unreachable(cause):
            raise RemoteError(f"cannot reach {host_of(url)}: {describe_failure(cause, retry.timeout_s)}") from None
        return None, None
    size = info.get("size")
    return (int(size) if isinstance(size, (int, float)) else None), info_mtime(info)


def describe_failure(error: BaseException, timeout_s: float | None = None) -> str:
    """One line on why a remote operation failed: ``HTTP 503``, ``timed out (no answer within 30 s)``, ..."""
    if isinstance(error, TimeoutError) or type(error).__name__ == "FSTimeoutError":
        within = f" within {timeout_s:g} s" if timeout_s is not None else ""
        return f"timed out (no answer{within})"
    status = http_status(error)
    if status is not None:
        return f"HTTP {status}"
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` is a failure to reach the host at all (no such name, refused, no answer),
    rather than an answer from it (404, 403, 503). Causes count: fsspec's HTTP ``info`` reports
    any failure as FileNotFoundError raised from the real one."""
    seen: BaseException | None = error
    for _ in range(8):  # a cause chain is short; a cycle must not loop
        if seen is None:
            return False
        if isinstance(seen, (ConnectionError, socket.gaierror, TimeoutError)):
            return True
        if any(kind.__name__ == "ClientConnectorError" for kind in type(seen).__mro__):  # aiohttp: optional
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _root_cause(error: BaseException) -> BaseException:
    for _ in range(8):
        if error.__cause__ is None:
            break
        error = error.__cause__
    return error


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


# fsspec's HTTP open first probes the URL (HEAD, then GET) unless told a size, and reports any failure of
# that probe, a 503 included, as "not found". A streamed file ignores the size: any value skips the probe.
_SKIP_HTTP_PROBE = {"block_size": 0, "size": 1}  # block_size 0: one streamed GET


@contextmanager
def _stream(fs: AbstractFileSystem, path: str, url: str) -> Iterator[IO[bytes]]:
    options = _SKIP_HTTP_PROBE if protocol_of(url) in ("http", "https") else {}
    with fs.open(path, "rb", **options) as handle:
        yield handle
