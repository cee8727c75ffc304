"""CAP 1.2 warning documents, and the Atom indexes that list them.

Any authority's official warning arrives as a CAP 1.2 ``<alert>``: one
message with one ``<info>`` block per language. Each info block becomes one
row of the official-warning frame (:data:`~alerts.feeds.base.OFFICIAL_COLUMNS`)
with the alert-level fields repeated, so a bilingual warning is two rows with
the same identifier.

Safety. XML is parsed only by :mod:`defusedxml` with DTDs refused outright: a
CAP document never needs one, and refusing ``<!DOCTYPE`` stops external
entities (XXE) and entity-expansion bombs before any expansion happens. Bytes
go to the parser undecoded so a declared encoding (ISO-8859-1) and a UTF-8
byte-order mark are honoured. Nesting deeper than :data:`MAX_DEPTH` is refused
before schema validation walks the tree.

How strict. The document is validated against the OASIS CAP 1.2 XSD (the
packaged ``schemas/CAP-v1.2.xsd``, built once; it imports nothing, and the
schema is built with no fallback locations and no resource access, and
instances are validated without ``xsi:schemaLocation`` hints, so validation
never reaches the network):

- Everything in the CAP namespace is validated strictly: any error rejects the
  whole document with a :class:`FeedFormatError` naming the element path and
  the reason. A CAP message is one authoritative statement and its info blocks
  are translations of it; acting on half of a message that the issuer got
  wrong is worse than flagging the message.
- The XSD ends ``<alert>`` with a lax wildcard for XML-DSig ``<Signature>``
  elements. We hold no schema for XML-DSig on purpose, so signatures are
  accepted unvalidated (we do not verify them either). This is deliberate:
  Canada's NAAD system (``CanadaNaad.xml``) signs with ``Id="NAADS Signature"``
  (not an NCName) and puts ``<Object xmlns="">`` outside the DSig namespace,
  both of which fail the DSig schema although the CAP content is valid.
- What the XSD cannot say is checked per info block: polygons (at least four
  ``lat,lon`` points, closed, latitude in [-90, 90], longitude in
  [-180, 180]), circles (``lat,lon radius_km``), onset/expires within years
  1900-2200 (pandas silently wraps at the calendar's edges) and the required
  info fields. An implausible ``sent`` rejects the document. A failing block
  is quarantined with a reason naming the field; the other blocks flow on.
  An empty ``<polygon/>`` or ``<circle/>`` counts as absent (US NWS emits
  empty polygons for zone-based warnings).

Columns. ``references`` is the whitespace-split list of
``sender,identifier,sent`` triples; ``category`` joins repeated categories
with ``"; "`` (CAP allows several, e.g. ``Fire; Met``); ``language`` defaults
to ``en-US`` and is normalised to the conventional case (``zh-tw`` ->
``zh-TW``); ``area_desc`` joins every ``areaDesc`` with ``"; "``;
``polygons`` keeps CAP's latitude-first order (``[[lat, lon], ...]``);
``circles`` is ``[[lat, lon, radius_km], ...]``; ``geocodes`` maps each
valueName to its values over every area. ``level`` comes from an info
``<parameter>`` whose valueName is one of :data:`LEVEL_PARAMETERS` and whose
value names a warning colour in English or Chinese (simplified or
traditional); several colours in one value give the most severe.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import Any, Literal
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, ParseError

import pandas as pd
import xmlschema
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from pydantic import BaseModel, Field, ValidationError, field_validator

from alerts.feeds.base import (
    OFFICIAL_COLUMNS,
    FeedFormatError,
    ParseResult,
    Quarantined,
    empty_frame,
)
from alerts.model import Level

__all__ = [
    "ATOM_NS",
    "CAP_NS",
    "LEVEL_PARAMETERS",
    "MAX_DEPTH",
    "AtomEntry",
    "level_of",
    "looks_like_atom",
    "normalise_language",
    "parse",
    "parse_atom",
    "read_xml",
]

SOURCE = "cap"
CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
DEFAULT_LANGUAGE = "en-US"
# CAP nests five deep (alert/info/area/geocode/value), NAAD's DSig signatures
# six. Anything far deeper is hostile or broken, and would only make the
# schema validator recurse.
MAX_DEPTH = 32
_YEAR_MIN, _YEAR_MAX = 1900, 2200

# valueNames (case-insensitive) of an info <parameter> that may state the colour.
# Common spellings (meteoalarm: awareness_level), plus "alert_color" as Taiwan's
# Water Resources Agency spells it (taiwan.cap states 紅色 there and nowhere else).
LEVEL_PARAMETERS = frozenset(
    {
        "level",
        "color",
        "colour",
        "alertlevel",
        "warning_level",
        "awareness_level",
        "alert_color",
        "alert_colour",
    }
)
_COLOUR_WORD = re.compile(
    r"\b(blue|yellow|orange|red)\b|(蓝|藍|黄|黃|橙|红|紅)色",
    re.IGNORECASE,
)
_ZH_COLOUR = {
    "蓝": "blue",
    "藍": "blue",
    "黄": "yellow",
    "黃": "yellow",
    "橙": "orange",
    "红": "red",
    "紅": "red",
}

_C = f"{{{CAP_NS}}}"
_A = f"{{{ATOM_NS}}}"


# -- safe XML ------------------------------------------------------------------


def read_xml(payload: bytes, source: str) -> Element:
    """Parse untrusted XML bytes safely, or raise ``FeedFormatError("<source>: ...")``.

    Shared by the XML feeds (CAP, Atom, GDACS RSS). DTDs, entities and
    external references are refused; the declared encoding is honoured.
    """
    try:
        root = SafeET.fromstring(
            payload, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise FeedFormatError(
            f"{source}: refused XML with a DTD, entity or external reference ({exc!r})"
        ) from None
    except ParseError as exc:
        raise FeedFormatError(f"{source}: payload is not well-formed XML: {exc}") from None
    except (ValueError, LookupError, UnicodeError) as exc:
        # e.g. an encoding declaration Python cannot decode with
        raise FeedFormatError(f"{source}: payload is not readable XML: {exc}") from None
    _check_depth(root, source)
    return root


def _check_depth(root: Element, source: str) -> None:
    stack: list[tuple[Element, int]] = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FeedFormatError(f"{source}: XML nests deeper than {MAX_DEPTH} elements")
        stack.extend((child, depth + 1) for child in element)


def _split_tag(tag: Any) -> tuple[str | None, str]:
    if not isinstance(tag, str):  # comments and processing instructions
        return None, ""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    text = element.text.strip()
    return text or None


# -- schema ----------------------------------------------------------------------


@lru_cache(maxsize=1)
def _schema() -> xmlschema.XMLSchema:
    """The CAP 1.2 XSD, built once from the package; no fallbacks, no resource access."""
    xsd = resources.files("alerts.feeds").joinpath("schemas/CAP-v1.2.xsd").read_bytes()
    return xmlschema.XMLSchema(xsd, use_fallback=False, allow="none")


def _local_path(text: str) -> str:
    return text.replace(_C, "")


def _validate(root: Element) -> None:
    errors = list(_schema().iter_errors(root, use_location_hints=False))
    if not errors:
        return
    first = errors[0]
    path = _local_path(first.path or "/alert")
    reason = _local_path(first.reason or first.message)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    ident = _text(root.find(f"{_C}identifier"))
    doc = f"document {ident!r}" if ident else "document"
    raise FeedFormatError(
        f"{SOURCE}: {doc} fails CAP 1.2 schema validation at {path}: {reason}{more}"
    )


def _check_root(root: Element) -> None:
    ns, local = _split_tag(root.tag)
    if local != "alert":
        raise FeedFormatError(f"{SOURCE}: root element is <{local}>, expected a CAP <alert>")
    if ns != CAP_NS:
        found = f"namespace {ns}" if ns else "no namespace"
        raise FeedFormatError(f"{SOURCE}: <alert> in {found}; only CAP 1.2 ({CAP_NS}) is supported")


# -- per-info validation -----------------------------------------------------------


def _utc(value: str) -> datetime:
    """An ISO 8601 time with offset, in UTC; years outside 1900-2200 are corrupt."""
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ValueError(f"not a date-time: {value!r} ({exc})") from None
    if stamp.tzinfo is None:
        raise ValueError(f"date-time {value!r} has no UTC offset")
    if not _YEAR_MIN <= stamp.year <= _YEAR_MAX:
        # also keeps pandas away from the calendar's edges, where it wraps silently
        raise ValueError(f"date-time {value!r} outside years {_YEAR_MIN}-{_YEAR_MAX}")
    return stamp.astimezone(UTC)


def _coordinate(pair: str) -> tuple[float, float]:
    lat_text, sep, lon_text = pair.partition(",")
    if not sep:
        raise ValueError(f"point {pair!r} is not 'lat,lon'")
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise ValueError(f"point {pair!r} has a non-numeric coordinate") from None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"point {pair!r} is not finite")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} in {pair!r} outside [-90, 90]")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} in {pair!r} outside [-180, 180]")
    return lat, lon


def _polygon(text: str, number: int) -> list[list[float]]:
    try:
        points = [_coordinate(pair) for pair in text.split()]
    except ValueError as exc:
        raise ValueError(f"polygon {number}: {exc}") from None
    if len(points) < 4:
        raise ValueError(f"polygon {number} has {len(points)} points, CAP requires at least 4")
    if points[0] != points[-1]:
        raise ValueError(f"polygon {number} is not closed (first point != last point)")
    return [[lat, lon] for lat, lon in points]


def _circle(text: str, number: int) -> list[float]:
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f"circle {number} {text!r} is not 'lat,lon radius'")
    try:
        lat, lon = _coordinate(parts[0])
        radius = float(parts[1])
    except ValueError as exc:
        raise ValueError(f"circle {number}: {exc}") from None
    if not math.isfinite(radius) or radius < 0:
        raise ValueError(f"circle {number} radius {parts[1]!r} is not a distance in km")
    return [lat, lon, radius]


class _Area(BaseModel):
    area_desc: str = Field(min_length=1)
    polygons: list[list[list[float]]] = []
    circles: list[list[float]] = []
    geocodes: list[tuple[str, str]] = []

    @field_validator("polygons", mode="before")
    @classmethod
    def _parse_polygons(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [_polygon(text, i) for i, text in enumerate(value) if text.strip()]
        return value

    @field_validator("circles", mode="before")
    @classmethod
    def _parse_circles(cls, value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return [_circle(text, i) for i, text in enumerate(value) if text.strip()]
        return value


# The enumerations of the CAP 1.2 schema that an <info> block uses; the
# exporter (alerts.cap_out) checks its output against the same values.
Category = Literal[
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
]
Urgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
Severity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
Certainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]


class _Info(BaseModel):
    language: str = DEFAULT_LANGUAGE
    category: list[Category] = Field(min_length=1)
    event: str = Field(min_length=1)
    urgency: Urgency
    severity: Severity
    certainty: Certainty
    onset: datetime | None = None
    expires: datetime | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    parameters: list[tuple[str, str]] = []
    event_codes: list[tuple[str, str]] = []
    areas: list[_Area] = []

    @field_validator("onset", "expires", mode="before")
    @classmethod
    def _to_utc(cls, value: Any) -> Any:
        return _utc(value) if isinstance(value, str) else value

    @field_validator("language", mode="before")
    @classmethod
    def _normalise_language(cls, value: Any) -> Any:
        if value is None:
            return DEFAULT_LANGUAGE
        if isinstance(value, str):
            return normalise_language(value)
        return value


def normalise_language(tag: str) -> str:
    """RFC 5646 conventional case: ``zh-tw`` -> ``zh-TW``, ``zh-hant-tw`` -> ``zh-Hant-TW``."""
    parts = [p for p in tag.strip().split("-") if p]
    if not parts:
        return DEFAULT_LANGUAGE
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 2 and part.isalpha():
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out)


def level_of(parameters: list[tuple[str, str]]) -> str | None:
    """The colour a ``level``/``color``-like parameter states, else None.

    Only colour words count: meteoalarm's ``"2; yellow; Moderate"`` is yellow,
    but a bare number is not trusted because numbering differs between
    publishers (meteoalarm 1 is green, our 1 is blue). Green is no level.
    """
    found: list[Level] = []
    for name, value in parameters:
        if name.strip().lower() not in LEVEL_PARAMETERS:
            continue
        for match in _COLOUR_WORD.finditer(value):
            word = match.group(1).lower() if match.group(1) else _ZH_COLOUR[match.group(2)]
            found.append(Level.parse(word))
    return max(found).colour if found else None


# -- document -> rows --------------------------------------------------------------


def _pairs(parent: Element, tag: str) -> list[tuple[str, str]]:
    out = []
    for element in parent.findall(f"{_C}{tag}"):
        name = _text(element.find(f"{_C}valueName"))
        value = _text(element.find(f"{_C}value"))
        if name is not None:
            out.append((name, value or ""))
    return out


def _info_record(info: Element) -> dict[str, Any]:
    """The info block as plain JSON-ready data: what gets validated or quarantined."""
    record: dict[str, Any] = {
        "language": _text(info.find(f"{_C}language")),
        "category": [t for c in info.findall(f"{_C}category") if (t := _text(c))],
    }
    for name in (
        "event",
        "urgency",
        "severity",
        "certainty",
        "onset",
        "expires",
        "headline",
        "description",
        "instruction",
    ):
        record[name] = _text(info.find(f"{_C}{name}"))
    record["parameters"] = [list(p) for p in _pairs(info, "parameter")]
    record["event_codes"] = [list(p) for p in _pairs(info, "eventCode")]
    record["areas"] = [
        {
            "area_desc": _text(area.find(f"{_C}areaDesc")),
            "polygons": [p.text or "" for p in area.findall(f"{_C}polygon")],
            "circles": [c.text or "" for c in area.findall(f"{_C}circle")],
            "geocodes": [list(p) for p in _pairs(area, "geocode")],
        }
        for area in info.findall(f"{_C}area")
    ]
    return {k: v for k, v in record.items() if v is not None}


def _alert_fields(root: Element) -> dict[str, Any]:
    identifier = _text(root.find(f"{_C}identifier"))
    sender = _text(root.find(f"{_C}sender"))
    sent_text = _text(root.find(f"{_C}sent"))
    if not identifier or not sender or not sent_text:
        raise FeedFormatError(f"{SOURCE}: <alert> lacks identifier, sender or sent")
    try:
        sent = _utc(sent_text)
    except ValueError as exc:
        raise FeedFormatError(f"{SOURCE}: document {identifier!r}: sent: {exc}") from None
    return {
        "source": SOURCE,
        "identifier": identifier,
        "sender": sender,
        "sent": sent,
        "status": _text(root.find(f"{_C}status")),
        "msg_type": _text(root.find(f"{_C}msgType")),
        "references": (_text(root.find(f"{_C}references")) or "").split(),
    }


def _row(alert: dict[str, Any], info: _Info) -> dict[str, Any]:
    geocodes: dict[str, list[str]] = {}
    for area in info.areas:
        for name, value in area.geocodes:
            values = geocodes.setdefault(name, [])
            if value not in values:
                values.append(value)
    descs = [area.area_desc for area in info.areas]
    return {
        **alert,
        "references": list(alert["references"]),
        "language": info.language,
        "event": info.event,
        "category": "; ".join(info.category),
        "severity": info.severity,
        "urgency": info.urgency,
        "certainty": info.certainty,
        "onset": info.onset,
        "expires": info.expires,
        "headline": info.headline,
        "description": info.description,
        "instruction": info.instruction,
        "area_desc": "; ".join(descs) if descs else None,
        "polygons": [polygon for area in info.areas for polygon in area.polygons],
        "circles": [circle for area in info.areas for circle in area.circles],
        "geocodes": geocodes,
        "level": level_of(info.parameters),
        "event_codes": _grouped(info.event_codes),
    }


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


# The official-warning columns, then the event codes (valueName -> values; the
# GB/T 35965.1 profile names the hazard there, e.g. 11B03 rainstorm).
CAP_COLUMNS = {**OFFICIAL_COLUMNS, "event_codes": "eventCode valueName -> list of values"}


def parse(payload: bytes) -> ParseResult:
    """Parse one CAP 1.2 document into the official-warning frame, a row per info block."""
    root = read_xml(payload, SOURCE)
    _check_root(root)
    _validate(root)
    alert = _alert_fields(root)

    rows: list[dict[str, Any]] = []
    quarantined: list[Quarantined] = []
    for index, element in enumerate(root.findall(f"{_C}info")):
        record = _info_record(element)
        try:
            info = _Info.model_validate(record)
        except ValidationError as exc:
            reason = f"info[{index}]: {_why(exc)}"
            raw = {"identifier": alert["identifier"], "info": record}
            quarantined.append(Quarantined(SOURCE, alert["identifier"], reason, raw))
            continue
        rows.append(_row(alert, info))

    if not rows:
        return ParseResult(empty_frame(CAP_COLUMNS), quarantined)
    frame = pd.DataFrame.from_records(rows, columns=list(CAP_COLUMNS))
    for col in ("sent", "onset", "expires"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return ParseResult(frame, quarantined)


def _why(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


# -- Atom indexes ------------------------------------------------------------------


@dataclass(frozen=True)
class AtomEntry:
    """One entry of an Atom index: what to fetch (``link``) and how to recognise it."""

    id: str
    title: str | None
    updated: datetime | None
    link: str | None
    summary: str | None

    def as_dict(self) -> dict[str, str | None]:
        """JSON-ready, times as ISO 8601 UTC with ``Z``."""
        updated = self.updated.isoformat().replace("+00:00", "Z") if self.updated else None
        return {
            "id": self.id,
            "title": self.title,
            "updated": updated,
            "link": self.link,
            "summary": self.summary,
        }


def _atom_time(text: str | None) -> datetime | None:
    """RFC 3339 to UTC; a stamp without offset is taken as UTC; garbage is None."""
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC)
    try:
        return stamp.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _cap_link(entry: Element) -> str | None:
    """The link most likely to be the CAP document.

    In order: a link typed ``application/cap+xml``; a link whose path ends
    ``.cap`` or ``.xml``; an ``alternate`` link (Atom's default rel) not typed
    as HTML. An entry whose only links are web pages has no CAP link (None).
    """
    links = []
    for link in entry.findall(f"{_A}link"):
        href = (link.get("href") or "").strip()
        if href:
            rel = (link.get("rel") or "alternate").strip().lower()
            mime = (link.get("type") or "").strip().lower()
            links.append((href, rel, mime))
    for href, _, mime in links:
        if mime == "application/cap+xml":
            return href
    for href, _, _ in links:
        try:
            path = urlsplit(href).path.lower()
        except ValueError:  # a malformed URL (e.g. an unclosed IPv6 bracket) is no link
            continue
        if path.endswith((".cap", ".xml")):
            return href
    for href, rel, mime in links:
        if rel == "alternate" and mime not in ("text/html", "application/xhtml+xml"):
            return href
    return None


def looks_like_atom(payload: bytes) -> bool:
    """True for an Atom index (a ``<feed>`` root) rather than a CAP document."""
    head = payload.lstrip(b"\xef\xbb\xbf \t\r\n")[:2048]
    return head.startswith(b"<") and re.search(rb"<(\w+:)?feed[\s>]", head) is not None


def parse_atom(payload: bytes) -> list[AtomEntry]:
    """Entries of an Atom index of CAP documents, in feed order.

    ``id`` falls back to the link when an entry has none; an entry with
    neither is skipped (there is nothing to fetch or to recognise it by).
    """
    root = read_xml(payload, SOURCE)
    ns, local = _split_tag(root.tag)
    if ns != ATOM_NS or local != "feed":
        found = f"{{{ns}}}{local}" if ns else local
        raise FeedFormatError(f"{SOURCE}: expected an Atom <feed>, root element is <{found}>")
    entries = []
    for entry in root.findall(f"{_A}entry"):
        link = _cap_link(entry)
        entry_id = _text(entry.find(f"{_A}id")) or link
        if not entry_id:
            continue
        entries.append(
            AtomEntry(
                id=entry_id,
                title=_text(entry.find(f"{_A}title")),
                updated=_atom_time(_text(entry.find(f"{_A}updated"))),
                link=link,
                summary=_text(entry.find(f"{_A}summary")),
            )
        )
    return entries
