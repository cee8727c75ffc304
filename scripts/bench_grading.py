#!/usr/bin/env python
"""Benchmark the vectorized weather grading against a plain-Python reference (a script, not a test).

``reference_grade`` below grades the same pydantic rules (``WeatherRules``)
the engine in :mod:`alerts.criteria.weather` grades, but the obvious way: a
loop over locations, hazards and levels, and for each rule a loop over the
location's hours with ``math`` and plain lists and dicts. It follows the
semantics written in docs/CRITERIA.md ("How the project computes them from
hourly data") and in the header of ``alerts/criteria/rules/weather.yaml``:

* windows are the hours ending in (now, now + W] (forecast) or (now - W, now]
  (observed); a value exactly at the threshold fires, a missing one never;
* accumulation: the forecast sum reaches the threshold, or the observed sum
  does while the first forecast hour (the hour ending in (now, now + 1 h]) is
  still > 0 (missing: it is not); sums and cold-wave drops get a 1e-9 tolerance so
  that sums of tenths reach their threshold;
* ``rain_mm`` = precipitation minus snowfall water (unknown snowfall counts
  0), clipped at 0;
* daily runs count local days (the hour ending at ``time`` belongs to the day
  of ``time - 1 h``) starting today, each with at least ``min_hours`` values;
* cold wave: min over the 24 h up to now minus min over the window, the future
  min and the max mean wind in the window;
* months are the local month of ``now``; typhoon replaces gale within
  ``near_cyclone_km`` of a cyclone; overrides apply by region-code prefix, the
  longest prefix winning; a location keeps the highest level per hazard.

The synthetic frame is N locations x H hours of realistic weather from a fixed
seed (adcode-like ids, Ganzi 5133 / Aba 5132 among them) with episodes that
fire every hazard somewhere, values rounded like a forecast feed's (tenths of
mm, degrees and m/s) so thresholds are hit exactly, and NaN gaps and missing
rows. The engine is timed as the best of 3 (``time.perf_counter``) and its
peak Python memory measured in a separate run under ``tracemalloc``; the
reference is timed once, on every location if a pilot run predicts it takes
at most ``--budget`` seconds, else on a deterministic subset of locations and
scaled linearly (the output says which). Both results must be the same set of
(hazard, location, level, reached_at), else the script prints the difference
and exits 1.

    .venv/bin/python scripts/bench_grading.py           # 2,800 x 360 location-hours
    .venv/bin/python scripts/bench_grading.py --quick   # 300 x 240
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alerts.criteria import load_rule_file, packaged_rules_dir  # noqa: E402
from alerts.criteria.weather import WeatherRules, grade_weather  # noqa: E402
from alerts.model import Hazard, Level  # noqa: E402
from alerts.regions import EARTH_RADIUS_KM  # noqa: E402

SEED = 20260908
NOW = datetime(2026, 9, 8, 0, 0, tzinfo=UTC)  # 08:00 in Beijing; September: frost is graded
CYCLONES: tuple[tuple[float, float], ...] = (
    (21.4, 114.6),
    (27.0, 123.4),
)  # off Guangdong, Zhejiang
REPEAT = 3
INPUTS = (
    "precipitation_mm",
    "snowfall_water_mm",
    "temperature_c",
    "relative_humidity_pct",
    "wind_speed_ms",
    "wind_gust_ms",
    "visibility_m",
    "pm25_ugm3",
)

Record = tuple[Hazard, str, Level, datetime]


# -- the reference: plain loops ---------------------------------------------------------------

_NAN = float("nan")
_HOUR = timedelta(hours=1)
_EPS = 1e-9  # as documented for the engine: sums of tenths still reach their threshold
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,  # NaN compares False: a missing value never fires
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}


@dataclass
class Place:
    """One location: its first row's coordinates and its hours, sorted by time."""

    location_id: str
    latitude: float
    longitude: float
    by_time: dict[datetime, dict[str, Any]] = field(default_factory=dict)
    hours: list[dict[str, Any]] = field(default_factory=list)

    def between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The hours ending in (start, end]."""
        return [row for row in self.hours if start < row["time"] <= end]


@dataclass
class Found:
    value: float | None
    reached_at: datetime
    basis: str
    variable: str
    threshold: float


def places_of(frame: pd.DataFrame) -> list[Place]:
    """The long frame as per-location lists of row dicts, in order of first appearance."""
    n = len(frame)
    ids = frame["location_id"].astype(str).tolist()
    times = list(pd.DatetimeIndex(frame["time"]).tz_convert("UTC").to_pydatetime())
    lats = frame["latitude"].astype("float64").tolist()
    lons = frame["longitude"].astype("float64").tolist()
    columns = {
        v: frame[v].astype("float64").tolist() if v in frame.columns else [_NAN] * n for v in INPUTS
    }
    places: dict[str, Place] = {}
    for i in range(n):
        place = places.get(ids[i])
        if place is None:
            place = places[ids[i]] = Place(ids[i], lats[i], lons[i])
        row: dict[str, Any] = {"time": times[i]}
        for v in INPUTS:
            row[v] = columns[v][i]
        p, s = row["precipitation_mm"], row["snowfall_water_mm"]
        row["rain_mm"] = _NAN if math.isnan(p) else max(p - (0.0 if math.isnan(s) else s), 0.0)
        place.by_time[times[i]] = row  # a repeated hour: the later row wins
    for place in places.values():
        place.hours = sorted(place.by_time.values(), key=lambda r: r["time"])
    return list(places.values())


def _condition(variable: str, text: str) -> tuple[str, str, float]:
    text = text.strip()
    for op in (">=", "<=", ">", "<"):
        if text.startswith(op):
            return variable, op, float(text[len(op) :])
    raise ValueError(f"{variable}: {text!r}")


def _known(values: Iterable[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def _running_sum(
    rows: list[dict[str, Any]], variable: str, threshold: float
) -> tuple[float, datetime | None]:
    total, reached = 0.0, None
    for row in rows:
        v = row[variable]
        if not math.isnan(v):
            total += v
        if reached is None and total >= threshold:
            reached = row["time"]
    return total, reached


def _accumulation(rule: Any, place: Place, now: datetime) -> Any:
    w = timedelta(hours=rule.window_h)
    thr = rule.threshold - _EPS
    total, reached = _running_sum(place.between(now, now + w), rule.variable, thr)
    if total >= thr and reached is not None:
        return Found(total, reached, "forecast", rule.variable, rule.threshold)
    past, reached = _running_sum(place.between(now - w, now), rule.variable, thr)
    first = place.between(now, now + _HOUR)  # the first forecast hour; none if it is missing
    going_on = bool(first) and first[0][rule.variable] > 0
    if past >= thr and reached is not None and going_on:
        return Found(past, reached, "observed", rule.variable, rule.threshold)
    return None


def _any_hour(rule: Any, place: Place, now: datetime) -> Any:
    window = place.between(now, now + timedelta(hours=rule.window_h))
    alternatives = [[_condition(v, t) for v, t in alt.items()] for alt in rule.when]
    best: tuple[datetime, int] | None = None
    for k, conditions in enumerate(alternatives):
        for row in window:
            if all(_COMPARE[op](row[v], x) for v, op, x in conditions):
                if best is None or row["time"] < best[0]:
                    best = (row["time"], k)
                break
    if best is None:
        return None
    variable, op, threshold = alternatives[best[1]][0]
    values = _known(row[variable] for row in window)
    value = (max if op in (">=", ">") else min)(values) if values else None
    return Found(value, best[0], "forecast", variable, threshold)


def _local_day(when: datetime, tz: ZoneInfo) -> date:
    return (when - _HOUR).astimezone(tz).date()  # the hour ending at `when` began at when - 1 h


def _daily_run(rule: Any, place: Place, now: datetime, tz: ZoneInfo) -> Any:
    today = now.astimezone(tz).date()
    passes = _COMPARE[rule.op]
    stats = []
    for d in range(rule.days):
        day = today + timedelta(days=d)
        values = _known(
            row[rule.variable] for row in place.hours if _local_day(row["time"], tz) == day
        )
        if len(values) < rule.min_hours:
            return None
        stat = max(values) if rule.stat == "max" else min(values)
        if not passes(stat, rule.value):
            return None
        stats.append(stat)
    day0 = [row for row in place.hours if _local_day(row["time"], tz) == today]
    reached = next(row["time"] for row in day0 if passes(row[rule.variable], rule.value))
    binding = min(stats) if rule.op in (">=", ">") else max(stats)
    return Found(binding, reached, "forecast", rule.variable, rule.value)


def _cold_wave(rule: Any, place: Place, now: datetime) -> Any:
    before = _known(row["temperature_c"] for row in place.between(now - timedelta(hours=24), now))
    window = place.between(now, now + timedelta(hours=rule.window_h))
    temps = [(row["time"], row["temperature_c"]) for row in window]
    temps = [(t, v) for t, v in temps if not math.isnan(v)]
    winds = _known(row["wind_speed_ms"] for row in window)
    if not before or not temps or not winds:
        return None
    future = min(v for _, v in temps)
    drop = min(before) - future
    if drop >= rule.drop_c - _EPS and future <= rule.tmin_c and max(winds) >= rule.wind_ms:
        coldest = next(t for t, v in temps if v == future)
        return Found(drop, coldest, "forecast", "temperature_drop_c", rule.drop_c)
    return None


def _fires(rule: Any, place: Place, now: datetime, tz: ZoneInfo) -> Any:
    if rule.kind == "accumulation":
        return _accumulation(rule, place, now)
    if rule.kind == "any_hour":
        return _any_hour(rule, place, now)
    if rule.kind == "daily_run":
        return _daily_run(rule, place, now, tz)
    if rule.kind == "cold_wave":
        return _cold_wave(rule, place, now)
    raise ValueError(f"unknown rule kind {rule.kind!r}")


def _near(place: Place, points: Sequence[tuple[float, float]], km: float) -> bool:
    lat1, lon1 = math.radians(place.latitude), math.radians(place.longitude)
    for lat, lon in points:
        lat2, lon2 = math.radians(lat), math.radians(lon)
        h = (
            math.sin((lat2 - lat1) / 2) ** 2
            + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        )
        if 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(max(h, 0.0), 1.0))) <= km:
            return True  # a NaN coordinate compares False above: never near
    return False


def _override(rules: WeatherRules, hazard: Hazard, location_id: str) -> Any:
    chosen, longest = None, 0
    for o in rules.overrides:
        if o.hazard is not hazard:
            continue
        for prefix in o.regions:
            if location_id.startswith(prefix) and len(prefix) > longest:
                chosen, longest = o, len(prefix)
    return chosen


def reference_warnings(
    frame: pd.DataFrame,
    rules: WeatherRules,
    now: datetime,
    cyclones: Sequence[tuple[float, float]] = (),
) -> list[dict[str, Any]]:
    """Per (hazard, location) the highest level that fires, with its explanation."""
    places = places_of(frame)
    tz = ZoneInfo(rules.timezone)
    month = now.astimezone(tz).month
    replaced = {
        hz.replaces: hz.near_cyclone_km
        for hz in rules.hazards.values()
        if hz.near_cyclone_km and hz.replaces
    }
    out: list[dict[str, Any]] = []
    for place in places:
        for hazard, hz in rules.hazards.items():
            if hz.months and month not in hz.months:
                continue
            if hz.near_cyclone_km and not _near(place, cyclones, hz.near_cyclone_km):
                continue
            if hazard in replaced and _near(place, cyclones, replaced[hazard]):
                continue
            override = _override(rules, hazard, place.location_id)
            for level in sorted(hz.levels, reverse=True):
                rule = rules.level_rule(hazard, level, override)
                found = _fires(rule, place, now, tz)
                if found is None:
                    continue
                out.append(
                    {
                        "hazard": hazard,
                        "location_id": place.location_id,
                        "level": level,
                        "reached_at": found.reached_at,
                        "rule_id": f"{hazard.value}.{level.colour}"
                        + (f"@{override.id}" if override else ""),
                        "variable": found.variable,
                        "value": found.value,
                        "threshold": float(found.threshold),
                        "window_h": float(rule.window_h),
                        "basis": found.basis,
                    }
                )
                break
    return out


def reference_grade(
    frame: pd.DataFrame,
    rules: WeatherRules,
    now: datetime,
    cyclones: Sequence[tuple[float, float]] = (),
) -> list[Record]:
    """(hazard, location_id, level, reached_at) per warning, graded row by row."""
    return [
        (w["hazard"], w["location_id"], w["level"], w["reached_at"])
        for w in reference_warnings(frame, rules, now, cyclones)
    ]


def engine_records(warnings: Iterable[Any]) -> list[Record]:
    return [(w.hazard, w.region_code, w.level, w.reached_at) for w in warnings]


def engine_explained(warnings: Iterable[Any]) -> list[dict[str, Any]]:
    """The engine's warnings in the reference's shape."""
    return [
        {
            "hazard": w.hazard,
            "location_id": w.region_code,
            "level": w.level,
            "reached_at": w.reached_at,
            "rule_id": w.rule_id,
            "variable": w.facts["variable"],
            "value": w.facts["value"],
            "threshold": w.threshold,
            "window_h": w.window_h,
            "basis": w.facts["basis"],
        }
        for w in warnings
    ]


def load_rules() -> WeatherRules:
    return load_rule_file(packaged_rules_dir() / "weather.yaml", WeatherRules)


# -- synthetic weather ---------------------------------------------------------------------------

# (adcode prefix, centre latitude, longitude, climate, weight)
_AREAS = [
    ("44", 23.1, 113.3, "coast", 8),
    ("46", 19.6, 109.9, "coast", 3),
    ("35", 26.1, 119.3, "coast", 5),
    ("33", 29.5, 120.3, "coast", 6),
    ("31", 31.2, 121.5, "coast", 2),
    ("45", 22.8, 108.3, "south", 5),
    ("43", 28.2, 112.9, "south", 6),
    ("36", 28.7, 115.9, "south", 5),
    ("42", 30.6, 114.3, "south", 6),
    ("34", 31.9, 117.3, "south", 5),
    ("32", 32.1, 118.8, "south", 6),
    ("50", 29.6, 106.5, "south", 4),
    ("51", 30.7, 104.1, "south", 6),
    ("52", 26.6, 106.7, "south", 4),
    ("53", 25.0, 102.7, "south", 5),
    ("5133", 30.0, 100.8, "plateau", 3),  # Ganzi: rainstorm override
    ("5132", 31.9, 102.2, "plateau", 3),  # Aba: rainstorm override
    ("54", 29.7, 91.1, "plateau", 3),
    ("63", 36.6, 101.8, "plateau", 3),
    ("11", 39.9, 116.4, "north", 2),
    ("12", 39.1, 117.2, "north", 2),
    ("13", 38.0, 114.5, "north", 6),
    ("14", 37.9, 112.6, "north", 5),
    ("37", 36.7, 117.0, "north", 7),
    ("41", 34.8, 113.7, "north", 7),
    ("61", 34.3, 108.9, "north", 4),
    ("21", 41.8, 123.4, "north", 4),
    ("22", 43.9, 125.3, "north", 3),
    ("23", 45.8, 126.5, "north", 4),
    ("65", 43.8, 87.6, "desert", 4),
    ("62", 36.1, 103.8, "desert", 4),
    ("64", 38.5, 106.3, "desert", 2),
    ("15", 40.8, 111.7, "desert", 4),
]
# climate: annual mean T, seasonal amplitude, diurnal amplitude, RH %, PM2.5, mean wind m/s
_CLIMATES = {
    "coast": (22.0, 7.0, 3.5, 78.0, 25.0, 3.5),
    "south": (19.0, 9.0, 4.5, 72.0, 35.0, 2.0),
    "north": (12.0, 15.0, 6.0, 55.0, 55.0, 3.0),
    "plateau": (3.0, 9.0, 8.0, 48.0, 12.0, 3.5),
    "desert": (8.0, 16.0, 8.0, 32.0, 45.0, 4.0),
}
# chance per location of each kind of episode
_EPISODES = {
    "rain": {"coast": 0.30, "south": 0.25, "north": 0.12, "plateau": 0.18, "desert": 0.03},
    "snow": {"coast": 0.0, "south": 0.01, "north": 0.06, "plateau": 0.30, "desert": 0.06},
    "gale": {"coast": 0.35, "south": 0.06, "north": 0.12, "plateau": 0.10, "desert": 0.18},
    "heat": {"coast": 0.10, "south": 0.25, "north": 0.10, "plateau": 0.0, "desert": 0.12},
    "cold": {"coast": 0.01, "south": 0.04, "north": 0.15, "plateau": 0.15, "desert": 0.15},
    "fog": {"coast": 0.15, "south": 0.15, "north": 0.12, "plateau": 0.04, "desert": 0.03},
    "haze": {"coast": 0.05, "south": 0.10, "north": 0.28, "plateau": 0.01, "desert": 0.08},
    "sand": {"coast": 0.0, "south": 0.0, "north": 0.04, "plateau": 0.03, "desert": 0.30},
    "icing": {"coast": 0.0, "south": 0.01, "north": 0.06, "plateau": 0.10, "desert": 0.05},
    "frost": {"coast": 0.0, "south": 0.01, "north": 0.12, "plateau": 0.35, "desert": 0.15},
}


def _location_ids(
    rng: np.random.Generator, n: int
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    weights = np.array([a[4] for a in _AREAS], dtype=float)
    used: set[str] = set()
    ids: list[str] = []
    lats: list[float] = []
    lons: list[float] = []
    climates: list[str] = []
    while len(ids) < n:
        prefix, lat, lon, climate, _ = _AREAS[rng.choice(len(_AREAS), p=weights / weights.sum())]
        if len(prefix) == 4:
            code = f"{prefix}{rng.integers(1, 100):02d}"
        else:
            code = f"{prefix}{rng.integers(1, 21):02d}{rng.integers(1, 100):02d}"
        if code in used:
            continue
        used.add(code)
        ids.append(code)
        lats.append(lat + rng.normal(0, 0.8))
        lons.append(lon + rng.normal(0, 1.0))
        climates.append(climate)
    return ids, np.array(lats), np.array(lons), climates


def synthetic_frame(
    n_locations: int = 2800,
    hours: int = 360,
    *,
    now: datetime = NOW,
    seed: int = SEED,
    now_offset_h: int = 72,
) -> pd.DataFrame:
    """N locations x H hours ending on the hour (UTC), ``now`` ``now_offset_h`` after the start.

    Every location has a climate (coast, south, north, plateau, desert) with a
    seasonal and diurnal temperature cycle and noise; episodes placed around
    ``now`` (rain bursts, snow, gales, heat over three local days, cold fronts,
    fog, haze, dust, freezing rain, frosty nights) fire the warnings.
    """
    rng = np.random.default_rng(seed)
    n, h = n_locations, hours
    ids, lats, lons, climates = _location_ids(rng, n)
    last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    times = pd.date_range(last - timedelta(hours=now_offset_h - 1), periods=h, freq="h", tz="UTC")
    i_now = now_offset_h - 1  # column of the hour ending at (or just before) now
    local_hour = ((times.hour.to_numpy() + 8 - 0.5) % 24)[None, :]
    diurnal = np.sin(2 * np.pi * (local_hour - 9) / 24)  # peaks mid-afternoon
    day_of_year = now.timetuple().tm_yday
    season = math.cos(2 * math.pi * (day_of_year - 200) / 365)

    params = np.array([_CLIMATES[c] for c in climates])
    mean_t, amp_season, amp_day, rh0, pm0, wind0 = (params[:, k][:, None] for k in range(6))
    smooth = np.cumsum(rng.normal(0, 0.35, (n, h)), axis=1)
    smooth -= np.linspace(0, 1, h)[None, :] * smooth[:, -1:]  # a wander that returns home
    temp = (
        mean_t
        + amp_season * season
        + rng.normal(0, 2.5, (n, 1))
        + amp_day * diurnal
        + smooth
        + rng.normal(0, 0.3, (n, h))
    )
    rh = np.clip(rh0 - 12 * diurnal + rng.normal(0, 6, (n, h)), 5, 100)
    wind = wind0 * rng.gamma(4.0, 0.25, (n, h))
    gust = wind * rng.uniform(1.3, 1.8, (n, h))
    vis = rng.uniform(12000, 30000, (n, h))
    pm25 = pm0 * rng.lognormal(0, 0.35, (n, h))
    precip = np.where(rng.random((n, h)) < 0.03, rng.exponential(0.8, (n, h)), 0.0)
    snow = np.where(temp < 0.5, precip, 0.0)

    def onset(early: int, late: int) -> int:
        """Column of an episode's first hour, ``early`` to ``late`` hours after now."""
        return int(np.clip(i_now + rng.integers(early, late + 1), 0, h - 1))

    local_days = (times - pd.Timedelta(hours=1)).tz_convert("Asia/Shanghai").normalize()
    today = pd.Timestamp(now).tz_convert("Asia/Shanghai").normalize()
    today0 = int(np.argmax(local_days >= today))  # first hour of today, local time
    for j, climate in enumerate(climates):

        def happens(kind: str, climate: str = climate) -> bool:
            return bool(rng.random() < _EPISODES[kind][climate])

        if happens("frost"):  # clear, cold nights
            temp[j] -= rng.uniform(3, 10) * (1 - diurnal[0]) / 2 + rng.uniform(0, 3)
        if happens("heat"):  # three hot local days from today
            for d in range(4):
                seg = slice(today0 + 24 * d, min(today0 + 24 * (d + 1), h))
                day = temp[j, seg]
                if day.size == 0:
                    break
                target = rng.uniform(33.5, 41.0)
                lo, hi = day.min(), day.max()
                if target > hi and hi > lo:
                    temp[j, seg] = lo + (day - lo) * (target - lo) / (hi - lo)
                rh[j, seg] = np.minimum(rh[j, seg], rng.uniform(25, 55))
        if happens("rain"):
            i, dur = onset(-6, 14), int(rng.integers(2, 11))
            seg = slice(i, min(i + dur, h))
            total = rng.lognormal(math.log(45), 0.6)
            share = rng.dirichlet(np.full(dur, 1.5))[: seg.stop - seg.start]
            precip[j, seg] += total * share
            rh[j, seg] = np.maximum(rh[j, seg], rng.uniform(88, 100))
            vis[j, seg] = np.minimum(vis[j, seg], rng.uniform(3000, 9000))
            pm25[j, seg] *= 0.4
        if happens("snow"):
            i, dur = onset(-6, 14), int(rng.integers(4, 15))
            seg = slice(i, min(i + dur, h))
            k = seg.stop - seg.start
            water = rng.lognormal(math.log(0.8), 0.6) * rng.uniform(0.5, 1.5, k)
            temp[j, seg] = np.minimum(temp[j, seg], rng.uniform(-8, -0.5) + rng.normal(0, 0.5, k))
            snow[j, seg] += water
            precip[j, seg] += water + np.where(rng.random(k) < 0.2, rng.uniform(0, 0.4, k), 0)
            rh[j, seg] = np.maximum(rh[j, seg], rng.uniform(85, 98))
            vis[j, seg] = np.minimum(vis[j, seg], rng.uniform(600, 5000))
        if happens("gale"):
            i, dur = onset(-4, 30), int(rng.integers(3, 19))
            seg = slice(i, min(i + dur, h))
            k = seg.stop - seg.start
            peak = rng.uniform(9, 40 if climate == "coast" else 30)
            shape = np.sin(np.pi * (np.arange(k) + 0.5) / dur)
            wind[j, seg] = np.maximum(wind[j, seg], peak * shape)
            gust[j, seg] = np.maximum(gust[j, seg], wind[j, seg] * rng.uniform(1.2, 1.6))
        if happens("cold"):  # a front: the temperature falls and stays down, wind behind it
            i, ramp = onset(2, 44), int(rng.integers(4, 13))
            drop = rng.uniform(7, 20)
            fall = np.clip((np.arange(h) - i) / ramp, 0, 1)
            back = np.clip((np.arange(h) - i - ramp - rng.integers(24, 60)) / 36, 0, 1)
            temp[j] -= drop * fall * (1 - back)
            seg = slice(i, min(i + ramp + int(rng.integers(6, 24)), h))
            wind[j, seg] = np.maximum(wind[j, seg], rng.uniform(7, 16))
            gust[j, seg] = np.maximum(gust[j, seg], wind[j, seg] * 1.5)
        if happens("fog"):
            i, dur = onset(-4, 16), int(rng.integers(2, 9))
            seg = slice(i, min(i + dur, h))
            k = seg.stop - seg.start
            floor = math.exp(rng.uniform(math.log(20), math.log(900)))
            depth = np.sin(np.pi * (np.arange(k) + 0.5) / dur)
            vis[j, seg] = np.minimum(vis[j, seg], floor * (1 + 4 * (1 - depth)))
            rh[j, seg] = rng.uniform(95, 100, k)
            wind[j, seg] = np.minimum(wind[j, seg], 2.5)
            gust[j, seg] = np.minimum(gust[j, seg], 4.5)
        if happens("haze"):
            i, dur = onset(-10, 30), int(rng.integers(6, 31))
            seg = slice(i, min(i + dur, h))
            k = seg.stop - seg.start
            pm25[j, seg] = rng.uniform(80, 600) * rng.uniform(0.8, 1.1, k)
            vis[j, seg] = rng.uniform(600, 4800) * rng.uniform(0.9, 1.2, k)
            rh[j, seg] = rng.uniform(40, 95) + rng.normal(0, 4, k)
            wind[j, seg] = np.minimum(wind[j, seg], 3.0)
        if happens("sand"):
            i, dur = onset(-4, 16), int(rng.integers(3, 11))
            seg = slice(i, min(i + dur, h))
            k = seg.stop - seg.start
            vis[j, seg] = math.exp(rng.uniform(math.log(20), math.log(1500))) * rng.uniform(
                0.8, 1.5, k
            )
            wind[j, seg] = np.maximum(wind[j, seg], rng.uniform(9, 22) + rng.normal(0, 1, k))
            gust[j, seg] = np.maximum(gust[j, seg], wind[j, seg] * 1.5)
            rh[j, seg] = rng.uniform(8, 45, k)
            pm25[j, seg] = rng.uniform(150, 900, k)
        if happens("icing"):  # freezing rain: liquid precipitation at or below 0 °C
            i, dur = onset(-4, 16), int(rng.integers(2, 9))
            seg = slice(i, min(i + dur, h))
            k = seg.stop - seg.start
            temp[j, seg] = rng.uniform(-3, 0.4, k)
            precip[j, seg] = rng.uniform(0.1, 1.5, k)
            snow[j, seg] = 0.0

    values = {
        "precipitation_mm": np.round(precip, 1),
        "snowfall_water_mm": np.round(snow, 1),
        "temperature_c": np.round(temp, 1),
        "relative_humidity_pct": np.round(np.clip(rh, 5, 100)),
        "wind_speed_ms": np.round(np.maximum(wind, 0), 1),
        "wind_gust_ms": np.round(np.maximum(gust, wind), 1),
        "visibility_m": np.clip(np.round(vis, -1), 10, 50000),
        "pm25_ugm3": np.round(pm25, 1),
    }
    # gaps: scattered missing values, a few stations without PM2.5 or snowfall,
    # outages of a few hours around now, and some rows not delivered at all
    for arr in values.values():
        arr[rng.random((n, h)) < 0.003] = np.nan
    values["pm25_ugm3"][rng.random(n) < 0.03] = np.nan
    values["snowfall_water_mm"][rng.random(n) < 0.03] = np.nan
    for jj in np.flatnonzero(rng.random(n) < 0.02):
        j, i = int(jj), int(np.clip(i_now + rng.integers(-20, 30), 0, h - 1))
        for arr in values.values():
            arr[j, i : i + int(rng.integers(3, 25))] = np.nan
    keep = np.ones((n, h), dtype=bool)
    for jj in np.flatnonzero(rng.random(n) < 0.01):
        keep[int(jj), rng.integers(0, h, int(rng.integers(1, 7)))] = False

    frame = pd.DataFrame(
        {
            "source": "synthetic",
            "location_id": np.repeat(np.array(ids, dtype=object), h),
            "latitude": np.repeat(lats, h),
            "longitude": np.repeat(lons, h),
            "time": times[np.tile(np.arange(h), n)],
            **{name: arr.ravel() for name, arr in values.items()},
        }
    )
    return frame[keep.ravel()].reset_index(drop=True)


