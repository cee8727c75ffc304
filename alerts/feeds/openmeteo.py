"""Open-Meteo hourly forecasts and air quality (JSON).

One request may carry many locations; the API then answers with a JSON array
in request order, each element snapped to the model's grid. Results are
therefore mapped to the configured locations by position, never by
coordinates: two nearby prefectures can snap to the same grid cell, and the
snapped point is often nearer another request's coordinates than its own.

``hourly.time`` holds local wall-clock times when a ``timezone`` was
requested; ``utc_offset_seconds`` turns them into UTC. Units are read from
``hourly_units`` for every variable and converted to the units
:data:`~alerts.feeds.base.WEATHER_COLUMNS` names; a unit we do not know is
never guessed at: the column stays NA for that location and the fact is
quarantined once, so an operator sees it.

A response block that is structurally broken (no ``hourly``, arrays of a
length other than ``hourly.time``) is quarantined whole and the other
locations flow on; a single value that is not a number is NA and
quarantined with its location, time and variable.
"""

from __future__ import annotations

import csv
import io
import json
import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import numpy as np
import pandas as pd

from alerts.feeds.base import (
    WEATHER_COLUMNS,
    FeedFormatError,
    ParseResult,
    Quarantined,
    iso_z,
)

__all__ = [
    "AIR_QUALITY_URL",
    "FORECAST_URL",
    "FORECAST_VARIABLES",
    "Location",
    "default_locations",
    "empty_weather_frame",
    "load_locations",
    "locations_in_url",
    "merge",
    "parse",
    "request_urls",
]

SOURCE = "open-meteo"
FORECAST_URL = "https://api.open-meteo.com/v1/forecast"
AIR_QUALITY_URL = "https://air-quality-api.open-meteo.com/v1/air-quality"
FORECAST_VARIABLES = (
    "precipitation",
    "temperature_2m",
    "relative_humidity_2m",
    "wind_speed_10m",
    "wind_gusts_10m",
    "snowfall",
    "visibility",
    "weather_code",
)
AIR_QUALITY_VARIABLES = ("pm2_5",)

# Timestamps are microseconds, as pandas parses ISO strings and as the
# earthquake frame's times come out: frames of both kinds concatenate cleanly.
TIME_DTYPE = "datetime64[us, UTC]"
_STR_DTYPE = pd.Series(["x"]).dtype  # the installed pandas' default string dtype
_FLOAT_COLUMNS = [
    "latitude",
    "longitude",
    "precipitation_mm",
    "temperature_c",
    "relative_humidity_pct",
    "wind_speed_ms",
    "wind_gust_ms",
    "snowfall_water_mm",
    "visibility_m",
    "pm25_ugm3",
]
# Far outside any forecast or reanalysis; beyond it a time is corrupt (and
# would overflow the microsecond range long before year 294,000 anyway).
_YEAR_MIN, _YEAR_MAX = 1900, 2200
# Real offsets lie within -12 h .. +14 h; ISO 8601 allows up to 18 h.
_MAX_OFFSET_S = 18 * 3600

Convert = Callable[[np.ndarray], np.ndarray]


def _unit_key(unit: str) -> str:
    # NFKC folds the micro sign into Greek mu and the superscript 3 into 3,
    # and the single-character degree signs into degree + letter.
    return unicodedata.normalize("NFKC", unit).strip()


def _same(v: np.ndarray) -> np.ndarray:
    return v


def _table(entries: dict[str, Convert]) -> dict[str, Convert]:
    return {_unit_key(unit): fn for unit, fn in entries.items()}


_WIND: dict[str, Convert] = _table(
    {
        "m/s": _same,
        "km/h": lambda v: v / 3.6,
        "mp/h": lambda v: v * 0.44704,  # Open-Meteo's spelling of mph
        "mph": lambda v: v * 0.44704,
        "kn": lambda v: v * (1852.0 / 3600.0),
    }
)

