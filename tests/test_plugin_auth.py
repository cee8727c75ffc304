"""Who may read and who may act on the duty desk, through Airflow's own auth manager.

The plugin runs inside the real api-server app (``create_app("core")``: the
simple auth manager, its login route, the UI's cookie middleware, the plugin
mounted by the plugins manager) on a migrated metadata database with the DAGs
serialized, so an action really creates a DAG run. Three users: ``admin``
(admin), ``duty`` (op) and ``watch`` (viewer).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.airflow

OPS = "/alerts-ops"
PUB = "/alerts-public"
HOST = "airflow.test"
PASSWORDS = {"admin": "admin-pw", "duty": "duty-pw", "watch": "watch-pw"}
WECHAT_TOKEN = "tok3n"
CHANNELS = [
    {"name": "outbox", "type": "outbox"},
    {"name": "duty-room", "type": "outbox", "audience": "internal", "recipients": ["duty-room"]},
    {"name": "wechat", "type": "wechat_oa", "enabled": False},
]
CSV = "name,channel,address,language,areas,hazards,min_level,quiet_start,quiet_end\n"
CSV += "Desk,outbox,desk,zh-CN,51,,blue,,\n"


@dataclass
class Server:
    app: Any
    tokens: dict[str, str]

    def client(self, user: str | None = None, *, cookie: bool = True) -> Any:
        """A client for ``user`` (None: anonymous): the UI's session cookie, or a Bearer token."""
        from fastapi.testclient import TestClient

        client = TestClient(self.app, base_url=f"http://{HOST}", raise_server_exceptions=False)
        if user is not None:
            if cookie:
                client.cookies.set("_token", self.tokens[user])
            else:
                client.headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return client


def _serialize_dags() -> None:
    """Write the DAGs to the metadata database, as the dag-processor does (and dag.test()).

    In this process: a subprocess would encrypt the asset watchers' trigger
    arguments with its own Fernet key, which this process could not read.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        needed = {"resend_alert", "cancel_alert", "exercise_message", "publish_alerts"}
        assert needed <= set(bag.dag_ids), bag.import_errors  # test_dags checks the rest
        sync_bag_to_db(bag, bundle.name, bundle.version)


@pytest.fixture(scope="module")
def server(airflow_db: str) -> Iterator[Server]:
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,duty:op,watch:viewer")
        Path(airflow_db, "simple_auth_manager_passwords.json.generated").write_text(
            json.dumps(PASSWORDS)
        )
        _serialize_dags()
        from airflow.api_fastapi.app import create_app, purge_cached_app

        purge_cached_app()
        app = create_app("core")
        login = TestClient(app, base_url=f"http://{HOST}")
        tokens = {}
        for user, password in PASSWORDS.items():
            answer = login.post("/auth/token", json={"username": user, "password": password})
            assert answer.status_code == 201, answer.text
            tokens[user] = answer.json()["access_token"]
        try:
            yield Server(app, tokens)
        finally:
            purge_cached_app()


@pytest.fixture
def env(alerts_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALERTS_CHANNELS", json.dumps(CHANNELS))
    monkeypatch.setenv("ALERTS_SUBSCRIPTIONS__WECHAT_CHANNEL", "wechat")
    monkeypatch.setenv("ALERTS_SUBSCRIPTIONS__WECHAT_TOKEN", WECHAT_TOKEN)
    monkeypatch.setenv("ALERTS_SUBSCRIPTIONS__DEFAULT_AREAS", '["51"]')
    return alerts_env


@pytest.fixture
def published(env: Path, data: Path, national_only_rules: Path) -> dict[str, str]:
    """The recorded Dingri M7.1, published: its publication identifier and alert id."""
    from tests.test_plugin_api import _deliver_one

    identifier = _deliver_one(data, env)
    from alerts.config import load_settings
    from alerts.store import Store

    with Store(load_settings().resolved_store_url) as store:
        pub = store.publication(identifier)
        assert pub is not None
        return {"identifier": identifier, "alert_id": pub.lead_alert_id}


def _csrf(client: Any) -> str:
    """The CSRF token the duty desk page embeds for the logged-in user."""
    page = client.get(f"{OPS}/")
    assert page.status_code == 200, page.text[:500]
    found = re.search(r'<meta name="alerts-csrf" content="([0-9a-f]{64})">', page.text)
    assert found, "the page embeds no CSRF token"
    return found.group(1)


# -- every route, every role ---------------------------------------------------------------

READS = [
    f"{OPS}/",
    f"{OPS}/outbox",
    f"{OPS}/api/outbox",
    f"{OPS}/api/overview",
    f"{OPS}/api/regions/540200",
    f"{OPS}/api/subscribers",
    f"{OPS}/api/subscribers/export",
    f"{OPS}/api/deliveries",
    f"{OPS}/api/deliveries/summary",
    f"{OPS}/api/runs/{{dag_id}}/{{run_id}}",  # a real run, filled in by the test
]


def _writes(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every state-changing route with a valid request (for the role allowed to act)."""
    resend = {"mode": "failed", "reason": "短信网关恢复 / gateway back"}
    return [
        (
            "POST",
            f"{OPS}/api/subscribers",
            {"json": {"name": "Ops", "channel": "outbox", "address": "ops", "areas": "51"}},
        ),
        ("POST", f"{OPS}/api/subscribers/import", {"content": CSV.encode()}),
        ("DELETE", f"{OPS}/api/subscribers/outbox/desk", {"params": {"reason": "left"}}),
        ("POST", f"{OPS}/api/publications/{ids['identifier']}/resend", {"json": resend}),
        (
            "POST",
            f"{OPS}/api/actions/resend",
            {"json": {"identifier": ids["identifier"], **resend}},
        ),
        (
            "POST",
            f"{OPS}/api/actions/cancel",
            {"json": {"alert_id": ids["alert_id"], "reason": "误报 / false alarm"}},
        ),
        (
            "POST",
            f"{OPS}/api/actions/exercise",
            {"json": {"text": "演练 drill", "reason": "周演练 / weekly drill"}},
        ),
    ]


