"""daily_outlook and campaigns under dag.test(): made once, reviewed, delivered once each.

The forecast is the hand-written 72 h Open-Meteo answer for six Sichuan
prefectures (tests/data/openmeteo/forecast_72h.json), served on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.config import load_settings
from alerts.pipeline import Runtime
from alerts.store.models import OutboxMessage
from tests.conftest import FeedServer
from tests.test_dags_publish import scheduler_timeouts

pytestmark = pytest.mark.airflow

# the fixture's locations, in request order
SICHUAN = [
    ("510100", 30.763, 103.8678, "成都市"),
    ("511800", 29.9808, 102.7366, "雅安市"),
    ("513200", 32.4016, 102.2244, "阿坝藏族羌族自治州"),
    ("513300", 31.0893, 100.3701, "甘孜藏族自治州"),
    ("510700", 31.8681, 104.6355, "绵阳市"),
    ("511100", 29.1735, 103.5648, "乐山市"),
]


@pytest.fixture
def sichuan(
    alerts_env: Path, feed_server: FeedServer, data: Path, tmp_path: Path, monkeypatch
) -> Path:  # type: ignore[no-untyped-def]
    """Outlook settings for Sichuan, the forecast on loopback, subscribers, a fixed clock."""
    locations = tmp_path / "locations.json"
    locations.write_text(
        json.dumps(
            [{"id": c, "latitude": la, "longitude": lo, "name": n} for c, la, lo, n in SICHUAN],
            ensure_ascii=False,
        )
    )
    monkeypatch.setenv("ALERTS_FEEDS__LOCATIONS_FILE", str(locations))
    monkeypatch.setenv("ALERTS_FEEDS__RETRIES", "0")
    monkeypatch.setenv("ALERTS_FEEDS__OPENMETEO_URL", f"{feed_server.base_url}/v1/forecast")
    monkeypatch.setenv("ALERTS_FEEDS__AIR_QUALITY_URL", f"{feed_server.base_url}/v1/air-quality")
    monkeypatch.setenv("ALERTS_OUTLOOK__NATIONAL", "false")
    monkeypatch.setenv("ALERTS_OUTLOOK__REGIONS", '["51"]')
    feed_server.serve("/v1/forecast", data / "openmeteo" / "forecast_72h.json")
    feed_server.serve("/v1/air-quality", b"[]")
    return alerts_env


def _outbox(rt: Runtime) -> list[OutboxMessage]:
    with rt.store.session() as s:
        return list(s.query(OutboxMessage).order_by(OutboxMessage.recipient))


@contextmanager
def _runtime() -> Iterator[Runtime]:
    rt = Runtime.from_settings(load_settings())
    try:
        yield rt
    finally:
        rt.close()


def _freeze(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    """Every runtime the tasks open (dag.test() runs them in this process) reads ``when``."""
    made = Runtime.from_settings.__func__  # type: ignore[attr-defined]

    def from_settings(cls, settings, *, clock=None):  # type: ignore[no-untyped-def]
        return made(cls, settings, clock=lambda: when)

    monkeypatch.setattr(Runtime, "from_settings", classmethod(from_settings))


def test_daily_outlook_publishes_once_and_by_default_when_nobody_answers(
    dagbag, sichuan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    when = datetime(2026, 7, 19, 23, 0, tzinfo=UTC)  # 07:00 Beijing on 20 July
    _freeze(monkeypatch, when)
    monkeypatch.setenv("ALERTS_APPROVAL__BULLETIN_TIMEOUT_MIN", "0.02")  # 1.2 s
    with _runtime() as rt:
        for address, areas in (("chengdu", "5101"), ("guangzhou", "4401")):
            rt.store.add_subscriber(
                {
                    "name": address,
                    "channel": "outbox",
                    "address": address,
                    "areas": [areas],
                    "hazards": [],
                    "audiences": [],
                    "min_level": 1,
                    "source": "operator",
                }
            )
    with scheduler_timeouts():
        run = dagbag.dags["daily_outlook"].test()
    assert run.state == "success"
    with _runtime() as rt:
        (pub,) = rt.store.publications(kind="outlook")
        assert pub.identifier == "OUTLOOK-51-20260720"
        assert (pub.approval, pub.approval_actor) == ("approved", "timeout-default")
        got = _outbox(rt)
        assert sorted(m.recipient for m in got) == ["chengdu", "public"]
        assert "成都" in got[0].body and "暴雨" in got[0].body  # Chengdu's yellow rain
        assert rt.store.publications() == []  # no CAP document: bulletins are not warnings

    # the same morning again: nothing new is made, asked or sent
    run = dagbag.dags["daily_outlook"].test()
    assert run.state == "success"
    with _runtime() as rt:
        assert len(rt.store.publications(kind="outlook")) == 1
        assert len(_outbox(rt)) == 2


def test_campaigns_send_by_their_calendar_once(
    dagbag, sichuan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from alerts.campaigns import due_sends, load_catalog

    monkeypatch.setenv("ALERTS_APPROVAL__BULLETINS", "false")
    catalog = load_catalog()
    # the first send of the packaged calendar on or after 20 July 2026, an hour after it
    start = datetime(2026, 7, 19, 23, 0, tzinfo=UTC)
    when = None
    for day in range(0, 120):
        probe = start + timedelta(days=day)
        if due_sends(catalog, when=probe):
            when = probe
            break
    assert when is not None, "the packaged calendar has no send in 120 days"
    _freeze(monkeypatch, when)
    expected = {c.id for c, _ in due_sends(catalog, when=when)}
    run = dagbag.dags["campaigns"].test()
    assert run.state == "success"
    with _runtime() as rt:
        pubs = rt.store.publications(kind="campaign")
        assert {p.content["campaign"] for p in pubs} == expected
        sent = _outbox(rt)
        assert len(sent) == len(pubs)  # the public outbox once per campaign send
    run = dagbag.dags["campaigns"].test()
    with _runtime() as rt:
        assert len(rt.store.publications(kind="campaign")) == len(pubs)
        assert len(_outbox(rt)) == len(sent)
