"""publish_alerts under dag.test(): delivery, the duty officer's approval, its timeout default."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from alerts.config import load_settings
from alerts.model import Level
from alerts.pipeline import Runtime
from tests.test_delivery import NOW, _issue, _rain

pytestmark = pytest.mark.airflow

MIANYANG = ("510700", "四川省绵阳市")


@pytest.fixture
def rt(alerts_env: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ALERTS_APPROVAL__LEVELS")  # the product's policy: orange, red wait
    clock = [NOW]
    runtime = Runtime.from_settings(load_settings(), clock=lambda: clock[0])
    yield runtime
    runtime.close()


def _outbox(rt: Runtime) -> dict[str, str]:
    return {m.alert_id.rsplit(":", 1)[-1]: m.body for m in rt.store.outbox()}


def test_a_red_warning_publishes_by_default_when_nobody_answers(
    dagbag, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALERTS_APPROVAL__TIMEOUT_MIN", '{"red": 0.02}')  # 1.2 s
    _issue(rt, _rain(Level.YELLOW))
    _issue(rt, _rain(Level.RED, MIANYANG))
    with scheduler_timeouts():
        run = dagbag.dags["publish_alerts"].test()
    assert run.state == "success"
    assert sorted(_outbox(rt)) == ["510100", "510700"]  # yellow at once, red by default
    (red,) = [p for p in rt.store.publications() if p.level == Level.RED]
    assert (red.approval, red.approval_actor) == ("approved", "timeout-default")
    audit = [e.action for e in rt.store.audit(red.lead_alert_id)]
    assert "approve" in audit


@contextmanager
def scheduler_timeouts() -> Iterator[None]:
    """While inside, what the scheduler does each loop for HITL requests: time them out.

    dag.test() has no scheduler, and never resolves a human-in-the-loop timeout.
    """
    import logging
    import types

    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    me = types.SimpleNamespace(log=logging.getLogger("hitl-timeout-sweep"))
    stop = threading.Event()

    def sweep() -> None:
        while not stop.wait(0.5):
            SchedulerJobRunner.check_awaiting_input_timeouts(me)  # type: ignore[arg-type]

    sweeper = threading.Thread(target=sweep, daemon=True)
    sweeper.start()
    try:
        yield
    finally:
        stop.set()
        sweeper.join(10)


def _answer_when_asked(
    answer: dict[str, Any], found: dict[str, Any], timeout: float = 120
) -> threading.Thread:
    """Answer the first pending approval through the REST API (hitlDetails)."""

    def run() -> None:
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        client = TestClient(create_app())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = client.get("/api/v2/dags/~/dagRuns/~/hitlDetails")
            pending = [
                d for d in got.json().get("hitl_details", []) if not d.get("response_received")
            ]
            if got.status_code == 200 and pending:
                ti = pending[0]["task_instance"]
                url = (
                    f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/"
                    f"{ti['task_id']}/{ti['map_index']}/hitlDetails"
                )
                (chosen,) = [o for o in pending[0]["options"] if o.startswith(answer["choose"])]
                body = {"chosen_options": [chosen], "params_input": answer["params_input"]}
                resp = client.patch(url, json=body)
                found.update(status=resp.status_code, body=resp.json(), detail=pending[0])
                return
            time.sleep(0.5)
        found["status"] = "timeout"

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_the_duty_officer_answers_by_rest(
    dagbag, rt: Runtime, monkeypatch: pytest.MonkeyPatch, decision: str
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(
        "ALERTS_APPROVAL__TIMEOUT_MIN", "{}"
    )  # nobody times out: an answer is needed
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    _issue(rt, _rain(Level.ORANGE))
    wanted = "发布 Publish" if decision == "approve" else "驳回 Reject"
    answer = {
        "choose": wanted,  # the option starting with this (each names the publication)
        "params_input": {"guidance": "请立即远离河道 stay away from rivers", "reason": "雷达确认"},
    }
    found: dict[str, Any] = {}
    thread = _answer_when_asked(answer, found)
    run = dagbag.dags["publish_alerts"].test()
    thread.join(5)
    assert found.get("status") == 200, found
    assert "暴雨橙色预警" in found["detail"]["subject"]
    assert run.state == "success"
    (pub,) = rt.store.publications()
    if decision == "approve":
        assert pub.approval == "approved" and pub.approval_actor.startswith("duty:")
        (body,) = _outbox(rt).values()
        assert "请立即远离河道" in body
    else:
        assert pub.approval == "rejected" and _outbox(rt) == {}
    assert pub.approval_reason == "雷达确认"


def test_channel_secrets_come_from_an_airflow_connection(
    dagbag, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import json

    from tests.simulators.wecom import WeComSimulator

    with WeComSimulator() as wecom:
        assert isinstance(wecom, WeComSimulator)
        monkeypatch.setenv(
            "AIRFLOW_CONN_DUTY_ROBOT",
            json.dumps(
                {"conn_type": "alerts_wecom_bot", "password": "robot-key-1", "host": wecom.url}
            ),
        )
        channel = {
            "name": "duty-room",
            "type": "wecom_bot",
            "connection": "duty_robot",  # no credentials here
            "recipients": ["duty-group"],
        }
        monkeypatch.setenv("ALERTS_CHANNELS", json.dumps([channel]))
        _issue(rt, _rain(Level.YELLOW))
        assert dagbag.dags["publish_alerts"].test().state == "success"
        (got,) = wecom.accepted
        assert got["content"].startswith("**【暴雨黄色预警】")