def test_the_tables_here_cover_every_route_of_both_apps(server: Server) -> None:
    from fastapi.routing import APIRoute
    from starlette.routing import Mount

    mounted: dict[str, Any] = {r.path: r.app for r in server.app.routes if isinstance(r, Mount)}
    ops = {
        (m, OPS + r.path.replace("{address:path}", "{address}"))
        for r in mounted[OPS].routes
        if isinstance(r, APIRoute)
        for m in r.methods
    }
    listed = {("GET", p.replace("/regions/540200", "/regions/{adcode}")) for p in READS}
    for method, path, _ in _writes({"identifier": "{identifier}", "alert_id": "x"}):
        listed.add((method, path.replace("/outbox/desk", "/{channel}/{address}")))
    assert ops == listed
    public = {
        (m, PUB + r.path) for r in mounted[PUB].routes if isinstance(r, APIRoute) for m in r.methods
    }
    assert public == {
        ("GET", f"{PUB}/atom.xml"),
        ("GET", f"{PUB}/cap/{{identifier}}.xml"),
        ("GET", f"{PUB}/bulletins/{{identifier}}"),
        ("GET", f"{PUB}/wechat/events"),
        ("POST", f"{PUB}/wechat/events"),
    }


def _trigger_one(server: Server) -> dict[str, Any]:
    duty = server.client("duty", cookie=False)
    run = duty.post(f"{OPS}/api/actions/exercise", json={"text": "演练", "reason": "drill"})
    assert run.status_code == 202, run.text
    return dict(run.json())


def _read_paths(run: dict[str, Any]) -> list[str]:
    return [
        p.replace("{dag_id}", run["dag_id"]).replace("{run_id}", quote(run["run_id"], safe=""))
        for p in READS
    ]


def test_anonymous_gets_401_everywhere_on_the_operator_app(
    server: Server, published: dict[str, str]
) -> None:
    anonymous = server.client()
    run = _trigger_one(server)
    for path in _read_paths(run):
        assert anonymous.get(path).status_code == 401, path
    for method, path, kwargs in _writes(published):
        assert anonymous.request(method, path, **kwargs).status_code == 401, (method, path)
    bad = server.client()
    bad.headers["Authorization"] = "Bearer not-a-token"
    assert bad.get(f"{OPS}/api/overview").status_code in (401, 403)


