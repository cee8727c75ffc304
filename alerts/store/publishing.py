"""Turning one cycle's new alert versions into publications (messages, CAP documents).

Versions of one cycle that share hazard, subject, level, action and rule
family become one publication listing every region; each region keeps its
own alert and version. Identifiers follow GB/T 35965.1: six-digit admin
code, three-digit agency code, ``000`` and ``00``, Beijing time to the second,
and a serial 0-9 within that second (a cycle needing more than ten moves on
to the next second).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.model import Action
from alerts.store.models import AlertVersion, Publication

__all__ = ["Publisher", "cap_time", "publish_versions"]

BEIJING = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Publisher:
    """Who publishes, in which status, and whether expiries are announced."""

    sender: str = "alerts@example.gov.cn"
    adcode: str = "000000"
    agency_code: str = "000"
    status: str = "Actual"  # Actual / Exercise / Test
    notify_expire: bool = False
    actor: str = "pipeline"
    # (hazard, level, action, status) -> whether the publication waits for a duty officer
    needs_approval: Callable[[str, int, str, str], bool] | None = None


def cap_time(when: datetime) -> str:
    """A CAP dateTime in Beijing time with its offset: 2026-07-20T08:00:00+08:00."""
    return when.astimezone(BEIJING).isoformat(timespec="seconds")


def _family(rule_id: str | None) -> str:
    if not rule_id:
        return ""
    return rule_id.split("@", 1)[0].split(".", 1)[0]


def publish_versions(
    s: Session, created: Sequence[tuple[AlertVersion, str]], publisher: Publisher, now: datetime
) -> list[Publication]:
    """Group this cycle's (version, subject) pairs into publications and link them."""
    groups: dict[tuple[str, ...], list[tuple[AlertVersion, str]]] = defaultdict(list)
    for v, subject in created:
        groups[(v.hazard, subject, str(v.level), v.action, _family(v.rule_id))].append((v, subject))
    publications = []
    for members in groups.values():
        # the national alert first, then regions in code order
        members.sort(key=lambda m: (not m[0].alert_id.endswith(":CN"), m[0].alert_id))
        lead, subject = members[0]
        action = Action(lead.action)
        pub = Publication(
            identifier=_next_identifier(s, publisher, now),
            sender=publisher.sender,
            status=publisher.status,
            msg_type=lead.msg_type,
            action=lead.action,
            hazard=lead.hazard,
            level=lead.level,
            subject=subject,
            sent=now,
            onset=min((v.onset for v, _ in members if v.onset), default=None),
            expires=max((v.expires for v, _ in members if v.expires), default=None),
            references=" ".join(_references(s, [v for v, _ in members])),
            notify=action.notifies or (action is Action.EXPIRE and publisher.notify_expire),
            lead_alert_id=lead.alert_id,
            lead_version=lead.version,
            fanned_out_at=None,
            approval="pending"
            if publisher.needs_approval is not None
            and publisher.needs_approval(lead.hazard, lead.level, lead.action, publisher.status)
            else "none",
        )
        s.add(pub)
        s.flush()
        for v, _ in members:
            v.publication_id = pub.id
            v.notify = pub.notify
        publications.append(pub)
    return publications


def _references(s: Session, versions: list[AlertVersion]) -> list[str]:
    """CAP references: the publications that carried each version's predecessor."""
    out: list[str] = []
    for v in versions:
        if v.version <= 1:
            continue
        pub = s.scalar(
            select(Publication)
            .join(AlertVersion, AlertVersion.publication_id == Publication.id)
            .where(AlertVersion.alert_id == v.alert_id, AlertVersion.version == v.version - 1)
        )
        if pub is not None:
            triple = f"{pub.sender},{pub.identifier},{cap_time(pub.sent)}"
            if triple not in out:
                out.append(triple)
    return out


def _next_identifier(s: Session, publisher: Publisher, now: datetime) -> str:
    prefix = f"{publisher.adcode}{publisher.agency_code}00000"
    when = now.astimezone(BEIJING).replace(microsecond=0)
    while True:
        stamp = f"{prefix}_{when:%Y%m%d%H%M%S}_"
        used = set(
            s.scalars(
                select(Publication.identifier).where(Publication.identifier.like(stamp + "%"))
            )
        )
        for serial in range(10):
            if stamp + str(serial) not in used:
                return stamp + str(serial)
        when += timedelta(seconds=1)
