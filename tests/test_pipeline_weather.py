"""Weather and official warnings through the same cycle: graded, reconciled, delivered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.cli import main

NOW = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)


def _forecast(tmp_path: Path, name: str, rain: dict[int, float]) -> Path:
    """One Open-Meteo answer (local Beijing times); rain[h] mm in the hour ending now+h."""
    start = NOW - timedelta(hours=23)
    hours = [start + timedelta(hours=i) for i in range(96)]
    local = [(t + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M") for t in hours]
    precip = [rain.get(int((t - NOW).total_seconds() // 3600), 0.0) for t in hours]
    doc = {
        "latitude": 30.75,
        "longitude": 103.875,
        "generationtime_ms": 1.0,
        "utc_offset_seconds": 28800,
        "timezone": "Asia/Shanghai",
        "timezone_abbreviation": "CST",
        "elevation": 500.0,
        "hourly_units": {
            "time": "iso8601",
            "precipitation": "mm",
            "temperature_2m": "°C",
            "wind_speed_10m": "m/s",
            "visibility": "m",
        },
        "hourly": {
            "time": local,
            "precipitation": precip,
            "temperature_2m": [26.0] * 96,
            "wind_speed_10m": [2.0] * 96,
            "visibility": [20000.0] * 96,
        },
    }
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _run(capsys: pytest.CaptureFixture[str], now: datetime, *inputs: str) -> dict:
    args = ["pipeline", "--now", now.isoformat()]
    for i in inputs:
        args += ["--input", i]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _outbox(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["outbox", "--json"]) == 0
    return [json.loads(x) for x in reversed(capsys.readouterr().out.splitlines())]


def test_a_forecast_rainstorm_is_issued_upgraded_and_lifted(
    alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    yellow = _forecast(tmp_path, "a.json", {h: 12.5 for h in range(1, 5)})  # 50 mm in 4 h
    assert _run(capsys, NOW, f"open-meteo={yellow}")["issued"] == 1
    again = _run(capsys, NOW + timedelta(minutes=10), f"open-meteo={yellow}")
    # same level, the window moved on: a quiet Update extends the expiry, no message
    assert (again["extended"], again["delivered"]) == (1, 0)
    assert _run(capsys, NOW + timedelta(minutes=10), f"open-meteo={yellow}")["versions"] == 0
    red = _forecast(tmp_path, "b.json", {1: 40, 2: 40, 3: 30})
    assert _run(capsys, NOW, f"open-meteo={red}")["updated"] == 1
    dry = _forecast(tmp_path, "c.json", {})
    assert _run(capsys, NOW, f"open-meteo={dry}")["cancelled"] == 0  # clear time not yet over
    later = NOW + timedelta(minutes=61)
    assert _run(capsys, later, f"open-meteo={dry}")["cancelled"] == 1
    heads = [m["body"].splitlines()[0] for m in _outbox(capsys)]
    assert heads[0].startswith("【暴雨黄色预警】")
    assert heads[1].startswith("【暴雨红色预警·升级】")
    assert heads[2].startswith("【暴雨红色预警·解除】")
    body = _outbox(capsys)[0]["body"]
    assert "降雨量可达50.0毫米" in body and "防御指南" in body


def test_an_official_cap_warning_is_delivered_with_its_stated_colour(
    alerts_env: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = datetime(2011, 9, 2, 11, 40, tzinfo=UTC)  # while wcatwc-warning.cap is current
    summary = _run(capsys, sent, f"cap={data / 'cap' / 'wcatwc-warning.cap'}")
    assert summary["issued"] >= 1
    (msg,) = _outbox(capsys)[:1]
    assert msg["body"].startswith("【海啸红色预警】")
