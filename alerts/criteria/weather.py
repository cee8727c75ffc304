"""Weather criteria: the national warning signals as data, and one vectorized engine.

The hourly frame (``WEATHER_COLUMNS``) becomes a dense grid per variable,
locations x hours. Every rule then looks at column windows relative to
``now`` for all locations at once: sums, cumulative sums and comparisons in
numpy, no Python loop per location or hour. Regional overrides split the
locations into groups, each graded with its own numbers. A location takes
the highest level that fires for each hazard, and the warning says why.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from alerts.criteria.common import level_keys
from alerts.model import Hazard, Level, Warning
from alerts.regions import EARTH_RADIUS_KM

__all__ = [
    "VARIABLES",
    "Grid",
    "WeatherRules",
    "grade_weather",
    "highest",
    "to_grid",
]

# Variables a rule may name; rain_mm is derived (precipitation minus snowfall water).
VARIABLES = (
    "precipitation_mm",
    "rain_mm",
    "snowfall_water_mm",
    "temperature_c",
    "relative_humidity_pct",
    "wind_speed_ms",
    "wind_gust_ms",
    "visibility_m",
    "pm25_ugm3",
)
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_COND = re.compile(r"^\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
_EPS = 1e-9  # sums of tenths must still reach their threshold exactly
WEATHER_HAZARDS = {
    Hazard.RAINSTORM,
    Hazard.BLIZZARD,
    Hazard.GALE,
    Hazard.TYPHOON,
    Hazard.COLD_WAVE,
    Hazard.HEAT,
    Hazard.FOG,
    Hazard.HAZE,
    Hazard.FROST,
    Hazard.ROAD_ICING,
    Hazard.SANDSTORM,
}


# -- rule models ----------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known(variable: str) -> str:
    if variable not in VARIABLES:
        raise ValueError(f"unknown variable {variable!r}; known: {', '.join(VARIABLES)}")
    return variable


@dataclass(frozen=True)
class Condition:
    variable: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.variable} {self.op} {self.value:g}"


class AccumulationLevel(_Strict):
    kind: Literal["accumulation"]
    variable: str
    window_h: float = Field(gt=0, le=240)
    threshold: float = Field(gt=0)

    _var = field_validator("variable")(lambda cls, v: _known(v))  # type: ignore[arg-type]


class AnyHourLevel(_Strict):
    kind: Literal["any_hour"]
    window_h: float = Field(gt=0, le=240)
    when: list[dict[str, str]] = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _conditions(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        for alternative in value:
            if not alternative:
                raise ValueError("an alternative needs at least one condition")
            for variable, text in alternative.items():
                _known(variable)
                if not _COND.match(str(text)):
                    raise ValueError(f"{variable}: {text!r} is not 'OP NUMBER' (OP >=, >, <=, <)")
        return value

    def alternatives(self) -> list[list[Condition]]:
        out = []
        for alternative in self.when:
            conds = []
            for variable, text in alternative.items():
                match = _COND.match(str(text))
                assert match is not None
                conds.append(Condition(variable, match.group(1), float(match.group(2))))
            out.append(conds)
        return out


class DailyRunLevel(_Strict):
    kind: Literal["daily_run"]
    variable: str
    stat: Literal["max", "min"]
    op: Literal[">=", ">", "<=", "<"]
    value: float
    days: int = Field(ge=1, le=10)
    min_hours: int = Field(18, ge=1, le=24)

    _var = field_validator("variable")(lambda cls, v: _known(v))  # type: ignore[arg-type]

    @property
    def window_h(self) -> float:
        return 24.0 * self.days


class ColdWaveLevel(_Strict):
    kind: Literal["cold_wave"]
    window_h: float = Field(gt=0, le=240)
    drop_c: float = Field(gt=0)
    tmin_c: float
    wind_ms: float = Field(ge=0)


LevelRule = Annotated[
    AccumulationLevel | AnyHourLevel | DailyRunLevel | ColdWaveLevel,
    Field(discriminator="kind"),
]
_LEVEL_RULE: TypeAdapter[Any] = TypeAdapter(LevelRule)


class HazardRules(_Strict):
    levels: dict[Level, LevelRule] = Field(min_length=1)
    months: list[int] | None = None  # local months in which the hazard applies
    near_cyclone_km: float | None = Field(None, gt=0)
    replaces: Hazard | None = None

    _parse_levels = model_validator(mode="before")(level_keys)

    @field_validator("months")
    @classmethod
    def _months(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(not 1 <= m <= 12 for m in value)):
            raise ValueError("months are 1..12")
        return value


class Override(_Strict):
    id: str = Field(min_length=1)
    note: str = ""
    regions: list[str] = Field(min_length=1)
    hazard: Hazard
    levels: dict[Level, dict[str, Any]] = Field(min_length=1)

    _parse_levels = model_validator(mode="before")(level_keys)

    @field_validator("regions")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not re.fullmatch(r"\d{2,12}", str(prefix)):
                raise ValueError(f"region prefix {prefix!r} is not 2-12 digits")
        return [str(p) for p in value]


class WeatherRules(_Strict):
    version: str = Field(min_length=1)
    timezone: str = "Asia/Shanghai"
    hazards: dict[Hazard, HazardRules]
    overrides: list[Override] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("hazards")
    @classmethod
    def _weather_only(cls, value: dict[Hazard, HazardRules]) -> dict[Hazard, HazardRules]:
        for hazard in value:
            if hazard not in WEATHER_HAZARDS:
                raise ValueError(f"{hazard.value}: not graded from forecasts")
        return value

    @model_validator(mode="after")
    def _overrides_apply(self) -> WeatherRules:
        ids = [o.id for o in self.overrides]
        if len(ids) != len(set(ids)):
            raise ValueError(f"override ids must be unique: {ids}")
        for o in self.overrides:
            if o.hazard not in self.hazards:
                raise ValueError(f"override {o.id}: hazard {o.hazard.value} has no national rule")
            for level in o.levels:
                if level not in self.hazards[o.hazard].levels:
                    raise ValueError(f"override {o.id}: {o.hazard.value} has no {level.colour}")
                self.level_rule(o.hazard, level, o)  # merged rule must validate
        return self

    def level_rule(self, hazard: Hazard, level: Level, override: Override | None = None) -> Any:
        base = self.hazards[hazard].levels[level]
        if override is None or level not in override.levels:
            return base
        merged = {**base.model_dump(), **override.levels[level]}
        try:
            return _LEVEL_RULE.validate_python(merged)
        except Exception as exc:
            raise ValueError(f"override {override.id}, {level.colour}: {exc}") from None


# -- the grid -----------------------------------------------------------------------------


@dataclass
class Grid:
    """Hourly values as dense arrays, locations x hours (NaN where missing)."""

    location_ids: np.ndarray
    times: pd.DatetimeIndex  # hour ends, UTC, sorted, unique
    values: dict[str, np.ndarray]
    latitude: np.ndarray
    longitude: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.location_ids), len(self.times)

    @functools.cached_property
    def hour_ends(self) -> np.ndarray:
        """The times as Python datetimes, for explanations (boxed once, not per warning)."""
        return np.asarray(self.times.to_pydatetime(), dtype=object)


def to_grid(frame: pd.DataFrame, rows: np.ndarray | None = None) -> Grid:
    """Pivot the long weather frame (or the ``rows`` mask of it) into (location x hour) arrays."""
    keep = slice(None) if rows is None else rows

    def column(name: str) -> np.ndarray:
        return frame[name].to_numpy(dtype="float64", na_value=np.nan)[keep]

    ids = frame["location_id"]
    ids = (ids if ids.dtype == "str" else ids.astype(str)).to_numpy()[keep]
    loc_codes, locations = pd.factorize(ids)
    times = pd.DatetimeIndex(frame["time"])
    if times.tz is None:
        raise ValueError("weather times must be timezone-aware UTC")
    times = times[keep]
    time_codes, uniq = pd.factorize(times, sort=True)
    shape = (len(locations), len(uniq))
    values: dict[str, np.ndarray] = {}
    for name in VARIABLES:
        arr = np.full(shape, np.nan)
        if name in frame.columns:
            arr[loc_codes, time_codes] = column(name)
        values[name] = arr
    snow = np.nan_to_num(values["snowfall_water_mm"], nan=0.0)
    values["rain_mm"] = np.clip(values["precipitation_mm"] - snow, 0.0, None)
    first = ~pd.Series(loc_codes).duplicated().to_numpy()
    order = np.argsort(loc_codes[first])
    lat = column("latitude")[first][order]
    lon = column("longitude")[first][order]
    return Grid(np.asarray(locations, dtype=object), pd.DatetimeIndex(uniq), values, lat, lon)


# -- evaluating one level's rule on a group of locations --------------------------------------


@dataclass
class _Outcome:
    fired: np.ndarray  # bool per location of the group
    value: np.ndarray  # the observed or forecast value that decided
    reached: np.ndarray  # column index of the hour reached (-1 if none)
    threshold: np.ndarray
    variable: np.ndarray  # the variable that decided, per location
    basis: np.ndarray  # "forecast" / "observed"
    window_h: float = 0.0


def _cols(times: pd.DatetimeIndex, start: datetime, end: datetime) -> np.ndarray:
    """Column indices of hours ending in (start, end]."""
    lo = times.searchsorted(pd.Timestamp(start), side="right")
    hi = times.searchsorted(pd.Timestamp(end), side="right")
    return np.arange(lo, hi)


def _window(g: Grid, variable: str, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values of the rows over a contiguous run of columns (a view-sized copy, not the grid)."""
    if not len(cols):
        return np.empty((len(rows), 0))
    span = slice(cols[0], cols[-1] + 1)
    if len(rows) == g.shape[0]:  # every location (rows are sorted and unique): a view
        return g.values[variable][:, span]
    return g.values[variable][rows, span]


