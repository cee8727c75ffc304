"""Subscribers: validation, CSV import/export, and set-wise matching of an alert.

A subscriber receives alerts on one configured channel (by its *name*, e.g.
``outbox`` or ``sms-main``) at one address, for some areas, hazards and a
minimum level, optionally outside local quiet hours.

Areas are region-code prefixes — ``"51"`` (a province: all its prefectures),
``"5101"`` or ``"510100"`` (one prefecture) — or circles ``"circle:lat,lon,km"``.

Matching is set-wise over a :class:`pandas.DataFrame` of every subscriber
(``Store.subscribers_frame()``), vectorised with pandas/numpy: no Python code
runs per subscriber. Rules:

* the subscriber is active, the hazard is in their list (empty = all hazards)
  and the level is at least their ``min_level``;
* one of their prefixes is a prefix of one of the alert's region codes; the
  national earthquake response (region code ``"CN"``) matches every subscriber;
* or one of their circles contains a point: the epicentre when given, else
  the representative points of the alert's regions;
* quiet hours (local Asia/Shanghai, ``quiet_start`` to ``quiet_end``, which may
  cross midnight; equal times mean no quiet hours) suppress the alert unless it
  is red or an earthquake.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError, ValidationInfo, field_validator, model_validator

from alerts.model import Hazard, Level
from alerts.regions import EARTH_RADIUS_KM, Regions, load_regions

if TYPE_CHECKING:
    from alerts.store import Store

__all__ = [
    "CSV_COLUMNS",
    "ROW_COLUMNS",
    "NATIONAL",
    "ImportResult",
    "SubscriberIn",
    "export_csv",
    "import_csv",
    "match",
    "match_bulletin",
    "recipient_rows",
    "parse_csv",
]

CSV_COLUMNS = ("name", "channel", "address", "language", "areas", "hazards", "min_level")
OPTIONAL_COLUMNS = ("quiet_start", "quiet_end", "audiences")
NATIONAL = "CN"  # the region code of a national (earthquake) response: matches everyone
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

_CHANNEL_NAME = re.compile(r"^[a-z0-9_\-]+$")
_PREFIX = re.compile(r"^\d{2}(\d{2}){0,2}$")
_CIRCLE = re.compile(r"^circle:(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?),(\d+(?:\.\d+)?)$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_PHONE = re.compile(r"^\+?\d{6,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_CIRCLE_KM = 2000.0


class SubscriberIn(BaseModel):
    """A subscriber as given by an operator, a CSV row or a sign-up.

    Pass ``context={"channel_types": {name: type}}`` to ``model_validate`` to check
    the address against the channel's type (phone for sms, e-mail for email,
    http(s) URL for webhook); unknown channel names are checked by pattern only.
    """

    name: str
    channel: str
    address: str
    language: Literal["zh-CN", "en"] = "zh-CN"
    areas: list[str]
    hazards: list[str] = []
    # publicity audiences (alerts/data/publicity.yaml: tourists, students, ...) whose
    # campaigns this subscriber gets; empty: the general public (every campaign)
    audiences: list[str] = []
    min_level: int = int(Level.BLUE)
    quiet_start: str | None = None
    quiet_end: str | None = None
    active: bool = True
    consent_at: datetime | None = None
    source: Literal["csv", "operator", "wechat"] = "operator"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > 200:
            raise ValueError("name: 1 to 200 characters")
        return value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        value = value.strip()
        if not _CHANNEL_NAME.match(value) or len(value) > 64:
            raise ValueError(f"channel {value!r}: a channel name (a-z, 0-9, _ and -)")
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip()
        if not value or len(value) > 500 or any(ord(c) < 32 for c in value):
            raise ValueError("address: 1 to 500 printable characters")
        return value

    @field_validator("areas", mode="before")
    @classmethod
    def _areas(cls, value: Any) -> list[str]:
        areas = _split(value)
        if not areas:
            raise ValueError("areas: at least one region prefix or circle")
        for area in areas:
            _check_area(area)
        return list(dict.fromkeys(areas))

    @field_validator("hazards", mode="before")
    @classmethod
    def _hazards(cls, value: Any) -> list[str]:
        hazards = [h.lower() for h in _split(value)]
        known = {h.value for h in Hazard}
        unknown = [h for h in hazards if h not in known]
        if unknown:
            raise ValueError(f"hazards: unknown {unknown}; known: {sorted(known)}")
        return list(dict.fromkeys(hazards))

    @field_validator("audiences", mode="before")
    @classmethod
    def _audiences(cls, value: Any) -> list[str]:
        audiences = [a.lower() for a in _split(value)]
        if audiences:
            from alerts.publicity import load_calendar

            known = set(load_calendar().audiences)
            unknown = [a for a in audiences if a not in known]
            if unknown:
                raise ValueError(f"audiences: unknown {unknown}; known: {sorted(known)}")
        return list(dict.fromkeys(audiences))

    @field_validator("min_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> int:
        if value is None or (isinstance(value, str) and not value.strip()):
            return int(Level.BLUE)
        try:
            return int(Level.parse(int(value) if isinstance(value, float) else value))
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("quiet_start", "quiet_end", mode="before")
    @classmethod
    def _hhmm(cls, value: Any) -> str | None:
        if value is None or not str(value).strip():
            return None
        text = str(value).strip()
        if len(text) == 4 and text[1] == ":":
            text = "0" + text
        if not _HHMM.match(text):
            raise ValueError(f"quiet hours: {value!r} is not HH:MM")
        return text

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> SubscriberIn:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet hours: give both quiet_start and quiet_end, or neither")
        types: Mapping[str, str] = (info.context or {}).get("channel_types") or {}
        kind = types.get(self.channel)
        if kind == "sms" and not _PHONE.match(self.address.replace(" ", "").replace("-", "")):
            raise ValueError(f"address {self.address!r}: not a phone number (sms channel)")
        if kind == "sms":
            self.address = self.address.replace(" ", "").replace("-", "")
        if kind == "email" and not _EMAIL.match(self.address):
            raise ValueError(f"address {self.address!r}: not an e-mail address (email channel)")
        if kind == "webhook":
            url = urlparse(self.address)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValueError(f"address {self.address!r}: not an http(s) URL (webhook channel)")
        return self


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split("|") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def _check_area(area: str) -> None:
    if _PREFIX.match(area):
        return
    m = _CIRCLE.match(area)
    if not m:
        raise ValueError(
            f"area {area!r}: a 2-, 4- or 6-digit region code prefix or circle:lat,lon,km"
        )
    lat, lon, km = (float(g) for g in m.groups())
    if not -90 <= lat <= 90 or not -180 <= lon <= 180:
        raise ValueError(f"area {area!r}: latitude -90..90, longitude -180..180")
    if not 0 < km <= MAX_CIRCLE_KM:
        raise ValueError(f"area {area!r}: radius above 0 and at most {MAX_CIRCLE_KM:g} km")


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        field = ".".join(str(p) for p in err["loc"])
        parts.append(f"{field}: {msg}" if field and not msg.startswith(field) else msg)
    return "; ".join(parts)


def validate(
    data: Mapping[str, Any], channel_types: Mapping[str, str] | None = None
) -> SubscriberIn:
    """Validate one subscriber; ``ValueError`` with a readable reason when bad."""
    try:
        return SubscriberIn.model_validate(dict(data), context={"channel_types": channel_types})
    except ValidationError as exc:
        raise ValueError(_reason(exc)) from None


# -- CSV ------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    imported: int
    updated: int
    errors: list[tuple[int, str]]  # (line number, reason)

    def summary(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "updated": self.updated,
            "failed": len(self.errors),
            "errors": [{"line": line, "reason": reason} for line, reason in self.errors],
        }


def parse_csv(
    text: str, channel_types: Mapping[str, str] | None = None
) -> tuple[list[SubscriberIn], list[tuple[int, str]]]:
    """Validate every row; a bad row is reported (line number, reason) and left out whole."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"CSV header: missing columns {missing}; expected {','.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    good: list[SubscriberIn] = []
    errors: list[tuple[int, str]] = []
    for row in reader:
        line = reader.line_num
        if None in row:
            errors.append((line, "more cells than header columns"))
            continue
        if all(not (v or "").strip() for v in row.values()):
            continue
        if any(row.get(c) is None for c in CSV_COLUMNS):
            errors.append((line, "fewer cells than header columns"))
            continue
        data: dict[str, Any] = {c: row[c] for c in CSV_COLUMNS}
        for c in OPTIONAL_COLUMNS:
            if c in row:
                data[c] = row[c]
        data["source"] = "csv"
        try:
            good.append(validate(data, channel_types))
        except ValueError as exc:
            errors.append((line, str(exc)))
    return good, errors


def import_csv(
    store: Store,
    text: str,
    channel_types: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
) -> ImportResult:
    """Upsert the good rows (same channel and address: updated); report the bad ones."""
    good, errors = parse_csv(text, channel_types)
    imported, updated = store.upsert_subscribers([s.model_dump() for s in good], now=now)
    return ImportResult(imported, updated, errors)


def export_csv(frame: pd.DataFrame) -> str:
    """The subscribers as CSV, in the import format (with quiet_start, quiet_end)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *OPTIONAL_COLUMNS])
    for row in frame.sort_values(["channel", "address"]).itertuples(index=False):
        writer.writerow(
            [
                row.name,
                row.channel,
                row.address,
                row.language,
                "|".join(row.areas),
                "|".join(row.hazards),
                Level(int(row.min_level)).colour,
                _text(row.quiet_start),
                _text(row.quiet_end),
                "|".join(getattr(row, "audiences", None) or []),
            ]
        )
    return out.getvalue()


def _text(value: Any) -> str:
    return "" if value is None or pd.isna(value) else str(value)


# -- matching -------------------------------------------------------------------


def match(
    subscribers: pd.DataFrame,
    *,
    hazard: Hazard | str,
    level: Level | int,
    region_codes: Iterable[str],
    epicentre: tuple[float, float] | None = None,
    when: datetime,
    regions: Regions | None = None,
) -> pd.DataFrame:
    """The subscribers (rows of ``subscribers``) who get this alert; see the module doc.

    ``epicentre`` is (lat, lon). ``regions`` gives the representative points used
    for circles when there is no epicentre (default: the packaged table).
    """
    if when.tzinfo is None:
        raise ValueError("match: `when` must be timezone-aware")
    hazard = Hazard(hazard)
    level = Level(int(level))
    codes = {str(c) for c in region_codes}
    df = subscribers
    if df.empty:
        return df.copy()

    n = len(df)
    hazards = pd.Series(df["hazards"].to_numpy(), index=np.arange(n))
    wants_hazard = hazards.str.len().fillna(0).eq(0).to_numpy()
    named = hazards.explode()
    hit_hazard = named.eq(hazard.value).groupby(level=0).any()
    wants_hazard = wants_hazard | hit_hazard.reindex(np.arange(n), fill_value=False).to_numpy(
        dtype=bool
    )
    ok = wants_hazard & df["active"].astype(bool).to_numpy()
    ok = ok & (df["min_level"].astype(int).to_numpy() <= int(level))
    if level != Level.RED and hazard != Hazard.EARTHQUAKE:
        ok = ok & ~_in_quiet_hours(df, when)

    return _in_areas(df.iloc[np.flatnonzero(ok)], codes, epicentre, regions)


# The ledger rows fan-out writes per recipient (alerts.delivery, alerts.bulletins).
ROW_COLUMNS = ["channel", "recipient", "language", "subscriber_id", "origin"]


def recipient_rows(matched: pd.DataFrame, origin: str = "match") -> pd.DataFrame:
    """Matched subscribers (rows of the subscribers frame) as fan-out rows (``ROW_COLUMNS``)."""
    return pd.DataFrame(
        {
            "channel": matched["channel"].to_numpy(),
            "recipient": matched["address"].to_numpy(),
            "language": matched["language"].to_numpy(),
            "subscriber_id": matched["id"].to_numpy(),
            "origin": origin,
        },
        columns=ROW_COLUMNS,
    )


def match_bulletin(
    subscribers: pd.DataFrame,
    *,
    hazards: Collection[str],
    audiences: Collection[str],
    region_codes: Iterable[str],
    when: datetime,
    regions: Regions | None = None,
) -> pd.DataFrame:
    """The subscribers who get a bulletin (a daily outlook or a campaign).

    Bulletins are everyday publicity, not warnings: they go to active
    subscribers who asked for every level (``min_level`` blue), whose hazards
    are all hazards or include one the bulletin speaks of, whose audiences
    are the general public (none named) or include one of the campaign's
    (``audiences`` empty: the outlook, for everyone), in one of the
    bulletin's regions (``NATIONAL`` for all), outside their quiet hours.
    """
    if when.tzinfo is None:
        raise ValueError("match_bulletin: `when` must be timezone-aware")
    df = subscribers
    if df.empty:
        return df.copy()
    n = len(df)
    index = np.arange(n)

    def wants(column: str, values: Collection[str]) -> np.ndarray:
        lists = pd.Series(df[column].to_numpy(), index=index)
        everything = lists.str.len().fillna(0).eq(0).to_numpy()
        named = lists.explode()
        hit = named.isin(list(values)).groupby(level=0).any()
        return everything | hit.reindex(index, fill_value=False).to_numpy(dtype=bool)

    ok = df["active"].astype(bool).to_numpy() & (df["min_level"].astype(int).to_numpy() <= 1)
    ok &= wants("hazards", hazards)
    if audiences:
        ok &= wants("audiences", audiences)
    ok &= ~_in_quiet_hours(df, when)
    codes = {str(c) for c in region_codes}
    return _in_areas(df.iloc[np.flatnonzero(ok)], codes, None, regions)


def _in_areas(
    candidates: pd.DataFrame,
    codes: set[str],
    epicentre: tuple[float, float] | None,
    regions: Regions | None,
) -> pd.DataFrame:
    """The candidates with an area prefix of one of ``codes`` or a circle around its points."""
    if NATIONAL in codes or candidates.empty:
        return candidates.copy()

    # one row per (subscriber position, area); the index is the subscriber's position
    areas = pd.Series(candidates["areas"].to_numpy(), index=np.arange(len(candidates)))
    areas = areas.explode().dropna().astype(str)
    owner = areas.index.to_numpy()
    prefixes = {code[:k] for code in codes for k in range(1, len(code) + 1)}
    in_area = np.array(areas.isin(prefixes), dtype=bool)  # a writable copy
    is_circle = areas.str.startswith("circle:").to_numpy(dtype=bool)
    if is_circle.any():
        parts = areas[is_circle].str.removeprefix("circle:").str.split(",", expand=True)
        lat_c, lon_c, radius = parts.astype(float).to_numpy().T
        inside = np.zeros(len(lat_c), dtype=bool)
        for p_lat, p_lon in _points(codes, epicentre, regions):
            # a loop over the alert's few points, vectorised over every circle
            inside |= _haversine_km(lat_c, lon_c, p_lat, p_lon) <= radius
        in_area[is_circle] |= inside
    return candidates.iloc[np.unique(owner[in_area])].copy()


def _points(
    codes: set[str], epicentre: tuple[float, float] | None, regions: Regions | None
) -> list[tuple[float, float]]:
    if epicentre is not None:
        return [(float(epicentre[0]), float(epicentre[1]))]
    frame = (regions or load_regions()).frame
    adcodes = frame["adcode"].astype(str)
    wanted = adcodes.isin(codes)
    for code in codes:
        if len(code) == 6 and code.endswith("0000"):  # a province: its prefectures
            wanted |= adcodes.str.startswith(code[:2])
    rows = frame.loc[wanted]
    lats = pd.to_numeric(rows["rep_lat"]).to_numpy()
    lons = pd.to_numeric(rows["rep_lon"]).to_numpy()
    return list(zip(lats.tolist(), lons.tolist(), strict=True))


def _haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: float, lon2: float) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


def _minutes(values: pd.Series) -> pd.Series:
    text = values.astype("string")
    hours = pd.to_numeric(text.str.slice(0, 2), errors="coerce")
    minutes = pd.to_numeric(text.str.slice(3, 5), errors="coerce")
    return hours * 60 + minutes


def _in_quiet_hours(df: pd.DataFrame, when: datetime) -> np.ndarray:
    local = when.astimezone(LOCAL_TZ)
    now = local.hour * 60 + local.minute
    start = _minutes(df["quiet_start"])
    end = _minutes(df["quiet_end"])
    same_day = (start <= now) & (now < end)
    overnight = (start > end) & ((now >= start) | (now < end))
    quiet = (start < end) & same_day | overnight
    return quiet.fillna(False).to_numpy(dtype=bool)
