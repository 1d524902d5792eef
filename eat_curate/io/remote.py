"""fsspec URLs: telling them from local paths, and reading them with short, clear failures.

``file://`` URLs are turned into plain local paths, so a file has one key
however it was named; everything else with a ``scheme://`` (http, https,
s3, gs, ...) is read through fsspec, whose optional backends are extras:
``eat-curate[http]`` (aiohttp) and ``eat-curate[s3]`` (s3fs).
"""

from __future__ import annotations

import os
import posixpath
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import fsspec
from fsspec.spec import AbstractFileSystem

LOCAL_PROTOCOLS = ("file", "local")
_INSTALL_HINTS = {
    "http": "pip install 'eat-curate[http]'",
    "https": "pip install 'eat-curate[http]'",
    "s3": "pip install 'eat-curate[s3]'",
    "s3a": "pip install 'eat-curate[s3]'",
    "gs": "pip install gcsfs",
    "gcs": "pip install gcsfs",
}


class RemoteError(Exception):
    """A remote location that could not be used; ``str()`` is a short reason."""


def protocol_of(location: str) -> str | None:
    """``"https"`` for ``https://host/x.jpg``; None for a local path."""
    scheme, separator, _ = location.partition("://")
    return scheme.lower() if separator and scheme.replace("+", "").replace("-", "").isalnum() else None


def is_remote(location: str) -> bool:
    protocol = protocol_of(location)
    return protocol is not None and protocol not in LOCAL_PROTOCOLS


def local_path(location: str) -> str:
    """An absolute local path for a plain path or a ``file://`` URL."""
    if protocol_of(location) in LOCAL_PROTOCOLS:
        location = fsspec.core.strip_protocol(location)
    return os.path.abspath(os.path.expanduser(location))


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """fsspec's filesystem and in-filesystem path for ``url``; RemoteError when its backend is missing."""
    protocol = protocol_of(url) or "file"
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError:
        hint = _INSTALL_HINTS.get(protocol, f"install the fsspec backend for {protocol}://")
        raise RemoteError(f"reading {protocol}:// URLs needs an extra package: {hint}") from None
    except ValueError as error:
        raise RemoteError(f"unknown URL protocol {protocol}:// ({error})") from None


def check_protocol(url: str) -> None:
    """Raise RemoteError now if ``url``'s protocol cannot be read here (unknown, or backend missing)."""
    protocol = protocol_of(url) or "file"
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError:
        hint = _INSTALL_HINTS.get(protocol, f"install the fsspec backend for {protocol}://")
        raise RemoteError(f"reading {protocol}:// URLs needs an extra package: {hint}") from None
    except ValueError:
        raise RemoteError(f"unknown URL protocol {protocol}://") from None


def read_url(url: str) -> bytes:
    """The whole content at ``url``; RemoteError with a short reason (not found, HTTP 403, ...)."""
    fs, path = filesystem(url)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        raise RemoteError("HTTP 404 not found" if protocol_of(url) in ("http", "https") else "not found") from None
    except PermissionError:
        raise RemoteError("permission denied") from None
    except Exception as error:  # network stacks raise many types; all of them mean "could not read"
        raise RemoteError(describe_failure(error)) from None


def describe_failure(error: BaseException) -> str:
    status = getattr(error, "status", None) or getattr(error, "code", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def url_facts(url: str) -> tuple[int | None, float | None]:
    """(size, mtime) from the server's answer (a HEAD for http), None where it gives none or fails."""
    try:
        fs, path = filesystem(url)
        info = fs.info(path)
    except Exception:  # reading it later will say what is wrong, on the item's own row
        return None, None
    size = info.get("size")
    return (int(size) if isinstance(size, (int, float)) else None), _mtime(info)


def _mtime(info: dict) -> float | None:
    for key in ("mtime", "LastModified", "last_modified", "Last-Modified", "updated"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return float(value)
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return parsedate_to_datetime(str(value)).timestamp()  # HTTP date: "Wed, 21 Oct 2015 07:28:00 GMT"
        except (TypeError, ValueError):
            continue
    return None


def join_url(base_url: str, relative: str) -> str:
    """``relative`` resolved against the folder of ``base_url`` (like a browser for http)."""
    if protocol_of(base_url) in ("http", "https"):
        return urljoin(base_url, relative)
    protocol = protocol_of(base_url)
    parts = urlsplit(base_url)
    folder = posixpath.dirname(parts.path)
    joined = posixpath.normpath(posixpath.join(folder, relative))
    return f"{protocol}://{parts.netloc}{joined}"


def parent_name(location: str) -> str | None:
    """The name of the folder holding ``location`` (a path or a URL), None at the top."""
    path = urlsplit(location).path if is_remote(location) else location
    name = posixpath.basename(posixpath.dirname(path.replace(os.sep, "/")))
    return name or None