def _extreme(x: np.ndarray, op: str) -> np.ndarray:
    if x.shape[1] == 0:
        return np.full(x.shape[0], np.nan)
    if op in (">=", ">"):
        out = np.max(np.where(np.isnan(x), -np.inf, x), axis=1)
        return np.where(np.isinf(out), np.nan, out)
    out = np.min(np.where(np.isnan(x), np.inf, x), axis=1)
    return np.where(np.isinf(out), np.nan, out)


def _first(mask: np.ndarray, cols: np.ndarray) -> np.ndarray:
    if mask.shape[1] == 0:
        return np.full(mask.shape[0], -1)
    hit = mask.any(axis=1)
    return np.where(hit, cols[np.argmax(mask, axis=1)] if len(cols) else -1, -1)


def _accumulation(rule: AccumulationLevel, g: Grid, rows: np.ndarray, now: datetime) -> _Outcome:
    w = timedelta(hours=rule.window_h)
    fwd, past = _cols(g.times, now, now + w), _cols(g.times, now - w, now)
    n, thr = len(rows), rule.threshold - _EPS
    f_cum = np.nancumsum(_window(g, rule.variable, rows, fwd), axis=1)
    f_sum = f_cum[:, -1] if len(fwd) else np.zeros(n)
    p_cum = np.nancumsum(_window(g, rule.variable, rows, past), axis=1)
    p_sum = p_cum[:, -1] if len(past) else np.zeros(n)
    fired_f = f_sum >= thr
    # "still raining": the hour ending in (now, now + 1 h]; absent or missing is not rain
    first = _cols(g.times, now, now + timedelta(hours=1))
    with np.errstate(invalid="ignore"):
        going_on = (
            _window(g, rule.variable, rows, first[:1])[:, 0] > 0
            if len(first)
            else np.zeros(n, dtype=bool)
        )
    fired_o = (p_sum >= thr) & going_on & ~fired_f
    reached = np.where(fired_f, _first(f_cum >= thr, fwd), _first(p_cum >= thr, past))
    return _Outcome(
        fired=fired_f | fired_o,
        value=np.where(fired_o, p_sum, f_sum),
        reached=np.where(fired_f | fired_o, reached, -1),
        threshold=np.full(n, rule.threshold),
        variable=np.full(n, rule.variable),
        basis=np.where(fired_o, "observed", "forecast"),
    )


