"""Fetching feeds over loopback HTTP and from local files."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from alerts.config import FeedSettings
from alerts.feeds.fetch import Fetched, FetchError, fetch, http_session
from tests.conftest import FeedServer

FAST = FeedSettings(retries=0, timeout_s=5)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with http_session(FAST) as s:
        yield s


@pytest.fixture
def feed(data: Path) -> bytes:
    return (data / "usgs" / "significant_month.geojson").read_bytes()


def test_200_returns_body_and_etag(
    feed_server: FeedServer, session: requests.Session, feed: bytes
) -> None:
    url = feed_server.serve("/summary/significant_month.geojson", feed)
    got = fetch(session, url, FAST)
    assert isinstance(got, Fetched)
    assert (got.url, got.status_code, got.body) == (url, 200, feed)
    assert got.etag and got.etag.startswith('"')
    assert not got.not_modified
    assert len(got.sha256) == 64


def test_second_fetch_with_the_etag_is_not_modified(
    feed_server: FeedServer, session: requests.Session, feed: bytes
) -> None:
    url = feed_server.serve("/feed.geojson", feed)
    first = fetch(session, url, FAST)
    second = fetch(session, url, FAST, etag=first.etag)
    assert second.status_code == 304
    assert second.not_modified
    assert second.body == b""
    assert second.etag == first.etag
    assert feed_server.hits == ["/feed.geojson", "/feed.geojson"]


def test_changed_body_with_an_old_etag_is_fetched_again(
    feed_server: FeedServer, session: requests.Session, feed: bytes
) -> None:
    url = feed_server.serve("/feed.geojson", feed)
    first = fetch(session, url, FAST)
    feed_server.serve("/feed.geojson", feed + b"\n")
    again = fetch(session, url, FAST, etag=first.etag)
    assert again.status_code == 200
    assert again.body == feed + b"\n"
    assert again.etag != first.etag


def test_requests_carry_the_configured_user_agent() -> None:
    with http_session(FeedSettings(user_agent="alerts-test/1")) as s:
        assert s.headers["User-Agent"] == "alerts-test/1"


@pytest.mark.parametrize("status", [404, 500, 503])
def test_http_error_raises_with_url_and_status(
    feed_server: FeedServer, session: requests.Session, status: int
) -> None:
    url = feed_server.serve("/broken.geojson", b"{}", status=status)
    with pytest.raises(FetchError) as exc:
        fetch(session, url, FAST)
    assert url in str(exc.value)
    assert f"HTTP {status}" in str(exc.value)
    assert feed_server.hits == ["/broken.geojson"]  # retries=0: asked once


def test_unknown_path_raises_404(feed_server: FeedServer, session: requests.Session) -> None:
    url = feed_server.base_url + "/nowhere.geojson"
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(session, url, FAST)


def test_server_error_is_retried_up_to_the_configured_count(feed_server: FeedServer) -> None:
    settings = FeedSettings(retries=1, timeout_s=5)
    url = feed_server.serve("/broken.geojson", b"{}", status=500)
    with http_session(settings) as s, pytest.raises(FetchError, match="HTTP 500"):
        fetch(s, url, settings)
    assert feed_server.hits == ["/broken.geojson", "/broken.geojson"]


def test_body_over_the_size_cap_raises(feed_server: FeedServer, feed: bytes) -> None:
    settings = FeedSettings(retries=0, timeout_s=5, max_bytes=len(feed) - 1)
    url = feed_server.serve("/big.geojson", feed)
    with http_session(settings) as s, pytest.raises(FetchError) as exc:
        fetch(s, url, settings)
    assert url in str(exc.value)
    assert f"{len(feed) - 1}-byte cap" in str(exc.value)


def test_body_at_the_size_cap_is_accepted(feed_server: FeedServer, feed: bytes) -> None:
    settings = FeedSettings(retries=0, timeout_s=5, max_bytes=len(feed))
    url = feed_server.serve("/exact.geojson", feed)
    with http_session(settings) as s:
        assert fetch(s, url, settings).body == feed


def test_file_url_reads_a_local_file(data: Path, session: requests.Session) -> None:
    path = data / "usgs" / "all_hour.geojson"
    got = fetch(session, path.resolve().as_uri(), FAST)
    assert (got.status_code, got.body) == (200, path.read_bytes())
    assert (got.etag, got.last_modified) == (None, None)


def test_file_url_with_escaped_characters(tmp_path: Path, session: requests.Session) -> None:
    path = tmp_path / "a feed 地震.geojson"
    path.write_bytes(b'{"features": []}')
    got = fetch(session, path.as_uri(), FAST)
    assert got.body == b'{"features": []}'


def test_missing_local_file_raises(tmp_path: Path, session: requests.Session) -> None:
    url = (tmp_path / "gone.geojson").as_uri()
    with pytest.raises(FetchError, match="gone.geojson"):
        fetch(session, url, FAST)


def test_local_file_over_the_size_cap_raises(tmp_path: Path, session: requests.Session) -> None:
    path = tmp_path / "big.geojson"
    path.write_bytes(b"x" * 101)
    with pytest.raises(FetchError, match="100-byte cap"):
        fetch(session, path.as_uri(), FeedSettings(max_bytes=100))


def test_closed_port_raises(session: requests.Session) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed.geojson"
    with pytest.raises(FetchError) as exc:
        fetch(session, url, FAST)
    assert url in str(exc.value)
    assert "ConnectionError" in str(exc.value)


def test_a_transient_503_is_retried_then_succeeds(feed_server: FeedServer, feed: bytes) -> None:
    settings = FeedSettings(retries=2, timeout_s=5)
    url = feed_server.serve("/flaky", feed, fail_first=1)
    with http_session(settings) as s:
        got = fetch(s, url, settings)
    assert got.body == feed
    assert feed_server.hits.count("/flaky") == 2


def test_a_read_timeout_raises_a_fetch_error(feed_server: FeedServer, feed: bytes) -> None:
    settings = FeedSettings(retries=0, timeout_s=0.3)
    url = feed_server.serve("/slow", feed, delay_s=1.0)
    with http_session(settings) as s, pytest.raises(FetchError, match="/slow.*(Timeout|timed out)"):
        fetch(s, url, settings)


def test_gzip_bodies_are_decompressed(feed_server: FeedServer, feed: bytes) -> None:
    url = feed_server.serve("/gz", feed, gzip=True)
    with http_session(FAST) as s:
        assert fetch(s, url, FAST).body == feed


def test_the_size_cap_applies_to_the_decompressed_body(feed_server: FeedServer) -> None:
    bomb = b"0" * 2_000_000  # compresses to about 2 kB
    settings = FeedSettings(retries=0, timeout_s=5, max_bytes=100_000)
    url = feed_server.serve("/bomb", bomb, gzip=True)
    with http_session(settings) as s, pytest.raises(FetchError, match="cap"):
        fetch(s, url, settings)
