"""Publicity campaigns as data: who to tell what, where, and when in the year.

A campaign (宣传活动) speaks to publicity audiences (tourists, students and
parents, travellers, farmers ...) during a publicity period (the National Day
golden week, the start of term, the Spring Festival travel rush ...) about
named places (scenic sites, schools, stations, listed with their adcode) and/or
regions (adcode prefixes and publicity region groups). The campaigns DAG sends
each campaign on its own calendar (``sends``: days relative to the first day of
each range of the period, at a local time), with the latest outlook's forecast
for its places. Everything is data: ``alerts/data/campaigns.yaml``, documented
there and in ``docs/campaigns.md``; periods, audiences and region groups are
those of ``alerts/data/publicity.yaml`` (:mod:`alerts.publicity`).

The file is validated on load against the publicity calendar: an unknown
period, audience, region group, place or place kind, a bad adcode, a duplicate
id, or a message template that does not compile or render raises
:class:`~alerts.criteria.RuleFileError` naming the file, the campaign (or place)
id and the field. So a template typo fails when the file is loaded, never at
send time.

A campaign's message is rendered in two steps by :func:`render_campaign`: its
``zh`` / ``en`` (``short_zh`` / ``short_en`` for the short family) jinja2 string
in the :class:`~alerts.render.Renderer`'s sandbox, then the family's wrapper
template ``campaign/<family>.<lang>.j2`` (an operator may override one
campaign's with ``campaign/<campaign id>/<family>.<lang>.j2``), which adds the
forecast lines, the issuer and the details link. The context
(:func:`campaign_context`) is plain JSON and carries the template strings, so a
stored context renders later without the YAML.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from alerts.criteria import RuleFileError
from alerts.criteria.common import keyed_by_id
from alerts.model import Hazard, Level, utc_iso
from alerts.publicity import Calendar, Dated, Recurring, adcode_prefix, load_calendar
from alerts.render import (
    FAMILIES,
    HAZARD_EN,
    SHORT_BUDGET,
    Rendered,
    Renderer,
    exercise_tag,
    normalize_language,
)

__all__ = [
    "BUILTIN_PLACE_KINDS",
    "FORECAST_LIMIT",
    "Campaign",
    "Catalog",
    "Place",
    "PlaceKind",
    "Sends",
    "campaign_channels",
    "campaign_context",
    "due_sends",
    "filter_campaigns",
    "load_catalog",
    "next_send",
    "packaged_catalog_path",
    "region_name",
    "region_prefixes",
    "render_campaign",
    "select_campaigns",
]

_ID = r"^[a-z0-9][a-z0-9_-]*$"
_CHANNEL = r"^[a-z0-9_\-]+$"
# Province-level codes of GB/T 2260 (the first two digits of every adcode).
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82".split()
)
FORECAST_LIMIT = 8  # forecast lines a campaign message carries at most
_MAX_OFFSET = 120  # days a send may lie before or after the first day of a range
_MESSAGE_FIELDS = ("zh", "en", "short_zh", "short_en")
_SAMPLE_ISSUER = "应急管理局预警发布中心"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlaceKind(_Frozen):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


# The closed list of place kinds; a file adds its own under `place_kinds`.
BUILTIN_PLACE_KINDS: dict[str, PlaceKind] = {
    "scenic": PlaceKind(zh="景区", en="scenic area"),
    "school": PlaceKind(zh="学校", en="school"),
    "station": PlaceKind(zh="车站", en="railway station"),
    "airport": PlaceKind(zh="机场", en="airport"),
    "port": PlaceKind(zh="港口", en="port"),
    "village": PlaceKind(zh="村镇", en="village"),
}


def _adcode(value: Any) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"\d{6}", text) or text[:2] not in _PROVINCES:
        raise ValueError(
            f"bad adcode {text!r}: the 6-digit code of a county or prefecture, e.g. 513225"
        )
    return text


class Place(_Frozen):
    """A named point a campaign addresses: a scenic site, a school, a station ..."""

    id: str = Field(pattern=_ID)
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)
    kind: str
    region: str  # the 6-digit adcode of its county (or prefecture)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: Any) -> Any:
        return _adcode(value)

    def name(self, language: str = "zh-CN") -> str:
        return self.zh if language.lower().startswith("zh") else self.en


class Sends(_Frozen):
    """When the campaigns DAG sends: days relative to the first day of each range, at a time."""

    days: tuple[int, ...] = (0,)
    at: time = time(9, 0)

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if isinstance(value, int):
            value = [value]
        if isinstance(value, list | tuple):
            if not value:
                raise ValueError("give at least one day")
            for day in value:
                if not isinstance(day, int) or isinstance(day, bool):
                    raise ValueError(f"bad day {day!r}: a whole number of days, e.g. -2 or 0")
                if abs(day) > _MAX_OFFSET:
                    raise ValueError(f"day {day} is more than {_MAX_OFFSET} days from the start")
            if len(set(value)) != len(value):
                raise ValueError(f"repeated day in {list(value)}")
            return tuple(sorted(value))
        return value

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
            hour, minute = value.strip().split(":")
            return time(int(hour), int(minute))
        if isinstance(value, time):
            return value
        raise ValueError(f'bad time {value!r}: write a quoted local time, e.g. "09:00"')


class Campaign(_Frozen):
    """One campaign of the file (see alerts/data/campaigns.yaml for every field)."""

    id: str = Field(pattern=_ID)
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    period: str | None = None  # a publicity period name, or else its own ranges:
    recurring: tuple[Recurring, ...] = ()
    dated: tuple[Dated, ...] = ()
    sends: Sends = Field(default_factory=Sends)
    audiences: tuple[str, ...] = Field(min_length=1)
    regions: tuple[str, ...] = ()  # adcode prefixes and publicity region group names
    places: tuple[str, ...] = ()  # place ids
    hazards: tuple[Hazard, ...] = ()
    channels: tuple[str, ...] = ()  # configured channel names; empty: every public channel
    zh: str = Field(min_length=1)  # message templates (jinja2, sandboxed)
    en: str = Field(min_length=1)
    short_zh: str | None = None
    short_en: str | None = None

    @field_validator("audiences", "places", "channels", "hazards", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, value: Any) -> Any:
        if isinstance(value, str | int):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(
                adcode_prefix(v) if str(v).strip().isdigit() else str(v).strip() for v in value
            )
        return value

    @field_validator("channels")
    @classmethod
    def _channel_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.fullmatch(_CHANNEL, name):
                raise ValueError(f"bad channel name {name!r}")
        return value

    @model_validator(mode="after")
    def _when(self) -> Campaign:
        own = bool(self.recurring or self.dated)
        if self.period is not None and own:
            raise ValueError("give either `period` or own `recurring`/`dated` ranges, not both")
        if self.period is None and not own:
            raise ValueError("a campaign needs a `period` or its own `recurring`/`dated` ranges")
        return self

    def title(self, language: str = "zh-CN") -> str:
        return self.title_zh if language.lower().startswith("zh") else self.title_en

    def templates(self) -> dict[str, str]:
        """The message template strings by key (zh, en, short_zh, short_en if set)."""
        out = {"zh": self.zh, "en": self.en}
        if self.short_zh:
            out["short_zh"] = self.short_zh
        if self.short_en:
            out["short_en"] = self.short_en
        return out


class Catalog(_Frozen):
    """The validated campaigns file, cross-checked with the publicity calendar."""

    calendar: Calendar = Field(default_factory=load_calendar, exclude=True, repr=False)
    version: str = Field(min_length=1)
    place_kinds: dict[str, PlaceKind] = Field(default_factory=dict)
    places: dict[str, Place] = Field(default_factory=dict)
    campaigns: dict[str, Campaign]

    @field_validator("places", mode="before")
    @classmethod
    def _places(cls, value: Any) -> Any:
        return keyed_by_id(value, "place")

    @field_validator("campaigns", mode="before")
    @classmethod
    def _campaigns(cls, value: Any) -> Any:
        return keyed_by_id(value, "campaign")

    @field_validator("place_kinds")
    @classmethod
    def _kind_names(cls, value: dict[str, PlaceKind]) -> dict[str, PlaceKind]:
        for name in value:
            if not re.fullmatch(r"^[a-z][a-z0-9_]*$", str(name)):
                raise ValueError(f"bad place kind {name!r}: lower case [a-z0-9_]")
        return value

    @property
    def kinds(self) -> dict[str, PlaceKind]:
        """The built-in place kinds and the file's own."""
        return {**BUILTIN_PLACE_KINDS, **self.place_kinds}

    @model_validator(mode="after")
    def _references(self) -> Catalog:
        problems: list[str] = []
        cal = self.calendar
        kinds = self.kinds
        for key, place in self.places.items():
            if key != place.id:
                problems.append(f"places.{key}.id: does not match its key {place.id!r}")
            if place.kind not in kinds:
                problems.append(
                    f"places.{place.id}.kind: unknown place kind {place.kind!r}"
                    f" (known: {', '.join(kinds)}; add one under place_kinds)"
                )
            if not _known_prefix(place.region):
                problems.append(f"places.{place.id}.region: no region with adcode {place.region}")
        for key, c in self.campaigns.items():
            where = f"campaigns.{c.id}"
            if key != c.id:
                problems.append(f"campaigns.{key}.id: does not match its key {c.id!r}")
            if c.period is not None and c.period not in cal.periods:
                problems.append(
                    f"{where}.period: unknown period {c.period!r} (known: {', '.join(cal.periods)})"
                )
            for name in c.audiences:
                if name not in cal.audiences:
                    problems.append(
                        f"{where}.audiences: unknown audience {name!r}"
                        f" (known: {', '.join(cal.audiences)})"
                    )
            for name in c.regions:
                if name.isdigit():
                    if not _known_prefix(name):
                        problems.append(f"{where}.regions: no region with adcode prefix {name}")
                elif name not in cal.region_groups:
                    problems.append(
                        f"{where}.regions: unknown region group {name!r}"
                        f" (known: {', '.join(cal.region_groups) or 'none'}; or adcode prefixes)"
                    )
            for name in c.places:
                if name not in self.places:
                    problems.append(f"{where}.places: unknown place {name!r} (add it under places)")
        if problems:
            raise ValueError("; ".join(problems))
        problems = [p for c in self.campaigns.values() for p in _check_templates(self, c)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def campaign(self, campaign_id: str) -> Campaign:
        """The campaign with this id, or a ValueError listing the known ones."""
        try:
            return self.campaigns[campaign_id]
        except KeyError:
            raise ValueError(
                f"no campaign {campaign_id!r} (known: {', '.join(self.campaigns) or 'none'})"
            ) from None


# -- loading -----------------------------------------------------------------------------


def packaged_catalog_path() -> Path:
    return Path(str(resources.files("alerts") / "data" / "campaigns.yaml"))


def _load(path: Path, calendar: Calendar) -> Catalog:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleFileError(f"campaigns file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RuleFileError(f"campaigns file {path}: expected a mapping at the top level")
    if "calendar" in data:
        raise RuleFileError(f"campaigns file {path}: calendar: not a field of the file")
    try:
        return Catalog.model_validate({**data, "calendar": calendar})
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(str(p) for p in err['loc'])}: " if err["loc"] else "")
            + str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise RuleFileError(f"campaigns file {path}: {problems}") from None


@lru_cache(maxsize=1)
def _packaged_catalog() -> Catalog:
    return _load(packaged_catalog_path(), load_calendar())


def load_catalog(path: str | Path | None = None, calendar: Calendar | None = None) -> Catalog:
    """Load and validate a campaigns file (the packaged one, cached, by default).

    ``calendar``: the publicity calendar it refers to (default: the packaged one).
    """
    if path is None and calendar is None:
        return _packaged_catalog()
    return _load(Path(path) if path else packaged_catalog_path(), calendar or load_calendar())


# -- regions -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _regions_table() -> dict[str, tuple[str, str]]:
    """adcode -> (name, province) of the packaged prefecture table (names only)."""
    path = resources.files("alerts") / "data" / "regions.csv.gz"
    csv.field_size_limit(10**9)
    with gzip.open(str(path), "rt", encoding="utf-8", newline="") as fh:
        return {row["adcode"]: (row["name"], row["province"]) for row in csv.DictReader(fh)}


def _known_prefix(prefix: str) -> bool:
    """Whether some prefecture lies in (or holds) this adcode prefix."""
    head = prefix[:4]
    return any(code.startswith(head) for code in _regions_table())


def region_name(prefix: str) -> str | None:
    """The name of the region an adcode prefix stands for (province, prefecture), if known."""
    table = _regions_table()
    prefix = adcode_prefix(prefix)
    for code in (
        prefix if len(prefix) == 6 else None,
        prefix[:4] + "00" if len(prefix) >= 4 else None,
    ):
        if code and code in table:
            name, province = table[code]
            return name if name == province else f"{province}{name}"
    for code, (_name, province) in table.items():
        if code.startswith(prefix[:2]):
            return province
    return None


def region_prefixes(catalog: Catalog, campaign: Campaign) -> list[str]:
    """The adcode prefixes a campaign addresses: its regions and its places'; [] = national."""
    out: list[str] = []
    for name in campaign.regions:
        if name.isdigit():
            out.append(name)
        else:
            out.extend(entry.prefix for entry in catalog.calendar.region_groups[name])
    out.extend(adcode_prefix(catalog.places[p].region) for p in campaign.places)
    return list(dict.fromkeys(out))


def _overlaps(code: str, prefixes: Iterable[str]) -> bool:
    return any(code.startswith(p) or p.startswith(code) for p in prefixes)


# -- the calendar of a campaign ----------------------------------------------------------


def _ranges(
    catalog: Catalog, campaign: Campaign
) -> tuple[tuple[Recurring, ...], tuple[Dated, ...]]:
    if campaign.period is not None:
        period = catalog.calendar.periods[campaign.period]
        return period.recurring, period.dated
    return campaign.recurring, campaign.dated


def _month_day(year: int, md: tuple[int, int], *, start: bool) -> date:
    try:
        return date(year, *md)
    except ValueError:  # 02-29 outside a leap year: a range starts on 1 March, ends on 28 Feb
        return date(year, 3, 1) if start else date(year, 2, 28)


def _instances(
    catalog: Catalog, campaign: Campaign, first_year: int, last_year: int
) -> list[tuple[date, date]]:
    """The campaign's date ranges (first and last day) starting in these years, sorted."""
    recurring, dated = _ranges(catalog, campaign)
    found: set[tuple[date, date]] = set()
    for year in range(first_year, last_year + 1):
        for r in recurring:
            begin = _month_day(year, r.start, start=True)
            end_year = year if r.start <= r.end else year + 1
            found.add((begin, _month_day(end_year, r.end, start=False)))
    for d in dated:
        if first_year <= d.start.year <= last_year:
            found.add((d.start, d.end))
    return sorted(found)


def _any_instances(catalog: Catalog, campaign: Campaign) -> list[tuple[date, date]]:
    """Every dated range of a campaign (used when none lies near the date asked about)."""
    return sorted({(d.start, d.end) for d in _ranges(catalog, campaign)[1]})


def _contains(catalog: Catalog, campaign: Campaign, day: date) -> bool:
    recurring, dated = _ranges(catalog, campaign)
    return any(r.contains(day) for r in recurring) or any(r.contains(day) for r in dated)


def _send_times(catalog: Catalog, campaign: Campaign, start: date) -> list[datetime]:
    tz = ZoneInfo(catalog.calendar.timezone)
    at = campaign.sends.at
    return [
        datetime.combine(start + timedelta(days=d), at, tzinfo=tz).astimezone(UTC)
        for d in campaign.sends.days
    ]


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime {when!r}: give a time zone")
    return when.astimezone(UTC)


def _matches(
    catalog: Catalog, campaign: Campaign, audience: str | None, region: str | None
) -> bool:
    if audience is not None and audience not in campaign.audiences:
        return False
    if region is not None:
        prefixes = region_prefixes(catalog, campaign)
        if prefixes and not _overlaps(adcode_prefix(region), prefixes):
            return False
    return True


def select_campaigns(
    catalog: Catalog,
    *,
    when: datetime,
    audience: str | None = None,
    region: str | None = None,
) -> list[Campaign]:
    """The campaigns running on the local date of ``when``, by id.

    ``audience``: only campaigns speaking to it; ``region``: only campaigns whose
    regions or places overlap this adcode prefix (either contains the other), and
    national campaigns (no regions, no places), which match every region.
    """
    day = catalog.calendar.local_date(when)
    return [
        c
        for _, c in sorted(catalog.campaigns.items())
        if _contains(catalog, c, day) and _matches(catalog, c, audience, region)
    ]


def filter_campaigns(
    catalog: Catalog, *, audience: str | None = None, region: str | None = None
) -> list[Campaign]:
    """Every campaign (any date) for this audience and region, by id."""
    return [
        c for _, c in sorted(catalog.campaigns.items()) if _matches(catalog, c, audience, region)
    ]


def due_sends(
    catalog: Catalog, *, when: datetime, lookback: timedelta = timedelta(days=1)
) -> list[tuple[Campaign, datetime]]:
    """The sends whose time lies in ``(when - lookback, when]``: (campaign, send time in UTC).

    Each range of a campaign's period is one occurrence; its sends are the
    campaign's ``sends.days`` after (or before) the range's first day, at
    ``sends.at`` local time. A send appears once however the ranges repeat.
    Sorted by time, then campaign id. ``(campaign.id, send time)`` identifies a
    send: the caller records it so each goes out exactly once.
    """
    hi = _utc(when)
    lo = hi - lookback
    first = (lo - timedelta(days=_MAX_OFFSET)).year - 1
    last = (hi + timedelta(days=_MAX_OFFSET)).year + 1
    found: dict[tuple[str, datetime], Campaign] = {}
    for c in catalog.campaigns.values():
        for start, _end in _instances(catalog, c, first, last):
            for at in _send_times(catalog, c, start):
                if lo < at <= hi:
                    found[(c.id, at)] = c
    return [(found[key], key[1]) for key in sorted(found, key=lambda k: (k[1], k[0]))]


def next_send(catalog: Catalog, campaign: Campaign, after: datetime) -> datetime | None:
    """The campaign's first send at or after ``after`` (UTC), or None when its dates ran out."""
    after = _utc(after)
    year = catalog.calendar.local_date(after).year
    times = [
        at
        for start, _end in _instances(catalog, campaign, year - 1, year + 2)
        for at in _send_times(catalog, campaign, start)
        if at >= after
    ]
    return min(times, default=None)


def _occurrence(catalog: Catalog, campaign: Campaign, day: date) -> tuple[date, date] | None:
    """The range a message on ``day`` is about: the one it falls in (or whose sends
    reach it, before the start), else the next one, else the last one."""
    instances = _instances(catalog, campaign, day.year - 1, day.year + 1)
    if not instances:  # dated ranges all elsewhere: the nearest of all of them
        instances = _any_instances(catalog, campaign)
    if not instances:
        return None
    before = timedelta(days=min(0, campaign.sends.days[0]))
    after = timedelta(days=max(0, campaign.sends.days[-1]))
    around = [(s, e) for s, e in instances if s + before <= day <= max(e, s + after)]
    if around:
        return max(around)
    later = [(s, e) for s, e in instances if s > day]
    return min(later) if later else max(instances)


# -- context -----------------------------------------------------------------------------

_MONTHS_EN = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def _dates_zh(start: date, end: date) -> str:
    first = f"{start.month}月{start.day}日"
    if end == start:
        return first
    last = (
        f"{end.day}日"
        if (end.year, end.month) == (start.year, start.month)
        else (f"{end.month}月{end.day}日")
    )
    return f"{first}至{last}"


def _dates_en(start: date, end: date) -> str:
    first = f"{start.day} {_MONTHS_EN[start.month - 1]}"
    if end == start:
        return first
    if (end.year, end.month) == (start.year, start.month):
        return f"{start.day}–{end.day} {_MONTHS_EN[start.month - 1]}"
    return f"{first} – {end.day} {_MONTHS_EN[end.month - 1]}"


def _hazard_names(hazard: str) -> tuple[str, str]:
    try:
        hz = Hazard(hazard)
    except ValueError:
        return hazard, hazard.replace("_", " ")
    return hz.zh, HAZARD_EN[hz].lower()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _risk(risk: dict[str, Any]) -> dict[str, Any]:
    """One outlook risk as a template needs it (names and colours spelt out)."""
    hazard = str(risk.get("hazard") or "")
    zh, en = _hazard_names(hazard)
    raw = risk.get("level")
    level: Level | None = None
    if raw not in (None, 0):
        try:
            level = Level.parse(raw)
        except ValueError:
            level = None
    return {
        "hazard": hazard,
        "hazard_zh": zh,
        "hazard_en": en,
        "level": int(level) if level else None,
        "level_zh": level.zh if level else None,
        "colour": level.colour if level else None,
        "near": bool(risk.get("near")) and level is None,
        "peak_at": str(risk["peak_at"]) if risk.get("peak_at") else None,
        "value": _number(risk.get("value")),
        "threshold": _number(risk.get("threshold")),
        "variable": str(risk["variable"]) if risk.get("variable") else None,
        "ratio": _number(risk.get("ratio")),
    }


def _rank(line: dict[str, Any]) -> tuple[int, float]:
    return (-(line["level"] or 0), -(line["ratio"] or 0.0))


def _outlook_prefectures(outlook: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    if outlook is None:
        return {}
    if not isinstance(outlook, dict) or outlook.get("kind") != "outlook":
        raise ValueError('not an outlook: expected a JSON object with "kind": "outlook"')
    prefectures = outlook.get("prefectures") or []
    if not isinstance(prefectures, list):
        raise ValueError("outlook: prefectures must be a list")
    return {
        str(p["code"]): p
        for p in prefectures
        if isinstance(p, dict) and re.fullmatch(r"\d{6}", str(p.get("code")))
    }


def _prefecture_code(adcode: str, table: dict[str, Any]) -> str:
    """The prefecture of a county adcode (a prefecture-level code is its own)."""
    return adcode if adcode in table else adcode[:4] + "00"


def campaign_context(
    catalog: Catalog,
    campaign: Campaign,
    *,
    when: datetime,
    outlook: dict[str, Any] | None,
) -> dict[str, Any]:
    """Everything a campaign message needs, as plain JSON (see docs/campaigns.md).

    ``when``: the send time; the period range it is about is the one containing
    its local date (or starting within the campaign's earliest send before it).
    ``outlook``: an ``Outlook.to_json()`` dict, or None (no forecast lines). A
    place gets the risks of its prefecture (its adcode's first four digits +
    "00"), limited to the campaign's hazards when it names any; the campaign's
    regions (or the whole outlook, for a national campaign) add their other
    prefectures at risk. ``forecast`` holds at most :data:`FORECAST_LIMIT`
    lines, the most severe first.
    """
    cal = catalog.calendar
    sent = _utc(when)
    day = cal.local_date(sent)
    hazards = {h.value for h in campaign.hazards}
    by_code = _outlook_prefectures(outlook)
    table = _regions_table()

    def relevant(prefecture: dict[str, Any] | None) -> list[dict[str, Any]]:
        risks = (prefecture or {}).get("risks") or []
        lines = [
            _risk(r)
            for r in risks
            if isinstance(r, dict) and (not hazards or str(r.get("hazard")) in hazards)
        ]
        return sorted((r for r in lines if r["level"] or r["near"]), key=_rank)

    places: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for place_id in campaign.places:
        place = catalog.places[place_id]
        kind = catalog.kinds[place.kind]
        pref_code = _prefecture_code(place.region, table)
        pref = by_code.get(place.region) or by_code.get(pref_code)
        pref_name = str(pref.get("name")) if pref and pref.get("name") else None
        if pref_name is None and pref_code in table:
            pref_name = table[pref_code][0]
        risks = relevant(pref)
        places.append(
            {
                "id": place.id,
                "zh": place.zh,
                "en": place.en,
                "kind": place.kind,
                "kind_zh": kind.zh,
                "kind_en": kind.en,
                "region": place.region,
                "region_name": region_name(place.region),
                "prefecture": pref_code,
                "prefecture_name": pref_name,
                "latitude": place.latitude,
                "longitude": place.longitude,
                "risks": risks,
            }
        )
        for risk in risks:
            lines.append(
                {
                    "place": place.id,
                    "place_zh": place.zh,
                    "place_en": place.en,
                    "prefecture": pref_code,
                    "prefecture_name": pref_name,
                    **risk,
                }
            )

    regions: list[dict[str, Any]] = []
    own: list[str] = []
    for name in campaign.regions:
        if name.isdigit():
            own.append(name)
            regions.append({"prefix": name, "name": region_name(name), "sights": None})
        else:
            for entry in cal.region_groups[name]:
                own.append(entry.prefix)
                regions.append({"prefix": entry.prefix, "name": entry.name, "sights": entry.sights})
    national = not campaign.regions and not campaign.places
    covered = {line["prefecture"] for line in lines}
    for code, pref in by_code.items():
        inside = national or any(
            code.startswith(p) or p.startswith(adcode_prefix(code)) for p in own
        )
        if code in covered or not inside:
            continue
        for risk in relevant(pref):
            lines.append(
                {
                    "place": None,
                    "place_zh": None,
                    "place_en": None,
                    "prefecture": code,
                    "prefecture_name": str(pref.get("name") or code),
                    **risk,
                }
            )
    lines.sort(key=_rank)

    seasonal: list[dict[str, Any]] = []
    if outlook is not None:
        for entry in outlook.get("seasonal") or []:
            if not isinstance(entry, dict):
                continue
            entry_hazards = {str(h) for h in entry.get("hazards") or []}
            if not hazards or entry_hazards & hazards:
                seasonal.append(
                    {
                        k: entry.get(k)
                        for k in ("id", "zh", "en", "hazards", "advice_zh", "advice_en")
                    }
                )

    occurrence = _occurrence(catalog, campaign, day)
    period: dict[str, Any]
    if campaign.period is not None:
        p = cal.periods[campaign.period]
        period = {"name": campaign.period, "zh": p.zh, "en": p.en}
    else:
        period = {"name": None, "zh": campaign.title_zh, "en": campaign.title_en}
    if occurrence is not None:
        start, end = occurrence
        period |= {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "dates_zh": _dates_zh(start, end),
            "dates_en": _dates_en(start, end),
            "days_to_start": (start - day).days,
        }
    else:
        period |= {"start": None, "end": None, "dates_zh": "", "dates_en": "", "days_to_start": 0}

    summary = None
    if outlook is not None:
        summary = {
            k: outlook.get(k)
            for k in ("issued_at", "start", "end", "hours", "timezone", "scope", "level")
        }
    return {
        "kind": "campaign",
        "catalog_version": catalog.version,
        "campaign": {
            "id": campaign.id,
            "title_zh": campaign.title_zh,
            "title_en": campaign.title_en,
            "audiences": list(campaign.audiences),
            "hazards": sorted(hazards),
            "channels": list(campaign.channels),
            "regions": region_prefixes(catalog, campaign),
            "national": national,
            "templates": campaign.templates(),
        },
        "when": utc_iso(sent),
        "local_date": day.isoformat(),
        "period": period,
        "audiences": [
            {"key": a, "zh": cal.audiences[a].zh, "en": cal.audiences[a].en}
            for a in campaign.audiences
        ],
        "regions": regions,
        "places": places,
        "forecast": lines[:FORECAST_LIMIT],
        "seasonal": seasonal,
        "outlook": summary,
    }


# -- rendering ---------------------------------------------------------------------------


def _message_key(context: dict[str, Any], family: str, lang: str) -> str:
    templates = context["campaign"]["templates"]
    base = "zh" if lang == "zh-CN" else "en"
    if family == "short" and templates.get(f"short_{base}"):
        return f"short_{base}"
    return base


def _render_context(
    renderer: Renderer, context: dict[str, Any], lang: str, status: str, identifier: str | None
) -> dict[str, Any]:
    zh = lang == "zh-CN"
    campaign_id = str(context["campaign"]["id"])
    return {
        **context,
        "language": lang,
        "title": context["campaign"]["title_zh" if zh else "title_en"],
        "exercise": status != "Actual",
        "status": status,
        "identifier": identifier,
        "issuer": renderer.issuer_zh if zh else renderer.issuer_en,
        "issuer_zh": renderer.issuer_zh,
        "issuer_en": renderer.issuer_en,
        # a stored bulletin's page; before there is one (previews), the campaign's
        "details_url": renderer.details_url
        + (
            f"?bulletin={quote(identifier, safe=':,/')}"
            if identifier
            else f"?campaign={quote(campaign_id, safe='')}"
        ),
        "tz_label": renderer.tz_label(lang),
        "short_budget": SHORT_BUDGET,
    }


def render_campaign(
    renderer: Renderer,
    context: dict[str, Any],
    *,
    family: str,
    language: str,
    status: str = "Actual",
    identifier: str | None = None,
    fallback: bool = False,
) -> Rendered:
    """A campaign message for one family and language, from a :func:`campaign_context`.

    The campaign's message template (``zh``/``en``, or ``short_zh``/``short_en`` in the
    short family when set) is rendered in the renderer's sandbox, then wrapped by
    ``campaign/<id>/<family>.<lang>.j2`` (an operator's) or ``campaign/<family>.<lang>.j2``.
    A status other than Actual marks the message as an exercise (演练), as
    :meth:`Renderer.render` does. With ``fallback``, an operator wrapper that fails is
    logged and the packaged one used.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown template family {family!r} (one of {', '.join(FAMILIES)})")
    lang = normalize_language(language)
    if lang not in ("zh-CN", "en"):
        lang = "en"
    ctx = _render_context(renderer, context, lang, status, identifier)
    key = _message_key(context, family, lang)
    env = renderer.environment(family)
    source = str(context["campaign"]["templates"][key])
    ctx["message"] = env.from_string(source).render(ctx).strip()
    campaign_id = str(context["campaign"]["id"])
    names = [f"campaign/{campaign_id}/{family}.{lang}.j2", f"campaign/{family}.{lang}.j2"]
    module = renderer.template_module(family, names, ctx, fallback=fallback)
    subject = str(getattr(module, "subject", "")).strip()
    body = str(module).strip() + "\n"
    tag = exercise_tag(status, lang)
    if tag:
        subject, body = tag + subject, f"{tag}{body}"
    if not subject:
        raise ValueError(f"campaign template {family}.{lang} for {campaign_id} sets no subject")
    return Rendered(subject, body)


class _ChannelLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def audience(self) -> str: ...


C = TypeVar("C", bound=_ChannelLike)


def campaign_channels(campaign: Campaign, channels: Sequence[C]) -> list[C]:
    """The configured channels a campaign goes out on: its ``channels`` (which must exist
    and be enabled), or every enabled public channel when it names none."""
    if not campaign.channels:
        return [c for c in channels if c.enabled and c.audience == "public"]
    by_name = {c.name: c for c in channels}
    unknown = [n for n in campaign.channels if n not in by_name]
    if unknown:
        raise ValueError(
            f"campaign {campaign.id}: channels: not configured: {', '.join(unknown)}"
            f" (configured: {', '.join(by_name) or 'none'})"
        )
    return [by_name[n] for n in campaign.channels if by_name[n].enabled]


# -- checking a file's templates ---------------------------------------------------------


def _sample_when(catalog: Catalog, campaign: Campaign) -> datetime:
    """A fixed, representative send time: the first send of a range (2028 for recurring)."""
    instances = _instances(catalog, campaign, 2028, 2028) or _any_instances(catalog, campaign)
    return _send_times(catalog, campaign, instances[0][0])[0]


def _sample_outlook(catalog: Catalog, campaign: Campaign, when: datetime) -> dict[str, Any]:
    """An outlook with a warning-level and a near-threshold risk at every place and region."""
    hazard = campaign.hazards[0].value if campaign.hazards else "rainstorm"
    table = _regions_table()
    codes = [_prefecture_code(catalog.places[p].region, table) for p in campaign.places]
    for prefix in region_prefixes(catalog, campaign) or ["51"]:
        codes.extend(c for c in table if c.startswith(prefix[:4]))
    peak = utc_iso(when + timedelta(hours=30))
    risks = [
        {"hazard": hazard, "level": 2, "near": False, "peak_at": peak, "value": 61.3,
         "threshold": 50.0, "variable": "rain_mm", "ratio": 1.23},
        {"hazard": hazard, "level": None, "near": True, "peak_at": peak, "value": 40.0,
         "threshold": 50.0, "variable": "rain_mm", "ratio": 0.8},
    ]  # fmt: skip
    return {
        "kind": "outlook",
        "issued_at": utc_iso(when),
        "start": utc_iso(when),
        "end": utc_iso(when + timedelta(hours=72)),
        "hours": 72,
        "timezone": catalog.calendar.timezone,
        "scope": None,
        "level": 2,
        "provinces": [],
        "prefectures": [
            {"code": c, "name": table.get(c, (c, ""))[0], "level": 2, "risks": risks}
            for c in dict.fromkeys(codes[:12])
        ],
        "seasonal": [
            {
                "id": "sample",
                "zh": "样例",
                "en": "sample",
                "hazards": [hazard],
                "advice_zh": "样例提示。",
                "advice_en": "Sample advice.",
            }
        ],  # fmt: skip
    }


@lru_cache(maxsize=4)
def _check_renderer(timezone: str) -> Renderer:
    return Renderer(timezone=timezone, issuer_zh=_SAMPLE_ISSUER, details_url="http://localhost/")


def _check_templates(catalog: Catalog, campaign: Campaign) -> list[str]:
    """Compile and trial-render a campaign's message templates (with and without a forecast)."""
    renderer = _check_renderer(catalog.calendar.timezone)
    when = _sample_when(catalog, campaign)
    contexts = [
        campaign_context(catalog, campaign, when=when, outlook=None),
        campaign_context(
            catalog, campaign, when=when, outlook=_sample_outlook(catalog, campaign, when)
        ),
    ]
    problems: list[str] = []
    for key in _MESSAGE_FIELDS:
        source = getattr(campaign, key)
        if source is None:
            continue
        family = "short" if key.startswith("short") else "text"
        lang = "zh-CN" if key.endswith("zh") else "en"
        env = renderer.environment(family, packaged_only=True)
        where = f"campaigns.{campaign.id}.{key}"
        try:
            template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(f"{where}: template syntax error on line {exc.lineno}: {exc.message}")
            continue
        for ctx in contexts:
            try:
                text = template.render(_render_context(renderer, ctx, lang, "Actual", None))
            except Exception as exc:  # noqa: BLE001 - any failure of operator data is reported
                problems.append(f"{where}: the template fails: {type(exc).__name__}: {exc}")
                break
            if family == "short":
                headline = len(campaign.title(lang)) + (2 if lang == "zh-CN" else 0)  # 【】
                size = headline + len(text.strip())
                if size > SHORT_BUDGET:
                    problems.append(
                        f"{where}: {size} characters with the headline, over the short"
                        f" budget of {SHORT_BUDGET}"
                    )
                    break
    return problems
