"""Fetching a CAP source through its Atom index, once per document revision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.config import CapFeed, load_settings
from alerts.feeds.fetch import FetchError
from alerts.pipeline import Runtime, fetch_cap_feed, ingest_payloads
from tests.conftest import FeedServer

CAP = Path(__file__).parent / "data" / "cap"


def _index(base: str, docs: dict[str, str]) -> bytes:
    entries = "".join(
        f"<entry><id>{doc}</id><title>{doc}</title><updated>{updated}</updated>"
        f'<link rel="alternate" type="application/cap+xml" href="{base}/{doc}"/></entry>'
        for doc, updated in docs.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>idx</id><title>index</title><updated>2026-01-01T00:00:00Z</updated>{entries}</feed>"
    ).encode()


@pytest.fixture
def clock() -> list[datetime]:
    return [datetime(2026, 11, 29, 3, 0, tzinfo=UTC)]


@pytest.fixture
def rt(alerts_env: Path, clock: list[datetime], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALERTS_FEEDS__RETRIES", "0")
    runtime = Runtime.from_settings(load_settings(), clock=lambda: clock[0])
    yield runtime
    runtime.close()


def test_each_linked_document_is_fetched_once_per_revision(
    rt: Runtime, feed_server: FeedServer, clock: list[datetime]
) -> None:
    for name in ("taiwan.cap", "iceland_met_office.cap"):
        feed_server.serve(f"/{name}", CAP / name)
    docs = {"taiwan.cap": "2026-01-01T00:00:00Z", "iceland_met_office.cap": "2026-01-01T00:00:00Z"}
    url = feed_server.serve("/index.atom", _index(feed_server.base_url, docs))
    feed = CapFeed(name="test", url=url, min_interval_s=60)

    first = fetch_cap_feed(rt, feed)
    assert len(first) == 2
    assert ingest_payloads(rt, first).records_read == 3  # iceland has two languages

    clock[0] += timedelta(seconds=30)
    assert fetch_cap_feed(rt, feed) == []  # politeness: too soon, not even asked
    assert feed_server.hits.count("/index.atom") == 1

    clock[0] += timedelta(minutes=5)
    docs["taiwan.cap"] = "2026-01-01T01:00:00Z"  # one revised entry
    feed_server.serve("/index.atom", _index(feed_server.base_url, docs))
    assert len(fetch_cap_feed(rt, feed)) == 1
    assert feed_server.hits.count("/taiwan.cap") == 2
    assert feed_server.hits.count("/iceland_met_office.cap") == 1


def test_a_failing_document_is_retried_next_time_and_recorded(
    rt: Runtime, feed_server: FeedServer, clock: list[datetime]
) -> None:
    feed_server.serve("/taiwan.cap", CAP / "taiwan.cap")
    docs = {"taiwan.cap": "2026-01-01T00:00:00Z", "gone.cap": "2026-01-01T00:00:00Z"}
    url = feed_server.serve("/index.atom", _index(feed_server.base_url, docs))
    feed = CapFeed(name="test", url=url, min_interval_s=0)
    with pytest.raises(FetchError, match="1 CAP document"):
        fetch_cap_feed(rt, feed)
    state = rt.store.feed_state("cap:test")
    assert state is not None and state.consecutive_failures == 1
    assert list((state.cursor or {})["seen"]) == ["taiwan.cap"]
    feed_server.serve("/gone.cap", CAP / "canada.cap")
    feed_server.serve("/index.atom", _index(feed_server.base_url, docs) + b" ")
    assert len(fetch_cap_feed(rt, feed)) == 1
    assert feed_server.hits.count("/taiwan.cap") == 1


def test_a_plain_cap_url_is_one_document(rt: Runtime, feed_server: FeedServer) -> None:
    url = feed_server.serve("/one.cap", CAP / "wcatwc-warning.cap")
    ids = fetch_cap_feed(rt, CapFeed(name="one", url=url))
    assert len(ids) == 1 and ingest_payloads(rt, ids).records_read == 1
