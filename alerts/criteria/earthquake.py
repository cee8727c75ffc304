"""Earthquake criteria: the national initial response by magnitude, and
regional warnings by estimated seismic intensity.

Rules live in ``rules/earthquake.yaml``; :func:`grade_earthquakes` applies the
national response (one warning per event, region ``CN``) and
:func:`grade_intensity` the regional rule (one warning per region reaching a
level) to a frame of merged events.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.criteria.common import level_keys
from alerts.model import Hazard, Level, Warning
from alerts.regions import Region, Regions

__all__ = [
    "NATIONAL_REGION",
    "ROMAN_DEGREES",
    "Allen2012",
    "AxisCoefficients",
    "EarthquakeRules",
    "Gb18306",
    "Gb18306Zone",
    "IntensityRules",
    "NationalResponseRule",
    "Wang2000",
    "event_subject",
    "grade_earthquakes",
    "grade_intensity",
    "intensity",
    "intensity_degree",
]

_CLOCK_SKEW = pd.Timedelta(minutes=5)

# The national initial response is one alert per event for the whole territory.
NATIONAL_REGION = ("CN", "全国")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NationalResponseRule(_Strict):
    id: str = Field(min_length=1)
    max_distance_km: float = Field(ge=0)
    valid_hours: float = Field(gt=0)
    levels: dict[Level, float]

    _parse_levels = model_validator(mode="before")(level_keys)

    @model_validator(mode="after")
    def _increasing(self) -> NationalResponseRule:
        ordered = [self.levels[lv] for lv in sorted(self.levels)]
        if not self.levels or ordered != sorted(ordered) or len(set(ordered)) != len(ordered):
            raise ValueError("levels: thresholds must rise strictly from blue to red")
        return self

    def level_for(self, magnitude: float) -> Level | None:
        fired = [lv for lv, threshold in self.levels.items() if magnitude >= threshold]
        return max(fired) if fired else None


# -- intensity: the rule models ----------------------------------------------------------

Relation = Literal["wang2000", "gb18306", "allen2012"]
Axis = Literal["long", "short"]
Side = Literal["east", "west"]
OUTSIDE_NEAREST = "nearest_region"
MAX_DEGREE = 12
ROMAN_DEGREES = {
    1: "I",
    2: "II",
    3: "III",
    4: "IV",
    5: "V",
    6: "VI",
    7: "VII",
    8: "VIII",
    9: "IX",
    10: "X",
    11: "XI",
    12: "XII",
}
_AXES: tuple[Axis, ...] = ("long", "short")
T = TypeVar("T")


class AxisCoefficients(_Strict):
    """One row of an attenuation table: I = A + B*M +/- C*log(R + R0)."""

    A: float
    B: float = Field(gt=0)  # intensity must rise with magnitude
    C: float
    R0: float = Field(gt=0)  # keeps log(R + R0) defined at R = 0


class AxisPair(_Strict):
    long: AxisCoefficients
    short: AxisCoefficients

    def axis(self, axis: Axis) -> AxisCoefficients:
        return self.long if axis == "long" else self.short


class Wang2000(_Strict):
    """汪素云 et al. (2000): I = A + B*M - C*ln(R + R0), east / west of a meridian."""

    split_longitude: float = Field(ge=-180, le=180)
    east: AxisPair
    west: AxisPair

    @model_validator(mode="after")
    def _attenuates(self) -> Wang2000:
        for side in ("east", "west"):
            for axis in _AXES:
                if getattr(self, side).axis(axis).C <= 0:
                    raise ValueError(
                        f"{side}.{axis}.C: must be positive (subtracted: A + B*M - C*ln(R + R0))"
                    )
        return self

    def side(self, lon: float) -> Side:
        """The epicentre's side: east at or beyond the split longitude."""
        return "east" if lon >= self.split_longitude else "west"

    def coefficients(self, side: str | None, axis: Axis) -> AxisCoefficients:
        if side == "east":
            return self.east.axis(axis)
        if side == "west":
            return self.west.axis(axis)
        raise ValueError(f"wang2000: side must be 'east' or 'west', not {side!r}")


class Gb18306Zone(AxisPair):
    sigma: float = Field(ge=0)


