"""`alerts grade` on the JSON lines of `alerts parse`, and official warnings' colours."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from alerts.cli import main
from alerts.criteria import load_rules, packaged_rules_dir
from alerts.criteria.official import grade_official
from alerts.feeds.base import OFFICIAL_COLUMNS

DATA = Path(__file__).parent / "data"
KEYS = {
    "hazard",
    "level",
    "location_id",
    "rule_id",
    "ruleset_version",
    "window_h",
    "value",
    "threshold",
    "reached_at",
    "source_ref",
    "reason",
}


def _parse(capsys: pytest.CaptureFixture[str], source: str, path: Path) -> list[str]:
    assert main(["parse", "--source", source, str(path)]) == 0
    return capsys.readouterr().out.splitlines()


def _weather_lines(now: datetime, rain: float) -> list[str]:
    rows = []
    for h in range(-24, 48):
        t = now + timedelta(hours=h)
        rows.append(
            json.dumps(
                {
                    "source": "open-meteo",
                    "location_id": "513300",
                    "latitude": 31.1,
                    "longitude": 100.4,
                    "time": t.isoformat().replace("+00:00", "Z"),
                    "precipitation_mm": rain if 0 < h <= 3 else 0.0,
                    "temperature_c": 20.0,
                    "relative_humidity_pct": 70.0,
                    "wind_speed_ms": 3.0,
                    "wind_gust_ms": 5.0,
                    "snowfall_water_mm": 0.0,
                    "visibility_m": 20000.0,
                    "pm25_ugm3": None,
                }
            )
        )
    return rows


def _grade(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, lines: list[str], now: datetime, *extra: str
) -> list[dict]:
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert main(["grade", "--now", now.isoformat(), *extra, str(path)]) == 0
    return [json.loads(x) for x in capsys.readouterr().out.splitlines()]


def test_mixed_records_give_one_line_per_warning_with_its_explanation(
    alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quakes = _parse(capsys, "cenc", DATA / "cenc" / "catalogs_current.json")
    tsunami = _parse(capsys, "cap", DATA / "cap" / "wcatwc-warning.cap")
    now = datetime(2021, 5, 21, 18, 30, tzinfo=UTC)  # 26 min after Maduo M7.4
    weather = _weather_lines(now, 9.0)  # 27 mm in 3 h: orange only in Ganzi's override
    out = _grade(capsys, tmp_path, quakes + tsunami + weather, now)
    assert all(set(w) >= KEYS for w in out)
    by = {(w["hazard"], w["location_id"]): w for w in out}
    national = by[("earthquake", "CN")]
    assert (national["level"], national["value"], national["threshold"]) == ("red", 7.4, 7.0)
    assert national["source_ref"] == "CC1621620240000" and national["intensity"] is None
    golog = by[("earthquake", "632600")]
    assert golog["level"] == "red" and golog["intensity"] >= 9.5
    assert golog["exposed_population"] > 0
    rain = by[("rainstorm", "513300")]
    assert rain["level"] == "orange" and rain["rule_id"].endswith("@sichuan-ganzi-aba-rainstorm")
    assert rain["window_h"] == 3 and rain["threshold"] == 25
    assert rain["reached_at"] == "2021-05-21T21:30:00Z"
    assert not any(h == "tsunami" for h, _ in by)  # the 2011 tsunami warning expired long ago
    # only events that had happened by --now: the 2022-2026 quakes are not graded
    assert {w["source_ref"] for w in out if w["hazard"] == "earthquake"} == {"CC1621620240000"}


def test_only_the_highest_level_per_hazard_location_and_event(
    alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime(2026, 7, 20, tzinfo=UTC)
    out = _grade(capsys, tmp_path, _weather_lines(now, 40.0), now)  # 120 mm in 3 h
    assert [(w["hazard"], w["level"]) for w in out] == [("rainstorm", "red")]


def test_a_rules_folder_changes_the_numbers(
    alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    data = yaml.safe_load((packaged_rules_dir() / "weather.yaml").read_text())
    data["overrides"] = []
    data["version"] = "test-r9"
    (rules / "weather.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    now = datetime(2026, 7, 20, tzinfo=UTC)
    out = _grade(capsys, tmp_path, _weather_lines(now, 9.0), now, "--rules", str(rules))
    assert out == []  # without the Ganzi override 27 mm is no rainstorm
    out = _grade(capsys, tmp_path, _weather_lines(now, 17.0), now, "--rules", str(rules))
    assert [(w["level"], w["ruleset_version"]) for w in out] == [("orange", "test-r9")]


def test_a_bad_line_exits_2_naming_it(
    alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"hazard": 1}\nnot json\n')
    assert main(["grade", str(path)]) == 2
    assert "line 2" in capsys.readouterr().err


def _official(**row: object) -> pd.DataFrame:
    base = {c: None for c in OFFICIAL_COLUMNS}
    base.update(
        source="cap",
        identifier="X1",
        sender="cma",
        status="Actual",
        msg_type="Alert",
        language="zh-CN",
        event="暴雨预警",
        category="Met",
        severity="Severe",
        sent=pd.Timestamp("2026-07-20T00:00Z"),
        area_desc="成都市",
        geocodes={},
        references=[],
    )
    base.update(row)
    return pd.DataFrame([base])


NOW = datetime(2026, 7, 20, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({}, ("rainstorm", "orange")),  # severity Severe
        ({"level": "red"}, ("rainstorm", "red")),  # a stated colour wins
        ({"severity": "Minor"}, ("rainstorm", "blue")),
        ({"severity": "Unknown"}, None),
        ({"event": "雷电黄色预警", "level": "yellow"}, ("lightning", "yellow")),
        ({"event": "冰雹橙色预警", "level": "orange"}, ("hail", "orange")),
        ({"event": "Drought", "severity": "Extreme"}, ("drought", "red")),
        ({"event": "warning", "geocodes": {"eventCode": ["11B15"]}}, None),  # not a geocode
        ({"event": "warning", "event_codes": {"GB/T 35965.1": ["11B15"]}}, ("hail", "orange")),
        ({"msg_type": "Cancel"}, None),
        ({"status": "Exercise"}, None),
        ({"expires": pd.Timestamp("2026-07-20T00:30Z")}, None),  # already over
        ({"event": "Volcanic ash"}, None),
        ({"source": "gdacs", "event_type": "TC", "level": None, "severity": "Minor"}, None),
        ({"source": "gdacs", "event_type": "TC", "level": "orange"}, ("typhoon", "orange")),
    ],
)
def test_official_colour_and_hazard(row: dict, expected: tuple[str, str] | None) -> None:
    got = grade_official(_official(**row), load_rules().official, NOW)
    assert [(w.hazard.value, w.level.colour) for w in got] == ([expected] if expected else [])


def test_official_adcode_geocodes_become_regions_and_languages_merge() -> None:
    frame = pd.concat(
        [
            _official(geocodes={"adcode": ["510100", "510104"]}, language="zh-CN"),
            _official(
                geocodes={"adcode": ["510100", "510104"]}, language="en-US", event="Rainstorm"
            ),
        ]
    )
    got = grade_official(frame, load_rules().official, NOW)
    assert sorted(w.region_code for w in got) == ["510100", "510104"]
