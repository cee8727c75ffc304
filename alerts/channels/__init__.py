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
        return OutboxChannel(name=settings.name, store=store, clock=clock)
    try:
        module = importlib.import_module(f"alerts.channels.{settings.type}")
    except ModuleNotFoundError:
        raise ValueError(
            f"channel {settings.name}: type {settings.type!r} is not available in this build"
        ) from None
    channel: Channel = module.build(settings, session=session or requests.Session(), clock=clock)
    return channel
