"""Whole cycles through the `alerts pipeline` command and the functions DAG tasks call."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.channels.base import Message, Recipient, SendResult
from alerts.cli import main
from alerts.config import load_settings
from alerts.delivery import dispatch, fan_out
from alerts.pipeline import Runtime, ingest_payloads, publish, store_payload
from tests.feedtools import usgs_features, usgs_feed

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


@pytest.fixture
def env(
    alerts_env: Path, store_url: str, national_only_rules: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """One store per backend; national response only, so each quake is one alert."""
    monkeypatch.setenv("ALERTS_STORE_URL", store_url)
    return alerts_env


def _feed(tmp_path: Path, name: str, features: list[dict], newest: datetime = NOW) -> Path:
    path = tmp_path / name
    path.write_bytes(usgs_feed(features, newest=newest - timedelta(minutes=10)))
    return path


def _run(capsys: pytest.CaptureFixture[str], now: datetime, *inputs: Path) -> dict:
    args = ["pipeline", "--now", now.isoformat()]
    for p in inputs:
        args += ["--input", f"usgs={p}"]
    assert main(args) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _outbox(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["outbox", "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _dingri(**changes: object) -> dict:
    (f,) = usgs_features(Path(__file__).parent / "data" / "usgs" / "china_dingri_4.5_day.geojson")
    f["properties"].update(changes)
    return f


def test_pipeline_twice_on_the_same_input_delivers_nothing_new(
    env: Path, tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = usgs_features(data / "usgs" / "significant_month.geojson")
    feed = _feed(tmp_path, "feed.json", [_dingri(), *world])
    first = _run(capsys, NOW, feed)
    assert first["events_read"] == 7
    assert (first["issued"], first["delivered"]) == (1, 1)
    second = _run(capsys, NOW + timedelta(minutes=1), feed)
    assert (second["issued"], second["updated"], second["versions"], second["delivered"]) == (
        0,
        0,
        0,
        0,
    )
    (msg,) = _outbox(capsys)
    assert set(msg) >= {"alert_id", "version", "channel", "recipient", "body", "delivered_at"}
    assert msg["delivered_at"].endswith("Z")
    assert "7.1级" in msg["body"] and "09时05分" not in msg["body"]  # replayed: time shifted
    assert "北京时间" in msg["body"] and "红色" in msg["body"]


def test_revisions_downgrade_then_the_deletion_cancels(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upd = _dingri()["properties"]["updated"]
    _run(capsys, NOW, _feed(tmp_path, "a.json", [_dingri()]))
    revised = _run(capsys, NOW, _feed(tmp_path, "b.json", [_dingri(mag=6.8, updated=upd + 1)]))
    assert revised["updated"] == 1
    deleted = _run(
        capsys,
        NOW,
        _feed(tmp_path, "c.json", [_dingri(mag=6.8, updated=upd + 2, status="deleted")]),
    )
    assert deleted["cancelled"] == 1
    subjects = [m["body"].splitlines()[0] for m in reversed(_outbox(capsys))]
    assert len(subjects) == 3
    assert "红色" in subjects[0]
    assert "橙色" in subjects[1] and "降级" in subjects[1] and "6.8" in subjects[1]
    assert "解除" in subjects[2]


def test_a_stale_solution_changes_nothing(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upd = _dingri()["properties"]["updated"]
    _run(capsys, NOW, _feed(tmp_path, "a.json", [_dingri()]))
    stale = _run(capsys, NOW, _feed(tmp_path, "b.json", [_dingri(mag=5.0, updated=upd - 60_000)]))
    assert stale["versions"] == 0


def test_an_alias_under_a_new_preferred_id_is_the_same_alert(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(capsys, NOW, _feed(tmp_path, "a.json", [_dingri()]))
    renamed = _dingri(ids=",cn2025abc,us6000pi9w,")
    renamed["id"] = "cn2025abc"
    again = _run(capsys, NOW, _feed(tmp_path, "b.json", [renamed]))
    assert (again["issued"], again["versions"]) == (0, 0)
    assert len(_outbox(capsys)) == 1


def test_the_alert_expires_quietly_after_its_validity(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(capsys, NOW, _feed(tmp_path, "a.json", [_dingri()]))
    later = _run(capsys, NOW + timedelta(hours=25), _empty(tmp_path))
    assert later["expired"] == 1 and later["delivered"] == 0
    assert len(_outbox(capsys)) == 1


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.json"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    return path


def test_bad_records_are_quarantined_and_the_rest_flow_on(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.loads(_feed(tmp_path, "g.json", [_dingri()]).read_text())
    good["features"].append(
        {
            "type": "Feature",
            "id": "bad1",
            "properties": {"time": 1},
            "geometry": {"type": "Point", "coordinates": [10, 95]},
        }
    )
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps(good))
    garbage = tmp_path / "garbage.json"
    garbage.write_text("<html>502 Bad Gateway</html>")
    summary = _run(capsys, NOW, garbage, mixed)
    assert (summary["quarantined"], summary["issued"], summary["delivered"]) == (2, 1, 1)
    with Runtime.from_settings(load_settings()).store as store:
        reasons = sorted(q.reason for q in store.quarantined())
    assert "latitude 95" in reasons[0] and "not UTF-8 JSON" in reasons[1]


class FlakyChannel:
    """A channel simulator: fails retryably `fail_times` times, then fatally if told to."""

    idempotent = False

    def __init__(self, name: str, fail_times: int, fatal: bool = False) -> None:
        self.name, self.fail_times, self.fatal = name, fail_times, fatal
        self.sent: list[tuple[str, str]] = []

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        if self.fatal:
            return [
                SendResult(r.key, ok=False, error_code="93000", error_text="invalid key")
                for r in recipients
            ]
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("vendor timed out")  # a contract breach the caller absorbs
        self.sent += [(r.address, message.subject) for r in recipients]
        return [SendResult(r.key, ok=True, provider_message_id="m1") for r in recipients]


def _rt_with_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clock_box: list
) -> Runtime:
    rt = Runtime.from_settings(load_settings(), clock=lambda: clock_box[0])
    pid = store_payload(
        rt,
        "usgs",
        _feed(tmp_path, "a.json", [_dingri()]).read_bytes(),
        url="test://",
        fetched_at=NOW,
    )
    assert ingest_payloads(rt, [pid]).version_ids
    return rt


@pytest.mark.parametrize(
    ("fatal", "fail_times", "expected"),
    [
        (False, 2, ["retry", "retry", "sent"]),
        (True, 0, ["dead"]),
        (False, 10, ["retry", "retry", "dead"]),
    ],
)
def test_channel_failures_are_retried_with_backoff_or_dead_lettered(
    env: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fatal: bool,
    fail_times: int,
    expected: list[str],
) -> None:
    clock = [NOW]
    rt = _rt_with_version(tmp_path, capsys, clock)
    settings = rt.settings.channels[0].model_copy(update={"name": "wecom", "max_attempts": 3})
    fan_out(rt.store, rt.renderer, [settings], now=NOW)
    channel = FlakyChannel("wecom", fail_times, fatal)
    seen = []
    for _ in expected:
        dispatch(rt.store, {"wecom": channel}, {"wecom": settings}, clock=lambda: clock[0])
        (row,) = rt.store.deliveries()
        seen.append(row.status)
        # before the backoff ends nothing is sent again
        dispatch(rt.store, {"wecom": channel}, {"wecom": settings}, clock=lambda: clock[0])
        assert rt.store.deliveries()[0].attempts == len(seen)
        clock[0] += timedelta(minutes=20)
    assert seen == expected
    assert len(channel.sent) == (1 if expected[-1] == "sent" else 0)
    if expected[-1] == "dead":
        assert rt.store.deliveries()[0].error_text
    rt.close()


def test_publish_again_after_a_crash_mid_send_delivers_once(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = [NOW]
    rt = _rt_with_version(tmp_path, capsys, clock)
    fan_out(rt.store, rt.renderer, rt.settings.channels, now=NOW)
    # a worker claims the row, delivers to the outbox, then dies before recording it
    claim = rt.store.claim_deliveries(now=NOW, worker="elsewhere/1")
    assert claim is not None
    (row,) = claim.rows
    text = claim.messages[row.message_id]
    rt.channels()["outbox"].send(
        Message(row.alert_id, row.version, text.subject, text.body, row.language),
        [Recipient(row.recipient, row.key)],
    )
    assert publish(rt).delivered == 0  # inside the lease: left alone
    clock[0] += timedelta(minutes=10)
    assert publish(rt).delivered == 1  # reclaimed; the outbox drops the duplicate by key
    assert publish(rt).delivered == 0
    assert len(rt.store.outbox()) == 1
    assert [d.status for d in rt.store.deliveries()] == ["sent"]
    rt.close()


def test_with_the_packaged_rules_regions_near_the_epicentre_are_warned_too(
    alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _run(capsys, NOW, _feed(tmp_path, "a.json", [_dingri()]))
    assert (summary["issued"], summary["delivered"]) == (6, 3)  # 6 alerts in 3 messages
    heads = {m["alert_id"]: m["body"].splitlines()[0] for m in _outbox(capsys)}
    assert heads["earthquake:usgs:us6000pi9w:CN"] == "【地震红色预警】西藏自治区日喀则市7.1级地震"
    assert heads["earthquake:usgs:us6000pi9w:540200"].startswith(
        "【地震红色预警】西藏自治区日喀则市："
    )
    assert heads["earthquake:usgs:us6000pi9w:540100"].startswith(
        "【地震蓝色预警】西藏自治区拉萨市、西藏自治区山南市、西藏自治区那曲市等4地："
    )


class LimitedChannel:
    """A channel simulator with a vendor rate limit of one call a minute."""

    idempotent = False
    type = "limited"
    rate = (1, 60.0)

    def __init__(self) -> None:
        self.name = "limited"
        self.calls = 0

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        self.calls += 1
        return [SendResult(r.key, ok=True) for r in recipients]


def test_a_rate_limited_account_defers_without_spending_attempts(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = [NOW]
    rt = Runtime.from_settings(load_settings(), clock=lambda: clock[0])
    feed = [_dingri(), _dingri(mag=6.1)]
    feed[1]["id"], feed[1]["properties"]["ids"] = "us2", ",us2,"
    pid = store_payload(
        rt, "usgs", _feed(tmp_path, "two.json", feed).read_bytes(), url="test://", fetched_at=NOW
    )
    ingest_payloads(rt, [pid])
    settings = rt.settings.channels[0].model_copy(update={"name": "limited"})
    fan_out(rt.store, rt.renderer, [settings], now=NOW)
    channel = LimitedChannel()
    dispatch(rt.store, {"limited": channel}, {"limited": settings}, clock=lambda: clock[0])
    rows = sorted(rt.store.deliveries(), key=lambda d: d.status)
    assert channel.calls == 1
    assert [(d.status, d.error_code, d.attempts) for d in rows] == [
        ("retry", "rate-limited", 0),
        ("sent", None, 1),
    ]
    clock[0] += timedelta(seconds=61)
    dispatch(rt.store, {"limited": channel}, {"limited": settings}, clock=lambda: clock[0])
    assert channel.calls == 2 and {d.status for d in rt.store.deliveries()} == {"sent"}
    rt.close()
