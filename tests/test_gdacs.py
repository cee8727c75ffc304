"""GDACS RSS parser: recorded feeds, colour mapping, quarantine, fuzzing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.feeds import gdacs
from alerts.feeds.base import OFFICIAL_COLUMNS, FeedFormatError, ParseResult

GDACS_DIR = Path(__file__).parent / "data" / "gdacs"


def read(name: str) -> bytes:
    return (GDACS_DIR / name).read_bytes()


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


ITEM_DEFAULTS: dict[str, str | None] = {
    "title": "Orange alert for flood in Spain",
    "description": "Flooding in Valencia.",
    "pubDate": "Tue, 29 Oct 2024 12:00:00 GMT",
    "eventtype": "FL",
    "eventid": "1102983",
    "episodeid": "1",
    "alertlevel": "Orange",
    "alertscore": "2",
    "iscurrent": "true",
    "fromdate": "Sun, 27 Oct 2024 15:00:00 GMT",
    "todate": "Mon, 04 Nov 2024 11:00:00 GMT",
    "iso3": "ESP",
    "country": "Spain",
    "point": "39.47 -0.38",
}
GDACS_TAGS = {"eventtype", "eventid", "episodeid", "alertlevel", "alertscore", "iscurrent"}
GDACS_TAGS |= {"fromdate", "todate", "iso3", "country"}


def item(**fields: str | None) -> str:
    """One RSS item like GDACS's, with fields overridden (None drops the element)."""
    values = {**ITEM_DEFAULTS, **fields}
    parts = []
    for name, value in values.items():
        if value is None:
            continue
        if name == "point":
            parts.append(f"<georss:point>{value}</georss:point>")
        elif name in GDACS_TAGS:
            parts.append(f"<gdacs:{name}>{value}</gdacs:{name}>")
        else:
            parts.append(f"<{name}>{value}</{name}>")
    parts.append('<gdacs:severity unit="km2" value="1500.5">Flooded area</gdacs:severity>')
    parts.append('<gdacs:population unit="" value="12000" />')
    return "<item>" + "".join(parts) + "</item>"


def feed(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:gdacs="http://www.gdacs.org" '
        'xmlns:georss="http://www.georss.org/georss" '
        'xmlns:geo="http://www.w3.org/2003/01/geo/wgs84_pos#">'
        "<channel><title>GDACS</title>" + "".join(items) + "</channel></rss>"
    ).encode()


def one(**fields: str | None) -> pd.Series:
    result = gdacs.parse(feed(item(**fields)))
    assert result.quarantined == []
    return result.frame.iloc[0]


# -- recorded feeds ----------------------------------------------------------------


def test_official_columns_come_first_then_the_gdacs_ones() -> None:
    columns = list(gdacs.GDACS_COLUMNS)
    assert columns[: len(OFFICIAL_COLUMNS)] == list(OFFICIAL_COLUMNS)
    assert columns[len(OFFICIAL_COLUMNS) :] == [
        "alert_score",
        "severity_value",
        "severity_unit",
        "population",
        "event_type",
        "event_id",
        "episode_id",
        "country",
        "latitude",
        "longitude",
    ]


def test_recorded_feed_yields_one_row_per_item() -> None:
    result = gdacs.parse(read("gdacs-rss-1.xml"))
    assert result.quarantined == []
    frame = result.frame
    assert list(frame.columns) == list(gdacs.GDACS_COLUMNS)
    assert list(frame["identifier"]) == [
        "TC1000643_1",
        "EQ1199929_1287798",
        "DR1013682_1",
        "DR1013588_1",
    ]
    assert (frame["source"] == "gdacs").all()
    assert (frame["sender"] == "gdacs.org").all()
    assert (frame["status"] == "Actual").all()
    assert (frame["msg_type"] == "Alert").all()
    assert (frame["language"] == "en").all()
    assert all(refs == [] for refs in frame["references"])
    for col in ("sent", "onset", "expires"):
        assert str(frame[col].dt.tz) == "UTC"


def test_recorded_cyclone_row_spot_checked_against_the_feed() -> None:
    row = gdacs.parse(read("gdacs-rss-1.xml")).frame.iloc[0]
    assert (row["event"], row["category"]) == ("Tropical cyclone", "Met")
    assert row["headline"].startswith("Green alert for tropical cyclone CALVINIA-19")
    assert row["description"].startswith("From 29/12/2019 to 29/12/2019")
    assert row["sent"] == utc("2019-12-29T12:00:00Z")
    assert row["onset"] == utc("2019-12-29T12:00:00Z")
    assert pd.isna(row["expires"])  # still current: todate is not an end
    assert (row["severity"], row["level"]) == ("Minor", None)  # Green
    assert (row["urgency"], row["certainty"]) == ("Unknown", "Observed")
    assert row["area_desc"] == "Mauritius"
    assert row["polygons"] == []
    assert row["circles"] == [[-19.4, 59.8, 0.0]]  # lat, lon, radius 0
    assert row["geocodes"] == {"iso3": ["MUS"]}
    assert row["alert_score"] == 1.0
    assert (row["severity_value"], row["severity_unit"]) == (92.592, "km/h")
    assert row["population"] == 0.0
    assert (row["event_type"], row["event_id"], row["episode_id"]) == ("TC", "1000643", "1")
    assert (row["latitude"], row["longitude"]) == (-19.4, 59.8)


