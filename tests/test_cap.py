"""CAP 1.2 parser and Atom index: recorded documents, hostile XML, quarantine, fuzzing."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.feeds import cap
from alerts.feeds.base import OFFICIAL_COLUMNS, FeedFormatError, ParseResult

CAP_DIR = Path(__file__).parent / "data" / "cap"
VALID = [
    "wcatwc-warning.cap",
    "earthquake-iso8859-1.cap",
    "australia.cap",
    "australia_bom.cap",
    "canada.cap",
    "CanadaNaad.xml",
    "taiwan.cap",
    "iceland_met_office.cap",
]
ATOMS = ["us_nws_weather.atom", "usgs_alerthub.atom"]


def read(name: str) -> bytes:
    return (CAP_DIR / name).read_bytes()


def parse(name: str) -> pd.DataFrame:
    result = cap.parse(read(name))
    assert result.quarantined == []
    return result.frame


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


# -- recorded documents ------------------------------------------------------------


@pytest.mark.parametrize("name", VALID)
def test_every_recorded_document_parses_into_the_official_columns(name: str) -> None:
    frame = parse(name)
    assert list(frame.columns) == list(cap.CAP_COLUMNS)
    assert len(frame) >= 1
    assert (frame["source"] == "cap").all()
    for col in ("sent", "onset", "expires"):
        assert isinstance(frame[col].dtype, pd.DatetimeTZDtype)
        assert str(frame[col].dt.tz) == "UTC"


def test_wcatwc_update_keeps_identifier_sender_msg_type_and_references() -> None:
    row = parse("wcatwc-warning.cap").iloc[0]
    assert row["identifier"] == "PAAQ-2-lqw6d6"
    assert row["sender"] == "http://newwcatwc.arh.noaa.gov/tsuPortal/"
    assert row["msg_type"] == "Update"
    assert row["status"] == "Actual"
    assert row["references"] == ["PAAQ,PAAQ-1-lqw6d6,2011-09-02T10:55:55-00:00"]
    assert row["sent"] == utc("2011-09-02T11:36:50Z")
    assert row["onset"] == utc("2011-09-02T11:36:50Z")
    assert row["expires"] == utc("2011-09-02T12:36:50Z")
    assert (row["event"], row["category"], row["severity"]) == ("Tsunami Warning", "Geo", "Extreme")
    assert (row["urgency"], row["certainty"]) == ("Immediate", "Likely")
    assert row["language"] == "en-US"  # no <language>: the CAP default
    assert row["geocodes"] == {"UGC": ["AKZ185", "AKZ187"]}
    assert row["level"] is None


def test_canada_update_splits_references_on_whitespace_and_keeps_two_languages() -> None:
    frame = parse("canada.cap")
    assert list(frame["language"]) == ["en-CA", "fr-CA"]
    assert frame.iloc[0]["references"] == [
        "cap@ec.gc.ca,2.49.0.1.124.a3f342a4.2012,2012-05-02T21:45:05-00:00",
        "cap@ec.gc.ca,2.49.0.1.124.60f31a3a.2012,2012-05-02T21:55:21-00:00",
    ]
    assert frame.iloc[1]["event"] == "orages"
    assert frame.iloc[0]["area_desc"] == (
        "Windsor - Leamington - Essex County; Chatham-Kent - Rondeau Park"
    )


def test_polygons_keep_cap_latitude_first_order() -> None:
    row = parse("canada.cap").iloc[0]
    assert len(row["polygons"]) == 2
    first = row["polygons"][0]
    assert first[0] == [42.3481, -82.9314]  # lat, lon: Ontario, not Antarctica
    assert first[0] == first[-1]
    assert all(40 < lat < 43 and -84 < lon < -81 for lat, lon in first)
    assert row["geocodes"]["layer:EC-MSC-SMC:1.0:CLC"] == ["041420", "041410"]


def test_iceland_yields_one_row_per_language_with_the_colour_parameter() -> None:
    frame = parse("iceland_met_office.cap")
    assert list(frame["language"]) == ["is-IS", "en-US"]
    assert list(frame["level"]) == ["yellow", "yellow"]
    assert frame.iloc[0]["headline"] == "Hvöss suðaustanátt"
    assert frame.iloc[1]["headline"] == "Southeast gales"
    assert frame.iloc[1]["polygons"][0][0] == [64.17, -22.04]
    assert frame.iloc[0]["geocodes"] == {"Spásvæði": ["Höfuðborgarsvæðið"]}
    assert (frame["identifier"] == "is-IMO-2a4c2db8-07fd-4a0f-b372-9667280d46d1").all()


def test_taiwan_with_a_byte_order_mark_is_zh_tw_and_red() -> None:
    payload = read("taiwan.cap")
    assert payload.startswith(b"\xef\xbb\xbf")
    row = cap.parse(payload).frame.iloc[0]
    assert row["language"] == "zh-TW"  # the document says zh-tw
    assert row["event"] == "水庫洩洪"
    assert row["headline"] == "明德水庫:洩洪中"
    assert row["area_desc"] == "苗栗縣頭屋鄉"
    assert row["level"] == "red"  # alert_color 紅色 (traditional script)
    assert row["sent"] == utc("2014-05-14T12:10:00Z")  # +08:00
    assert row["geocodes"] == {"Taiwan_Geocode_100": ["1000512"]}


def test_iso_8859_1_declaration_is_honoured() -> None:
    payload = read("earthquake-iso8859-1.cap")
    assert b"Usulut\xe1n" in payload  # Latin-1 a-acute, not UTF-8
    row = cap.parse(payload).frame.iloc[0]
    assert row["headline"] == "EQ 4.6 Usulután, Usulután, El Salvador - PRELIMINARY REPORT"
    assert "Usulután" in row["area_desc"]
    assert row["circles"] == [[12.747, -88.783, 0.0]]
    assert row["onset"] == utc("2012-10-14T22:40:56Z")
    assert row["language"] == "en-US"


def test_cap_prefix_documents_parse_like_default_namespace_ones() -> None:
    frame = parse("australia.cap")
    row = frame.iloc[0]
    assert row["identifier"] == "tag:www.rfs.nsw.gov.au2011-10-06:40184"
    assert row["sent"] == utc("2011-10-05T13:04:00Z")  # +10:00
    assert row["category"] == "Fire; Met"
    assert row["circles"] == [[-35.3888, 147.0598, 25.0]]
    assert row["geocodes"] == {"http://www.iso.org/iso/country_codes.html": ["AU-NSW"]}
    # CAP-AU repeats the info block per geocode scheme, same language
    assert list(frame["language"]) == ["en-AU", "en-AU"]

    bom = parse("australia_bom.cap").iloc[0]
    assert bom["sender"] == "CAP.Message@bom.gov.au"
    assert bom["severity"] == "Unknown"
    assert bom["geocodes"]["AMOC-AreaCode"][:2] == ["NSW_PW002", "NSW_PW003"]
    assert bom["description"].startswith("Severe thunderstorms")  # stripped


def test_naad_document_with_xml_signatures_is_accepted() -> None:
    frame = parse("CanadaNaad.xml")
    assert list(frame["language"]) == ["en-CA", "fr-CA"]
    assert frame.iloc[0]["identifier"] == "urn:oid:2.49.0.1.124.3026064006.2019"
    assert frame.iloc[0]["references"] == []  # <references /> is empty
    assert frame.iloc[0]["polygons"][0][0] == [47.5744, -58.4207]


# -- whole-document failures ---------------------------------------------------------


def test_invalid_cap_is_rejected_naming_the_path_and_the_missing_scope() -> None:
    with pytest.raises(FeedFormatError) as info:
        cap.parse(read("invalid.cap"))
    message = str(info.value)
    assert message.startswith("cap: ")
    assert "'12345'" in message
    assert "schema validation at /alert:" in message
    assert "scope" in message


def test_schema_error_inside_an_info_block_names_the_element_path() -> None:
    payload = read("wcatwc-warning.cap").replace(
        b"<severity>Extreme</severity>", b"<severity>Apocalyptic</severity>"
    )
    with pytest.raises(FeedFormatError, match=r"/alert/info(\[1\])?/severity"):
        cap.parse(payload)


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE alert SYSTEM "http://attacker.invalid/cap.dtd">
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>"""

HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center>"
    b"<h1>502 Bad Gateway</h1></center><hr/><center>nginx</center></body></html>"
)
HTML5_ERROR_PAGE = b"<!DOCTYPE html><html><body><p>Service unavailable<br></p></body></html>"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (XXE, "refused"),
        (EXTERNAL_DTD, "refused"),
        (BILLION_LAUGHS, "refused"),
        (read("wcatwc-warning.cap")[:700], "not well-formed"),
        (b"", "not well-formed"),
        (b'{"error": "not xml"}', "not well-formed"),
        (HTML_ERROR_PAGE, "root element is <html>"),
        (HTML5_ERROR_PAGE, "refused"),
        (read("us_nws_weather.atom"), "root element is <feed>"),
        (b"<alert><identifier>x</identifier></alert>", "no namespace"),
        (b"<a>" * 40 + b"</a>" * 40, "deeper than"),
    ],
    ids=[
        "xxe",
        "external-dtd",
        "billion-laughs",
        "truncated",
        "empty",
        "json",
        "html",
        "html5-doctype",
        "atom-is-not-cap",
        "no-namespace",
        "deep-nesting",
    ],
)
def test_hostile_or_wrong_documents_raise_feed_format_error(payload: bytes, expected: str) -> None:
    with pytest.raises(FeedFormatError) as info:
        cap.parse(payload)
    assert str(info.value).startswith("cap: ")
    assert expected in str(info.value)