def test_a_viewer_reads_everything_and_may_act_on_nothing(
    server: Server, published: dict[str, str]
) -> None:
    from alerts.config import load_settings
    from alerts.store import Store

    run = _trigger_one(server)
    for cookie in (True, False):
        watch = server.client("watch", cookie=cookie)
        for path in _read_paths(run):
            answer = watch.get(path)
            assert answer.status_code == 200, (path, answer.text[:300])
        token = _csrf(watch) if cookie else ""
        for method, path, kwargs in _writes(published):
            answer = watch.request(method, path, headers={"X-Alerts-CSRF": token}, **kwargs)
            assert answer.status_code == 403, (method, path, answer.text)
            assert "无权操作" in answer.json()["detail"], answer.text
            assert "not allowed" in answer.json()["detail"]
    with Store(load_settings().resolved_store_url) as store:
        assert store.subscribers_frame().empty
        assert store.active_alert(published["alert_id"]) is not None
    assert _runs("cancel_alert", "watch") == [] and _runs("resend_alert", "watch") == []


def _runs(dag_id: str, user: str) -> list[Any]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.triggering_user_name == user)
        ).all()
        session.expunge_all()
        return list(runs)


@pytest.mark.parametrize("user", ["duty", "admin"])
def test_op_and_admin_act_and_each_action_is_a_dag_run(
    server: Server, published: dict[str, str], user: str
) -> None:
    client = server.client(user)
    headers = {"X-Alerts-CSRF": _csrf(client), "Origin": f"http://{HOST}"}
    before = {d: len(_runs(d, user)) for d in ("resend_alert", "cancel_alert", "exercise_message")}
    answers = {}
    for method, path, kwargs in _writes(published):
        answer = client.request(method, path, headers=headers, **kwargs)
        assert answer.status_code in (200, 201, 202), (method, path, answer.text)
        answers[path] = answer.json()

    for action, dag_id in (
        ("resend", "resend_alert"),
        ("cancel", "cancel_alert"),
        ("exercise", "exercise_message"),
    ):
        got = answers[f"{OPS}/api/actions/{action}"]
        assert got["dag_id"] == dag_id and got["run_id"] and got["state"] == "queued"
        assert got["url"] == f"/dags/{dag_id}/runs/{quote(got['run_id'], safe='')}"
        (run,) = [r for r in _runs(dag_id, user) if r.run_id == got["run_id"]]
        assert run.triggering_user_name == user and run.run_type == "manual"
        assert len(_runs(dag_id, user)) == before[dag_id] + 1
        progress = client.get(f"{OPS}/api/runs/{dag_id}/{quote(got['run_id'], safe='')}")
        assert progress.status_code == 200
        status = progress.json()
        assert status["state"] == "queued" and status["done"] is False
        assert status["triggered_by_user"] == user and status["tasks"]
    cancel_run, resend_run = (answers[f"{OPS}/api/actions/{a}"] for a in ("cancel", "resend"))
    assert cancel_run["paused"] is False  # the new DAGs are not paused on creation
    (cancel,) = [r for r in _runs("cancel_alert", user) if r.run_id == cancel_run["run_id"]]
    assert cancel.conf == {"alert_id": published["alert_id"], "reason": "误报 / false alarm"}
    (resend,) = [r for r in _runs("resend_alert", user) if r.run_id == resend_run["run_id"]]
    assert resend.conf == {
        "identifier": published["identifier"],
        "mode": "failed",
        "channel": "",
        "recipient": "",
        "reason": "短信网关恢复 / gateway back",
    }


def test_actions_refuse_what_cannot_be_done_before_creating_a_run(
    server: Server, published: dict[str, str]
) -> None:
    duty = server.client("duty", cookie=False)
    before = len(_runs("cancel_alert", "duty")) + len(_runs("resend_alert", "duty"))
    nope = duty.post(f"{OPS}/api/actions/cancel", json={"alert_id": "nope", "reason": "x"})
    assert nope.status_code == 404 and "no active alert" in nope.json()["detail"]
    blank = {"alert_id": published["alert_id"], "reason": "  "}
    assert duty.post(f"{OPS}/api/actions/cancel", json=blank).status_code == 422
    unknown = {"identifier": "nope", "mode": "all", "reason": "x"}
    assert duty.post(f"{OPS}/api/actions/resend", json=unknown).status_code == 404
    half = {"identifier": published["identifier"], "mode": "one", "reason": "x"}
    assert duty.post(f"{OPS}/api/actions/resend", json=half).status_code == 422
    long = {"text": "x" * 501, "reason": "x"}
    assert duty.post(f"{OPS}/api/actions/exercise", json=long).status_code == 422
    assert len(_runs("cancel_alert", "duty")) + len(_runs("resend_alert", "duty")) == before
    other = duty.get(f"{OPS}/api/runs/publish_alerts/whatever")
    assert other.status_code == 404  # only the duty desk's own DAGs
    assert duty.get(f"{OPS}/api/runs/cancel_alert/nope").status_code == 404
    assert duty.get(f"{OPS}/api/regions/<script>").status_code == 422