def _any_hour(rule: AnyHourLevel, g: Grid, rows: np.ndarray, now: datetime) -> _Outcome:
    fwd = _cols(g.times, now, now + timedelta(hours=rule.window_h))
    n = len(rows)
    alts = rule.alternatives()
    firsts, values, thresholds = [], [], []
    for conds in alts:
        mask = np.ones((n, len(fwd)), dtype=bool)
        for c in conds:
            with np.errstate(invalid="ignore"):
                mask &= _OPS[c.op](_window(g, c.variable, rows, fwd), c.value)
        firsts.append(_first(mask, fwd))
        primary = conds[0]
        values.append(_extreme(_window(g, primary.variable, rows, fwd), primary.op))
        thresholds.append(primary.value)
    first = np.stack(firsts)  # alternatives x locations
    fired = np.asarray((first >= 0).any(axis=0))
    # the alternative that fires first explains the warning
    key = np.where(first >= 0, first, np.iinfo(np.int64).max)
    chosen = np.argmin(key, axis=0)
    pick = np.arange(n)
    return _Outcome(
        fired=fired,
        value=np.stack(values)[chosen, pick],
        reached=np.where(fired, first[chosen, pick], -1),
        threshold=np.asarray(thresholds)[chosen],
        variable=np.asarray([a[0].variable for a in alts])[chosen],
        basis=np.full(n, "forecast"),
    )


