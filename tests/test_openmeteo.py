"""Open-Meteo: parsing forecasts and air quality, locations, request URLs, merging."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.feeds.base import WEATHER_COLUMNS, FeedFormatError, ParseResult
from alerts.feeds.openmeteo import (
    Location,
    default_locations,
    load_locations,
    merge,
    parse,
    request_urls,
)

DATA = Path(__file__).parent / "data" / "openmeteo"
THREE = [
    Location("510100", 30.763, 103.8678, "四川省成都市"),
    Location("513300", 31.0893, 100.3701, "四川省甘孜藏族自治州"),
    Location("540100", 30.155, 91.389, "西藏自治区拉萨市"),
]
FLOAT_COLUMNS = [c for c in WEATHER_COLUMNS if c not in ("source", "location_id", "time")]


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def doc(name: str) -> Any:
    return json.loads(read(name))


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def one_hour(variable: str, unit: Any, value: Any, **extra: Any) -> dict[str, Any]:
    """A minimal single-location response with one hour of one variable."""
    block: dict[str, Any] = {
        "latitude": 39.875,
        "longitude": 116.375,
        "generationtime_ms": 0.05,
        "utc_offset_seconds": 28800,
        "timezone": "Asia/Shanghai",
        "timezone_abbreviation": "GMT+8",
        "elevation": 43.0,
        "hourly_units": {"time": "iso8601", variable: unit},
        "hourly": {"time": ["2026-07-20T08:00"], variable: [value]},
    }
    block.update(extra)
    return block


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def assert_schema(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(WEATHER_COLUMNS)
    assert str(frame["time"].dtype) == "datetime64[us, UTC]"
    for column in FLOAT_COLUMNS:
        assert str(frame[column].dtype) == "Float64", column


# --- mapping results to locations ------------------------------------------------


def test_results_map_to_locations_by_order_with_snapped_coordinates() -> None:
    result = parse(read("forecast_3_locations.json"), THREE)
    frame = result.frame
    assert result.quarantined == []
    assert len(frame) == 3 * 24
    firsts = frame.groupby("location_id", sort=False).first()
    assert list(firsts.index) == ["510100", "513300", "540100"]
    # The frame carries the grid point the model answered for, not the request's.
    assert firsts["latitude"].tolist() == [30.75, 31.125, 30.125]
    assert firsts["longitude"].tolist() == [103.875, 100.375, 91.375]
    assert_schema(frame)
    assert (frame["source"] == "open-meteo").all()


def test_results_map_by_order_even_when_coordinates_point_elsewhere() -> None:
    # Listed in another order, the ids follow the list: coordinates are never matched.
    shuffled = [THREE[2], THREE[0], THREE[1]]
    frame = parse(read("forecast_3_locations.json"), shuffled).frame
    firsts = frame.groupby("location_id", sort=False).first()
    assert list(firsts.index) == ["540100", "510100", "513300"]
    assert firsts.loc["540100", "latitude"] == 30.75  # Chengdu's grid point, by position


def test_locations_may_be_given_as_ids() -> None:
    frame = parse(read("forecast_3_locations.json"), ["a", "b", "c"]).frame
    assert frame["location_id"].unique().tolist() == ["a", "b", "c"]


def test_without_locations_the_id_is_the_responses_coordinates() -> None:
    frame = parse(read("forecast_3_locations.json")).frame
    assert frame["location_id"].unique().tolist() == [
        "30.75,103.875",
        "31.125,100.375",
        "30.125,91.375",
    ]


@pytest.mark.parametrize(
    ("name", "locations", "message"),
    [
        ("forecast_3_locations.json", THREE[:2], r"3 result\(s\) for 2 requested location"),
        ("forecast_3_locations.json", [*THREE, "x"], r"3 result\(s\) for 4 requested location"),
        ("forecast_beijing.json", THREE, r"1 result\(s\) for 3 requested location"),
        ("forecast_beijing.json", [], r"1 result\(s\) for 0 requested location"),
    ],
)
def test_locations_count_mismatch_is_a_feed_format_error_naming_both_counts(
    name: str, locations: list[Location | str], message: str
) -> None:
    with pytest.raises(FeedFormatError, match=rf"^open-meteo: {message}"):
        parse(read(name), locations)


# --- time ------------------------------------------------------------------------------


def test_local_times_become_utc_by_subtracting_the_offset() -> None:
    frame = parse(read("forecast_beijing.json"), ["110100"]).frame
    assert len(frame) == 48
    assert frame["time"].iloc[0] == utc("2026-07-18T16:00")  # local 2026-07-19T00:00
    assert frame["time"].iloc[-1] == utc("2026-07-20T15:00")
    raw = doc("forecast_beijing.json")["hourly"]["time"]
    at = raw.index("2026-07-20T08:00")
    assert frame["time"].iloc[at] == utc("2026-07-20T00:00")
    assert frame["time"].diff().dropna().eq(pd.Timedelta(hours=1)).all()


def test_gmt_response_with_seconds_in_the_times_needs_no_shift() -> None:
    block = one_hour("temperature_2m", "°C", 21.5, utc_offset_seconds=0, timezone="GMT")
    block["hourly"]["time"] = ["2026-07-20T08:00:00"]
    frame = parse(encode(block)).frame
    assert frame["time"].tolist() == [utc("2026-07-20T08:00")]


def test_negative_offsets_shift_forward() -> None:
    block = one_hour("temperature_2m", "°C", 21.5, utc_offset_seconds=-14400)
    assert parse(encode(block)).frame["time"].iloc[0] == utc("2026-07-20T12:00")


def test_unixtime_is_already_utc() -> None:
    block = one_hour("temperature_2m", "°C", 21.5)
    block["hourly_units"]["time"] = "unixtime"
    block["hourly"]["time"] = [int(utc("2026-07-20T00:00").timestamp())]
    assert parse(encode(block)).frame["time"].iloc[0] == utc("2026-07-20T00:00")


def test_missing_offset_with_local_times_quarantines_the_location() -> None:
    block = one_hour("temperature_2m", "°C", 21.5)
    del block["utc_offset_seconds"]
    result = parse(encode(block), ["x"])
    assert result.frame.empty
    assert "utc_offset_seconds" in result.quarantined[0].reason


# --- units ------------------------------------------------------------------------------

UNIT_CASES = [
    # variable, unit as the API spells it, value, column, expected in the column's unit
    ("wind_speed_10m", "m/s", 4.2, "wind_speed_ms", 4.2),
    ("wind_speed_10m", "km/h", 36.0, "wind_speed_ms", 10.0),
    ("wind_speed_10m", "mp/h", 10.0, "wind_speed_ms", 4.4704),
    ("wind_speed_10m", "mph", 25.0, "wind_speed_ms", 11.176),
    ("wind_speed_10m", "kn", 36.0, "wind_speed_ms", 18.52),
    ("wind_gusts_10m", "km/h", 90.0, "wind_gust_ms", 25.0),
    ("wind_gusts_10m", "kn", 10.0, "wind_gust_ms", 5.144444444444444),
    ("temperature_2m", "°C", -3.5, "temperature_c", -3.5),
    ("temperature_2m", "°F", 212.0, "temperature_c", 100.0),
    ("temperature_2m", "°F", 32.0, "temperature_c", 0.0),
    ("temperature_2m", "°F", -40.0, "temperature_c", -40.0),
    ("temperature_2m", "°F", 53.6, "temperature_c", 12.0),
    ("precipitation", "mm", 12.3, "precipitation_mm", 12.3),
    ("precipitation", "inch", 1.0, "precipitation_mm", 25.4),
    ("precipitation", "inch", 0.5, "precipitation_mm", 12.7),
    ("snowfall", "cm", 7.0, "snowfall_water_mm", 10.0),
    ("snowfall", "cm", 1.4, "snowfall_water_mm", 2.0),
    ("snowfall", "inch", 7.0, "snowfall_water_mm", 25.4),
    ("snowfall", "inch", 1.0, "snowfall_water_mm", 3.6285714285714286),
    ("visibility", "m", 24140.0, "visibility_m", 24140.0),
    ("visibility", "ft", 1000.0, "visibility_m", 304.8),
    ("relative_humidity_2m", "%", 87, "relative_humidity_pct", 87.0),
    ("pm2_5", "μg/m³", 35.2, "pm25_ugm3", 35.2),  # Greek mu, as the API writes it
    ("pm2_5", "µg/m³", 35.2, "pm25_ugm3", 35.2),  # micro sign, as FEEDS.md writes it
]


@pytest.mark.parametrize(("variable", "unit", "value", "column", "expected"), UNIT_CASES)
def test_unit_is_converted_to_the_columns_unit(
    variable: str, unit: str, value: float, column: str, expected: float
) -> None:
    result = parse(encode(one_hour(variable, unit, value)))
    assert result.quarantined == []
    got = result.frame[column].iloc[0]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_fixture_in_kmh_and_fahrenheit_is_converted() -> None:
    frame = parse(read("forecast_lhasa_kmh_fahrenheit.json"), ["540100"]).frame
    first = frame.iloc[0]
    assert first["temperature_c"] == pytest.approx(12.0)
    assert first["wind_speed_ms"] == pytest.approx(5.0)
    assert first["wind_gust_ms"] == pytest.approx(10.0)
    # The same hours in m/s and °C agree with the metric answer for Lhasa.
    metric = parse(read("forecast_3_locations.json"), THREE).frame
    lhasa = metric[metric["location_id"] == "540100"].reset_index(drop=True)
    assert (frame["temperature_c"] - lhasa["temperature_c"]).abs().iloc[1:].max() < 0.06
    assert (frame["wind_speed_ms"] - lhasa["wind_speed_ms"]).abs().iloc[1:].max() < 0.02


@pytest.mark.parametrize("unit", ["undefined", "furlong/fortnight", "", None, 3])
def test_unknown_unit_leaves_the_column_na_with_one_quarantine_entry(unit: Any) -> None:
    block = one_hour("wind_speed_10m", unit, 5.0)
    block["hourly"]["temperature_2m"] = [20.0]
    block["hourly_units"]["temperature_2m"] = "°C"
    if unit is None:
        del block["hourly_units"]["wind_speed_10m"]
    result = parse(encode(block), ["110100"])
    assert result.frame["wind_speed_ms"].isna().all()
    assert result.frame["temperature_c"].iloc[0] == 20.0  # other columns unaffected
    assert len(result.quarantined) == 1
    entry = result.quarantined[0]
    assert entry.source == "open-meteo"
    assert entry.record_key == "110100"
    assert entry.record == {"location_id": "110100", "variable": "wind_speed_10m", "unit": unit}
    assert "wind_speed_10m" in entry.reason


def test_unknown_unit_over_many_hours_is_still_one_entry() -> None:
    block = doc("forecast_beijing.json")
    block["hourly_units"]["visibility"] = "undefined"
    result = parse(encode(block), ["110100"])
    assert result.frame["visibility_m"].isna().all()
    assert result.frame["temperature_c"].notna().all()
    assert [q.record["variable"] for q in result.quarantined] == ["visibility"]


def test_a_variable_not_in_the_response_is_na_without_quarantine() -> None:
    result = parse(read("forecast_beijing.json"), ["110100"])
    assert result.frame["pm25_ugm3"].isna().all()
    assert result.quarantined == []


# --- values --------------------------------------------------------------------------


def test_nulls_are_na_and_not_quarantined() -> None:
    result = parse(read("forecast_3_locations.json"), THREE)
    ganzi = result.frame[result.frame["location_id"] == "513300"].reset_index(drop=True)
    assert ganzi["temperature_c"].isna().tolist() == [i in (5, 6) for i in range(24)]
    assert ganzi["visibility_m"].isna().tolist() == [i >= 18 for i in range(24)]
    others = result.frame[result.frame["location_id"] != "513300"]
    assert others.drop(columns="pm25_ugm3").notna().all().all()
    assert result.quarantined == []


@pytest.mark.parametrize("bad", ["12.5", "n/a", True, [1.0], {"v": 1}, "NaN", 10**400])
def test_a_value_that_is_not_a_number_is_na_and_quarantined(bad: Any) -> None:
    block = doc("forecast_beijing.json")
    block["hourly"]["temperature_2m"][32] = bad  # local 2026-07-20T08:00
    result = parse(encode(block), ["110100"])
    temps = result.frame["temperature_c"]
    assert temps.isna().tolist() == [i == 32 for i in range(48)]
    assert len(result.quarantined) == 1
    entry = result.quarantined[0]
    assert entry.record_key == "110100"
    assert entry.record["time"] == "2026-07-20T00:00:00.000Z"
    assert entry.record["variable"] == "temperature_2m"
    assert entry.record["value"] == bad


def test_json_nan_infinity_and_overflowing_literals_are_quarantined_not_trusted() -> None:
    block = doc("forecast_beijing.json")
    block["hourly"]["temperature_2m"][:3] = [math.nan, math.inf, 12345.0]
    text = json.dumps(block).replace("12345.0", "1e400")  # NaN, Infinity, 1e400: not JSON
    result = parse(text.encode(), ["110100"])
    assert result.frame["temperature_c"].isna().tolist() == [i < 3 for i in range(48)]
    assert [q.record["value"] for q in result.quarantined] == ["NaN", "Infinity", math.inf]


# --- broken blocks -------------------------------------------------------------------


def test_mismatched_array_length_quarantines_only_that_location() -> None:
    blocks = doc("forecast_3_locations.json")
    blocks[1]["hourly"]["wind_speed_10m"].pop()
    result = parse(encode(blocks), THREE)
    assert result.frame["location_id"].unique().tolist() == ["510100", "540100"]
    assert len(result.frame) == 48
    assert len(result.quarantined) == 1
    entry = result.quarantined[0]
    assert entry.record_key == "513300"
    assert "results[1]" in entry.reason
    assert "hourly.wind_speed_10m has 23 values, hourly.time has 24" in entry.reason
    assert entry.record == blocks[1]


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (lambda b: b.pop("hourly"), "hourly"),
        (lambda b: b["hourly"].pop("time"), "hourly.time"),
        (lambda b: b.update(hourly=[1, 2]), "hourly"),
        (lambda b: b["hourly"].update(time="2026-07-20T00:00"), "hourly.time"),
        (lambda b: b["hourly"]["time"].__setitem__(3, "yesterday"), "hourly.time"),
        (lambda b: b["hourly"]["time"].__setitem__(3, None), "hourly.time"),
        (lambda b: b["hourly"].update(snowfall=None), "hourly.snowfall"),
        (lambda b: b.update(latitude="30.1"), "latitude"),
        (lambda b: b.pop("longitude"), "longitude"),
        (lambda b: b.update(utc_offset_seconds="+08:00"), "utc_offset_seconds"),
    ],
)
def test_a_broken_block_is_quarantined_with_the_field_and_others_flow_on(
    damage: Any, field: str
) -> None:
    blocks = doc("forecast_3_locations.json")
    damage(blocks[2])
    result = parse(encode(blocks), THREE)
    assert result.frame["location_id"].unique().tolist() == ["510100", "513300"]
    assert len(result.quarantined) == 1
    assert result.quarantined[0].record_key == "540100"
    assert result.quarantined[0].reason.startswith(f"results[2]: {field}")


def test_a_block_that_is_not_an_object_is_quarantined() -> None:
    blocks = doc("forecast_3_locations.json")
    blocks[0] = "oops"
    result = parse(encode(blocks), THREE)
    assert result.frame["location_id"].unique().tolist() == ["513300", "540100"]
    assert result.quarantined[0].reason == "results[0]: expected an object, got str"


# --- whole-payload errors --------------------------------------------------------------


def test_error_response_is_a_feed_format_error_with_the_reason() -> None:
    with pytest.raises(FeedFormatError, match=r"^open-meteo: .*Latitude must be in range"):
        parse(read("error_400.json"))


@pytest.mark.parametrize(
    "payload", [b"", b"<html>502 Bad Gateway</html>", b"\xff\xfe{", b'{"latitude": 1', b"42"]
)
def test_non_json_or_wrong_envelope_is_a_feed_format_error(payload: bytes) -> None:
    with pytest.raises(FeedFormatError, match=r"^open-meteo: "):
        parse(payload)


def test_empty_array_gives_an_empty_frame_with_the_schema() -> None:
    result = parse(b"[]")
    assert result.frame.empty
    assert_schema(result.frame)


# --- air quality and merge -----------------------------------------------------------


def test_air_quality_parses_pm25_and_leaves_weather_na() -> None:
    frame = parse(read("air_quality_3_locations.json"), THREE).frame
    assert len(frame) == 72
    assert frame["pm25_ugm3"].notna().all()
    assert frame["temperature_c"].isna().all()
    assert frame.groupby("location_id", sort=False)["latitude"].first().tolist() == [
        30.800003,
        31.2,
        30.0,
    ]


def test_merge_fills_pm25_on_location_and_time() -> None:
    forecast = parse(read("forecast_3_locations.json"), THREE).frame
    air = parse(read("air_quality_3_locations.json"), THREE).frame
    merged = merge(forecast, air)
    assert_schema(merged)
    assert len(merged) == len(forecast)
    assert merged["pm25_ugm3"].notna().all()
    # Weather and the forecast's grid coordinates are untouched.
    pd.testing.assert_frame_equal(
        merged.drop(columns="pm25_ugm3"), forecast.drop(columns="pm25_ugm3")
    )
    key = ["location_id", "time"]
    expected = air.set_index(key)["pm25_ugm3"]
    assert merged.set_index(key)["pm25_ugm3"].equals(expected.loc[merged.set_index(key).index])


def test_merge_keeps_rows_found_on_only_one_side() -> None:
    forecast = parse(read("forecast_3_locations.json"), THREE).frame
    air = parse(read("air_quality_3_locations.json"), THREE).frame
    forecast = forecast[forecast["time"] < utc("2026-07-20T10:00")]  # drop the last 6 hours
    air = air[air["location_id"] != "513300"]  # no air quality for Ganzi
    merged = merge(forecast, air)
    assert len(merged) == 3 * 18 + 2 * 6
    assert merged["location_id"].unique().tolist() == ["510100", "513300", "540100"]
    ganzi = merged[merged["location_id"] == "513300"]
    assert ganzi["pm25_ugm3"].isna().all() and ganzi["wind_speed_ms"].notna().all()
    late = merged[merged["time"] >= utc("2026-07-20T10:00")]
    assert late["temperature_c"].isna().all() and late["pm25_ugm3"].notna().all()
    assert late["latitude"].tolist()[:1] == [30.800003]  # the air-quality grid point
    for _, group in merged.groupby("location_id"):
        assert group["time"].is_monotonic_increasing


# --- locations --------------------------------------------------------------------------


def test_default_locations_are_the_369_prefectures_inside_china() -> None:
    locations = default_locations()
    assert len(locations) == 369
    assert len({loc.id for loc in locations}) == 369
    # China's bounding box, the South China Sea included (三沙市 lies near 8 N).
    for loc in locations:
        assert 3.8 <= loc.latitude <= 53.6, loc
        assert 73.4 <= loc.longitude <= 135.1, loc
        assert loc.name
    assert sum(loc.latitude < 18.0 for loc in locations) == 1
    by_id = {loc.id: loc for loc in locations}
    assert by_id["510100"].name == "四川省成都市"
    assert by_id["110100"].name == "北京市"


def test_load_locations_from_json_objects_and_adcodes(tmp_path: Path) -> None:
    path = tmp_path / "locations.json"
    path.write_text(
        json.dumps(
            [
                {"id": "dam-1", "latitude": 30.82, "longitude": 111.0, "name": "三峡大坝"},
                "540100",
                {"id": 510100, "latitude": 30.763, "longitude": 103.8678},
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    locations = load_locations(path)
    assert [loc.id for loc in locations] == ["dam-1", "540100", "510100"]
    assert locations[0] == Location("dam-1", 30.82, 111.0, "三峡大坝")
    assert locations[1].name == "西藏自治区拉萨市"
    assert locations[2].name == ""


def test_load_locations_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "locations.csv"
    path.write_text(
        "\ufeffid,latitude,longitude,name\n"
        "510100,30.763,103.8678,成都\n"
        "\n"
        "station-7, -12.5 ,130.9,\n",
        encoding="utf-8",
    )
    assert load_locations(path) == [
        Location("510100", 30.763, 103.8678, "成都"),
        Location("station-7", -12.5, 130.9, ""),
    ]


def test_load_locations_csv_without_name_column(tmp_path: Path) -> None:
    path = tmp_path / "points.csv"
    path.write_text("id,latitude,longitude\na,1,2\n", encoding="utf-8")
    assert load_locations(path) == [Location("a", 1.0, 2.0)]


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("l.json", '[{"id": "a", "latitude": 1, "longitude": 2}', "line 1"),
        ("l.json", '{"id": "a"}', "JSON array"),
        ("l.json", "[]", "no locations"),
        ("l.json", '[{"id": "a", "latitude": 1}]', r"item \[0\]: missing longitude"),
        ("l.json", '[{"id": "a", "latitude": 1, "longitude": 2}, 7]', r"item \[1\]"),
        ("l.json", '["999999"]', r"item \[0\]: '999999' is not an adcode"),
        ("l.json", '[{"id": "a", "latitude": "1", "longitude": 2}]', r"item \[0\]: latitude"),
        ("l.json", '[{"id": "a", "latitude": 91, "longitude": 2}]', r"item \[0\]: latitude 91"),
        ("l.json", '[{"id": "", "latitude": 1, "longitude": 2}]', r"item \[0\]: id"),
        (
            "l.json",
            '[{"id": "a", "latitude": 1, "longitude": 2}, {"id": "a", "latitude": 1, '
            '"longitude": 3}]',
            r"item \[1\]: duplicate id 'a' \(first at item \[0\]\)",
        ),
        ("l.csv", "id,lat,lon\na,1,2\n", "line 1: .*missing latitude, longitude"),
        ("l.csv", "id,latitude,longitude\na,1,2\nb,north,2\n", "line 3: latitude 'north'"),
        ("l.csv", "id,latitude,longitude\na,1\n", "line 2: missing longitude"),
        ("l.csv", "id,latitude,longitude\na,1,2,3\n", "line 2: more fields"),
        ("l.csv", "id,latitude,longitude\na,1,200\n", "line 2: longitude 200"),
        ("l.csv", "id,latitude,longitude\n", "no locations"),
        ("l.csv", "id,latitude,longitude\na,1,2\na,3,4\n", "line 3: duplicate id 'a'"),
    ],
)
def test_load_locations_rejects_bad_files_naming_file_and_position(
    tmp_path: Path, name: str, content: str, where: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=where) as info:
        load_locations(path)
    assert str(path) in str(info.value)


# --- request URLs ------------------------------------------------------------------------


def test_request_urls_batch_in_order_with_both_urls() -> None:
    locations = default_locations()
    batches = request_urls(
        locations,
        base_url="https://api.open-meteo.com/v1/forecast",
        air_quality_url="https://air-quality-api.open-meteo.com/v1/air-quality",
        batch_size=50,
    )
    assert [len(b) for b, _, _ in batches] == [50] * 7 + [19]
    assert [loc for b, _, _ in batches for loc in b] == locations
    batch, forecast, air = batches[1]
    assert forecast.startswith("https://api.open-meteo.com/v1/forecast?latitude=")
    assert "&timezone=Asia%2FShanghai&" in forecast
    q = parse_qs(urlsplit(forecast).query)
    assert [float(x) for x in q["latitude"][0].split(",")] == [loc.latitude for loc in batch]
    assert [float(x) for x in q["longitude"][0].split(",")] == [loc.longitude for loc in batch]
    assert q["hourly"] == [
        "precipitation,temperature_2m,relative_humidity_2m,wind_speed_10m,wind_gusts_10m,"
        "snowfall,visibility,weather_code"
    ]
    assert (q["wind_speed_unit"], q["timezone"]) == (["ms"], ["Asia/Shanghai"])
    assert (q["past_days"], q["forecast_days"]) == (["1"], ["4"])
    aq = parse_qs(urlsplit(air).query)
    assert air.startswith("https://air-quality-api.open-meteo.com/v1/air-quality?")
    assert aq["hourly"] == ["pm2_5"]
    assert aq["latitude"] == q["latitude"] and aq["longitude"] == q["longitude"]
    assert f"?latitude={q['latitude'][0]}&" in forecast  # commas stay literal, not %2C
    assert "," in q["latitude"][0]


def test_request_urls_options() -> None:
    batches = request_urls(
        THREE,
        base_url="http://x/f?apikey=k",
        air_quality_url="http://x/a",
        batch_size=2,
        past_days=0,
        forecast_days=7,
    )
    assert [[loc.id for loc in b] for b, _, _ in batches] == [["510100", "513300"], ["540100"]]
    assert batches[0][1].startswith("http://x/f?apikey=k&latitude=30.763,31.0893&")
    assert "past_days=0&forecast_days=7" in batches[0][1]
    assert request_urls([], base_url="http://x", air_quality_url="http://y") == []
    with pytest.raises(ValueError, match="batch_size"):
        request_urls(THREE, base_url="http://x", air_quality_url="http://y", batch_size=0)


def test_request_url_batches_parse_back_in_order() -> None:
    (batch, _, _), *_ = request_urls(THREE, base_url="http://x", air_quality_url="http://y")
    frame = parse(read("forecast_3_locations.json"), batch).frame
    assert frame["location_id"].unique().tolist() == [loc.id for loc in THREE]


# --- properties --------------------------------------------------------------------------

FIXTURES = sorted(p.name for p in DATA.glob("*.json"))
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_never_crashes(payload: bytes, locations: list[str] | None = None) -> None:
    try:
        result = parse(payload, locations)
    except FeedFormatError:
        return
    assert isinstance(result, ParseResult)
    assert_schema(result.frame)
    for entry in result.quarantined:
        entry.record_json()  # every quarantined record can be stored


@PROPERTY
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_a_result_or_a_feed_format_error(payload: bytes) -> None:
    parse_never_crashes(payload)


@PROPERTY
@given(st.sampled_from(FIXTURES), st.data())
def test_fixtures_with_slices_deleted_or_replaced(name: str, data: st.DataObject) -> None:
    payload = bytearray(read(name))
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(payload)))
        end = data.draw(st.integers(start, min(len(payload), start + 64)))
        payload[start:end] = data.draw(st.binary(max_size=16))
    parse_never_crashes(bytes(payload))


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=12),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [10**300, -(10**30), 1e308, [], {}, [None], {"a": 1}, "2026-07-20T08:00", ""]
    ).map(copy.deepcopy),
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(paths(value, (*prefix, i)))
    return out


@PROPERTY
@given(st.sampled_from(FIXTURES), st.data())
def test_fixtures_with_values_swapped_for_junk(name: str, data: st.DataObject) -> None:
    tree = copy.deepcopy(doc(name))
    candidates = paths(tree)[1:]
    for _ in range(data.draw(st.integers(1, 6))):
        if not candidates:
            break
        path = data.draw(st.sampled_from(candidates))
        parent = tree
        try:
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = data.draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier swap removed this path
    locations = None
    if data.draw(st.booleans()):
        count = len(tree) if isinstance(tree, list) else 1
        locations = [f"loc{i}" for i in range(count)]
    parse_never_crashes(json.dumps(tree).encode(), locations)
