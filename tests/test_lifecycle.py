"""Reconciliation of this cycle's warnings against the active alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.lifecycle import ActiveAlert, Decision, alert_id_for, reconcile
from alerts.model import Action, Hazard, Level, Warning

NOW = datetime(2025, 1, 7, 2, 0, tzinfo=UTC)
ONSET = datetime(2025, 1, 7, 1, 5, 16, tzinfo=UTC)
SUBJECT = "usgs:us6000pi9w"
ALERT_ID = "earthquake:usgs:us6000pi9w:CN"
FACTS: dict[str, Any] = {
    "event_id": "us6000pi9w",
    "magnitude": 7.1,
    "latitude": 28.639,
    "longitude": 87.3608,
    "depth_km": 10.0,
    "place": "2025 Southern Tibetan Plateau Earthquake",
}


def warning(
    level: Level = Level.RED,
    *,
    subject: str = SUBJECT,
    expires: datetime = ONSET + timedelta(hours=24),
    **facts: Any,
) -> Warning:
    return Warning(
        hazard=Hazard.EARTHQUAKE,
        level=level,
        region_code="CN",
        region_name="全国",
        subject=subject,
        onset=ONSET,
        expires=expires,
        rule_id="eq-national-magnitude",
        rule_set_version="eq-2026.1",
        observed=float(facts.get("magnitude", FACTS["magnitude"])),
        threshold=7.0,
        reason=f"M{facts.get('magnitude', FACTS['magnitude'])} >= 7.0 (red)",
        facts={**FACTS, **facts},
    )


def active(
    level: Level = Level.RED,
    *,
    subject: str = SUBJECT,
    expires_at: datetime | None = ONSET + timedelta(hours=24),
    version: int = 1,
    **facts: Any,
) -> ActiveAlert:
    return ActiveAlert(
        alert_id=alert_id_for(Hazard.EARTHQUAKE, subject, "CN"),
        hazard=Hazard.EARTHQUAKE,
        subject=subject,
        region_code="CN",
        level=level,
        version=version,
        expires_at=expires_at,
        facts={**FACTS, **facts},
    )


@dataclass
class Case:
    active: list[ActiveAlert] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    observed: set[str] = field(default_factory=set)
    withdrawn: set[str] = field(default_factory=set)
    expected: list[Action] = field(default_factory=list)


CASES = {
    "issue-new-warning": Case(warnings=[warning()], observed={SUBJECT}, expected=[Action.ISSUE]),
    "no-op-on-identical": Case(
        active=[active()], warnings=[warning()], observed={SUBJECT}, expected=[]
    ),
    "no-op-on-immaterial-change": Case(
        active=[active()],
        warnings=[warning(place="Xizang, China")],
        observed={SUBJECT},
        expected=[],
    ),
    "upgrade": Case(
        active=[active(Level.ORANGE, magnitude=6.8)],
        warnings=[warning(Level.RED)],
        observed={SUBJECT},
        expected=[Action.UPGRADE],
    ),
    "downgrade": Case(
        active=[active(Level.RED)],
        warnings=[warning(Level.ORANGE, magnitude=6.8)],
        observed={SUBJECT},
        expected=[Action.DOWNGRADE],
    ),
    "update-on-revised-magnitude": Case(
        active=[active(magnitude=7.0)],
        warnings=[warning(magnitude=7.1)],
        observed={SUBJECT},
        expected=[Action.UPDATE],
    ),
    "update-on-revised-depth": Case(
        active=[active(depth_km=10.0)],
        warnings=[warning(depth_km=13.5)],
        observed={SUBJECT},
        expected=[Action.UPDATE],
    ),
    "update-on-revised-location": Case(
        active=[active(latitude=28.5)],
        warnings=[warning(latitude=28.639)],
        observed={SUBJECT},
        expected=[Action.UPDATE],
    ),
    "cancel-when-withdrawn": Case(
        active=[active()],
        observed={SUBJECT},
        withdrawn={SUBJECT},
        expected=[Action.CANCEL],
    ),
    "cancel-when-withdrawn-despite-a-warning": Case(
        active=[active()],
        warnings=[warning()],
        observed={SUBJECT},
        withdrawn={SUBJECT},
        expected=[Action.CANCEL],
    ),
    "cancel-when-observed-but-no-longer-warned": Case(
        active=[active()], observed={SUBJECT}, expected=[Action.CANCEL]
    ),
    "expire-when-past-expiry-and-not-observed": Case(
        active=[active(expires_at=NOW - timedelta(minutes=1))], expected=[Action.EXPIRE]
    ),
    "expire-exactly-at-expiry": Case(active=[active(expires_at=NOW)], expected=[Action.EXPIRE]),
    "expire-when-past-expiry-even-if-observed": Case(
        active=[active(expires_at=NOW - timedelta(minutes=1))],
        observed={SUBJECT},
        expected=[Action.EXPIRE],
    ),
    "nothing-when-not-observed-and-not-expired": Case(active=[active()], expected=[]),
    "nothing-when-not-observed-and-no-expiry": Case(active=[active(expires_at=None)], expected=[]),
    "no-issue-for-a-withdrawn-subject": Case(
        warnings=[warning()], observed={SUBJECT}, withdrawn={SUBJECT}, expected=[]
    ),
    "no-issue-for-an-already-expired-warning": Case(
        warnings=[warning(expires=NOW)], observed={SUBJECT}, expected=[]
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_reconcile_decides(case: Case) -> None:
    decisions = reconcile(
        case.active, case.warnings, observed=case.observed, withdrawn=case.withdrawn, now=NOW
    )
    assert [d.action for d in decisions] == case.expected
    assert all(d.alert_id == ALERT_ID for d in decisions)


def test_issue_carries_the_warning_and_no_previous() -> None:
    w = warning()
    [d] = reconcile([], [w], observed={SUBJECT}, withdrawn=set(), now=NOW)
    assert d == Decision(Action.ISSUE, ALERT_ID, w, None, w.reason)


@pytest.mark.parametrize(
    ("prev_level", "new_level", "action"),
    [
        (Level.BLUE, Level.YELLOW, Action.UPGRADE),
        (Level.BLUE, Level.RED, Action.UPGRADE),
        (Level.RED, Level.BLUE, Action.DOWNGRADE),
        (Level.ORANGE, Level.YELLOW, Action.DOWNGRADE),
    ],
)
def test_level_change_carries_warning_and_previous(
    prev_level: Level, new_level: Level, action: Action
) -> None:
    prev, w = active(prev_level), warning(new_level)
    [d] = reconcile([prev], [w], observed={SUBJECT}, withdrawn=set(), now=NOW)
    assert (d.action, d.warning, d.previous) == (action, w, prev)
    assert d.reason == w.reason if action is Action.UPGRADE else d.reason.endswith(w.reason)


def test_update_reason_says_revised() -> None:
    prev, w = active(magnitude=7.0), warning(magnitude=7.1)
    [d] = reconcile([prev], [w], observed={SUBJECT}, withdrawn=set(), now=NOW)
    assert (d.warning, d.previous) == (w, prev)
    assert d.reason == "revised: " + w.reason


@pytest.mark.parametrize(
    ("withdrawn", "expires_at", "reason"),
    [
        ({SUBJECT}, ONSET + timedelta(hours=24), "withdrawn by the source"),
        (set(), ONSET + timedelta(hours=24), "no longer meets the criteria"),
        (set(), NOW - timedelta(seconds=1), "expired"),
    ],
    ids=["withdrawn", "no-longer-warned", "expired"],
)
def test_ending_decisions_carry_previous_and_no_warning(
    withdrawn: set[str], expires_at: datetime, reason: str
) -> None:
    prev = active(expires_at=expires_at)
    [d] = reconcile([prev], [], observed={SUBJECT}, withdrawn=withdrawn, now=NOW)
    assert (d.warning, d.previous) == (None, prev)
    assert d.reason.startswith(reason)


def test_each_alert_is_decided_on_its_own() -> None:
    a, b, c = "usgs:a", "usgs:b", "usgs:c"
    decisions = reconcile(
        [active(Level.BLUE, subject=a), active(subject=b), active(subject=c)],
        [warning(Level.YELLOW, subject=a), warning(subject="usgs:d")],
        observed={a, b, "usgs:d"},
        withdrawn={c},
        now=NOW,
    )
    got = {d.alert_id: d.action for d in decisions}
    assert got == {
        alert_id_for(Hazard.EARTHQUAKE, a, "CN"): Action.UPGRADE,
        alert_id_for(Hazard.EARTHQUAKE, "usgs:d", "CN"): Action.ISSUE,
        alert_id_for(Hazard.EARTHQUAKE, b, "CN"): Action.CANCEL,
        alert_id_for(Hazard.EARTHQUAKE, c, "CN"): Action.CANCEL,
    }


def test_two_warnings_for_the_same_alert_raise() -> None:
    with pytest.raises(ValueError, match=ALERT_ID):
        reconcile(
            [],
            [warning(Level.BLUE), warning(Level.RED)],
            observed={SUBJECT},
            withdrawn=set(),
            now=NOW,
        )


def test_warnings_may_be_any_iterable() -> None:
    decisions = reconcile(
        iter([]), (w for w in [warning()]), observed={SUBJECT}, withdrawn=set(), now=NOW
    )
    assert [d.action for d in decisions] == [Action.ISSUE]


@pytest.mark.parametrize(
    ("hazard", "subject", "region", "expected"),
    [
        (Hazard.EARTHQUAKE, SUBJECT, "CN", ALERT_ID),
        ("earthquake", "usgs:x", "CN", "earthquake:usgs:x:CN"),
        (Hazard.RAINSTORM, "episode-1", "110100", "rainstorm:episode-1:110100"),
    ],
)
def test_alert_id_joins_hazard_subject_and_region(
    hazard: Hazard | str, subject: str, region: str, expected: str
) -> None:
    assert alert_id_for(hazard, subject, region) == expected


def test_alert_id_rejects_an_unknown_hazard() -> None:
    with pytest.raises(ValueError):
        alert_id_for("volcano", SUBJECT, "CN")


@pytest.mark.parametrize(
    ("action", "msg_type", "zh"),
    [
        (Action.ISSUE, "Alert", "发布"),
        (Action.UPDATE, "Update", "更新"),
        (Action.UPGRADE, "Update", "升级"),
        (Action.DOWNGRADE, "Update", "降级"),
        (Action.CANCEL, "Cancel", "解除"),
        (Action.EXPIRE, "Cancel", "到期"),
    ],
)
def test_action_maps_to_cap_msg_type(action: Action, msg_type: str, zh: str) -> None:
    assert (action.msg_type, action.zh) == (msg_type, zh)
