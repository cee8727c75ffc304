"""Delivery channels, one module each, behind :class:`~alerts.channels.base.Channel`.

A channel module exposes ``build(settings, *, session, clock) -> Channel``;
``build_channel`` picks the module by the configured ``type``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import get_args

import requests

from alerts.channels.base import Channel, Message, Recipient, SendResult
from alerts.channels.outbox import OutboxChannel
from alerts.config import ChannelSettings, ChannelType
from alerts.store import Store

__all__ = ["CHANNEL_TYPES", "Channel", "Message", "Recipient", "SendResult", "build_channel"]

CHANNEL_TYPES: tuple[str, ...] = get_args(ChannelType)


def build_channel(
    settings: ChannelSettings,
    *,
    store: Store,
    clock: Callable[[], datetime],
    session: requests.Session | None = None,
) -> Channel:
    if settings.type == "outbox":
        return _with_rate(OutboxChannel(name=settings.name, store=store, clock=clock), settings)
    try:
        module = importlib.import_module(f"alerts.channels.{settings.type}")
    except ModuleNotFoundError:
        raise ValueError(
            f"channel {settings.name}: type {settings.type!r} is not available in this build"
        ) from None
    channel: Channel = module.build(settings, session=session or requests.Session(), clock=clock)
    return _with_rate(channel, settings)


def _with_rate(channel: Channel, settings: ChannelSettings) -> Channel:
    """A configured ``rate_per_minute`` replaces the vendor limit the channel declares.

    The dispatcher reads ``channel.rate`` (calls, seconds) and holds it across
    processes; this is the one place configuration overrides it.
    """
    if settings.rate_per_minute:
        channel.rate = (settings.rate_per_minute, 60.0)  # type: ignore[attr-defined]
    return channel
