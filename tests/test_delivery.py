"""Fan-out to subscribers and dispatch over the ledger, on SQLite and PostgreSQL.

Who gets a publication (static recipients, matching subscribers, earlier
recipients of the same alerts), in which language, and what the dispatcher
does with abandoned sends, gone followers and rate limits.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.channels.base import Message, Recipient, SendResult
from alerts.config import ChannelSettings, DeliverySettings, load_settings
from alerts.delivery import dispatch, fan_out
from alerts.lifecycle import Decision
from alerts.model import Action, Level, Warning
from alerts.pipeline import Runtime, publish
from alerts.store.models import Delivery
from tests.alertkit import CHENGDU, alert_id, rain

NOW = datetime(2026, 7, 10, 6, 0, tzinfo=UTC)  # 14:00 Beijing


@pytest.fixture
def rt(alerts_env: Path, store_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ALERTS_STORE_URL", store_url)
    monkeypatch.setenv(
        "ALERTS_CHANNELS",
        json.dumps(
            [
                {"name": "outbox", "type": "outbox", "recipients": ["duty-room"]},
                {
                    "name": "drill",
                    "type": "outbox",
                    "recipients": [],
                    "audience": "internal",
                },
            ]
        ),
    )
    clock = [NOW]
    runtime = Runtime.from_settings(load_settings(), clock=lambda: clock[0])
    runtime.clock_box = clock  # type: ignore[attr-defined]
    yield runtime
    runtime.close()


def _rain(level: Level, region: tuple[str, str] = CHENGDU) -> Warning:
    return rain(level, NOW, region)


def _issue(rt: Runtime, warning: Warning) -> None:
    rt.store.apply(
        [Decision(Action.ISSUE, alert_id(warning), warning, None, "t")],
        now=rt.clock(),
        publisher=rt.publisher("test"),
    )


def _change(rt: Runtime, action: Action, warning: Warning | None, region: str = CHENGDU[0]) -> None:
    (active,) = [a for a in rt.store.active_alerts() if a.region_code == region]
    rt.store.apply(
        [Decision(action, active.alert_id, warning, active, "t")],
        now=rt.clock(),
        publisher=rt.publisher("test"),
    )


def _subscribe(rt: Runtime, address: str, areas: str, **extra: object) -> None:
    rt.store.add_subscriber(
        {
            "name": address,
            "channel": extra.pop("channel", "outbox"),
            "address": address,
            "areas": areas.split("|"),
            "hazards": [],
            "min_level": 1,
            "source": "operator",
            **extra,
        },
        now=NOW,
    )


def _rows(rt: Runtime) -> dict[str, Delivery]:
    return {d.recipient: d for d in rt.store.deliveries()}


def test_a_publication_reaches_static_recipients_and_matching_subscribers(rt: Runtime) -> None:
    _subscribe(rt, "sichuan", "51")
    _subscribe(rt, "chengdu-en", "5101", language="en")
    _subscribe(rt, "beijing", "11")
    _subscribe(rt, "orange-only", "51", min_level=3)
    _subscribe(rt, "gone", "51", active=False)
    _issue(rt, _rain(Level.YELLOW))
    summary = publish(rt)
    rows = _rows(rt)
    assert sorted(rows) == ["chengdu-en", "duty-room", "sichuan"]
    assert (rows["duty-room"].origin, rows["duty-room"].subscriber_id) == ("channel", None)
    assert rows["sichuan"].origin == "match" and rows["sichuan"].subscriber_id is not None
    assert summary.delivered == 3
    bodies = {m.recipient: m.body for m in rt.store.outbox()}
    assert "暴雨" in bodies["sichuan"] and "ainstorm" in bodies["chengdu-en"]
    # one stored message per language, shared by its rows
    assert rows["sichuan"].message_id == rows["duty-room"].message_id
    assert rows["chengdu-en"].message_id != rows["sichuan"].message_id


def test_an_update_reaches_earlier_recipients_who_narrowed_their_subscription(
    rt: Runtime,
) -> None:
    _subscribe(rt, "moved", "51")
    _subscribe(rt, "left", "51")
    _issue(rt, _rain(Level.YELLOW))
    publish(rt)
    # "moved" now only wants Beijing; "left" unsubscribed
    rt.store.upsert_subscribers(
        [{"channel": "outbox", "address": "moved", "name": "moved", "areas": ["11"]}], now=NOW
    )
    rt.store.deactivate_subscriber("outbox", "left", "asked to stop")
    _subscribe(rt, "new", "51")
    rt.clock_box[0] += timedelta(hours=1)  # type: ignore[attr-defined]
    _change(rt, Action.UPGRADE, _rain(Level.ORANGE))
    publish(rt)
    second = [d for d in rt.store.deliveries() if d.version == 2]
    assert {d.recipient: d.origin for d in second} == {
        "duty-room": "channel",
        "new": "match",
        "moved": "earlier",
    }


def test_a_cancellation_goes_to_earlier_recipients_not_to_new_matches(rt: Runtime) -> None:
    _subscribe(rt, "early", "51")
    _issue(rt, _rain(Level.YELLOW))
    publish(rt)
    _subscribe(rt, "late", "51")
    rt.clock_box[0] += timedelta(hours=1)  # type: ignore[attr-defined]
    _change(rt, Action.CANCEL, None)
    publish(rt)
    cancel = {d.recipient for d in rt.store.deliveries() if d.version == 2}
    assert cancel == {"duty-room", "early"}


def test_an_exercise_reaches_internal_channels_only(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _subscribe(rt, "public-person", "51")
    _subscribe(rt, "drill-person", "51", channel="drill")
    monkeypatch.setenv("ALERTS_LIFECYCLE__STATUS", "Exercise")
    exercise = Runtime.from_settings(load_settings(), clock=rt.clock)
    _issue(exercise, _rain(Level.RED))
    publish(exercise)
    assert {(d.channel, d.recipient) for d in exercise.store.deliveries()} == {
        ("drill", "drill-person")
    }
    exercise.close()


def test_quiet_hours_hold_back_yellow_but_not_red(rt: Runtime) -> None:
    # 14:00 Beijing: inside 13:00-15:00
    _subscribe(rt, "napper", "51", quiet_start="13:00", quiet_end="15:00")
    _issue(rt, _rain(Level.YELLOW))
    _issue(rt, _rain(Level.RED, ("510700", "四川省绵阳市")))
    publish(rt)
    got = {(d.recipient, d.alert_id.split(":")[-1]) for d in rt.store.deliveries()}
    assert ("napper", "510700") in got and ("napper", "510100") not in got


class Scripted:
    """A channel that answers from a script and counts what it was asked to send."""

    def __init__(
        self,
        name: str,
        *,
        idempotent: bool = False,
        answers: dict[str, SendResult] | None = None,
        confirm_answers: dict[str, bool | None] | None = None,
    ) -> None:
        self.name = name
        self.idempotent = idempotent
        self.answers = answers or {}
        self.sent: list[str] = []
        self.confirm_answers = confirm_answers
        self.confirm_calls: list[str | None] = []

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        self.sent += [r.address for r in recipients]
        return [
            dataclasses.replace(self.answers.get(r.address, SendResult("", ok=True)), key=r.key)
            for r in recipients
        ]


class Confirmer(Scripted):
    def confirm(
        self, message: Message, recipients: Sequence[Recipient], *, since: datetime
    ) -> dict[str, bool | None]:
        self.confirm_calls.append(message.batch_id)
        return {r.key: (self.confirm_answers or {}).get(r.address) for r in recipients}


def _abandon(rt: Runtime, channel: str) -> str:
    """Fan out, let a (dead) worker claim everything, and return its claim token."""
    fan_out(rt.store, rt.renderer, [_settings(channel)], now=rt.clock())
    claim = rt.store.claim_deliveries(now=rt.clock(), worker="elsewhere/1")
    assert claim is not None
    rt.clock_box[0] += timedelta(minutes=10)  # type: ignore[attr-defined]
    return claim.token


def _settings(name: str, **extra: object) -> ChannelSettings:
    return ChannelSettings.model_validate(
        {"name": name, "type": "webhook", "recipients": ["a", "b"], **extra}
    )


def _dispatch(rt: Runtime, channel: Scripted, confirm_delay_s: float = 0, **extra: object) -> None:
    dispatch(
        rt.store,
        {channel.name: channel},  # type: ignore[dict-item]
        {channel.name: _settings(channel.name, **extra)},
        clock=rt.clock,
        policy=DeliverySettings(confirm_delay_s=confirm_delay_s),
    )


def test_an_abandoned_send_is_confirmed_only_after_the_confirm_delay(rt: Runtime) -> None:
    _issue(rt, _rain(Level.RED))
    _abandon(rt, "hook")
    channel = Confirmer("hook", confirm_answers={"a": True, "b": True})
    _dispatch(rt, channel, confirm_delay_s=30)
    assert channel.confirm_calls == [] and {d.status for d in rt.store.deliveries()} == {"retry"}
    rt.clock_box[0] += timedelta(seconds=31)  # type: ignore[attr-defined]
    _dispatch(rt, channel, confirm_delay_s=30)
    assert len(channel.confirm_calls) == 1 and channel.sent == []
    assert {d.status for d in rt.store.deliveries()} == {"sent"}


def test_an_abandoned_send_is_confirmed_with_the_vendor_before_any_resend(rt: Runtime) -> None:
    _issue(rt, _rain(Level.RED))
    token = _abandon(rt, "hook")
    channel = Confirmer("hook", confirm_answers={"a": True, "b": False})
    _dispatch(rt, channel)
    assert channel.confirm_calls == [token]  # asked about the attempt in doubt
    assert channel.sent == ["b"]  # "a" had gone out: not sent twice
    rows = _rows(rt)
    assert rows["a"].status == rows["b"].status == "sent"
    assert rows["a"].provider_message_id == f"confirmed:{token}"


@pytest.mark.parametrize(
    ("policy", "status", "sent"), [("hold", "unknown", []), ("resend", "sent", ["a", "b"])]
)
def test_an_abandoned_send_that_cannot_be_confirmed_follows_the_channel_policy(
    rt: Runtime, policy: str, status: str, sent: list[str]
) -> None:
    _issue(rt, _rain(Level.RED))
    _abandon(rt, "hook")
    channel = Scripted("hook")
    _dispatch(rt, channel, on_unconfirmed=policy)
    assert channel.sent == sent
    assert {d.status for d in rt.store.deliveries()} == {status}


def test_an_abandoned_send_on_a_deduplicating_channel_is_simply_sent_again(rt: Runtime) -> None:
    _issue(rt, _rain(Level.RED))
    _abandon(rt, "hook")
    channel = Scripted("hook", idempotent=True)
    _dispatch(rt, channel)
    assert channel.sent == ["a", "b"]
    assert {d.status for d in rt.store.deliveries()} == {"sent"}


def test_a_retryable_failure_on_a_confirming_channel_is_confirmed_before_the_retry(
    rt: Runtime,
) -> None:
    _issue(rt, _rain(Level.RED))
    fan_out(rt.store, rt.renderer, [_settings("hook")], now=rt.clock())
    timeout = SendResult("", ok=False, retryable=True, error_code="timeout", error_text="read")
    channel = Confirmer("hook", answers={"a": timeout}, confirm_answers={"a": True})
    _dispatch(rt, channel)
    assert _rows(rt)["a"].status == "retry" and _rows(rt)["a"].confirm_token
    rt.clock_box[0] += timedelta(minutes=5)  # type: ignore[attr-defined]
    channel.answers = {}
    _dispatch(rt, channel)
    assert channel.sent == ["a", "b"]  # "a" was not sent again: the vendor had it
    assert _rows(rt)["a"].status == "sent"


def test_a_follower_who_left_is_deactivated_by_the_vendor_answer(rt: Runtime) -> None:
    rt.store.add_subscriber(
        {"name": "x", "channel": "wx", "address": "openid-1", "areas": ["51"], "source": "wechat"},
        now=NOW,
    )
    _issue(rt, _rain(Level.YELLOW))
    fan_out(
        rt.store,
        rt.renderer,
        [ChannelSettings.model_validate({"name": "wx", "type": "webhook", "recipients": []})],
        now=rt.clock(),
    )
    gone = SendResult("", ok=False, error_code="43004", error_text="require subscribe")
    channel = Scripted("wx", answers={"openid-1": gone})
    channel.gone_codes = frozenset({"43004"})  # type: ignore[attr-defined]
    dispatch(rt.store, {"wx": channel}, {}, clock=rt.clock)  # type: ignore[dict-item]
    (sub,) = rt.store.subscribers_frame().itertuples()
    assert not sub.active and "43004" in sub.deactivated_reason
    assert rt.store.deliveries()[0].status == "dead"


def test_red_is_dispatched_before_yellow(rt: Runtime) -> None:
    _issue(rt, _rain(Level.YELLOW))
    _issue(rt, _rain(Level.RED, ("510700", "四川省绵阳市")))
    fan_out(rt.store, rt.renderer, [_settings("hook")], now=rt.clock())
    order: list[int] = []

    class Recorder(Scripted):
        def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
            order.append(message.version and (4 if "510700" in message.alert_id else 2))
            return super().send(message, recipients)

    _dispatch(rt, Recorder("hook"))
    assert order == [4, 4, 2, 2]  # one call per recipient (a, b), red first


def test_batching_channels_get_one_call_per_batch(rt: Runtime) -> None:
    for i in range(25):
        _subscribe(rt, f"p{i:02d}", "51", channel="hook")
    _issue(rt, _rain(Level.YELLOW))
    fan_out(
        rt.store,
        rt.renderer,
        [_settings("hook", recipients=[])],
        now=rt.clock(),
    )
    calls: list[int] = []

    class Batcher(Scripted):
        max_batch = 10

        def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
            calls.append(len(recipients))
            return super().send(message, recipients)

    channel = Batcher("hook")
    summary = dispatch(
        rt.store,
        {"hook": channel},  # type: ignore[dict-item]
        {"hook": _settings("hook", recipients=[])},
        clock=rt.clock,
        policy=DeliverySettings(claim_size=1000),
    )
    assert calls == [10, 10, 5] and summary.calls == 3 and summary.sent == 25
    assert len(set(channel.sent)) == 25


def test_dead_workers_are_processes_of_this_host_that_are_gone() -> None:
    import socket
    import subprocess
    import sys

    from alerts.delivery import dead_workers, worker_id

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    me = worker_id("w1")
    assert me.startswith("w1@") and me.endswith(f"/{os.getpid()}")
    claimers = [me, f"{host}/{gone.pid}", f"n@{host}/{gone.pid}", f"other-host/{gone.pid}", "x"]
    assert dead_workers(claimers) == [f"{host}/{gone.pid}", f"n@{host}/{gone.pid}"]
