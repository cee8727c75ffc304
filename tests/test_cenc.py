"""China Earthquake Networks Center feeds: both shapes, Beijing time, automatic vs formal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.cli import main
from alerts.feeds.base import EARTHQUAKE_COLUMNS, FeedFormatError, ParseResult, to_records
from alerts.feeds.cenc import merge_same_events, parse

DATA = Path(__file__).parent / "data" / "cenc"
LEGACY = (DATA / "speedsearch_legacy.jsonp").read_bytes()
CURRENT = (DATA / "catalogs_current.json").read_bytes()


def _records(payload: bytes) -> list[dict]:
    return to_records(parse(payload).frame)


def test_legacy_speedsearch_record_is_read_with_beijing_time_as_utc() -> None:
    alxa = _records(LEGACY)[0]
    assert alxa == {
        "source": "cenc",
        "event_id": "CD20230419082211.00",
        "aliases": ["CD20230419082211.00"],
        "time": "2023-04-19T00:22:10.000Z",
        "updated": "2023-04-19T00:31:04.000Z",
        "latitude": 40.77,
        "longitude": 105.44,
        "depth_km": 10.0,
        "magnitude": 3.3,
        "magnitude_type": "M",
        "place": "内蒙古阿拉善盟阿拉善左旗",
        "status": "reviewed",
        "event_type": "earthquake",
        "url": "https://news.ceic.ac.cn/CD20230419082211.html",
    }


@pytest.mark.parametrize(
    "wrapped",
    [
        LEGACY,
        LEGACY.strip()[1:-1],
        b"jQuery123_456(" + LEGACY.strip()[1:-1] + b");",
        b"\xef\xbb\xbf" + LEGACY,
    ],
    ids=["parenthesised", "bare-json", "callback", "bom"],
)
def test_every_jsonp_wrapping_is_accepted(wrapped: bytes) -> None:
    assert len(parse(wrapped).frame) == 2


def test_current_catalogue_shape_is_read() -> None:
    by_id = {r["event_id"]: r for r in _records(CURRENT)}
    tonga = by_id["CC1774327070000"]
    assert tonga["time"] == "2026-03-24T04:37:50.000Z"
    assert (tonga["latitude"], tonga["longitude"], tonga["depth_km"]) == (-18.7, -175.2, 250.0)
    assert by_id["CC1621620240000"]["time"] == "2021-05-21T18:04:11.000Z"  # crosses midnight


@pytest.mark.parametrize("payload", [LEGACY, CURRENT], ids=["legacy", "current"])
def test_an_automatic_solution_matched_by_a_formal_one_becomes_its_alias(payload: bytes) -> None:
    records = _records(payload)
    assert not any(r["status"] == "automatic" for r in records)
    merged = [r for r in records if len(r["aliases"]) == 2]
    assert len(merged) == 1 and merged[0]["aliases"][1].startswith("AU")


def test_an_automatic_solution_far_from_any_formal_one_is_kept() -> None:
    doc = json.loads(CURRENT)
    auto = next(r for r in doc["data"] if r["uniEventId"].startswith("AU"))
    auto["epiLat"] = 20.0  # about 950 km from the formal solution
    frame = parse(json.dumps(doc).encode()).frame
    assert "automatic" in set(frame["status"])


def test_merge_is_a_no_op_without_both_kinds() -> None:
    frame = parse(CURRENT).frame
    assert merge_same_events(frame).equals(frame)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("epiLat", 123, "latitude"),
        ("magnitude", "abc", "magnitude"),
        ("oriTime", "3000-01-01 00:00:00", "year 3000"),
        ("oriTime", "yesterday", "Beijing time"),
        ("epiLon", None, "longitude"),
        ("uniEventId", "", "event_id"),
    ],
)
def test_a_malformed_record_is_quarantined_and_the_rest_flow_on(
    field: str, value: object, reason: str
) -> None:
    doc = json.loads(CURRENT)
    doc["data"][0][field] = value
    result = parse(json.dumps(doc).encode())
    assert len(result.frame) == 3
    (q,) = result.quarantined
    assert reason in q.reason and q.reason.startswith("records[0]")


def test_the_same_id_twice_with_conflicting_data_is_quarantined() -> None:
    doc = json.loads(CURRENT)
    twin = dict(doc["data"][0], magnitude=5.1)
    doc["data"].append(twin)
    result = parse(json.dumps(doc).encode())
    assert "CC1774327070000" not in set(result.frame["event_id"])
    assert {q.reason for q in result.quarantined} == {
        "duplicate event_id 'CC1774327070000' with conflicting magnitude"
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"code": 500, "msg": "server busy"}', "code 500"),
        (b"<html><body>502 Bad Gateway</body></html>", "not (JSONP-wrapped) UTF-8 JSON"),
        (b'({"shuju": [', "not closed"),
        (b'{"data": []}', "neither"),
        (b'{"code": 0, "data": {"a": 1}}', "not a JSON array"),
    ],
)
def test_a_malformed_document_raises_one_clear_error(payload: bytes, message: str) -> None:
    with pytest.raises(FeedFormatError, match="cenc") as exc:
        parse(payload)
    assert message in str(exc.value)


def test_cli_parses_both_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    for path in DATA.glob("*"):
        if path.suffix in {".json", ".jsonp"}:
            assert main(["parse", "--source", "cenc", str(path)]) == 0
            lines = capsys.readouterr().out.splitlines()
            assert lines and all(set(json.loads(x)) == set(EARTHQUAKE_COLUMNS) for x in lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_records_or_the_one_clear_error(payload: bytes) -> None:
    try:
        assert isinstance(parse(payload), ParseResult)
    except FeedFormatError:
        pass


_values = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_records_give_records_or_quarantine(data: st.DataObject) -> None:
    doc = json.loads(CURRENT)
    for _ in range(data.draw(st.integers(1, 4))):
        record = data.draw(st.sampled_from(doc["data"]))
        key = data.draw(st.sampled_from(sorted(record)))
        record[key] = data.draw(_values)
    result = parse(json.dumps(doc).encode())
    assert len(result.frame) + len(result.quarantined) >= 1