def _daily_run(
    rule: DailyRunLevel, g: Grid, rows: np.ndarray, now: datetime, tz: ZoneInfo
) -> _Outcome:
    n = len(rows)
    local_days = (g.times - pd.Timedelta(hours=1)).tz_convert(tz).normalize()
    today = pd.Timestamp(now).tz_convert(tz).normalize()
    ok = np.ones(n, dtype=bool)
    stats = []
    for d in range(rule.days):
        cols = np.flatnonzero(local_days == today + pd.Timedelta(days=d))
        day = _window(g, rule.variable, rows, cols)
        count = (~np.isnan(day)).sum(axis=1)
        stat = _extreme(day, ">=" if rule.stat == "max" else "<=")
        with np.errstate(invalid="ignore"):
            ok &= (count >= rule.min_hours) & _OPS[rule.op](stat, rule.value)
        stats.append(stat)
    binding = _extreme(np.stack(stats, axis=1), "<=" if rule.op in (">=", ">") else ">=")
    day0 = np.flatnonzero(local_days == today)
    with np.errstate(invalid="ignore"):
        reached = _first(_OPS[rule.op](_window(g, rule.variable, rows, day0), rule.value), day0)
    return _Outcome(
        ok,
        binding,
        np.where(ok, reached, -1),
        np.full(n, rule.value),
        np.full(n, rule.variable),
        np.full(n, "forecast"),
    )


def _cold_wave(rule: ColdWaveLevel, g: Grid, rows: np.ndarray, now: datetime) -> _Outcome:
    n = len(rows)
    past = _cols(g.times, now - timedelta(hours=24), now)
    fwd = _cols(g.times, now, now + timedelta(hours=rule.window_h))
    ahead = _window(g, "temperature_c", rows, fwd)
    base = _extreme(_window(g, "temperature_c", rows, past), "<=")
    future = _extreme(ahead, "<=")
    wind = _extreme(_window(g, "wind_speed_ms", rows, fwd), ">=")
    drop = base - future
    with np.errstate(invalid="ignore"):
        fired = (drop >= rule.drop_c - _EPS) & (future <= rule.tmin_c) & (wind >= rule.wind_ms)
    if len(fwd):
        coldest = fwd[np.argmin(np.where(np.isnan(ahead), np.inf, ahead), axis=1)]
    else:
        coldest = np.full(n, -1)
    return _Outcome(
        fired,
        drop,
        np.where(fired, coldest, -1),
        np.full(n, rule.drop_c),
        np.full(n, "temperature_drop_c"),
        np.full(n, "forecast"),
    )


