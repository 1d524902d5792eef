"""Reading remote objects: bounded, timed out, tried again on passing faults, failing in one short line.

- At most the per-image cap is read (:func:`~eat_curate.io.bounded_read.read_at_most`);
  a size the store announces up front is checked before anything is read.
- Over HTTP the object is streamed: fsspec's random-access file would take a
  server's whole answer at once when the server ignores range requests.
  Each wait has a deadline of its own (:func:`http_answer`, :func:`read_paced`):
  the status line and headers, then every MiB of the body, must each arrive
  within the timeout. A server trickling a byte a second, or one that stalls
  the client for good (a 1xx answer and nothing after it; aiohttp never wakes
  up a read after a broken chunk) is a timeout, never a hang.
- Only a 2xx answer is content; a server's malformed answer is said to be one,
  not reported as the ``HTTP 400`` aiohttp labels it with.
- Timeouts and 5xx answers are tried again (:mod:`eat_curate.io.remote_retry`);
  after the last try the reason says so: ``HTTP 503 (3 tries)``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import IO, Any, TypeVar
from urllib.parse import urlsplit

from fsspec.asyn import AsyncFileSystem, sync
from fsspec.spec import AbstractFileSystem

from eat_curate.io import remote_retry
from eat_curate.io.bounded_read import (
    DEFAULT_MAX_BYTES,
    STREAM_CHUNK,
    ReadRefused,
    over_limit,
    read_at_most,
    stream_over_limit,
)
from eat_curate.io.remote import RemoteError, check_protocol, filesystem, info_mtime, protocol_of
from eat_curate.io.remote_retry import GaveUp, RetryPolicy, http_status, with_retries

T = TypeVar("T")

# How many timeouts one whole call of a filesystem (an info, a listing) may take: each wait within it has
# the timeout, and a call is a few waits (connecting, the answer's head, its body).
CALL_DEADLINE_FACTOR = 4


class SlowAnswer(TimeoutError):
    """A timeout while an answer was arriving, too slowly; ``str()`` says how slowly."""


def read_url(url: str, max_bytes: int = DEFAULT_MAX_BYTES, retry: RetryPolicy | None = None) -> bytes:
    """The content at ``url``; RemoteError with a short reason (``HTTP 404 not found``, ``HTTP 503 (3 tries)``,
    ``timed out (no answer within 30 s) (3 tries)``), :class:`ReadRefused` when it is over ``max_bytes``."""
    retry = retry or remote_retry.DEFAULT_RETRY
    check_protocol(url)

    def attempt() -> bytes:
        fs, path = filesystem(url, retry.timeout_s)
        if _is_http(url) and is_fsspec_http(fs):
            try:
                return sync(fs.loop, _get_http, fs, path, max_bytes, retry.timeout_s)
            except Exception as error:  # fsspec turns any TimeoutError into its own: keep the reason
                if isinstance(error.__cause__, SlowAnswer):
                    raise error.__cause__ from None
                raise
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
        info = with_retries(lambda: fs.info(path, **deadline(fs, retry.timeout_s)), retry)
    except Exception as error:  # as in read_url: any type; only "unreachable" matters here
        cause = _root_cause(error.error if isinstance(error, GaveUp) else error)
        if is_unreachable(cause):
            raise RemoteError(f"cannot reach {host_of(url)}: {describe_failure(cause, retry.timeout_s)}") from None
        return None, None
    size = info.get("size")
    return (int(size) if isinstance(size, (int, float)) else None), info_mtime(info)


def describe_failure(error: BaseException, timeout_s: float | None = None) -> str:
    """One line on why a remote operation failed: ``HTTP 503``, ``timed out (no answer within 30 s)``, ..."""
    if isinstance(error, RemoteError):  # already says why in a line of its own
        return str(error)
    if isinstance(error, SlowAnswer):
        return f"timed out ({error})"
    if isinstance(error, TimeoutError) or type(error).__name__ == "FSTimeoutError":
        within = f" within {timeout_s:g} s" if timeout_s is not None else ""
        return f"timed out (no answer{within})"
    if type(error).__name__ == "TooManyRedirects":
        return "too many redirects"
    malformed = _malformed_answer(error)
    if malformed is not None:  # aiohttp labels these 400, as if the server had answered so: it did not
        return malformed
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
        if seen is None or isinstance(seen, SlowAnswer):  # a slow answer is an answer: the host was reached
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
    """``host:port`` of ``url``, without any ``user:password@``: this is printed."""
    netloc = urlsplit(url).netloc
    return netloc.rpartition("@")[2] or url


def deadline(fs: AbstractFileSystem, seconds: float) -> dict:
    """Keyword arguments bounding one call of ``fs``'s (info, ls) to a few times ``seconds``.

    fsspec's sync calls wait for ever by default; aiohttp's own timeouts do not end every stall
    (a 1xx answer with nothing after it). Only async filesystems take the bound.
    """
    return {"timeout": CALL_DEADLINE_FACTOR * seconds} if isinstance(fs, AsyncFileSystem) else {}


def is_fsspec_http(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` is fsspec's HTTP file system, whose aiohttp session :func:`http_answer` uses."""
    return isinstance(fs, AsyncFileSystem) and hasattr(fs, "set_session") and hasattr(fs, "encode_url")