# Open-Meteo variable -> (frame column, unit -> converter to the column's unit).
CONVERSIONS: dict[str, tuple[str, dict[str, Convert]]] = {
    "precipitation": (
        "precipitation_mm",
        _table({"mm": _same, "inch": lambda v: v * 25.4}),
    ),
    "temperature_2m": (
        "temperature_c",
        _table({"°C": _same, "°F": lambda v: (v - 32.0) * 5.0 / 9.0}),
    ),
    "relative_humidity_2m": ("relative_humidity_pct", _table({"%": _same})),
    "wind_speed_10m": ("wind_speed_ms", _WIND),
    "wind_gusts_10m": ("wind_gust_ms", _WIND),
    # Snowfall is the depth of fresh snow; Open-Meteo documents 7 cm of snow
    # as 10 mm of water. With precipitation_unit=inch it comes in inches.
    "snowfall": (
        "snowfall_water_mm",
        _table({"cm": lambda v: v * 10.0 / 7.0, "inch": lambda v: v * 25.4 / 7.0}),
    ),
    "visibility": ("visibility_m", _table({"m": _same, "ft": lambda v: v * 0.3048})),
    "pm2_5": ("pm25_ugm3", _table({"μg/m³": _same, "ug/m3": _same})),
}


@dataclass(frozen=True)
class Location:
    """A point we ask Open-Meteo about; ``id`` is what the frame calls it."""

    id: str
    latitude: float
    longitude: float
    name: str = ""


# --------------------------------------------------------------------------
# Locations


def default_locations() -> list[Location]:
    """One location per prefecture of the packaged regions table, in its order.

    The point is the table's representative point (inside the boundary), not
    the centroid, which can fall outside crescent-shaped units. Names follow
    :attr:`alerts.regions.Region.full_name`: province + prefecture, without
    repeating a municipality's name (北京市, not 北京市北京市).
    """
    from alerts.regions import load_regions

    frame = load_regions().frame
    return [
        Location(
            id=str(adcode),
            latitude=float(lat),
            longitude=float(lon),
            name=str(name) if name == province else f"{province}{name}",
        )
        for adcode, lat, lon, name, province in zip(
            frame["adcode"],
            frame["rep_lat"],
            frame["rep_lon"],
            frame["name"],
            frame["province"],
            strict=True,
        )
    ]


