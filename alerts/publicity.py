"""Targeted publicity: safety tips chosen by hazard, level, place and time of year.

The tips, the periods they apply in (seasons, school terms, holidays, the
Spring Festival travel rush 春运) and the audiences they speak to are data:
``alerts/data/publicity.yaml``, documented there. The file is validated on
load; a mistake raises :class:`~alerts.criteria.RuleFileError` naming the
file, the tip id (or period name) and the field.

A tip applies to a warning when one of its periods contains the warning time
in the calendar's time zone (Beijing time), the hazard is one of its hazards
(or it says ``any``), the level is at least its ``min_level``, and, if it
names regions, one of the warning's region codes starts with one of its
adcode prefixes. Order, most specific first: region-specific before general,
hazard-specific before ``any``, a dated period before a recurring one before
``always``, then by id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.criteria import load_rule_file
from alerts.criteria.common import hazard_names, keyed_by_id
from alerts.model import Hazard, Level

__all__ = [
    "Audience",
    "Calendar",
    "Period",
    "Tip",
    "active_periods",
    "adcode_prefix",
    "load_calendar",
    "packaged_calendar_path",
    "select_tips",
    "tips_for",
    "undated_periods",
]

_NAME = r"^[a-z][a-z0-9_]*$"
_TIP_ID = r"^[a-z0-9][a-z0-9_-]*$"
_RESERVED = {"always", "any"}
_LEAP_YEAR = 2000  # month-days are checked against a leap year: 02-29 is valid


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _month_day(text: str, whole: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{2})-(\d{2})", text.strip())
    if not match:
        raise ValueError(f"bad month-day {text.strip()!r} in {whole!r}: write MM-DD")
    month, day = int(match[1]), int(match[2])
    try:
        date(_LEAP_YEAR, month, day)
    except ValueError:
        raise ValueError(f"bad month-day {text.strip()!r} in {whole!r}: no such date") from None
    return month, day


def _iso_date(text: str, whole: str) -> date:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise ValueError(f"bad date {text.strip()!r} in {whole!r}: write YYYY-MM-DD")
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"bad date {text.strip()!r} in {whole!r}: no such date") from None


class Recurring(_Frozen):
    """A month-day range repeated every year, both ends included.

    A start after the end crosses the year end (``12-01..02-29``).
    """

    start: tuple[int, int]
    end: tuple[int, int]

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        first, sep, last = value.partition("..")
        start = _month_day(first, value)
        return {"start": start, "end": _month_day(last, value) if sep else start}

    def contains(self, day: date) -> bool:
        md = (day.month, day.day)
        if self.start <= self.end:
            return self.start <= md <= self.end
        return md >= self.start or md <= self.end


class Dated(_Frozen):
    """An explicit date range, both ends included (lunar holidays: extend yearly)."""

    start: date
    end: date

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, date):
            return {"start": value, "end": value}
        if not isinstance(value, str):
            return value
        first, sep, last = value.partition("..")
        start = _iso_date(first, value)
        end = _iso_date(last, value) if sep else start
        if end < start:
            raise ValueError(f"date range {value!r} ends before it starts")
        return {"start": start, "end": end}

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


class Period(_Frozen):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    recurring: tuple[Recurring, ...] = ()
    dated: tuple[Dated, ...] = ()

    @model_validator(mode="after")
    def _some_range(self) -> Period:
        if not self.recurring and not self.dated:
            raise ValueError("a period needs at least one `recurring` or `dated` range")
        return self

    def match(self, day: date) -> str | None:
        """``"dated"`` or ``"recurring"`` for how ``day`` falls in the period, else None."""
        if any(r.contains(day) for r in self.dated):
            return "dated"
        if any(r.contains(day) for r in self.recurring):
            return "recurring"
        return None


class Audience(_Frozen):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class RegionEntry(_Frozen):
    prefix: str
    name: str = Field(min_length=1)
    sights: str | None = None

    @field_validator("prefix", mode="before")
    @classmethod
    def _prefix(cls, value: Any) -> Any:
        return adcode_prefix(value)


def adcode_prefix(value: Any) -> str:
    """An adcode prefix: 2 digits (province), 4 (prefecture) or 6; "510000" reads as "51"."""
    text = str(value).strip()
    if not re.fullmatch(r"\d{2}|\d{4}|\d{6}", text) or text.startswith("00"):
        raise ValueError(
            f"bad adcode prefix {text!r}: 2 digits (province), 4 (prefecture) or 6 (adcode)"
        )
    while len(text) > 2 and text.endswith("00"):
        text = text[:-2]
    return text


class Tip(_Frozen):
    id: str = Field(pattern=_TIP_ID)
    audience: str
    periods: tuple[str, ...] | None  # None: always
    hazards: tuple[Hazard, ...] | None  # None: any
    min_level: Level = Level.BLUE
    regions: tuple[str, ...] = ()  # region group names and adcode prefixes
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    @field_validator("periods", mode="before")
    @classmethod
    def _always(cls, value: Any) -> Any:
        if value == "always" or value == ["always"]:
            return None
        return (value,) if isinstance(value, str) else value

    @field_validator("hazards", mode="before")
    @classmethod
    def _any(cls, value: Any) -> Any:
        if value == "any" or value == ["any"]:
            return None
        return hazard_names(value, also=", or any")

    @field_validator("min_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        return Level.parse(value)

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(
                adcode_prefix(v) if str(v).strip().isdigit() else str(v).strip() for v in value
            )
        return value

    def text(self, language: str = "zh-CN") -> str:
        return self.zh if language.lower().startswith("zh") else self.en


class Calendar(_Frozen):
    """The validated publicity file: periods, audiences, region groups and tips (by id)."""

    version: str = Field(min_length=1)
    timezone: str = "Asia/Shanghai"
    periods: dict[str, Period]
    audiences: dict[str, Audience]
    region_groups: dict[str, tuple[RegionEntry, ...]] = Field(default_factory=dict)
    tips: dict[str, Tip]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception:  # ZoneInfoNotFoundError, ValueError on odd keys
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("periods", "audiences", "region_groups")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not re.fullmatch(_NAME, str(name)) or name in _RESERVED:
                raise ValueError(f"bad name {name!r}: lower case [a-z0-9_], not always/any")
        return value

    @field_validator("tips", mode="before")
    @classmethod
    def _by_id(cls, value: Any) -> Any:
        """The file lists tips; key them by id so errors name the tip."""
        return keyed_by_id(value, "tip")

    @model_validator(mode="after")
    def _references(self) -> Calendar:
        problems: list[str] = []
        for key, tip in self.tips.items():
            if key != tip.id:
                problems.append(f"tips.{key}.id: does not match its key {tip.id!r}")
            if tip.audience not in self.audiences:
                problems.append(
                    f"tips.{tip.id}.audience: unknown audience {tip.audience!r}"
                    f" (known: {', '.join(self.audiences)})"
                )
            for name in tip.periods or ():
                if name not in self.periods:
                    problems.append(
                        f"tips.{tip.id}.periods: unknown period {name!r}"
                        f" (known: {', '.join(self.periods)}, or always)"
                    )
            for name in tip.regions:
                if not name.isdigit() and name not in self.region_groups:
                    problems.append(
                        f"tips.{tip.id}.regions: unknown region group {name!r}"
                        f" (known: {', '.join(self.region_groups) or 'none'}; or adcode prefixes)"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def prefixes(self, tip: Tip) -> tuple[str, ...]:
        """The adcode prefixes a tip is limited to (empty: everywhere)."""
        out: list[str] = []
        for name in tip.regions:
            if name.isdigit():
                out.append(name)
            else:
                out.extend(entry.prefix for entry in self.region_groups[name])
        return tuple(dict.fromkeys(out))

    def local_date(self, when: datetime) -> date:
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"naive datetime {when!r}: give a time zone")
        return when.astimezone(ZoneInfo(self.timezone)).date()


def packaged_calendar_path() -> Path:
    return Path(str(resources.files("alerts") / "data" / "publicity.yaml"))


@lru_cache(maxsize=1)
def _packaged_calendar() -> Calendar:
    return load_rule_file(packaged_calendar_path(), Calendar)


def load_calendar(path: str | Path | None = None) -> Calendar:
    """Load and validate a publicity file (the packaged one, cached, by default)."""
    if path is None:
        return _packaged_calendar()
    return load_rule_file(path, Calendar)


def active_periods(when: datetime, calendar: Calendar) -> list[str]:
    """Names of the periods containing ``when`` (in the calendar's time zone), sorted."""
    day = calendar.local_date(when)
    return sorted(name for name, period in calendar.periods.items() if period.match(day))


def undated_periods(year: int, calendar: Calendar) -> list[str]:
    """Dated (lunar) periods with no range touching ``year``: time to add that year's dates."""
    return sorted(
        name
        for name, period in calendar.periods.items()
        if period.dated
        and not period.recurring
        and not any(r.start.year <= year <= r.end.year for r in period.dated)
    )


_PERIOD_RANK = {"dated": 0, "recurring": 1, "always": 2}


def select_tips(
    *,
    hazard: Hazard,
    level: Level,
    when: datetime,
    region_codes: Sequence[str],
    calendar: Calendar,
) -> list[Tip]:
    """Every tip that applies, most specific first (see the module docstring)."""
    day = calendar.local_date(when)
    hazard, level = Hazard(hazard), Level.parse(level)
    codes = [str(c) for c in region_codes]
    ranked: list[tuple[tuple[int, int, int, str], Tip]] = []
    for tip in calendar.tips.values():
        if level < tip.min_level:
            continue
        if tip.hazards is not None and hazard not in tip.hazards:
            continue
        prefixes = calendar.prefixes(tip)
        if prefixes and not any(c.startswith(p) for c in codes for p in prefixes):
            continue
        if tip.periods is None:
            how = "always"
        else:
            matches = {calendar.periods[name].match(day) for name in tip.periods} - {None}
            if not matches:
                continue
            how = "dated" if "dated" in matches else "recurring"
        key = (
            0 if prefixes else 1,
            0 if tip.hazards is not None else 1,
            _PERIOD_RANK[how],
            tip.id,
        )
        ranked.append((key, tip))
    return [tip for _, tip in sorted(ranked, key=lambda pair: pair[0])]


def tips_for(
    *,
    hazard: Hazard,
    level: Level,
    when: datetime,
    region_codes: Sequence[str],
    calendar: Calendar,
    language: str = "zh-CN",
    limit: int = 2,
) -> list[str]:
    """The texts of at most ``limit`` applicable tips, most specific first.

    Chinese for a language starting with ``zh``, English otherwise.
    """
    if limit <= 0:
        return []
    chosen = select_tips(
        hazard=hazard, level=level, when=when, region_codes=region_codes, calendar=calendar
    )
    return [tip.text(language) for tip in chosen[:limit]]