def _is_http(url: str) -> bool:
    return protocol_of(url) in ("http", "https")


def _malformed_answer(error: BaseException) -> str | None:
    """``malformed HTTP answer (why)`` or ``answer cut short (why)`` when ``error`` (or a cause) is aiohttp's
    failure to parse a response, else None."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return None
        kinds = [kind.__name__ for kind in type(seen).__mro__]
        if "HttpProcessingError" in kinds:
            lines = str(getattr(seen, "message", "") or "").strip().splitlines()
            why = lines[0].strip().rstrip(":") if lines else type(seen).__name__
            # fewer bytes than announced: the connection ended early (often a reset), the answer was fine so far
            short = "ContentLengthError" in kinds or "TransferEncodingError" in kinds
            return f"{'answer cut short' if short else 'malformed HTTP answer'} ({why})"
        seen = seen.__cause__ or seen.__context__
    return None


async def within(awaitable: Awaitable[T], seconds: float, reason: str | None = None) -> T:
    """``awaitable`` cancelled after ``seconds``: builtin TimeoutError (SlowAnswer with ``reason``)."""
    try:
        return await asyncio.wait_for(awaitable, max(seconds, 0.001))
    except asyncio.TimeoutError:  # not builtin TimeoutError before Python 3.11
        raise (SlowAnswer(reason) if reason else TimeoutError()) from None


async def _get_http(fs: Any, url: str, max_bytes: int, timeout_s: float) -> bytes:
    """One streamed GET: at most ``max_bytes + 1`` bytes, every wait bounded (the module's docstring)."""
    async with http_answer(fs, url, timeout_s) as response:
        return await read_paced(response.content, max_bytes, timeout_s)


@asynccontextmanager
async def http_answer(fs: Any, url: str, timeout_s: float) -> AsyncIterator[Any]:
    """The 2xx answer to a GET of ``url`` through ``fs``'s session (its head within ``timeout_s``), its body
    unread; FileNotFoundError for a 404, the HTTP error for others. Released after, or closed if left unread."""
    session = await fs.set_session()
    response = await within(session.get(fs.encode_url(url), **fs.kwargs), timeout_s)
    try:
        if response.status == 404:
            raise FileNotFoundError(url)
        response.raise_for_status()  # 4xx, 5xx
        if not 200 <= response.status < 300:  # a 304, a redirect without Location: no content in the body
            raise RemoteError(f"HTTP {response.status}")
        yield response
    finally:
        if response.content.at_eof():
            response.release()  # the connection can serve the next request
        else:
            response.close()  # a body left unread: the connection is not reusable


async def read_paced(content: Any, max_bytes: int, timeout_s: float) -> bytes:
    """The body, no more than ``max_bytes + 1`` bytes; each MiB of it must arrive within ``timeout_s``."""
    loop = asyncio.get_running_loop()
    chunks: list[bytes] = []
    total = 0
    piece_started, piece_bytes = loop.time(), 0
    too_slow = f"less than {STREAM_CHUNK >> 20} MiB arrived in {timeout_s:g} s"
    while total <= max_bytes:
        left = piece_started + timeout_s - loop.time()
        if left <= 0:
            raise SlowAnswer(too_slow)
        chunk = await within(content.read(min(STREAM_CHUNK, max_bytes + 1 - total)), left, too_slow)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        piece_bytes += len(chunk)
        if piece_bytes >= STREAM_CHUNK:  # a whole MiB in time: the next one gets a fresh deadline
            piece_started, piece_bytes = loop.time(), piece_bytes - STREAM_CHUNK
    raise stream_over_limit(max_bytes)


# fsspec's HTTP open first probes the URL (HEAD, then GET) unless told a size, and reports any failure of
# that probe, a 503 included, as "not found". A streamed file ignores the size: any value skips the probe.
_SKIP_HTTP_PROBE = {"block_size": 0, "size": 1}  # block_size 0: one streamed GET


@contextmanager
def _stream(fs: AbstractFileSystem, path: str, url: str) -> Iterator[IO[bytes]]:
    options = _SKIP_HTTP_PROBE if protocol_of(url) in ("http", "https") else {}
    with fs.open(path, "rb", **options) as handle:
        yield handle
