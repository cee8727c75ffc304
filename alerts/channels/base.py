"""The channel contract: ``send(message, recipients) -> results``.

A channel never raises on a delivery failure: it reports each recipient's
outcome, saying whether a retry may help. The dispatcher decides what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["Channel", "Confirming", "Message", "Recipient", "SendResult"]


@dataclass(frozen=True)
class Message:
    alert_id: str
    version: int
    subject: str
    body: str
    language: str
    identifier: str | None = None  # the publication (CAP document) this message carries
    # The ledger's claim token of this send: a channel that can pass a reference
    # to the vendor (the SMS OutId) uses it, so the attempt can be confirmed later.
    batch_id: str | None = None
    # A long-form bulletin's HTML (e-mail HTML part, WeChat article) and the images it
    # references as ``cid:NAME``: (name, PNG bytes). Channels without HTML send ``body``.
    html: str | None = None
    images: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Recipient:
    address: str
    key: str  # the ledger's idempotency key for this (version, channel, recipient)


@dataclass(frozen=True)
class SendResult:
    key: str
    ok: bool
    retryable: bool = False
    provider_message_id: str | None = None
    error_code: str | None = None
    error_text: str | None = None


@runtime_checkable
class Channel(Protocol):
    name: str
    # True when sending the same key twice delivers once (the channel dedups by
    # key); a delivery interrupted mid-send may then be retried safely.
    idempotent: bool
    # Optional: ``max_batch`` (recipients per vendor call; default 1) and
    # ``rate`` (calls, seconds). The dispatcher hands ``send`` at most
    # ``max_batch`` recipients, so one send is one call and one rate slot.

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]: ...


@runtime_checkable
class Confirming(Protocol):
    """A channel that can ask the vendor whether an earlier attempt went out.

    ``confirm`` gets the message as it was sent (``batch_id`` = that attempt's
    claim token) and its recipients; for each key it answers True (the vendor
    accepted it: do not send again), False (it did not: send) or None (cannot
    tell). ``since`` is when the attempt was claimed.
    """

    def confirm(
        self, message: Message, recipients: Sequence[Recipient], *, since: datetime
    ) -> dict[str, bool | None]: ...
