"""Listing an HTTP(S) folder from its index page (Apache, nginx, ``python -m http.server``), bounded.

fsspec's HTTP ``ls`` reads the whole page into memory and keeps any link under
the folder's URL as written. A hostile or broken server could send an endless
page, links that walk back up the tree (``../photos/``), or a JSON error with
status 200. Here:

- the page is read as an image is (:func:`~eat_curate.io.remote_read.read_paced`):
  at most :data:`MAX_INDEX_PAGE_BYTES`, every MiB within the timeout, and the
  whole of it within a few timeouts; a size announced over the limit is refused
  before the body is read;
- only HTML (or a page with no declared type) is an index. Another type, or a
  "page" without a single tag (a JSON error called text/html), is refused with
  its first words, rather than listed as an empty folder;
- links are resolved as a browser resolves them (``./``, ``../``, ``/x/``,
  ``//host/``, HTML escapes such as ``&amp;``); only those under the folder, on
  its scheme, host and port, are entries, each once. A link with a query (an
  index's sort-order links) or to the folder itself is not an entry.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from fsspec.asyn import sync

from eat_curate.io.bounded_read import MiB, ReadRefused, describe_size
from eat_curate.io.remote import RemoteError, as_sent
from eat_curate.io.remote_read import CALL_DEADLINE_FACTOR, SlowAnswer, http_answer, read_paced, within

# 32 MiB per index page. Real listings stay far below it: an entry of an Apache table index takes about 250
# bytes, so 32 MiB is some 130,000 photos in one folder (nginx and Python's own server write less per entry;
# a camera starts a new folder every 9,999). A page beyond it is broken or hostile. Listed, a page takes about
# ten times its size in memory (a full page of the shortest links: 1.2 million entries, some 300 MiB).
MAX_INDEX_PAGE_BYTES = 32 * MiB
EXCERPT_CHARS = 80  # of a page that is not an index, shown in the error so its own message can be read

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# An <a> tag's href, quoted or not. "[^<>]" stops a failed match at the next tag, so the scan stays linear.
_HREF = re.compile(r"""<a\s(?:[^<>]*?\s)?href\s*=\s*(?:"([^"<>]*)"|'([^'<>]*)'|([^\s"'<>]+))""", re.IGNORECASE)
# A URL written out as text, not in a tag: fsspec lists these too (its ``simple_links``), so some pages rely on it.
_BARE_URL = re.compile(r"""https?://[-a-zA-Z0-9@:%_+.~#?&/=]+""")
# A link that is a path below the page's folder as it stands ("IMG_0001.jpg", "2023/"): most links of an
# index, taken as they are (resolving each like any URL would cost a page of 100,000 links seconds).
_PLAIN_RELATIVE = re.compile(r"[\w~!$&'()*+,;=@-][\w~!$&'()*+,;=@./-]*", re.ASCII)


def list_index(fs: Any, folder: str, timeout_s: float) -> list[dict]:
    """The entries of the folder ``folder`` (a URL without its final "/") as fsspec's ``ls`` gives them: full
    URLs as ``name``, ``type`` "directory" for a link ending in "/"; RemoteError when the page cannot be one."""
    try:
        page = sync(fs.loop, _fetch_page, fs, folder + "/", timeout_s)
    except Exception as error:  # fsspec turns any TimeoutError into its own: keep the reason
        if isinstance(error.__cause__, SlowAnswer):
            raise error.__cause__ from None
        raise
    return [
        {"name": f"{folder}/{relative}", "size": None, "type": "directory" if relative.endswith("/") else "file"}
        for relative in entries_under(folder, page_links(page))
    ]


async def _fetch_page(fs: Any, url: str, timeout_s: float) -> str:
    """The page, every wait within ``timeout_s`` and the whole of it within a few (:data:`CALL_DEADLINE_FACTOR`)."""
    whole = CALL_DEADLINE_FACTOR * timeout_s
    # a task, not wait_for: wait_for would take the reader's own timeouts for its own and relabel them
    reading = asyncio.ensure_future(_read_page(fs, url, timeout_s))
    try:
        done, _ = await asyncio.wait({reading}, timeout=whole)
    finally:
        reading.cancel()  # nothing once it is done
    if not done:  # a steady stream: every MiB in time, and no end to them
        await asyncio.wait({reading})  # its connection closed before the error goes up
        raise SlowAnswer(f"the index page did not arrive within {whole:g} s")
    return reading.result()