# -- cross-site request forgery -------------------------------------------------------------


def test_a_cookie_session_must_send_the_csrf_token_of_its_own_user(
    server: Server, published: dict[str, str]
) -> None:
    duty = server.client("duty")
    admin_token = _csrf(server.client("admin"))
    token = _csrf(duty)
    assert token != admin_token and token == _csrf(server.client("duty"))  # per user, stable
    before = len(_runs("exercise_message", "duty"))
    for method, path, kwargs in _writes(published):
        for headers in ({}, {"X-Alerts-CSRF": "0" * 64}, {"X-Alerts-CSRF": admin_token}):
            answer = duty.request(method, path, headers=headers, **kwargs)
            assert answer.status_code == 403, (method, path, headers, answer.text)
            assert "X-Alerts-CSRF" in answer.json()["detail"]
    assert len(_runs("exercise_message", "duty")) == before
    # reads need no token
    assert duty.get(f"{OPS}/api/overview").status_code == 200


def test_a_foreign_origin_or_referer_is_refused_even_with_the_token(
    server: Server, published: dict[str, str]
) -> None:
    duty = server.client("duty")
    token = _csrf(duty)
    bearer = server.client("duty", cookie=False)
    for method, path, kwargs in _writes(published):
        for foreign in (
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Referer": "https://evil.example/page"},
            {"Origin": f"http://{HOST}.evil.example"},
        ):
            answer = duty.request(
                method, path, headers={"X-Alerts-CSRF": token, **foreign}, **kwargs
            )
            assert answer.status_code == 403, (method, path, foreign, answer.text)
            assert "cross-site" in answer.json()["detail"]
            assert bearer.request(method, path, headers=foreign, **kwargs).status_code == 403
    same = {"X-Alerts-CSRF": token, "Referer": f"http://{HOST}/alerts-ops/"}
    ok = duty.post(f"{OPS}/api/actions/exercise", json={"text": "t", "reason": "r"}, headers=same)
    assert ok.status_code == 202, ok.text


def test_a_bearer_token_is_not_ambient_and_needs_no_csrf_header(
    server: Server, published: dict[str, str]
) -> None:
    duty = server.client("duty", cookie=False)
    answer = duty.post(f"{OPS}/api/actions/exercise", json={"text": "t", "reason": "script"})
    assert answer.status_code == 202, answer.text


# -- the public app stays public --------------------------------------------------------------


def _signed(token: str = WECHAT_TOKEN) -> dict[str, str]:
    from alerts.wechat_events import sign

    ts, nonce = str(int(time.time())), "842721536"
    return {"signature": sign(token, ts, nonce), "timestamp": ts, "nonce": nonce}


def test_the_public_app_needs_no_login_and_wechat_checks_its_signature(
    server: Server, published: dict[str, str]
) -> None:
    anonymous = server.client()
    atom = anonymous.get(f"{PUB}/atom.xml")
    assert atom.status_code == 200 and published["identifier"] in atom.text
    cap = anonymous.get(f"{PUB}/cap/{published['identifier']}.xml")
    assert cap.status_code == 200 and cap.headers["content-type"] == "application/cap+xml"
    assert anonymous.get(f"{PUB}/cap/nope.xml").status_code == 404

    echo = anonymous.get(f"{PUB}/wechat/events", params={**_signed(), "echostr": "4242"})
    assert echo.status_code == 200 and echo.text == "4242"
    forged = anonymous.get(f"{PUB}/wechat/events", params={**_signed("guess"), "echostr": "1"})
    assert forged.status_code == 403
    follow = (
        "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
        "<FromUserName><![CDATA[oGZUI0egBJY1zhBYw2KhdUfwVJJE]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>"
    ).encode()
    bad = anonymous.post(f"{PUB}/wechat/events", params=_signed("guess"), content=follow)
    assert bad.status_code == 403
    good = anonymous.post(f"{PUB}/wechat/events", params=_signed(), content=follow)
    assert good.status_code == 200 and good.text == "success"
    # a signed WeChat push is not an operator: it cannot reach the operator app
    assert anonymous.post(f"{OPS}/api/subscribers", params=_signed(), json={}).status_code == 401