def _evaluate(rule: Any, g: Grid, rows: np.ndarray, now: datetime, tz: ZoneInfo) -> _Outcome:
    if isinstance(rule, AccumulationLevel):
        out = _accumulation(rule, g, rows, now)
    elif isinstance(rule, AnyHourLevel):
        out = _any_hour(rule, g, rows, now)
    elif isinstance(rule, DailyRunLevel):
        out = _daily_run(rule, g, rows, now, tz)
    else:
        out = _cold_wave(rule, g, rows, now)
    out.window_h = float(rule.window_h)
    return out


def horizon(rules: WeatherRules) -> tuple[timedelta, timedelta]:
    """How far before and after ``now`` any rule looks: hours outside are never read."""
    back, ahead = 24.0, 1.0  # cold wave's base day; accumulation's first forecast hour
    for hazard, hz in rules.hazards.items():
        for level in hz.levels:
            rule_set = [
                rules.level_rule(hazard, level, o) for o in rules.overrides if o.hazard is hazard
            ] + [hz.levels[level]]
            for rule in rule_set:
                ahead = max(ahead, float(rule.window_h) + 24.0)  # +1 local day: daily runs
                if isinstance(rule, AccumulationLevel):
                    back = max(back, float(rule.window_h))
    return timedelta(hours=back + 1), timedelta(hours=ahead + 1)


# -- the engine --------------------------------------------------------------------------------


def _override_groups(rules: WeatherRules, hazard: Hazard, ids: np.ndarray) -> np.ndarray:
    """Index into the hazard's overrides per location (-1: national), longest prefix wins."""
    group = np.full(len(ids), -1)
    best = np.zeros(len(ids), dtype=int)
    codes = pd.Series(ids.astype(str))
    for k, o in enumerate(rules.overrides):
        if o.hazard is not hazard:
            continue
        for prefix in o.regions:
            hit = codes.str.startswith(prefix).to_numpy() & (len(prefix) > best)
            group[hit], best[hit] = k, len(prefix)
    return group


def _near(g: Grid, points: Sequence[tuple[float, float]], km: float) -> np.ndarray:
    near = np.zeros(len(g.location_ids), dtype=bool)
    lat1, lon1 = np.radians(g.latitude), np.radians(g.longitude)
    for lat, lon in points:
        lat2, lon2 = math.radians(lat), math.radians(lon)
        h = (
            np.sin((lat2 - lat1) / 2) ** 2
            + np.cos(lat1) * math.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
        )
        with np.errstate(invalid="ignore"):
            near |= 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1))) <= km
    return near


