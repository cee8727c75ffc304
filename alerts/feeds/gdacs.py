"""GDACS RSS (Global Disaster Alert and Coordination System).

One row per ``<item>`` in the official-warning frame
(:data:`~alerts.feeds.base.OFFICIAL_COLUMNS`) followed by GDACS's own numbers
(:data:`GDACS_EXTRA_COLUMNS`). Items carry RSS 2.0 fields plus the
``gdacs:`` (``http://www.gdacs.org``), ``georss:``
(``http://www.georss.org/georss``) and ``geo:``
(``http://www.w3.org/2003/01/geo/wgs84_pos#``) namespaces. Each item is
validated on its own; a malformed one is quarantined with the field named and
its neighbours flow on. The XML is read with the same defused parser as CAP.

Decisions, because GDACS is not CAP:

- ``identifier`` is ``f"{eventtype}{eventid}_{episodeid}"`` (``TC1000643_1``):
  GDACS's ``guid`` (``TC1000643``) names the event, but the alert level can
  change per episode, so the episode is part of the key.
- ``msg_type`` is always ``Alert`` and ``references`` empty: each episode is
  its own identifier, so there is nothing to update in place. ``gdacs:version``
  is not used: its meaning is undocumented and inconsistent (droughts publish
  version 0, a first cyclone episode version 1); the store's reconciliation
  decides what is an update of what.
- ``status`` is always ``Actual``: the feed has no test or exercise flag.
  ``gdacs:temporary`` (false in every recorded feed) marks provisional event
  data, not a test message.
- ``sent`` is ``pubDate``; ``onset`` is ``gdacs:fromdate``. ``expires`` is
  ``gdacs:todate`` only once the event is over (``iscurrent`` false): while it
  is current, ``todate`` is merely the latest episode's time (often equal to
  ``pubDate``) and treating it as an expiry would expire live disasters.
- Severity and level follow the alert colour: Green -> ``Minor`` and level
  None (GDACS Green, "no humanitarian response expected", is below our blue),
  Orange -> ``Severe`` and ``orange``, Red -> ``Extreme`` and ``red``. With
  no ``alertlevel``, the colour is derived from ``alertscore`` as FEEDS.md
  states (red >= 2, orange 1 to 2, green below 1); a stated ``alertlevel``
  always wins over the score. No colour at all: severity ``Unknown``, level None.
- ``urgency`` is ``Unknown``; ``certainty`` is ``Observed`` while
  ``iscurrent`` is true, else ``Unknown``.
- ``area_desc`` is ``gdacs:country``; ``geocodes`` is ``{"iso3": [...]}``
  (empty dict without codes). GDACS gives a point, not an area: ``polygons``
  is empty and the point is a circle of radius 0, ``circles =
  [[lat, lon, 0.0]]``, taken from ``georss:point`` (``"lat lon"``) or else
  ``geo:Point``. An item without a point is quarantined: it cannot be placed.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from xml.etree.ElementTree import Element

import pandas as pd
from pydantic import BaseModel, Field, ValidationError, field_validator

from alerts.feeds.base import (
    OFFICIAL_COLUMNS,
    FeedFormatError,
    ParseResult,
    Quarantined,
    empty_frame,
)
from alerts.feeds.cap import read_xml

__all__ = [
    "EVENT_TYPES",
    "GDACS_COLUMNS",
    "GDACS_EXTRA_COLUMNS",
    "LEVELS",
    "SEVERITIES",
    "alert_colour",
    "parse",
]

SOURCE = "gdacs"
SENDER = "gdacs.org"
GDACS_NS = "http://www.gdacs.org"
GEORSS_NS = "http://www.georss.org/georss"
GEO_NS = "http://www.w3.org/2003/01/geo/wgs84_pos#"

# eventtype -> (readable event, CAP category). Unknown types pass as ("XX", "Other").
EVENT_TYPES: dict[str, tuple[str, str]] = {
    "EQ": ("Earthquake", "Geo"),
    "TC": ("Tropical cyclone", "Met"),
    "FL": ("Flood", "Met"),
    "VO": ("Volcano", "Geo"),
    "DR": ("Drought", "Met"),
    "WF": ("Wildfire", "Fire"),
    "TS": ("Tsunami", "Geo"),
}
# GDACS alert colour -> our level (None: below blue) and CAP severity.
LEVELS: dict[str, str | None] = {"Green": None, "Orange": "orange", "Red": "red"}
SEVERITIES: dict[str, str] = {"Green": "Minor", "Orange": "Severe", "Red": "Extreme"}

GDACS_EXTRA_COLUMNS: dict[str, str] = {
    "alert_score": "gdacs:alertscore (float or NA)",
    "severity_value": "gdacs:severity value, in severity_unit (float or NA)",
    "severity_unit": "unit of severity_value as GDACS spells it (M, km/h, km2, ha ...)",
    "population": "gdacs:population value: people affected (float or NA)",
    "event_type": "GDACS event type code (EQ, TC, FL, VO, DR, WF, TS)",
    "event_id": "GDACS event id (string)",
    "episode_id": "GDACS episode id (string)",
    "country": "gdacs:country as published (may list several)",
    "latitude": "degrees north of the event point",
    "longitude": "degrees east of the event point",
}
GDACS_COLUMNS: dict[str, str] = {**OFFICIAL_COLUMNS, **GDACS_EXTRA_COLUMNS}

_G = f"{{{GDACS_NS}}}"
_YEAR_MIN, _YEAR_MAX = 1900, 2200  # outside: corrupt, and pandas wraps at the edges
_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def alert_colour(alertlevel: str | None, alertscore: float | None) -> str | None:
    """GDACS colour (Green/Orange/Red): the stated level, else derived from the score."""
    if alertlevel:
        return alertlevel.strip().title()
    if alertscore is None or not math.isfinite(alertscore):
        return None
    if alertscore >= 2:
        return "Red"
    if alertscore >= 1:
        return "Orange"
    return "Green"


def _rfc822(value: str) -> datetime:
    try:
        stamp = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise ValueError(f"not an RFC 822 date: {value!r}") from None
    if stamp.tzinfo is None:  # "-0000": UTC, origin unknown
        stamp = stamp.replace(tzinfo=UTC)
    if not _YEAR_MIN <= stamp.year <= _YEAR_MAX:
        raise ValueError(f"date {value!r} outside years {_YEAR_MIN}-{_YEAR_MAX}")
    return stamp.astimezone(UTC)


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class _Item(BaseModel):
    title: str | None = None
    description: str | None = None
    pubDate: datetime  # noqa: N815 - the feed's spelling
    eventtype: str = Field(pattern=r"^[A-Z]{2}$")
    eventid: str = Field(pattern=_ID.pattern)
    episodeid: str = Field(pattern=_ID.pattern)
    alertlevel: Literal["Green", "Orange", "Red"] | None = None
    alertscore: float | None = None
    severity_value: float | None = None
    severity_unit: str | None = None
    population: float | None = None
    iso3: list[str] = []
    country: str | None = None
    point: tuple[float, float]
    fromdate: datetime | None = None
    todate: datetime | None = None
    iscurrent: bool = False

    @field_validator("pubDate", "fromdate", "todate", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return _rfc822(value) if isinstance(value, str) else value

    @field_validator("eventtype", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("alertlevel", mode="before")
    @classmethod
    def _title(cls, value: Any) -> Any:
        return value.strip().title() if isinstance(value, str) else value

    @field_validator("alertscore", "severity_value", "population")
    @classmethod
    def _finite_number(cls, value: float | None) -> float | None:
        return _finite(value)

    @field_validator("iso3", mode="before")
    @classmethod
    def _codes(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [code for code in re.split(r"[\s,;]+", value) if code]
        return value

    @field_validator("point", mode="before")
    @classmethod
    def _lat_lon(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = value.split()
            if len(parts) != 2:
                raise ValueError(f"{value!r} is not 'lat lon'")
            return parts
        return value

    @field_validator("point")
    @classmethod
    def _in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        lat, lon = value
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise ValueError("coordinates must be finite")
        if not -90.0 <= lat <= 90.0:
            raise ValueError(f"latitude {lat} outside [-90, 90]")
        if not -180.0 <= lon <= 180.0:
            raise ValueError(f"longitude {lon} outside [-180, 180]")
        return value


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    text = element.text.strip()
    return text or None


def _item_record(item: Element) -> dict[str, Any]:
    """The item's fields as plain strings: what gets validated or quarantined."""
    record: dict[str, Any] = {
        "title": _text(item.find("title")),
        "description": _text(item.find("description")),
        "pubDate": _text(item.find("pubDate")),
        "guid": _text(item.find("guid")),
    }
    for name in (
        "eventtype",
        "eventid",
        "episodeid",
        "alertlevel",
        "alertscore",
        "iso3",
        "country",
        "fromdate",
        "todate",
        "iscurrent",
    ):
        record[name] = _text(item.find(f"{_G}{name}"))
    severity = item.find(f"{_G}severity")
    if severity is not None:
        record["severity_value"] = (severity.get("value") or "").strip() or None
        record["severity_unit"] = (severity.get("unit") or "").strip() or None
    population = item.find(f"{_G}population")
    if population is not None:
        record["population"] = (population.get("value") or "").strip() or None
    point = _text(item.find(f"{{{GEORSS_NS}}}point"))
    if point is None:
        geo = item.find(f"{{{GEO_NS}}}Point")
        lat = _text(geo.find(f"{{{GEO_NS}}}lat")) if geo is not None else None
        lon = _text(geo.find(f"{{{GEO_NS}}}long")) if geo is not None else None
        if lat is not None and lon is not None:
            point = f"{lat} {lon}"
    record["point"] = point
    return {k: v for k, v in record.items() if v is not None}