def test_cap_1_1_document_is_rejected_naming_its_namespace() -> None:
    payload = read("wcatwc-warning.cap").replace(
        b"urn:oasis:names:tc:emergency:cap:1.2", b"urn:oasis:names:tc:emergency:cap:1.1"
    )
    with pytest.raises(FeedFormatError, match=r"urn:oasis:names:tc:emergency:cap:1\.1"):
        cap.parse(payload)


def test_schema_is_built_once_from_the_package_and_imports_nothing() -> None:
    schema = cap._schema()
    assert schema is cap._schema()
    assert schema.imports == {} and schema.includes == {}


def test_schema_location_hints_are_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    payload = read("wcatwc-warning.cap").replace(
        b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">',
        b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xsi:schemaLocation="urn:oasis:names:tc:emergency:cap:1.2 '
        b'http://attacker.invalid/cap.xsd">',
    )
    assert len(cap.parse(payload).frame) == 1


WCATWC_SENT = b"<sent>2011-09-02T11:36:50-00:00</sent>"
WCATWC_ONSET = b"<onset>2011-09-02T11:36:50-00:00</onset>"


@pytest.mark.parametrize(
    "stamp",
    [b"0001-01-01T00:30:00+01:00", b"9999-12-31T23:59:59-14:00", b"2011-09-02T24:00:00-00:00"],
)
def test_implausible_sent_rejects_the_document(stamp: bytes) -> None:
    payload = read("wcatwc-warning.cap").replace(WCATWC_SENT, b"<sent>" + stamp + b"</sent>")
    with pytest.raises(FeedFormatError, match=r"^cap: document 'PAAQ-2-lqw6d6': sent: "):
        cap.parse(payload)


def test_implausible_onset_quarantines_the_info_block_naming_onset() -> None:
    payload = read("wcatwc-warning.cap").replace(
        WCATWC_ONSET, b"<onset>0001-01-01T00:30:00+01:00</onset>"
    )
    result = cap.parse(payload)
    assert result.frame.empty
    assert result.quarantined[0].reason.startswith("info[0]: onset: ")
    assert "outside years 1900-2200" in result.quarantined[0].reason


# -- per-info quarantine -------------------------------------------------------------

ICELAND_POLYGON = (
    b"<polygon>64.17,-22.04 64.19,-21.7 64.15,-21.68 64.09,-21.78 64.05,-21.93 "
    b"64.04,-22.04 64.09,-22.07 64.17,-22.04</polygon>"
)


@pytest.mark.parametrize(
    ("polygon", "why"),
    [
        (b"64.1,-22.0 64.2,-21.7 64.1,-22.0", "at least 4"),
        (b"64.1,-22.0 64.2,-21.7 64.0,-21.6 64.3,-21.9", "not closed"),
        (b"64.1,-22.0 64.2,abc 64.0,-21.6 64.1,-22.0", "non-numeric"),
        (b"95.1,-22.0 64.2,-21.7 64.0,-21.6 95.1,-22.0", "latitude 95.1"),
        (b"64.1;-22.0 64.2,-21.7 64.0,-21.6 64.1;-22.0", "not 'lat,lon'"),
        (b"nan,-22.0 64.2,-21.7 64.0,-21.6 nan,-22.0", "not finite"),
    ],
    ids=["three-points", "open", "bad-number", "latitude-95", "semicolon", "nan"],
)
def test_bad_polygon_quarantines_its_info_block_and_the_rest_flows(
    polygon: bytes, why: str
) -> None:
    payload = read("iceland_met_office.cap")
    assert payload.count(ICELAND_POLYGON) == 2
    payload = payload.replace(ICELAND_POLYGON, b"<polygon>" + polygon + b"</polygon>", 1)
    result = cap.parse(payload)
    assert list(result.frame["language"]) == ["en-US"]
    assert len(result.quarantined) == 1
    q = result.quarantined[0]
    assert q.source == "cap"
    assert q.record_key == "is-IMO-2a4c2db8-07fd-4a0f-b372-9667280d46d1"
    assert q.reason.startswith("info[0]: areas.0.polygons")
    assert "polygon 0" in q.reason and why in q.reason
    assert q.record["info"]["language"] == "is-IS"
    q.record_json()  # the record is JSON-ready


