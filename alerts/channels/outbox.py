"""The local outbox: messages stored in the alert store, viewable with ``alerts outbox``.

Needs no credentials, so a fresh install delivers somewhere visible. It is
idempotent: the delivery key is unique in the outbox table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from alerts.channels.base import Message, Recipient, SendResult
from alerts.model import utc_iso
from alerts.store import Store

__all__ = ["OutboxChannel", "outbox_records"]


class OutboxChannel:
    idempotent = True
    max_batch = 1000  # one store transaction per recipient; no vendor call

    def __init__(self, *, name: str, store: Store, clock: Callable[[], datetime]) -> None:
        self.name = name
        self._store = store
        self._clock = clock

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """The body as stored; its characters; no limit."""
        return message.body, len(message.body), None

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        results = []
        for r in recipients:
            try:
                new = self._store.outbox_put(
                    {
                        "delivery_key": r.key,
                        "identifier": message.identifier,
                        "alert_id": message.alert_id,
                        "version": message.version,
                        "channel": self.name,
                        "recipient": r.address,
                        "subject": message.subject,
                        "body": message.body,
                        "delivered_at": self._clock(),
                    }
                )
            except Exception as exc:  # the store is down: report, let the ledger retry
                results.append(
                    SendResult(
                        r.key,
                        ok=False,
                        retryable=True,
                        error_code="store",
                        error_text=f"{type(exc).__name__}: {exc}",
                    )
                )
                continue
            results.append(SendResult(r.key, ok=True, provider_message_id=r.key if new else None))
        return results


def outbox_records(store: Store, limit: int | None = None) -> list[dict[str, Any]]:
    """Delivered outbox messages, newest first, as JSON-ready dicts (CLI and plugin)."""
    return [
        {
            "alert_id": m.alert_id,
            "version": m.version,
            "identifier": m.identifier,
            "channel": m.channel,
            "recipient": m.recipient,
            "subject": m.subject,
            "body": m.body,
            "delivered_at": utc_iso(m.delivered_at),
        }
        for m in store.outbox(limit=limit)
    ]