def load_locations(path: str | Path) -> list[Location]:
    """Read a locations file, keeping its order (results map back by position).

    JSON: an array whose items are objects ``{"id", "latitude", "longitude",
    "name"?}`` or bare strings; a bare string is an adcode of the packaged
    regions table and takes that prefecture's point and name. CSV: a header
    with ``id,latitude,longitude`` and optionally ``name`` (other columns are
    ignored). Files ending in ``.json`` or ``.csv`` are read as such; others
    are JSON if they start with ``[``. Every problem is a :class:`ValueError`
    naming the file and the item index (JSON) or line (CSV).
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"locations file {path}: not UTF-8: {exc}") from None
    suffix = path.suffix.lower()
    is_json = suffix == ".json" or (suffix != ".csv" and text.lstrip().startswith("["))
    locations = _locations_json(path, text) if is_json else _locations_csv(path, text)
    if not locations:
        raise ValueError(f"locations file {path}: no locations")
    seen: dict[str, str] = {}
    for loc, where in locations:
        if loc.id in seen:
            raise ValueError(
                f"locations file {path}: {where}: duplicate id {loc.id!r} (first at {seen[loc.id]})"
            )
        seen[loc.id] = where
    return [loc for loc, _ in locations]


def _locations_json(path: Path, text: str) -> list[tuple[Location, str]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"locations file {path}: invalid JSON at line {exc.lineno} column {exc.colno}: "
            f"{exc.msg}"
        ) from None
    if not isinstance(doc, list):
        raise ValueError(f"locations file {path}: expected a JSON array of locations")
    out = []
    by_id: dict[str, Location] | None = None
    for index, item in enumerate(doc):
        where = f"item [{index}]"
        if isinstance(item, str):
            if by_id is None:
                by_id = {loc.id: loc for loc in default_locations()}
            found = by_id.get(item.strip())
            if found is None:
                raise ValueError(
                    f"locations file {path}: {where}: {item!r} is not an adcode of the packaged "
                    "regions table (give an object with id, latitude, longitude instead)"
                )
            out.append((found, where))
        elif isinstance(item, dict):
            prefix = f"locations file {path}: {where}"
            missing = [k for k in ("id", "latitude", "longitude") if k not in item]
            if missing:
                raise ValueError(f"{prefix}: missing {', '.join(missing)}")
            raw_id = item["id"]
            if isinstance(raw_id, int) and not isinstance(raw_id, bool):
                raw_id = str(raw_id)
            name = item.get("name", "")
            if name is None:
                name = ""
            if not isinstance(name, str):
                raise ValueError(f"{prefix}: name must be a string, got {name!r}")
            lat = _json_coordinate(prefix, "latitude", item["latitude"])
            lon = _json_coordinate(prefix, "longitude", item["longitude"])
            out.append((_location(prefix, raw_id, lat, lon, name), where))
        else:
            raise ValueError(
                f"locations file {path}: {where}: expected an object or an adcode string, "
                f"got {type(item).__name__}"
            )
    return out


def _json_coordinate(prefix: str, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{prefix}: {field} must be a number, got {value!r}")
    return float(value)


def _locations_csv(path: Path, text: str) -> list[tuple[Location, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [k for k in ("id", "latitude", "longitude") if k not in header]
    if missing:
        raise ValueError(
            f"locations file {path}: line 1: the CSV header needs id,latitude,longitude[,name]; "
            f"missing {', '.join(missing)}"
        )
    reader.fieldnames = header
    out = []
    for row in reader:
        where = f"line {reader.line_num}"
        prefix = f"locations file {path}: {where}"
        if None in row:
            raise ValueError(f"{prefix}: more fields than the header has columns")
        values = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        coords = []
        for field in ("latitude", "longitude"):
            value = values.get(field)
            if not value:
                raise ValueError(f"{prefix}: missing {field}")
            try:
                coords.append(float(value))
            except ValueError:
                raise ValueError(f"{prefix}: {field} {value!r} is not a number") from None
        name = values.get("name") or ""
        out.append((_location(prefix, values.get("id"), coords[0], coords[1], name), where))
    return out


def _location(prefix: str, raw_id: Any, lat: float, lon: float, name: str) -> Location:
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise ValueError(f"{prefix}: id must be a non-empty string, got {raw_id!r}")
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise ValueError(f"{prefix}: latitude {lat} outside [-90, 90]")
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise ValueError(f"{prefix}: longitude {lon} outside [-180, 180]")
    return Location(raw_id.strip(), lat, lon, name.strip())


# --------------------------------------------------------------------------
# Requests


def request_urls(
    locations: Sequence[Location],
    *,
    base_url: str = FORECAST_URL,
    air_quality_url: str = AIR_QUALITY_URL,
    batch_size: int = 50,
    past_days: int = 1,
    forecast_days: int = 4,  # from local midnight: the outlook's 72 h from a morning issue
    timezone: str = "Asia/Shanghai",
) -> list[tuple[list[Location], str, str]]:
    """Batches of locations, each with its forecast URL and its air-quality URL.

    Coordinates are comma-joined in batch order, which is the order the
    answers come back in; pass each batch's locations to :func:`parse`. Wind
    is requested in m/s, but the parser still converts whatever unit comes.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if past_days < 0 or forecast_days < 0:
        raise ValueError(f"past_days and forecast_days must be >= 0: {past_days}, {forecast_days}")
    out = []
    for start in range(0, len(locations), batch_size):
        batch = list(locations[start : start + batch_size])
        where = [
            ("latitude", ",".join(_coordinate(loc.latitude) for loc in batch)),
            ("longitude", ",".join(_coordinate(loc.longitude) for loc in batch)),
        ]
        when = [
            ("timezone", timezone),
            ("past_days", str(past_days)),
            ("forecast_days", str(forecast_days)),
        ]
        forecast = _url(
            base_url,
            [
                *where,
                ("hourly", ",".join(FORECAST_VARIABLES)),
                ("wind_speed_unit", "ms"),
                *when,
            ],
        )
        air = _url(air_quality_url, [*where, ("hourly", ",".join(AIR_QUALITY_VARIABLES)), *when])
        out.append((batch, forecast, air))
    return out


