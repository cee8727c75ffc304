"""Orange and red weather wait for a duty officer; earthquakes and cancellations do not."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.approval import needs_approval, plan
from alerts.cli import main
from alerts.config import ApprovalSettings, load_settings
from alerts.model import Action, Level
from alerts.pipeline import Runtime, publish
from tests.test_delivery import CHENGDU, NOW, _change, _issue, _rain


@pytest.fixture
def rt(alerts_env: Path, store_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALERTS_STORE_URL", store_url)
    monkeypatch.delenv("ALERTS_APPROVAL__LEVELS")  # the product's default policy
    clock = [NOW]
    runtime = Runtime.from_settings(load_settings(), clock=lambda: clock[0])
    runtime.clock_box = clock  # type: ignore[attr-defined]
    yield runtime
    runtime.close()


DEFAULT = ApprovalSettings.model_validate({})


@pytest.mark.parametrize(
    ("hazard", "level", "action", "status", "expected"),
    [
        ("rainstorm", Level.RED, Action.ISSUE, "Actual", True),
        ("rainstorm", Level.ORANGE, Action.UPGRADE, "Actual", True),
        ("rainstorm", Level.YELLOW, Action.ISSUE, "Actual", False),
        ("rainstorm", Level.RED, Action.CANCEL, "Actual", False),
        ("rainstorm", Level.ORANGE, Action.DOWNGRADE, "Actual", False),
        ("earthquake", Level.RED, Action.ISSUE, "Actual", False),
        ("rainstorm", Level.RED, Action.ISSUE, "Exercise", False),
    ],
)
def test_the_default_policy(
    hazard: str, level: Level, action: Action, status: str, expected: bool
) -> None:
    got = needs_approval(DEFAULT, hazard=hazard, level=level, action=action.value, status=status)
    assert got is expected


def test_red_publishes_after_ten_minutes_orange_waits() -> None:
    assert (plan(DEFAULT, Level.RED).timeout_min, plan(DEFAULT, Level.RED).on_timeout) == (
        10.0,
        "publish",
    )
    assert plan(DEFAULT, Level.ORANGE).timeout_min is None
    custom = ApprovalSettings.model_validate(
        {"timeout_min": {"orange": 30}, "on_timeout": {"orange": "reject"}, "exercise": "approve"}
    )
    assert plan(custom, Level.ORANGE).on_timeout == "reject"
    assert needs_approval(custom, hazard="gale", level=4, action="issue", status="Exercise")
    with pytest.raises(ValueError):
        ApprovalSettings.model_validate({"exempt_hazards": ["volcano"]})


def test_a_pending_warning_is_held_until_approved_with_the_officers_wording(rt: Runtime) -> None:
    rt.store.add_subscriber(
        {"name": "p", "channel": "outbox", "address": "p", "areas": ["51"], "source": "csv"},
        now=NOW,
    )
    _issue(rt, _rain(Level.RED))
    assert publish(rt).delivered == 0 and rt.store.deliveries() == []
    (pending,) = rt.store.pending_approvals()
    assert pending.approval == "pending"
    done = rt.store.decide_approval(
        pending.id,
        approve=True,
        actor="duty:li",
        reason="radar confirms",
        now=NOW,
        guidance="立即转移河道、山洪沟附近人员。",
    )
    assert done is True
    again = rt.store.decide_approval(pending.id, approve=False, actor="x", reason="y", now=NOW)
    assert again is False  # decided once
    assert publish(rt).delivered == 2  # public + the subscriber
    bodies = [m.body for m in rt.store.outbox()]
    assert all("立即转移河道、山洪沟附近人员。" in b for b in bodies)
    audit = [e for e in rt.store.audit(pending.lead_alert_id) if e.action == "approve"]
    assert [(e.actor, e.reason) for e in audit] == [("duty:li", "radar confirms")]


def test_a_rejected_warning_is_never_sent_and_its_cancel_needs_no_approval(rt: Runtime) -> None:
    _issue(rt, _rain(Level.ORANGE))
    (pending,) = rt.store.pending_approvals()
    rt.store.decide_approval(pending.id, approve=False, actor="duty", reason="false alarm", now=NOW)
    assert publish(rt).deliveries_created == 0 and rt.store.pending_approvals() == []
    rt.clock_box[0] += timedelta(hours=1)  # type: ignore[attr-defined]
    _change(rt, Action.CANCEL, None, CHENGDU[0])
    assert rt.store.pending_approvals() == []  # a cancellation never waits
    assert publish(rt).deliveries_created == 1


def test_the_cli_lists_and_decides_approvals(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    _issue(rt, _rain(Level.RED))
    assert main(["approvals", "--json"]) == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (row["level"], row["timeout_min"], row["on_timeout"]) == (4, 10.0, "publish")
    assert main(["approve", row["identifier"], "--reason", "ok", "--by", "wang"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "identifier": row["identifier"],
        "decision": "approved",
        "actor": "operator:wang",
        "delivered": 1,
    }
    assert main(["approve", row["identifier"], "--reason", "again"]) == 2
    assert "does not wait for approval" in capsys.readouterr().err
