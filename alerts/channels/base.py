"""The channel contract: ``send(message, recipients) -> results``.

A channel never raises on a delivery failure: it reports each recipient's
outcome, saying whether a retry may help. The dispatcher decides what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["Channel", "Message", "Recipient", "SendResult"]


@dataclass(frozen=True)
class Message:
    alert_id: str
    version: int
    subject: str
    body: str
    language: str
    identifier: str | None = None  # the publication (CAP document) this message carries


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

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]: ...