class Gb18306(_Strict):
    """GB 18306-2015 (俞言祥 2013): I = A + B*M + C*lg(R + R0) in four zones, with sigma."""

    sigma_factor: float = 0.0
    zones: dict[str, Gb18306Zone] = Field(min_length=1)
    province_zones: dict[str, str] = Field(default_factory=dict)
    default_zone: str
    outside: str = OUTSIDE_NEAREST

    @field_validator("province_zones", mode="before")
    @classmethod
    def _prefix_keys(cls, value: object) -> object:
        # YAML reads an unquoted 54 as a number: accept it as the prefix "54".
        if isinstance(value, dict):
            return {(f"{k:02d}" if isinstance(k, int) else k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _known_zones(self) -> Gb18306:
        known = sorted(self.zones)
        for prefix, zone in self.province_zones.items():
            if len(prefix) != 2 or not prefix.isdigit():
                raise ValueError(f"province_zones: {prefix!r} is not a 2-digit province code")
            if zone not in self.zones:
                raise ValueError(f"province_zones.{prefix}: unknown zone {zone!r}, known {known}")
        if self.default_zone not in self.zones:
            raise ValueError(f"default_zone: unknown zone {self.default_zone!r}, known {known}")
        if self.outside != OUTSIDE_NEAREST and self.outside not in self.zones:
            raise ValueError(
                f"outside: {self.outside!r} is neither {OUTSIDE_NEAREST!r} nor a zone {known}"
            )
        for name, zone_rules in self.zones.items():
            for axis in _AXES:
                if zone_rules.axis(axis).C >= 0:
                    raise ValueError(
                        f"zones.{name}.{axis}.C: must be negative (added: A + B*M + C*lg(R + R0))"
                    )
        return self

    def zone_for(self, province_code: str, inside: bool) -> str:
        """The zone of the epicentre's province (or of the nearest one, outside China)."""
        if not inside and self.outside != OUTSIDE_NEAREST:
            return self.outside
        return self.province_zones.get(str(province_code)[:2], self.default_zone)

    def zone(self, name: str | None) -> Gb18306Zone:
        if name is None or name not in self.zones:
            raise ValueError(f"gb18306: unknown zone {name!r}, known {sorted(self.zones)}")
        return self.zones[name]


class Allen2012(_Strict):
    """Allen, Wald & Worden (2012): c0 + c1*M + c2*ln(sqrt(Rrup^2 + (1 + c3*e^(M-5))^2))."""

    c0: float
    c1: float = Field(gt=0)
    c2: float = Field(lt=0)
    c3: float = Field(ge=0)


class IntensityRules(_Strict):
    """Regional warnings by estimated intensity: relation, levels by degree, limits."""

    id: str = Field(min_length=1)
    relation: Relation = "wang2000"
    axis: Axis = "long"
    min_magnitude: float = 4.0
    max_distance_km: float = Field(1000.0, gt=0)
    valid_hours: float = Field(24.0, gt=0)
    exposure_min_degree: int = Field(6, ge=1, le=MAX_DEGREE)
    levels: dict[Level, int]
    wang2000: Wang2000 | None = None
    gb18306: Gb18306 | None = None
    allen2012: Allen2012 | None = None

    _parse_levels = model_validator(mode="before")(level_keys)

    @model_validator(mode="after")
    def _consistent(self) -> IntensityRules:
        ordered = [self.levels[lv] for lv in sorted(self.levels)]
        if not ordered or any(b <= a for a, b in zip(ordered, ordered[1:], strict=False)):
            raise ValueError("levels: minimum degrees must rise strictly from blue to red")
        if any(not 1 <= d <= MAX_DEGREE for d in ordered):
            raise ValueError(f"levels: degrees must lie in I..XII (1..{MAX_DEGREE})")
        if getattr(self, self.relation) is None:
            raise ValueError(f"{self.relation}: coefficients missing for relation {self.relation}")
        return self

    def level_for(self, degree: float) -> Level | None:
        """The highest level whose minimum degree is reached (None below blue or NaN)."""
        fired = [lv for lv, minimum in self.levels.items() if degree >= minimum]
        return max(fired) if fired else None

    def level_codes(self, degrees: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Vectorized :meth:`level_for`: the Level value per degree, 0 for none."""
        d = np.asarray(degrees, dtype=np.float64)
        ordered = sorted(self.levels.items(), reverse=True)  # np.select: first match wins
        return np.select(
            [d >= minimum for _, minimum in ordered], [lv.value for lv, _ in ordered], default=0
        ).astype(np.int64)

    def zone_or_side(self, lon: float, province_code: str, inside: bool) -> str | None:
        """What selects the coefficients for an epicentre: wang2000 side, gb18306 zone."""
        if self.relation == "wang2000":
            return _require(self.wang2000, "wang2000").side(lon)
        if self.relation == "gb18306":
            return _require(self.gb18306, "gb18306").zone_for(province_code, inside)
        return None


def _require(table: T | None, name: str) -> T:
    if table is None:
        raise ValueError(f"{name}: coefficients missing from the rule file")
    return table


class EarthquakeRules(_Strict):
    version: str = Field(min_length=1)
    national_response: NationalResponseRule
    # Packaged in rules/earthquake.yaml; a rule file without it gives no regional warnings.
    intensity: IntensityRules | None = None


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
    magnitude, eligible = _published_magnitude(events, now)
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
                reached_at=onset,
                source_ref=str(row["event_id"]),
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


def _round_tenth(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Round to 0.1, half up, as numbers are published (NaN stays NaN)."""
    return np.floor(np.asarray(values, dtype=np.float64) * 10.0 + 0.5 + 1e-9) / 10.0


def _published_magnitude(
    events: pd.DataFrame,
    now: datetime,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """The magnitude as published, and which rows are gradable earthquakes.

    Grade on the magnitude as published (0.1 units, half up), so the level and
    the announced number always agree: M5.96 is announced 6.0 and graded 6.0.
    Deleted solutions, non-earthquake types, missing magnitudes and events
    that had not happened yet at ``now`` (a replay; 5 minutes of clock skew
    allowed) are not gradable.
    """
    raw = events["magnitude"].astype("float64").to_numpy(na_value=np.nan)
    magnitude = _round_tenth(raw)
    eligible = (
        (events["status"] != "deleted").to_numpy()
        & (events["event_type"].fillna("earthquake") == "earthquake").to_numpy()
        & ~np.isnan(magnitude)
        & (events["time"] <= pd.Timestamp(now) + _CLOCK_SKEW).to_numpy()
    )
    return magnitude, eligible


# -- intensity: the pure functions --------------------------------------------------------


def intensity(
    relation_rules: IntensityRules,
    magnitude: float,
    distance_km: npt.ArrayLike,
    depth_km: float | None,
    zone_or_side: str | None,
) -> npt.NDArray[np.float64]:
    """Estimated intensity at each epicentral distance, by the rules' relation and axis.

    ``distance_km`` is an array (one event, every region); ``zone_or_side``
    selects the coefficients: ``east``/``west`` for wang2000, a zone name for
    gb18306, ignored by allen2012 (which uses the hypocentral distance
    sqrt(R^2 + depth^2) for the rupture distance; a missing depth counts 0).
    """
    r = np.asarray(distance_km, dtype=np.float64)
    m = float(magnitude)
    axis = relation_rules.axis
    if relation_rules.relation == "wang2000":
        c = _require(relation_rules.wang2000, "wang2000").coefficients(zone_or_side, axis)
        return np.asarray(c.A + c.B * m - c.C * np.log(r + c.R0), dtype=np.float64)
    if relation_rules.relation == "gb18306":
        table = _require(relation_rules.gb18306, "gb18306")
        zone = table.zone(zone_or_side)
        c = zone.axis(axis)
        value = c.A + c.B * m + c.C * np.log10(r + c.R0) + table.sigma_factor * zone.sigma
        return np.asarray(value, dtype=np.float64)
    k = _require(relation_rules.allen2012, "allen2012")
    depth = 0.0 if depth_km is None or math.isnan(depth_km) else float(depth_km)
    near = (1.0 + k.c3 * math.exp(m - 5.0)) ** 2
    value = k.c0 + k.c1 * m + k.c2 * np.log(np.sqrt(r**2 + depth**2 + near))
    return np.asarray(value, dtype=np.float64)


def intensity_degree(x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Intensity degree: the value rounded half up (6.5 -> 7, 6.49 -> 6), at most XII.

    NaN stays NaN; the result is a float array so that it can hold NaN.
    """
    return np.minimum(np.floor(np.asarray(x, dtype=np.float64) + 0.5), float(MAX_DEGREE))


def grade_intensity(
    events: pd.DataFrame, rules: EarthquakeRules, regions: Regions, now: datetime
) -> list[Warning]:
    """Regional warnings: one per region whose estimated intensity reaches a level.

    Same eligibility as :func:`grade_earthquakes` (not deleted, an earthquake,
    a magnitude, still valid at ``now``) plus the rule's minimum magnitude.
    Per event: distances to every region at once, the intensity there, its
    degree (of the intensity as published, 0.1 half up) and level. Warnings
    come per event, most intense first.
    """
    rule = rules.intensity
    if rule is None or events.empty:
        return []
    magnitude, eligible = _published_magnitude(events, now)
    eligible &= magnitude >= rule.min_magnitude
    frame = regions.frame
    population = frame["population_2020"].fillna(0).to_numpy(dtype=np.int64)
    warnings: list[Warning] = []
    for i in np.flatnonzero(eligible):
        row = events.iloc[i]
        onset = row["time"].to_pydatetime()
        expires = onset + timedelta(hours=rule.valid_hours)
        if expires <= now:
            continue
        lon, lat = float(row["longitude"]), float(row["latitude"])
        depth = None if pd.isna(row["depth_km"]) else float(row["depth_km"])
        dist = regions.distances_km(lon, lat)
        epicentre = _region_at(frame, dist, int(np.argmin(dist)))
        key = rule.zone_or_side(lon, _province_code(frame, epicentre), epicentre.distance_km == 0)
        graded = dist <= rule.max_distance_km
        m = float(magnitude[i])
        value = np.where(graded, _round_tenth(intensity(rule, m, dist, depth, key)), np.nan)
        degree = intensity_degree(value)
        levels = rule.level_codes(degree)
        exposed = int(population[degree >= rule.exposure_min_degree].sum())
        base = _facts(row, m, epicentre)
        for j in sorted(np.flatnonzero(levels), key=lambda j: (-value[j], dist[j])):
            region = _region_at(frame, dist, int(j))
            level = Level(int(levels[j]))
            minimum = rule.levels[level]
            deg = int(degree[j])
            where = (
                "epicentre inside the region (0 km)"
                if region.distance_km == 0
                else f"{region.distance_km:.0f} km from the epicentre"
            )
            warnings.append(
                Warning(
                    hazard=Hazard.EARTHQUAKE,
                    level=level,
                    region_code=region.adcode,
                    region_name=region.full_name,
                    subject=str(row["subject"]),
                    onset=onset,
                    expires=expires,
                    rule_id=rule.id,
                    rule_set_version=rules.version,
                    observed=float(value[j]),
                    threshold=float(minimum),
                    reason=(
                        f"{_relation_text(rule, key, region.distance_km, depth)}: "
                        f"M{m:.1f}, {where}, intensity {value[j]:.1f} "
                        f"-> degree {ROMAN_DEGREES[deg]} "
                        f"({level.colour}, >= {ROMAN_DEGREES[minimum]})"
                    ),
                    facts={
                        **base,
                        "intensity": float(value[j]),
                        "intensity_degree": deg,
                        "intensity_roman": ROMAN_DEGREES[deg],
                        "distance_km": round(region.distance_km, 1),
                        "warned_region_code": region.adcode,
                        "warned_region_name": region.full_name,
                        "population": region.population,
                        "exposed_population": exposed,
                        "relation": rule.relation,
                        "relation_zone": key,
                        "axis": rule.axis if rule.relation != "allen2012" else None,
                    },
                    reached_at=onset,
                    source_ref=str(row["event_id"]),
                )
            )
    return warnings


def _region_at(frame: pd.DataFrame, dist: npt.NDArray[np.float64], i: int) -> Region:
    row = frame.iloc[i]
    pop = row["population_2020"]
    return Region(
        adcode=str(row["adcode"]),
        name=str(row["name"]),
        province=str(row["province"]),
        population=None if pd.isna(pop) else int(pop),
        distance_km=float(dist[i]),
    )


def _province_code(frame: pd.DataFrame, region: Region) -> str:
    if "province_code" in frame.columns:
        code = frame.loc[frame["adcode"] == region.adcode, "province_code"]
        if len(code) and not pd.isna(code.iloc[0]):
            return str(code.iloc[0])
    return region.adcode[:2] + "0000"


def _relation_text(
    rule: IntensityRules, key: str | None, distance_km: float, depth: float | None
) -> str:
    if rule.relation == "wang2000":
        split = _require(rule.wang2000, "wang2000").split_longitude
        return f"wang2000 ({key} of {split:g}°E, {rule.axis} axis)"
    if rule.relation == "gb18306":
        return f"gb18306 ({key} zone, {rule.axis} axis)"
    hypo = math.hypot(distance_km, depth or 0.0)
    return f"allen2012 (hypocentral distance {hypo:.0f} km)"
