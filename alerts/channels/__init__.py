"""Delivery channels, one module each, behind :class:`~alerts.channels.base.Channel`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from alerts.channels.base import Channel, Message, Recipient, SendResult
from alerts.channels.outbox import OutboxChannel
from alerts.config import ChannelSettings
from alerts.store import Store

__all__ = ["Channel", "Message", "Recipient", "SendResult", "build_channel"]


def build_channel(
    settings: ChannelSettings, *, store: Store, clock: Callable[[], datetime]
) -> Channel:
    if settings.type == "outbox":
        return OutboxChannel(name=settings.name, store=store, clock=clock)
    raise ValueError(f"channel {settings.name}: unknown type {settings.type!r}")