def locations_in_url(url: str, known: Sequence[Location]) -> list[Location]:
    """The locations a request URL asked for, in order, as :func:`request_urls` wrote them.

    A stored payload is parsed later from its URL alone: each requested
    coordinate pair is matched (as written, not as the API snapped it) to a
    known location; an unknown pair becomes a location named by its
    coordinates. A URL without coordinates gives an empty list.
    """
    query = parse_qs(urlparse(url).query)
    lats = ",".join(query.get("latitude", [])).split(",")
    lons = ",".join(query.get("longitude", [])).split(",")
    if lats == [""] or len(lats) != len(lons):
        return []
    by_key = {(_coordinate(k.latitude), _coordinate(k.longitude)): k for k in known}
    out = []
    for lat, lon in zip(lats, lons, strict=True):
        hit = by_key.get((lat, lon))
        out.append(hit or Location(id=f"{lat},{lon}", latitude=float(lat), longitude=float(lon)))
    return out


def _coordinate(value: float) -> str:
    # Six decimals are ~0.1 m: far finer than any model grid.
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _url(base: str, params: list[tuple[str, str]]) -> str:
    query = "&".join(f"{key}={quote(value, safe=',')}" for key, value in params)
    return f"{base}{'&' if '?' in base else '?'}{query}"


# --------------------------------------------------------------------------
# Parsing


class _BlockError(Exception):
    """One location's block is unusable; the message names the field."""


@dataclass
class _Block:
    location_id: str
    latitude: float
    longitude: float
    time: np.ndarray  # datetime64[us], UTC, naive
    columns: dict[str, np.ndarray]  # column -> float64 with NaN for NA


def empty_weather_frame() -> pd.DataFrame:
    """The weather frame with no rows but with its columns' dtypes."""
    return _frame([])


def parse(payload: bytes, locations: Sequence[Location | str] | None = None) -> ParseResult:
    """Parse a forecast or an air-quality response into the weather frame.

    ``locations`` are the request's locations (or just their ids) in request
    order; result *i* belongs to location *i*. Without them each row's
    ``location_id`` is the response's own ``"LAT,LON"``.
    """
    try:
        doc = json.loads(payload.decode("utf-8-sig"), parse_constant=_not_a_number)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and integers too long to convert.
        raise FeedFormatError(f"{SOURCE}: payload is not UTF-8 JSON: {exc}") from None
    if isinstance(doc, dict):
        if doc.get("error"):
            raise FeedFormatError(f"{SOURCE}: API error: {doc.get('reason', '(no reason given)')}")
        results: list[Any] = [doc]
    elif isinstance(doc, list):
        results = doc
    else:
        raise FeedFormatError(
            f"{SOURCE}: expected a response object or an array of them, got {type(doc).__name__}"
        )

    ids: list[str] | None = None
    if locations is not None:
        ids = [loc.id if isinstance(loc, Location) else str(loc) for loc in locations]
        if len(ids) != len(results):
            raise FeedFormatError(
                f"{SOURCE}: {len(results)} result(s) for {len(ids)} requested location(s); "
                "results map to locations by order, so the counts must match"
            )

    blocks: list[_Block] = []
    quarantined: list[Quarantined] = []
    time_cache: dict[tuple[Any, ...], tuple[np.ndarray, bool]] = {}
    for index, result in enumerate(results):
        location_id = ids[index] if ids is not None else None
        try:
            block = _block(index, result, location_id, time_cache, quarantined)
        except _BlockError as exc:
            quarantined.append(Quarantined(SOURCE, location_id, f"results[{index}]: {exc}", result))
            continue
        blocks.append(block)
    return ParseResult(_frame(blocks), quarantined)