def test_recorded_earthquake_and_drought_rows() -> None:
    frame = gdacs.parse(read("gdacs-rss-1.xml")).frame
    quake, drought = frame.iloc[1], frame.iloc[2]
    assert (quake["event"], quake["category"]) == ("Earthquake", "Geo")
    assert (quake["severity_value"], quake["severity_unit"]) == (5.5, "M")
    assert quake["alert_score"] == 0.01
    assert quake["circles"] == [[-44.5653, 37.087, 0.0]]
    assert (drought["event"], drought["category"]) == ("Drought", "Met")
    assert drought["onset"] == utc("2019-10-21T00:00:00Z")
    assert drought["area_desc"] == "Bulgaria, Iraq, Iran, Turkey"
    assert drought["geocodes"] == {"iso3": ["BGR"]}
    assert drought["population"] == 0.0  # value="0" with an empty unit


def test_recorded_item_with_only_a_bounding_box_is_quarantined() -> None:
    result = gdacs.parse(read("gdacs-rss-2.xml"))
    assert result.frame.empty
    assert list(result.frame.columns) == list(gdacs.GDACS_COLUMNS)
    (q,) = result.quarantined
    assert q.source == "gdacs"
    assert q.record_key == "TC1000643"
    assert q.reason.startswith("items[0]: ")
    for field in ("eventtype", "eventid", "episodeid", "point"):
        assert f"{field}: Field required" in q.reason
    q.record_json()


# -- colour, level, severity -----------------------------------------------------------


@pytest.mark.parametrize(
    ("alertlevel", "alertscore", "colour"),
    [
        ("Green", None, "Green"),
        ("Orange", None, "Orange"),
        ("Red", None, "Red"),
        ("red", None, "Red"),
        (" ORANGE ", None, "Orange"),
        ("Green", 1.0, "Green"),  # stated level wins (GDACS's own feed: Green, score 1)
        ("Red", 0.1, "Red"),
        (None, 3.0, "Red"),
        (None, 2.0, "Red"),
        (None, 1.99, "Orange"),
        (None, 1.0, "Orange"),
        (None, 0.99, "Green"),
        (None, 0.0, "Green"),
        (None, None, None),
        ("", None, None),
        (None, float("nan"), None),
    ],
)
def test_alert_colour_is_the_stated_level_else_derived_from_the_score(
    alertlevel: str | None, alertscore: float | None, colour: str | None
) -> None:
    assert gdacs.alert_colour(alertlevel, alertscore) == colour


@pytest.mark.parametrize(
    ("alertlevel", "alertscore", "level", "severity"),
    [
        ("Green", "1", None, "Minor"),
        ("Orange", "2", "orange", "Severe"),
        ("Red", "3", "red", "Extreme"),
        (None, "2.5", "red", "Extreme"),
        (None, "1.5", "orange", "Severe"),
        (None, "0.5", None, "Minor"),
        (None, None, None, "Unknown"),
    ],
)
def test_level_and_severity_follow_the_alert_colour(
    alertlevel: str | None, alertscore: str | None, level: str | None, severity: str
) -> None:
    row = one(alertlevel=alertlevel, alertscore=alertscore)
    assert row["level"] == level
    assert row["severity"] == severity


def test_missing_alertlevel_is_derived_from_the_score_and_the_score_is_kept() -> None:
    row = one(alertlevel=None, alertscore="2.4")
    assert (row["level"], row["alert_score"]) == ("red", 2.4)
    assert pd.isna(one(alertscore=None)["alert_score"])


@pytest.mark.parametrize(
    ("eventtype", "event", "category"),
    [
        ("EQ", "Earthquake", "Geo"),
        ("TC", "Tropical cyclone", "Met"),
        ("FL", "Flood", "Met"),
        ("VO", "Volcano", "Geo"),
        ("DR", "Drought", "Met"),
        ("WF", "Wildfire", "Fire"),
        ("TS", "Tsunami", "Geo"),
        ("ls", "LS", "Other"),  # a type GDACS may add later still flows
    ],
)
def test_event_type_maps_to_readable_event_and_cap_category(
    eventtype: str, event: str, category: str
) -> None:
    row = one(eventtype=eventtype)
    assert (row["event"], row["category"]) == (event, category)
    assert row["event_type"] == eventtype.upper()


def test_synthetic_item_carries_every_field() -> None:
    row = one()
    assert row["identifier"] == "FL1102983_1"
    assert row["headline"] == "Orange alert for flood in Spain"
    assert row["sent"] == utc("2024-10-29T12:00:00Z")
    assert row["onset"] == utc("2024-10-27T15:00:00Z")
    assert (row["severity_value"], row["severity_unit"], row["population"]) == (
        1500.5,
        "km2",
        12000.0,
    )
    assert row["circles"] == [[39.47, -0.38, 0.0]]
    assert row["instruction"] is None


