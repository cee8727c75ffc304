"""The 72-hour risk outlook: highest levels, near-threshold risks, summaries, seasons, CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alerts.cli import main
from alerts.criteria import RuleFileError, load_rule_file, packaged_rules_dir
from alerts.criteria.weather import WeatherRules, to_grid
from alerts.model import Hazard
from alerts.outlook import (
    NearThreshold,
    Outlook,
    Risk,
    active_seasonal,
    build_outlook,
    load_outlook_rules,
    place_names,
)
from alerts.publicity import load_calendar
from alerts.regions import load_regions

NOW = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)  # 08:00 in Beijing
RULES = load_rule_file(packaged_rules_dir() / "weather.yaml", WeatherRules)
FIXTURE = Path(__file__).parent / "data" / "openmeteo" / "forecast_72h.json"
BASE = {
    "precipitation_mm": 0.0,
    "snowfall_water_mm": 0.0,
    "temperature_c": 25.0,
    "relative_humidity_pct": 60.0,
    "wind_speed_ms": 2.0,
    "wind_gust_ms": 4.0,
    "visibility_m": 20000.0,
    "pm25_ugm3": 10.0,
}
R = "precipitation_mm"


def place(location: str, **series: list[tuple[int, int, float]]) -> pd.DataFrame:
    """Hourly rows for one location; series[var] = [(a, b, v)]: hours ending in (now+a, now+b]."""
    offsets = np.arange(-47, 97)
    data: dict[str, Any] = {
        "source": "open-meteo",
        "location_id": location,
        "latitude": 30.0,
        "longitude": 104.0,
        "time": pd.DatetimeIndex([NOW + timedelta(hours=int(h)) for h in offsets]),
    }
    for var, value in BASE.items():
        col = np.full(len(offsets), value, dtype=float)
        for a, b, v in series.get(var, []):
            col[(offsets > a) & (offsets <= b)] = v
        data[var] = col
    return pd.DataFrame(data)


def outlook(*places: pd.DataFrame, **kw: Any) -> Outlook:
    kw.setdefault("names", place_names(load_regions()))
    return build_outlook(pd.concat(places, ignore_index=True), RULES, NOW, **kw)


def risks(o: Outlook, code: str) -> dict[Hazard, Risk]:
    (p,) = [p for p in o.prefectures if p.code == code]
    return {r.hazard: r for r in p.risks}


# -- near-threshold --


@pytest.mark.parametrize(
    ("rain", "level", "near", "ratio"),
    [
        ([(24, 32, 5.0)], None, True, 0.8),  # 40 mm in 8 h: 80 % of the 50 mm / 12 h blue
        ([(24, 30, 5.0)], None, None, None),  # 30 mm: 60 %, nothing
        ([(24, 35, 5.0)], 1, False, 1.1),  # 55 mm in 11 h: blue itself, not near
    ],
)
def test_near_threshold_rain_is_a_share_of_the_blue_threshold(
    rain: list[tuple[int, int, float]], level: int | None, near: bool | None, ratio: float | None
) -> None:
    found = risks(outlook(place("510100", **{R: rain})), "510100").get(Hazard.RAINSTORM)
    if near is None:
        assert found is None
        return
    assert found is not None
    assert (found.level, found.near, found.ratio) == (level, near, ratio)
    assert found.threshold == 50.0 and found.variable == "rain_mm"
    if near:
        assert found.value == 40.0 and found.rule_id == "rainstorm.blue~near"
        assert found.window_h == 12.0
        # the outlook file's share decides: at 85 % the same rain is not near
        stricter = outlook(place("510100", **{R: rain}), near=NearThreshold(share=0.85))
        assert Hazard.RAINSTORM not in risks(stricter, "510100")


def test_near_threshold_gale_gusts() -> None:
    o = outlook(place("510100", wind_gust_ms=[(10, 13, 11.0)]), place("510700"))
    gale = risks(o, "510100")[Hazard.GALE]
    assert gale.near and gale.level is None
    assert (gale.variable, gale.value, gale.threshold, gale.ratio) == (
        "wind_gust_ms",
        11.0,
        13.9,
        0.79,
    )
    assert gale.peak_at == NOW + timedelta(hours=11)
    assert risks(o, "510700") == {}
    real = outlook(place("510100", wind_gust_ms=[(10, 13, 14.0)]))
    assert risks(real, "510100")[Hazard.GALE].level == 1  # a gust of force 7: blue, not near


@pytest.mark.parametrize(("visibility", "near"), [(600.0, True), (800.0, False)])
def test_near_threshold_visibility_below_rule_is_inverted(visibility: float, near: bool) -> None:
    fog = place(
        "510100", visibility_m=[(10, 12, visibility)], relative_humidity_pct=[(-48, 96, 95.0)]
    )
    found = risks(outlook(fog), "510100")
    assert Hazard.HAZE not in found  # humidity is never relaxed: fog does not turn into haze
    if not near:
        assert Hazard.FOG not in found  # 800 m is beyond 500 / 0.7 = 714 m
        return
    r = found[Hazard.FOG]
    assert (r.near, r.level, r.value, r.threshold) == (True, None, 600.0, 500.0)
    assert r.ratio == 0.83  # 500 / 600: the closer to the limit from above, the higher


@pytest.mark.parametrize(("tmax", "near"), [(33.0, True), (31.0, False)])
def test_near_threshold_heat_uses_a_margin_in_degrees(tmax: float, near: bool) -> None:
    found = risks(outlook(place("510700", temperature_c=[(-48, 96, tmax)])), "510700")
    if not near:
        assert found == {}  # 31 °C is more than the 3 °C margin below 35 °C
        return
    heat = found[Hazard.HEAT]
    assert (heat.near, heat.level, heat.value, heat.threshold) == (True, None, 33.0, 35.0)
    assert heat.ratio == 0.94 and heat.window_h == 72.0 and heat.rule_id == "heat.yellow~near"


def test_near_threshold_follows_regional_overrides() -> None:
    rain = {R: [(24, 32, 2.5)]}  # 20 mm in 8 h
    o = outlook(place("513300", **rain), place("510100", **rain))
    ganzi = risks(o, "513300")[Hazard.RAINSTORM]
    assert ganzi.near and ganzi.threshold == 25.0 and ganzi.ratio == 0.8
    assert ganzi.rule_id == "rainstorm.blue@sichuan-ganzi-aba-rainstorm~near"
    assert risks(o, "510100") == {}  # 20 of 50 mm in Chengdu


# -- the highest level over 72 hours --


def test_the_highest_level_over_72_hours_with_its_peak_on_day_three() -> None:
    rain = {R: [(4, 15, 5.0), (54, 59, 12.0)]}  # day 1: 55 mm in 11 h; day 3: 60 mm in 5 h
    r = risks(outlook(place("510100", **rain)), "510100")[Hazard.RAINSTORM]
    assert (r.level, r.near, r.rule_id) == (2, False, "rainstorm.yellow")
    assert r.peak_at == NOW + timedelta(hours=59)  # 50 mm reached in the hour ending then
    assert (r.value, r.threshold, r.window_h) == (60.0, 50.0, 6.0)
    twice = {R: [(6, 11, 12.0), (54, 59, 12.0)]}  # yellow on day 1 and on day 3
    r = risks(outlook(place("510100", **twice)), "510100")[Hazard.RAINSTORM]
    assert r.level == 2 and r.peak_at == NOW + timedelta(hours=11)  # a tie: the earliest
    beyond = risks(outlook(place("510100", **{R: [(73, 78, 12.0)]})), "510100")
    assert beyond == {}  # after now + 72 h: outside the outlook


# -- summaries, scope, JSON --


def _four() -> Outlook:
    return outlook(
        place("513300"),
        place("511800", **{R: [(30, 38, 4.5)]}),  # 36 mm: near, 0.72
        place("440100", wind_gust_ms=[(10, 13, 12.0)]),  # near gale, 0.86
        place("510100", **{R: [(24, 28, 13.0)]}),  # 52 mm in 4 h: yellow
    )


def test_prefecture_and_province_summaries() -> None:
    d = _four().to_json()
    assert d["level"] == 2 and d["scope"] is None
    assert [p["code"] for p in d["prefectures"]] == ["510100", "440100", "511800", "513300"]
    chengdu = d["prefectures"][0]
    assert (chengdu["name"], chengdu["province"], chengdu["province_name"]) == (
        "成都市",
        "510000",
        "四川省",
    )
    assert chengdu["level"] == 2 and chengdu["risks"][0]["hazard"] == "rainstorm"
    assert d["prefectures"][3]["risks"] == [] and d["prefectures"][3]["level"] == 0
    assert [(p["code"], p["name"], p["level"]) for p in d["provinces"]] == [
        ("510000", "四川省", 2),
        ("440000", "广东省", 0),
    ]
    (rain,) = d["provinces"][0]["hazards"]
    assert rain["prefectures"] == ["510100", "511800"]
    assert (rain["level"], rain["near"], rain["value"], rain["ratio"]) == (2, False, 52.0, 1.04)
    (gale,) = d["provinces"][1]["hazards"]
    assert (gale["hazard"], gale["level"], gale["near"], gale["prefectures"]) == (
        "gale",
        None,
        True,
        ["440100"],
    )
    # charts for the prefectures at risk (at most chart_limit), hourly from now
    charted = [p["code"] for p in d["prefectures"] if p["series"]]
    assert charted == ["510100", "440100", "511800"]
    series = d["prefectures"][0]["series"]
    assert series["time"][0] == "2026-07-20T01:00:00Z" and len(series["time"]) == 72
    assert series["precipitation_mm"][24:28] == [13.0] * 4
    assert set(series) == {"time", "precipitation_mm", "temperature_c", "wind_gust_ms"}
    limited = outlook(place("511800", **{R: [(30, 38, 4.5)]}), place("510100"), chart_limit=1)
    assert [p.code for p in limited.prefectures if p.series] == ["511800"]


def test_nothing_at_risk_still_charts_the_first_prefecture() -> None:
    o = outlook(place("513300"), place("510100"))
    assert o.level == 0 and o.provinces() == []
    assert [(p.code, p.series is not None) for p in o.prefectures] == [
        ("510100", True),
        ("513300", False),
    ]


def test_scoped_keeps_the_prefix_and_recomputes_provinces_and_level() -> None:
    rules = load_outlook_rules()
    seasonal = active_seasonal(NOW, rules, load_calendar())
    whole = outlook(
        place("513300"),
        place("511800", **{R: [(30, 38, 4.5)]}),
        place("440100", wind_gust_ms=[(10, 13, 12.0)]),
        place("510100", **{R: [(24, 28, 13.0)]}),
        seasonal=seasonal,
    )
    assert "typhoon_season" in [s["id"] for s in whole.seasonal]  # Guangzhou is in it
    gd = whole.scoped("44").to_json()
    assert gd["scope"] == {"code": "44", "name": "广东省"} and gd["level"] == 0
    assert [p["code"] for p in gd["prefectures"]] == ["440100"]
    assert [p["code"] for p in gd["provinces"]] == ["440000"]
    sc = whole.scoped("510000")
    assert sc.scope == {"code": "51", "name": "四川省"} and sc.level == 2
    assert "typhoon_season" not in [s["id"] for s in sc.seasonal]
    assert "summer_heat" in [s["id"] for s in sc.seasonal]
    ganzi = whole.scoped("5133")
    assert ganzi.scope == {"code": "5133", "name": "甘孜藏族自治州"}
    assert [p.code for p in ganzi.prefectures] == ["513300"] and ganzi.provinces() == []
    with pytest.raises(ValueError, match="unknown region '45'"):
        whole.scoped("45")
    with pytest.raises(ValueError, match="bad adcode prefix"):
        whole.scoped("5")


def test_series_for_gives_each_scope_its_charts() -> None:
    places = [place("440100", wind_gust_ms=[(10, 13, 12.0)])] + [
        place(code, **{R: [(30, 38, 4.5)]}) for code in ("510100", "510700", "511100")
    ]
    plain = outlook(*places, chart_limit=1)
    assert [p.code for p in plain.prefectures if p.series] == ["440100"]
    assert all(p.series is None for p in plain.scoped("51").prefectures)
    both = outlook(*places, chart_limit=1, series_for=["51"])
    assert [p.code for p in both.scoped("51").prefectures if p.series] == ["510100"]


def test_json_round_trip_and_shape() -> None:
    o = _four()
    d = o.to_json()
    json.dumps(d, ensure_ascii=False)  # plain JSON
    assert Outlook.from_json(json.loads(json.dumps(d))).to_json() == d
    assert set(d) == {
        "kind", "issued_at", "start", "end", "hours", "timezone", "rule_set_version",
        "near_share", "scope", "level", "provinces", "prefectures", "seasonal",
    }  # fmt: skip
    assert (d["kind"], d["issued_at"], d["start"], d["end"]) == (
        "outlook",
        "2026-07-20T00:00:00Z",
        "2026-07-20T00:00:00Z",
        "2026-07-23T00:00:00Z",
    )
    assert (d["hours"], d["timezone"], d["near_share"]) == (72, "Asia/Shanghai", 0.7)
    assert d["rule_set_version"] == RULES.version
    assert set(d["provinces"][0]) == {"code", "name", "level", "hazards"}
    assert set(d["provinces"][0]["hazards"][0]) == {
        "hazard", "level", "near", "peak_at", "value", "threshold", "variable", "ratio",
        "prefectures",
    }  # fmt: skip
    assert set(d["prefectures"][0]) == {
        "code", "name", "province", "province_name", "level", "risks", "series",
    }  # fmt: skip
    assert set(d["prefectures"][0]["risks"][0]) == {
        "hazard", "level", "near", "peak_at", "value", "threshold", "variable", "ratio",
        "window_h", "rule_id",
    }  # fmt: skip
    scoped = o.scoped("51").to_json()
    assert Outlook.from_json(scoped).to_json() == scoped


def test_a_grid_gives_the_same_outlook_as_its_frame() -> None:
    frame = pd.concat(
        [place("513300", **{R: [(24, 32, 2.5)]}), place("510100", **{R: [(24, 28, 13.0)]})],
        ignore_index=True,
    )
    names = place_names(load_regions())
    from_frame = build_outlook(frame, RULES, NOW, names=names).to_json()
    assert build_outlook(to_grid(frame), RULES, NOW, names=names).to_json() == from_frame
    scoped = build_outlook(to_grid(frame), RULES, NOW, names=names, scope="5133").to_json()
    assert scoped["scope"] == {"code": "5133", "name": "甘孜藏族自治州"}
    assert [p["code"] for p in scoped["prefectures"]] == ["513300"]


def test_end_is_the_last_forecast_hour_when_data_ends_earlier() -> None:
    short = place("510100")
    short = short[short["time"] <= NOW + timedelta(hours=40)]
    d = build_outlook(short, RULES, NOW).to_json()
    assert d["end"] == "2026-07-21T16:00:00Z" and d["hours"] == 72


# -- the seasonal calendar --


def _ids(when: datetime, region: str | None = None) -> list[str]:
    return [r.id for r in active_seasonal(when, load_outlook_rules(), load_calendar(), region)]


def test_seasonal_calendar_summer_and_winter() -> None:
    summer = _ids(datetime(2026, 7, 20, 0, tzinfo=UTC))
    assert {"summer_drowning", "summer_heat", "flood_season"} <= set(summer)
    assert not {"winter_gas_poisoning", "winter_fire", "spring_wildfire"} & set(summer)
    winter = _ids(datetime(2027, 1, 10, 2, tzinfo=UTC))
    assert {"winter_gas_poisoning", "winter_fire", "winter_road_icing"} <= set(winter)
    assert not {"summer_drowning", "summer_heat", "typhoon_season"} & set(winter)
    # local (Beijing) dates: 2026-05-31T16:30Z is already 1 June
    assert "flood_season" in _ids(datetime(2026, 5, 31, 16, 30, tzinfo=UTC))
    assert "flood_season" not in _ids(datetime(2026, 5, 31, 15, 30, tzinfo=UTC))
    # its own ranges besides the publicity period: the heating season runs into March
    assert "winter_gas_poisoning" in _ids(datetime(2027, 3, 10, 2, tzinfo=UTC))
    assert "spring_wildfire" in _ids(datetime(2027, 3, 10, 2, tzinfo=UTC))


def test_seasonal_regions_typhoon_only_on_the_coast_and_the_early_southern_floods() -> None:
    august = datetime(2026, 8, 1, 2, tzinfo=UTC)
    assert "typhoon_season" in _ids(august)  # national: the coast is part of it
    for coastal in ("44", "4403", "35", "31", "81"):
        assert "typhoon_season" in _ids(august, coastal), coastal
    for inland in ("51", "5133", "11", "62"):
        assert "typhoon_season" not in _ids(august, inland), inland
    april = datetime(2026, 4, 15, 2, tzinfo=UTC)
    assert "flood_season_south_early" in _ids(april, "44")
    assert "flood_season_south_early" not in _ids(april, "51")
    assert "flood_season" not in _ids(april, "44")


def test_seasonal_risk_with_an_unknown_period_is_an_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "outlook.yaml"
    bad.write_text(
        "version: t\nseasonal:\n"
        "  - {id: monsoon_rain, zh: 季风, en: monsoon, periods: [monsoon], hazards: [rainstorm],"
        " advice_zh: 注意。, advice_en: Take care.}\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleFileError, match=r"seasonal\.monsoon_rain\.periods: unknown period "):
        load_outlook_rules(bad)
    bad.write_text(
        "version: t\nseasonal:\n  - {id: nothing_when, zh: 无, en: none, advice_zh: 无。,"
        " advice_en: None.}\n",
        encoding="utf-8",
    )
    with pytest.raises(RuleFileError, match=r"seasonal\.nothing_when.*periods.*recurring"):
        load_outlook_rules(bad)
    bad.write_text("version: t\nnear_threshold: {share: 1.5}\n", encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"near_threshold\.share"):
        load_outlook_rules(bad)


def test_the_packaged_file_has_the_required_seasonal_risks() -> None:
    rules = load_outlook_rules()
    assert rules.near_threshold.share == 0.7 and rules.chart_limit == 6
    assert rules.near_threshold.margins == {"temperature_c": 3.0}
    assert {
        "summer_drowning", "summer_heat", "winter_gas_poisoning", "winter_fire", "flood_season",
        "flood_season_south_early", "typhoon_season", "spring_wildfire", "winter_road_icing",
    } <= set(rules.seasonal)  # fmt: skip
    assert set(rules.seasonal["typhoon_season"].regions) == {
        "44", "45", "46", "35", "33", "31", "32", "37", "21", "12", "13", "71", "81", "82",
    }  # fmt: skip


# -- the CLI --


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["outlook", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_outlook_of_a_local_forecast(
    alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = _cli(capsys, "--now", "2026-07-20T07:00:00+08:00", "--input", str(FIXTURE))
    assert d["issued_at"] == "2026-07-19T23:00:00Z" and d["level"] == 2
    by_code = {p["code"]: p for p in d["prefectures"]}
    assert set(by_code) == {"510100", "511800", "513200", "513300", "510700", "511100"}
    assert d["prefectures"][0]["code"] == "510100"
    (rain,) = by_code["510100"]["risks"]
    assert (rain["hazard"], rain["level"], rain["near"]) == ("rainstorm", 2, False)
    (near_rain,) = by_code["511800"]["risks"]
    assert (near_rain["hazard"], near_rain["level"], near_rain["near"]) == ("rainstorm", None, True)
    assert 0.7 <= near_rain["ratio"] < 1
    (heat,) = by_code["510700"]["risks"]
    assert (heat["hazard"], heat["near"], heat["threshold"]) == ("heat", True, 35.0)
    for quiet in ("513200", "513300", "511100"):
        assert by_code[quiet]["risks"] == []
    assert {"summer_drowning", "summer_heat"} <= {s["id"] for s in d["seasonal"]}
    assert "typhoon_season" not in {s["id"] for s in d["seasonal"]}  # Sichuan only

    scoped = _cli(
        capsys, "--now", "2026-07-19T23:00:00Z", "--input", str(FIXTURE), "--region", "5133"
    )
    assert scoped["scope"] == {"code": "5133", "name": "甘孜藏族自治州"}
    assert [p["code"] for p in scoped["prefectures"]] == ["513300"]
    assert scoped["level"] == 0 and scoped["provinces"] == []

    # the request's locations given: the same answer, mapped by order
    locations = tmp_path / "locations.json"
    locations.write_text(json.dumps(["510100", "511800", "513200", "513300", "510700", "511100"]))
    again = _cli(
        capsys, "--now", "2026-07-19T23:00:00Z", "--input", str(FIXTURE),
        "--locations", str(locations),
    )  # fmt: skip
    assert again == d


def test_cli_outlook_errors(
    alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["outlook", "--now", "2026-07-20T07:00:00", "--input", str(FIXTURE)])
    assert exit_.value.code != 0
    assert "give a time zone" in capsys.readouterr().err
    assert (
        main(["outlook", "--now", "2026-07-20T00:00Z", "--input", str(FIXTURE), "--region", "44"])
        == 2
    )
    assert "unknown region '44'" in capsys.readouterr().err
    bad = tmp_path / "outlook.yaml"
    bad.write_text("version: t\nchart_limit: 0\n", encoding="utf-8")
    monkeypatch.setenv("ALERTS_OUTLOOK__RULES_FILE", str(bad))
    assert main(["outlook", "--now", "2026-07-20T00:00Z", "--input", str(FIXTURE)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alerts: error: rule file") and "chart_limit" in err


# -- from the store --


def test_compute_fetches_stale_batches_and_reuses_fresh_ones(
    alerts_env: Path, tmp_path: Path, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from alerts.config import load_settings
    from alerts.feeds.fetch import FetchError
    from alerts.outlook import compute
    from alerts.pipeline import Runtime

    now = datetime(2026, 7, 19, 23, 0, tzinfo=UTC)
    locations = tmp_path / "locations.json"
    locations.write_text(json.dumps(["510100", "511800", "513200", "513300", "510700", "511100"]))
    monkeypatch.setenv("ALERTS_FEEDS__LOCATIONS_FILE", str(locations))
    monkeypatch.setenv("ALERTS_FEEDS__OPENMETEO_URL", FIXTURE.as_uri())
    # the air-quality answer is missing: the outlook goes on without PM2.5
    monkeypatch.setenv("ALERTS_FEEDS__AIR_QUALITY_URL", (tmp_path / "absent.json").as_uri())
    monkeypatch.setenv("ALERTS_OUTLOOK__REGIONS", '["5133"]')
    rt = Runtime.from_settings(load_settings(), clock=lambda: now)
    try:
        with pytest.raises(FetchError, match="batch"):
            compute(rt, now, fetch=False)  # nothing stored yet
        first = compute(rt, now)
        state = rt.store.feed_state("open-meteo:forecast:0")
        assert state is not None and state.last_payload_id is not None
        assert first.level == 2 and {p.code for p in first.prefectures} == {
            "510100", "511800", "513200", "513300", "510700", "511100",
        }  # fmt: skip
        # series_for the configured regions: Ganzi (quiet) still gets its chart
        assert first.scoped("5133").prefectures[0].series is not None
        # fresh: not fetched again, the same outlook
        attempts = state.last_attempt_at
        assert compute(rt, now + timedelta(hours=2), region="51").level == 2
        after = rt.store.feed_state("open-meteo:forecast:0")
        assert after is not None and after.last_attempt_at == attempts
        # stale and not to be fetched: the old forecast still covers hours ahead, used (logged)
        with caplog.at_level("WARNING", logger="alerts.outlook"):
            late = compute(rt, now + timedelta(hours=30), fetch=False)
        assert "used as it is" in caplog.text
        assert late.issued_at == now + timedelta(hours=30)
        with pytest.raises(ValueError, match="unknown region"):
            compute(rt, now, region="44")
    finally:
        rt.close()


def test_compute_takes_current_cyclones_from_the_stored_gdacs_feed(
    alerts_env: Path, data: Path, monkeypatch: Any
) -> None:
    from alerts.config import load_settings
    from alerts.outlook import stored_cyclones
    from alerts.pipeline import Runtime, store_payload

    now = datetime(2026, 7, 19, 23, 0, tzinfo=UTC)
    rt = Runtime.from_settings(load_settings(), clock=lambda: now)
    try:
        assert stored_cyclones(rt, now) == []  # no GDACS feed yet
        body = (data / "gdacs" / "gdacs-rss-1.xml").read_bytes()  # one current cyclone
        url = "https://www.gdacs.org/xml/rss.xml"
        pid = store_payload(rt, "gdacs", body, url=url, fetched_at=now - timedelta(hours=2))
        rt.store.record_fetch("gdacs", source="gdacs", url=url, now=now, payload_id=pid)
        assert stored_cyclones(rt, now) == [(-19.4, 59.8)]
        assert stored_cyclones(rt, now + timedelta(days=2)) == []  # too old to trust
    finally:
        rt.close()


def test_near_a_cyclone_the_outlook_grades_typhoon_instead_of_gale() -> None:
    windy = place("440300", wind_speed_ms=[(10, 16, 20.0)])  # force 8 on day 1
    assert set(risks(outlook(windy), "440300")) == {Hazard.GALE}
    near = risks(outlook(windy, cyclones=[(30.5, 104.5)]), "440300")  # ~70 km away
    assert set(near) == {Hazard.TYPHOON}
    far = risks(outlook(windy, cyclones=[(-19.4, 59.8)]), "440300")  # the Indian Ocean
    assert set(far) == {Hazard.GALE}
