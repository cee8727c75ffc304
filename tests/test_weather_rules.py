"""The weather engine against every national rule: at, just below and just above each threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.criteria import RuleFileError, load_rule_file, packaged_rules_dir
from alerts.criteria.weather import WeatherRules, grade_weather
from alerts.model import Hazard, Level

NOW = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)  # 08:00 in Beijing
RULES = load_rule_file(packaged_rules_dir() / "weather.yaml", WeatherRules)
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


def frame(
    location: str = "110100",
    now: datetime = NOW,
    hours: tuple[int, int] = (-71, 96),
    base: dict[str, float] | None = None,
    **series: list[tuple[int, int, float]],
) -> pd.DataFrame:
    """Hourly rows for one location; series[var] = [(a, b, v)]: hours ending in (now+a, now+b]."""
    offsets = np.arange(hours[0], hours[1] + 1)
    times = pd.DatetimeIndex([now + timedelta(hours=int(h)) for h in offsets])
    data: dict[str, object] = {
        "source": "open-meteo",
        "location_id": location,
        "latitude": 39.9,
        "longitude": 116.4,
        "time": times,
    }
    for var, value in {**BASE, **(base or {})}.items():
        col = np.full(len(offsets), value, dtype=float)
        for a, b, v in series.get(var, []):
            col[(offsets > a) & (offsets <= b)] = v
        data[var] = col
    return pd.DataFrame(data)


def level_of(df: pd.DataFrame, hazard: Hazard, now: datetime = NOW, **kw: object) -> str | None:
    found = [w for w in grade_weather(df, RULES, now, **kw) if w.hazard is hazard]  # type: ignore[arg-type]
    assert len(found) <= 1
    return found[0].level.colour if found else None


R = "precipitation_mm"


@pytest.mark.parametrize(
    ("rain", "expected"),
    [
        ([(0, 3, 50 / 3)], "orange"),  # 50.0 in 3 h: exactly at the threshold
        ([(0, 1, 49.9)], None),  # just below 50 in any window
        ([(0, 1, 50.1)], "orange"),
        ([(0, 4, 12.5)], "yellow"),  # 50 mm over 4 h: not 3 h, but 6 h
        ([(0, 6, 50 / 6)], "yellow"),
        ([(0, 7, 50 / 7)], "blue"),  # 50 over 7 h: only the 12 h window holds it
        ([(0, 12, 50 / 12)], "blue"),
        ([(0, 13, 50 / 13)], None),  # 12 h hold 46.2
        ([(0, 3, 100 / 3)], "red"),
        ([(0, 3, 99.9 / 3)], "orange"),
        ([(12, 15, 40)], None),  # 120 mm, but in hours ending after now + 12 h
    ],
)
def test_rainstorm_thresholds_and_windows(
    rain: list[tuple[int, int, float]], expected: str | None
) -> None:
    assert level_of(frame(**{R: rain}), Hazard.RAINSTORM) == expected


@pytest.mark.parametrize(
    ("past", "first_hour", "expected"),
    [
        (100 / 3, 0.5, "red"),  # 100 mm in the last 3 h and still raining: 已达且可能持续
        (100 / 3, 0.0, None),  # ...but it stopped
        (50 / 3, 0.1, "orange"),
        (49.9 / 3, 0.1, None),
    ],
)
def test_rainstorm_already_reached_and_continuing(
    past: float, first_hour: float, expected: str | None
) -> None:
    df = frame(**{R: [(-3, 0, past), (0, 1, first_hour)]})
    assert level_of(df, Hazard.RAINSTORM) == expected
    if expected:
        (w,) = [w for w in grade_weather(df, RULES, NOW) if w.hazard is Hazard.RAINSTORM]
        assert w.facts["basis"] == "observed" and w.reached_at is not None
        assert w.reached_at <= NOW


def test_snowfall_water_is_not_rain() -> None:
    df = frame(precipitation_mm=[(0, 3, 20)], snowfall_water_mm=[(0, 3, 5)])
    assert level_of(df, Hazard.RAINSTORM) is None  # 45 mm of rain
    assert level_of(df, Hazard.BLIZZARD) == "red"  # 15 mm water in 6 h


@pytest.mark.parametrize(
    ("snow", "expected"),
    [
        ([(0, 12, 4 / 12)], "blue"),
        ([(0, 12, 3.99 / 12)], None),
        ([(0, 12, 6 / 12)], "yellow"),
        ([(0, 6, 10 / 6)], "orange"),
        ([(0, 6, 9.9 / 6)], "yellow"),
        ([(0, 6, 15 / 6)], "red"),
    ],
)
def test_blizzard_thresholds(snow: list[tuple[int, int, float]], expected: str | None) -> None:
    df = frame(snowfall_water_mm=snow, precipitation_mm=snow)
    assert level_of(df, Hazard.BLIZZARD) == expected


@pytest.mark.parametrize(
    ("var", "value", "at", "expected"),
    [
        ("wind_speed_ms", 10.8, 20, "blue"),
        ("wind_speed_ms", 10.7, 20, None),
        ("wind_gust_ms", 13.9, 20, "blue"),
        ("wind_gust_ms", 13.8, 20, None),
        ("wind_speed_ms", 17.2, 5, "yellow"),
        ("wind_speed_ms", 17.2, 13, "blue"),  # outside the 12 h window
        ("wind_gust_ms", 20.8, 11, "yellow"),
        ("wind_speed_ms", 24.5, 6, "orange"),
        ("wind_speed_ms", 24.4, 6, "yellow"),
        ("wind_gust_ms", 28.5, 2, "orange"),
        ("wind_speed_ms", 32.7, 1, "red"),
        ("wind_gust_ms", 37.0, 6, "red"),
        ("wind_gust_ms", 36.9, 6, "orange"),
        ("wind_speed_ms", 50.0, 25, None),  # beyond every window
    ],
)
def test_gale_on_mean_or_gust(var: str, value: float, at: int, expected: str | None) -> None:
    df = frame(**{var: [(at - 1, at, value)]})
    assert level_of(df, Hazard.GALE) == expected
    assert level_of(df, Hazard.TYPHOON) is None


def test_near_an_active_cyclone_the_same_wind_grades_as_typhoon() -> None:
    df = frame(wind_gust_ms=[(3, 4, 33.0)])
    assert level_of(df, Hazard.GALE) == "orange"
    near = {"cyclones": [(41.0, 118.0)]}  # ~190 km away
    assert level_of(df, Hazard.TYPHOON, **near) == "orange"
    assert level_of(df, Hazard.GALE, **near) is None
    far = {"cyclones": [(20.0, 130.0)]}
    assert level_of(df, Hazard.TYPHOON, **far) is None
    assert level_of(df, Hazard.GALE, **far) == "orange"


def _cold(drop: float, tmin: float, wind: float, within: int = 24) -> pd.DataFrame:
    return frame(
        base={"temperature_c": tmin + drop},
        temperature_c=[(within - 1, within, tmin)],
        wind_speed_ms=[(0, within, wind)],
    )


@pytest.mark.parametrize(
    ("drop", "tmin", "wind", "within", "expected"),
    [
        (8, 4, 8.0, 40, "blue"),  # 48 h window
        (7.9, 4, 8.0, 40, None),
        (8, 4.1, 8.0, 40, None),
        (8, 4, 7.9, 40, None),
        (10, 4, 10.8, 20, "yellow"),
        (10, 4, 10.7, 20, "blue"),
        (12, 0, 10.8, 20, "orange"),
        (12, 0.1, 10.8, 20, "yellow"),
        (16, 0, 10.8, 24, "red"),
        (15.9, 0, 10.8, 24, "orange"),
        (16, 0, 10.8, 30, "blue"),  # the drop comes after 24 h: only the 48 h rule sees it
    ],
)
def test_cold_wave_needs_drop_minimum_and_wind(
    drop: float, tmin: float, wind: float, within: int, expected: str | None
) -> None:
    assert level_of(_cold(drop, tmin, wind, within), Hazard.COLD_WAVE) == expected


def _heat_days(maxima: list[float], hours_per_day: int = 24) -> pd.DataFrame:
    """Local days starting today (Beijing); each day's afternoon peaks at the given max."""
    local_midnight = datetime(2026, 7, 19, 16, 0, tzinfo=UTC)  # 2026-07-20 00:00 +08:00
    series = []
    for d, tmax in enumerate(maxima):
        start = int((local_midnight - NOW).total_seconds() // 3600) + 24 * d
        series.append((start + 14, start + 15, tmax))
    df = frame(temperature_c=series, base={"temperature_c": 30.0})
    if hours_per_day < 24:
        day2 = local_midnight + timedelta(days=1)
        keep = ~((df["time"] > day2) & (df["time"] <= day2 + timedelta(hours=24 - hours_per_day)))
        df = df[keep]
    return df


@pytest.mark.parametrize(
    ("maxima", "expected"),
    [
        ([35, 35, 35], "yellow"),
        ([35, 34.9, 35], None),
        ([36, 36], None),  # only two days known
        ([37, 30, 30], "orange"),  # 37 within 24 h
        ([40, 30, 30], "red"),
        ([39.9, 36, 36], "orange"),
    ],
)
def test_heat(maxima: list[float], expected: str | None) -> None:
    df = _heat_days(maxima)
    if len(maxima) < 3:
        df = df[df["time"] <= datetime(2026, 7, 21, 16, tzinfo=UTC)]
    assert level_of(df, Hazard.HEAT) == expected


def test_heat_day_with_too_few_hours_does_not_count() -> None:
    assert level_of(_heat_days([35, 35, 35], hours_per_day=17), Hazard.HEAT) is None
    assert level_of(_heat_days([35, 35, 35], hours_per_day=18), Hazard.HEAT) == "yellow"


@pytest.mark.parametrize(
    ("vis", "at", "expected"),
    [
        (499, 11, "yellow"),
        (500, 11, None),  # "< 500" is strict
        (499, 13, None),
        (199, 6, "orange"),
        (49, 2, "red"),
        (49, 3, "orange"),
        (50, 1, "orange"),
    ],
)
def test_fog(vis: float, at: int, expected: str | None) -> None:
    df = frame(visibility_m=[(at - 1, at, vis)], base={"relative_humidity_pct": 95.0})
    assert level_of(df, Hazard.FOG) == expected


@pytest.mark.parametrize(
    ("vis", "rh", "pm25", "expected"),
    [
        (2999, 79, 10, "yellow"),  # dry haze
        (2999, 80, 115, None),  # humid: needs PM2.5 > 115
        (2999, 80, 116, "yellow"),
        (4999, 90, 151, "yellow"),
        (1999, 70, 10, "orange"),
        (4999, 90, 251, "orange"),
        (999, 70, 10, "red"),
        (999, 85, 251, "red"),
        (4999, 50, 501, "red"),
        (5000, 50, 600, None),
    ],
)
def test_haze_2013(vis: float, rh: float, pm25: float, expected: str | None) -> None:
    df = frame(
        visibility_m=[(4, 5, vis)], relative_humidity_pct=[(4, 5, rh)], pm25_ugm3=[(4, 5, pm25)]
    )
    assert level_of(df, Hazard.HAZE) == expected


OCTOBER = datetime(2026, 10, 20, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("temp", "at", "now", "expected"),
    [
        (-0.1, 40, OCTOBER, "blue"),
        (0.0, 40, OCTOBER, None),
        (-3.1, 20, OCTOBER, "yellow"),
        (-5.1, 20, OCTOBER, "orange"),
        (-5.1, 30, OCTOBER, "blue"),
        (-5.1, 20, NOW, None),  # July: frost is not graded
    ],
)
def test_frost_in_its_months(temp: float, at: int, now: datetime, expected: str | None) -> None:
    df = frame(now=now, temperature_c=[(at - 1, at, temp)])
    assert level_of(df, Hazard.FROST, now=now) == expected


@pytest.mark.parametrize(
    ("temp", "precip", "at", "expected"),
    [
        (0.0, 0.1, 2, "red"),
        (0.1, 0.1, 2, None),
        (-2.0, 0.0, 2, None),
        (-1.0, 0.2, 5, "orange"),
        (-1.0, 0.2, 12, "yellow"),
    ],
)
def test_road_icing_needs_cold_and_precipitation_in_the_same_hour(
    temp: float, precip: float, at: int, expected: str | None
) -> None:
    df = frame(temperature_c=[(at - 1, at, temp)], precipitation_mm=[(at - 1, at, precip)])
    assert level_of(df, Hazard.ROAD_ICING) == expected


@pytest.mark.parametrize(
    ("vis", "wind", "rh", "expected"),
    [
        (999, 10.8, 59, "yellow"),
        (999, 10.8, 60, None),
        (999, 10.7, 30, None),
        (499, 12, 20, "orange"),
        (49, 15, 20, "red"),
    ],
)
def test_sandstorm(vis: float, wind: float, rh: float, expected: str | None) -> None:
    df = frame(
        visibility_m=[(3, 4, vis)], wind_speed_ms=[(3, 4, wind)], relative_humidity_pct=[(3, 4, rh)]
    )
    assert level_of(df, Hazard.SANDSTORM) == expected


def test_a_regional_override_lowers_the_threshold_only_there() -> None:
    rain = {R: [(0, 3, 26 / 3)]}
    assert level_of(frame(location="513300", **rain), Hazard.RAINSTORM) == "orange"
    assert level_of(frame(location="513200", **rain), Hazard.RAINSTORM) == "orange"
    assert level_of(frame(location="510100", **rain), Hazard.RAINSTORM) is None
    (w,) = grade_weather(frame(location="513300", **rain), RULES, NOW)
    assert w.rule_id == "rainstorm.orange@sichuan-ganzi-aba-rainstorm"
    assert w.threshold == 25


def test_every_location_is_graded_in_one_call() -> None:
    df = pd.concat(
        [
            frame(location="513300", **{R: [(0, 3, 26 / 3)]}),
            frame(location="510100", **{R: [(0, 3, 101 / 3)]}),
            frame(location="110100"),
        ]
    )
    got = {(w.region_code, w.level.colour) for w in grade_weather(df, RULES, NOW)}
    assert got == {("513300", "orange"), ("510100", "red")}


def test_a_warning_explains_itself() -> None:
    df = frame(**{R: [(0, 1, 10), (1, 2, 45), (2, 3, 5)]})
    (w,) = grade_weather(df, RULES, NOW, names={"110100": "北京市"})
    assert (w.level, w.rule_id, w.rule_set_version) == (
        Level.ORANGE,
        "rainstorm.orange",
        RULES.version,
    )
    assert (w.window_h, w.observed, w.threshold) == (3.0, 60.0, 50.0)
    assert w.reached_at == NOW + timedelta(hours=2)  # 10 + 45 reaches 50 in the second hour
    assert w.region_name == "北京市" and "rain_mm 60.0 vs 50" in w.reason


def test_missing_values_never_fire_and_never_raise() -> None:
    df = frame(**{R: [(0, 1, 30), (1, 3, 40)]})
    forecast = df["time"] > NOW + timedelta(hours=1)
    df.loc[forecast, list(BASE)] = np.nan  # 30 mm known, then nothing known
    assert grade_weather(df, RULES, NOW) == []
    df.loc[:, list(BASE)] = np.nan
    assert grade_weather(df, RULES, NOW) == []
    empty = frame().iloc[:0]
    assert grade_weather(empty, RULES, NOW) == []


def _rules_file(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load((packaged_rules_dir() / "weather.yaml").read_text())
    mutate(data)
    path = tmp_path / "weather.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (
            lambda d: d["hazards"]["fog"]["levels"]["red"].update(when=[{"visibility": "< 50"}]),
            "unknown variable 'visibility'",
        ),
        (lambda d: d["hazards"]["gale"]["levels"]["red"].update(window_h=-1), "window_h"),
        (
            lambda d: d["hazards"]["heat"]["levels"]["red"].update(when=[{"temperature_c": "~40"}]),
            "'OP NUMBER'",
        ),
        (lambda d: d["hazards"].update(lightning={"levels": {}}), "lightning"),
        (lambda d: d["overrides"][0].update(hazard="hail"), "override sichuan-ganzi-aba"),
        (lambda d: d["overrides"][0]["levels"]["red"].update(threshold="much"), "red"),
        (lambda d: d["hazards"]["fog"]["levels"]["red"].update(kind="median"), "kind"),
    ],
)
def test_a_bad_rule_file_names_the_file_rule_and_field(tmp_path: Path, mutate, names: str) -> None:  # type: ignore[no-untyped-def]
    path = _rules_file(tmp_path, mutate)
    with pytest.raises(RuleFileError) as exc:
        load_rule_file(path, WeatherRules)
    assert str(path) in str(exc.value) and names in str(exc.value)