def test_finished_event_expires_at_todate_and_is_not_observed() -> None:
    row = one(iscurrent="false")
    assert row["expires"] == utc("2024-11-04T11:00:00Z")
    assert row["certainty"] == "Unknown"


def test_several_iso3_codes_become_a_list_and_none_an_empty_dict() -> None:
    assert one(iso3="ESP, PRT")["geocodes"] == {"iso3": ["ESP", "PRT"]}
    assert one(iso3=None)["geocodes"] == {}


def test_geo_point_is_used_when_georss_point_is_missing() -> None:
    geo = "<geo:Point><geo:lat>-19.4</geo:lat><geo:long>59.8</geo:long></geo:Point>"
    text = item(point=None).replace("</item>", geo + "</item>")
    row = gdacs.parse(feed(text)).frame.iloc[0]
    assert row["circles"] == [[-19.4, 59.8, 0.0]]


def test_rfc822_offsets_are_converted_to_utc() -> None:
    row = one(pubDate="Tue, 29 Oct 2024 14:00:00 +0200")
    assert row["sent"] == utc("2024-10-29T12:00:00Z")


# -- quarantine and whole-document failures ------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"pubDate": "yesterday"}, "pubDate"),
        ({"pubDate": None}, "pubDate"),
        ({"pubDate": "Thu, 01 Jan 2300 00:00:00 GMT"}, "pubDate"),
        ({"fromdate": "29/12/2019"}, "fromdate"),
        ({"point": "95.0 10.0"}, "point"),
        ({"point": "10.0"}, "point"),
        ({"point": "abc def"}, "point"),
        ({"alertlevel": "Purple"}, "alertlevel"),
        ({"alertscore": "high"}, "alertscore"),
        ({"alertscore": "nan"}, "alertscore"),
        ({"eventid": None}, "eventid"),
        ({"eventid": "12 34"}, "eventid"),
        ({"eventtype": "EARTHQUAKE"}, "eventtype"),
        ({"iscurrent": "maybe"}, "iscurrent"),
    ],
)
def test_malformed_item_is_quarantined_naming_the_field_and_the_rest_flows(
    fields: dict[str, str | None], field: str
) -> None:
    result = gdacs.parse(feed(item(eventid="1"), item(**fields), item(eventid="3")))
    assert list(result.frame["event_id"]) == ["1", "3"]
    (q,) = result.quarantined
    assert q.reason.startswith(f"items[1]: {field}")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b'{"features": []}',
        b"<html><body><h1>503 Service Unavailable</h1></body></html>",
        b'<feed xmlns="http://www.w3.org/2005/Atom"></feed>',
        b'<rss version="2.0"></rss>',
        read("gdacs-rss-1.xml")[:5000],
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<rss><channel><item><title>&x;</title></item></channel></rss>",
    ],
    ids=["empty", "json", "html", "atom", "no-channel", "truncated", "xxe"],
)
def test_not_rss_or_not_xml_raises_feed_format_error(payload: bytes) -> None:
    with pytest.raises(FeedFormatError, match=r"^gdacs: "):
        gdacs.parse(payload)


def test_feed_without_items_is_an_empty_frame_with_the_columns() -> None:
    result = gdacs.parse(feed())
    assert result.frame.empty and result.quarantined == []
    assert list(result.frame.columns) == list(gdacs.GDACS_COLUMNS)


# -- property-based ------------------------------------------------------------------

FIXTURE_BYTES = [read("gdacs-rss-1.xml"), read("gdacs-rss-2.xml"), feed(item(), item())]
TOKENS = [b"<", b">", b"&", b"]]>", b"<!DOCTYPE a>", b"\x00", b"\xff", b"</item>", b"-91"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(FIXTURE_BYTES))
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(data)))
        end = draw(st.integers(start, min(len(data), start + 80)))
        junk = draw(st.one_of(st.binary(max_size=12), st.sampled_from(TOKENS)))
        op = draw(st.sampled_from(["delete", "insert", "replace"]))
        if op == "delete":
            data = data[:start] + data[end:]
        elif op == "insert":
            data = data[:start] + junk + data[start:]
        else:
            data = data[:start] + junk + data[end:]
    return data


def _parse_or_refuse(payload: bytes) -> None:
    try:
        result = gdacs.parse(payload)
    except FeedFormatError as exc:
        assert str(exc).startswith("gdacs: ")
        return
    assert isinstance(result, ParseResult)
    assert list(result.frame.columns) == list(gdacs.GDACS_COLUMNS)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_a_result_or_feed_format_error(payload: bytes) -> None:
    _parse_or_refuse(payload)


@FUZZ
@given(mutated())
def test_mutated_fixtures_give_a_result_or_feed_format_error(payload: bytes) -> None:
    _parse_or_refuse(payload)
