"""Warning levels, the earthquake rule file, the regions table and earthquake grading."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.criteria import EarthquakeRules, RuleFileError, load_earthquake_rules
from alerts.feeds.usgs import parse
from alerts.grading import NATIONAL_REGION, event_subject, grade_earthquakes
from alerts.model import Hazard, Level
from alerts.regions import EARTH_RADIUS_KM, Regions, load_regions

ORIGIN_MS = 1736211916824  # 2025-01-07T01:05:16.824Z, the Dingri M7.1
ORIGIN = datetime(2025, 1, 7, 1, 5, 16, 824000, tzinfo=UTC)
NOW = ORIGIN + timedelta(minutes=15)
DINGRI = (87.3608, 28.639)
BEIJING = (116.40, 39.90)


@pytest.fixture(scope="module")
def regions() -> Regions:
    return load_regions()


@pytest.fixture(scope="module")
def rules() -> EarthquakeRules:
    return load_earthquake_rules()


def quake(
    event_id: str,
    lon: float,
    lat: float,
    mag: float | None,
    *,
    time: int = ORIGIN_MS,
    **props: Any,
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": event_id,
        "geometry": {"type": "Point", "coordinates": [lon, lat, 10.0]},
        "properties": {
            "mag": mag,
            "magType": "mww",
            "place": f"near {event_id}",
            "time": time,
            "updated": time + 60_000,
            "status": "reviewed",
            "type": "earthquake",
            "ids": f",{event_id},",
            "url": f"https://earthquake.usgs.gov/earthquakes/eventpage/{event_id}",
            **props,
        },
    }


def events(*features: dict[str, Any]) -> pd.DataFrame:
    """The earthquake frame as the parser builds it, plus the stored-event ``subject``."""
    payload = json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()
    result = parse(payload)
    assert result.quarantined == []
    frame = result.frame
    frame["subject"] = [
        event_subject(s, e) for s, e in zip(frame["source"], frame["event_id"], strict=True)
    ]
    return frame


def haversine_to_boundaries_km(regions: Regions, lon: float, lat: float) -> float:
    """Independent check: great-circle distance to the nearest boundary vertex."""
    coords = np.concatenate([shapely.get_coordinates(g) for g in regions.geoms])
    lon1, lat1 = np.radians(coords[:, 0]), np.radians(coords[:, 1])
    lon0, lat0 = math.radians(lon), math.radians(lat)
    h = (
        np.sin((lat1 - lat0) / 2) ** 2
        + np.cos(lat1) * math.cos(lat0) * np.sin((lon1 - lon0) / 2) ** 2
    )
    return float(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(h)).min())


# -- levels ------------------------------------------------------------------------------


def test_levels_are_ordered_blue_to_red() -> None:
    assert Level.BLUE < Level.YELLOW < Level.ORANGE < Level.RED
    assert sorted([Level.RED, Level.BLUE, Level.ORANGE, Level.YELLOW]) == list(Level)
    assert max(Level) is Level.RED


@pytest.mark.parametrize(
    ("level", "colour", "zh", "roman", "severity"),
    [
        (Level.BLUE, "blue", "蓝色", "IV", "Minor"),
        (Level.YELLOW, "yellow", "黄色", "III", "Moderate"),
        (Level.ORANGE, "orange", "橙色", "II", "Severe"),
        (Level.RED, "red", "红色", "I", "Extreme"),
    ],
)
def test_level_names_grades_and_cap_severity(
    level: Level, colour: str, zh: str, roman: str, severity: str
) -> None:
    assert (level.colour, level.zh, level.roman, level.cap_severity) == (
        colour,
        zh,
        roman,
        severity,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Level.ORANGE, Level.ORANGE),
        (1, Level.BLUE),
        (4, Level.RED),
        ("2", Level.YELLOW),
        ("blue", Level.BLUE),
        ("RED", Level.RED),
        ("  Orange ", Level.ORANGE),
        ("黄色", Level.YELLOW),
        ("红", Level.RED),
        ("蓝", Level.BLUE),
        ("IV", Level.BLUE),
        ("iii", Level.YELLOW),
        ("II", Level.ORANGE),
        ("I", Level.RED),
    ],
)
def test_level_parse_accepts_members_numbers_colours_and_grades(
    value: str | int | Level, expected: Level
) -> None:
    assert Level.parse(value) is expected


@pytest.mark.parametrize("value", ["purple", "V", "", "0", 0, 5, "红色色"])
def test_level_parse_rejects_unknown_values(value: str | int) -> None:
    with pytest.raises(ValueError):
        Level.parse(value)


# -- rule files --------------------------------------------------------------------------


def test_packaged_rule_file_loads(rules: EarthquakeRules) -> None:
    nr = rules.national_response
    assert rules.version == "eq-2026.1"
    assert nr.id == "eq-national-magnitude"
    assert (nr.max_distance_km, nr.valid_hours) == (300, 24)
    assert nr.levels == {Level.BLUE: 5.0, Level.YELLOW: 6.0, Level.ORANGE: 6.5, Level.RED: 7.0}


@pytest.mark.parametrize(
    ("magnitude", "expected"),
    [
        (4.99, None),
        (5.0, Level.BLUE),
        (5.99, Level.BLUE),
        (6.0, Level.YELLOW),
        (6.49, Level.YELLOW),
        (6.5, Level.ORANGE),
        (7.0, Level.RED),
        (9.1, Level.RED),
    ],
)
def test_rule_level_for_magnitude(
    rules: EarthquakeRules, magnitude: float, expected: Level | None
) -> None:
    assert rules.national_response.level_for(magnitude) == expected


VALID_RULES = """\
version: "test-1"
national_response:
  id: test-rule
  max_distance_km: 300
  valid_hours: 24
  levels: {blue: 5.0, yellow: 6.0, orange: 6.5, red: 7.0}
