"""weather_alerts, official_warnings, resend_alert and housekeeping under dag.test()."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.config import load_settings
from alerts.pipeline import Runtime
from alerts.store import Store
from tests.conftest import FeedServer

pytestmark = pytest.mark.airflow

TWO = [
    {"id": "510100", "latitude": 30.763, "longitude": 103.8678, "name": "成都"},
    {"id": "510700", "latitude": 31.4675, "longitude": 104.6796, "name": "绵阳"},
]


def _store(home: Path) -> Store:
    return Store(f"sqlite:///{home / 'alerts.db'}")


def _forecast_now(path: Path) -> Path:
    """One location's forecast, 12.5 mm an hour for the next 4 hours (yellow rainstorm)."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=23)
    hours = [start + timedelta(hours=i) for i in range(96)]
    doc = {
        "latitude": 30.75,
        "longitude": 103.875,
        "utc_offset_seconds": 28800,
        "timezone": "Asia/Shanghai",
        "hourly_units": {"time": "iso8601", "precipitation": "mm"},
        "hourly": {
            "time": [(t + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M") for t in hours],
            "precipitation": [
                12.5 if 1 <= (t - now).total_seconds() // 3600 <= 4 else 0.0 for t in hours
            ],
        },
    }
    path.write_text(json.dumps(doc))
    return path


def test_weather_batches_fail_alone_and_what_they_stored_is_still_graded(
    dagbag,
    alerts_env: Path,
    feed_server: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    locations = tmp_path / "locations.json"
    locations.write_text(json.dumps(TWO, ensure_ascii=False))
    monkeypatch.setenv("ALERTS_FEEDS__LOCATIONS_FILE", str(locations))
    monkeypatch.setenv("ALERTS_FEEDS__OPENMETEO_BATCH_SIZE", "1")
    monkeypatch.setenv("ALERTS_FEEDS__RETRIES", "0")
    monkeypatch.setenv("ALERTS_FEEDS__OPENMETEO_URL", f"{feed_server.base_url}/v1/forecast")
    monkeypatch.setenv("ALERTS_FEEDS__AIR_QUALITY_URL", f"{feed_server.base_url}/v1/air-quality")
    feed_server.serve("/v1/forecast", _forecast_now(tmp_path / "f.json"))
    feed_server.serve("/v1/air-quality", b"bad gateway", status=502)
    dag = dagbag.dags["weather_alerts"]

    run = dag.test()
    assert run.state == "failed"  # both batches' air-quality requests failed: visible
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["ingest"] == "success"  # ...yet the stored forecasts were graded
    with _store(alerts_env) as store:
        alerts = {a.region_code for a in store.alerts(active_only=True)}
        assert alerts == {"510100", "510700"}

    feed_server.serve("/v1/air-quality", b"[]", status=200)
    feed_server.status["/v1/air-quality"] = 200
    assert dag.test().state in ("success", "failed")  # the air answer is unusable JSON
    with _store(alerts_env) as store:
        assert len(store.alert_versions()) == 2  # nothing graded twice


def _shifted_cap(data: Path, now: datetime) -> bytes:
    text = (data / "cap" / "wcatwc-warning.cap").read_text()
    base = datetime(2011, 9, 2, 11, 36, 50, tzinfo=UTC)

    def shift(m: re.Match[str]) -> str:
        when = datetime.fromisoformat(m.group(0).replace("-00:00", "+00:00"))
        return (when - base + now).isoformat(timespec="seconds")

    return re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}", shift, text).encode()


def test_official_warnings_fetch_each_source_and_publish_through_publish_alerts(
    dagbag, alerts_env: Path, feed_server: FeedServer, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    cap = feed_server.serve("/cap/warning.cap", _shifted_cap(data, now))
    gdacs = feed_server.serve("/gdacs/rss.xml", b"<html>maintenance</html>", status=503)
    monkeypatch.setenv(
        "ALERTS_FEEDS__CAP_FEEDS", json.dumps([{"name": "wcatwc", "url": cap, "min_interval_s": 0}])
    )
    monkeypatch.setenv("ALERTS_FEEDS__GDACS_URL", gdacs)
    monkeypatch.setenv("ALERTS_FEEDS__RETRIES", "0")
    run = dagbag.dags["official_warnings"].test()
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert states[("fetch", 0)] == "success" and states[("fetch", 1)] == "failed"  # GDACS down
    assert states[("ingest", -1)] == "success"
    with _store(alerts_env) as store:
        (alert,) = store.alerts(active_only=True)
        assert alert.hazard == "tsunami"
    assert dagbag.dags["publish_alerts"].test().state == "success"
    with _store(alerts_env) as store:
        (msg,) = store.outbox()
        assert msg.body.startswith("【海啸红色预警】")


def test_resend_alert_form_and_housekeeping(
    dagbag, alerts_env: Path, feed_server: FeedServer, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    cap = feed_server.serve("/cap/warning.cap", _shifted_cap(data, now))
    monkeypatch.setenv(
        "ALERTS_FEEDS__CAP_FEEDS", json.dumps([{"name": "wcatwc", "url": cap, "min_interval_s": 0}])
    )
    monkeypatch.setenv("ALERTS_FEEDS__GDACS_URL", feed_server.serve("/g.xml", b"x", status=503))
    monkeypatch.setenv("ALERTS_FEEDS__RETRIES", "0")
    dagbag.dags["official_warnings"].test()
    dagbag.dags["publish_alerts"].test()
    with _store(alerts_env) as store:
        (pub,) = store.publications()

    run = dagbag.dags["resend_alert"].test(
        run_conf={"identifier": pub.identifier, "mode": "all", "reason": "演练复核 drill check"}
    )
    assert run.state == "success"
    with _store(alerts_env) as store:
        keys = sorted(d.key.rsplit("/", 1)[-1] for d in store.deliveries())
        assert keys == ["public", "public#r1"]
        (entry,) = [e for e in store.audit(pub.lead_alert_id) if e.action == "resend"]
        assert entry.reason == "演练复核 drill check"

    # housekeeping: GDACS has never succeeded for longer than 3 x 5 minutes
    rt = Runtime.from_settings(
        load_settings(), clock=lambda: datetime.now(UTC) + timedelta(hours=1)
    )
    rt.close()
    monkeypatch.setenv("ALERTS_HOUSEKEEPING__INTERVALS_S", json.dumps({"gdacs": 60, "cap:": 60}))
    with _store(alerts_env) as store:
        store.record_fetch(
            "gdacs",
            source="gdacs",
            url="http://x",
            now=datetime.now(UTC) - timedelta(hours=1),
            error="HTTP 503",
        )
    hk = dagbag.dags["housekeeping"].test()
    states = {ti.task_id: ti.state for ti in hk.get_task_instances()}
    assert states == {"expire": "success", "stale_feeds": "failed", "retention": "success"}
    assert hk.state == "failed"
