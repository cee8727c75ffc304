"""Earthquake criteria: the national initial response by magnitude.

Rules live in ``rules/earthquake.yaml``; :func:`grade_earthquakes` applies
them to a frame of merged events.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.model import Hazard, Level, Warning
from alerts.regions import Region, Regions

__all__ = [
    "NATIONAL_REGION",
    "EarthquakeRules",
    "NationalResponseRule",
    "event_subject",
    "grade_earthquakes",
]

# The national initial response is one alert per event for the whole territory.
NATIONAL_REGION = ("CN", "全国")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NationalResponseRule(_Strict):
    id: str = Field(min_length=1)
    max_distance_km: float = Field(ge=0)
    valid_hours: float = Field(gt=0)
    levels: dict[Level, float]

    @model_validator(mode="before")
    @classmethod
    def _parse_levels(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("levels"), dict):
            data = dict(data)
            data["levels"] = {Level.parse(k): v for k, v in data["levels"].items()}
        return data

    @model_validator(mode="after")
    def _increasing(self) -> NationalResponseRule:
        ordered = [self.levels[lv] for lv in sorted(self.levels)]
        if not self.levels or ordered != sorted(ordered) or len(set(ordered)) != len(ordered):
            raise ValueError("levels: thresholds must rise strictly from blue to red")
        return self

    def level_for(self, magnitude: float) -> Level | None:
        fired = [lv for lv, threshold in self.levels.items() if magnitude >= threshold]
        return max(fired) if fired else None


class EarthquakeRules(_Strict):
    version: str = Field(min_length=1)
    national_response: NationalResponseRule


def event_subject(source: str, event_id: str) -> str:
    return f"{source}:{event_id}"


def grade_earthquakes(
    events: pd.DataFrame, rules: EarthquakeRules, regions: Regions, now: datetime
) -> list[Warning]:
    """Grade earthquakes by the national response rule.

    ``events`` is the earthquake frame with an extra ``subject`` column (the
    stored event key). Deleted solutions, non-earthquake types, missing
    magnitudes and warnings already past their validity never fire.
    """
    rule = rules.national_response
    if events.empty:
        return []
    # np.select takes the first true condition: try the highest level first.
    ordered = sorted(rule.levels.items(), reverse=True)
    # Grade on the magnitude as published (0.1 units, half up), so the level and
    # the announced number always agree: M5.96 is announced 6.0 and graded 6.0.
    raw = events["magnitude"].astype("float64").to_numpy(na_value=np.nan)
    magnitude = np.floor(raw * 10.0 + 0.5 + 1e-9) / 10.0
    eligible = (
        (events["status"] != "deleted").to_numpy()
        & (events["event_type"].fillna("earthquake") == "earthquake").to_numpy()
        & ~np.isnan(magnitude)
    )
    conditions = [eligible & (magnitude >= threshold) for _, threshold in ordered]
    levels = np.select(conditions, [lv.value for lv, _ in ordered], default=0)
    thresholds = np.select(conditions, [t for _, t in ordered], default=np.nan)

    warnings: list[Warning] = []
    region_code, region_name = NATIONAL_REGION
    for i in np.flatnonzero(levels):
        row = events.iloc[i]
        onset = row["time"].to_pydatetime()
        expires = onset + timedelta(hours=rule.valid_hours)
        if expires <= now:
            continue
        lon, lat = float(row["longitude"]), float(row["latitude"])
        nearest = regions.nearest(lon, lat)
        if nearest.distance_km > rule.max_distance_km:
            continue
        level = Level(int(levels[i]))
        where = "within" if nearest.distance_km == 0 else f"{nearest.distance_km:.0f} km from"
        warnings.append(
            Warning(
                hazard=Hazard.EARTHQUAKE,
                level=level,
                region_code=region_code,
                region_name=region_name,
                subject=str(row["subject"]),
                onset=onset,
                expires=expires,
                rule_id=rule.id,
                rule_set_version=rules.version,
                observed=float(magnitude[i]),
                threshold=float(thresholds[i]),
                reason=(
                    f"M{magnitude[i]:.1f} >= {thresholds[i]:.1f} ({level.colour}), "
                    f"epicentre {where} {nearest.adcode} {nearest.full_name}"
                ),
                facts=_facts(row, float(magnitude[i]), nearest),
            )
        )
    return warnings


def _facts(row: pd.Series, magnitude: float, region: Region) -> dict[str, object]:
    def opt(value: object) -> object:
        return None if value is None or pd.isna(value) else value

    return {
        "event_id": str(row["event_id"]),
        "source": str(row["source"]),
        "magnitude": magnitude,
        "magnitude_type": opt(row["magnitude_type"]),
        "latitude": float(row["latitude"]),
        "longitude": float(row["longitude"]),
        "depth_km": None if pd.isna(row["depth_km"]) else float(row["depth_km"]),
        "place": opt(row["place"]),
        "time": row["time"].isoformat(),
        "status": str(row["status"]),
        "url": opt(row["url"]),
        "region_adcode": region.adcode,
        "region_name": region.full_name,
        "region_distance_km": round(region.distance_km, 1),
    }
