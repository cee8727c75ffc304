"""Reconciliation: this cycle's warnings against the active alerts.

One pure function of (active alerts, warnings, what the cycle observed, what
sources withdrew, now, policy) decides what happens to each alert. The store
applies the decisions; nothing here reads the clock or the database.

State machine of one alert (per hazard, subject and region)::

    (none) --warned--> ISSUE --> active
    active --higher level--> UPGRADE (at once)
    active --lower level--> pending downgrade --held for the dwell--> DOWNGRADE
                                            \\--level back up------> (pending cleared)
    active --same level, later expiry--> EXTEND (quiet Update, no message)
    active --same level, revised facts--> UPDATE
    active --not warned though observed--> pending clear --clear time--> CANCEL (解除)
                                        \\--warned again-----------> (pending cleared)
    active --source withdrew it (USGS deleted, CAP Cancel)--> CANCEL at once
    active --expires passed, not renewed--> EXPIRE (silent unless configured)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.model import Action, Hazard, Level, Warning

__all__ = ["ActiveAlert", "Decision", "Policy", "alert_id_for", "reconcile"]

# Facts whose change makes a same-level warning worth a new (Update) version.
MATERIAL_FACTS = ("magnitude", "latitude", "longitude", "depth_km")


@dataclass(frozen=True)
class Policy:
    """Hysteresis and notification policy; per-hazard values override the defaults."""

    downgrade_dwell: timedelta = timedelta(minutes=60)
    clear_after: timedelta = timedelta(minutes=60)
    notify_expire: bool = False
    per_hazard: Mapping[Hazard, tuple[timedelta, timedelta]] = field(
        default_factory=lambda: {Hazard.EARTHQUAKE: (timedelta(0), timedelta(0))}
    )

    def dwell(self, hazard: Hazard) -> timedelta:
        return self.per_hazard.get(hazard, (self.downgrade_dwell, self.clear_after))[0]

    def clear(self, hazard: Hazard) -> timedelta:
        return self.per_hazard.get(hazard, (self.downgrade_dwell, self.clear_after))[1]


@dataclass(frozen=True)
class ActiveAlert:
    alert_id: str
    hazard: Hazard
    subject: str
    region_code: str
    level: Level
    version: int
    expires_at: datetime | None
    facts: dict[str, object]
    pending_level: Level | None = None  # a lower level seen since pending_since
    pending_since: datetime | None = None
    clear_since: datetime | None = None  # first cycle that no longer warned it
    rule_id: str | None = None  # the rule of the current version


@dataclass(frozen=True)
class Decision:
    """What to do with one alert. ``action`` None: only its pending state changes."""

    action: Action | None
    alert_id: str
    warning: Warning | None
    previous: ActiveAlert | None
    reason: str
    pending_level: Level | None = None
    pending_since: datetime | None = None
    clear_since: datetime | None = None


def alert_id_for(hazard: Hazard | str, subject: str, region_code: str) -> str:
    return f"{Hazard(hazard).value}:{subject}:{region_code}"


def reconcile(
    active: Iterable[ActiveAlert],
    warnings: Iterable[Warning],
    *,
    observed: set[str],
    withdrawn: set[str],
    now: datetime,
    observed_regions: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
    policy: Policy | None = None,
    suppressed: Mapping[str, Level] | None = None,
) -> list[Decision]:
    """Decide issue / update / upgrade / downgrade / extend / cancel / expire per alert.

    ``observed`` holds the subjects this cycle saw (an earthquake still in the
    feed); ``observed_regions`` narrows that to (subject, region) pairs where
    one subject spans many regions graded in batches (weather). An alert in
    scope with no warning is cleared after the policy's clear time; one out of
    scope runs to its expiry. ``withdrawn`` holds subjects the source
    retracted: cancelled at once. ``suppressed`` maps alerts an operator
    cancelled to the level cancelled: they are not issued again at that level
    or below while the suppression lasts.
    """
    policy = policy or Policy()
    current = {a.alert_id: a for a in active}
    decisions: list[Decision] = []
    seen: set[str] = set()
    renewed: set[str] = set()

    for w in warnings:
        alert_id = alert_id_for(w.hazard, w.subject, w.region_code)
        if alert_id in seen:
            raise ValueError(f"two warnings for the same alert {alert_id}")
        seen.add(alert_id)
        if w.subject in withdrawn or w.expires <= now:
            continue
        renewed.add(alert_id)
        prev = current.get(alert_id)
        if prev is None and suppressed and w.level <= suppressed.get(alert_id, Level.BLUE - 1):
            continue
        decision = _warned(prev, w, alert_id, now, policy)
        if decision is not None:
            decisions.append(decision)

    for alert_id, prev in current.items():
        if alert_id in renewed:
            continue
        decision = _not_warned(prev, observed, observed_regions, withdrawn, now, policy)
        if decision is not None:
            decisions.append(decision)
    return decisions


def _warned(
    prev: ActiveAlert | None, w: Warning, alert_id: str, now: datetime, policy: Policy
) -> Decision | None:
    if prev is None:
        return Decision(Action.ISSUE, alert_id, w, None, w.reason)
    if w.level > prev.level:
        return Decision(Action.UPGRADE, alert_id, w, prev, w.reason)
    if w.level < prev.level:
        since = prev.pending_since if prev.pending_level is not None else None
        since = since or now
        if now - since >= policy.dwell(w.hazard):
            held = f"held {_minutes(now - since)}: {w.reason}"
            return Decision(Action.DOWNGRADE, alert_id, w, prev, held)
        if prev.pending_level == w.level and prev.pending_since == since and not prev.clear_since:
            return None
        return Decision(
            None,
            alert_id,
            w,
            prev,
            f"downgrade to {w.level.colour} pending",
            pending_level=w.level,
            pending_since=since,
        )
    # same level
    if _changed(prev.facts, w.facts):
        return Decision(Action.UPDATE, alert_id, w, prev, "revised: " + w.reason)
    if prev.expires_at is not None and w.expires > prev.expires_at + timedelta(minutes=1):
        return Decision(Action.EXTEND, alert_id, w, prev, "still warned; expiry extended")
    if prev.pending_level is not None or prev.clear_since is not None:
        return Decision(None, alert_id, w, prev, f"back at {w.level.colour}")
    return None


def _not_warned(
    prev: ActiveAlert,
    observed: set[str],
    observed_regions: set[tuple[str, str]] | frozenset[tuple[str, str]],
    withdrawn: set[str],
    now: datetime,
    policy: Policy,
) -> Decision | None:
    if prev.subject in withdrawn:
        return Decision(Action.CANCEL, prev.alert_id, None, prev, "withdrawn by the source")
    if prev.expires_at is not None and prev.expires_at <= now:
        return Decision(Action.EXPIRE, prev.alert_id, None, prev, "expired")
    in_scope = prev.subject in observed or (prev.subject, prev.region_code) in observed_regions
    if not in_scope:
        return None
    since = prev.clear_since or now
    if now - since >= policy.clear(prev.hazard):
        held = f"no longer meets the criteria for {_minutes(now - since)}"
        return Decision(Action.CANCEL, prev.alert_id, None, prev, held)
    if prev.clear_since == since:
        return None
    return Decision(
        None,
        prev.alert_id,
        None,
        prev,
        "all clear pending",
        clear_since=since,
        pending_level=prev.pending_level,
        pending_since=prev.pending_since,
    )


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"


def _changed(old: dict[str, object], new: dict[str, object]) -> bool:
    return any(old.get(k) != new.get(k) for k in MATERIAL_FACTS)
