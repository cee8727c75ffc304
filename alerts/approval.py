"""The duty officer's sign-off on orange and red warnings (policy: ``approval`` settings).

A publication that needs approval is created ``pending`` and is not fanned
out; the orchestration (the ``publish_alerts`` DAG's human-in-the-loop task,
or ``alerts approve``) decides it: approved (optionally with the officer's
wording of the advice) or rejected, each audited. A silent timeout applies
the configured default: by default red publishes after 10 minutes and orange
waits for an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from alerts.config import ApprovalSettings
from alerts.model import Action, Level

__all__ = ["Plan", "needs_approval", "plan"]

# Actions that raise or renew a warning: a cancellation or a downgrade never waits.
GATED_ACTIONS = frozenset({Action.ISSUE, Action.UPDATE, Action.UPGRADE, Action.EXTEND})


def needs_approval(
    settings: ApprovalSettings, *, hazard: str, level: int, action: str, status: str
) -> bool:
    """Whether a publication of this hazard, level, action and CAP status waits."""
    if Action(action) not in GATED_ACTIONS or hazard in settings.exempt_hazards:
        return False
    if status != "Actual" and settings.exercise == "auto":
        return False
    return Level(int(level)).colour in settings.levels


@dataclass(frozen=True)
class Plan:
    """How long to wait for the duty officer, and what silence means."""

    timeout_min: float | None  # None: wait until someone answers
    on_timeout: Literal["publish", "reject"] | None

    @property
    def text(self) -> str:
        """What silence means, Chinese first: shown to the duty officer."""
        if self.timeout_min is None:
            return "无人应答时一直等待 / waits for an answer"
        if self.on_timeout == "publish":
            return (
                f"{self.timeout_min:g} 分钟无应答将自动发布 / "
                f"publishes after {self.timeout_min:g} min"
            )
        return f"{self.timeout_min:g} 分钟无应答将驳回 / rejected after {self.timeout_min:g} min"


def plan(settings: ApprovalSettings, level: int, kind: str = "alert") -> Plan:
    """The wait and the default of a warning at ``level``, or of a bulletin (``kind``)."""
    if kind != "alert":
        return Plan(settings.bulletin_timeout_min, settings.bulletin_on_timeout)
    colour = Level(int(level)).colour
    timeout = settings.timeout_min.get(colour)  # type: ignore[call-overload]
    if timeout is None:
        return Plan(None, None)
    return Plan(float(timeout), settings.on_timeout.get(colour, "publish"))  # type: ignore[call-overload]


def decision_text(approved: bool, actor: str, when: datetime, timed_out: bool) -> str:
    """The audit trail's wording of a decision."""
    verb = "approved" if approved else "rejected"
    how = " by default after the response timeout" if timed_out else ""
    return f"{verb}{how} by {actor} at {when.isoformat()}"
