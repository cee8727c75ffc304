"""The pure reconciliation policy: dwell before a downgrade, clear time before 解除,
quiet extensions, withdrawals, and operator suppressions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.lifecycle import ActiveAlert, Policy, reconcile
from alerts.model import Action, Hazard, Level, Warning

NOW = datetime(2026, 7, 20, 6, tzinfo=UTC)
ID = "rainstorm:weather:510100"


def active(level: Level = Level.RED, **kw: object) -> ActiveAlert:
    base = dict(
        alert_id=ID,
        hazard=Hazard.RAINSTORM,
        subject="weather",
        region_code="510100",
        level=level,
        version=3,
        expires_at=NOW + timedelta(hours=2),
        facts={},
    )
    base.update(kw)
    return ActiveAlert(**base)  # type: ignore[arg-type]


def warning(level: Level, expires: datetime | None = None) -> Warning:
    return Warning(
        hazard=Hazard.RAINSTORM,
        level=level,
        region_code="510100",
        region_name="成都",
        subject="weather",
        onset=NOW,
        expires=expires or NOW + timedelta(hours=2),
        rule_id="r",
        rule_set_version="v",
        observed=1.0,
        threshold=1.0,
        reason="why",
    )


def decide(prev: ActiveAlert | None, w: Warning | None, **kw: object):  # type: ignore[no-untyped-def]
    out = reconcile(
        [prev] if prev else [],
        [w] if w else [],
        observed=set(),
        observed_regions={("weather", "510100")},
        withdrawn=set(),
        now=NOW,
        **kw,
    )  # type: ignore[arg-type]
    assert len(out) <= 1
    return out[0] if out else None


def test_a_lower_level_starts_the_dwell_without_a_message() -> None:
    d = decide(active(), warning(Level.ORANGE))
    assert (d.action, d.pending_level, d.pending_since) == (None, Level.ORANGE, NOW)


@pytest.mark.parametrize(("held", "expected"), [(59, None), (60, Action.DOWNGRADE)])
def test_the_downgrade_comes_only_after_the_dwell(held: int, expected: Action | None) -> None:
    prev = active(pending_level=Level.ORANGE, pending_since=NOW - timedelta(minutes=held))
    d = decide(prev, warning(Level.ORANGE))
    assert (d.action if d else None) == expected


def test_the_dwell_is_configurable_per_hazard() -> None:
    policy = Policy(per_hazard={Hazard.RAINSTORM: (timedelta(0), timedelta(0))})
    assert decide(active(), warning(Level.ORANGE), policy=policy).action is Action.DOWNGRADE


def test_back_at_the_level_clears_the_pending_downgrade() -> None:
    prev = active(pending_level=Level.ORANGE, pending_since=NOW - timedelta(minutes=30))
    d = decide(prev, warning(Level.RED))
    assert (d.action, d.pending_level, d.pending_since) == (None, None, None)


def test_not_warned_starts_the_clear_time_then_cancels() -> None:
    d = decide(active(), None)
    assert (d.action, d.clear_since) == (None, NOW)
    assert decide(active(clear_since=NOW - timedelta(minutes=59)), None) is None
    later = decide(active(clear_since=NOW - timedelta(minutes=60)), None)
    assert later.action is Action.CANCEL


def test_an_alert_out_of_this_cycles_scope_is_left_alone() -> None:
    out = reconcile(
        [active(region_code="510400", alert_id="x")],
        [],
        observed=set(),
        observed_regions={("weather", "510100")},
        withdrawn=set(),
        now=NOW,
    )
    assert out == []


def test_a_later_forecast_expiry_is_a_quiet_extension() -> None:
    d = decide(active(), warning(Level.RED, expires=NOW + timedelta(hours=3)))
    assert d.action is Action.EXTEND and not d.action.notifies
    assert decide(active(), warning(Level.RED)) is None


def test_withdrawal_cancels_at_once_even_within_the_clear_time() -> None:
    out = reconcile([active()], [], observed=set(), withdrawn={"weather"}, now=NOW)
    assert [d.action for d in out] == [Action.CANCEL]


def test_expiry_without_renewal_is_silent() -> None:
    d = decide(active(expires_at=NOW), None)
    assert d.action is Action.EXPIRE and not d.action.notifies


@pytest.mark.parametrize(
    ("level", "issued"), [(Level.ORANGE, False), (Level.RED, False), (Level.YELLOW, False)]
)
def test_an_operator_cancel_suppresses_the_same_level_or_lower(level: Level, issued: bool) -> None:
    d = decide(None, warning(level), suppressed={ID: Level.RED})
    assert (d is not None) == issued


def test_a_worse_level_breaks_through_a_suppression() -> None:
    d = decide(None, warning(Level.RED), suppressed={ID: Level.ORANGE})
    assert d.action is Action.ISSUE
