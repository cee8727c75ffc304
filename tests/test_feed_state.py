"""fetch_feed: conditional GET from stored validators, and every attempt recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.config import load_settings
from alerts.feeds.fetch import FetchError
from alerts.pipeline import Runtime, fetch_feed
from tests.conftest import FeedServer


@pytest.fixture
def rt(alerts_env: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALERTS_FEEDS__RETRIES", "0")
    runtime = Runtime.from_settings(load_settings(), clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    yield runtime
    runtime.close()


def test_a_new_body_is_stored_and_an_unchanged_one_is_not(
    rt: Runtime, feed_server: FeedServer, data: Path
) -> None:
    url = feed_server.serve("/cenc", data / "cenc" / "catalogs_current.json")
    first = fetch_feed(rt, "cenc", url=url)
    assert first is not None
    assert fetch_feed(rt, "cenc", url=url) is None  # 304 from the stored ETag
    state = rt.store.feed_state("cenc")
    assert state is not None
    assert (state.last_payload_id, state.consecutive_failures, state.url) == (first, 0, url)
    assert state.etag and state.last_success_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_a_failure_is_recorded_and_raised(rt: Runtime, feed_server: FeedServer, data: Path) -> None:
    url = feed_server.serve("/down", b"", status=500)
    for _ in range(2):
        with pytest.raises(FetchError, match="HTTP 500"):
            fetch_feed(rt, "usgs", url=url)
    state = rt.store.feed_state("usgs")
    assert state is not None and state.consecutive_failures == 2
    assert state.last_success_at is None and "HTTP 500" in (state.last_error or "")
    feed_server.serve("/down", data / "usgs" / "all_hour.geojson")
    assert fetch_feed(rt, "usgs", url=url) is not None
    assert rt.store.feed_state("usgs").consecutive_failures == 0  # type: ignore[union-attr]


def test_alerts_feeds_shows_a_failing_feed(
    rt: Runtime, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from alerts.cli import main

    url = feed_server.serve("/down", b"", status=503)
    with pytest.raises(FetchError):
        fetch_feed(rt, "gdacs", url=url)
    assert main(["feeds"]) == 0
    assert "FAILING x1" in capsys.readouterr().out
    assert main(["feeds", "--json"]) == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert row["feed"] == "gdacs" and row["consecutive_failures"] == 1
    assert "503" in row["last_error"]
