"""URLs and local paths: telling them apart, and fsspec filesystems for the URLs read here.

``file://`` URLs are turned into plain local paths, so a file has one key
however it was named. The remote protocols read here (:data:`SUPPORTED_PROTOCOLS`:
http(s), s3, gs, az) go through fsspec, whose optional backends are extras:
``eat-curate[http]`` (aiohttp) and ``eat-curate[s3]`` (s3fs). Other
protocols fsspec knows (ftp, sftp, ...) are refused: several connect while
merely being named, and fail in ways of their own. Reading is
:mod:`eat_curate.io.remote_read`'s job.

An http(s) URL is sent as it is written (:func:`as_sent`): only what may not
stand raw in a request (a space, a non-ASCII letter, a lone ``%``) is
percent-encoded. Escapes it holds stay: a signed URL (S3's
``X-Amz-Credential=AKIA...%2F20261207%2F...``) is signed over its exact
text, and decoding ``%2F`` to ``/`` would void the signature (HTTP 403). So
is a redirect's ``Location`` (an API redirecting to a signed URL).
"""

from __future__ import annotations

import os
import posixpath
import re
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urljoin, urlsplit

import fsspec
from fsspec.spec import AbstractFileSystem

from eat_curate.io import remote_retry

LOCAL_PROTOCOLS = ("file", "local")
SUPPORTED_PROTOCOLS = ("http", "https", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory")
_INSTALL_HINTS = {
    "http": "pip install 'eat-curate[http]'",
    "https": "pip install 'eat-curate[http]'",
    "s3": "pip install 'eat-curate[s3]'",
    "s3a": "pip install 'eat-curate[s3]'",
    "gs": "pip install gcsfs",
    "gcs": "pip install gcsfs",
    "az": "pip install adlfs",
    "abfs": "pip install adlfs",
    "abfss": "pip install adlfs",
}


_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What stands raw in a URL (RFC 3986's reserved and unreserved characters), and "%", whose escapes are kept.
_RAW_IN_URLS = "%:/?#[]@!$&'()*+,;=~"


class RemoteError(Exception):
    """A remote location that could not be used; ``str()`` is a short reason."""


def protocol_of(location: str) -> str | None:
    """``"https"`` for ``https://host/x.jpg``; None for a local path."""
    scheme, separator, _ = location.partition("://")
    return scheme.lower() if separator and scheme.replace("+", "").replace("-", "").isalnum() else None


def is_remote(location: str) -> bool:
    protocol = protocol_of(location)
    return protocol is not None and protocol not in LOCAL_PROTOCOLS


def hide_url_password(location: str) -> str:
    """``location`` as printed and recorded: a URL's ``user:password@`` becomes ``user:***@``."""
    if not is_remote(location):
        return location
    try:
        parts = urlsplit(location)
        password = parts.password
    except ValueError:  # not a URL that parses; refused as such wherever it is used
        return location
    if not password:
        return location
    user, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}").geturl()


def local_path(location: str) -> str:
    """An absolute local path for a plain path or a ``file://`` URL."""
    if protocol_of(location) in LOCAL_PROTOCOLS:
        location = fsspec.core.strip_protocol(location)
    return os.path.abspath(os.path.expanduser(location))


def filesystem(url: str, timeout_s: float | None = None) -> tuple[AbstractFileSystem, str]:
    """fsspec's filesystem and in-filesystem path for ``url``; RemoteError when its backend is missing.

    ``timeout_s`` bounds connecting and each wait for data over http(s) and s3 (default: the
    retry policy's, ``remote_retry.DEFAULT_RETRY.timeout_s``); the backends' own defaults wait minutes.
    """
    protocol = protocol_of(url) or "file"
    seconds = remote_retry.DEFAULT_RETRY.timeout_s if timeout_s is None else timeout_s
    options = _timeout_options(protocol, seconds)
    if protocol in ("http", "https"):
        url, options["encoded"] = as_sent(url), True  # fsspec would re-encode it (see the module doc)
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError:
        raise RemoteError(_missing_backend(protocol)) from None
    except ValueError as error:
        raise RemoteError(f"unknown URL protocol {protocol}:// ({error})") from None


def as_sent(url: str) -> str:
    """An http(s) ``url`` as a request carries it: what may not stand raw is percent-encoded, its escapes kept as
    they are. Any other location is returned as it is (an object store's keys are not URL-encoded)."""
    if protocol_of(url) not in ("http", "https"):
        return url
    return quote(_LONE_PERCENT.sub("%25", url), safe=_RAW_IN_URLS)


def _timeout_options(protocol: str, seconds: float) -> dict:
    if protocol in ("http", "https"):
        try:
            import aiohttp
        except ImportError:  # url_to_fs says the backend is missing
            return {}
        timeout = aiohttp.ClientTimeout(total=None, connect=seconds, sock_connect=seconds, sock_read=seconds)
        # A redirect's Location is followed as written too: an API that redirects to a signed URL.
        # trust_env: credentials from ~/.netrc (or $NETRC) where the URL has none, so that a password need
        # not be in the URL, which every row's path keeps; and the HTTP(S)_PROXY / NO_PROXY settings.
        return {"client_kwargs": {"timeout": timeout, "requote_redirect_url": False, "trust_env": True}}
    if protocol in ("s3", "s3a"):
        return {"config_kwargs": {"connect_timeout": seconds, "read_timeout": seconds}}
    return {}


def check_protocol(url: str) -> None:
    """Raise RemoteError now if ``url``'s protocol is not read here: unknown, unsupported, or its backend missing."""
    protocol = protocol_of(url) or "file"
    if protocol in LOCAL_PROTOCOLS:
        return
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError:
        if protocol in SUPPORTED_PROTOCOLS:
            raise RemoteError(_missing_backend(protocol)) from None
    except ValueError:
        raise RemoteError(f"unknown URL protocol {protocol}://") from None
    if protocol not in SUPPORTED_PROTOCOLS:
        raise RemoteError(
            f"unsupported URL protocol {protocol}:// (eat-curate reads local paths, file://, http(s)://, "
            "s3://, gs:// and az:// URLs)"
        )


def _missing_backend(protocol: str) -> str:
    hint = _INSTALL_HINTS.get(protocol, f"install the fsspec backend for {protocol}://")
    return f"reading {protocol}:// URLs needs an extra package: {hint}"


def info_mtime(info: dict) -> float | None:
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