def test_bad_circle_is_quarantined_naming_the_circle() -> None:
    payload = read("earthquake-iso8859-1.cap").replace(
        b"<circle>12.747,-88.783 0.0</circle>", b"<circle>12.747,-88.783</circle>"
    )
    result = cap.parse(payload)
    assert result.frame.empty and list(result.frame.columns) == list(cap.CAP_COLUMNS)
    assert "circles" in result.quarantined[0].reason


def test_empty_polygon_element_counts_as_no_polygon() -> None:
    payload = read("iceland_met_office.cap").replace(ICELAND_POLYGON, b"<polygon/>")
    frame = cap.parse(payload).frame
    assert list(frame["polygons"]) == [[], []]


def test_info_missing_a_required_field_is_quarantined_if_it_got_past_the_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = "<event>Veðurviðvörun: Vindur</event>".encode()
    payload = read("iceland_met_office.cap").replace(event, b"")
    with pytest.raises(FeedFormatError, match="event"):  # the XSD is the first line
        cap.parse(payload)
    monkeypatch.setattr(cap, "_validate", lambda root: None)  # the per-info check the second
    result = cap.parse(payload)
    assert list(result.frame["language"]) == ["en-US"]
    assert result.quarantined[0].reason == "info[0]: event: Field required"


def test_document_without_info_blocks_yields_an_empty_frame_with_the_columns() -> None:
    payload = b"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>ack-1</identifier><sender>ops@example.org</sender>
  <sent>2024-01-01T00:00:00+08:00</sent><status>System</status>
  <msgType>Ack</msgType><scope>Public</scope>
