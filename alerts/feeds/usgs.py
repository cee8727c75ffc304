"""USGS GeoJSON summary feeds.

Each feature is validated on its own (pydantic): a malformed one is
quarantined with the reason and its neighbours flow on. Coordinates come
longitude first; times are epoch milliseconds UTC; ``ids`` is a
comma-delimited list with leading and trailing commas, every entry an alias
of the same event.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerts.feeds.base import (
    EARTHQUAKE_COLUMNS,
    FeedFormatError,
    ParseResult,
    Quarantined,
    drop_conflicting_duplicates,
    empty_earthquake_frame,
)

__all__ = ["parse"]

SOURCE = "usgs"
STATUSES = ("automatic", "reviewed", "deleted")
_EPOCH_MS_MIN = -2_208_988_800_000  # 1900-01-01
_EPOCH_MS_MAX = 7_258_118_400_000  # 2200-01-01


class _Geometry(BaseModel):
    type: Literal["Point"]
    coordinates: list[float | None] = Field(min_length=2, max_length=3)

    @field_validator("coordinates")
    @classmethod
    def _in_range(cls, value: list[float | None]) -> list[float | None]:
        lon, lat = value[0], value[1]
        if lon is None or lat is None:
            raise ValueError("longitude and latitude are required")
        if not -180.0 <= lon <= 180.0:
            raise ValueError(f"longitude {lon} outside [-180, 180]")
        if not -90.0 <= lat <= 90.0:
            raise ValueError(f"latitude {lat} outside [-90, 90]")
        return value


class _Properties(BaseModel):
    model_config = ConfigDict(extra="allow")

    mag: float | None = None
    place: str | None = None
    time: int
    updated: int | None = None
    url: str | None = None
    status: str | None = None
    type: str | None = None
    ids: str | None = None
    magType: str | None = None  # noqa: N815 - the feed's spelling

    @field_validator("time", "updated")
    @classmethod
    def _plausible_epoch_ms(cls, value: int | None) -> int | None:
        # Seismological records start in the 1900s; far-future stamps are corrupt.
        if value is not None and not _EPOCH_MS_MIN <= value <= _EPOCH_MS_MAX:
            raise ValueError(f"epoch milliseconds {value} outside years 1900-2200")
        return value

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in STATUSES:
            raise ValueError(f"unknown status {value!r}, expected one of {STATUSES}")
        return value.lower() if value else value


class _Feature(BaseModel):
    id: str = Field(min_length=1)
    geometry: _Geometry
    properties: _Properties


def parse(payload: bytes) -> ParseResult:
    """Parse a summary feed (or a single detail feature) into the earthquake frame."""
    try:
        doc = json.loads(payload.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedFormatError(f"usgs: payload is not UTF-8 JSON: {exc}") from None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        features: list[Any] = [doc]
    elif isinstance(doc, dict) and isinstance(doc.get("features"), list):
        features = doc["features"]
    else:
        raise FeedFormatError("usgs: expected a GeoJSON FeatureCollection with a 'features' list")

    rows: list[dict[str, Any]] = []
    quarantined: list[Quarantined] = []
    for index, raw in enumerate(features):
        try:
            feature = _Feature.model_validate(raw)
        except ValidationError as exc:
            key = raw.get("id") if isinstance(raw, dict) else None
            quarantined.append(
                Quarantined(SOURCE, str(key) if key else None, _reason(index, exc), raw)
            )
            continue
        rows.append(_row(feature))

    if not rows:
        return ParseResult(empty_earthquake_frame(), quarantined)
    frame = pd.DataFrame.from_records(rows, columns=list(EARTHQUAKE_COLUMNS))
    for col in ("time", "updated"):
        frame[col] = pd.to_datetime(frame[col], unit="ms", utc=True)
    for col in ("latitude", "longitude", "depth_km", "magnitude"):
        frame[col] = pd.to_numeric(frame[col]).astype("Float64")
    frame, conflicting = drop_conflicting_duplicates(frame, SOURCE)
    return ParseResult(frame, quarantined + conflicting)


def _row(feature: _Feature) -> dict[str, Any]:
    props = feature.properties
    coords = feature.geometry.coordinates
    aliases = [a for a in (props.ids or "").split(",") if a]
    if feature.id not in aliases:
        aliases.insert(0, feature.id)
    return {
        "source": SOURCE,
        "event_id": feature.id,
        "aliases": aliases,
        "time": props.time,
        "updated": props.updated,
        "latitude": coords[1],
        "longitude": coords[0],
        "depth_km": coords[2] if len(coords) > 2 else None,
        "magnitude": props.mag,
        "magnitude_type": props.magType,
        "place": props.place,
        "status": props.status or "automatic",
        "event_type": props.type or "earthquake",
        "url": props.url,
    }


def _reason(index: int, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return f"features[{index}]: " + "; ".join(parts)
