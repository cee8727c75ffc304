"""The daily 72-hour risk outlook (每日72小时风险展望), per prefecture and province.

The weather rules grade the forecast at ``now``, ``now + 3 h``, ... up to
``now + 69 h`` with the ordinary engine (:func:`alerts.criteria.weather.grade_weather`),
all locations at once, on hours up to ``now + 72 h``. Each (hazard,
prefecture) keeps the highest level any step forecasts; its ``peak_at`` is
when that level's threshold is first reached (ties: the earliest).

Near-threshold (临近预警标准) risks come from the same engine on a relaxed copy
of the rules: each hazard's lowest level only, its thresholds (and those of
the regional overrides) moved by the ``near_threshold`` settings of
``alerts/data/outlook.yaml`` (70 % of the threshold, 3 °C for temperatures, the
relative humidity untouched). A hazard that fires relaxed but reaches no real
level in the 72 hours is ``near``; of its steps the one closest to the
threshold is kept.

The same file holds the seasonal risk calendar (drowning and heat in summer,
gas poisoning and fire in winter, flood and typhoon seasons, ...), whose
ranges are publicity-calendar periods (:mod:`alerts.publicity`) or their own.

:func:`build_outlook` is pure; :func:`compute` reads the stored (or freshly
fetched) Open-Meteo forecasts of a :class:`~alerts.pipeline.Runtime`, and
:func:`outlook_from_files` grades local Open-Meteo files (``alerts outlook
--input``). The JSON shape is :meth:`Outlook.to_json`, see docs/outlook.md.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.criteria import RuleFileError, load_rule_file
from alerts.criteria.common import hazard_names, keyed_by_id
from alerts.criteria.weather import (
    VARIABLES,
    AccumulationLevel,
    AnyHourLevel,
    ColdWaveLevel,
    DailyRunLevel,
    Grid,
    WeatherRules,
    grade_weather,
    horizon,
    to_grid,
)
from alerts.model import Hazard, Level, Warning, utc_iso
from alerts.publicity import Calendar, Dated, Recurring, adcode_prefix, load_calendar

if TYPE_CHECKING:
    from alerts.config import Settings
    from alerts.feeds.openmeteo import Location
    from alerts.pipeline import Runtime
    from alerts.regions import Regions

__all__ = [
    "NearThreshold",
    "Outlook",
    "OutlookRules",
    "Place",
    "PrefectureOutlook",
    "Risk",
    "SeasonalRisk",
    "active_seasonal",
    "build_outlook",
    "compute",
    "load_outlook_rules",
    "outlook_from_files",
    "packaged_outlook_path",
    "place_names",
    "relaxed_rules",
]

log = logging.getLogger(__name__)

STEP_H = 3  # the outlook grades at now, now + 3 h, ...
FRESH = timedelta(hours=6)  # a stored forecast fetched this close to now is used as it is
CYCLONES_FRESH = timedelta(hours=24)  # GDACS positions older than this are not used
MIN_AHEAD = timedelta(hours=48)  # ... if it reaches at least this far ahead
SERIES = ("precipitation_mm", "temperature_c", "wind_gust_ms")
_ABOVE = (">=", ">")


# -- the outlook file -------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NearThreshold(_Frozen):
    """How close to the lowest level's threshold counts as near-threshold."""

    share: float = Field(0.7, gt=0, lt=1)
    margins: dict[str, float] = Field(default_factory=lambda: {"temperature_c": 3.0})
    unscaled: tuple[str, ...] = ("relative_humidity_pct",)

    @field_validator("margins")
    @classmethod
    def _margins(cls, value: dict[str, float]) -> dict[str, float]:
        for variable, margin in value.items():
            _variable(variable)
            if not margin > 0:
                raise ValueError(f"margins.{variable}: must be > 0, got {margin}")
        return value

    @field_validator("unscaled")
    @classmethod
    def _unscaled(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for variable in value:
            _variable(variable)
        return value

    def relax(self, variable: str, op: str, value: float) -> float:
        """The relaxed limit of ``variable OP value`` (an "at least" limit goes down)."""
        if variable in self.unscaled:
            return value
        if variable in self.margins:
            margin = self.margins[variable]
            return value - margin if op in _ABOVE else value + margin
        return value * self.share if op in _ABOVE else value / self.share


def _variable(name: str) -> str:
    if name not in VARIABLES:
        raise ValueError(f"unknown variable {name!r}; known: {', '.join(VARIABLES)}")
    return name


class SeasonalRisk(_Frozen):
    """One entry of the seasonal risk calendar."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    periods: tuple[str, ...] = ()  # publicity calendar period names
    recurring: tuple[Recurring, ...] = ()
    dated: tuple[Dated, ...] = ()
    regions: tuple[str, ...] = ()  # adcode prefixes; empty: nationwide
    hazards: tuple[Hazard, ...] = ()
    advice_zh: str = Field(min_length=1)
    advice_en: str = Field(min_length=1)

    @field_validator("periods", mode="before")
    @classmethod
    def _one_period(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(adcode_prefix(v) for v in value)
        return value

    @field_validator("hazards", mode="before")
    @classmethod
    def _hazards(cls, value: Any) -> Any:
        return hazard_names(value)

    @model_validator(mode="after")
    def _some_range(self) -> SeasonalRisk:
        if not (self.periods or self.recurring or self.dated):
            raise ValueError("a seasonal risk needs `periods`, `recurring` or `dated`")
        return self

    def active_on(self, day: date, calendar: Calendar) -> bool:
        if any(r.contains(day) for r in self.recurring) or any(r.contains(day) for r in self.dated):
            return True
        return any(calendar.periods[name].match(day) for name in self.periods)

    def applies_to(self, codes: Iterable[str]) -> bool:
        """Nationwide, or one of the codes lies in one of its regions."""
        return not self.regions or any(c.startswith(self.regions) for c in codes)

    def summary(self) -> dict[str, Any]:
        """The entry of an outlook's ``seasonal`` list."""
        return {
            "id": self.id,
            "zh": self.zh,
            "en": self.en,
            "hazards": [h.value for h in self.hazards],
            "advice_zh": self.advice_zh,
            "advice_en": self.advice_en,
            "regions": list(self.regions),
        }


class OutlookRules(_Frozen):
    """The validated outlook file (alerts/data/outlook.yaml)."""

    version: str = Field(min_length=1)
    near_threshold: NearThreshold = Field(default_factory=lambda: NearThreshold.model_validate({}))
    chart_limit: int = Field(6, ge=1, le=50)
    seasonal: dict[str, SeasonalRisk] = Field(default_factory=dict)

    @field_validator("seasonal", mode="before")
    @classmethod
    def _by_id(cls, value: Any) -> Any:
        return keyed_by_id(value, "seasonal risk")

    def check_periods(self, calendar: Calendar) -> list[str]:
        """Problems: period names the publicity calendar does not have."""
        return [
            f"seasonal.{risk.id}.periods: unknown period {name!r} of the publicity calendar"
            f" (known: {', '.join(calendar.periods)})"
            for risk in self.seasonal.values()
            for name in risk.periods
            if name not in calendar.periods
        ]


def packaged_outlook_path() -> Path:
    return Path(str(resources.files("alerts") / "data" / "outlook.yaml"))


def _load(path: Path, calendar: Calendar) -> OutlookRules:
    rules = load_rule_file(path, OutlookRules)
    problems = rules.check_periods(calendar)
    if problems:
        raise RuleFileError(f"rule file {path}: " + "; ".join(problems))
    return rules


@lru_cache(maxsize=1)
def _packaged() -> OutlookRules:
    return _load(packaged_outlook_path(), load_calendar())


def load_outlook_rules(
    path: str | Path | None = None, *, calendar: Calendar | None = None
) -> OutlookRules:
    """Load and validate an outlook file (the packaged one, cached, by default).

    Seasonal risks' ``periods`` must be periods of ``calendar`` (the packaged
    publicity calendar by default): an unknown one raises
    :class:`~alerts.criteria.RuleFileError` naming the risk id and the period.
    """
    if path is None and calendar is None:
        return _packaged()
    return _load(Path(path or packaged_outlook_path()), calendar or load_calendar())


def active_seasonal(
    when: datetime,
    outlook_rules: OutlookRules,
    calendar: Calendar,
    region_prefix: str | None = None,
) -> list[SeasonalRisk]:
    """Seasonal risks active on the local date of ``when``, in file order.

    With ``region_prefix`` only those nationwide or with a region overlapping
    the prefix (one inside the other: "44" and "4401" overlap).
    """
    day = calendar.local_date(when)
    prefix = adcode_prefix(region_prefix) if region_prefix is not None else None
    return [
        risk
        for risk in outlook_rules.seasonal.values()
        if risk.active_on(day, calendar)
        and (
            prefix is None
            or not risk.regions
            or any(r.startswith(prefix) or prefix.startswith(r) for r in risk.regions)
        )
    ]


# -- relaxing the rules -------------------------------------------------------------------


def _number(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _relaxed_level(rule: Any, near: NearThreshold) -> dict[str, Any]:
    data: dict[str, Any] = rule.model_dump()
    if isinstance(rule, AccumulationLevel):
        data["threshold"] = near.relax(rule.variable, ">=", rule.threshold)
    elif isinstance(rule, AnyHourLevel):
        data["when"] = [
            {c.variable: f"{c.op} {_number(near.relax(c.variable, c.op, c.value))}" for c in alt}
            for alt in rule.alternatives()
        ]
    elif isinstance(rule, DailyRunLevel):
        data["value"] = near.relax(rule.variable, rule.op, rule.value)
    elif isinstance(rule, ColdWaveLevel):
        data["drop_c"] = rule.drop_c * near.share
        data["tmin_c"] = near.relax("temperature_c", "<=", rule.tmin_c)
        data["wind_ms"] = near.relax("wind_speed_ms", ">=", rule.wind_ms)
    return data


def relaxed_rules(rules: WeatherRules, near: NearThreshold) -> WeatherRules:
    """Each hazard's lowest level only, its limits relaxed (regional overrides too)."""
    hazards: dict[str, Any] = {}
    for hazard, hz in rules.hazards.items():
        lowest = min(hz.levels)
        hazards[hazard.value] = {
            "levels": {lowest.colour: _relaxed_level(hz.levels[lowest], near)},
            "months": hz.months,
            "near_cyclone_km": hz.near_cyclone_km,
            "replaces": hz.replaces.value if hz.replaces else None,
        }
    overrides = []
    for o in rules.overrides:
        lowest = min(rules.hazards[o.hazard].levels)
        if lowest in o.levels:  # otherwise its places grade with the national lowest level
            merged = rules.level_rule(o.hazard, lowest, o)
            overrides.append(
                {
                    "id": o.id,
                    "note": o.note,
                    "regions": list(o.regions),
                    "hazard": o.hazard.value,
                    "levels": {lowest.colour: _relaxed_level(merged, near)},
                }
            )
    try:
        return WeatherRules.model_validate(
            {
                "version": rules.version,
                "timezone": rules.timezone,
                "hazards": hazards,
                "overrides": overrides,
            }
        )
    except ValueError as exc:
        raise ValueError(
            f"near_threshold relaxes a weather rule into an invalid one: {exc}"
        ) from None


# -- the outlook ----------------------------------------------------------------------------


class Place(NamedTuple):
    """A prefecture's name and its province (code and name)."""

    name: str
    province: str
    province_name: str


def place_names(regions: Regions) -> dict[str, Place]:
    """Prefecture adcode -> its name and province, from the regions table."""
    f = regions.frame
    return {
        str(code): Place(str(name), str(pcode), str(pname))
        for code, name, pcode, pname in zip(
            f["adcode"], f["name"], f["province_code"], f["province"], strict=True
        )
    }


@dataclass(frozen=True)
class Risk:
    """One hazard of one prefecture over the outlook window."""

    hazard: Hazard
    level: Level | None  # None: near-threshold only
    near: bool
    peak_at: datetime | None
    value: float | None
    threshold: float | None
    variable: str
    ratio: float | None
    window_h: float | None
    rule_id: str

    @property
    def rank(self) -> tuple[int, float]:
        return (int(self.level or 0), self.ratio if self.ratio is not None else 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "hazard": self.hazard.value,
            "level": int(self.level) if self.level is not None else None,
            "near": self.near,
            "peak_at": utc_iso(self.peak_at),
            "value": self.value,
            "threshold": self.threshold,
            "variable": self.variable,
            "ratio": self.ratio,
            "window_h": self.window_h,
            "rule_id": self.rule_id,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Risk:
        level = d.get("level")
        return cls(
            hazard=Hazard(d["hazard"]),
            level=Level(int(level)) if level else None,
            near=bool(d.get("near")),
            peak_at=_time(d.get("peak_at")),
            value=d.get("value"),
            threshold=d.get("threshold"),
            variable=str(d.get("variable") or ""),
            ratio=d.get("ratio"),
            window_h=d.get("window_h"),
            rule_id=str(d.get("rule_id") or ""),
        )


def _risk_key(r: Risk) -> tuple[Any, ...]:
    """Most severe first: level, then ratio, then the earlier peak, then the hazard."""
    peak = r.peak_at.timestamp() if r.peak_at else math.inf
    return (-r.rank[0], -r.rank[1], peak, r.hazard.value)


@dataclass(frozen=True)
class PrefectureOutlook:
    code: str
    name: str
    province: str
    province_name: str
    risks: tuple[Risk, ...] = ()
    series: dict[str, list[Any]] | None = None

    @property
    def level(self) -> int:
        return max((int(r.level) for r in self.risks if r.level is not None), default=0)

    @property
    def key(self) -> tuple[Any, ...]:
        """Those with risks first (level desc, ratio desc), then by code."""
        if not self.risks:
            return (1, 0, 0.0, self.code)
        top = self.risks[0]
        return (0, -top.rank[0], -top.rank[1], self.code)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "province": self.province,
            "province_name": self.province_name,
            "level": self.level,
            "risks": [r.to_json() for r in self.risks],
            "series": self.series,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PrefectureOutlook:
        risks = sorted((Risk.from_json(r) for r in d.get("risks") or []), key=_risk_key)
        series = d.get("series")
        return cls(
            code=str(d["code"]),
            name=str(d.get("name") or d["code"]),
            province=str(d.get("province") or ""),
            province_name=str(d.get("province_name") or ""),
            risks=tuple(risks),
            series={k: list(v) for k, v in series.items()} if series else None,
        )


@dataclass(frozen=True)
class Outlook:
    """The outlook of one scope (national, or an adcode prefix); see docs/outlook.md."""

    issued_at: datetime
    start: datetime
    end: datetime
    hours: int
    timezone: str
    rule_set_version: str
    near_share: float
    scope: dict[str, str] | None
    prefectures: tuple[PrefectureOutlook, ...]
    seasonal: tuple[dict[str, Any], ...] = ()

    @property
    def level(self) -> int:
        """The highest level forecast anywhere in scope (0: none)."""
        return max((p.level for p in self.prefectures), default=0)

    def provinces(self) -> list[dict[str, Any]]:
        """Per province with a risk, highest first: per hazard, the worst prefecture's figures."""
        grouped: dict[str, list[PrefectureOutlook]] = {}
        for p in self.prefectures:
            if p.risks:
                grouped.setdefault(p.province, []).append(p)
        out = []
        for code, members in grouped.items():
            by_hazard: dict[Hazard, list[tuple[Risk, str]]] = {}
            for p in members:
                for r in p.risks:
                    by_hazard.setdefault(r.hazard, []).append((r, p.code))
            hazards = []
            for pairs in by_hazard.values():
                pairs.sort(key=lambda rc: (_risk_key(rc[0]), rc[1]))
                worst = pairs[0][0]
                entry = worst.to_json()
                del entry["window_h"], entry["rule_id"]
                entry["prefectures"] = [c for _, c in pairs]
                hazards.append((_risk_key(worst), entry))
            hazards.sort(key=lambda he: he[0])
            level = max(p.level for p in members)
            top_ratio = max(
                r.rank[1] for p in members for r in p.risks if int(r.level or 0) == level
            )
            out.append(
                (
                    (-level, -top_ratio, code),
                    {
                        "code": code,
                        "name": members[0].province_name or code,
                        "level": level,
                        "hazards": [e for _, e in hazards],
                    },
                )
            )
        out.sort(key=lambda ke: ke[0])
        return [e for _, e in out]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "outlook",
            "issued_at": utc_iso(self.issued_at),
            "start": utc_iso(self.start),
            "end": utc_iso(self.end),
            "hours": self.hours,
            "timezone": self.timezone,
            "rule_set_version": self.rule_set_version,
            "near_share": self.near_share,
            "scope": dict(self.scope) if self.scope else None,
            "level": self.level,
            "provinces": self.provinces(),
            "prefectures": [p.to_json() for p in self.prefectures],
            "seasonal": [dict(s) for s in self.seasonal],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Outlook:
        """The outlook of :meth:`to_json` (province summaries and level are derived again)."""
        if d.get("kind", "outlook") != "outlook":
            raise ValueError(f"not an outlook: kind {d.get('kind')!r}")
        issued = _time(d.get("issued_at"))
        if issued is None:
            raise ValueError("outlook: issued_at is required")
        scope = d.get("scope")
        return cls(
            issued_at=issued,
            start=_time(d.get("start")) or issued,
            end=_time(d.get("end")) or issued,
            hours=int(d.get("hours") or 72),
            timezone=str(d.get("timezone") or "Asia/Shanghai"),
            rule_set_version=str(d.get("rule_set_version") or ""),
            near_share=float(d.get("near_share") or 0.0),
            scope={"code": str(scope["code"]), "name": str(scope["name"])} if scope else None,
            prefectures=tuple(
                sorted(
                    (PrefectureOutlook.from_json(p) for p in d.get("prefectures") or []),
                    key=lambda p: p.key,
                )
            ),
            seasonal=tuple(dict(s) for s in d.get("seasonal") or []),
        )

    def scoped(self, prefix: str) -> Outlook:
        """The prefectures whose code starts with ``prefix`` ("51", "5133", "513300").

        Provinces and level follow; seasonal risks limited to regions stay if a
        prefecture of the scope lies in one of them; hourly series stay where
        they are (build the national outlook with ``series_for`` the scopes, as
        :func:`compute` does, so every scope has its charts). A prefix matching
        no prefecture of the outlook raises ValueError.
        """
        code = adcode_prefix(prefix)
        kept = tuple(p for p in self.prefectures if p.code.startswith(code))
        if not kept:
            raise ValueError(
                f"unknown region {prefix!r}: no prefecture of the outlook has a code starting "
                f"with {code}"
            )
        codes = [p.code for p in kept]
        seasonal = tuple(
            s
            for s in self.seasonal
            if not s.get("regions") or any(c.startswith(tuple(s["regions"])) for c in codes)
        )
        return replace(
            self,
            scope={"code": code, "name": _scope_name(code, kept)},
            prefectures=kept,
            seasonal=seasonal,
        )


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        when = value
    else:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"time {value!r} has no time zone")
    return when.astimezone(UTC)


def _scope_name(code: str, prefectures: Sequence[PrefectureOutlook]) -> str:
    """A province's name for 2 digits, else the (first) prefecture's name."""
    inside = [p for p in prefectures if p.code.startswith(code)]
    if not inside:
        return code
    return (inside[0].province_name if len(code) == 2 else inside[0].name) or code


# -- building ---------------------------------------------------------------------------------


def _subset(g: Grid, rows: np.ndarray, cols: np.ndarray) -> Grid:
    return Grid(
        location_ids=g.location_ids[rows],
        times=g.times[cols],
        values={k: v[np.ix_(rows, cols)] for k, v in g.values.items()},
        latitude=g.latitude[rows],
        longitude=g.longitude[rows],
    )


def _grid(
    data: pd.DataFrame | Grid, rules: WeatherRules, now: datetime, hours: int, scope: str | None
) -> Grid:
    before, _ = horizon(rules)
    lo, hi = pd.Timestamp(now - before), pd.Timestamp(now + timedelta(hours=hours))
    if isinstance(data, Grid):
        rows = np.array([str(i).startswith(scope or "") for i in data.location_ids], dtype=bool)
        cols = np.asarray((data.times > lo) & (data.times <= hi))
        return _subset(data, np.flatnonzero(rows), np.flatnonzero(cols))
    t = data["time"]
    mask = ((t > lo) & (t <= hi)).to_numpy()
    if scope:
        mask = mask & data["location_id"].astype(str).str.startswith(scope).to_numpy()
    return to_grid(data, mask)


def _rule_op(
    rule: Any, variable: str, threshold: float | None, near: NearThreshold | None
) -> tuple[float | None, str]:
    """The real threshold and operator behind a warning's (possibly relaxed) threshold."""
    if isinstance(rule, AccumulationLevel):
        return rule.threshold, ">="
    if isinstance(rule, DailyRunLevel):
        return rule.value, rule.op
    if isinstance(rule, ColdWaveLevel):
        return rule.drop_c, ">="
    candidates = [alt[0] for alt in rule.alternatives() if alt[0].variable == variable]
    if not candidates:
        return threshold, ">="

    def shown(c: Any) -> float:
        return near.relax(c.variable, c.op, c.value) if near else c.value

    best = min(candidates, key=lambda c: abs(shown(c) - (threshold or 0.0)))
    return best.value, best.op


def _ratio(value: float | None, threshold: float | None, op: str) -> float | None:
    if value is None or threshold is None or not math.isfinite(value) or threshold <= 0:
        return None
    if op in _ABOVE:
        return value / threshold if value >= 0 else None
    return threshold / value if value > 0 else None


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _parse_rule_id(rule_id: str) -> tuple[Hazard, Level, str | None]:
    head, _, override = rule_id.partition("@")
    hazard, _, colour = head.partition(".")
    return Hazard(hazard), Level.parse(colour), override or None


def _risk(w: Warning, rules: WeatherRules, near: NearThreshold | None) -> tuple[Risk, float | None]:
    """A warning as a risk (near: graded with the relaxed rules, judged against the real ones)."""
    hazard, level, override_id = _parse_rule_id(w.rule_id)
    override = next((o for o in rules.overrides if o.id == override_id), None)
    variable = str(w.facts.get("variable") or "")
    rule = rules.level_rule(hazard, level, override)
    threshold, op = _rule_op(rule, variable, w.threshold, near)
    if near is None:  # a real level: its own threshold
        threshold = w.threshold
    ratio = _ratio(w.observed, threshold, op)
    return (
        Risk(
            hazard=hazard,
            level=None if near else level,
            near=near is not None,
            peak_at=w.reached_at,
            value=_round(w.observed, 1),
            threshold=threshold,
            variable=variable,
            ratio=_round(ratio, 2),
            window_h=w.window_h,
            rule_id=w.rule_id + ("~near" if near else ""),
        ),
        ratio,
    )


def _scan(
    g: Grid,
    rules: WeatherRules,
    now: datetime,
    steps: int,
    cyclones: Sequence[tuple[float, float]],
) -> Iterable[Warning]:
    for k in range(steps):
        yield from grade_weather(g, rules, now + timedelta(hours=STEP_H * k), cyclones=cyclones)


def build_outlook(
    frame_or_grid: pd.DataFrame | Grid,
    rules: WeatherRules,
    now: datetime,
    *,
    near: NearThreshold | None = None,
    seasonal: Sequence[SeasonalRisk] = (),
    names: Mapping[str, Place | str] | None = None,
    hours: int = 72,
    chart_limit: int = 6,
    scope: str | None = None,
    series_for: Sequence[str] = (),
    cyclones: Sequence[tuple[float, float]] = (),
) -> Outlook:
    """The outlook of the weather frame (or grid) for the ``hours`` after ``now``.

    ``near``: the near-threshold settings (default: share 0.7, 3 °C for
    temperatures). ``seasonal``: the seasonal risks active today
    (:func:`active_seasonal`); those limited to regions are kept if a
    prefecture of the outlook lies in one. ``names``: adcode -> :class:`Place`
    (:func:`place_names`) or a bare name; without, codes stand for names.
    ``scope``: an adcode prefix, only its prefectures are graded. Hourly series
    go to the ``chart_limit`` riskiest prefectures, and as many again within
    each prefix of ``series_for`` (for :meth:`Outlook.scoped`); when none is at
    risk, to the first prefecture. Pure: no I/O.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive time {now!r}: give a time zone")
    if hours < STEP_H:
        raise ValueError(f"hours must be at least {STEP_H}, got {hours}")
    now = now.astimezone(UTC)
    near = near or NearThreshold.model_validate({})
    code = adcode_prefix(scope) if scope is not None else None
    g = _grid(frame_or_grid, rules, now, hours, code)
    if code and not g.shape[0]:
        raise ValueError(
            f"unknown region {scope!r}: no location of the forecast has a code starting with {code}"
        )
    steps = hours // STEP_H

    real: dict[tuple[Hazard, str], Warning] = {}
    for w in _scan(g, rules, now, steps, cyclones):
        key = (w.hazard, w.region_code)
        cur = real.get(key)
        if cur is None or w.level > cur.level or (w.level == cur.level and _when(w) < _when(cur)):
            real[key] = w
    risks: dict[str, list[Risk]] = {}
    for w in real.values():
        risks.setdefault(w.region_code, []).append(_risk(w, rules, None)[0])

    near_best: dict[tuple[Hazard, str], tuple[float, datetime, Risk]] = {}
    for w in _scan(g, relaxed_rules(rules, near), now, steps, cyclones):
        key = (w.hazard, w.region_code)
        if key in real:
            continue
        risk, ratio = _risk(w, rules, near)
        score = (ratio if ratio is not None else -1.0, _when(w))
        held = near_best.get(key)
        if held is None or score[0] > held[0] or (score[0] == held[0] and score[1] < held[1]):
            near_best[key] = (score[0], score[1], risk)
    for (_, loc), (_, _, risk) in near_best.items():
        risks.setdefault(loc, []).append(risk)

    prefectures = sorted(
        (
            PrefectureOutlook(
                str(loc),
                *_place(str(loc), (names or {}).get(str(loc))),
                risks=tuple(sorted(risks.get(str(loc), []), key=_risk_key)),
            )
            for loc in g.location_ids
        ),
        key=lambda p: p.key,
    )
    charted = _charted(prefectures, chart_limit, series_for)
    if charted:
        cols = np.flatnonzero(g.times > pd.Timestamp(now))
        index = {str(loc): i for i, loc in enumerate(g.location_ids)}
        prefectures = [
            replace(p, series=_series(g, index[p.code], cols)) if p.code in charted else p
            for p in prefectures
        ]
    last = g.times[-1].to_pydatetime() if len(g.times) else now
    codes = [p.code for p in prefectures]
    return Outlook(
        issued_at=now,
        start=now,
        end=max(now, min(now + timedelta(hours=hours), last)),
        hours=hours,
        timezone=rules.timezone,
        rule_set_version=rules.version,
        near_share=near.share,
        scope={"code": code, "name": _scope_name(code, prefectures)} if code else None,
        prefectures=tuple(prefectures),
        seasonal=tuple(s.summary() for s in seasonal if s.applies_to(codes)),
    )


def _when(w: Warning) -> datetime:
    return w.reached_at or w.onset


def _place(code: str, given: Place | str | None) -> Place:
    """Name, province code and name; an adcode's province is its first two digits."""
    province = code[:2] + "0000" if re.fullmatch(r"\d{6}", code) else ""
    if isinstance(given, Place):
        return Place(given.name, given.province or province, given.province_name)
    return Place(given or code, province, province)


def _charted(
    prefectures: Sequence[PrefectureOutlook], limit: int, series_for: Sequence[str]
) -> set[str]:
    chosen: set[str] = set()
    for prefix in [""] + [adcode_prefix(p) for p in series_for]:
        inside = [p for p in prefectures if p.code.startswith(prefix)]
        at_risk = [p.code for p in inside if p.risks][:limit]
        chosen.update(at_risk or [p.code for p in inside[:1]])
    return chosen


def _series(g: Grid, row: int, cols: np.ndarray) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"time": [utc_iso(g.times[c].to_pydatetime()) for c in cols]}
    for variable in SERIES:
        values = g.values[variable][row, cols]
        out[variable] = [None if np.isnan(v) else round(float(v), 1) for v in values]
    return out


# -- from forecasts: the store, or files ------------------------------------------------------


def _covers(frame: pd.DataFrame, now: datetime) -> bool:
    """The forecast has the next hour and reaches at least MIN_AHEAD ahead."""
    if frame.empty:
        return False
    t = frame["time"]
    nxt = ((t > now) & (t <= now + timedelta(hours=1))).any()
    return bool(nxt) and t.max() >= now + MIN_AHEAD


def _stored(rt: Runtime, feed: str, url: str, now: datetime, *, fresh: bool) -> pd.DataFrame | None:
    """The feed's newest stored answer parsed; with ``fresh`` only if recent and covering."""
    from alerts.feeds import FeedFormatError, openmeteo

    state = rt.store.feed_state(feed)
    if state is None or state.last_payload_id is None or state.url != url:
        return None
    success = state.last_success_at
    if fresh and (success is None or abs(_utc(success) - now) >= FRESH):
        return None
    payload = rt.store.payload(state.last_payload_id)
    located = openmeteo.locations_in_url(payload.url, rt.locations())
    try:
        frame = openmeteo.parse(payload.body, located or None).frame
    except FeedFormatError as exc:
        log.warning("outlook: %s payload %s unusable: %s", feed, payload.id, exc)
        return None
    if fresh and not _covers(frame, now):
        return None
    if not fresh and not (frame["time"] > now).any():
        return None
    return frame


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def compute(
    rt: Runtime, now: datetime, *, region: str | None = None, fetch: bool = True
) -> Outlook:
    """The outlook at ``now`` from the newest Open-Meteo forecasts of every weather batch.

    A batch's stored forecast (feed ``open-meteo:forecast:N``, and its
    ``open-meteo:air:N``) is used when it was fetched less than 6 h from
    ``now`` and reaches at least 48 h ahead; otherwise, with ``fetch``, the
    batch is fetched first (:func:`alerts.pipeline.fetch_weather_batch`). If
    the fetch fails an older stored forecast that still covers hours after
    ``now`` is used (logged); a batch with no forecast at all raises
    :class:`~alerts.feeds.fetch.FetchError`. ``region`` limits the outlook
    to an adcode prefix.
    """
    from alerts.feeds.fetch import FetchError
    from alerts.pipeline import combine_weather, fetch_weather_batch, weather_batches

    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive time {now!r}: give a time zone")
    now = now.astimezone(UTC)
    cfg = rt.settings.outlook
    orules = load_outlook_rules(cfg.rules_file)
    frames: list[pd.DataFrame] = []
    missing: list[str] = []
    for batch, forecast_url, air_url in weather_batches(rt):
        feeds = (f"open-meteo:forecast:{batch}", forecast_url), (f"open-meteo:air:{batch}", air_url)
        found = [_stored(rt, feed, url, now, fresh=True) for feed, url in feeds]
        if found[0] is None and fetch:
            try:
                fetch_weather_batch(rt, batch)
            except FetchError as exc:
                log.warning("outlook: weather batch %s: %s", batch, exc)
            found = [_stored(rt, feed, url, now, fresh=True) for feed, url in feeds]
        for i, (feed, url) in enumerate(feeds):
            if found[i] is None:
                found[i] = _stored(rt, feed, url, now, fresh=False)
                if found[i] is not None:
                    log.warning("outlook: %s is older than %s: used as it is", feed, FRESH)
        if found[0] is None:
            missing.append(str(batch))
        frames += [f for f in found if f is not None]
    if missing:
        raise FetchError(
            f"outlook: no Open-Meteo forecast covering {utc_iso(now)} for weather batch(es) "
            f"{', '.join(missing)}" + ("" if fetch else " (fetching was not allowed)")
        )
    from alerts.feeds.openmeteo import empty_weather_frame

    weather = combine_weather(frames) if frames else empty_weather_frame()
    return _build(
        rt.settings,
        weather,
        now,
        region,
        orules,
        rt.rules.weather,
        rt.regions,
        cyclones=stored_cyclones(rt, now),
    )


def stored_cyclones(rt: Runtime, now: datetime) -> list[tuple[float, float]]:
    """Tropical cyclones current in the newest stored GDACS feed, if fetched within a day.

    ``official_warnings`` fetches GDACS every few minutes; near one of these
    positions the typhoon rule grades instead of gale, as in the warnings.
    An older, missing or unreadable feed gives none (typhoon risk then shows
    as gale) and is logged.
    """
    from alerts.feeds import FeedFormatError, parser_for
    from alerts.pipeline import active_cyclones

    state = rt.store.feed_state("gdacs")
    if state is None or state.last_payload_id is None:
        return []
    payload = rt.store.payload(state.last_payload_id)
    if abs(_utc(payload.fetched_at) - now) > CYCLONES_FRESH:
        log.warning(
            "outlook: the newest GDACS feed is from %s: no cyclone positions", payload.fetched_at
        )
        return []
    try:
        frame = parser_for("gdacs")(payload.body).frame
    except FeedFormatError as exc:
        log.warning("outlook: GDACS payload %s unusable: %s", payload.id, exc)
        return []
    return active_cyclones(frame)


def _build(
    settings: Settings,
    weather: pd.DataFrame,
    now: datetime,
    region: str | None,
    orules: OutlookRules,
    rules: WeatherRules,
    regions: Regions,
    *,
    cyclones: Sequence[tuple[float, float]] = (),
) -> Outlook:
    seasonal = active_seasonal(now, orules, load_calendar(), region)
    return build_outlook(
        weather,
        rules,
        now,
        near=orules.near_threshold,
        seasonal=seasonal,
        names=place_names(regions),
        chart_limit=orules.chart_limit,
        scope=region,
        series_for=[] if region else settings.outlook.regions,
        cyclones=cyclones,
    )


def outlook_from_files(
    settings: Settings,
    files: Sequence[Path],
    now: datetime,
    *,
    region: str | None = None,
    locations: Path | None = None,
) -> Outlook:
    """The outlook of local Open-Meteo answers (``alerts outlook --input``), offline.

    Each file answers one request for the same locations in order (a forecast
    and its air quality may both be given): ``locations`` (a locations file,
    as ``alerts parse --locations``), else the configured
    ``feeds.locations_file``, else the default one point per prefecture when
    the answer has as many results; otherwise each result belongs to the
    prefecture its coordinates lie in.
    """
    from alerts.criteria import load_rules
    from alerts.feeds import openmeteo
    from alerts.pipeline import combine_weather
    from alerts.regions import load_regions

    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive time {now!r}: give a time zone")
    now = now.astimezone(UTC)
    if region is not None:
        adcode_prefix(region)
    regions = load_regions(str(settings.regions_file) if settings.regions_file else None)
    path = locations or settings.feeds.locations_file
    located = openmeteo.load_locations(path) if path else None
    frames = []
    for file in files:
        body = Path(file).read_bytes()
        try:
            result = _parse_answer(body, located, regions)
        except ValueError as exc:
            raise ValueError(f"{file}: {exc}") from None
        for q in result.quarantined:
            log.warning("outlook: %s: quarantined %s: %s", file, q.record_key or "?", q.reason)
        frames.append(result.frame)
    if not frames:
        raise ValueError("no input file")
    orules = load_outlook_rules(settings.outlook.rules_file)
    rules = load_rules(settings.rules_dir).weather
    return _build(settings, combine_weather(frames), now, region, orules, rules, regions)


def _parse_answer(body: bytes, located: Sequence[Location] | None, regions: Regions) -> Any:
    from alerts.feeds import openmeteo

    if located is not None:
        return openmeteo.parse(body, located)
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return openmeteo.parse(body)  # raises FeedFormatError with the reason
    n = len(doc) if isinstance(doc, list) else 1
    defaults = openmeteo.default_locations()
    if n == len(defaults):
        return openmeteo.parse(body, defaults)
    result = openmeteo.parse(body, [str(i) for i in range(n)])
    first = result.frame.drop_duplicates("location_id")
    mapping: dict[str, str] = {}
    seen: dict[str, str] = {}
    for ident, lat, lon in first[["location_id", "latitude", "longitude"]].itertuples(index=False):
        found = regions.nearest(float(lon), float(lat))
        if found.adcode in seen:
            raise ValueError(
                f"results [{seen[found.adcode]}] and [{ident}] both lie in {found.adcode} "
                f"{found.name}: give the request's locations (--locations)"
            )
        seen[found.adcode] = str(ident)
        mapping[str(ident)] = found.adcode
    frame = result.frame.copy()
    frame["location_id"] = frame["location_id"].map(mapping).astype(frame["location_id"].dtype)
    return type(result)(frame, result.quarantined)
