"""The vectorized weather engine against the plain-Python reference in scripts/bench_grading.py.

The reference grades the same rule objects row by row, following the
semantics of docs/CRITERIA.md and the header of rules/weather.yaml; both must
give the same warnings (hazard, location, level, hour reached) and the same
explanation on generated weather and on random frames around the thresholds.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.criteria.weather import grade_weather
from alerts.model import Hazard

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench_grading.py"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_grading", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


bench = _load(BENCH)
RULES = bench.load_rules()

JULY = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)  # 08:00 in Beijing; frost not graded
OCTOBER = datetime(2026, 10, 20, 0, 0, tzinfo=UTC)  # frost month
OCTOBER_MIDNIGHT = datetime(2026, 10, 5, 16, 0, tzinfo=UTC)  # 00:00 in Beijing: a new local day
MARCH_HALF_HOUR = datetime(2026, 3, 14, 6, 30, tzinfo=UTC)  # not on the hour
NOWS = [JULY, OCTOBER, OCTOBER_MIDNIGHT, MARCH_HALF_HOUR]


def _generated(seed: int, now: datetime) -> pd.DataFrame:
    return bench.synthetic_frame(40, 120, now=now, seed=seed, now_offset_h=48)


def _assert_same(df: pd.DataFrame, now: datetime, cyclones: Any) -> list[Any]:
    engine = grade_weather(df, RULES, now, cyclones=cyclones)
    reference = bench.reference_grade(df, RULES, now, cyclones)
    diff = bench.compare(bench.engine_records(engine), reference)
    assert not diff, "\n".join(diff)
    assert len(reference) == len(set(reference))  # one warning per (hazard, location)
    return engine


@pytest.mark.parametrize("cyclones", [(), bench.CYCLONES], ids=["no-cyclone", "cyclones"])
@pytest.mark.parametrize("now", NOWS, ids=lambda d: f"{d:%b-%d-%H%M}")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_engine_and_reference_agree_on_generated_weather(
    seed: int, now: datetime, cyclones: Any
) -> None:
    df = _generated(seed, now)
    assert _assert_same(df, now, cyclones)  # and the data is not trivially quiet


def _sort_key(w: dict[str, Any]) -> tuple[str, str]:
    return (w["hazard"].value, w["location_id"])


def _same_value(a: float | None, b: float | None) -> bool:
    none_a = a is None or math.isnan(a)
    none_b = b is None or math.isnan(b)
    return none_a == none_b and (none_a or a == b)


@pytest.mark.parametrize("now", [JULY, OCTOBER])
def test_engine_and_reference_explain_alike(now: datetime) -> None:
    df = _generated(7, now)
    engine = sorted(
        bench.engine_explained(grade_weather(df, RULES, now, cyclones=bench.CYCLONES)),
        key=_sort_key,
    )
    reference = sorted(bench.reference_warnings(df, RULES, now, bench.CYCLONES), key=_sort_key)
    assert len(engine) == len(reference)
    for e, r in zip(engine, reference, strict=True):
        assert _same_value(e.pop("value"), r.pop("value")), (e, r)
        assert e == r


def test_generated_weather_exercises_every_rule() -> None:
    """Across the generated cases every hazard fires somewhere, Ganzi and Aba included."""
    seen: set[Hazard] = set()
    ids: set[str] = set()
    for now in (JULY, OCTOBER):
        for seed in (1, 2, 3):
            df = _generated(seed, now)
            seen |= {w.hazard for w in grade_weather(df, RULES, now, cyclones=bench.CYCLONES)}
            ids |= set(df["location_id"])
    assert seen == set(RULES.hazards)
    assert any(i.startswith("5133") for i in ids) and any(i.startswith("5132") for i in ids)


def test_the_benchmark_frame_triggers_every_hazard_and_the_override() -> None:
    df = bench.synthetic_frame(300, 240, seed=bench.SEED)
    warnings = grade_weather(df, RULES, bench.NOW, cyclones=bench.CYCLONES)
    assert {w.hazard for w in warnings} == set(RULES.hazards)
    assert any("@" in w.rule_id for w in warnings)
    assert df["time"].dt.minute.eq(0).all() and str(df["time"].dt.tz) == "UTC"
    assert df[list(bench.INPUTS)].isna().any().all()  # gaps in every variable


# -- random small frames around the thresholds -------------------------------------------------

CRITICAL: dict[str, list[float]] = {
    "precipitation_mm": [0.0, 0.1, 0.5, 1.7, 4.2, 8.3, 8.4, 12.5, 16.6, 16.7, 25.0, 33.3, 33.4, 50],
    "snowfall_water_mm": [0.0, 0.3, 0.4, 0.5, 1.0, 1.6, 1.7, 2.5, 3.0],
    "temperature_c": [-16, -6, -5.1, -5, -3.1, -3, -0.1, 0, 0.1, 4, 4.1, 10, 20, 34.9, 35, 37, 40],
    "relative_humidity_pct": [30, 59, 60, 79, 80, 95],
    "wind_speed_ms": [2, 7.9, 8.0, 10.7, 10.8, 17.1, 17.2, 24.4, 24.5, 32.6, 32.7],
    "wind_gust_ms": [4, 13.8, 13.9, 17.2, 20.8, 24.5, 28.5, 32.7, 36.9, 37.0, 41.5],
    "visibility_m": [20000, 5000, 4999, 3000, 2999, 2000, 1999, 1000, 999, 500, 499, 200, 50, 49],
    "pm25_ugm3": [10, 115, 116, 150, 151, 250, 251, 500, 501],
}
PLACES = {  # id -> (lat, lon); 5133/5132 take the Sichuan rainstorm override
    "110101": (39.9, 116.4),
    "440305": (22.5, 113.9),
    "510104": (30.7, 104.1),
    "513301": (30.0, 101.9),
    "513230": (31.9, 102.2),
    "650102": (43.8, 87.6),
}
CYCLONE_SETS = [(), ((22.0, 114.0),), ((40.5, 117.0), (31.0, 103.0))]
HOURS = 60
HOUR = timedelta(hours=1)


@st.composite
def small_frames(draw: st.DrawFn) -> tuple[pd.DataFrame, datetime, Any]:
    now = draw(st.sampled_from([JULY, OCTOBER, OCTOBER_MIDNIGHT, MARCH_HALF_HOUR]))
    before = draw(st.integers(12, 48))  # hours of the series up to now
    last = now.replace(minute=0)
    times = pd.date_range(last - timedelta(hours=before - 1), periods=HOURS, freq="h", tz="UTC")
    ids = draw(st.lists(st.sampled_from(sorted(PLACES)), min_size=3, max_size=3, unique=True))
    parts = []
    for location in ids:
        data: dict[str, Any] = {
            "location_id": location,
            "latitude": PLACES[location][0],
            "longitude": PLACES[location][1],
            "time": times,
        }
        for var, critical in CRITICAL.items():
            col = np.full(HOURS, float(draw(st.sampled_from(critical))))
            segments = st.tuples(
                st.integers(0, HOURS - 1),
                st.integers(1, 12),
                st.sampled_from(critical) | st.just(math.nan),
            )
            for start, length, value in draw(st.lists(segments, max_size=3)):
                col[start : start + length] = value
            data[var] = col
        parts.append(pd.DataFrame(data))
    df = pd.concat(parts, ignore_index=True)
    # rows may be missing, but the first forecast hour stays in the frame's time axis (see
    # test_a_missing_first_forecast_hour_is_not_continuing_rain for what happens otherwise)
    first_hour = (df["location_id"] == ids[0]) & (df["time"] > now) & (df["time"] <= now + HOUR)
    droppable = df.index[~first_hour].tolist()
    dropped = draw(st.sets(st.sampled_from(droppable), max_size=8))
    df = df.drop(index=sorted(dropped)).reset_index(drop=True)
    return df, now, draw(st.sampled_from(CYCLONE_SETS))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_frames())
def test_engine_and_reference_agree_on_random_frames(
    case: tuple[pd.DataFrame, datetime, Any],
) -> None:
    df, now, cyclones = case
    _assert_same(df, now, cyclones)


# -- the one divergence found ------------------------------------------------------------------


def _rows(location: str, hours_rain: dict[int, float]) -> pd.DataFrame:
    times = [JULY + timedelta(hours=h) for h in hours_rain]
    return pd.DataFrame(
        {
            "location_id": location,
            "latitude": 39.9,
            "longitude": 116.4,
            "time": pd.DatetimeIndex(times),
            "precipitation_mm": list(hours_rain.values()),
        }
    )


def test_a_missing_first_forecast_hour_is_not_continuing_rain() -> None:
    # 100 mm in the 3 h up to now, no row for the hour ending now + 1 h, 0.5 mm at now + 2 h
    alone = _rows("110100", {-2: 100 / 3, -1: 100 / 3, 0: 100 / 3, 2: 0.5})
    assert bench.reference_grade(alone, RULES, JULY) == []  # CRITERIA.md: missing never fires
    other = _rows("120100", {1: 0.0})
    assert grade_weather(pd.concat([alone, other]), RULES, JULY) == []  # the engine agrees here...
    assert grade_weather(alone, RULES, JULY) == []  # ...but alone it fires red (observed)