def _row(item: _Item) -> dict[str, Any]:
    event, category = EVENT_TYPES.get(item.eventtype, (item.eventtype, "Other"))
    colour = alert_colour(item.alertlevel, item.alertscore)
    lat, lon = item.point
    return {
        "source": SOURCE,
        "identifier": f"{item.eventtype}{item.eventid}_{item.episodeid}",
        "sender": SENDER,
        "sent": item.pubDate,
        "status": "Actual",
        "msg_type": "Alert",
        "references": [],
        "language": "en",
        "event": event,
        "category": category,
        "severity": SEVERITIES.get(colour, "Unknown") if colour else "Unknown",
        "urgency": "Unknown",
        "certainty": "Observed" if item.iscurrent else "Unknown",
        "onset": item.fromdate,
        "expires": None if item.iscurrent else item.todate,
        "headline": item.title,
        "description": item.description,
        "instruction": None,
        "area_desc": item.country,
        "polygons": [],
        "circles": [[lat, lon, 0.0]],
        "geocodes": {"iso3": list(item.iso3)} if item.iso3 else {},
        "level": LEVELS.get(colour) if colour else None,
        "alert_score": item.alertscore,
        "severity_value": item.severity_value,
        "severity_unit": item.severity_unit,
        "population": item.population,
        "event_type": item.eventtype,
        "event_id": item.eventid,
        "episode_id": item.episodeid,
        "country": item.country,
        "latitude": lat,
        "longitude": lon,
    }


