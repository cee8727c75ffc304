"""Outgoing CAP 1.2 documents: describe, serialise, validate, and round-trip.

The counterpart of :mod:`alerts.feeds.cap` (which reads CAP). A document is
described by three frozen dataclasses, :class:`CapDocument` (the ``<alert>``),
:class:`CapInfo` (one ``<info>`` per language) and :class:`CapArea`;
:func:`to_xml` writes it as UTF-8 XML in the default CAP 1.2 namespace and
:func:`validate` checks bytes against the packaged OASIS XSD (the schema the
parser builds, reused, never a second copy).

What :func:`to_xml` guarantees, beyond the element order the XSD requires:

- Times are written ``YYYY-MM-DDThh:mm:ss+08:00``: Beijing time as a fixed
  UTC+8 offset (not the ``Asia/Shanghai`` zone, whose 1986-1991 summer time and
  pre-1901 local mean time would give ``+09:00`` or a seconds offset the XSD
  pattern refuses). CAP forbids ``Z``. Sub-second parts are dropped (CAP times
  have whole seconds). A naive datetime, or a year outside 1900-2200 (what the
  parser accepts), is refused.
- Polygons are ``lat,lon lat,lon ...`` with coordinates rounded to at most 4
  decimals (about 10 m) and the ring closed after rounding; fewer than 4
  points once closed is refused. Circles are ``lat,lon radius_km``.
- Anything the XSD or the parser would reject is refused up front with a
  ``ValueError`` naming the field (``infos[0].areas[1].polygons[0]: ...``):
  enumerated values (status, msgType, scope, category, urgency, severity,
  certainty), a language that is not an ``xs:language`` tag, blank required
  text (identifier, sender, event, areaDesc, a valueName), characters XML 1.0
  cannot carry (control characters, surrogates, U+FFFE/U+FFFF), coordinates
  out of range or not finite. Following CAP 1.2 section 3.2.1, identifier and
  sender may not contain whitespace, commas, ``<`` or ``&`` (otherwise the
  ``sender,identifier,sent`` triples in ``<references>`` become ambiguous), and
  each reference must be such a triple.

Text is written as given (XML-special characters are escaped by ElementTree);
note that XML parsers turn ``\\r`` into ``\\n`` and our parser strips leading
and trailing whitespace, so those do not survive a round trip.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, get_args
from xml.etree import ElementTree as ET

import pandas as pd
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from alerts.feeds.base import FeedFormatError
from alerts.feeds.cap import CAP_NS, Category, Certainty, Severity, Urgency, _schema, read_xml

__all__ = [
    "BEIJING",
    "CATEGORIES",
    "CERTAINTIES",
    "MSG_TYPES",
    "SCOPES",
    "SEVERITIES",
    "STATUSES",
    "URGENCIES",
    "CapArea",
    "CapDocument",
    "CapInfo",
    "circle_area",
    "from_parsed",
    "format_time",
    "region_polygon",
    "to_xml",
    "validate",
]

BEIJING = timezone(timedelta(hours=8), "CST")

# The enumerations of the CAP 1.2 XSD (tests check them against the schema).
STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES: tuple[str, ...] = get_args(Category)
URGENCIES: tuple[str, ...] = get_args(Urgency)
SEVERITIES: tuple[str, ...] = get_args(Severity)
CERTAINTIES: tuple[str, ...] = get_args(Certainty)

_YEAR_MIN, _YEAR_MAX = 1900, 2200
_DECIMALS = 4
_LANGUAGE = re.compile(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*")
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# CAP 1.2 3.2.1: identifier and sender "MUST NOT include spaces, commas or
# restricted characters (< and &)".
_NOT_IN_ID = re.compile(r"[\s,<&]")
_C = f"{{{CAP_NS}}}"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


# -- the document ------------------------------------------------------------------


@dataclass(frozen=True)
class CapArea:
    """One ``<area>``: polygons are rings of (lat, lon), circles (lat, lon, radius_km)."""

    desc: str
    geocodes: dict[str, list[str]] = field(default_factory=dict)
    polygons: list[list[tuple[float, float]]] = field(default_factory=list)
    circles: list[tuple[float, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class CapInfo:
    """One ``<info>`` block (one language). ``category`` is a single CAP category."""

    language: str
    category: str
    event: str
    urgency: str
    severity: str
    certainty: str
    onset: datetime | None = None
    expires: datetime | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    sender_name: str | None = None
    web: str | None = None
    event_codes: list[tuple[str, str]] = field(default_factory=list)
    parameters: list[tuple[str, str]] = field(default_factory=list)
    areas: list[CapArea] = field(default_factory=list)


@dataclass(frozen=True)
class CapDocument:
    """One ``<alert>``. ``references`` holds ``sender,identifier,sent`` triples."""

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str = "Public"
    references: list[str] = field(default_factory=list)
    note: str | None = None
    infos: list[CapInfo] = field(default_factory=list)


# -- checks ----------------------------------------------------------------------


def _text(value: str | None, name: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValueError(f"{name}: required")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected text, got {type(value).__name__}")
    if required and not value.strip():
        raise ValueError(f"{name}: must not be empty")
    bad = _NOT_XML.search(value)
    if bad:
        raise ValueError(f"{name}: character {bad.group()!r} cannot be written in XML 1.0")
    return value


def _required(value: str, name: str) -> str:
    text = _text(value, name, required=True)
    assert text is not None
    return text


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _ident(value: str, name: str) -> str:
    text = _required(value, name)
    bad = _NOT_IN_ID.search(text)
    if bad:
        raise ValueError(
            f"{name}: {text!r} contains {bad.group()!r}; CAP forbids whitespace, ',', '<', '&'"
        )
    return text


def format_time(value: datetime, name: str = "time") -> str:
    """``YYYY-MM-DDThh:mm:ss+08:00`` (Beijing time, whole seconds) from an aware datetime."""
    if not isinstance(value, datetime):
        raise ValueError(f"{name}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: naive datetime {value!r}; give a time zone")
    try:
        local = value.astimezone(BEIJING)
    except (OverflowError, ValueError) as exc:
        raise ValueError(f"{name}: {value!r} cannot be converted: {exc}") from None
    if not _YEAR_MIN <= local.year <= _YEAR_MAX:
        raise ValueError(f"{name}: year {local.year} outside {_YEAR_MIN}-{_YEAR_MAX}")
    return local.strftime("%Y-%m-%dT%H:%M:%S+08:00")


def _number(value: float, name: str) -> str:
    """At most four decimals, no trailing zeros, never ``-0``."""
    text = f"{round(float(value), _DECIMALS):.{_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _point(lat: float, lon: float, name: str) -> tuple[float, float]:
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: point ({lat!r}, {lon!r}) is not numeric") from None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"{name}: point ({lat}, {lon}) is not finite")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"{name}: latitude {lat} outside [-90, 90] (CAP puts latitude first)")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"{name}: longitude {lon} outside [-180, 180]")
    return round(lat, _DECIMALS), round(lon, _DECIMALS)


def _polygon_text(points: Iterable[Any], name: str) -> str:
    ring: list[tuple[float, float]] = []
    for index, point in enumerate(points):
        try:
            lat, lon = point
        except (TypeError, ValueError):
            raise ValueError(f"{name}: point {index} {point!r} is not (lat, lon)") from None
        ring.append(_point(lat, lon, f"{name}[{index}]"))
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    if len(ring) < 4:
        raise ValueError(f"{name}: {len(ring)} points once closed; CAP requires at least 4")
    return " ".join(f"{_number(lat, name)},{_number(lon, name)}" for lat, lon in ring)


def _circle_text(circle: Any, name: str) -> str:
    try:
        lat, lon, radius = circle
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {circle!r} is not (lat, lon, radius_km)") from None
    lat, lon, radius = circle_area(lat, lon, radius, name=name)
    return f"{_number(lat, name)},{_number(lon, name)} {_number(radius, name)}"


def _reference(value: str, name: str) -> str:
    text = _required(value, name)
    parts = text.split(",")
    if len(parts) != 3 or not all(parts) or re.search(r"\s", text):
        raise ValueError(f"{name}: {text!r} is not a 'sender,identifier,sent' triple")
    return text


# -- writing ----------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str | None) -> None:
    if text is not None:
        ET.SubElement(parent, f"{_C}{tag}").text = text


def _pair(parent: ET.Element, tag: str, pair: Any, name: str) -> None:
    try:
        value_name, value = pair
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {pair!r} is not a (valueName, value) pair") from None
    element = ET.SubElement(parent, f"{_C}{tag}")
    _sub(element, "valueName", _required(value_name, f"{name}.valueName"))
    _sub(element, "value", _text(value if value is not None else "", f"{name}.value"))


def _area(parent: ET.Element, area: CapArea, name: str) -> None:
    element = ET.SubElement(parent, f"{_C}area")
    _sub(element, "areaDesc", _required(area.desc, f"{name}.desc"))
    for i, polygon in enumerate(area.polygons):
        _sub(element, "polygon", _polygon_text(polygon, f"{name}.polygons[{i}]"))
    for i, circle in enumerate(area.circles):
        _sub(element, "circle", _circle_text(circle, f"{name}.circles[{i}]"))
    for code_name, values in area.geocodes.items():
        if isinstance(values, str):
            values = [values]
        for value in values:
            _pair(element, "geocode", (code_name, value), f"{name}.geocodes[{code_name!r}]")


def _info(parent: ET.Element, info: CapInfo, name: str) -> None:
    element = ET.SubElement(parent, f"{_C}info")
    language = _required(info.language, f"{name}.language")
    if not _LANGUAGE.fullmatch(language):
        raise ValueError(f"{name}.language: {language!r} is not a language tag (e.g. zh-CN)")
    _sub(element, "language", language)
    _sub(element, "category", _choice(info.category, f"{name}.category", CATEGORIES))
    _sub(element, "event", _required(info.event, f"{name}.event"))
    _sub(element, "urgency", _choice(info.urgency, f"{name}.urgency", URGENCIES))
    _sub(element, "severity", _choice(info.severity, f"{name}.severity", SEVERITIES))
    _sub(element, "certainty", _choice(info.certainty, f"{name}.certainty", CERTAINTIES))
    for i, pair in enumerate(info.event_codes):
        _pair(element, "eventCode", pair, f"{name}.event_codes[{i}]")
    if info.onset is not None:
        _sub(element, "onset", format_time(info.onset, f"{name}.onset"))
    if info.expires is not None:
        _sub(element, "expires", format_time(info.expires, f"{name}.expires"))
    _sub(element, "senderName", _text(info.sender_name, f"{name}.sender_name"))
    _sub(element, "headline", _text(info.headline, f"{name}.headline"))
    _sub(element, "description", _text(info.description, f"{name}.description"))
    _sub(element, "instruction", _text(info.instruction, f"{name}.instruction"))
    if info.web is not None:
        web = _required(info.web, f"{name}.web")
        if re.search(r"\s", web):
            raise ValueError(f"{name}.web: {web!r} contains whitespace; not a URI")
        _sub(element, "web", web)
    for i, pair in enumerate(info.parameters):
        _pair(element, "parameter", pair, f"{name}.parameters[{i}]")
    for i, area in enumerate(info.areas):
        _area(element, area, f"{name}.areas[{i}]")


def to_xml(doc: CapDocument) -> bytes:
    """The document as UTF-8 CAP 1.2 XML (declaration, default namespace, indented).

    Raises ``ValueError`` naming the field for anything the schema or the CAP
    parser would refuse (see the module docstring); does not run the XSD
    itself (call :func:`validate` for that).
    """
    root = ET.Element(f"{_C}alert")
    _sub(root, "identifier", _ident(doc.identifier, "identifier"))
    _sub(root, "sender", _ident(doc.sender, "sender"))
    _sub(root, "sent", format_time(doc.sent, "sent"))
    _sub(root, "status", _choice(doc.status, "status", STATUSES))
    _sub(root, "msgType", _choice(doc.msg_type, "msg_type", MSG_TYPES))
    _sub(root, "scope", _choice(doc.scope, "scope", SCOPES))
    _sub(root, "note", _text(doc.note, "note"))
    if doc.references:
        refs = [_reference(r, f"references[{i}]") for i, r in enumerate(doc.references)]
        _sub(root, "references", " ".join(refs))
    for i, info in enumerate(doc.infos):
        _info(root, info, f"infos[{i}]")
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode", default_namespace=CAP_NS)
    return (_DECLARATION + body + "\n").encode("utf-8")


def validate(xml: bytes) -> None:
    """Validate CAP bytes against the packaged CAP 1.2 XSD; ``ValueError`` with path and reason.

    The bytes are parsed with the same defused reader as incoming CAP (no DTD,
    no entities). Only the schema is checked, not what the parser adds
    (polygon closure and the like, which :func:`to_xml` enforces).
    """
    try:
        root = read_xml(xml, "cap_out")
    except FeedFormatError as exc:
        raise ValueError(str(exc)) from None
    errors = list(_schema().iter_errors(root, use_location_hints=False))
    if errors:
        first = errors[0]
        path = (first.path or "/").replace(_C, "")
        reason = (first.reason or first.message).replace(_C, "")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValueError(f"CAP 1.2 schema validation fails at {path}: {reason}{more}")


# -- areas ------------------------------------------------------------------------


def circle_area(
    lat: float, lon: float, radius_km: float, *, name: str = "circle"
) -> tuple[float, float, float]:
    """A CAP circle (lat, lon, radius_km), checked: coordinates in range, radius >= 0."""
    lat, lon = _point(lat, lon, name)
    try:
        radius = float(radius_km)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: radius {radius_km!r} is not numeric") from None
    if not math.isfinite(radius) or radius < 0:
        raise ValueError(f"{name}: radius {radius_km!r} is not a distance in km")
    return lat, lon, radius


def region_polygon(geom: BaseGeometry, max_points: int = 100) -> list[list[tuple[float, float]]]:
    """A region boundary (shapely, lon/lat) as CAP polygons: ``[[(lat, lon), ...]]``.

    Only the largest part of a MultiPolygon is kept (by area in square
    degrees; offshore islands are dropped) and only its exterior ring (CAP
    polygons have no holes), so the result is one polygon. It is simplified
    (``shapely.simplify``, topology preserved) with a tolerance doubled from
    1/10000 of the part's extent until the ring, rounded to 4 decimals and
    closed, has at most ``max_points`` points including the closing one. Pair
    it with geocodes when the exact boundary matters.
    """
    if max_points < 4:
        raise ValueError(f"max_points: {max_points} < 4, the smallest CAP polygon")
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
    if not parts:
        raise ValueError(f"geom: no polygon in {getattr(geom, 'geom_type', type(geom).__name__)}")
    part = Polygon(max(parts, key=lambda p: p.area).exterior)
    minx, miny, maxx, maxy = part.bounds
    tolerance = max(maxx - minx, maxy - miny) * 1e-4
    candidate = part
    for _ in range(64):
        ring = _rounded_ring(candidate)
        if len(ring) <= max_points:
            break
        candidate = shapely.simplify(part, tolerance, preserve_topology=True)
        tolerance *= 2
    else:  # pragma: no cover - topology-preserving simplification ends at a triangle
        ring = _rounded_ring(part.envelope)
    if len(ring) < 4:
        raise ValueError(f"geom: the largest part is too small for a CAP polygon ({ring})")
    return [ring]


def _rounded_ring(polygon: Polygon) -> list[tuple[float, float]]:
    ring: list[tuple[float, float]] = []
    for lon, lat in polygon.exterior.coords:
        point = (round(lat, _DECIMALS), round(lon, _DECIMALS))
        if not ring or ring[-1] != point:
            ring.append(point)
    if ring and ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring


# -- CAP in -> CAP out --------------------------------------------------------------


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, dicts, arrays
        return False


def _time(value: Any) -> datetime | None:
    if _missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value
    raise ValueError(f"not a time: {value!r}")


def _optional(row: Mapping[str, Any], key: str) -> Any:
    value = row.get(key)
    return None if _missing(value) else value


def _as_list(value: Any) -> list[Any]:
    return [] if _missing(value) else list(value)


def from_parsed(row: Mapping[str, Any]) -> CapDocument:
    """A one-info document from one row of :func:`alerts.feeds.cap.parse`'s frame.

    The frame flattens what it keeps, so some of the original is lost or merged:
    scope is not kept (``Public`` is written); only the first of several
    categories is kept; every area becomes one area whose description is the
    joined ``area_desc`` and which holds all polygons, circles and geocodes;
    info parameters are not kept, but a recognised ``level`` is written back
    as a ``level`` parameter (so it parses to the same level); senderName, web,
    note and effective are not in the frame.
    """
    sent = _time(row.get("sent"))
    if sent is None:
        raise ValueError("sent: missing")
    category_text = _optional(row, "category") or ""
    category = next((c.strip() for c in str(category_text).split(";") if c.strip()), "")
    event_codes = [
        (str(name), str(value))
        for name, values in (_optional(row, "event_codes") or {}).items()
        for value in _as_list(values)
    ]
    level = _optional(row, "level")
    parameters = [("level", str(level))] if level else []

    polygons = [
        [(float(lat), float(lon)) for lat, lon in polygon]
        for polygon in _as_list(row.get("polygons"))
    ]
    circles = [
        (float(lat), float(lon), float(radius)) for lat, lon, radius in _as_list(row.get("circles"))
    ]
    geocodes = {
        str(name): [str(v) for v in _as_list(values)]
        for name, values in (_optional(row, "geocodes") or {}).items()
    }
    desc = _optional(row, "area_desc")
    areas = []
    if desc is not None or polygons or circles or geocodes:
        areas.append(
            CapArea(desc=desc or "", geocodes=geocodes, polygons=polygons, circles=circles)
        )

    info = CapInfo(
        language=_optional(row, "language") or "en-US",
        category=category,
        event=_optional(row, "event") or "",
        urgency=_optional(row, "urgency") or "Unknown",
        severity=_optional(row, "severity") or "Unknown",
        certainty=_optional(row, "certainty") or "Unknown",
        onset=_time(row.get("onset")),
        expires=_time(row.get("expires")),
        headline=_optional(row, "headline"),
        description=_optional(row, "description"),
        instruction=_optional(row, "instruction"),
        event_codes=event_codes,
        parameters=parameters,
        areas=areas,
    )
    return CapDocument(
        identifier=str(row.get("identifier") or ""),
        sender=str(row.get("sender") or ""),
        sent=sent,
        status=str(row.get("status") or ""),
        msg_type=str(row.get("msg_type") or ""),
        references=[str(r) for r in _as_list(row.get("references"))],
        infos=[info],
    )
