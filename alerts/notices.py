"""Notices to the operators themselves (not to the public): internal channels only.

Used for what needs a human now: a publication waiting for approval, a
stale feed, a latency budget missed. A notice goes straight through every
enabled channel with ``audience: internal`` to its static recipients (the
duty groups); it is not a publication and is not in the delivery ledger. A
notice that reached nobody raises, so the task that sent it fails visibly.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from alerts.channels.base import Message, Recipient

if TYPE_CHECKING:
    from alerts.pipeline import Runtime

__all__ = ["NoticeError", "NoticeResult", "notify_operators"]

log = logging.getLogger(__name__)


class NoticeError(RuntimeError):
    """No internal channel took the notice."""


@dataclass(frozen=True)
class NoticeResult:
    delivered: int
    failed: list[str]  # "channel -> recipient: error"


def notify_operators(
    rt: Runtime, subject: str, body: str, *, kind: str = "notice", key: str | None = None
) -> NoticeResult:
    """Send ``subject`` / ``body`` to every internal channel's recipients.

    ``key`` names the incident: each (channel, recipient) delivery key derives
    from it, so channels that deduplicate by key keep a repeated notice once.

    Raises :class:`NoticeError` when internal channels exist and none took it;
    with no internal channel configured the notice is logged at ERROR (the
    task log is then the only place an operator sees it).
    """
    internal = [
        c for c in rt.settings.channels if c.enabled and c.audience == "internal" and c.recipients
    ]
    text = f"【值班提醒 Operator notice】{subject}\n{body}"
    if not internal:
        log.error("operator notice (no internal channel configured): %s", text)
        return NoticeResult(0, [])
    channels = rt.channels()
    ident = key or f"notice-{kind}-{uuid.uuid4().hex[:12]}"
    delivered, failed = 0, []
    for c in internal:
        message = Message("notice", 0, subject, text, c.language, identifier=ident)
        recipients = [Recipient(r, f"{ident}/{c.name}/{r}") for r in c.recipients]
        try:
            results = channels[c.name].send(message, recipients)
        except Exception as exc:  # a broken channel must not hide the others
            failed += [f"{c.name} -> {r.address}: {exc}" for r in recipients]
            continue
        for r, res in zip(recipients, results, strict=False):
            if res.ok:
                delivered += 1
            else:
                failed.append(f"{c.name} -> {r.address}: {res.error_code} {res.error_text}")
    for f in failed:
        log.error("operator notice not delivered: %s", f)
    if not delivered:
        raise NoticeError(f"operator notice reached nobody: {'; '.join(failed)}")
    return NoticeResult(delivered, failed)
