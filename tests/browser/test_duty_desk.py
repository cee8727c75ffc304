"""The duty officer's page in a real browser against `airflow standalone`.

A red rainstorm warning for Chengdu went to the duty room's WeCom robot,
which refused it (a dead letter). The duty officer logs in, sees the warning
on the map and in the list, resends the failed delivery (an Airflow run of
``resend_alert``) and watches it reach the robot, then cancels the warning
(``cancel_alert``). A viewer sees the page but may not act; an anonymous
request is refused. Screenshots go to the test artefacts.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.alertkit import alert_id, rain
from tests.browser.conftest import Standalone, login
from tests.simulators.base import Answer
from tests.simulators.wecom import WeComSimulator

pytestmark = pytest.mark.browser

ROBOT_KEY = "robot-key-1"


@pytest.fixture(scope="module")
def robot() -> Iterator[WeComSimulator]:
    with WeComSimulator(keys=[ROBOT_KEY]) as sim:
        assert isinstance(sim, WeComSimulator)
        yield sim


@pytest.fixture(scope="module")
def standalone_env(robot: WeComSimulator) -> dict[str, str]:
    channel = {
        "name": "duty-room",
        "type": "wecom_bot",
        "base_url": robot.url,
        "credentials": {"key": ROBOT_KEY},
        "recipients": ["duty-group"],
        "audience": "internal",
    }
    return {
        "ALERTS_CHANNELS": json.dumps([channel]),
        "ALERTS_APPROVAL__LEVELS": "[]",  # this scenario is about delivery, not approval
    }


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def red_warning(standalone: Standalone, robot: WeComSimulator) -> str:
    """A red rainstorm warning for Chengdu whose delivery to the robot was refused."""
    from alerts.config import load_settings
    from alerts.lifecycle import Decision
    from alerts.model import Action, Level
    from alerts.pipeline import Runtime, publish

    alerts_env = {k: v for k, v in standalone.env.items() if k.startswith("ALERTS_")}
    now = datetime.now(UTC).replace(microsecond=0)
    w = rain(Level.RED, now)
    robot.inject(Answer(200, {"errcode": 93000, "errmsg": "invalid webhook url"}))
    with _env(alerts_env):
        rt = Runtime.from_settings(load_settings(), clock=lambda: now)
        try:
            rt.store.apply(
                [Decision(Action.ISSUE, alert_id(w), w, None, "test")],
                now=now,
                publisher=rt.publisher("test"),
            )
            summary = publish(rt)
        finally:
            rt.close()
    assert (summary.deliveries_created, summary.dead) == (1, 1) and robot.accepted == []
    return alert_id(w)


def _wait(what: str, check: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_duty_officer_sees_resends_and_cancels(
    standalone: Standalone, browser: Any, robot: WeComSimulator, red_warning: str, artifacts: Path
) -> None:
    page = login(browser, standalone, "duty")
    page.goto(f"{standalone.url}/alerts-ops/", wait_until="networkidle")
    # the map: Chengdu is red; the list: the warning with its dead letter
    chengdu = page.locator('#map path.region[data-adcode="510100"]')
    assert chengdu.get_attribute("data-level") == "4"
    assert page.locator('#map path.region[data-level="4"]').count() == 1
    assert "暴雨" in page.inner_text("table") and "红色" in page.inner_text("table")
    assert "93000" in page.content()
    # the departments' response procedure, shown under the warning, Chinese first
    procedure = page.locator("tr.procedure").first
    assert procedure.get_by_text("全部学校和幼儿园停课").is_visible()
    shown = procedure.inner_text()
    assert "I级应急响应" in shown and "主要领导坐镇指挥" in shown and "水利" in shown
    assert shown.index("全部学校和幼儿园停课") < shown.index("Classes at all schools")
    chengdu.click()
    page.wait_for_selector("#region-panel li")
    assert "暴雨" in page.inner_text("#region-panel")
    assert "I级应急响应" in page.inner_text("#region-panel")
    page.screenshot(path=str(artifacts / "duty-desk-red-warning.png"), full_page=True)

    # resend the failed delivery: an Airflow run; the robot receives the warning
    form = page.locator("#form-resend")
    form.locator("select[name=mode]").select_option("failed")
    form.locator("input[name=reason]").fill("机器人已修复 robot fixed")
    form.locator("button[type=submit]").click()
    form.locator(".result .ok").wait_for(timeout=180_000)
    assert "resend_alert" in form.locator(".result").inner_text()
    _wait("the robot to receive the resent warning", lambda: robot.accepted)
    assert "暴雨红色预警" in robot.accepted[0]["content"]
    page.screenshot(path=str(artifacts / "duty-desk-resent.png"), full_page=True)

    # cancel the warning: another run; the cancellation reaches the robot too
    form = page.locator("#form-cancel")
    form.locator("select[name=alert_id]").select_option(red_warning)
    form.locator("input[name=reason]").fill("雨势减弱 rain eased")
    form.locator("button[type=submit]").click()
    form.locator(".result .ok").wait_for(timeout=180_000)
    _wait("the cancellation", lambda: len(robot.accepted) >= 2)
    assert "解除" in robot.accepted[1]["content"]
    page.reload(wait_until="networkidle")
    assert page.locator('#map path.region[data-level="4"]').count() == 0
    page.screenshot(path=str(artifacts / "duty-desk-cancelled.png"), full_page=True)
    page.context.close()


def test_a_viewer_sees_the_page_but_may_not_act(
    standalone: Standalone, browser: Any, artifacts: Path
) -> None:
    page = login(browser, standalone, "watch")
    answer = page.goto(f"{standalone.url}/alerts-ops/", wait_until="networkidle")
    assert answer is not None and answer.status == 200
    form = page.locator("#form-exercise")
    form.locator("input[name=reason]").fill("viewer tries")
    form.locator("button[type=submit]").click()
    form.locator(".result .err").wait_for(timeout=30_000)
    assert "⛔" in form.locator(".result").inner_text()
    page.screenshot(path=str(artifacts / "duty-desk-viewer-403.png"), full_page=True)
    page.context.close()


def test_anonymous_requests_are_refused(standalone: Standalone) -> None:
    for path in ("/alerts-ops/", "/alerts-ops/api/overview"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{standalone.url}{path}", timeout=30)
        assert err.value.code == 401
    with urllib.request.urlopen(f"{standalone.url}/alerts-public/atom.xml", timeout=30) as r:
        assert r.status == 200  # the published warnings stay public
