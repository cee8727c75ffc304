"""Open-Meteo forecasts fetched in batches; each stored answer maps back to its locations."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.config import load_settings
from alerts.feeds import openmeteo
from alerts.feeds.fetch import FetchError
from alerts.pipeline import Runtime, fetch_weather
from tests.conftest import FeedServer

OM = Path(__file__).parent / "data" / "openmeteo"
THREE = [
    {"id": "510100", "latitude": 30.763, "longitude": 103.8678, "name": "成都"},
    {"id": "513300", "latitude": 31.0893, "longitude": 100.3701, "name": "甘孜"},
    {"id": "540100", "latitude": 30.155, "longitude": 91.389, "name": "拉萨"},
]


@pytest.fixture
def rt(alerts_env: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    locations = alerts_env.parent / "locations.json"
    locations.write_text(json.dumps(THREE, ensure_ascii=False))
    monkeypatch.setenv("ALERTS_FEEDS__LOCATIONS_FILE", str(locations))
    monkeypatch.setenv("ALERTS_FEEDS__RETRIES", "0")
    monkeypatch.setenv("ALERTS_FEEDS__OPENMETEO_URL", f"{feed_server.base_url}/v1/forecast")
    monkeypatch.setenv("ALERTS_FEEDS__AIR_QUALITY_URL", f"{feed_server.base_url}/v1/air-quality")
    runtime = Runtime.from_settings(
        load_settings(), clock=lambda: datetime(2026, 7, 20, tzinfo=UTC)
    )
    yield runtime
    runtime.close()


def _ingested_frames(rt: Runtime, ids: list[int]) -> list:  # type: ignore[type-arg]
    out = []
    for pid in ids:
        payload = rt.store.payload(pid)
        located = openmeteo.locations_in_url(payload.url, rt.locations())
        out.append(openmeteo.parse(payload.body, located).frame)
    return out


def test_batches_are_fetched_and_answers_map_to_the_configured_ids(
    rt: Runtime, feed_server: FeedServer
) -> None:
    feed_server.serve("/v1/forecast", OM / "forecast_3_locations.json")
    feed_server.serve("/v1/air-quality", OM / "air_quality_3_locations.json")
    ids = fetch_weather(rt)
    assert len(ids) == 2
    forecast, air = _ingested_frames(rt, ids)
    assert list(forecast["location_id"].unique()) == ["510100", "513300", "540100"]
    merged = openmeteo.merge(forecast, air)
    assert merged["pm25_ugm3"].notna().any()
    assert "latitude=30.763,31.0893,30.155" in rt.store.payload(ids[0]).url


def test_one_failing_batch_does_not_stop_the_others(rt: Runtime, feed_server: FeedServer) -> None:
    feed_server.serve("/v1/forecast", OM / "forecast_3_locations.json")
    feed_server.serve("/v1/air-quality", b"", status=502)
    with pytest.raises(FetchError, match="1 Open-Meteo batch"):
        fetch_weather(rt)
    assert rt.store.feed_state("open-meteo:forecast:0").consecutive_failures == 0  # type: ignore[union-attr]
    assert rt.store.feed_state("open-meteo:air:0").consecutive_failures == 1  # type: ignore[union-attr]
    assert rt.store.latest_payload("open-meteo", rt.store.feed_state("open-meteo:forecast:0").url)  # type: ignore[union-attr]
