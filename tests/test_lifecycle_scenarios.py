"""Alerts over time through `alerts pipeline --now`: build-up, easing, all clear, flapping,
revisions and deletions, exercises, and every CAP document the cycles publish."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.cap_out import validate
from alerts.cli import main
from alerts.config import load_settings
from alerts.feeds import cap as cap_in
from alerts.pipeline import Runtime
from tests.feedtools import usgs_features, usgs_feed

T0 = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DATA = Path(__file__).parent / "data"


def _forecast(path: Path, now: datetime, rain: dict[int, float]) -> Path:
    """Open-Meteo answer for Chengdu: rain[h] mm in the hour ending now + h."""
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
            "precipitation": [rain.get(int((t - now) / HOUR), 0.0) for t in hours],
        },
    }
    path.write_text(json.dumps(doc))
    return path


RAIN = {  # rain that grades each level, over the next hours
    None: {},
    "blue": {h: 50 / 10 for h in range(1, 11)},
    "yellow": {h: 50 / 5 for h in range(1, 6)},
    "orange": {1: 20, 2: 20, 3: 15},
    "red": {1: 40, 2: 40, 3: 30},
}


class Cycle:
    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.capsys, self.n = tmp_path, capsys, 0

    def run(self, now: datetime, *inputs: str) -> dict:
        args = ["pipeline", "--now", now.isoformat()]
        for i in inputs:
            args += ["--input", i]
        assert main(args) == 0
        return json.loads(self.capsys.readouterr().out.strip().splitlines()[-1])

    def rain(self, now: datetime, level: str | None) -> dict:
        self.n += 1
        path = _forecast(self.tmp / f"f{self.n}.json", now, RAIN[level])
        return self.run(now, f"open-meteo={path}")

    def heads(self) -> list[str]:
        assert main(["outbox", "--json"]) == 0
        rows = [json.loads(x) for x in self.capsys.readouterr().out.splitlines()]
        return [r["body"].splitlines()[0] for r in reversed(rows)]


@pytest.fixture
def cycle(alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cycle:
    return Cycle(tmp_path, capsys)


def _all_cap_documents_validate() -> list[bytes]:
    rt = Runtime.from_settings(load_settings())
    try:
        docs = [rt.cap_document(p.identifier) for p in rt.store.publications()]
    finally:
        rt.close()
    for xml in docs:
        validate(xml)
        assert len(cap_in.parse(xml).frame) == 2  # zh-CN and en-US
    return docs


def test_rain_builds_up_eases_after_the_dwell_and_clears_after_the_clear_time(
    cycle: Cycle,
) -> None:
    t = T0
    for level in ("blue", "yellow", "orange", "red"):
        cycle.rain(t, level)
        t += HOUR
    # easing: orange is seen, but the red alert holds for the 60 min dwell
    assert cycle.rain(t, "orange")["updated"] == 0
    assert cycle.rain(t + timedelta(minutes=30), "orange")["updated"] == 0
    assert cycle.rain(t + HOUR, "orange")["updated"] == 1
    # stops: the all clear waits the 60 min clear time
    t += 2 * HOUR
    assert cycle.rain(t, None)["cancelled"] == 0
    assert cycle.rain(t + HOUR, None)["cancelled"] == 1
    assert cycle.heads() == [
        "【暴雨蓝色预警】四川省成都市",
        "【暴雨黄色预警·升级】四川省成都市",
        "【暴雨橙色预警·升级】四川省成都市",
        "【暴雨红色预警·升级】四川省成都市",
        "【暴雨橙色预警·降级】四川省成都市",
        "【暴雨橙色预警·解除】四川省成都市",
    ]
    docs = _all_cap_documents_validate()
    msg_types = [cap_in.parse(x).frame.iloc[0]["msg_type"] for x in docs]
    assert msg_types.count("Alert") == 1 and msg_types.count("Cancel") == 1


def test_a_flapping_forecast_gives_no_flapping_messages(cycle: Cycle) -> None:
    t = T0
    for level in ("red", "orange", "red", "orange", "red", "orange"):
        cycle.rain(t, level)
        t += timedelta(minutes=30)
    assert cycle.heads() == ["【暴雨红色预警】四川省成都市"]


def test_replaying_the_same_input_is_a_no_op(cycle: Cycle, tmp_path: Path) -> None:
    path = _forecast(tmp_path / "same.json", T0, RAIN["orange"])
    first = cycle.run(T0, f"open-meteo={path}")
    again = cycle.run(T0, f"open-meteo={path}")
    assert first["issued"] == 1
    assert (again["versions"], again["delivered"]) == (0, 0)


def _quake(tmp_path: Path, name: str, now: datetime, **props: object) -> str:
    (f,) = usgs_features(DATA / "usgs" / "china_dingri_4.5_day.geojson")
    f["properties"].update(props)
    path = tmp_path / name
    path.write_bytes(usgs_feed([f], newest=now - timedelta(minutes=10)))
    return f"usgs={path}"


def test_an_earthquake_revised_up_upgrades_then_its_deletion_cancels(
    cycle: Cycle, tmp_path: Path, national_only_rules: Path
) -> None:
    now = datetime(2026, 11, 29, 3, tzinfo=UTC)
    upd = 1736442321636
    cycle.run(now, _quake(tmp_path, "a.json", now, mag=6.6, updated=upd))
    assert cycle.run(now, _quake(tmp_path, "b.json", now, mag=7.1, updated=upd + 1))["updated"] == 1
    deleted = _quake(tmp_path, "c.json", now, mag=7.1, updated=upd + 2, status="deleted")
    assert cycle.run(now, deleted)["cancelled"] == 1
    assert cycle.heads() == [
        "【地震橙色预警】西藏自治区日喀则市6.6级地震",
        "【地震红色预警·升级】西藏自治区日喀则市7.1级地震",
        "【地震红色预警·解除】西藏自治区日喀则市7.1级地震",
    ]
    docs = _all_cap_documents_validate()
    first, upgrade, cancel = (cap_in.parse(x).frame.iloc[0] for x in docs[::-1])
    assert upgrade["references"] == [
        f"alerts@example.gov.cn,{first['identifier']},"
        f"{first['sent'].tz_convert('Asia/Shanghai').isoformat()}"
    ]
    assert cancel["msg_type"] == "Cancel" and cancel["severity"] == "Extreme"


def test_exercise_alerts_are_marked_and_never_reach_public_channels(
    cycle: Cycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERTS_LIFECYCLE__STATUS", "Exercise")
    monkeypatch.setenv(
        "ALERTS_CHANNELS",
        json.dumps(
            [
                {"name": "public-outbox", "type": "outbox", "recipients": ["public"]},
                {
                    "name": "drill-room",
                    "type": "outbox",
                    "recipients": ["duty"],
                    "audience": "internal",
                },
            ]
        ),
    )
    summary = cycle.rain(T0, "red")
    assert summary["delivered"] == 1
    assert main(["outbox", "--json"]) == 0
    (msg,) = [json.loads(x) for x in cycle.capsys.readouterr().out.splitlines()]
    assert msg["channel"] == "drill-room" and msg["body"].startswith("【演练】【暴雨红色预警】")
    (xml,) = _all_cap_documents_validate()
    assert b"<status>Exercise</status>" in xml and "演练".encode() in xml


def test_an_imported_cap_warning_keeps_its_reference_severity_and_area(
    cycle: Cycle,
) -> None:
    sent = datetime(2011, 9, 2, 11, 40, tzinfo=UTC)
    cycle.run(sent, f"cap={DATA / 'cap' / 'wcatwc-warning.cap'}")
    original = cap_in.parse((DATA / "cap" / "wcatwc-warning.cap").read_bytes()).frame.iloc[0]
    (xml,) = _all_cap_documents_validate()
    out = cap_in.parse(xml).frame.iloc[0]
    assert f"{original['sender']},{original['identifier']}," in " ".join(out["references"])
    assert out["severity"] == original["severity"] == "Extreme"
    assert out["area_desc"] == original["area_desc"]
    assert out["geocodes"] == original["geocodes"]


def test_an_operator_cancel_is_audited_and_not_reissued_at_that_level(
    cycle: Cycle, capsys: pytest.CaptureFixture[str]
) -> None:
    cycle.rain(T0, "orange")
    assert main(["list", "--active", "--json"]) == 0
    (listed,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (listed["hazard"], listed["level"], listed["state"]) == ("rainstorm", "orange", "active")
    alert_id = listed["id"]
    assert main(["cancel", alert_id, "--reason", "雨已停，现场核实", "--by", "duty"]) == 0
    capsys.readouterr()
    assert cycle.rain(T0 + timedelta(minutes=20), "orange")["issued"] == 0
    assert cycle.rain(T0 + timedelta(minutes=40), "red")["issued"] == 1  # worse: issued again
    assert main(["show", alert_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["actor"] for e in shown["audit"]] == ["pipeline", "operator:duty", "pipeline"]
    assert [v["action"] for v in shown["versions"]] == ["issue", "cancel", "issue"]


def test_an_authoritys_update_continues_its_alert_and_its_cancel_lifts_it(
    cycle: Cycle, tmp_path: Path
) -> None:
    raw = (DATA / "cap" / "wcatwc-warning.cap").read_text(encoding="utf-8")
    first = (
        raw.replace("PAAQ-2-lqw6d6", "PAAQ-1-lqw6d6")
        .replace("<msgType>Update</msgType>", "<msgType>Alert</msgType>")
        .replace("<references>PAAQ,PAAQ-1-lqw6d6,2011-09-02T10:55:55-00:00</references>", "")
        .replace("<severity>Extreme</severity>", "<severity>Severe</severity>")
    )
    cancel = (
        raw.replace("PAAQ-2-lqw6d6", "PAAQ-3-lqw6d6")
        .replace("<msgType>Update</msgType>", "<msgType>Cancel</msgType>")
        .replace("PAAQ-1-lqw6d6,2011-09-02T10:55:55", "PAAQ-2-lqw6d6,2011-09-02T11:36:50")
    )
    paths = {}
    for name, text in (("a.cap", first), ("b.cap", raw), ("c.cap", cancel)):
        paths[name] = tmp_path / name
        paths[name].write_text(text, encoding="utf-8")
    when = datetime(2011, 9, 2, 11, 40, tzinfo=UTC)
    assert cycle.run(when, f"cap={paths['a.cap']}")["issued"] == 1
    upgraded = cycle.run(when, f"cap={paths['b.cap']}")
    assert (upgraded["issued"], upgraded["updated"]) == (0, 1)
    assert cycle.run(when, f"cap={paths['c.cap']}")["cancelled"] == 1
    assert cycle.heads() == [
        "【海啸橙色预警】Coastal areas between and including Unimak Pass, Alaska (80 miles NE of "
        "Dutch Harbor) to Amchitka Pass, Alaska (125 miles W of Adak)",
        "【海啸红色预警·升级】Coastal areas between and including Unimak Pass, Alaska (80 miles "
        "NE of Dutch Harbor) to Amchitka Pass, Alaska (125 miles W of Adak)",
        "【海啸红色预警·解除】Coastal areas between and including Unimak Pass, Alaska (80 miles "
        "NE of Dutch Harbor) to Amchitka Pass, Alaska (125 miles W of Adak)",
    ]
    _all_cap_documents_validate()