# -- the benchmark --------------------------------------------------------------------------------


def compare(engine: Iterable[Record], reference: Iterable[Record]) -> list[str]:
    """Lines describing the difference (empty when both sets are equal)."""
    a, b = set(engine), set(reference)

    def show(r: Record) -> str:
        return f"{r[0].value:<10} {r[1]} {r[2].colour:<6} {r[3]:%Y-%m-%d %H:%M}Z"

    return [f"engine only:    {show(r)}" for r in sorted(a - b, key=str)] + [
        f"reference only: {show(r)}" for r in sorted(b - a, key=str)
    ]


def _subset(frame: pd.DataFrame, keep: Sequence[str]) -> pd.DataFrame:
    return frame[frame["location_id"].astype(str).isin(set(keep))]


def _stride(ids: Sequence[str], k: int) -> list[str]:
    step = max(1, len(ids) // max(k, 1))
    return list(ids[::step][:k])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="300 locations x 240 hours")
    parser.add_argument("--locations", type=int, help="number of locations (default 2,800)")
    parser.add_argument("--hours", type=int, help="hours per location (default 360)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="seconds the full reference run may take before a subset is timed instead",
    )
    args = parser.parse_args(argv)
    n = args.locations or (300 if args.quick else 2800)
    h = args.hours or (240 if args.quick else 360)
    rules = load_rules()

    t0 = time.perf_counter()
    frame = synthetic_frame(n, h, seed=args.seed)
    generated = time.perf_counter() - t0
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}; "
        f"seed {args.seed}; now {NOW:%Y-%m-%d %H:%M}Z; cyclones {list(CYCLONES)}"
    )
    print(f"generated {n:,} locations x {h} hours ({len(frame):,} rows) in {generated:.1f} s")

    engine_times = []
    warnings: list[Any] = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        warnings = grade_weather(frame, rules, NOW, cyclones=CYCLONES)
        engine_times.append(time.perf_counter() - t0)
    engine_time = min(engine_times)
    tracemalloc.start()
    grade_weather(frame, rules, NOW, cyclones=CYCLONES)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    ids = list(dict.fromkeys(frame["location_id"].astype(str)))
    pilot_ids = _stride(ids, min(len(ids), 60))
    t0 = time.perf_counter()
    reference_grade(_subset(frame, pilot_ids), rules, NOW, CYCLONES)
    estimate = (time.perf_counter() - t0) * len(ids) / len(pilot_ids)
    if estimate <= args.budget:
        graded, graded_frame = ids, frame
    else:  # about a fifth of the budget, measured, then scaled to every location
        k = max(len(pilot_ids), int(len(ids) * args.budget / 5 / estimate))
        graded = _stride(ids, k)
        graded_frame = _subset(frame, graded)
    t0 = time.perf_counter()
    reference = reference_grade(graded_frame, rules, NOW, CYCLONES)
    measured = time.perf_counter() - t0
    scaled = measured * len(ids) / len(graded)
    if len(graded) == len(ids):
        how = "measured on every location"
        engine = engine_records(warnings)
    else:
        how = (
            f"SCALED x{len(ids) / len(graded):.2f} from {measured:.1f} s measured on "
            f"{len(graded):,} of {len(ids):,} locations (every {len(ids) // len(graded)}th); "
            f"a full run was estimated at {estimate:.0f} s > budget {args.budget:.0f} s"
        )
        engine = engine_records(grade_weather(graded_frame, rules, NOW, cyclones=CYCLONES))

    rows = [
        ("location-hours", f"{len(frame):,}", f"{n:,} locations x {h} hours, rows present"),
        (
            "engine time",
            f"{engine_time:.3f} s",
            f"best of {REPEAT}: " + ", ".join(f"{t:.3f}" for t in engine_times),
        ),
        ("engine peak memory", f"{peak / 2**20:.1f} MiB", "tracemalloc, separate run"),
        ("reference time", f"{scaled:.1f} s", how),
        ("speed-up", f"{scaled / engine_time:.0f}x", "reference / engine"),
    ]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print()
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{vwidth}}  {note}")

    counts = Counter((w.hazard, w.level) for w in warnings)
    print()
    header = (
        f"{'warnings (engine)':<18}" + "".join(f"{lv.colour:>8}" for lv in Level) + f"{'total':>8}"
    )
    print(header)
    print("-" * len(header))
    for hazard in rules.hazards:
        per = [counts.get((hazard, lv), 0) for lv in Level]
        cells = "".join(
            f"{c:>8}" if lv in rules.hazards[hazard].levels else f"{'-':>8}"
            for c, lv in zip(per, Level, strict=True)
        )
        print(f"{hazard.value:<18}{cells}{sum(per):>8}")
    print(f"{'all':<18}{'':>32}{len(warnings):>8}")

    silent = [hz.value for hz in rules.hazards if not any(w.hazard is hz for w in warnings)]
    if silent:
        print(f"\nnote: no warning at all for {', '.join(silent)}")
    diff = compare(engine, reference)
    scope = "every location" if len(graded) == len(ids) else f"{len(graded):,} locations"
    if diff:
        print(f"\nMISMATCH on {scope}: {len(diff)} differing warnings", file=sys.stderr)
        for line in diff[:50]:
            print("  " + line, file=sys.stderr)
        if len(diff) > 50:
            print(f"  ... and {len(diff) - 50} more", file=sys.stderr)
        return 1
    print(f"\nengine and reference agree on {scope}: {len(set(reference)):,} warnings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