def _not_a_number(name: str) -> str:
    # NaN / Infinity are not JSON; keep them as text so they count as "not a number".
    return name


def _block(
    index: int,
    result: Any,
    location_id: str | None,
    time_cache: dict[tuple[Any, ...], tuple[np.ndarray, bool]],
    quarantined: list[Quarantined],
) -> _Block:
    if not isinstance(result, dict):
        raise _BlockError(f"expected an object, got {type(result).__name__}")
    if result.get("error"):
        raise _BlockError(f"API error: {result.get('reason', '(no reason given)')}")
    lat = _finite(result.get("latitude"))
    lon = _finite(result.get("longitude"))
    if lat is None or not -90.0 <= lat <= 90.0:
        raise _BlockError(
            f"latitude: expected a number in [-90, 90], got {result.get('latitude')!r}"
        )
    if lon is None or not -180.0 <= lon <= 180.0:
        raise _BlockError(
            f"longitude: expected a number in [-180, 180], got {result.get('longitude')!r}"
        )
    if location_id is None:
        location_id = f"{lat},{lon}"

    hourly = result.get("hourly")
    if not isinstance(hourly, dict):
        raise _BlockError("hourly: missing or not an object")
    raw_times = hourly.get("time")
    if not isinstance(raw_times, list):
        raise _BlockError("hourly.time: missing or not an array")
    n = len(raw_times)
    for name, values in hourly.items():
        if not isinstance(values, list):
            raise _BlockError(f"hourly.{name}: not an array")
        if len(values) != n:
            raise _BlockError(f"hourly.{name} has {len(values)} values, hourly.time has {n}")
    time = _utc_times(raw_times, result.get("utc_offset_seconds"), time_cache)

    units = result.get("hourly_units")
    if not isinstance(units, dict):
        units = {}
    columns: dict[str, np.ndarray] = {}
    for variable, (column, table) in CONVERSIONS.items():
        if variable not in hourly:
            continue  # not asked for (pm2_5 in a forecast, weather in air quality)
        unit = units.get(variable)
        convert = table.get(_unit_key(unit)) if isinstance(unit, str) else None
        if convert is None:
            why = "the model lacks this variable" if unit == "undefined" else "unknown unit"
            quarantined.append(
                Quarantined(
                    SOURCE,
                    location_id,
                    f"results[{index}]: hourly_units.{variable} is {unit!r} ({why}); "
                    f"{column} left NA for this location",
                    {"location_id": location_id, "variable": variable, "unit": unit},
                )
            )
            continue
        values, bad = _numbers(hourly[variable])
        with np.errstate(over="ignore", invalid="ignore"):
            converted = convert(values)
        # A finite value can still overflow in conversion (1e308 inch): as unusable.
        overflow = np.flatnonzero(np.isfinite(values) & ~np.isfinite(converted))
        if len(overflow):
            converted[overflow] = np.nan
            bad = np.union1d(bad, overflow)
        for i in bad:
            stamp = iso_z(pd.Timestamp(time[i], tz="UTC"))
            raw = hourly[variable][i]
            quarantined.append(
                Quarantined(
                    SOURCE,
                    location_id,
                    f"results[{index}]: hourly.{variable} at {stamp}: "
                    f"{raw!r} is not a finite number in {unit}; {column} left NA",
                    {"location_id": location_id, "time": stamp, "variable": variable, "value": raw},
                )
            )
        columns[column] = converted
    return _Block(location_id, lat, lon, time, columns)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def _utc_times(
    raw: list[Any], offset: Any, cache: dict[tuple[Any, ...], tuple[np.ndarray, bool]]
) -> np.ndarray:
    """``hourly.time`` as naive UTC datetime64[us].

    ISO strings without an offset are local times: UTC = local - offset.
    Strings with an offset or ``Z`` and unix seconds (``timeformat=unixtime``)
    are absolute already and the offset is not applied again.
    """
    kinds = set(map(type, raw))
    if not (kinds <= {str} or kinds == {int}):
        raise _BlockError(
            "hourly.time: expected ISO 8601 strings or unix seconds, got "
            + ", ".join(sorted(k.__name__ for k in kinds))
        )
    # Every location of one request shares its time axis: parse it once.
    key = tuple(raw)
    cached = cache.get(key)
    if cached is None:
        cached = cache[key] = _parse_times(raw, kinds)
    times, absolute = cached
    if absolute:
        return times
    seconds = _finite(offset)
    if seconds is None or seconds != int(seconds) or abs(seconds) > _MAX_OFFSET_S:
        raise _BlockError(
            f"utc_offset_seconds: expected whole seconds within ±18 h, got {offset!r}; "
            "local times cannot be converted to UTC"
        )
    return times - np.timedelta64(int(seconds), "s")


