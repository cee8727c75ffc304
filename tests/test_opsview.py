"""The duty officer's overview on SQLite and PostgreSQL: grouping, deliveries, approvals, feeds."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from alerts.config import Settings, load_settings
from alerts.feeds.base import Quarantined
from alerts.lifecycle import Decision
from alerts.model import Action, Hazard, Level, Warning
from alerts.opsview import mask_recipient, overview, region_alerts
from alerts.regions import load_regions
from alerts.store import DeliveryOutcome, NewDelivery, NewMessage, Publisher, Store

NOW = datetime(2026, 7, 10, 6, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
PHONE = "+8613800138000"
EMAIL = "zhang.san@example.com"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@pytest.fixture
def env(
    alerts_env: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Store, Settings]]:
    monkeypatch.setenv("ALERTS_STORE_URL", store_url)
    settings = load_settings()
    with Store(store_url) as store:
        yield store, settings


def _warning(
    hazard: Hazard, level: Level, region: str, name: str, subject: str, hours: float = 12
) -> Warning:
    return Warning(
        hazard=hazard,
        level=level,
        region_code=region,
        region_name=name,
        subject=subject,
        onset=NOW,
        expires=NOW + timedelta(hours=hours),
        rule_id=f"{hazard.value}-test",
        rule_set_version="test",
        observed=120.0,
        threshold=100.0,
        reason="test",
        facts={},
    )


def _aid(w: Warning) -> str:
    return f"{w.hazard.value}:{w.subject}:{w.region_code}"


def _issue(store: Store, *warnings: Warning, approve: bool = False, at: datetime = NOW) -> None:
    publisher = Publisher(needs_approval=(lambda *_: True) if approve else None)
    store.apply(
        [Decision(Action.ISSUE, _aid(w), w, None, "t") for w in warnings],
        now=at,
        publisher=publisher,
    )


RAIN_CD = _warning(Hazard.RAINSTORM, Level.RED, "510100", "四川省成都市", "weather")
RAIN_MY = _warning(Hazard.RAINSTORM, Level.RED, "510700", "四川省绵阳市", "weather")
QUAKE_CN = _warning(Hazard.EARTHQUAKE, Level.ORANGE, "CN", "全国", "usgs:us1", hours=24)
TYPHOON_GD = _warning(Hazard.TYPHOON, Level.YELLOW, "440000", "广东省", "cma:t1")
HEAT_BJ = _warning(Hazard.HEAT, Level.ORANGE, "110100", "北京市", "weather")
GALE_SH = _warning(Hazard.GALE, Level.RED, "310100", "上海市", "weather")


def _fan_out_rain(store: Store) -> int:
    """Fan the rainstorm publication out to four recipients and record their fates."""
    (pub,) = [p for p in store.publications_to_fan_out() if p.hazard == "rainstorm"]
    messages = [NewMessage(c, "zh-CN", "s", "b") for c in ("sms", "email", "wechat_oa")]
    rows = [
        NewDelivery(f"k/sms/{PHONE}", "sms", PHONE, "zh-CN"),
        NewDelivery("k/sms/+8613900139000", "sms", "+8613900139000", "zh-CN"),
        NewDelivery(f"k/email/{EMAIL}", "email", EMAIL, "zh-CN"),
        NewDelivery(f"k/wx/{OPENID}", "wechat_oa", OPENID, "zh-CN"),
    ]
    assert store.fan_out(pub, messages, rows, now=NOW) == 4
    claim = store.claim_deliveries(now=NOW, worker="w", limit=10)
    assert claim is not None
    by = {d.recipient: d.id for d in claim.rows}
    vendor = f"isv.MOBILE_NUMBER_ILLEGAL: 号码 {PHONE} 非法 " + "x" * 400
    store.record_outcomes(
        [
            DeliveryOutcome(by[PHONE], "dead", None, "isv.MOBILE_NUMBER_ILLEGAL", vendor),
            DeliveryOutcome(by["+8613900139000"], "sent", "biz-1"),
            DeliveryOutcome(by[EMAIL], "unknown", None, "timeout", "no answer from smtp"),
            DeliveryOutcome(by[OPENID], "retry", None, "45009", "api limit", next_attempt_at=LATER),
        ],
        now=NOW,
        claim=claim.token,
    )
    return pub.id


def _scenario(store: Store) -> int:
    _issue(store, RAIN_CD, RAIN_MY)  # one publication, two regions
    _issue(store, QUAKE_CN)
    _issue(store, TYPHOON_GD)
    pub_id = _fan_out_rain(store)
    _issue(store, HEAT_BJ, approve=True)  # orange: waits for an answer
    _issue(store, GALE_SH, approve=True, at=NOW + timedelta(minutes=1))  # red: 10 min default
    return pub_id


def _feeds(store: Store) -> None:
    hour = timedelta(hours=1)
    store.record_fetch("usgs", source="usgs", url="https://e.x/q?api_key=SECRET", now=NOW - hour)
    store.record_fetch(
        "usgs",
        source="usgs",
        url="https://e.x/q?api_key=SECRET",
        now=LATER,
        error="HTTP 503 from https://e.x/q?api_key=SECRET " + "y" * 500,
    )
    store.record_fetch("cenc", source="cenc", url="https://cenc.x/feed", now=LATER)
    store.record_fetch("watch:usgs", source="usgs", url="https://e.x/q", now=NOW - hour)
    store.record_fetch("ingested:usgs", source="usgs", url="https://e.x/q", now=NOW)
    bad = [Quarantined("usgs", "k1", "no magnitude", {"id": "k1"})]
    store.quarantine(bad, payload_id=None, now=NOW - timedelta(days=3))
    store.quarantine(bad * 2, payload_id=None, now=NOW)
    store.quarantine([Quarantined("gdacs", None, "bad xml", "<x")], payload_id=None, now=NOW)


def _by_hazard(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["hazard"]: a for a in view["alerts"]}


def test_active_alerts_are_grouped_by_publication_with_deliveries(
    env: tuple[Store, Settings],
) -> None:
    store, settings = env
    _scenario(store)
    view = overview(store, settings, now=LATER)
    json.dumps(view, ensure_ascii=False)  # JSON-ready as it is
    alerts = _by_hazard(view)
    assert [a["hazard"] for a in view["alerts"]] == [
        "gale",  # red, newest first
        "rainstorm",
        "earthquake",
        "heat",
        "typhoon",
    ]
    rain = alerts["rainstorm"]
    pub = store.publication(rain["identifier"])
    assert pub is not None and rain["cap_url"] == f"/alerts-public/cap/{pub.identifier}.xml"
    assert [(r["code"], r["name"]) for r in rain["regions"]] == [
        ("510100", "四川省成都市"),
        ("510700", "四川省绵阳市"),
    ]
    assert (rain["level"], rain["colour"], rain["level_zh"], rain["label"]) == (
        4,
        "red",
        "红色",
        "红色 Red",
    )
    assert (rain["hazard_zh"], rain["hazard_en"], rain["action"], rain["action_zh"]) == (
        "暴雨",
        "Rainstorm",
        "issue",
        "发布",
    )
    assert rain["state"] == "active" and rain["versions"] == {"current": 1, "count": 1}
    assert rain["approval"]["state"] == "none"
    assert rain["sent"] == "2026-07-10T06:00:00Z" and rain["expires"] == "2026-07-10T18:00:00Z"
    d = rain["deliveries"]
    assert d["identifier"] == rain["identifier"] and d["total"] == 4
    assert d["by_channel"]["sms"] == {
        "pending": 0,
        "sending": 0,
        "sent": 1,
        "retry": 0,
        "dead": 1,
        "unknown": 0,
    }
    assert d["by_channel"]["wechat_oa"]["retry"] == 1 and d["by_channel"]["email"]["unknown"] == 1
    assert d["by_status"] == {
        "pending": 0,
        "sending": 0,
        "sent": 1,
        "retry": 1,
        "dead": 1,
        "unknown": 1,
    }
    letters = {x["channel"]: x for x in d["dead_letters"]}
    assert set(letters) == {"sms", "email"} and d["dead_letters_total"] == 2
    sms = letters["sms"]
    assert sms["recipient"] == "+*********8000" and sms["status"] == "dead"
    assert sms["error_code"] == "isv.MOBILE_NUMBER_ILLEGAL" and sms["attempts"] == 1
    assert PHONE not in sms["error_text"] and "+*********8000" in sms["error_text"]
    assert len(sms["error_text"]) == 300
    assert letters["email"]["recipient"] == "z***@example.com"
    assert letters["email"]["error_text"] == "no answer from smtp"
    assert view["counts"] == {
        "active_alerts": 6,
        "publications": 5,
        "pending_approvals": 2,
        "dead_letters": 1,
        "unknown": 1,
        "stale_feeds": 0,
        "failing_feeds": 0,
        "quarantined_24h": 0,
    }
    for text in _times(view):
        assert text.endswith("Z")


def _times(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str) and (k.endswith("_at") or k in ("sent", "expires", "onset")):
                yield v
            else:
                yield from _times(v)
    elif isinstance(value, list):
        for v in value:
            yield from _times(v)


def test_national_banner_and_map_levels(env: tuple[Store, Settings]) -> None:
    store, settings = env
    _scenario(store)
    view = overview(store, settings, now=LATER)
    national = view["national"]
    quake = _by_hazard(view)["earthquake"]
    assert national["active"] is True and national["level"] == 3
    assert national["identifier"] == quake["identifier"] and quake["national"] is True
    assert (national["hazard_zh"], national["level_zh"]) == ("地震", "橙色")
    levels = view["map_levels"]
    assert "CN" not in levels
    assert levels["510100"] == 4 and levels["510700"] == 4 and levels["310100"] == 4
    guangdong = [c for c in load_regions().frame["adcode"] if c.startswith("44")]
    assert len(guangdong) == 21 and all(levels[c] == 2 for c in guangdong)
    assert levels["110100"] == 3  # active, though its message waits for approval

    chengdu = region_alerts(store, "510100")
    assert [(a["hazard"], a["region_code"]) for a in chengdu] == [
        ("rainstorm", "510100"),
        ("earthquake", "CN"),
    ]
    assert chengdu[0]["cap_url"] == quake["cap_url"].replace(
        quake["identifier"], chengdu[0]["identifier"]
    )
    shenzhen = region_alerts(store, "440300")
    assert [(a["hazard"], a["region_code"]) for a in shenzhen] == [
        ("earthquake", "CN"),
        ("typhoon", "440000"),
    ]
    assert [a["hazard"] for a in region_alerts(store, "650100")] == ["earthquake"]


def test_no_national_alert(env: tuple[Store, Settings]) -> None:
    store, settings = env
    _issue(store, RAIN_CD)
    view = overview(store, settings, now=LATER)
    assert view["national"] == {"active": False, "level": None, "identifier": None, "alerts": []}
    assert view["map_levels"] == {"510100": 4}


def test_pending_approvals_come_with_their_plan(env: tuple[Store, Settings]) -> None:
    store, settings = env
    _scenario(store)
    view = overview(store, settings, now=LATER)
    approvals = {a["hazard"]: a for a in view["approvals"]}
    heat, gale = approvals["heat"], approvals["gale"]
    assert (heat["level"], heat["timeout_min"], heat["on_timeout"]) == (3, None, None)
    assert heat["waiting_min"] == 5.0 and heat["asked"] is False
    assert heat["on_timeout_text"].startswith("无人应答时一直等待")
    assert (gale["level"], gale["timeout_min"], gale["on_timeout"]) == (4, 10.0, "publish")
    assert gale["waiting_min"] == 4.0 and "自动发布" in gale["on_timeout_text"]
    assert gale["regions"] == [{"code": "310100", "name": "上海市"}]
    assert gale["lead_alert_id"] == "gale:weather:310100"
    assert gale["subject"] == "weather" and gale["cap_url"].endswith(".xml")
    alerts = _by_hazard(view)
    assert alerts["gale"]["approval"]["state"] == "pending"
    assert alerts["gale"]["deliveries"]["total"] == 0

    store.decide_approval(
        gale["publication_id"], approve=False, actor="duty:li", reason="drill", now=LATER
    )
    view = overview(store, settings, now=LATER)
    assert [a["hazard"] for a in view["approvals"]] == ["heat"]
    assert _by_hazard(view)["gale"]["approval"] == {
        "state": "rejected",
        "state_zh": "已驳回",
        "actor": "duty:li",
        "at": "2026-07-10T06:05:00Z",
        "reason": "drill",
    }


def test_a_pending_bulletin_is_listed_with_its_own_dag_and_default(
    env: tuple[Store, Settings],
) -> None:
    store, settings = env
    store.create_bulletin(
        kind="outlook",
        identifier="OUTLOOK-51-20260710",
        sender="x",
        subject="四川省未来72小时灾害性天气风险提示",
        level=0,
        content={"kind": "outlook", "scope": {"code": "51", "name": "四川省"}},
        now=NOW,
        expires=None,
        approval=True,
    )
    view = overview(store, settings, now=LATER)
    (entry,) = view["approvals"]
    assert (entry["kind"], entry["dag"], entry["hazard_zh"]) == (
        "outlook",
        "daily_outlook",
        "每日风险展望",
    )
    assert (entry["level"], entry["cap_url"]) == (0, None)  # no CAP document, no level
    assert (entry["timeout_min"], entry["on_timeout"]) == (30.0, "publish")
    assert view["alerts"] == []  # a bulletin is not an active warning


def test_recent_bulletins_show_their_review_and_deliveries(env: tuple[Store, Settings]) -> None:
    store, settings = env
    pub, _ = store.create_bulletin(
        kind="campaign",
        identifier="CAMPAIGN-term-start-students-202607100900",
        sender="x",
        subject="开学安全提示",
        level=0,
        content={"kind": "campaign", "context": {}},
        now=NOW,
        expires=None,
        approval=False,
    )
    store.fan_out(
        pub,
        [NewMessage("outbox", "zh-CN", "开学安全提示", "body")],
        [NewDelivery(f"{pub.identifier}/outbox/{r}", "outbox", r, "zh-CN") for r in ("a", "b")],
        now=NOW,
    )
    old, _ = store.create_bulletin(
        kind="outlook",
        identifier="OUTLOOK-CN-20260705",
        sender="x",
        subject="old",
        level=2,
        content={"kind": "outlook"},
        now=NOW - timedelta(days=5),
        expires=None,
        approval=False,
    )
    (entry,) = overview(store, settings, now=LATER)["bulletins"]  # five days ago: not listed
    assert entry["identifier"] == pub.identifier and entry["kind_zh"] == "专项宣传"
    assert entry["fanned_out"] and entry["deliveries"]["total"] == 2
    assert entry["approval"]["state"] == "none" and entry["level"] == 0


def test_after_a_quiet_extension_the_message_people_got_keeps_its_dead_letters(
    env: tuple[Store, Settings],
) -> None:
    store, settings = env
    pub_id = _scenario(store)
    first = store.publications_by_id([pub_id])[pub_id].identifier
    extended = [
        Decision(
            Action.EXTEND,
            _aid(w),
            dataclasses.replace(w, expires=NOW + timedelta(hours=24)),
            store.active_alert(_aid(w)),
            "t",
        )
        for w in (RAIN_CD, RAIN_MY)
    ]
    store.apply(extended, now=LATER, publisher=Publisher())
    assert store.resend(pub_id, mode="failed", actor="duty", reason="fixed", now=LATER) == 2
    rain = _by_hazard(overview(store, settings, now=LATER))["rainstorm"]
    assert rain["identifier"] != first and rain["action"] == "extend" and rain["notify"] is False
    assert rain["versions"] == {"current": 2, "count": 2}
    assert rain["expires"] == "2026-07-11T06:00:00Z"
    d = rain["deliveries"]
    assert d["identifier"] == first and d["by_status"]["pending"] == 2
    letters = {x["channel"]: x for x in d["dead_letters"]}
    assert letters["sms"]["resent"] == "pending" and letters["email"]["resent"] == "pending"


def test_dead_letters_are_capped_and_queries_stay_bounded(
    env: tuple[Store, Settings],
) -> None:
    store, settings = env
    _issue(store, RAIN_CD)
    (pub,) = store.publications_to_fan_out()
    phones = [f"+86139{n:08d}" for n in range(120)]
    store.fan_out(
        pub,
        [NewMessage("sms", "zh-CN", "s", "b")],
        [NewDelivery(f"k/{p}", "sms", p, "zh-CN") for p in phones],
        now=NOW,
    )
    claim = store.claim_deliveries(now=NOW, worker="w", limit=500)
    assert claim is not None
    store.record_outcomes(
        [DeliveryOutcome(d.id, "dead", None, "E1", f"bad {d.recipient}") for d in claim.rows],
        now=NOW,
    )
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        view = overview(store, settings, now=LATER)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    d = view["alerts"][0]["deliveries"]
    assert d["dead_letters_total"] == 120 and len(d["dead_letters"]) == 50 and d["truncated"]
    assert d["dead_letters"][0]["recipient"] == "+*********0119"  # newest first
    assert all(x["error_text"].startswith("bad +*") for x in d["dead_letters"])
    assert view["counts"]["dead_letters"] == 120
    assert len(statements) <= 12, statements


def test_feed_health_staleness_and_quarantine(env: tuple[Store, Settings]) -> None:
    store, settings = env
    _feeds(store)
    view = overview(store, settings, now=LATER)
    feeds = {f["feed"]: f for f in view["feeds"]}
    assert set(feeds) == {"cenc", "usgs", "watch:usgs"}  # ingested:* is bookkeeping
    usgs = feeds["usgs"]
    assert usgs["stale"] is True and usgs["consecutive_failures"] == 1
    assert usgs["limit_s"] == 180 and usgs["age_s"] == 3900
    assert usgs["last_success_at"] == "2026-07-10T05:00:00Z"
    assert usgs["last_failure_at"] == "2026-07-10T06:05:00Z"
    assert len(usgs["last_error"]) == 300 and "SECRET" not in usgs["last_error"]
    assert usgs["url"] == "https://e.x/q"
    assert usgs["quarantined"] == {"last_24h": 2, "total": 3} and usgs["kind"] == "feed"
    assert feeds["cenc"]["stale"] is False and feeds["cenc"]["quarantined"] == {
        "last_24h": 0,
        "total": 0,
    }
    assert feeds["watch:usgs"]["kind"] == "watch" and feeds["watch:usgs"]["stale"] is False
    assert view["quarantine"] == {
        "gdacs": {"last_24h": 1, "total": 1},
        "usgs": {"last_24h": 2, "total": 3},
    }
    counts = view["counts"]
    assert (counts["stale_feeds"], counts["failing_feeds"], counts["quarantined_24h"]) == (1, 1, 3)
    assert (counts["active_alerts"], view["alerts"], view["approvals"]) == (0, [], [])


def test_each_alert_carries_its_response_procedure(
    env: tuple[Store, Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, settings = env
    _scenario(store)
    view = overview(store, settings, now=LATER)
    alerts = _by_hazard(view)
    rain = alerts["rainstorm"]["procedure"]
    assert (rain["entry"], rain["level"], rain["response"], rain["response_zh"]) == (
        "rainstorm",
        4,
        "I",
        "I级应急响应",
    )
    assert rain["on_duty"]["zh"].startswith("主要领导坐镇指挥")
    water = next(d for d in rain["departments"] if d["id"] == "water")
    assert {"zh": "水库按调度泄洪，堤防24小时巡守", "en": "Release reservoirs as scheduled; "
            "guard dikes around the clock"} in water["do"]  # fmt: skip
    heat = alerts["heat"]["procedure"]  # orange heat, its message awaiting approval
    assert (heat["entry"], heat["response"]) == ("heat", "III")
    typhoon = alerts["typhoon"]["procedure"]
    assert (typhoon["entry"], typhoon["response"]) == ("typhoon", "III")
    quake = view["national"]["alerts"][0]["procedure"]
    assert (quake["entry"], quake["level"]) == ("earthquake", 3)
    # the map's click-through carries it too
    (chengdu, _) = region_alerts(store, "510100")
    assert chengdu["procedure"] == rain

    # an operator's file (settings.responders_file) replaces the packaged procedures
    own = tmp_path / "responders.yaml"
    own.write_text(
        "version: ours\n"
        "departments: {water: 水务局 | Water bureau}\n"
        "procedures:\n"
        "  any:\n"
        "    red: {response: II, on_duty: 局长带班 | The director on duty,\n"
        "          departments: {water: {do: [巡堤 | Patrol the dikes]}}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ALERTS_RESPONDERS_FILE", str(own))
    ours = overview(store, load_settings(), now=LATER)
    rain = _by_hazard(ours)["rainstorm"]["procedure"]
    assert (rain["entry"], rain["response"], rain["version"]) == ("any", "II", "ours")
    assert rain["departments"] == [
        {
            "id": "water",
            "zh": "水务局",
            "en": "Water bureau",
            "inspect": [],
            "close": [],
            "do": [{"zh": "巡堤", "en": "Patrol the dikes"}],
        }
    ]
    assert _by_hazard(ours)["heat"]["procedure"] is None  # none for orange in that file


@pytest.mark.parametrize(
    ("recipient", "shown"),
    [
        ("+8613800138000", "+*********8000"),
        ("13800138000", "*******8000"),
        ("zhang.san@example.com", "z***@example.com"),
        ("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "oU***eS6o"),
        ("https://oapi.dingtalk.com/robot/send?access_token=abc", "https://oapi.dingtalk.com/***"),
        ("duty-room", "d***"),
        ("", ""),
    ],
)
def test_recipients_are_masked(recipient: str, shown: str) -> None:
    assert mask_recipient(recipient) == shown
