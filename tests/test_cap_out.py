"""Outgoing CAP 1.2: schema validity, refusals, region polygons, CAP in -> CAP out."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts import cap_out
from alerts.cap_out import (
    BEIJING,
    CapArea,
    CapDocument,
    CapInfo,
    circle_area,
    from_parsed,
    region_polygon,
    to_xml,
    validate,
)
from alerts.feeds import cap
from alerts.model import Hazard, Level
from alerts.regions import load_regions

CAP_DIR = Path(__file__).parent / "data" / "cap"
VALID = sorted(
    p.name for p in [*CAP_DIR.glob("*.cap"), CAP_DIR / "CanadaNaad.xml"] if p.name != "invalid.cap"
)
SENT = datetime(2024, 7, 1, 2, 30, tzinfo=UTC)  # 10:30 Beijing time
NS = {"cap": cap.CAP_NS}


def region_geom(adcode: str) -> Any:
    regions = load_regions()
    index = regions.frame.index[regions.frame["adcode"] == adcode][0]
    return regions.geoms[index]


def parse_ok(xml: bytes) -> pd.DataFrame:
    result = cap.parse(xml)
    assert result.quarantined == [], result.quarantined
    return result.frame


def sample_document(level: Level = Level.ORANGE) -> CapDocument:
    """Bilingual, with parameters, an earthquake circle and a region polygon."""
    ganzi = CapArea(
        desc="四川省甘孜藏族自治州",
        geocodes={"GB/T 2260": ["513300"]},
        polygons=region_polygon(region_geom("513300")),
    )
    epicentre = CapArea(desc="震中周边 50 公里", circles=[circle_area(30.31, 102.95, 50.0)])
    common: dict[str, Any] = {
        "category": Hazard.EARTHQUAKE.cap_category,
        "urgency": "Immediate",
        "severity": level.cap_severity,
        "certainty": "Observed",
        "onset": datetime(2024, 7, 1, 10, 28, 5, tzinfo=BEIJING),
        "expires": datetime(2024, 7, 2, 10, 28, 5, tzinfo=BEIJING),
        "sender_name": "预警中心",
        "web": "https://example.org/alerts/513300?a=1&b=2",
        "event_codes": [("GB/T 35965.1", "11A01")],
        "areas": [epicentre, ganzi],
    }
    zh = CapInfo(
        language="zh-CN",
        event=Hazard.EARTHQUAKE.zh,
        headline=f"甘孜州发布地震{level.zh}预警",
        description="四川甘孜州泸定县发生 6.8 级地震 <震源深度 16 km> & 余震",
        instruction="远离建筑物，注意 \"余震\" 和 '滑坡'",
        parameters=[
            ("level", level.zh),
            ("rule_id", "eq.intensity.v1"),
            ("value", "VIII"),
            ("threshold", "VIII"),
        ],
        **common,
    )
    en = CapInfo(
        language="en-US",
        event="Earthquake",
        headline=f"{level.colour.title()} earthquake warning for Garze",
        description="M6.8 earthquake near Luding, depth 16 km",
        instruction="Stay away from buildings.",
        parameters=[
            ("level", level.colour),
            ("rule_id", "eq.intensity.v1"),
            ("value", "8.2"),
            ("threshold", "8.0"),
        ],
        **common,
    )
    return CapDocument(
        identifier="513300000000001_20240701103000_1",
        sender="alerts@example.org",
        sent=SENT,
        status="Actual",
        msg_type="Alert",
        infos=[zh, en],
    )


# -- the sample document ------------------------------------------------------------


def test_sample_document_validates_and_parses() -> None:
    xml = to_xml(sample_document())
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">' in xml
    assert b"<sent>2024-07-01T10:30:00+08:00</sent>" in xml
    assert b"Z<" not in xml
    validate(xml)

    frame = parse_ok(xml)
    assert list(frame["language"]) == ["zh-CN", "en-US"]
    assert list(frame["level"]) == ["orange", "orange"]
    assert list(frame["severity"]) == ["Severe", "Severe"]
    row = frame.iloc[0]
    assert row["sent"] == pd.Timestamp(SENT)
    assert row["description"] == "四川甘孜州泸定县发生 6.8 级地震 <震源深度 16 km> & 余震"
    assert row["instruction"] == "远离建筑物，注意 \"余震\" 和 '滑坡'"
    assert row["area_desc"] == "震中周边 50 公里; 四川省甘孜藏族自治州"
    assert row["circles"] == [[30.31, 102.95, 50.0]]
    assert row["geocodes"] == {"GB/T 2260": ["513300"]}
    assert row["event_codes"] == {"GB/T 35965.1": ["11A01"]}
    assert len(row["polygons"]) == 1 and len(row["polygons"][0]) <= 100


def test_elements_follow_the_xsd_order() -> None:
    """Every optional element filled in: order errors would fail the schema."""
    doc = dataclasses.replace(
        sample_document(),
        msg_type="Update",
        note="更正 & 补充",
        references=[
            "alerts@example.org,513300000000001_20240701100000_0,2024-07-01T10:00:00+08:00"
        ],
    )
    xml = to_xml(doc)
    validate(xml)
    text = xml.decode()
    order = ["<identifier>", "<sender>", "<sent>", "<status>", "<msgType>", "<scope>"]
    order += ["<note>", "<references>", "<info>"]
    positions = [text.index(tag) for tag in order]
    assert positions == sorted(positions)
    info = text[text.index("<info>") : text.index("</info>")]
    tags = ["<language>", "<category>", "<event>", "<urgency>", "<severity>", "<certainty>"]
    tags += ["<eventCode>", "<onset>", "<expires>", "<senderName>", "<headline>"]
    tags += ["<description>", "<instruction>", "<web>", "<parameter>", "<area>"]
    positions = [info.index(tag) for tag in tags]
    assert positions == sorted(positions)
    area = info[info.index("<area>") :]
    assert area.index("<areaDesc>") < area.index("<circle>")
    last = info[info.rindex("<area>") :]
    assert last.index("<areaDesc>") < last.index("<polygon>") < last.index("<geocode>")


def test_enumerations_match_the_xsd() -> None:
    schema = cap._schema()
    expected = {
        "cap:alert/cap:status": cap_out.STATUSES,
        "cap:alert/cap:msgType": cap_out.MSG_TYPES,
        "cap:alert/cap:scope": cap_out.SCOPES,
        "cap:alert/cap:info/cap:category": cap_out.CATEGORIES,
        "cap:alert/cap:info/cap:urgency": cap_out.URGENCIES,
        "cap:alert/cap:info/cap:severity": cap_out.SEVERITIES,
        "cap:alert/cap:info/cap:certainty": cap_out.CERTAINTIES,
    }
    for path, values in expected.items():
        element: Any = schema.find(path, namespaces=NS)
        assert tuple(element.type.enumeration) == values, path


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        (Level.BLUE, "Minor"),
        (Level.YELLOW, "Moderate"),
        (Level.ORANGE, "Severe"),
        (Level.RED, "Extreme"),
    ],
)
def test_every_level_maps_to_its_cap_severity(level: Level, severity: str) -> None:
    assert level.cap_severity == severity
    xml = to_xml(sample_document(level))
    validate(xml)
    assert xml.count(f"<severity>{severity}</severity>".encode()) == 2
    frame = parse_ok(xml)
    assert list(frame["severity"]) == [severity, severity]
    assert list(frame["level"]) == [level.colour, level.colour]


def test_times_are_beijing_with_explicit_offset() -> None:
    assert cap_out.format_time(datetime(2020, 2, 5, 2, 45, tzinfo=UTC)) == (
        "2020-02-05T10:45:00+08:00"
    )
    # summer 1988, when Asia/Shanghai had daylight time: still +08:00
    assert cap_out.format_time(datetime(1988, 7, 1, 0, 0, 0, 999_999, tzinfo=UTC)) == (
        "1988-07-01T08:00:00+08:00"
    )
    west = timezone(timedelta(hours=-5))
    assert cap_out.format_time(datetime(2024, 1, 1, 20, 0, tzinfo=west)) == (
        "2024-01-02T09:00:00+08:00"
    )


def test_polygon_and_circle_text() -> None:
    area = CapArea(
        desc="x",
        polygons=[[(30.123456, 100.0), (31.0, 100.5), (30.5, -0.000001)]],
        circles=[(30.31, 102.95, 12.34567)],
    )
    info = CapInfo("zh-CN", "Met", "暴雨", "Expected", "Moderate", "Likely", areas=[area])
    doc = CapDocument("id-1", "me@example.org", SENT, "Test", "Alert", infos=[info])
    xml = to_xml(doc)
    validate(xml)
    assert b"<polygon>30.1235,100 31,100.5 30.5,0 30.1235,100</polygon>" in xml
    assert b"<circle>30.31,102.95 12.3457</circle>" in xml


def test_validate_reports_path_and_reason() -> None:
    xml = to_xml(sample_document()).replace(b"<scope>Public</scope>", b"<scope>Everyone</scope>")
    with pytest.raises(ValueError, match=r"/alert/scope: value must be one of"):
        validate(xml)
    with pytest.raises(ValueError, match="not well-formed"):
        validate(b"<alert")
    with pytest.raises(ValueError, match="DTD"):
        validate(b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY a "b">]><alert/>')
    with pytest.raises(ValueError, match=r"at /alert: .*scope"):
        validate((CAP_DIR / "invalid.cap").read_bytes())


# -- refusals ------------------------------------------------------------------------


def _with_info(**changes: Any) -> CapDocument:
    doc = sample_document()
    return dataclasses.replace(doc, infos=[dataclasses.replace(doc.infos[0], **changes)])


def _with_area(**changes: Any) -> CapDocument:
    area = CapArea(desc="区域", polygons=[[(30.0, 100.0), (31.0, 100.0), (31.0, 101.0)]])
    return _with_info(areas=[dataclasses.replace(area, **changes)])


REFUSALS = [
    (lambda: _with_area(polygons=[[(30.0, 100.0), (31.0, 100.0)]]), r"areas\[0\]\.polygons\[0\]"),
    (lambda: _with_area(polygons=[[(30.0, 100.0), (31.0, 100.0), (30.0, 100.0)]]), "at least 4"),
    (lambda: _with_area(polygons=[[(100.0, 30.0), (101.0, 30.0), (101.0, 31.0)]]), "latitude"),
    (lambda: _with_area(polygons=[[(30.0, 100.0), (31.0, math.nan), (31.0, 1.0)]]), "finite"),
    (lambda: _with_area(polygons=[[(30.0, 100.0), (31.0, 200.0), (31.0, 1.0)]]), "longitude"),
    (lambda: _with_area(circles=[(95.0, 100.0, 10.0)]), r"circles\[0\].*latitude"),
    (lambda: _with_area(circles=[(30.0, 100.0, -1.0)]), r"circles\[0\].*radius"),
    (lambda: _with_area(desc=" "), r"areas\[0\]\.desc"),
    (lambda: _with_area(geocodes={"": ["513300"]}), r"geocodes.*valueName"),
    (lambda: dataclasses.replace(sample_document(), sent=datetime(2024, 7, 1)), "sent"),
    (lambda: _with_info(onset=datetime(2024, 7, 1)), r"infos\[0\]\.onset.*naive"),
    (lambda: _with_info(expires=datetime(1800, 1, 1, tzinfo=UTC)), r"infos\[0\]\.expires"),
    (lambda: dataclasses.replace(sample_document(), identifier=""), "identifier"),
    (lambda: dataclasses.replace(sample_document(), identifier="a b"), "identifier"),
    (lambda: dataclasses.replace(sample_document(), sender="  "), "sender"),
    (lambda: dataclasses.replace(sample_document(), sender="a,b"), "sender"),
    (lambda: dataclasses.replace(sample_document(), status="Actua"), "status"),
    (lambda: dataclasses.replace(sample_document(), msg_type="Alarm"), "msg_type"),
    (lambda: dataclasses.replace(sample_document(), scope="Everyone"), "scope"),
    (lambda: dataclasses.replace(sample_document(), references=["a,b"]), r"references\[0\]"),
    (lambda: dataclasses.replace(sample_document(), note="bell \x07"), "note"),
    (lambda: _with_info(urgency="Now"), r"infos\[0\]\.urgency"),
    (lambda: _with_info(severity="High"), r"infos\[0\]\.severity"),
    (lambda: _with_info(severity="severe"), r"infos\[0\]\.severity"),
    (lambda: _with_info(certainty="Sure"), r"infos\[0\]\.certainty"),
    (lambda: _with_info(category="Weather"), r"infos\[0\]\.category"),
    (lambda: _with_info(category="Geo; Met"), r"infos\[0\]\.category"),
    (lambda: _with_info(language="zh_CN"), r"infos\[0\]\.language"),
    (lambda: _with_info(event=""), r"infos\[0\]\.event"),
    (lambda: _with_info(headline="a\x00b"), r"infos\[0\]\.headline"),
    (lambda: _with_info(web="http://a b"), r"infos\[0\]\.web"),
    (lambda: _with_info(parameters=[("level",)]), r"infos\[0\]\.parameters\[0\]"),
]


@pytest.mark.parametrize(("build", "field"), REFUSALS)
def test_refusals_name_the_field(build: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        to_xml(build())


def test_circle_area_checks() -> None:
    assert circle_area(30.31, 102.95, 50) == (30.31, 102.95, 50.0)
    with pytest.raises(ValueError, match="latitude"):
        circle_area(102.95, 30.31, 50)
    with pytest.raises(ValueError, match="radius"):
        circle_area(30.31, 102.95, math.inf)


# -- region polygons ------------------------------------------------------------------


def _check_ring(ring: list[tuple[float, float]], geom: Any, max_points: int) -> None:
    assert 4 <= len(ring) <= max_points
    assert ring[0] == ring[-1]
    minx, miny, maxx, maxy = geom.bounds
    for lat, lon in ring:  # latitude first: inside the region's bbox, lat on the y axis
        assert miny - 1e-4 <= lat <= maxy + 1e-4
        assert minx - 1e-4 <= lon <= maxx + 1e-4
        assert round(lat, 4) == lat and round(lon, 4) == lon


def test_region_polygon_ganzi() -> None:
    geom = region_geom("513300")
    assert shapely.get_num_coordinates(geom) > 100  # simplification is really needed
    (ring,) = region_polygon(geom)
    _check_ring(ring, geom, 100)
    shape = shapely.Polygon([(lon, lat) for lat, lon in ring])
    assert shape.is_valid
    # still the region: the simplified outline covers nearly the same ground
    assert shape.symmetric_difference(geom).area / geom.area < 0.05


def test_region_polygon_every_region_fits() -> None:
    regions = load_regions()
    for adcode, geom in zip(regions.frame["adcode"], regions.geoms, strict=True):
        polygons = region_polygon(geom)
        assert len(polygons) == 1, adcode
        _check_ring(polygons[0], geom, 100)


@pytest.mark.parametrize("max_points", [4, 5, 12, 40])
def test_region_polygon_respects_max_points(max_points: int) -> None:
    geom = region_geom("513300")
    (ring,) = region_polygon(geom, max_points=max_points)
    _check_ring(ring, geom, max_points)


def test_region_polygon_keeps_the_largest_part_only() -> None:
    big = shapely.box(100.0, 30.0, 102.0, 31.0)
    islet = shapely.box(110.0, 18.0, 110.1, 18.1)
    holed = shapely.Polygon(big.exterior.coords, [shapely.box(100.5, 30.2, 100.6, 30.3).exterior])
    (ring,) = region_polygon(shapely.MultiPolygon([islet, holed]))
    assert {(lat, lon) for lat, lon in ring} == {(30.0, 100.0), (31.0, 100.0), (30.0, 102.0),
                                                  (31.0, 102.0)}  # fmt: skip
    assert len(ring) == 5


def test_region_polygon_refuses_what_is_not_a_polygon() -> None:
    with pytest.raises(ValueError, match="geom"):
        region_polygon(shapely.Point(100.0, 30.0))
    with pytest.raises(ValueError, match="max_points"):
        region_polygon(region_geom("513300"), max_points=3)


# -- CAP in -> CAP out ----------------------------------------------------------------


def _same_instant(a: Any, b: Any) -> bool:
    if pd.isna(a) or pd.isna(b):
        return bool(pd.isna(a) and pd.isna(b))
    return pd.Timestamp(a) == pd.Timestamp(b)


def _close(a: Any, b: Any, tol: float = 1e-4 + 1e-9) -> bool:
    if isinstance(a, list | tuple):
        return (
            isinstance(b, list | tuple)
            and len(a) == len(b)
            and all(_close(x, y, tol) for x, y in zip(a, b, strict=True))
        )
    return abs(float(a) - float(b)) <= tol


@pytest.mark.parametrize("name", VALID)
def test_round_trip_of_recorded_documents(name: str) -> None:
    original = parse_ok((CAP_DIR / name).read_bytes())
    assert len(original) >= 1
    for row in original.to_dict("records"):
        xml = to_xml(from_parsed(row))
        validate(xml)
        again = parse_ok(xml)
        assert len(again) == 1
        back = again.iloc[0].to_dict()
        for key in ("identifier", "sender", "references", "severity", "msg_type", "status"):
            assert back[key] == row[key], key
        for key in ("area_desc", "geocodes", "language", "event", "urgency", "certainty"):
            assert back[key] == row[key], key
        for key in ("headline", "description", "instruction", "level", "event_codes"):
            assert back[key] == row[key], key
        assert back["category"] == row["category"].split(";")[0].strip()
        assert _close(back["polygons"], row["polygons"])
        assert _close(back["circles"], row["circles"])
        for key in ("sent", "onset", "expires"):
            assert _same_instant(back[key], row[key]), key


def test_from_parsed_keeps_the_references_of_an_update() -> None:
    frame = parse_ok((CAP_DIR / "canada.cap").read_bytes())
    doc = from_parsed(frame.iloc[0].to_dict())
    assert doc.msg_type == "Update"
    assert doc.references == list(frame.iloc[0]["references"])
    assert len(doc.references) == 2
    assert doc.infos[0].category == "Met"
    assert doc.sent.utcoffset() is not None


# -- random documents ------------------------------------------------------------------

_SPECIAL = st.sampled_from(["&", "<", ">", '"', "'", "]]>", "&amp;", " ", "\n", "\t", "　"])
_CHARS = st.one_of(
    _SPECIAL,
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),
    st.characters(exclude_categories=("Cc", "Cs", "Cn", "Co")),
)
texts = st.lists(_CHARS, max_size=12).map("".join)
_VISIBLE = st.one_of(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E),
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),
)
nonblank = st.tuples(texts, _VISIBLE, texts).map("".join)
idents = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=",<&"),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5),
    ),
    min_size=1,
    max_size=24,
)
zones = st.sampled_from([UTC, BEIJING, timezone(timedelta(hours=-3, minutes=-30))])
times = st.datetimes(
    min_value=datetime(1950, 1, 1), max_value=datetime(2150, 1, 1), timezones=zones
)
lats = st.floats(-90, 90, allow_nan=False)
lons = st.floats(-180, 180, allow_nan=False)


def _distinct(points: list[tuple[float, float]]) -> bool:
    return len({(round(a, 4), round(b, 4)) for a, b in points}) == len(points)


polygons = st.lists(st.tuples(lats, lons), min_size=3, max_size=7).filter(_distinct)
circles = st.tuples(lats, lons, st.floats(0, 20_000, allow_nan=False))
pairs = st.tuples(nonblank, texts)
areas = st.builds(
    CapArea,
    desc=nonblank,
    geocodes=st.dictionaries(nonblank, st.lists(texts, min_size=1, max_size=3), max_size=2),
    polygons=st.lists(polygons, max_size=2),
    circles=st.lists(circles, max_size=2),
)


@st.composite
def infos(draw: st.DrawFn) -> tuple[CapInfo, Level]:
    level = draw(st.sampled_from(list(Level)))
    word = draw(st.sampled_from([level.colour, level.zh, f"{level.zh}预警"]))
    extra = draw(st.lists(st.tuples(texts.map(lambda s: "x-" + s), texts), max_size=2))
    info = CapInfo(
        language=draw(st.sampled_from(["zh-CN", "en-US", "zh-TW", "zh-Hant-TW", "ug"])),
        category=draw(st.sampled_from(cap_out.CATEGORIES)),
        event=draw(nonblank),
        urgency=draw(st.sampled_from(cap_out.URGENCIES)),
        severity=level.cap_severity,
        certainty=draw(st.sampled_from(cap_out.CERTAINTIES)),
        onset=draw(st.none() | times),
        expires=draw(st.none() | times),
        headline=draw(st.none() | texts),
        description=draw(st.none() | texts),
        instruction=draw(st.none() | texts),
        sender_name=draw(st.none() | texts),
        web=draw(st.none() | st.just("https://example.org/a?b=1&c=<2>")),
        event_codes=draw(st.lists(pairs, max_size=2)),
        parameters=[("level", word), *extra],
        areas=draw(st.lists(areas, max_size=3)),
    )
    return info, level


@st.composite
def documents(draw: st.DrawFn) -> tuple[CapDocument, list[Level]]:
    drawn = draw(st.lists(infos(), min_size=1, max_size=2))
    references = draw(
        st.lists(
            st.builds(lambda s, i, t: f"{s},{i},{cap_out.format_time(t)}", idents, idents, times),
            max_size=2,
        )
    )
    doc = CapDocument(
        identifier=draw(idents),
        sender=draw(idents),
        sent=draw(times),
        status=draw(st.sampled_from(cap_out.STATUSES)),
        msg_type=draw(st.sampled_from(cap_out.MSG_TYPES)),
        scope=draw(st.sampled_from(cap_out.SCOPES)),
        references=references,
        note=draw(st.none() | texts),
        infos=[info for info, _ in drawn],
    )
    return doc, [level for _, level in drawn]


def _stripped(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


def _same_text(parsed: Any, expected: str | None) -> bool:
    """pandas may hold a missing string as None or NaN."""
    return parsed == expected or (expected is None and _missing(parsed))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _whole_seconds(value: datetime | None) -> Any:
    return pd.NaT if value is None else pd.Timestamp(value.replace(microsecond=0))


def _expected_polygon(points: list[tuple[float, float]]) -> list[list[float]]:
    ring = [[round(lat, 4), round(lon, 4)] for lat, lon in points]
    return [*ring, ring[0]]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_random_documents_validate_and_round_trip(drawn: tuple[CapDocument, list[Level]]) -> None:
    doc, levels = drawn
    xml = to_xml(doc)
    validate(xml)
    frame = parse_ok(xml)
    assert len(frame) == len(doc.infos)
    for (_, row), info, level in zip(frame.iterrows(), doc.infos, levels, strict=True):
        assert row["identifier"] == doc.identifier
        assert row["sender"] == doc.sender
        assert row["references"] == doc.references
        assert row["status"] == doc.status and row["msg_type"] == doc.msg_type
        assert _same_instant(row["sent"], _whole_seconds(doc.sent))
        assert _same_instant(row["onset"], _whole_seconds(info.onset))
        assert _same_instant(row["expires"], _whole_seconds(info.expires))
        assert row["language"] == cap.normalise_language(info.language)
        assert row["category"] == info.category
        assert row["event"] == info.event.strip()
        assert row["severity"] == level.cap_severity
        assert row["level"] == level.colour
        for key in ("headline", "description", "instruction"):
            assert _same_text(row[key], _stripped(getattr(info, key))), key

        descs = [area.desc.strip() for area in info.areas]
        assert _same_text(row["area_desc"], "; ".join(descs) if descs else None)
        expected_polygons = [_expected_polygon(p) for a in info.areas for p in a.polygons]
        assert row["polygons"] == expected_polygons
        expected_circles = [list(c) for a in info.areas for c in a.circles]
        assert _close(row["circles"], expected_circles)
        geocodes: dict[str, list[str]] = {}
        for area in info.areas:
            for name, values in area.geocodes.items():
                merged = geocodes.setdefault(name.strip(), [])
                for value in values:
                    if value.strip() not in merged:
                        merged.append(value.strip())
        assert row["geocodes"] == geocodes
        codes: dict[str, list[str]] = {}
        for name, value in info.event_codes:
            codes.setdefault(name.strip(), []).append(value.strip())
        assert row["event_codes"] == codes
