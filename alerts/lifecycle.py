"""Reconciliation: this cycle's warnings against the active alerts.

One pure function of (active alerts, warnings, observed subjects, withdrawn
subjects, now) decides what happens to each alert. The store applies the
decisions; nothing here reads the clock or the database.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from alerts.model import Action, Hazard, Level, Warning

__all__ = ["ActiveAlert", "Decision", "alert_id_for", "reconcile"]

# Facts whose change makes a same-level warning worth a new (Update) version.
MATERIAL_FACTS = ("magnitude", "latitude", "longitude", "depth_km")


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


@dataclass(frozen=True)
class Decision:
    action: Action
    alert_id: str
    warning: Warning | None
    previous: ActiveAlert | None
    reason: str


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
) -> list[Decision]:
    """Decide issue / update / upgrade / downgrade / cancel / expire per alert.

    ``observed`` holds the subjects this cycle saw (an earthquake still in the
    feed); an active alert of an observed subject with no warning is cancelled,
    while one whose subject merely left the feed runs to its expiry.
    ``observed_regions`` narrows that to (subject, region) pairs where one
    subject spans many regions graded in batches (weather: a location left out
    of this cycle keeps its alert). ``withdrawn`` holds subjects the source
    retracted (USGS ``deleted``).
    """
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
        if prev is None:
            decisions.append(Decision(Action.ISSUE, alert_id, w, None, w.reason))
        elif w.level > prev.level:
            decisions.append(Decision(Action.UPGRADE, alert_id, w, prev, w.reason))
        elif w.level < prev.level:
            decisions.append(Decision(Action.DOWNGRADE, alert_id, w, prev, w.reason))
        elif _changed(prev.facts, w.facts):
            decisions.append(Decision(Action.UPDATE, alert_id, w, prev, "revised: " + w.reason))

    for alert_id, prev in current.items():
        if alert_id in renewed:
            continue
        if prev.subject in withdrawn:
            reason = "withdrawn by the source"
            decisions.append(Decision(Action.CANCEL, alert_id, None, prev, reason))
        elif prev.expires_at is not None and prev.expires_at <= now:
            decisions.append(Decision(Action.EXPIRE, alert_id, None, prev, "expired"))
        elif prev.subject in observed or (prev.subject, prev.region_code) in observed_regions:
            reason = "no longer meets the criteria"
            decisions.append(Decision(Action.CANCEL, alert_id, None, prev, reason))
    return decisions


def _changed(old: dict[str, object], new: dict[str, object]) -> bool:
    return any(old.get(k) != new.get(k) for k in MATERIAL_FACTS)