</alert>"""
    result = cap.parse(payload)
    assert result.frame.empty
    assert list(result.frame.columns) == list(cap.CAP_COLUMNS)
    assert result.quarantined == []


# -- level and language ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "level"),
    [
        ([("Color", "Yellow")], "yellow"),
        ([("colour", "RED")], "red"),
        ([("awareness_level", "2; yellow; Moderate")], "yellow"),
        ([("awareness_level", "4; red; Extreme")], "red"),
        ([("awareness_level", "1; green; Minor")], None),
        ([("level", "蓝色")], "blue"),
        ([("warning_level", "橙色预警")], "orange"),
        ([("AlertLevel", "红色")], "red"),
        ([("alert_color", "紅色")], "red"),
        ([("alert_color", "黃色")], "yellow"),
        ([("level", "2")], None),  # numbers differ between publishers
        ([("level", "Moderate")], None),  # "red" inside a word is no colour
        ([("severity_level", "一級警戒")], None),
        ([("EventLocationName", "Red River")], None),  # not a level parameter
        ([("level", "yellow"), ("color", "orange")], "orange"),  # most severe wins
        ([], None),
    ],
)
def test_level_comes_from_colour_parameters_only(
    parameters: list[tuple[str, str]], level: str | None
) -> None:
    assert cap.level_of(parameters) == level


@pytest.mark.parametrize(
    ("tag", "normal"),
    [
        ("zh-tw", "zh-TW"),
        ("EN-us", "en-US"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("fr", "fr"),
        ("", "en-US"),
    ],
)
def test_language_tags_are_normalised_to_conventional_case(tag: str, normal: str) -> None:
    assert cap.normalise_language(tag) == normal


# -- Atom ---------------------------------------------------------------------------


def test_usgs_atom_entry_links_to_the_cap_document_not_the_web_page() -> None:
    (entry,) = cap.parse_atom(read("usgs_alerthub.atom"))
    assert entry.id == "urn:earthquake-usgs-gov:us:b000qfgs"
    assert entry.link == "http://earthquake.usgs.gov/earthquakes/eventpage/usb000qfgs.cap"
    assert entry.title == "M 4.9, 209km WSW of Ile Hunter, New Caledonia"
    assert entry.updated == datetime(2014, 5, 9, 21, 57, 52, tzinfo=UTC)
    assert entry.summary is not None and "Depth" in entry.summary


def test_nws_atom_entries_use_the_default_alternate_link_and_utc_times() -> None:
    entries = cap.parse_atom(read("us_nws_weather.atom"))
    assert len(entries) == 2
    for entry in entries:
        assert entry.link == entry.id
        assert entry.link.startswith("http://alerts.weather.gov/cap/wwacapget.php?x=")
        assert entry.updated == datetime(2014, 5, 11, 4, 0, tzinfo=UTC)  # 22:00-06:00
    assert [(e.title or "").split(" issued")[0] for e in entries] == [
        "Wind Advisory",
        "High Wind Warning",
    ]


def _feed(*entries: str) -> bytes:
    body = "".join(f"<entry>{e}</entry>" for e in entries)
    return f'<feed xmlns="http://www.w3.org/2005/Atom">{body}</feed>'.encode()


def test_atom_link_preference_cap_type_then_extension_then_alternate() -> None:
    entries = cap.parse_atom(
        _feed(
            '<id>a</id><link href="http://x/page" rel="alternate" type="text/html"/>'
            '<link href="http://x/doc.xml" rel="related"/>'
            '<link href="http://x/cap?id=1" rel="related" type="application/cap+xml"/>',
            '<id>b</id><link href="http://x/page" type="text/html"/>'
            '<link href="http://x/b.cap" rel="enclosure"/>',
            '<id>c</id><link href="http://x/c" rel="alternate"/>',
            '<id>d</id><link href="http://x/d.html" rel="alternate" type="text/html"/>',
            '<link href="http://x/e.cap"/><updated>not a time</updated>',
            "<title>no id, no link</title>",
        )
    )
    assert [(e.id, e.link) for e in entries] == [
        ("a", "http://x/cap?id=1"),
        ("b", "http://x/b.cap"),
        ("c", "http://x/c"),
        ("d", None),
        ("http://x/e.cap", "http://x/e.cap"),
    ]
    assert entries[4].updated is None


@pytest.mark.parametrize(
    "payload",
    [XXE, BILLION_LAUGHS, read("wcatwc-warning.cap"), b"<feed>", HTML_ERROR_PAGE],
    ids=["xxe", "billion-laughs", "cap-document", "truncated", "html"],
)
def test_atom_rejects_non_atom_and_hostile_documents(payload: bytes) -> None:
    with pytest.raises(FeedFormatError, match=r"^cap: "):
        cap.parse_atom(payload)


# -- property-based ------------------------------------------------------------------

FIXTURE_BYTES = [read(name) for name in [*VALID, "invalid.cap", *ATOMS]]
TOKENS = [b"<", b">", b"&", b"&amp;", b"]]>", b"<!DOCTYPE a>", b'"', b"\x00", b"\xff", b"</info>"]


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
        result = cap.parse(payload)
    except FeedFormatError as exc:
        assert str(exc).startswith("cap: ")
        return
    assert isinstance(result, ParseResult)
    assert list(result.frame.columns) == list(cap.CAP_COLUMNS)


def _atom_or_refuse(payload: bytes) -> None:
    try:
        entries = cap.parse_atom(payload)
    except FeedFormatError:
        return
    assert all(isinstance(e, cap.AtomEntry) for e in entries)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_a_result_or_feed_format_error(payload: bytes) -> None:
    _parse_or_refuse(payload)
    _atom_or_refuse(payload)


@FUZZ
@given(mutated())
def test_mutated_fixtures_give_a_result_or_feed_format_error(payload: bytes) -> None:
    _parse_or_refuse(payload)
    _atom_or_refuse(payload)


def test_cli_lists_atom_index_entries_with_their_links(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from alerts.cli import main

    assert main(["parse", "--source", "cap", str(CAP_DIR / "usgs_alerthub.atom")]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert entries and all(set(e) == {"id", "title", "updated", "link", "summary"} for e in entries)
    assert all(e["link"] for e in entries)


def test_official_columns_come_first_then_event_codes() -> None:
    assert list(cap.CAP_COLUMNS)[: len(OFFICIAL_COLUMNS)] == list(OFFICIAL_COLUMNS)
    doc = (
        (CAP_DIR / "wcatwc-warning.cap")
        .read_bytes()
        .replace(
            b"<certainty>Likely</certainty>",
            b"<certainty>Likely</certainty><eventCode><valueName>SAME</valueName>"
            b"<value>TSW</value></eventCode>",
        )
    )
    assert cap.parse(doc).frame.iloc[0]["event_codes"] == {"SAME": ["TSW"]}
