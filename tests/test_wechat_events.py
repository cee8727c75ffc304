"""WeChat Official Account server push: signature, follows and unfollows, retries, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.config import ConfigError, Settings, load_settings
from alerts.store import Store
from alerts.wechat_events import (
    UNSUBSCRIBED_REASON,
    MalformedEvent,
    WeChatNotConfigured,
    dedup_key,
    handle_event,
    is_fresh,
    parse_message,
    push_settings,
    sign,
    verify_signature,
)

NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
OPENID = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
CHANNELS = [
    {"name": "outbox", "type": "outbox"},
    {"name": "wechat", "type": "wechat_oa", "enabled": False},
]
SUBSCRIPTIONS: dict[str, Any] = {
    "wechat_channel": "wechat",
    "wechat_token": "tok3n",
    "default_areas": ["51", "5101"],
    "default_hazards": ["earthquake", "rainstorm"],
    "default_min_level": "yellow",
}


def push(
    event: str | None = "subscribe",
    *,
    openid: str = OPENID,
    at: datetime = NOW,
    msg_type: str = "event",
    msg_id: str | None = None,
) -> bytes:
    """A pushed message as WeChat sends it (CDATA, CreateTime in epoch seconds)."""
    parts = [
        "<xml>",
        "<ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>",
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>",
        f"<CreateTime>{int(at.timestamp())}</CreateTime>",
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>",
    ]
    if event is not None:
        parts += [f"<Event><![CDATA[{event}]]></Event>", "<EventKey><![CDATA[]]></EventKey>"]
    if msg_type == "text":
        parts.append("<Content><![CDATA[订阅 51]]></Content>")
    if msg_id is not None:
        parts.append(f"<MsgId>{msg_id}</MsgId>")
    parts.append("</xml>")
    return "\n".join(parts).encode("utf-8")


@pytest.fixture
def settings(alerts_env: Path) -> Settings:
    return load_settings(channels=CHANNELS, subscriptions=SUBSCRIPTIONS)


@pytest.fixture
def store(store_url: str) -> Any:
    with Store(store_url) as s:
        yield s


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    """For tests that refuse before writing anything: one backend is enough."""
    with Store(f"sqlite:///{tmp_path / 'store.db'}") as s:
        yield s


def _row(store: Store, address: str = OPENID) -> dict[str, Any]:
    frame = store.subscribers_frame()
    (row,) = frame[frame["address"] == address].to_dict("records")
    return row


# -- signature ------------------------------------------------------------------------


def test_signature_is_sha1_of_the_sorted_token_timestamp_and_nonce() -> None:
    # sorted: "1409304348" < "weixin" < "xxxxxx"; computed with `printf ... | sha1sum`
    expected = "97c02f162124a44cb4168c5fc4854717e148d004"
    assert sign("weixin", "1409304348", "xxxxxx") == expected
    assert verify_signature("weixin", "1409304348", "xxxxxx", expected)
    assert verify_signature("weixin", "1409304348", "xxxxxx", expected.upper())  # hex case
    assert not verify_signature("weixin", "1409304348", "xxxxxy", expected)  # another nonce
    assert not verify_signature("weixin", "1409304349", "xxxxxx", expected)  # another time
    assert not verify_signature("other", "1409304348", "xxxxxx", expected)  # another token
    assert not verify_signature("weixin", "1409304348", "xxxxxx", "")
    assert not verify_signature("", "1409304348", "xxxxxx", sign("", "1409304348", "xxxxxx"))
    assert not verify_signature("weixin", "1409304348", "xxxxxx", "签名")  # not ASCII: no crash


def test_a_timestamp_must_be_near_our_clock() -> None:
    now = datetime.fromtimestamp(1_800_000_000, UTC)
    assert is_fresh("1800000000", now)
    assert is_fresh(str(1_800_000_000 - 299), now) and is_fresh(str(1_800_000_000 + 299), now)
    assert not is_fresh(str(1_800_000_000 - 301), now)
    assert not is_fresh("", now) and not is_fresh("soon", now)


# -- follows ------------------------------------------------------------------------------


def test_a_follow_subscribes_with_the_configured_defaults(settings: Settings, store: Store) -> None:
    followed = NOW - timedelta(seconds=2)
    assert handle_event(store, settings, push("subscribe", at=followed), NOW) == "subscribed"
    row = _row(store)
    assert (row["channel"], row["address"], row["source"]) == ("wechat", OPENID, "wechat")
    assert row["areas"] == ["51", "5101"] and row["hazards"] == ["earthquake", "rainstorm"]
    assert row["min_level"] == 2 and row["language"] == "zh-CN" and bool(row["active"])
    assert row["consent_at"].replace(tzinfo=UTC) == followed  # the event's time, not ours
    assert row["name"].startswith("微信关注者") and OPENID[-8:] in row["name"]


def test_an_unfollow_deactivates_and_a_refollow_reactivates(
    settings: Settings, store: Store
) -> None:
    assert handle_event(store, settings, push("subscribe"), NOW) == "subscribed"
    # the operator narrows the follower's areas in between
    store.upsert_subscribers([{"channel": "wechat", "address": OPENID, "areas": ["510100"]}])
    later = NOW + timedelta(days=1)
    assert handle_event(store, settings, push("unsubscribe", at=later), later) == "unsubscribed"
    row = _row(store)
    assert not row["active"] and row["deactivated_reason"] == UNSUBSCRIBED_REASON

    again = NOW + timedelta(days=2)
    assert handle_event(store, settings, push("subscribe", at=again), again) == "resubscribed"
    row = _row(store)
    assert bool(row["active"]) and row["deactivated_reason"] is None
    assert row["consent_at"].replace(tzinfo=UTC) == again
    assert row["areas"] == ["510100"]  # kept: a returning follower keeps their settings
    assert len(store.subscribers_frame()) == 1


def test_an_unfollow_of_someone_unknown_is_ignored(settings: Settings, store: Store) -> None:
    assert handle_event(store, settings, push("unsubscribe"), NOW) == "ignored"
    assert store.subscribers_frame().empty


def test_other_events_and_messages_are_ignored(settings: Settings, store: Store) -> None:
    assert handle_event(store, settings, push("CLICK"), NOW) == "ignored"
    assert handle_event(store, settings, push("SCAN"), NOW) == "ignored"
    text = push(None, msg_type="text", msg_id="23958741069432567")
    assert handle_event(store, settings, text, NOW) == "ignored"
    assert store.subscribers_frame().empty


# -- WeChat's retries ------------------------------------------------------------------------


def test_retries_of_a_push_apply_once(settings: Settings, store: Store) -> None:
    follow = push("subscribe")
    assert handle_event(store, settings, follow, NOW) == "subscribed"
    for seconds in (5, 10, 15):  # WeChat: three retries within about 15 s
        assert handle_event(store, settings, follow, NOW + timedelta(seconds=seconds)) == (
            "duplicate"
        )
    later = NOW + timedelta(minutes=1)
    unfollow = push("unsubscribe", at=later)
    assert handle_event(store, settings, unfollow, later) == "unsubscribed"
    # a late retry of the follow must not subscribe them again
    assert handle_event(store, settings, follow, later + timedelta(seconds=1)) == "duplicate"
    assert not _row(store)["active"]


def test_a_follow_and_unfollow_in_the_same_second_are_not_retries(
    settings: Settings, store: Store
) -> None:
    assert handle_event(store, settings, push("subscribe"), NOW) == "subscribed"
    assert handle_event(store, settings, push("unsubscribe"), NOW) == "unsubscribed"
    assert not _row(store)["active"]


def test_retry_keys_follow_wechat_advice() -> None:
    event = parse_message(push("subscribe"))
    assert dedup_key(event) == f"event:{OPENID}:{int(NOW.timestamp())}:subscribe"
    message = parse_message(push(None, msg_type="text", msg_id="23958741069432567"))
    assert dedup_key(message) == "msg:23958741069432567"
    assert message.event is None and message.msg_type == "text"


# -- bad input and configuration ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "empty"),
        (b"not xml at all", "XML"),
        (b"<xml><FromUserName>o1</FromUserName>", "XML"),  # cut short
        (b"<message><FromUserName>o1</FromUserName></message>", "<xml>"),
        (b"<xml><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>", "FromUserName"),
        (
            b"<xml><FromUserName>o1</FromUserName><CreateTime>soon</CreateTime>"
            b"<MsgType>event</MsgType></xml>",
            "CreateTime",
        ),
        (b"<xml><ToUserName>gh_1</ToUserName><Encrypt>AAAA</Encrypt></xml>", "明文模式"),
        (
            b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><FromUserName>&b;</FromUserName></xml>',
            "XML",
        ),
        (b"<xml>" + b" " * (64 * 1024) + b"</xml>", "64 KB"),
    ],
)
def test_a_malformed_push_is_refused(
    settings: Settings, sqlite_store: Store, body: bytes, says: str
) -> None:
    with pytest.raises(MalformedEvent, match=says) as caught:
        handle_event(sqlite_store, settings, body, NOW)
    assert isinstance(caught.value, ValueError)  # the web layer answers 400
    assert sqlite_store.subscribers_frame().empty


def test_an_openid_that_is_no_address_is_refused(settings: Settings, sqlite_store: Store) -> None:
    with pytest.raises(MalformedEvent, match="FromUserName"):
        handle_event(sqlite_store, settings, push("subscribe", openid="o" * 600), NOW)


@pytest.mark.parametrize(
    ("channels", "subscriptions", "says"),
    [
        (CHANNELS, {**SUBSCRIPTIONS, "wechat_channel": None}, "WECHAT_CHANNEL"),
        (CHANNELS, {**SUBSCRIPTIONS, "wechat_channel": "weixin"}, "not a configured channel"),
        (CHANNELS, {**SUBSCRIPTIONS, "wechat_channel": "outbox"}, "not wechat_oa"),
        (CHANNELS, {**SUBSCRIPTIONS, "wechat_token": None}, "WECHAT_TOKEN"),
        (CHANNELS, {**SUBSCRIPTIONS, "wechat_token": ""}, "WECHAT_TOKEN"),
        (CHANNELS, {**SUBSCRIPTIONS, "default_areas": []}, "default_areas"),
        (CHANNELS, {**SUBSCRIPTIONS, "default_min_level": "purple"}, "default_min_level"),
        (CHANNELS, {**SUBSCRIPTIONS, "default_hazards": ["volcano"]}, "volcano"),
    ],
)
def test_unconfigured_follows_say_what_is_missing(
    alerts_env: Path,
    sqlite_store: Store,
    channels: list[dict[str, Any]],
    subscriptions: dict[str, Any],
    says: str,
) -> None:
    settings = load_settings(channels=channels, subscriptions=subscriptions)
    with pytest.raises(WeChatNotConfigured, match=says) as caught:
        push_settings(settings)
    assert isinstance(caught.value, ConfigError)
    with pytest.raises(WeChatNotConfigured):
        handle_event(sqlite_store, settings, push("subscribe"), NOW)
    assert sqlite_store.subscribers_frame().empty


def test_the_default_configuration_takes_no_follows(alerts_env: Path) -> None:
    with pytest.raises(WeChatNotConfigured, match="not set"):
        push_settings(load_settings())


def test_a_push_refused_for_configuration_is_applied_when_retried_after_the_fix(
    alerts_env: Path, settings: Settings, sqlite_store: Store
) -> None:
    broken = load_settings(channels=CHANNELS, subscriptions={**SUBSCRIPTIONS, "default_areas": []})
    with pytest.raises(WeChatNotConfigured):
        handle_event(sqlite_store, broken, push("subscribe"), NOW)
    # nothing was recorded, so WeChat's retry is not taken for a duplicate
    later = NOW + timedelta(seconds=5)
    assert handle_event(sqlite_store, settings, push("subscribe"), later) == "subscribed"
