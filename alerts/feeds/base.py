"""What every parser returns, and the earthquake frame's column schema."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["EARTHQUAKE_COLUMNS", "FeedFormatError", "ParseResult", "Quarantined", "to_records"]


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


def empty_earthquake_frame() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in EARTHQUAKE_COLUMNS})


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: times as ISO 8601 UTC with ``Z``, NA as ``None``."""
    out = []
    for row in frame.to_dict(orient="records"):
        rec: dict[str, Any] = {}
        for key, value in row.items():
            if isinstance(value, pd.Timestamp):
                rec[key] = iso_z(value)
            elif isinstance(value, list):
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
