"""Streamed HTTP(S) download to a file, with a size limit, a deadline and progress."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3

from opml.errors import OpmlError

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes received so far, total bytes or None without a Content-Length)."""


@dataclass(frozen=True)
class DownloadedFile:
    sha256: str
    size_bytes: int


def validate_url(url: str) -> str:
    """Return ``url`` stripped, or raise when it is not an http(s) address with a host."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OpmlError(f"Invalid URL {url!r}: give an http:// or https:// address of a CSV or Parquet file.")
    return url


def download(
    url: str,
    destination: Path,
    *,
    max_bytes: int,
    timeout_s: float,
    progress: ProgressCallback | None = None,
) -> DownloadedFile:
    """Stream ``url`` into ``destination`` and return its sha256 and size.

    ``timeout_s`` bounds the whole download, not only each read. On any error
    the partial file is removed.
    """
    url = validate_url(url)
    deadline = time.monotonic() + timeout_s
    log.info("Downloading %s", url)

    try:
        return _stream(url, destination, max_bytes, timeout_s, deadline, progress)
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


def _stream(
    url: str,
    destination: Path,
    max_bytes: int,
    timeout_s: float,
    deadline: float,
    progress: ProgressCallback | None,
) -> DownloadedFile:
    try:
        response = requests.get(url, stream=True, timeout=(min(10.0, timeout_s), timeout_s))
    except requests.Timeout as error:
        raise OpmlError(f"Timed out after {timeout_s:g} s connecting to {url}; check the address or try again.") from error
    except requests.ConnectionError as error:
        raise OpmlError(f"Could not connect to {url}: {_reason(error)}. Check the address and the network.") from error
    except requests.RequestException as error:
        raise OpmlError(f"Download of {url} failed: {error}") from error

    with response:
        if response.status_code >= 400:
            phrase = _status_phrase(response.status_code)
            raise OpmlError(
                f"Download of {url} failed with HTTP {response.status_code} {phrase}; "
                "check that the address points to the file."
            )

        total = _content_length(response)
        if total is not None and total > max_bytes:
            raise OpmlError(_too_large_message(url, total, max_bytes))

        digest = hashlib.sha256()
        received = 0
        try:
            with destination.open("wb") as output:
                for chunk in response.iter_content(CHUNK_BYTES):
                    received += len(chunk)
                    if received > max_bytes:
                        raise OpmlError(_too_large_message(url, received, max_bytes))
                    if time.monotonic() > deadline:
                        raise OpmlError(
                            f"Timed out after {timeout_s:g} s downloading {url} ({received:,} bytes received); "
                            "raise OPML_DOWNLOAD_TIMEOUT_S or use a faster source."
                        )
                    digest.update(chunk)
                    output.write(chunk)
                    if progress is not None:
                        progress(received, total)
        except requests.RequestException as error:
            if _is_read_timeout(error):
                raise OpmlError(
                    f"Timed out after {timeout_s:g} s waiting for data from {url} ({received:,} bytes received); "
                    "try again or raise OPML_DOWNLOAD_TIMEOUT_S."
                ) from error
            raise OpmlError(f"Download of {url} failed after {received:,} bytes: {error}") from error

    log.info("Downloaded %s (%d bytes)", url, received)
    return DownloadedFile(sha256=digest.hexdigest(), size_bytes=received)


def _is_read_timeout(error: requests.RequestException) -> bool:
    # While streaming the body, requests reports a read timeout as a
    # ConnectionError that wraps urllib3's ReadTimeoutError.
    if isinstance(error, requests.Timeout):
        return True
    return bool(error.args) and isinstance(error.args[0], urllib3.exceptions.ReadTimeoutError)


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    # With a Content-Encoding such as gzip, the header counts compressed
    # bytes, not the size written to disk.
    if value is None or response.headers.get("Content-Encoding"):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _too_large_message(url: str, size: int, max_bytes: int) -> str:
    return (
        f"{url} is larger than the dataset size limit ({size:,} bytes > {max_bytes:,} bytes); "
        "raise OPML_MAX_DATASET_MB or register a smaller file."
    )


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _reason(error: requests.ConnectionError) -> str:
    """Return the operating system's reason from a connection error, such as "Connection refused"."""
    match = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(error))
    return match.group(1).strip() if match else "connection failed"
