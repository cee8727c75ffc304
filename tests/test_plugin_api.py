"""The plugin's operator API (login required) and the WeChat server push (signed, no login)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.airflow

TOKEN = "tok3n"
OPENID = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
CHANNELS = [
    {"name": "outbox", "type": "outbox"},
    {"name": "sms-main", "type": "sms", "enabled": False},
    {"name": "hook", "type": "webhook", "enabled": False},
    {"name": "wechat", "type": "wechat_oa", "enabled": False},
]
CSV = """name,channel,address,language,areas,hazards,min_level,quiet_start,quiet_end
Chengdu office,sms-main,13800000001,zh-CN,510100,rainstorm|gale,yellow,22:00,06:00
Bad phone,sms-main,not-a-phone,zh-CN,51,,blue,,
Sichuan desk,outbox,desk,en,51,,blue,,
"""


@pytest.fixture(scope="module")
def plugin() -> Iterator[ModuleType]:
    """The plugin module, loaded as Airflow's plugins manager loads it (registered in
    sys.modules, which pydantic needs to resolve the request models' annotations)."""
    name = "alerts_ops_api_under_test"
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / "alerts_ops.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


@pytest.fixture
def env(alerts_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALERTS_CHANNELS", json.dumps(CHANNELS))
    return alerts_env


@pytest.fixture
def wechat_env(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALERTS_SUBSCRIPTIONS__WECHAT_CHANNEL", "wechat")
    monkeypatch.setenv("ALERTS_SUBSCRIPTIONS__WECHAT_TOKEN", TOKEN)
    monkeypatch.setenv("ALERTS_SUBSCRIPTIONS__DEFAULT_AREAS", '["51"]')
    monkeypatch.setenv("ALERTS_SUBSCRIPTIONS__DEFAULT_MIN_LEVEL", "orange")
    return env


@pytest.fixture
def anonymous(plugin: ModuleType) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(plugin.app)


@pytest.fixture
def duty(plugin: ModuleType) -> Iterator[Any]:
    """A client logged in as the duty officer (the op role of the simple auth manager)."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    user = SimpleAuthManagerUser(username="duty-officer", role="op")
    plugin.app.dependency_overrides[get_user] = lambda: user
    try:
        yield TestClient(plugin.app)
    finally:
        plugin.app.dependency_overrides.clear()


@pytest.fixture
def wechat(plugin: ModuleType) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(plugin.public)


def _store() -> Any:
    from alerts.config import load_settings
    from alerts.store import Store

    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    return Store(settings.resolved_store_url)


def _deliver_one(data: Path, home: Path) -> str:
    """Run one cycle on the recorded Dingri M7.1: one publication, delivered to the outbox."""
    from alerts.config import load_settings
    from alerts.pipeline import Runtime, run_cycle
    from tests.feedtools import usgs_features, usgs_feed

    now = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    feed = home.parent / "feed.json"
    features = usgs_features(data / "usgs" / "china_dingri_4.5_day.geojson")
    feed.write_bytes(usgs_feed(features, newest=now - timedelta(minutes=5)))
    rt = Runtime.from_settings(load_settings())
    try:
        run_cycle(rt, [("usgs", feed)], now=now)
        (pub,) = rt.store.publications()
        return pub.identifier
    finally:
        rt.close()


# -- login ----------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/subscribers"),
    ("POST", "/api/subscribers"),
    ("DELETE", "/api/subscribers/outbox/ops"),
    ("POST", "/api/subscribers/import"),
    ("GET", "/api/subscribers/export"),
    ("GET", "/api/deliveries"),
    ("GET", "/api/deliveries/summary"),
    ("POST", "/api/publications/X/resend"),
]


def test_every_api_route_requires_a_logged_in_user(env: Path, anonymous: Any) -> None:
    bodies: dict[str, Any] = {
        "/api/subscribers": {"name": "Ops", "channel": "outbox", "address": "ops", "areas": "51"},
        "/api/publications/X/resend": {"mode": "all", "reason": "test"},
    }
    for method, path in ROUTES:
        if method == "POST" and path.endswith("import"):
            answer = anonymous.request(method, path, content=CSV.encode())
        else:
            answer = anonymous.request(method, path, json=bodies.get(path))
        assert answer.status_code == 401, (method, path, answer.text)
    with _store() as store:
        assert store.subscribers_frame().empty  # nothing was written anonymously


# -- subscribers ------------------------------------------------------------------------------


def test_add_list_and_remove_subscribers(env: Path, duty: Any) -> None:
    ops = {"name": "Ops", "channel": "outbox", "address": "ops", "areas": "11|51"}
    added = duty.post("/api/subscribers", json={**ops, "min_level": "orange"})
    assert added.status_code == 201, added.text
    assert added.json()["channel"] == "outbox" and isinstance(added.json()["id"], int)
    hook = {"name": "Hook", "channel": "hook", "address": "https://h.example.org/a/b"}
    assert duty.post("/api/subscribers", json={**hook, "areas": ["51"]}).status_code == 201

    again = duty.post("/api/subscribers", json=ops)
    assert again.status_code == 409 and "already" in again.json()["detail"]
    bad_phone = {"name": "SMS", "channel": "sms-main", "address": "call me", "areas": "51"}
    refused = duty.post("/api/subscribers", json=bad_phone)
    assert refused.status_code == 422 and "not a phone number" in refused.json()["detail"]
    bad_area = duty.post("/api/subscribers", json={**ops, "address": "x", "areas": "5x"})
    assert bad_area.status_code == 422 and "5x" in bad_area.json()["detail"]
    assert duty.post("/api/subscribers", json=["not", "an", "object"]).status_code == 422

    listed = duty.get("/api/subscribers").json()
    assert [(s["channel"], s["address"]) for s in listed] == [
        ("outbox", "ops"),
        ("hook", "https://h.example.org/a/b"),
    ]
    first = listed[0]
    assert first["areas"] == ["11", "51"] and first["min_level"] == "orange"
    assert first["source"] == "operator" and first["active"] is True
    assert first["created_at"].endswith("Z")
    assert [s["address"] for s in duty.get("/api/subscribers?channel=hook").json()] == [
        "https://h.example.org/a/b"
    ]
    assert len(duty.get("/api/subscribers?limit=1").json()) == 1

    gone = duty.delete("/api/subscribers/outbox/ops", params={"reason": "left the team"})
    assert gone.status_code == 200 and gone.json()["deactivated"] is True
    (inactive,) = duty.get("/api/subscribers?active=false").json()
    assert inactive["address"] == "ops" and inactive["deactivated_reason"] == "left the team"
    assert [s["address"] for s in duty.get("/api/subscribers?active=true").json()] == [
        "https://h.example.org/a/b"
    ]
    # an address with slashes (a webhook URL), deleted for good
    purged = duty.delete("/api/subscribers/hook/https://h.example.org/a/b?purge=true")
    assert purged.status_code == 200 and purged.json()["removed"] is True
    assert duty.delete("/api/subscribers/outbox/nobody").status_code == 404
    assert [s["address"] for s in duty.get("/api/subscribers").json()] == ["ops"]


def test_import_reports_a_bad_row_by_line_and_export_gives_the_import_format(
    env: Path, duty: Any
) -> None:
    answer = duty.post(
        "/api/subscribers/import", content=CSV.encode(), headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["imported"], summary["updated"], summary["failed"]) == (2, 0, 1)
    (error,) = summary["errors"]
    assert error["line"] == 3 and "not a phone number" in error["reason"]

    exported = duty.get("/api/subscribers/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    lines = exported.text.splitlines()
    assert lines[0] == (
        "name,channel,address,language,areas,hazards,min_level,quiet_start,quiet_end,audiences"
    )
    assert "Chengdu office,sms-main,13800000001,zh-CN,510100,rainstorm|gale,yellow" in lines[2]

    again = duty.post("/api/subscribers/import", content=exported.content).json()
    assert (again["imported"], again["updated"], again["failed"]) == (0, 2, 0)
    header = duty.post("/api/subscribers/import", content=b"name,channel\nx,outbox\n")
    assert header.status_code == 422 and "missing columns" in header.json()["detail"]
    latin = duty.post("/api/subscribers/import", content="name\nCafé".encode("latin-1"))
    assert latin.status_code == 422 and "UTF-8" in latin.json()["detail"]


# -- deliveries and resend ----------------------------------------------------------------------


def test_deliveries_and_their_summary(
    env: Path, duty: Any, data: Path, national_only_rules: Path
) -> None:
    identifier = _deliver_one(data, env)
    (row,) = duty.get("/api/deliveries").json()
    assert set(row) == {
        "id",
        "key",
        "channel",
        "recipient",
        "status",
        "attempts",
        "origin",
        "error_code",
        "error_text",
        "provider_message_id",
        "updated_at",
    }
    assert (row["channel"], row["recipient"], row["status"], row["attempts"]) == (
        "outbox",
        "public",
        "sent",
        1,
    )
    assert row["key"].startswith(identifier) and row["updated_at"].endswith("Z")
    assert duty.get("/api/deliveries?status=dead&status=unknown").json() == []
    assert len(duty.get("/api/deliveries?status=dead,sent").json()) == 1
    assert len(duty.get("/api/deliveries", params={"identifier": identifier}).json()) == 1
    assert duty.get("/api/deliveries?identifier=nope").status_code == 404

    summary = duty.get("/api/deliveries/summary").json()
    assert summary == {"by_channel": {"outbox": {"sent": 1}}, "by_status": {"sent": 1}, "total": 1}
    assert duty.get("/api/deliveries/summary", params={"identifier": identifier}).json() == summary
    assert duty.get("/api/deliveries/summary?identifier=nope").status_code == 404


def test_a_resend_is_audited_with_the_logged_in_user(
    env: Path, duty: Any, data: Path, national_only_rules: Path
) -> None:
    identifier = _deliver_one(data, env)
    path = f"/api/publications/{identifier}/resend"

    assert duty.post(path, json={"mode": "failed", "reason": "check"}).json()["resent"] == 0
    answer = duty.post(path, json={"mode": "all", "reason": "客户端未收到 / not received"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"identifier": identifier, "mode": "all", "resent": 1}
    one = {"mode": "one", "channel": "outbox", "recipient": "public", "reason": "once more"}
    assert duty.post(path, json=one).json()["resent"] == 1

    rows = duty.get("/api/deliveries", params={"identifier": identifier}).json()  # newest first
    assert [(r["key"].rsplit("#", 1)[-1], r["status"]) for r in rows[:-1]] == [
        ("r2", "pending"),
        ("r1", "pending"),
    ]
    with _store() as store:
        pub = store.publication(identifier)
        resends = [a for a in store.audit(pub.lead_alert_id) if a.action == "resend"]
    assert [(a.actor, a.reason, a.details["mode"]) for a in resends] == [
        ("duty-officer", "check", "failed"),
        ("duty-officer", "客户端未收到 / not received", "all"),
        ("duty-officer", "once more", "one"),
    ]

    assert duty.post(path, json={"mode": "some", "reason": "x"}).status_code == 422
    assert duty.post(path, json={"mode": "all"}).status_code == 422  # no reason
    blank = duty.post(path, json={"mode": "all", "reason": "  "})
    assert blank.status_code == 422 and "reason" in blank.json()["detail"]
    half = duty.post(path, json={"mode": "one", "channel": "outbox", "reason": "x"})
    assert half.status_code == 422 and "recipient" in half.json()["detail"]
    stranger = {**one, "recipient": "nobody"}
    assert duty.post(path, json=stranger).status_code == 422
    unknown = duty.post("/api/publications/nope/resend", json={"mode": "all", "reason": "x"})
    assert unknown.status_code == 404


# -- the duty desk: each warning's response procedure --------------------------------------


def test_the_overview_the_region_view_and_the_page_show_the_response_procedure(
    env: Path, duty: Any, data: Path, national_only_rules: Path
) -> None:
    _deliver_one(data, env)  # the Dingri M7.1: a national red earthquake warning
    (alert,) = duty.get("/api/overview").json()["alerts"]
    procedure = alert["procedure"]
    assert (procedure["entry"], procedure["level"], procedure["response"]) == (
        "earthquake",
        4,
        "I",
    )
    seismology = next(d for d in procedure["departments"] if d["id"] == "seismology")
    assert seismology["do"][0] == {
        "zh": "震情监视和趋势研判",
        "en": "Watch aftershocks; assess the trend",
    }
    (region,) = duty.get("/api/regions/540200").json()
    assert region["procedure"] == procedure

    page = duty.get("/")
    assert page.status_code == 200, page.text[:500]
    row = page.text.split('<tr class="procedure" id="procedure-1">', 1)[1].split("</details>")[0]
    assert "部门响应" in row and "I级应急响应" in row and "Level I emergency response" in row
    assert procedure["on_duty"]["zh"] in row
    assert "<details open>" in row  # the most severe warning's procedure is unfolded
    assert "地震" in row and "震情监视和趋势研判" in row and "Watch aftershocks" in row
    assert row.index("震情监视和趋势研判") < row.index("Watch aftershocks")  # Chinese first


def test_the_page_lists_bulletins_and_their_review_in_their_own_dag(env: Path, duty: Any) -> None:
    from datetime import UTC, datetime

    with _store() as store:
        store.create_bulletin(
            kind="outlook",
            identifier="OUTLOOK-51-20260720",
            sender="x",
            subject="四川省未来72小时灾害性天气风险提示",
            level=2,
            content={"kind": "outlook"},
            now=datetime.now(UTC),
            expires=None,
            approval=True,
        )
    page = duty.get("/")
    assert page.status_code == 200, page.text[:500]
    bulletins = page.text.split('<table id="bulletins">', 1)[1].split("</table>")[0]
    assert "每日风险展望" in bulletins and "OUTLOOK-51-20260720" in bulletins
    assert "待审批" in bulletins or "pending" in bulletins
    assert "/dags/daily_outlook/required_actions" in bulletins
    approvals = page.text.split("Awaiting approval", 1)[1].split("<h2>", 1)[0]
    assert "the next daily_outlook run asks" in approvals  # not asked yet, by its own DAG
    assert ">CAP<" not in approvals  # a bulletin is no CAP document


def test_a_published_bulletin_is_a_public_page_and_an_unreviewed_one_is_not(
    env: Path, wechat: Any
) -> None:
    from datetime import UTC, datetime

    from alerts.pipeline import runtime
    from tests.test_bulletins import _outlook

    outlook = _outlook()  # Ya'an at yellow (rainstorm), in the shared JSON shape
    with runtime() as rt:
        pub, _ = rt.store.create_bulletin(
            kind="outlook",
            identifier="OUTLOOK-51-20260720",
            sender="x",
            subject="四川省未来72小时灾害性天气风险提示",
            level=outlook["level"],
            content=outlook,
            now=datetime.now(UTC),
            expires=None,
            approval=True,
        )
    path = "/bulletins/OUTLOOK-51-20260720"
    assert wechat.get(path).status_code == 404  # waiting for the duty officer: not public
    with runtime() as rt:
        rt.store.decide_approval(
            pub.id, approve=True, actor="duty:li", reason="", now=datetime.now(UTC)
        )
        assert wechat.get(path).status_code == 404  # approved, not yet sent
        rt.store.fan_out(pub, [], [], now=datetime.now(UTC))
    page = wechat.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "雅安市" in page.text and "data:image/png;base64," in page.text
    assert "cid:" not in page.text and "<script" not in page.text
    english = wechat.get(path, params={"lang": "en"})
    assert english.status_code == 200 and 'lang="en"' in english.text
    assert wechat.get("/cap/OUTLOOK-51-20260720.xml").status_code == 404  # no CAP document


# -- WeChat server push (public app, signed) ----------------------------------------------


def _signed(token: str = TOKEN, *, timestamp: int | None = None) -> dict[str, str]:
    from alerts.wechat_events import sign

    ts, nonce = str(timestamp or int(time.time())), "842721536"
    return {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce}


def _push(event: str, created: int) -> bytes:
    return (
        "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[]]></EventKey></xml>"
    ).encode()


def test_wechat_url_verification_echoes_echostr(wechat_env: Path, wechat: Any) -> None:
    answer = wechat.get("/wechat/events", params={**_signed(), "echostr": "5937473516713249"})
    assert answer.status_code == 200 and answer.text == "5937473516713249"
    assert answer.headers["content-type"].startswith("text/plain")

    forged = wechat.get("/wechat/events", params={**_signed("guess"), "echostr": "1"})
    assert forged.status_code == 403 and "1" not in forged.text.replace("403", "")
    assert wechat.get("/wechat/events", params={"echostr": "1"}).status_code == 403
    stale = _signed(timestamp=int(time.time()) - 3600)
    assert wechat.get("/wechat/events", params={**stale, "echostr": "1"}).status_code == 403


def test_a_signed_follow_subscribes_and_an_unfollow_deactivates(
    wechat_env: Path, wechat: Any, duty: Any
) -> None:
    created = int(time.time()) - 1
    follow = _push("subscribe", created)
    answer = wechat.post("/wechat/events", params=_signed(), content=follow)
    assert answer.status_code == 200 and answer.text == "success"
    assert answer.headers["content-type"].startswith("text/plain")
    (sub,) = duty.get("/api/subscribers").json()
    assert (sub["channel"], sub["address"], sub["source"]) == ("wechat", OPENID, "wechat")
    assert sub["areas"] == ["51"] and sub["min_level"] == "orange" and sub["active"]

    retry = wechat.post("/wechat/events", params=_signed(), content=follow)  # WeChat retries
    assert retry.status_code == 200 and retry.text == "success"
    assert len(duty.get("/api/subscribers").json()) == 1

    unfollow = _push("unsubscribe", created + 60)
    assert wechat.post("/wechat/events", params=_signed(), content=unfollow).text == "success"
    (sub,) = duty.get("/api/subscribers").json()
    assert not sub["active"] and sub["deactivated_reason"] == "取消关注 unsubscribed (WeChat)"


def test_an_unsigned_or_malformed_push_changes_nothing(
    wechat_env: Path, wechat: Any, duty: Any
) -> None:
    follow = _push("subscribe", int(time.time()))
    forged = wechat.post("/wechat/events", params=_signed("guess"), content=follow)
    assert forged.status_code == 403
    assert wechat.post("/wechat/events", content=follow).status_code == 403
    bad = wechat.post("/wechat/events", params=_signed(), content=b"<xml><oops></xml>")
    assert bad.status_code == 400 and "XML" in bad.json()["detail"]
    huge = wechat.post("/wechat/events", params=_signed(), content=b"<xml>" + b" " * 70_000)
    assert huge.status_code == 413
    assert duty.get("/api/subscribers").json() == []


def test_an_unconfigured_wechat_push_answers_503(env: Path, wechat: Any) -> None:
    follow = _push("subscribe", int(time.time()))
    answer = wechat.post("/wechat/events", params=_signed(), content=follow)
    assert answer.status_code == 503 and "WECHAT_CHANNEL" in answer.json()["detail"]
    verify = wechat.get("/wechat/events", params={**_signed(), "echostr": "1"})
    assert verify.status_code == 503


def test_the_operator_api_is_not_on_the_public_app(env: Path, wechat: Any) -> None:
    assert wechat.get("/api/subscribers").status_code == 404
    assert wechat.post("/api/publications/X/resend", json={}).status_code == 404