# -- the page ----------------------------------------------------------------------------------


def test_the_duty_desk_page_shows_the_map_the_alerts_and_the_forms(
    server: Server, published: dict[str, str]
) -> None:
    page = server.client("watch").get(f"{OPS}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "预警值班" in text and "Duty desk" in text
    assert 'class="region"' in text and 'data-adcode="540200"' in text
    assert published["alert_id"] in text and published["identifier"] in text
    assert "X-Alerts-CSRF" in text
    assert "部门响应" in text and "I级应急响应" in text  # the red earthquake's procedure
    for action in ("/api/actions/resend", "/api/actions/cancel", "/api/actions/exercise"):
        assert action in text
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # nothing remote
    assert "https://" not in text
    assert "<script src" not in text


def test_the_plugin_registers_the_duty_desk_and_keeps_the_outbox(server: Server) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "alerts_ops_auth", ROOT / "plugins" / "alerts_ops.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    views = {v["name"]: v for v in module.AlertsOpsPlugin.external_views}
    assert views["预警值班 Duty desk"]["href"] == "/alerts-ops/"
    assert views["预警值班 Duty desk"]["url_route"]
    assert views["预警发件箱 Outbox"]["href"] == "/alerts-ops/outbox"


# -- the DAGs under dag.test() -------------------------------------------------------------------


def test_cancel_alert_cancels_once_and_publishes_the_cancellation(
    dagbag: Any, published: dict[str, str]
) -> None:
    from alerts.config import load_settings
    from alerts.store import Store

    dag = dagbag.dags["cancel_alert"]
    assert {t.task_id: t.retries for t in dag.tasks}["cancel"] == 0
    conf = {"alert_id": published["alert_id"], "reason": "误报 / false alarm"}
    run = dag.test(run_conf=conf)
    assert run.state == "success"
    with Store(load_settings().resolved_store_url) as store:
        assert store.active_alert(published["alert_id"]) is None
        (cancel,) = [a for a in store.audit(published["alert_id"]) if a.action == "cancel"]
        assert cancel.actor == "operator:dag_test" and "误报 / false alarm" in cancel.reason
        versions = [m.version for m in store.outbox() if m.alert_id == published["alert_id"]]
    assert versions.count(2) == versions.count(1) >= 1  # the cancellation, to each recipient
    sent = len(versions)

    again = dag.test(run_conf=conf)  # the store refuses a second cancel: nothing goes out
    assert again.state == "failed"
    states = {ti.task_id: ti.state for ti in again.get_task_instances()}
    assert states["cancel"] == "failed" and states["publish"] == "upstream_failed"
    with Store(load_settings().resolved_store_url) as store:
        assert len([m for m in store.outbox() if m.alert_id == published["alert_id"]]) == sent
        assert [a.action for a in store.audit(published["alert_id"])].count("cancel") == 1


def test_exercise_message_reaches_the_duty_groups_only(
    dagbag: Any, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alerts.config import load_settings
    from alerts.store import Store

    dag = dagbag.dags["exercise_message"]
    run = dag.test(run_conf={"text": "请回复收到 / reply received", "reason": "周演练 weekly"})
    assert run.state == "success"
    with Store(load_settings().resolved_store_url) as store:
        (message,) = store.outbox()
        assert store.publications() == [] and store.deliveries() == []  # not a publication
    assert (message.channel, message.recipient) == ("duty-room", "duty-room")
    assert "演练" in message.subject and "EXERCISE" in message.subject
    assert "请回复收到" in message.body and "周演练 weekly" in message.body
    assert "operator:dag_test" in message.body and "不是真实预警" in message.body

    monkeypatch.setenv("ALERTS_CHANNELS", json.dumps([{"name": "outbox", "type": "outbox"}]))
    nobody = dag.test(run_conf={"text": "t", "reason": "r"})
    assert nobody.state == "failed"  # reached nobody: says so instead of succeeding
    (ti,) = nobody.get_task_instances()
    assert ti.try_number == 1  # no internal channel: failed at once, not retried