# -- properties: more of the hazard never lowers the level --------------------------------------

_hours = st.lists(st.floats(0, 60, allow_nan=False), min_size=12, max_size=12)


def _grade_level(df: pd.DataFrame, hazard: Hazard) -> int:
    found = [w for w in grade_weather(df, RULES, NOW) if w.hazard is hazard]
    return int(found[0].level) if found else 0


def _with(var: str, values: list[float], base: dict[str, float] | None = None) -> pd.DataFrame:
    return frame(base=base, **{var: [(h, h + 1, v) for h, v in enumerate(values)]})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_hours, _hours)
def test_more_rain_never_lowers_the_rainstorm_level(rain: list[float], extra: list[float]) -> None:
    more = [a + b for a, b in zip(rain, extra, strict=True)]
    assert _grade_level(_with(R, more), Hazard.RAINSTORM) >= _grade_level(
        _with(R, rain), Hazard.RAINSTORM
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(0, 45), min_size=12, max_size=12), _hours)
def test_stronger_wind_never_lowers_the_gale_level(wind: list[float], extra: list[float]) -> None:
    stronger = [a + b for a, b in zip(wind, extra, strict=True)]
    assert _grade_level(_with("wind_gust_ms", stronger), Hazard.GALE) >= _grade_level(
        _with("wind_gust_ms", wind), Hazard.GALE
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.floats(0, 6000), min_size=12, max_size=12),
    st.lists(st.floats(0, 1), min_size=12, max_size=12),
)
def test_lower_visibility_never_lowers_the_fog_level(vis: list[float], keep: list[float]) -> None:
    lower = [v * k for v, k in zip(vis, keep, strict=True)]
    humid = {"relative_humidity_pct": 95.0}
    assert _grade_level(_with("visibility_m", lower, humid), Hazard.FOG) >= _grade_level(
        _with("visibility_m", vis, humid), Hazard.FOG
    )