async def _read_page(fs: Any, url: str, timeout_s: float) -> str:
    async with http_answer(fs, url, timeout_s) as response:
        declared = response.headers.get("Content-Type")
        media_type = declared.partition(";")[0].strip().lower() if declared else None
        if media_type is not None and media_type not in _HTML_TYPES:  # read no more than a glimpse of it
            glimpse = await within(response.content.read(4 * EXCERPT_CHARS), timeout_s)
            raise _not_an_index(media_type, _decoded(glimpse, response.charset))
        announced = response.content_length
        if announced is not None and announced > MAX_INDEX_PAGE_BYTES:
            raise _too_large(announced)
        try:
            body = await read_paced(response.content, MAX_INDEX_PAGE_BYTES, timeout_s)
        except ReadRefused:  # one byte over the limit: the rest is never read
            raise _too_large(None) from None
        text = _decoded(body, response.charset)
    if "<" not in text:  # not a single tag: a JSON or plain-text answer that calls itself HTML
        raise _not_an_index(media_type or "no type", text)
    return text


def page_links(page: str) -> Iterator[str]:
    """Every link on ``page``: the targets of its <a> tags, HTML escapes undone, and URLs written out as text."""
    for match in _HREF.finditer(page):
        yield html.unescape(next(group for group in match.groups() if group is not None))
    yield from _BARE_URL.findall(page)


def entries_under(folder: str, links: Iterable[str]) -> list[str]:
    """The paths under ``folder`` that ``links`` name, relative to it ("a.jpg", "2023/"), each once, sorted;
    without those a folder also linked holds (that folder's own page lists them: listing them here too
    would list them twice)."""
    base = urlsplit(folder)
    relatives = {relative for link in links if (relative := _relative_path(folder, base, link))}
    folders = {relative for relative in relatives if relative.endswith("/")}
    if not folders:
        return sorted(relatives)
    return sorted(relative for relative in relatives if not any(
        holder in folders for holder in _holding_folders(relative)))


def _relative_path(folder: str, base: SplitResult, link: str) -> str | None:
    """``link``'s path relative to ``folder`` (split as ``base``) when it lies below it (same scheme, host and
    port), else None."""
    if _PLAIN_RELATIVE.fullmatch(link) and "/." not in link:  # the usual entry: no need to resolve it
        return link
    try:
        target = urlsplit(as_sent(urljoin(folder + "/", link.strip())))
        same_origin = _origin(target) == _origin(base)
    except ValueError:  # a port that is not a number, a broken IPv6 address: not a link to follow
        return None
    prefix = base.path.rstrip("/") + "/"
    if not same_origin or target.query or not target.path.startswith(prefix):
        return None
    relative = target.path[len(prefix):]
    # "%2e%2e/" is ".." to the server, which would walk up from there: what urljoin resolved for "../"
    if not relative or any(unquote(part) in (".", "..") for part in relative.split("/")):
        return None
    return relative


def _origin(parts: SplitResult) -> tuple[str, str | None, int | None]:
    """Scheme, host and port: "http://h/" and "http://H:80/" are one origin; "https://h/" is another."""
    return parts.scheme, parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)


def _holding_folders(relative: str) -> Iterator[str]:
    """The folders between the page's folder and ``relative``: "a/", "a/b/" for "a/b/c.jpg"."""
    parts = relative.rstrip("/").split("/")
    for depth in range(1, len(parts)):
        yield "/".join(parts[:depth]) + "/"


def _decoded(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know: UTF-8 reads the ASCII links of any index
        return body.decode("utf-8", errors="replace")


def _not_an_index(media_type: str, text: str) -> RemoteError:
    """The refusal of a page that is not an index, with its first words when it is text (an error's message)."""
    if not _is_text(media_type):
        return RemoteError(f"not an HTML index page ({media_type})")
    words = " ".join(text.split())[:EXCERPT_CHARS]  # one line, short
    shown = "".join(char if char.isprintable() else "?" for char in words)  # no terminal escapes from a server
    return RemoteError(f"not an HTML index page ({media_type}: {shown or 'empty'})")


def _is_text(media_type: str) -> bool:
    return media_type in ("no type", *_HTML_TYPES) or media_type.startswith("text/") or media_type.endswith(
        ("json", "xml"))


def _too_large(announced: int | None) -> RemoteError:
    size = f" ({describe_size(announced)})" if announced is not None else ""
    return RemoteError(f"its index page{size} is over the limit of {describe_size(MAX_INDEX_PAGE_BYTES)}; "
                       "give a manifest of its images' URLs instead")