"""


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (VALID_RULES.replace("orange: 6.5", "orange: 6.0"), "levels"),
        (VALID_RULES.replace("red: 7.0", "red: 6.2"), "levels"),
        (VALID_RULES.replace("{blue: 5.0, ", "{blue: 6.5, "), "levels"),
        (VALID_RULES + "extra_rule: true\n", "extra_rule"),
        (VALID_RULES.replace("  valid_hours: 24\n", "  valid_hours: 24\n  radius: 5\n"), "radius"),
        (VALID_RULES.replace("  valid_hours: 24\n", ""), "valid_hours"),
        (VALID_RULES.replace("valid_hours: 24", "valid_hours: 0"), "valid_hours"),
        (VALID_RULES.replace("max_distance_km: 300", "max_distance_km: -1"), "max_distance_km"),
        (VALID_RULES.replace("max_distance_km: 300", "max_distance_km: far"), "max_distance_km"),
        (VALID_RULES.replace("blue: 5.0", "purple: 5.0"), "purple"),
        (VALID_RULES.replace('version: "test-1"\n', ""), "version"),
    ],
    ids=[
        "orange-equals-yellow",
        "red-below-orange",
        "blue-above-yellow",
        "unknown-top-level-field",
        "unknown-rule-field",
        "missing-valid-hours",
        "zero-valid-hours",
        "negative-distance",
        "non-numeric-distance",
        "unknown-level",
        "missing-version",
    ],
)
def test_invalid_rule_file_raises_naming_file_and_field(
    tmp_path: Path, text: str, field: str
) -> None:
    path = tmp_path / "earthquake.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as exc:
        load_earthquake_rules(path)
    assert str(path) in str(exc.value)
    assert field in str(exc.value)


def test_valid_copy_of_the_rule_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "earthquake.yaml"
    path.write_text(VALID_RULES, encoding="utf-8")
    assert load_earthquake_rules(path).version == "test-1"


@pytest.mark.parametrize(
    "text", ["national_response: [\n  id: : x\n", ""], ids=["yaml-syntax", "empty-file"]
)
def test_unparseable_rule_file_raises_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "earthquake.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError, match=str(path)):
        load_earthquake_rules(path)


def test_missing_rule_file_raises_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="nowhere.yaml"):
        load_earthquake_rules(tmp_path / "nowhere.yaml")


# -- regions -----------------------------------------------------------------------------


def test_regions_table_has_369_prefecture_units(regions: Regions) -> None:
    assert len(regions) == 369
    assert regions.frame["adcode"].is_unique


def test_beijing_point_is_inside_110100(regions: Regions) -> None:
    nearest = regions.nearest(*BEIJING)
    assert (nearest.adcode, nearest.name, nearest.distance_km) == ("110100", "北京市", 0.0)
    assert nearest.full_name == "北京市"  # a municipality is not named twice
    assert regions.contains(*BEIJING)


def test_distance_is_zero_only_inside_the_containing_region(regions: Regions) -> None:
    dist = regions.distances_km(*BEIJING)
    assert dist.shape == (369,)
    inside = regions.frame["adcode"][dist == 0].tolist()
    assert inside == ["110100"]
    assert (dist[dist > 0] > 0).all()


def test_dingri_is_inside_shigatse(regions: Regions) -> None:
    nearest = regions.nearest(*DINGRI)
    assert (nearest.adcode, nearest.full_name, nearest.distance_km) == (
        "540200",
        "西藏自治区日喀则市",
        0.0,
    )


@pytest.mark.parametrize(
    ("name", "lon", "lat"),
    [
        ("kathmandu", 85.3, 27.7),
        ("hanoi", 105.85, 21.03),
        ("mandalay", 96.08, 21.97),
        ("dhaka", 90.4, 23.8),
        ("seoul", 126.98, 37.57),
    ],
)
def test_distance_outside_agrees_with_great_circle_distance(
    regions: Regions, name: str, lon: float, lat: float
) -> None:
    nearest = regions.nearest(lon, lat)
    assert not regions.contains(lon, lat)
    assert nearest.distance_km == pytest.approx(
        haversine_to_boundaries_km(regions, lon, lat), rel=0.02
    )


# -- grading -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("magnitude", "expected"),
    [
        (4.9, None),
        (5.0, Level.BLUE),
        (5.5, Level.BLUE),
        (6.0, Level.YELLOW),
        (6.4, Level.YELLOW),
        (6.5, Level.ORANGE),
        (6.9, Level.ORANGE),
        (7.0, Level.RED),
        (8.2, Level.RED),
    ],
)
def test_magnitude_thresholds_fire_at_exactly_the_threshold(
    rules: EarthquakeRules, regions: Regions, magnitude: float, expected: Level | None
) -> None:
    warnings = grade_earthquakes(events(quake("q1", *DINGRI, magnitude)), rules, regions, NOW)
    assert [w.level for w in warnings] == ([expected] if expected else [])
    if expected:
        assert warnings[0].threshold == rules.national_response.levels[expected]
        assert warnings[0].observed == magnitude


def test_whole_frame_is_graded_row_by_row(rules: EarthquakeRules, regions: Regions) -> None:
    frame = events(*(quake(f"q{m}", *DINGRI, m) for m in (7.0, 4.9, 5.0, 6.5, 6.0)))
    graded = {w.subject: w.level for w in grade_earthquakes(frame, rules, regions, NOW)}
    assert graded == {
        "usgs:q7.0": Level.RED,
        "usgs:q5.0": Level.BLUE,
        "usgs:q6.5": Level.ORANGE,
        "usgs:q6.0": Level.YELLOW,
    }


def test_recorded_dingri_event_fires_red(
    data: Path, rules: EarthquakeRules, regions: Regions
) -> None:
    frame = parse((data / "usgs" / "china_dingri_4.5_day.geojson").read_bytes()).frame
    frame["subject"] = "usgs:us6000pi9w"
    [w] = grade_earthquakes(frame, rules, regions, NOW)
    assert w.hazard is Hazard.EARTHQUAKE
    assert w.level is Level.RED
    assert (w.region_code, w.region_name) == NATIONAL_REGION == ("CN", "全国")
    assert w.subject == "usgs:us6000pi9w"
    assert w.onset == ORIGIN
    assert w.expires == ORIGIN + timedelta(hours=24)
    assert (w.rule_id, w.rule_set_version) == ("eq-national-magnitude", "eq-2026.1")
    assert (w.observed, w.threshold) == (7.1, 7.0)
    assert w.facts["region_adcode"] == "540200"
    assert w.facts["region_name"] == "西藏自治区日喀则市"
    assert w.facts["region_distance_km"] == 0.0
    assert w.facts["magnitude"] == 7.1
    assert w.facts["depth_km"] == 10.0
    assert (w.facts["longitude"], w.facts["latitude"]) == DINGRI
    assert w.facts["time"] == "2025-01-07T01:05:16.824000+00:00"
    assert w.facts["event_id"] == "us6000pi9w"
    assert w.facts["source"] == "usgs"
    assert w.facts["status"] == "reviewed"
    json.dumps(w.facts)  # facts are stored as JSON


def test_reason_names_rule_threshold_level_and_region(
    rules: EarthquakeRules, regions: Regions
) -> None:
    [w] = grade_earthquakes(events(quake("q1", *DINGRI, 6.2)), rules, regions, NOW)
    assert w.reason == "M6.2 >= 6.0 (yellow), epicentre within 540200 西藏自治区日喀则市"


@pytest.mark.parametrize(
    ("name", "lon", "lat", "fires"),
    [
        ("kathmandu-65km", 85.3, 27.7, True),
        ("hanoi-135km", 105.85, 21.03, True),
        ("mandalay-265km", 96.08, 21.97, True),
        ("seoul-345km", 126.98, 37.57, False),
        ("dhaka-380km", 90.4, 23.8, False),
        ("ulaanbaatar-490km", 106.9, 47.9, False),
        ("tokyo-1100km", 139.7, 35.7, False),
    ],
)
def test_events_outside_the_border_fire_within_300_km(
    rules: EarthquakeRules, regions: Regions, name: str, lon: float, lat: float, fires: bool
) -> None:
    warnings = grade_earthquakes(events(quake("q1", lon, lat, 6.0)), rules, regions, NOW)
    assert len(warnings) == (1 if fires else 0)
    if fires:
        expected_km = haversine_to_boundaries_km(regions, lon, lat)
        assert 0 < warnings[0].facts["region_distance_km"] <= 300
        assert warnings[0].facts["region_distance_km"] == pytest.approx(expected_km, rel=0.02)


def test_reason_for_an_event_outside_names_the_distance(
    rules: EarthquakeRules, regions: Regions
) -> None:
    [w] = grade_earthquakes(events(quake("q1", 85.3, 27.7, 6.0)), rules, regions, NOW)
    assert w.reason == "M6.0 >= 6.0 (yellow), epicentre 65 km from 540200 西藏自治区日喀则市"
    assert w.facts["region_distance_km"] == pytest.approx(64.8, abs=0.5)


def test_distance_limit_comes_from_the_rule_file(tmp_path: Path, regions: Regions) -> None:
    path = tmp_path / "earthquake.yaml"
    path.write_text(VALID_RULES.replace("max_distance_km: 300", "max_distance_km: 100"), "utf-8")
    narrow = load_earthquake_rules(path)
    frame = events(quake("ktm", 85.3, 27.7, 6.0), quake("hanoi", 105.85, 21.03, 6.0))
    assert [w.subject for w in grade_earthquakes(frame, narrow, regions, NOW)] == ["usgs:ktm"]
    assert grade_earthquakes(frame, narrow, regions, NOW)[0].rule_set_version == "test-1"


@pytest.mark.parametrize(
    "feature",
    [
        quake("q1", *DINGRI, 7.5, status="deleted"),
        quake("q1", *DINGRI, 7.5, type="quarry blast"),
        quake("q1", *DINGRI, 7.5, type="explosion"),
        quake("q1", *DINGRI, None),
    ],
    ids=["deleted", "quarry-blast", "explosion", "no-magnitude"],
)
def test_ineligible_events_never_fire(
    rules: EarthquakeRules, regions: Regions, feature: dict[str, Any]
) -> None:
    frame = events(feature, quake("ok", *DINGRI, 5.0))
    assert [w.subject for w in grade_earthquakes(frame, rules, regions, NOW)] == ["usgs:ok"]


@pytest.mark.parametrize(
    ("now", "fires"),
    [
        (ORIGIN - timedelta(minutes=1), True),
        (ORIGIN + timedelta(hours=23, minutes=59), True),
        (ORIGIN + timedelta(hours=24), False),
        (ORIGIN + timedelta(days=3), False),
    ],
    ids=["before-onset", "last-minute", "exactly-expired", "long-expired"],
)
def test_warning_past_its_validity_is_not_produced(
    rules: EarthquakeRules, regions: Regions, now: datetime, fires: bool
) -> None:
    warnings = grade_earthquakes(events(quake("q1", *DINGRI, 7.1)), rules, regions, now)
    assert len(warnings) == (1 if fires else 0)


def test_empty_frame_gives_no_warnings(rules: EarthquakeRules, regions: Regions) -> None:
    frame = parse(b'{"type": "FeatureCollection", "features": []}').frame
    frame["subject"] = pd.Series(dtype="object")
    assert grade_earthquakes(frame, rules, regions, NOW) == []


def test_event_subject_joins_source_and_id() -> None:
    assert event_subject("usgs", "us6000pi9w") == "usgs:us6000pi9w"


def test_published_magnitude_agrees_with_the_level(
    rules: EarthquakeRules, regions: Regions
) -> None:
    [w] = grade_earthquakes(events(quake("q1", *DINGRI, 5.96)), rules, regions, NOW)
    stated = re.match(r"M(\d+(?:\.\d+)?) ", w.reason)
    assert stated is not None
    assert rules.national_response.level_for(float(stated.group(1))) == w.level
    assert rules.national_response.level_for(w.facts["magnitude"]) == w.level


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(3.0, 9.5), st.floats(0.0, 3.0))
def test_a_larger_magnitude_never_lowers_the_national_level(m: float, more: float) -> None:
    rules = load_earthquake_rules()
    regions = load_regions()

    def level(magnitude: float) -> int:
        found = grade_earthquakes(events(quake("q", *DINGRI, magnitude)), rules, regions, NOW)
        return int(found[0].level) if found else 0

    assert level(m + more) >= level(m)
