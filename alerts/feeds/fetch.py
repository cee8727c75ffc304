"""Fetching feeds over HTTP: the one session factory and the one retry policy.

Conditional GET (ETag / Last-Modified), connect and read timeouts, gzip, a
size cap enforced on the decompressed body while streaming (so a gzip bomb
stops at the cap), and retries with exponential backoff on connection errors, 429
and 5xx. ``file://`` URLs read a local file, for replays and air-gapped tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from alerts.config import FeedSettings

__all__ = ["FetchError", "Fetched", "fetch", "http_session"]


class FetchError(RuntimeError):
    """The feed could not be fetched (after retries); the message says why."""


@dataclass(frozen=True)
class Fetched:
    url: str
    status_code: int
    body: bytes
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def http_session(settings: FeedSettings) -> requests.Session:
    session = requests.Session()
    retry = Retry(
        total=settings.retries,
        backoff_factor=1.0,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = settings.user_agent
    session.headers["Accept-Encoding"] = "gzip, deflate"
    return session


def fetch(
    session: requests.Session,
    url: str,
    settings: FeedSettings,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    if url.startswith("file://"):
        return _read_file(url, settings.max_bytes)
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        timeout = (settings.connect_timeout_s, settings.timeout_s)
        with session.get(url, headers=headers, timeout=timeout, stream=True) as resp:
            if resp.status_code == 304:
                return Fetched(url, 304, b"", etag, last_modified)
            if resp.status_code != 200:
                raise FetchError(f"GET {url}: HTTP {resp.status_code} {resp.reason}")
            body = _read_capped(resp, url, settings.max_bytes)
            return Fetched(
                url, 200, body, resp.headers.get("ETag"), resp.headers.get("Last-Modified")
            )
    except requests.RequestException as exc:
        raise FetchError(f"GET {url}: {type(exc).__name__}: {exc}") from None


def _read_capped(resp: requests.Response, url: str, cap: int) -> bytes:
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise FetchError(f"GET {url}: body of {declared} bytes exceeds the {cap}-byte cap")
    chunks, size = [], 0
    for chunk in resp.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > cap:
            raise FetchError(f"GET {url}: body exceeds the {cap}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_file(url: str, cap: int) -> Fetched:
    path = Path(unquote(urlparse(url).path))
    try:
        size = path.stat().st_size
        if size > cap:
            raise FetchError(f"{url}: {size} bytes exceeds the {cap}-byte cap")
        return Fetched(url, 200, path.read_bytes(), None, None)
    except OSError as exc:
        raise FetchError(f"{url}: {exc}") from None
