"""The USGS GeoJSON parser and the ``alerts parse`` command on recorded payloads."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.cli import main
from alerts.feeds import FeedFormatError, parser_for
from alerts.feeds.base import ParseResult, to_records
from alerts.feeds.usgs import parse

FIXTURES = [
    "all_hour.geojson",
    "significant_month.geojson",
    "detail_us6000pi9w.json",
    "china_dingri_4.5_day.geojson",
]

RECORD_KEYS = {
    "source",
    "event_id",
    "aliases",
    "time",
    "updated",
    "latitude",
    "longitude",
    "depth_km",
    "magnitude",
    "magnitude_type",
    "place",
    "status",
    "url",
    "event_type",
}


def raw_features(path: Path) -> list[dict[str, Any]]:
    doc = json.loads(path.read_bytes())
    return [doc] if doc.get("type") == "Feature" else doc["features"]


def feature(event_id: str = "xx0001", **props: Any) -> dict[str, Any]:
    """A small valid USGS feature; keyword arguments override its properties."""
    coords = props.pop("coordinates", [100.5, 30.25, 12.0])
    base: dict[str, Any] = {
        "mag": 5.1,
        "place": "somewhere",
        "time": 1591260579782,
        "updated": 1591260600000,
        "url": f"https://example.test/{event_id}",
        "status": "reviewed",
        "type": "earthquake",
        "ids": f",{event_id},",
        "magType": "mb",
    }
    base.update(props)
    return {
        "type": "Feature",
        "id": event_id,
        "geometry": {"type": "Point", "coordinates": coords},
        "properties": base,
    }


def collection(*features: Any) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


# -- recorded payloads -------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_row_count_matches_feature_count(data: Path, name: str) -> None:
    path = data / "usgs" / name
    result = parse(path.read_bytes())
    assert len(result.frame) == len(raw_features(path))
    assert result.quarantined == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("all_hour.geojson", 8),
        ("significant_month.geojson", 6),
        ("detail_us6000pi9w.json", 1),
        ("china_dingri_4.5_day.geojson", 1),
    ],
)
def test_row_count_matches_the_feed_metadata(data: Path, name: str, expected: int) -> None:
    assert len(parse((data / "usgs" / name).read_bytes()).frame) == expected


@pytest.mark.parametrize(
    ("name", "event_id", "aliases"),
    [
        ("significant_month.geojson", "us6000a5r3", ["pt20156001", "at00qbe8it", "us6000a5r3"]),
        ("significant_month.geojson", "ci39462536", ["ci39462536", "at00qbdo9m", "us6000a5le"]),
        ("significant_month.geojson", "nn00725272", ["nn00725272", "us70009gj8"]),
        ("all_hour.geojson", "nc75013992", ["nc75013992"]),
        ("detail_us6000pi9w.json", "us6000pi9w", ["us6000pi9w"]),
    ],
)
def test_aliases_come_from_ids(data: Path, name: str, event_id: str, aliases: list[str]) -> None:
    frame = parse((data / "usgs" / name).read_bytes()).frame
    row = frame.set_index("event_id").loc[event_id]
    assert list(row["aliases"]) == aliases


@pytest.mark.parametrize("name", FIXTURES)
def test_aliases_always_include_the_event_id(data: Path, name: str) -> None:
    frame = parse((data / "usgs" / name).read_bytes()).frame
    for event_id, aliases in zip(frame["event_id"], frame["aliases"], strict=True):
        assert event_id in aliases
        assert "" not in aliases


@pytest.mark.parametrize(
    "ids", [None, "", ",,", ",other1,other2,"], ids=["missing", "empty", "commas", "others"]
)
def test_event_id_is_added_to_aliases_when_ids_lack_it(ids: str | None) -> None:
    props = {"ids": ids} if ids is not None else {}
    raw = feature("xx0001", **props)
    if ids is None:
        del raw["properties"]["ids"]
    aliases = parse(collection(raw)).frame["aliases"].iloc[0]
    assert aliases[0] == "xx0001"
    assert sorted(aliases) == sorted(["xx0001", *[a for a in (ids or "").split(",") if a]])


@pytest.mark.parametrize("name", FIXTURES)
def test_geometry_is_longitude_latitude_depth(data: Path, name: str) -> None:
    path = data / "usgs" / name
    frame = parse(path.read_bytes()).frame.set_index("event_id")
    for raw in raw_features(path):
        lon, lat, depth = raw["geometry"]["coordinates"]
        row = frame.loc[raw["id"]]
        assert (row["longitude"], row["latitude"], row["depth_km"]) == (lon, lat, depth)


def test_dingri_epicentre_is_in_tibet_not_swapped(data: Path) -> None:
    rec = to_records(parse((data / "usgs" / "china_dingri_4.5_day.geojson").read_bytes()).frame)[0]
    assert (rec["longitude"], rec["latitude"], rec["depth_km"]) == (87.3608, 28.639, 10.0)


@pytest.mark.parametrize("name", FIXTURES)
def test_times_are_utc(data: Path, name: str) -> None:
    frame = parse((data / "usgs" / name).read_bytes()).frame
    for col in ("time", "updated"):
        assert isinstance(frame[col].dtype, pd.DatetimeTZDtype)
        assert str(frame[col].dt.tz) == "UTC"


@pytest.mark.parametrize(
    ("name", "event_id", "time", "updated"),
    [
        (
            "significant_month.geojson",
            "us6000a5r3",
            "2020-06-04T08:49:39.782Z",
            "2020-06-05T18:48:41.040Z",
        ),
        (
            "detail_us6000pi9w.json",
            "us6000pi9w",
            "2025-01-07T01:05:16.824Z",
            "2025-01-09T17:05:21.636Z",
        ),
        ("all_hour.geojson", "nc75013992", "2024-05-31T23:17:32.540Z", "2024-05-31T23:19:09.620Z"),
    ],
)
def test_epoch_milliseconds_become_iso_utc(
    data: Path, name: str, event_id: str, time: str, updated: str
) -> None:
    records = {
        r["event_id"]: r for r in to_records(parse((data / "usgs" / name).read_bytes()).frame)
    }
    assert records[event_id]["time"] == time
    assert records[event_id]["updated"] == updated


def test_detail_and_summary_of_the_same_event_agree(data: Path) -> None:
    detail = to_records(parse((data / "usgs" / "detail_us6000pi9w.json").read_bytes()).frame)
    summary = to_records(parse((data / "usgs" / "china_dingri_4.5_day.geojson").read_bytes()).frame)
    assert detail == summary


def test_missing_values_are_none_in_records() -> None:
    raw = feature("xx0001", mag=None, place=None, coordinates=[100.5, 30.25])
    for key in ("updated", "url", "magType"):
        del raw["properties"][key]
    rec = to_records(parse(collection(raw)).frame)[0]
    for key in ("magnitude", "place", "updated", "url", "magnitude_type", "depth_km"):
        assert rec[key] is None, key
    assert rec["latitude"] == 30.25
    assert json.loads(json.dumps(rec)) == rec  # JSON-ready: no NaN, NA or NaT


def test_missing_status_and_type_default_to_automatic_earthquake() -> None:
    raw = feature("xx0001")
    del raw["properties"]["status"], raw["properties"]["type"]
    rec = to_records(parse(collection(raw)).frame)[0]
    assert (rec["status"], rec["event_type"]) == ("automatic", "earthquake")


def test_status_is_normalised_to_lower_case() -> None:
    rec = to_records(parse(collection(feature("xx0001", status="REVIEWED"))).frame)[0]
    assert rec["status"] == "reviewed"


def _no_geometry() -> dict[str, Any]:
    raw = feature("bad1")
    del raw["geometry"]
    return raw


@pytest.mark.parametrize(
    ("bad", "key", "field"),
    [
        (_no_geometry(), "bad1", "geometry"),
        (feature("bad1", coordinates=[100.0, 95.0, 10.0]), "bad1", "geometry.coordinates"),
        (feature("bad1", coordinates=[190.0, 30.0, 10.0]), "bad1", "geometry.coordinates"),
        (feature("bad1", coordinates=[None, 30.0, 10.0]), "bad1", "geometry.coordinates"),
        (feature("bad1", time="yesterday"), "bad1", "properties.time"),
        (feature("bad1", status="bogus"), "bad1", "properties.status"),
        ("not a feature", None, "features[1]"),
        ([1, 2, 3], None, "features[1]"),
    ],
    ids=[
        "missing-geometry",
        "latitude-95",
        "longitude-190",
        "null-longitude",
        "non-numeric-time",
        "unknown-status",
        "string-feature",
        "list-feature",
    ],
)
def test_malformed_feature_is_quarantined_and_neighbours_survive(
    bad: Any, key: str | None, field: str
) -> None:
    result = parse(collection(feature("good1"), bad, feature("good2")))
    assert list(result.frame["event_id"]) == ["good1", "good2"]
    assert len(result.quarantined) == 1
    q = result.quarantined[0]
    assert q.source == "usgs"
    assert q.record_key == key
    assert q.reason.startswith("features[1]")
    assert field in q.reason
    assert q.record == bad
    assert json.loads(q.record_json()) == bad


def test_quarantine_reason_says_what_was_wrong() -> None:
    result = parse(collection(feature("bad1", coordinates=[100.0, 95.0, 10.0])))
    assert "latitude 95.0" in result.quarantined[0].reason


def test_all_features_quarantined_gives_an_empty_frame_with_the_schema() -> None:
    result = parse(collection(feature("bad1", status="bogus")))
    assert result.frame.empty
    assert set(result.frame.columns) == RECORD_KEYS
    assert len(result.quarantined) == 1


def test_time_beyond_the_datetime_range_is_quarantined() -> None:
    result = parse(collection(feature("good1"), feature("bad1", time=10**20)))
    assert list(result.frame["event_id"]) == ["good1"]
    assert [q.record_key for q in result.quarantined] == ["bad1"]


@pytest.mark.parametrize(
    "payload",
    [b"<html>Service Unavailable</html>", b"", b"\xff\xfe\x00garbage", b'{"type": '],
    ids=["html", "empty", "not-utf8", "truncated"],
)
def test_non_json_payload_raises_feed_format_error(payload: bytes) -> None:
    with pytest.raises(FeedFormatError, match="usgs"):
        parse(payload)


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "FeatureCollection"},
        {"type": "FeatureCollection", "features": {"a": 1}},
        [],
        None,
        "features",
    ],
    ids=["no-features", "features-not-list", "list", "null", "string"],
)
def test_json_without_features_raises_feed_format_error(doc: Any) -> None:
    with pytest.raises(FeedFormatError, match="features"):
        parse(json.dumps(doc).encode())


@pytest.mark.parametrize("name", FIXTURES)
def test_utf8_bom_is_accepted(data: Path, name: str) -> None:
    body = (data / "usgs" / name).read_bytes()
    with_bom = parse(b"\xef\xbb\xbf" + body)
    assert to_records(with_bom.frame) == to_records(parse(body).frame)


def test_non_utf8_text_with_bom_like_prefix_still_fails() -> None:
    with pytest.raises(FeedFormatError):
        parse(b"\xef\xbb" + collection(feature("xx0001")))


def test_quarry_blast_is_kept_with_its_event_type() -> None:
    result = parse(collection(feature("qb1", type="quarry blast"), feature("eq1")))
    types = dict(zip(result.frame["event_id"], result.frame["event_type"], strict=True))
    assert types == {"qb1": "quarry blast", "eq1": "earthquake"}
    assert result.quarantined == []


def test_parser_registry_knows_usgs_and_rejects_others() -> None:
    assert parser_for("usgs") is parse
    with pytest.raises(ValueError, match="unknown source 'nosuchfeed'"):
        parser_for("nosuchfeed")


# -- the command line --------------------------------------------------------------------


@pytest.mark.parametrize("name", FIXTURES)
def test_cli_parse_prints_one_json_object_per_feature(
    data: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = data / "usgs" / name
    assert main(["parse", "--source", "usgs", str(path)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == len(raw_features(path))
    assert err == ""
    ids = []
    for line in lines:
        rec = json.loads(line)
        assert set(rec) == RECORD_KEYS
        assert rec["source"] == "usgs"
        assert rec["time"].endswith("Z")
        assert rec["updated"].endswith("Z")
        assert isinstance(rec["aliases"], list) and rec["event_id"] in rec["aliases"]
        ids.append(rec["event_id"])
    assert ids == [f["id"] for f in raw_features(path)]


def test_cli_parse_keeps_chinese_text_readable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "feed.geojson"
    path.write_bytes(collection(feature("xx0001", place="西藏日喀则市定日县")))
    assert main(["parse", "--source", "usgs", str(path)]) == 0
    out = capsys.readouterr().out
    assert "西藏日喀则市定日县" in out
    assert json.loads(out)["place"] == "西藏日喀则市定日县"


def test_cli_parse_reports_quarantined_records_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "feed.geojson"
    path.write_bytes(collection(feature("good1"), feature("bad1", status="bogus")))
    assert main(["parse", "--source", "usgs", str(path)]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == ["good1"]
    assert "quarantined bad1" in err
    assert "properties.status" in err


def test_cli_parse_reads_standard_input(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (data / "usgs" / "significant_month.geojson").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    assert main(["parse", "--source", "usgs", "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 6


def test_cli_parse_of_a_non_json_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "feed.geojson"
    path.write_bytes(b"<html>oops</html>")
    assert main(["parse", "--source", "usgs", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("alerts: error:") and "not UTF-8 JSON" in err


def test_cli_parse_of_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["parse", "--source", "usgs", str(tmp_path / "nope.geojson")]) == 2
    assert "nope.geojson" in capsys.readouterr().err


def test_cli_parse_rejects_an_unknown_source(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["parse", "--source", "nosuchfeed", str(data / "usgs" / "all_hour.geojson")])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["parse", "--help"],
        ["pipeline", "--help"],
        ["outbox", "--help"],
        ["db", "upgrade", "--help"],
        ["config", "--help"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_cli_help_exits_0(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    command = " ".join(a for a in argv if a != "--help")
    assert out.startswith(f"usage: alerts {command}".rstrip())


def test_installed_console_script_runs() -> None:
    script = shutil.which("alerts", path=str(Path(sys.executable).parent)) or shutil.which("alerts")
    cmd = [script] if script else [sys.executable, "-m", "alerts.cli"]
    done = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: alerts")
    for command in ("parse", "pipeline", "outbox", "db", "config"):
        assert command in done.stdout


# -- property-based: nothing but records, quarantine, or the one clear error --------------

_REAL = json.loads(
    (Path(__file__).parent / "data" / "usgs" / "significant_month.geojson").read_text()
)
_JUNK = st.one_of(
    st.none(),
    st.text(max_size=10),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.floats(), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_give_records_or_the_one_clear_error(payload: bytes) -> None:
    try:
        assert isinstance(parse(payload), ParseResult)
    except FeedFormatError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_features_give_records_or_quarantine(data: st.DataObject) -> None:
    doc = json.loads(json.dumps(_REAL))
    for _ in range(data.draw(st.integers(1, 5))):
        feature = data.draw(st.sampled_from(doc["features"]))
        where = data.draw(st.sampled_from(["top", "properties", "geometry"]))
        target = feature if where == "top" else feature[where]
        if not isinstance(target, dict):
            continue
        key = data.draw(st.sampled_from(sorted(target) or ["x"]))
        target[key] = data.draw(_JUNK)
    result = parse(json.dumps(doc).encode())
    assert len(result.frame) + len(result.quarantined) >= len(doc["features"]) - 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_sliced_real_bytes_give_records_or_the_one_clear_error(data: st.DataObject) -> None:
    raw = (Path(__file__).parent / "data" / "usgs" / "all_hour.geojson").read_bytes()
    start = data.draw(st.integers(0, len(raw) - 1))
    end = data.draw(st.integers(start, min(len(raw), start + 200)))
    mutated = raw[:start] + data.draw(st.binary(max_size=20)) + raw[end:]
    try:
        assert isinstance(parse(mutated), ParseResult)
    except FeedFormatError:
        pass