def _parse_times(raw: list[Any], kinds: set[type]) -> tuple[np.ndarray, bool]:
    """Naive datetime64[us] and whether they are absolute (UTC) rather than local."""
    if not raw:
        return np.array([], dtype="datetime64[us]"), False
    try:
        if kinds == {str}:
            index = pd.DatetimeIndex(pd.to_datetime(raw, format="ISO8601"))
            absolute = index.tz is not None
            if absolute:
                index = index.tz_convert("UTC").tz_localize(None)
        else:
            if min(raw) < -(2**40) or max(raw) > 2**40:
                raise ValueError("unix seconds out of range")
            index = pd.DatetimeIndex(pd.to_datetime(np.asarray(raw, dtype=np.int64), unit="s"))
            absolute = True
        index = index.as_unit("us")
    except (ValueError, OverflowError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise _BlockError(f"hourly.time: {exc}") from None
    if index.hasnans:
        raise _BlockError("hourly.time: empty or unparseable entries")
    years = index.year
    if years.min() < _YEAR_MIN or years.max() >= _YEAR_MAX:
        raise _BlockError(f"hourly.time: times outside years {_YEAR_MIN}-{_YEAR_MAX}")
    return index.to_numpy(), absolute


_KINDS: dict[type, int] = {float: 1, int: 1, type(None): 2}


def _numbers(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (NaN where null or invalid) and the indices of invalid ones.

    JSON numbers arrive as int or float; ``null`` as None; anything else
    (strings, booleans, arrays, objects, out-of-range numbers) is invalid.
    """
    n = len(values)
    # Type codes via C-level map (no per-hour Python frame): bool is not a number here.
    kinds = np.fromiter(map(_KINDS.get, map(type, values), repeat(0)), dtype=np.int8, count=n)
    numeric = kinds == 1
    null = kinds == 2
    out = np.full(n, np.nan)
    if numeric.any():
        picked: Any = (
            values if numeric.all() else np.fromiter(values, dtype=object, count=n)[numeric]
        )
        try:
            out[numeric] = np.asarray(picked, dtype=np.float64)
        except OverflowError:  # an integer beyond float range: only those become invalid
            floats = [_finite(v) for v in picked]
            out[numeric] = [np.inf if f is None else f for f in floats]
    bad = ~(numeric | null) | (numeric & ~np.isfinite(out))
    out[bad] = np.nan
    return out, np.flatnonzero(bad)


def _frame(blocks: list[_Block]) -> pd.DataFrame:
    counts = np.array([len(b.time) for b in blocks], dtype=np.int64)
    total = int(counts.sum())
    ids = np.array([b.location_id for b in blocks], dtype=object)
    if blocks:
        time = np.concatenate([b.time for b in blocks]).astype("datetime64[us]")
    else:
        time = np.array([], dtype="datetime64[us]")
    data: dict[str, Any] = {
        "source": pd.Series(np.full(total, SOURCE, dtype=object), dtype=_STR_DTYPE),
        "location_id": pd.Series(np.repeat(ids, counts), dtype=_STR_DTYPE),
        "latitude": np.repeat(np.array([b.latitude for b in blocks], dtype=np.float64), counts),
        "longitude": np.repeat(np.array([b.longitude for b in blocks], dtype=np.float64), counts),
        "time": pd.Series(pd.DatetimeIndex(time).tz_localize("UTC")),
    }
    for column in _FLOAT_COLUMNS[2:]:
        parts = [b.columns.get(column) for b in blocks]
        if total and any(p is not None for p in parts):
            data[column] = np.concatenate(
                [
                    p if p is not None else np.full(c, np.nan)
                    for p, c in zip(parts, counts, strict=True)
                ]
            )
        else:
            data[column] = np.full(total, np.nan)
    for column in _FLOAT_COLUMNS:
        values = np.asarray(data[column], dtype=np.float64)
        data[column] = pd.arrays.FloatingArray(values, np.isnan(values))
    frame = pd.DataFrame(data, columns=list(WEATHER_COLUMNS))
    frame["time"] = frame["time"].astype(TIME_DTYPE)
    return frame


# --------------------------------------------------------------------------
# Forecast + air quality


def merge(forecast: pd.DataFrame, air_quality: pd.DataFrame) -> pd.DataFrame:
    """The forecast frame with ``pm25_ugm3`` filled from the air-quality frame.

    Rows are matched on (``location_id``, ``time``): parse both responses
    with the same locations, since the two APIs snap to different grids and
    the coordinates never agree. It is an outer join: an hour only the
    forecast has keeps NA PM2.5, an hour only air quality has keeps NA
    weather (an alert on haze needs no wind), so neither feed's gaps hide
    the other's data. Matched rows keep the forecast's grid coordinates;
    air-quality-only rows carry the air-quality grid's. Where both frames
    have a PM2.5 value the air-quality one wins. Rows come out grouped by
    location in first-seen order (forecast first), then by time.
    """
    keys = ["location_id", "time"]
    fc = _conform(forecast, "forecast")
    aq = _conform(air_quality, "air_quality").drop_duplicates(keys, keep="last")
    side = aq[[*keys, "latitude", "longitude", "pm25_ugm3"]].rename(
        columns={"latitude": "_aq_lat", "longitude": "_aq_lon", "pm25_ugm3": "_aq_pm25"}
    )
    out = fc.merge(side, on=keys, how="outer", sort=False)
    out["pm25_ugm3"] = out["_aq_pm25"].fillna(out["pm25_ugm3"])
    out["latitude"] = out["latitude"].fillna(out["_aq_lat"])
    out["longitude"] = out["longitude"].fillna(out["_aq_lon"])
    out["source"] = out["source"].fillna(SOURCE)
    order = pd.Index(pd.unique(pd.concat([fc["location_id"], aq["location_id"]])))
    out["_rank"] = order.get_indexer(out["location_id"])
    out = out.sort_values(["_rank", "time"], kind="stable").reset_index(drop=True)
    return _conform(out[list(WEATHER_COLUMNS)], "merged")


def _conform(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = [c for c in WEATHER_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks weather columns {missing}")
    out = frame[list(WEATHER_COLUMNS)].copy()
    out["source"] = out["source"].astype(_STR_DTYPE)
    out["location_id"] = out["location_id"].astype(_STR_DTYPE)
    out["time"] = pd.to_datetime(out["time"], utc=True).astype(TIME_DTYPE)
    for column in _FLOAT_COLUMNS:
        out[column] = out[column].astype("Float64")
    return out
