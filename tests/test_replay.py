"""`alerts replay`: recorded payloads served as if live, end to end through the pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from alerts.config import load_settings
from alerts.feeds import cenc, usgs
from alerts.pipeline import Runtime, fetch_feed, ingest_payloads, publish
from alerts.replay import ReplayServer, detect, shift_payload

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("usgs/all_hour.geojson", "usgs"),
        ("usgs/detail_us6000pi9w.json", "usgs"),
        ("cenc/speedsearch_legacy.jsonp", "cenc"),
        ("cenc/catalogs_current.json", "cenc"),
        ("cap/taiwan.cap", "cap"),
        ("cap/us_nws_weather.atom", "atom"),
        ("gdacs/gdacs-rss-1.xml", "gdacs"),
    ],
)
def test_formats_are_recognised_by_content(path: str, kind: str) -> None:
    assert detect((DATA / path).read_bytes()) == kind


def test_usgs_newest_event_becomes_now_and_nothing_else_changes() -> None:
    raw = (DATA / "usgs" / "significant_month.geojson").read_bytes()
    body, shift, _ = shift_payload(raw, NOW)
    before, after = usgs.parse(raw).frame, usgs.parse(body).frame
    assert after["time"].max() == NOW
    assert (after["time"] - before["time"]).eq(shift).all()
    assert (after["updated"] - before["updated"]).eq(shift).all()
    cols = ["event_id", "latitude", "longitude", "magnitude", "status", "place"]
    assert after[cols].equals(before[cols])


@pytest.mark.parametrize("name", ["speedsearch_legacy.jsonp", "catalogs_current.json"])
def test_cenc_beijing_times_shift_and_the_wrapping_survives(name: str) -> None:
    raw = (DATA / "cenc" / name).read_bytes()
    body, _, _ = shift_payload(raw, NOW)
    assert body.lstrip().startswith(b"(") == raw.lstrip().startswith(b"(")
    frame = cenc.parse(body).frame
    # the newest record may be an automatic solution merged into its formal one
    assert timedelta(0) <= NOW - frame["time"].max() <= timedelta(seconds=60)


def test_cap_times_shift_with_their_offsets_kept() -> None:
    raw = (DATA / "cap" / "taiwan.cap").read_bytes()
    body, shift, _ = shift_payload(raw, NOW)
    assert b"<sent>2026-11-29T11:00:00+08:00</sent>" in body
    assert body.startswith(b"\xef\xbb\xbf") and len(body) == len(raw)


def test_gdacs_item_dates_shift() -> None:
    raw = (DATA / "gdacs" / "gdacs-rss-2.xml").read_bytes()
    body, _, _ = shift_payload(raw, NOW)
    assert b"<pubDate>Sun, 29 Nov 2026 03:00:00 GMT</pubDate>" in body


def test_replayed_usgs_and_cenc_feeds_drive_a_live_cycle(
    alerts_env: Path, national_only_rules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    server = ReplayServer(DATA / "usgs", now=now - timedelta(minutes=5)).start()
    try:
        assert requests.get(f"{server.url}/nope", timeout=5).status_code == 404
        monkeypatch.setenv("ALERTS_FEEDS__USGS_URL", f"{server.url}/china_dingri_4.5_day.geojson")
        rt = Runtime.from_settings(load_settings())
        pid = fetch_feed(rt, "usgs")
        assert pid is not None and fetch_feed(rt, "usgs") is None  # stable body: 304
        summary = ingest_payloads(rt, [pid])
        assert summary.actions == {"issue": 1}
        assert publish(rt).delivered == 1
        rt.close()
    finally:
        server.stop()


def test_unknown_files_are_served_as_recorded(tmp_path: Path) -> None:
    (tmp_path / "error.json").write_text(json.dumps({"error": True, "reason": "bad"}))
    server = ReplayServer(tmp_path, now=NOW).start()
    try:
        reply = requests.get(f"{server.url}/error.json", timeout=5)
        assert reply.json() == {"error": True, "reason": "bad"}
        assert "error.json" in server.skipped
    finally:
        server.stop()
