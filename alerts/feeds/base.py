"""What every parser returns, and the earthquake frame's column schema."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = [
    "EARTHQUAKE_COLUMNS",
    "OFFICIAL_COLUMNS",
    "WEATHER_COLUMNS",
    "FeedFormatError",
    "ParseResult",
    "Quarantined",
    "drop_conflicting_duplicates",
    "empty_frame",
    "to_records",
]


class FeedFormatError(ValueError):
    """The payload as a whole is unusable (not JSON, wrong envelope); nothing was parsed."""


@dataclass(frozen=True)
class Quarantined:
    """A record that failed validation: where it was, why, and the record itself."""

    source: str
    record_key: str | None
    reason: str
    record: Any

    def record_json(self) -> str:
        return json.dumps(self.record, ensure_ascii=False, default=str)


@dataclass
class ParseResult:
    frame: pd.DataFrame
    quarantined: list[Quarantined] = field(default_factory=list)


# One row per earthquake solution. Times are tz-aware UTC; missing values are NA.
EARTHQUAKE_COLUMNS: dict[str, str] = {
    "source": "feed that published the solution (usgs, cenc)",
    "event_id": "the source's preferred id of the event",
    "aliases": "list of every id the source gave the event, the preferred one included",
    "time": "origin time, UTC",
    "updated": "when the source last revised the solution, UTC",
    "latitude": "degrees north, WGS84",
    "longitude": "degrees east, WGS84",
    "depth_km": "hypocentre depth in km",
    "magnitude": "magnitude (float)",
    "magnitude_type": "magnitude type as the source spells it (mww, mb, ml ...)",
    "place": "the source's place description",
    "status": "automatic / reviewed / deleted",
    "event_type": "earthquake, quarry blast, explosion ...",
    "url": "the source's event page",
}


# One row per (location, hour). Values in SI-ish units as named; NA when missing.
WEATHER_COLUMNS: dict[str, str] = {
    "source": "open-meteo",
    "location_id": "the configured location's id (request order), else 'LAT,LON' of the response",
    "latitude": "grid-snapped latitude the model answered for",
    "longitude": "grid-snapped longitude the model answered for",
    "time": "UTC; for accumulations the end of the hour they cover",
    "precipitation_mm": "precipitation of the preceding hour, mm",
    "temperature_c": "2 m air temperature, degrees C",
    "relative_humidity_pct": "2 m relative humidity, %",
    "wind_speed_ms": "10 m mean wind speed, m/s",
    "wind_gust_ms": "10 m wind gusts, m/s",
    "snowfall_water_mm": "snowfall of the preceding hour as water equivalent, mm",
    "visibility_m": "visibility, m",
    "pm25_ugm3": "PM2.5 concentration, micrograms per cubic metre",
}

# One row per (document, info block): an official warning in one language.
OFFICIAL_COLUMNS: dict[str, str] = {
    "source": "cap or gdacs",
    "identifier": "the document's identifier (GDACS: eventtype + eventid + episodeid)",
    "sender": "the issuing authority's sender id",
    "sent": "when it was sent, UTC",
    "status": "Actual / Exercise / System / Test / Draft",
    "msg_type": "Alert / Update / Cancel / Ack / Error",
    "references": "list of 'sender,identifier,sent' triples this one replaces",
    "language": "the info block's language (RFC 3066), default en-US",
    "event": "the event type text",
    "category": "CAP category (Geo, Met, ...)",
    "severity": "Extreme / Severe / Moderate / Minor / Unknown",
    "urgency": "Immediate / Expected / Future / Past / Unknown",
    "certainty": "Observed / Likely / Possible / Unlikely / Unknown",
    "onset": "UTC or NA",
    "expires": "UTC or NA",
    "headline": "text or NA",
    "description": "text or NA",
    "instruction": "text or NA",
    "area_desc": "area descriptions of every area, joined with '; '",
    "polygons": "list of polygons, each a list of [lat, lon] pairs",
    "circles": "list of [lat, lon, radius_km]",
    "geocodes": "dict valueName -> list of values",
    "level": "blue/yellow/orange/red where the document states one, else NA",
}


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in columns})


def empty_earthquake_frame() -> pd.DataFrame:
    return empty_frame(EARTHQUAKE_COLUMNS)


def drop_conflicting_duplicates(
    frame: pd.DataFrame, source: str, key: str = "event_id"
) -> tuple[pd.DataFrame, list[Quarantined]]:
    """Keep one of identical duplicates; quarantine every copy of a key whose copies disagree.

    A feed that lists the same id twice with different data contradicts
    itself; neither copy can be trusted over the other, so both go to an
    operator and the rest of the batch flows on.
    """
    counts = frame[key].value_counts()
    dup_keys = counts.index[counts > 1]
    if not len(dup_keys):
        return frame, []
    quarantined: list[Quarantined] = []
    keep = pd.Series(True, index=frame.index)
    for dup in dup_keys:
        rows = frame[frame[key] == dup]
        records = to_records(rows)
        differing = sorted(
            col
            for col in rows.columns
            if len({json.dumps(r[col], default=str) for r in records}) > 1
        )
        if differing:
            keep[rows.index] = False
            reason = f"duplicate {key} {dup!r} with conflicting {', '.join(differing)}"
            quarantined.extend(Quarantined(source, str(dup), reason, r) for r in records)
        else:
            keep[rows.index[1:]] = False
    return frame[keep].reset_index(drop=True), quarantined


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: times as ISO 8601 UTC with ``Z``, NA as ``None``."""
    out = []
    for row in frame.to_dict(orient="records"):
        rec: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                rec[key] = iso_z(value)
            elif isinstance(value, (list, dict)):
                rec[key] = value
            elif value is None or (not isinstance(value, str) and pd.isna(value)):
                rec[key] = None
            else:
                rec[key] = value.item() if hasattr(value, "item") else value
        out.append(rec)
    return out


def iso_z(ts: pd.Timestamp | Any) -> str:
    """ISO 8601 in UTC with millisecond precision and a ``Z`` suffix."""
    t = pd.Timestamp(ts).tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
