"""Bulletins (the daily outlook, campaigns): stored once, reviewed, delivered once each.

Who gets a bulletin (static recipients of public channels, subscribers who
asked for every level in its regions, campaign audiences), the duty officer's
review with "publish as is" on timeout, and exactly-once delivery through the
ledger, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.approval import plan
from alerts.bulletins import (
    bulletin_rows,
    campaign_identifier,
    outlook_identifier,
    render_bulletin,
    scope_codes,
)
from alerts.config import load_settings
from alerts.orchestration import PUBLISH, apply_approvals, approval_requests, option
from alerts.pipeline import Runtime, dispatch_due, fan_out_new
from alerts.store.models import OutboxMessage
from alerts.subscribers import NATIONAL, validate

NOW = datetime(2026, 7, 19, 23, 0, tzinfo=UTC)  # 07:00 Beijing, 20 July


def _outlook() -> dict[str, Any]:
    """A Sichuan outlook in the shared JSON shape: yellow rain in Ya'an, near-threshold heat."""
    hours = [NOW + timedelta(hours=h + 1) for h in range(72)]
    return {
        "kind": "outlook",
        "issued_at": "2026-07-19T23:00:00Z",
        "start": "2026-07-19T23:00:00Z",
        "end": "2026-07-22T23:00:00Z",
        "hours": 72,
        "timezone": "Asia/Shanghai",
        "rule_set_version": "test",
        "near_share": 0.7,
        "scope": {"code": "51", "name": "四川省"},
        "level": 2,
        "provinces": [
            {
                "code": "510000",
                "name": "四川省",
                "level": 2,
                "hazards": [
                    {
                        "hazard": "rainstorm",
                        "level": 2,
                        "near": False,
                        "peak_at": "2026-07-21T09:00:00Z",
                        "value": 61.3,
                        "threshold": 50.0,
                        "variable": "rain_mm",
                        "ratio": 1.23,
                        "prefectures": ["511800"],
                    }
                ],
            }
        ],
        "prefectures": [
            {
                "code": "511800",
                "name": "雅安市",
                "province": "510000",
                "province_name": "四川省",
                "level": 2,
                "risks": [
                    {
                        "hazard": "rainstorm",
                        "level": 2,
                        "near": False,
                        "peak_at": "2026-07-21T09:00:00Z",
                        "value": 61.3,
                        "threshold": 50.0,
                        "variable": "rain_mm",
                        "ratio": 1.23,
                        "window_h": 6.0,
                        "rule_id": "rainstorm.yellow",
                    }
                ],
                "series": {
                    "time": [h.strftime("%Y-%m-%dT%H:%M:%SZ") for h in hours],
                    "precipitation_mm": [10.0 if 30 <= i < 36 else 0.0 for i in range(72)],
                    "temperature_c": [24.0 + (i % 24) / 4 for i in range(72)],
                    "wind_gust_ms": [5.0] * 72,
                },
            },
            {
                "code": "510100",
                "name": "成都市",
                "province": "510000",
                "province_name": "四川省",
                "level": 0,
                "risks": [],
                "series": None,
            },
        ],
        "seasonal": [
            {
                "id": "summer_drowning",
                "zh": "防溺水",
                "en": "drowning",
                "hazards": ["flood"],
                "advice_zh": "不到江河湖塘游泳。",
                "advice_en": "Do not swim in rivers.",
            }
        ],
    }