def grade_weather(
    data: pd.DataFrame | Grid,
    rules: WeatherRules,
    now: datetime,
    *,
    cyclones: Sequence[tuple[float, float]] = (),
    names: dict[str, str] | None = None,
    source_ref: str = "forecast",
) -> list[Warning]:
    """Grade every location and hour at once: per (hazard, location), the highest level.

    ``cyclones`` are (lat, lon) of active tropical cyclones: within a typhoon
    rule's ``near_cyclone_km`` the typhoon rule grades instead of the one it
    replaces (gale). ``names`` maps location ids to display names.
    """
    if isinstance(data, Grid):
        g = data
    else:
        before, after = horizon(rules)
        t = data["time"]
        g = to_grid(data, ((t > now - before) & (t <= now + after)).to_numpy())
    if g.shape[0] == 0:
        return []
    tz = ZoneInfo(rules.timezone)
    local_month = pd.Timestamp(now).tz_convert(tz).month
    all_rows = np.arange(g.shape[0])
    replaced: dict[Hazard, np.ndarray] = {}
    for hz in rules.hazards.values():
        if hz.near_cyclone_km and hz.replaces:
            replaced[hz.replaces] = _near(g, cyclones, hz.near_cyclone_km)

    warnings: list[Warning] = []
    for hazard, hz in rules.hazards.items():
        if hz.months and local_month not in hz.months:
            continue
        applies = np.ones(g.shape[0], dtype=bool)
        if hz.near_cyclone_km:
            applies = _near(g, cyclones, hz.near_cyclone_km)
        if hazard in replaced:
            applies &= ~replaced[hazard]
        if not applies.any():
            continue
        groups = _override_groups(rules, hazard, g.location_ids)
        best = np.zeros(g.shape[0], dtype=int)
        chosen: dict[int, tuple[Level, _Outcome, int, str]] = {}
        for level in sorted(hz.levels, reverse=True):
            for k in np.unique(groups[applies]):
                rows = all_rows[applies & (groups == k) & (best == 0)]
                if not len(rows):
                    continue
                override = rules.overrides[k] if k >= 0 else None
                out = _evaluate(rules.level_rule(hazard, level, override), g, rows, now, tz)
                rule_id = f"{hazard.value}.{level.colour}" + (f"@{override.id}" if override else "")
                for j in np.flatnonzero(out.fired):
                    chosen[int(rows[j])] = (level, out, int(j), rule_id)
                best[rows[out.fired]] = int(level)
        warnings.extend(
            _warning(hazard, rules, g, i, *chosen[i], now, names or {}, source_ref)
            for i in sorted(chosen)
        )
    return warnings


def _warning(
    hazard: Hazard,
    rules: WeatherRules,
    g: Grid,
    i: int,
    level: Level,
    out: _Outcome,
    j: int,
    rule_id: str,
    now: datetime,
    names: dict[str, str],
    source_ref: str,
) -> Warning:
    location = str(g.location_ids[i])
    window_h = out.window_h
    col = int(out.reached[j])
    reached_at = g.hour_ends[col] if col >= 0 else now
    value = float(out.value[j]) if not np.isnan(out.value[j]) else None
    threshold = float(out.threshold[j])
    basis = str(out.basis[j])
    shown = f"{value:.1f}" if value is not None else "n/a"
    reason = (
        f"{rule_id}: {out.variable[j]} {shown} vs {threshold:g} over {window_h:g} h "
        f"({basis}), reached {reached_at:%Y-%m-%d %H:%M}Z"
    )
    return Warning(
        hazard=hazard,
        level=level,
        region_code=location,
        region_name=names.get(location, location),
        subject="weather",
        onset=min(reached_at, now) if basis == "observed" else reached_at,
        expires=now + timedelta(hours=window_h),
        rule_id=rule_id,
        rule_set_version=rules.version,
        observed=value,
        threshold=threshold,
        reason=reason,
        facts={
            "location_id": location,
            "location_name": names.get(location, location),
            "variable": str(out.variable[j]),
            "value": value,
            "threshold": threshold,
            "window_h": window_h,
            "basis": basis,
            "reached_at": reached_at.isoformat(),
            "location_latitude": None if np.isnan(g.latitude[i]) else float(g.latitude[i]),
            "location_longitude": None if np.isnan(g.longitude[i]) else float(g.longitude[i]),
        },
        window_h=window_h,
        reached_at=reached_at,
        source_ref=source_ref,
    )


def highest(warnings: Iterable[Warning]) -> list[Warning]:
    """Keep only the highest level per (hazard, location, source reference)."""
    best: dict[tuple[str, str, str | None], Warning] = {}
    for w in warnings:
        key = (w.hazard.value, w.region_code, w.source_ref)
        if key not in best or w.level > best[key].level:
            best[key] = w
    return list(best.values())
