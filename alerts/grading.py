"""Grading without a store: JSON records of ``alerts parse`` in, warnings out.

``alerts grade`` and tests use this; the pipeline grades the same way from
stored payloads (:func:`alerts.pipeline.grade_cycle`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pandas as pd

from alerts.criteria import RuleSet
from alerts.criteria.earthquake import (
    NATIONAL_REGION,
    event_subject,
    grade_earthquakes,
    grade_intensity,
)
from alerts.criteria.official import grade_official
from alerts.criteria.weather import grade_weather, highest
from alerts.feeds.base import EARTHQUAKE_COLUMNS, OFFICIAL_COLUMNS, WEATHER_COLUMNS
from alerts.model import Warning
from alerts.regions import Regions

__all__ = [
    "NATIONAL_REGION",
    "event_subject",
    "grade_earthquakes",
    "grade_records",
    "kind_of",
    "warning_record",
]


def kind_of(record: dict[str, Any]) -> str:
    """earthquake / weather / official, from a record's fields."""
    if "event_id" in record and "magnitude" in record:
        return "earthquake"
    if "location_id" in record and "time" in record:
        return "weather"
    if "identifier" in record and "msg_type" in record:
        return "official"
    raise ValueError(f"not a record of alerts parse: fields {sorted(record)[:6]}...")


def _frame(
    records: list[dict[str, Any]], columns: Iterable[str], times: Iterable[str]
) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records)
    for col in columns:
        if col not in frame.columns:
            frame[col] = None
    for col in times:
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    return frame


def grade_records(
    records: Iterable[dict[str, Any]], rules: RuleSet, regions: Regions, now: datetime
) -> list[Warning]:
    """Grade mixed records; only the highest level per (hazard, location, source event)."""
    by_kind: dict[str, list[dict[str, Any]]] = {"earthquake": [], "weather": [], "official": []}
    for record in records:
        by_kind[kind_of(record)].append(record)
    warnings: list[Warning] = []
    official = None
    if by_kind["official"]:
        official = _frame(by_kind["official"], OFFICIAL_COLUMNS, ("sent", "onset", "expires"))
        warnings += grade_official(official, rules.official, now)
    if by_kind["earthquake"]:
        events = _frame(by_kind["earthquake"], EARTHQUAKE_COLUMNS, ("time", "updated"))
        for col in ("latitude", "longitude", "depth_km", "magnitude"):
            events[col] = pd.to_numeric(events[col]).astype("Float64")
        events["subject"] = [
            event_subject(s, e) for s, e in zip(events["source"], events["event_id"], strict=True)
        ]
        warnings += grade_earthquakes(events, rules.earthquake, regions, now)
        warnings += grade_intensity(events, rules.earthquake, regions, now)
    if by_kind["weather"]:
        from alerts.pipeline import active_cyclones

        weather = _frame(by_kind["weather"], WEATHER_COLUMNS, ("time",))
        warnings += grade_weather(weather, rules.weather, now, cyclones=active_cyclones(official))
    return highest(warnings)


def warning_record(w: Warning) -> dict[str, Any]:
    """The JSON line ``alerts grade`` prints for a warning."""
    record: dict[str, Any] = {
        "hazard": w.hazard.value,
        "level": w.level.colour,
        "location_id": w.region_code,
        "rule_id": w.rule_id,
        "ruleset_version": w.rule_set_version,
        "window_h": w.window_h,
        "value": w.observed,
        "threshold": w.threshold,
        "reached_at": w.reached_at.isoformat().replace("+00:00", "Z") if w.reached_at else None,
        "source_ref": w.source_ref,
    }
    if w.hazard.value == "earthquake" and "intensity" in w.facts:
        record["intensity"] = w.facts["intensity"]
        record["exposed_population"] = w.facts["exposed_population"]
    elif w.hazard.value == "earthquake":
        record["intensity"] = None
        record["exposed_population"] = None
    record["reason"] = w.reason
    return record