def parse(payload: bytes) -> ParseResult:
    """Parse a GDACS RSS feed into the official-warning frame plus GDACS columns."""
    root = read_xml(payload, SOURCE)
    channel = root.find("channel") if root.tag == "rss" else None
    if channel is None:
        raise FeedFormatError(
            f"{SOURCE}: expected an RSS 2.0 <rss><channel> document, root is <{root.tag}>"
        )

    rows: list[dict[str, Any]] = []
    quarantined: list[Quarantined] = []
    for index, element in enumerate(channel.findall("item")):
        record = _item_record(element)
        try:
            item = _Item.model_validate(record)
        except ValidationError as exc:
            key = record.get("guid") or (
                f"{record.get('eventtype', '')}{record.get('eventid', '')}" or None
            )
            quarantined.append(Quarantined(SOURCE, key, f"items[{index}]: {_why(exc)}", record))
            continue
        rows.append(_row(item))

    if not rows:
        return ParseResult(empty_frame(GDACS_COLUMNS), quarantined)
    frame = pd.DataFrame.from_records(rows, columns=list(GDACS_COLUMNS))
    for col in ("sent", "onset", "expires"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    for col in ("alert_score", "severity_value", "population", "latitude", "longitude"):
        frame[col] = pd.to_numeric(frame[col]).astype("Float64")
    return ParseResult(frame, quarantined)


def _why(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