@pytest.fixture
def rt(alerts_env: Path, store_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALERTS_STORE_URL", store_url)
    monkeypatch.setenv(
        "ALERTS_CHANNELS",
        json.dumps(
            [
                {"name": "outbox", "type": "outbox", "recipients": ["weibo-desk"]},
                {
                    "name": "drill",
                    "type": "outbox",
                    "recipients": ["drill"],
                    "audience": "internal",
                },
                {
                    "name": "depts",
                    "type": "outbox",
                    "recipients": ["dept-group"],
                    "audience": "responders",
                },
            ]
        ),
    )
    runtime = Runtime.from_settings(load_settings(), clock=lambda: NOW)
    yield runtime
    runtime.close()


def _subscribe(rt: Runtime, address: str, **fields: Any) -> None:
    values = {
        "name": address,
        "channel": "outbox",
        "address": address,
        "areas": ["51"],
        "hazards": [],
        "audiences": [],
        "min_level": 1,
        **fields,
    }
    rt.store.add_subscriber(validate(values).model_dump(), now=NOW)


def _store_outlook(rt: Runtime, *, approval: bool, status: str = "Actual") -> Any:
    data = _outlook()
    pub, created = rt.store.create_bulletin(
        kind="outlook",
        identifier=outlook_identifier("51", NOW, rt.settings.timezone),
        sender=rt.settings.cap.sender,
        subject=render_bulletin(rt.renderer, "outlook", data, family="text").subject,
        level=data["level"],
        content=data,
        now=NOW,
        expires=NOW + timedelta(hours=72),
        approval=approval,
        status=status,
    )
    return pub, created


def _outbox(rt: Runtime) -> list[OutboxMessage]:
    with rt.store.session() as s:
        return list(s.query(OutboxMessage).order_by(OutboxMessage.recipient))


def test_identifiers_name_one_bulletin_per_scope_day_and_send() -> None:
    assert outlook_identifier("51", NOW, "Asia/Shanghai") == "OUTLOOK-51-20260720"
    assert outlook_identifier(None, NOW, "Asia/Shanghai") == "OUTLOOK-CN-20260720"
    ident = campaign_identifier("x" * 80, NOW, "Asia/Shanghai")
    assert len(ident) == 64 and ident.endswith("-202607200700")


def test_scope_codes_expand_prefixes_to_prefectures() -> None:
    sichuan = scope_codes(["51"], None)
    assert (
        "510100" in sichuan and "513300" in sichuan and not any(c.startswith("44") for c in sichuan)
    )
    county = scope_codes(["513225"], None)  # Jiuzhaigou county: its prefecture too
    assert {"513225", "513200"} <= county
    assert scope_codes([], None) == {NATIONAL}


def test_outlook_is_stored_once_reviewed_and_delivered_once_each(rt: Runtime) -> None:
    _subscribe(rt, "sichuan-all")
    _subscribe(rt, "chengdu-5101", areas=["5101"])
    _subscribe(rt, "students", audiences=["students"])  # the outlook is for everyone
    _subscribe(rt, "orange-only", min_level=3)  # wants warnings only, no publicity
    _subscribe(rt, "guangdong", areas=["44"])
    _subscribe(rt, "heat-only", hazards=["heat"])  # the outlook speaks of rain, not heat
    _subscribe(rt, "night", quiet_start="06:00", quiet_end="08:00")  # 07:00 local: quiet

    pub, created = _store_outlook(rt, approval=True)
    assert created and pub.approval == "pending" and pub.kind == "outlook"
    again, created_again = _store_outlook(rt, approval=True)
    assert again.id == pub.id and not created_again  # a rerun the same day makes nothing
    assert fan_out_new(rt) == 0  # waiting for the duty officer

    assert rt.store.decide_approval(
        pub.id, approve=True, actor="duty:li", reason="ok", now=NOW, guidance="注意防范山洪。"
    )
    created_rows = fan_out_new(rt)
    assert created_rows == 4  # weibo-desk, sichuan-all, chengdu-5101, students
    assert fan_out_new(rt) == 0
    dispatch_due(rt)
    dispatch_due(rt)
    got = _outbox(rt)
    assert sorted(m.recipient for m in got) == [
        "chengdu-5101",
        "sichuan-all",
        "students",
        "weibo-desk",
    ]
    assert all(m.identifier == pub.identifier for m in got)
    body = got[0].body
    assert "雅安" in body and "注意防范山洪" in body  # the officer's advice replaced the packaged
    audit = rt.store.audit(f"outlook:{pub.identifier}")
    assert [a.action for a in audit] == ["issue", "approve"]
    assert audit[1].actor == "duty:li"


def test_exercise_bulletin_reaches_internal_channels_only_and_never_responders(
    rt: Runtime,
) -> None:
    _subscribe(rt, "sichuan-all")
    pub, _ = _store_outlook(rt, approval=False, status="Exercise")
    messages, rows = bulletin_rows(
        pub, rt.renderer, rt.settings.channels, rt.store.subscribers_frame(), now=NOW
    )
    assert rows["recipient"].tolist() == ["drill"]
    assert messages[0].subject.startswith("【演练】")
    actual, _ = rt.store.create_bulletin(
        kind="outlook",
        identifier="OUTLOOK-51-test",
        sender="x",
        subject="s",
        level=2,
        content=_outlook(),
        now=NOW,
        expires=None,
        approval=False,
    )
    _, rows = bulletin_rows(
        actual, rt.renderer, rt.settings.channels, rt.store.subscribers_frame(), now=NOW
    )
    assert set(rows["channel"]) == {"outbox"}  # not drill (internal), not depts (responders)


def test_campaign_audiences_select_subscribers(rt: Runtime) -> None:
    _subscribe(rt, "public")
    _subscribe(rt, "parent", audiences=["students"])
    _subscribe(rt, "driver", audiences=["drivers"])
    _subscribe(rt, "elsewhere", areas=["44"], audiences=["students"])
    content = {
        "kind": "campaign",
        "campaign": "term-start",
        "regions": ["5101"],
        "audiences": ["students"],
        "hazards": [],
        "channels": ["outbox"],
        "context": {},
    }
    pub, _ = rt.store.create_bulletin(
        kind="campaign",
        identifier="CAMPAIGN-term-start-202609010900",
        sender="x",
        subject="开学安全提示",
        level=0,
        content=content,
        now=NOW,
        expires=None,
        approval=False,
    )
    from alerts.subscribers import match_bulletin

    hit = match_bulletin(
        rt.store.subscribers_frame(active_only=True),
        hazards=[],
        audiences=content["audiences"],
        region_codes=scope_codes(content["regions"], None),
        when=NOW,
    )
    assert sorted(hit["address"]) == ["parent", "public"]
    assert pub.kind == "campaign"
    with pytest.raises(ValueError, match="audiences: unknown"):
        validate(
            {"name": "x", "channel": "outbox", "address": "x", "areas": "51", "audiences": "aliens"}
        )


def test_bulletin_review_waits_in_its_own_dag_and_publishes_as_is_on_timeout(
    rt: Runtime,
) -> None:
    p = plan(rt.settings.approval, 0, "outlook")
    assert (p.timeout_min, p.on_timeout) == (30.0, "publish")
    assert "自动发布" in p.text
    pub, _ = _store_outlook(rt, approval=True)
    assert approval_requests(rt, "publish-run") == []  # publish_alerts asks about warnings only
    (req,) = approval_requests(rt, "outlook-run", kinds=("outlook",))
    assert req["identifier"] == pub.identifier
    assert req["defaults"] == [option(PUBLISH, pub.identifier)]
    assert req["timeout_s"] == 30 * 60
    assert "待审核" in req["body"] and "雅安" in req["body"]
    # the scheduler's timeout answers with the default and no user
    result = {"chosen_options": req["defaults"], "params_input": {}, "responded_by_user": None}
    assert apply_approvals(rt, "outlook-run", [req], [result]) == {pub.identifier: "approved"}
    decided = rt.store.publication(pub.identifier)
    assert decided is not None and decided.approval == "approved"
    assert decided.approval_actor == "timeout-default"
    assert fan_out_new(rt) == 1  # the static recipient; nobody subscribed


def test_the_cli_lists_and_approves_a_bulletin(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    from alerts.cli import main

    pub, _ = _store_outlook(rt, approval=True)
    assert main(["approvals", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    listed = json.loads(line)
    assert (listed["identifier"], listed["kind"]) == (pub.identifier, "outlook")
    assert (listed["timeout_min"], listed["on_timeout"]) == (30.0, "publish")
    assert main(["approve", pub.identifier, "--reason", "看过了"]) == 0
    decided = json.loads(capsys.readouterr().out)
    assert decided["decision"] == "approved" and decided["delivered"] == 1  # the outbox
