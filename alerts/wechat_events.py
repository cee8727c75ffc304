"""WeChat Official Account server push (消息推送, plaintext mode): follows become subscribers.

The account's server configuration (公众号后台 → 设置与开发 → 基本配置 → 服务器配置)
names our URL and a Token. WeChat then

* verifies the URL once with ``GET ?signature=&timestamp=&nonce=&echostr=``:
  we answer ``echostr`` as it came when the signature is right;
* ``POST``s every event and message as XML to the same URL, signed in the query
  string the same way (``signature``, ``timestamp``, ``nonce``, plus ``openid``);
  the body itself is not signed.

``signature`` is the hex SHA-1 of the token, timestamp and nonce sorted and
concatenated. A follow (``<MsgType>event</MsgType><Event>subscribe</Event>``)
subscribes the follower (``FromUserName``, the openid) on the configured
``wechat_oa`` channel with the configured default areas, hazards and level; an
unfollow (``unsubscribe``) deactivates them; everything else is ignored.

WeChat waits 5 seconds for an answer and retries up to three times (within
about 15 s) with the same ``FromUserName`` + ``CreateTime`` (events) or the
same ``MsgId`` (messages); :func:`handle_event` applies each once, remembering
what it applied in the store, in the same transaction as the change
(``Store.apply_follow``).

This module is the domain core: it imports neither Airflow nor a web framework
(the Airflow plugin ``plugins/alerts_ops.py`` serves it over HTTP).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from alerts.config import ConfigError, Settings
from alerts.subscribers import SubscriberIn, validate

if TYPE_CHECKING:
    from alerts.store import Store

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_CLOCK_SKEW_S",
    "SOURCE",
    "UNSUBSCRIBED_REASON",
    "MalformedEvent",
    "Outcome",
    "PushedMessage",
    "WeChatNotConfigured",
    "WeChatPush",
    "dedup_key",
    "handle_event",
    "is_fresh",
    "parse_message",
    "push_settings",
    "sign",
    "verify_signature",
]

SOURCE = "wechat"  # the inbound events' source and the subscribers' ``source``
UNSUBSCRIBED_REASON = "取消关注 unsubscribed (WeChat)"
MAX_BODY_BYTES = 64 * 1024  # a pushed event is well under 2 KB
MAX_OPENID_CHARS = 128  # openids have 28 characters; the retry key column holds 300
# The query string's ``timestamp`` may differ this much from our clock. The body
# is not signed, so a captured request could otherwise be replayed for ever with
# another body; WeChat's own retries all come within about 15 s.
MAX_CLOCK_SKEW_S = 300.0

Outcome = Literal["subscribed", "resubscribed", "unsubscribed", "duplicate", "ignored"]


class WeChatNotConfigured(ConfigError):
    """Follows cannot be taken: the channel, the token or the defaults are missing or bad."""


class MalformedEvent(ValueError):
    """The pushed body is not a WeChat plaintext XML message (answer HTTP 400)."""


@dataclass(frozen=True)
class WeChatPush:
    """What the server push needs from the settings, checked."""

    channel: str
    token: str
    defaults: SubscriberIn  # a template follower: areas, hazards, min_level


@dataclass(frozen=True)
class PushedMessage:
    """One pushed XML message or event (the fields we use)."""

    to_user: str  # the account's original id (gh_...)
    from_user: str  # the follower's openid
    create_time: int  # seconds since the epoch
    msg_type: str  # event, text, image, ...
    event: str | None = None  # subscribe, unsubscribe, SCAN, CLICK, ... (events only)
    msg_id: str | None = None  # messages only
    event_key: str | None = None  # e.g. qrscene_123 when following from a QR code

    @property
    def created(self) -> datetime:
        return datetime.fromtimestamp(self.create_time, UTC)


# -- signature ------------------------------------------------------------------------


def sign(token: str, timestamp: str, nonce: str) -> str:
    """The hex SHA-1 of token, timestamp and nonce, sorted and concatenated."""
    joined = "".join(sorted([token, timestamp, nonce]))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324 - WeChat's scheme


def verify_signature(token: str, timestamp: str, nonce: str, signature: str) -> bool:
    """True when ``signature`` is WeChat's signature of this timestamp and nonce (constant time)."""
    if not token or not timestamp or not nonce or not signature:
        return False
    expected = sign(token, timestamp, nonce)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8"))


