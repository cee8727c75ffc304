"""Fan-out and dispatch over the delivery ledger.

Fan-out turns each new alert version into ledger rows, one per (channel,
recipient), with the rendered message, in one transaction. Dispatch claims
due rows, sends them per channel, and records each outcome: sent, retry
(with backoff) or dead (dead-lettered for an operator). Because a row is
claimed before it is sent and its key is unique, rerunning any step never
delivers the same version to the same recipient twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerts.channels.base import Channel, Message, Recipient, SendResult
from alerts.config import ChannelSettings
from alerts.render import Rendered, Renderer, family_for, render_publication
from alerts.store import DeliveryOutcome, NewDelivery, Store
from alerts.store.models import Delivery

__all__ = ["DispatchSummary", "backoff", "delivery_key", "dispatch", "fan_out"]

LEASE_S = 300.0


def delivery_key(identifier: str, channel: str, recipient: str) -> str:
    """The ledger's idempotency key: one publication, one channel, one recipient."""
    return f"{identifier}/{channel}/{recipient}"


def backoff(attempt: int) -> timedelta:
    """30 s, 60 s, 120 s ... capped at 15 minutes."""
    return timedelta(seconds=min(30 * 2 ** max(attempt - 1, 0), 900))


def fan_out(
    store: Store, renderer: Renderer, channels: list[ChannelSettings], *, now: datetime
) -> int:
    """Create ledger rows for every publication not yet fanned out; return how many.

    Exercise and test publications go to internal channels only; quiet ones
    (expiry, extension) to none. Each channel gets its family's rendering
    (:func:`alerts.render.family_for`: short, markdown, long or text) in its
    language; a failing operator template falls back to the packaged one.
    """
    created = 0
    enabled = [c for c in channels if c.enabled]
    for pub in store.publications_to_fan_out():
        rows: list[NewDelivery] = []
        if pub.notify:
            members = store.publication_members(pub.id)
            rendered: dict[tuple[str, str], Rendered] = {}
            for ch in enabled:
                if pub.status != "Actual" and ch.audience == "public":
                    continue
                family = family_for(ch)
                if (family, ch.language) not in rendered:
                    rendered[(family, ch.language)] = render_publication(
                        renderer, pub, members, language=ch.language, family=family, fallback=True
                    )
                msg = rendered[(family, ch.language)]
                rows.extend(
                    NewDelivery(
                        key=delivery_key(pub.identifier, ch.name, rcpt),
                        channel=ch.name,
                        recipient=rcpt,
                        language=ch.language,
                        subject=msg.subject,
                        body=msg.body,
                    )
                    for rcpt in ch.recipients
                )
        created += store.fan_out(pub, rows, now=now)
    return created


@dataclass
class DispatchSummary:
    sent: int = 0
    retry: int = 0
    dead: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


def dispatch(
    store: Store,
    channels: Mapping[str, Channel],
    settings: Mapping[str, ChannelSettings],
    *,
    clock: Callable[[], datetime],
) -> DispatchSummary:
    """Send every due ledger row once; record sent / retry / dead for each."""
    summary = DispatchSummary()
    idempotent = {name for name, ch in channels.items() if ch.idempotent}
    claimed = store.claim_deliveries(now=clock(), lease_s=LEASE_S, idempotent_channels=idempotent)
    groups: dict[tuple[str, int], list[Delivery]] = defaultdict(list)
    for d in claimed:
        groups[(d.channel, d.publication_id)].append(d)

    for (channel_name, _), rows in groups.items():
        channel = channels.get(channel_name)
        first = rows[0]
        results: dict[str, SendResult]
        if channel is None:
            results = {
                d.key: SendResult(
                    d.key,
                    ok=False,
                    error_code="no-channel",
                    error_text=f"channel {channel_name!r} is not configured",
                )
                for d in rows
            }
        elif (wait := _rate_wait(store, channel, settings.get(channel_name), clock())) > 0:
            later = clock() + timedelta(seconds=wait)
            deferred = [
                DeliveryOutcome(
                    d.id,
                    "retry",
                    None,
                    "rate-limited",
                    f"{channel_name}: account rate limit, next try in {wait:.0f} s",
                    later,
                    refund_attempt=True,
                )
                for d in rows
            ]
            store.record_outcomes(deferred, now=clock())
            summary.retry += len(deferred)
            continue
        else:
            message = Message(
                first.alert_id,
                first.version,
                first.subject,
                first.body,
                first.language,
                identifier=first.key.split("/", 1)[0],
            )
            results = _send(channel, message, [Recipient(d.recipient, d.key) for d in rows])
        max_attempts = settings[channel_name].max_attempts if channel_name in settings else 1
        now = clock()
        outcomes = [_outcome(d, results.get(d.key), max_attempts, now) for d in rows]
        store.record_outcomes(outcomes, now=now)
        for o in outcomes:
            setattr(summary, o.status, getattr(summary, o.status) + 1)
            if o.status == "sent":
                summary.by_channel[channel_name] = summary.by_channel.get(channel_name, 0) + 1
    return summary


def _rate_wait(
    store: Store, channel: Channel, settings: ChannelSettings | None, now: datetime
) -> float:
    """Seconds until the channel account may call again (0: a slot was taken now)."""
    limit: tuple[float, float] | None = getattr(channel, "rate", None)
    if not limit:
        return 0.0
    kind = settings.type if settings is not None else getattr(channel, "type", "channel")
    account = f"{kind}:{channel.name}"
    count, window = limit
    if count < 1:  # fractional per-minute budgets: one call per 60/count seconds
        count, window = 1, window / count
    return store.reserve_rate(account, limit=int(count), window_s=window, now=now)


def _send(channel: Channel, message: Message, recipients: list[Recipient]) -> dict[str, SendResult]:
    try:
        results = channel.send(message, recipients)
    except Exception as exc:  # a channel broke its contract: keep the rows, retry later
        text = f"{type(exc).__name__}: {exc}"
        results = [
            SendResult(r.key, ok=False, retryable=True, error_code="exception", error_text=text)
            for r in recipients
        ]
    return {r.key: r for r in results}


def _outcome(
    d: Delivery, result: SendResult | None, max_attempts: int, now: datetime
) -> DeliveryOutcome:
    if result is None:
        result = SendResult(
            d.key,
            ok=False,
            retryable=True,
            error_code="no-result",
            error_text="channel returned no result for this recipient",
        )
    if result.ok:
        return DeliveryOutcome(d.id, "sent", provider_message_id=result.provider_message_id)
    if result.retryable and d.attempts < max_attempts:
        return DeliveryOutcome(
            d.id, "retry", None, result.error_code, result.error_text, now + backoff(d.attempts)
        )
    return DeliveryOutcome(d.id, "dead", None, result.error_code, result.error_text)