def is_fresh(timestamp: str, now: datetime, max_skew_s: float = MAX_CLOCK_SKEW_S) -> bool:
    """True when the query ``timestamp`` (epoch seconds) is within ``max_skew_s`` of ``now``."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    return abs(now.timestamp() - sent) <= max_skew_s


# -- configuration ----------------------------------------------------------------------


def push_settings(settings: Settings) -> WeChatPush:
    """The checked server-push configuration; :class:`WeChatNotConfigured` says what is wrong."""
    subs = settings.subscriptions
    if not subs.wechat_channel:
        raise WeChatNotConfigured(
            "subscriptions.wechat_channel (env ALERTS_SUBSCRIPTIONS__WECHAT_CHANNEL): "
            "not set; name the wechat_oa channel whose followers subscribe"
        )
    channel = next((c for c in settings.channels if c.name == subs.wechat_channel), None)
    if channel is None:
        known = [c.name for c in settings.channels]
        raise WeChatNotConfigured(
            f"subscriptions.wechat_channel: {subs.wechat_channel!r} is not a configured "
            f"channel (configured: {known})"
        )
    if channel.type != "wechat_oa":
        raise WeChatNotConfigured(
            f"subscriptions.wechat_channel: channel {channel.name!r} is of type "
            f"{channel.type}, not wechat_oa"
        )
    token = subs.wechat_token.get_secret_value() if subs.wechat_token is not None else ""
    if not token:
        raise WeChatNotConfigured(
            "subscriptions.wechat_token (env ALERTS_SUBSCRIPTIONS__WECHAT_TOKEN): not set; "
            "use the Token entered in the account's server configuration (服务器配置)"
        )
    try:
        defaults = validate(
            {
                "name": "WeChat follower",
                "channel": channel.name,
                "address": "openid",
                "areas": subs.default_areas,
                "hazards": subs.default_hazards,
                "min_level": subs.default_min_level,
                "source": SOURCE,
            },
            {c.name: c.type for c in settings.channels},
        )
    except ValueError as exc:
        raise WeChatNotConfigured(
            "subscriptions.default_areas / default_hazards / default_min_level "
            f"(what a new follower gets): {exc}"
        ) from None
    return WeChatPush(channel=channel.name, token=token, defaults=defaults)


# -- parsing ------------------------------------------------------------------------------


def parse_message(body: bytes) -> PushedMessage:
    """Parse a pushed plaintext XML message; :class:`MalformedEvent` when it is not one."""
    if len(body) > MAX_BODY_BYTES:
        raise MalformedEvent(f"body of {len(body)} bytes: a WeChat push is under 64 KB")
    if not body.strip():
        raise MalformedEvent("empty body: expected a WeChat XML message")
    try:
        root = fromstring(body)
    except (ParseError, DefusedXmlException) as exc:
        raise MalformedEvent(f"not well-formed XML: {exc}") from None
    if root.tag != "xml":
        raise MalformedEvent(f"root element <{root.tag}>: a WeChat message is <xml>")
    if root.find("Encrypt") is not None:
        raise MalformedEvent(
            "encrypted message (安全模式): set 消息加解密方式 to 明文模式 (plaintext) in the "
            "account's server configuration; only plaintext is supported"
        )
    create_time = _text(root, "CreateTime", required=True)
    try:
        created = int(create_time)
    except ValueError:
        raise MalformedEvent(f"CreateTime {create_time!r}: not an integer") from None
    if created <= 0:
        raise MalformedEvent(f"CreateTime {created}: not a time")
    from_user = _text(root, "FromUserName", required=True)
    if len(from_user) > MAX_OPENID_CHARS:
        raise MalformedEvent(
            f"<FromUserName> of {len(from_user)} characters: an openid has about 28"
        )
    return PushedMessage(
        to_user=_text(root, "ToUserName") or "",
        from_user=from_user,
        create_time=created,
        msg_type=_text(root, "MsgType", required=True),
        event=_text(root, "Event") or None,
        msg_id=_text(root, "MsgId") or None,
        event_key=_text(root, "EventKey") or None,
    )


def _text(root: Element, tag: str, *, required: bool = False) -> str:
    node = root.find(tag)
    value = (node.text or "").strip() if node is not None else ""
    if required and not value:
        raise MalformedEvent(f"<{tag}> missing or empty")
    return value


def dedup_key(message: PushedMessage) -> str:
    """What a retry of this push repeats: MsgId for messages, else sender + time + event.

    The event name is part of the key so that a follow and an unfollow within
    the same second are not taken for retries of one another.
    """
    if message.msg_id:
        return f"msg:{message.msg_id}"
    return f"event:{message.from_user}:{message.create_time}:{(message.event or '').lower()}"


# -- handling ------------------------------------------------------------------------------


def handle_event(store: Store, settings: Settings, xml_bytes: bytes, now: datetime) -> Outcome:
    """Apply one pushed message; answers what was done.

    ``subscribed`` (a new follower), ``resubscribed`` (a returning follower: active
    again, their areas and levels as they were), ``unsubscribed``, ``duplicate``
    (a retry of a push already applied) or ``ignored`` (any other message or
    event, or an unfollow of someone who was not a subscriber). Raises
    :class:`WeChatNotConfigured` or :class:`MalformedEvent`.

    The push is recorded and applied in one transaction
    (:meth:`Store.apply_follow`): a database failure leaves neither, and
    WeChat's retry applies it.
    """
    if now.tzinfo is None:
        raise ValueError("handle_event: `now` must be timezone-aware")
    push = push_settings(settings)
    message = parse_message(xml_bytes)
    event = (message.event or "").lower() if message.msg_type == "event" else ""
    if event not in ("subscribe", "unsubscribe"):
        return "ignored"
    follower: SubscriberIn | None = None
    if event == "subscribe":
        try:
            follower = validate(
                {
                    **push.defaults.model_dump(),
                    "name": f"微信关注者 WeChat follower {message.from_user[-8:]}",
                    "address": message.from_user,
                    "consent_at": message.created,
                }
            )
        except ValueError as exc:  # the openid as an address: printable, at most 500
            raise MalformedEvent(f"FromUserName {message.from_user!r}: {exc}") from None
    outcome = store.apply_follow(
        SOURCE,
        dedup_key(message),
        now=now,
        channel=push.channel,
        address=message.from_user,
        follower=follower.model_dump() if follower is not None else None,
        reason=UNSUBSCRIBED_REASON,
    )
    return outcome  # type: ignore[return-value]
