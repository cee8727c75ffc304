"""Fan-out and dispatch over the delivery ledger (guarantees: docs/delivery.md).

Fan-out turns each new publication into ledger rows in one transaction:
the channels' static recipients (duty groups, robots), the subscribers whose
areas, hazards, level and quiet hours match (:func:`alerts.subscribers.match`,
set-wise), and everyone who received an earlier version of the same alerts
(an update or a cancellation reaches them even if they have since narrowed
their subscription). Each (channel, language) is rendered once and stored
once; a row points at its message.

Dispatch claims due rows per (channel, message), at most one vendor call's
worth for batching channels (SMS 1000 numbers, WeCom application 1000 users),
sends them, and records each outcome: sent, retry (with backoff), dead
(fatal, or attempts exhausted; a dead letter for an operator) or unknown
(held for an operator). Rows a dead worker left mid-send are confirmed with
the vendor where the channel can (:class:`~alerts.channels.base.Confirming`),
resent where the channel deduplicates, and otherwise follow the channel's
``on_unconfirmed`` policy. Because every row is claimed before it is sent
and its key is unique, no rerun delivers a version to a recipient twice.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from alerts.bulletins import bulletin_family, bulletin_rows, render_publication_bulletin
from alerts.channels.base import Channel, Confirming, Message, Recipient, SendResult
from alerts.config import ChannelSettings, DeliverySettings
from alerts.model import Hazard, utc_iso
from alerts.regions import Regions
from alerts.render import Rendered, Renderer, family_for, render_publication
from alerts.store import Claim, DeliveryOutcome, NewMessage, Store
from alerts.store.models import Delivery, Publication
from alerts.subscribers import ROW_COLUMNS, match, recipient_rows

__all__ = [
    "DispatchSummary",
    "backoff",
    "dead_workers",
    "delivery_record",
    "dispatch",
    "fan_out",
    "worker_id",
]


def backoff(attempt: int, base_s: float = 30.0, max_s: float = 900.0) -> timedelta:
    """30 s, 60 s, 120 s ... capped at 15 minutes (by default)."""
    return timedelta(seconds=min(base_s * 2 ** max(attempt - 1, 0), max_s))


def worker_id(name: str | None = None) -> str:
    """This process as a claimer: ``[name@]host/pid`` (host and pid tell if it still lives)."""
    me = f"{socket.gethostname()}/{os.getpid()}"
    return f"{name}@{me}" if name else me


def dead_workers(claimers: Iterable[str]) -> list[str]:
    """The claimers that were processes on this host and are gone."""
    host = socket.gethostname()
    dead = []
    for claimer in claimers:
        where, _, pid = claimer.rpartition("@")[2].rpartition("/")
        if where != host or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            dead.append(claimer)
        except PermissionError:  # alive, someone else's
            pass
    return dead


def delivery_record(d: Delivery) -> dict[str, Any]:
    """One ledger row as JSON (the CLI and the operator API)."""
    return {
        "id": d.id,
        "key": d.key,
        "channel": d.channel,
        "recipient": d.recipient,
        "status": d.status,
        "attempts": d.attempts,
        "origin": d.origin,
        "error_code": d.error_code,
        "error_text": d.error_text,
        "provider_message_id": d.provider_message_id,
        "updated_at": utc_iso(d.updated_at),
    }


# -- fan-out ------------------------------------------------------------------------


def fan_out(
    store: Store,
    renderer: Renderer,
    channels: list[ChannelSettings],
    *,
    now: datetime,
    regions: Regions | None = None,
) -> int:
    """Create ledger rows for every publication not yet fanned out; return how many.

    Exercise and test publications go to internal channels only; quiet ones
    (expiry, extension) to none. A cancellation goes to those who got an
    earlier version (and the static recipients), not to new matches. Each
    channel gets its family's rendering (:func:`alerts.render.family_for`) in
    the recipient's language; a failing operator template falls back to the
    packaged one.
    """
    enabled = {c.name: c for c in channels if c.enabled}
    created = 0
    subscribers: pd.DataFrame | None = None
    for pub in store.publications_to_fan_out():
        if pub.kind != "alert":  # a daily outlook or a campaign (alerts.bulletins)
            if subscribers is None:
                subscribers = store.subscribers_frame(active_only=True)
            messages, rows = bulletin_rows(
                pub, renderer, channels, subscribers, now=now, regions=regions
            )
            created += store.fan_out(pub, messages, rows, now=now)
            continue
        if not pub.notify:
            created += store.fan_out(pub, [], [], now=now)
            continue
        allowed = {
            n: c for n, c in enabled.items() if pub.status == "Actual" or c.audience != "public"
        }
        members = store.publication_members(pub.id)
        frames = [
            pd.DataFrame(
                [
                    (n, r, c.language, None, "channel")
                    for n, c in allowed.items()
                    for r in c.recipients
                ],
                columns=ROW_COLUMNS,
            )
        ]
        if subscribers is None:
            subscribers = store.subscribers_frame(active_only=True)
        if pub.msg_type != "Cancel" and not subscribers.empty:
            hit = match(
                subscribers[subscribers["channel"].isin(list(allowed))],
                hazard=pub.hazard,
                level=pub.level,
                region_codes=[a.region_code for _, a in members],
                epicentre=_epicentre(pub, members),
                when=now,
                regions=regions,
            )
            frames.append(recipient_rows(hit))
        earlier = store.earlier_recipients(pub.id)
        if not earlier.empty:
            active = set(subscribers["id"].tolist()) if not subscribers.empty else set()
            keep = earlier["channel"].isin(list(allowed)) & earlier["subscriber_id"].isin(active)
            frames.append(earlier[keep].assign(origin="earlier")[ROW_COLUMNS])
        rows = pd.concat([f for f in frames if not f.empty] or frames, ignore_index=True)
        rows = rows.drop_duplicates(["channel", "recipient"], keep="first")
        messages = _render(renderer, pub, members, allowed, rows)
        rows = rows.assign(
            key=pub.identifier
            + "/"
            + rows["channel"].astype(str)
            + "/"
            + rows["recipient"].astype(str)
        )
        created += store.fan_out(pub, messages, rows, now=now)
    return created


def _epicentre(pub: Publication, members: Sequence[tuple[Any, Any]]) -> tuple[float, float] | None:
    if pub.hazard != Hazard.EARTHQUAKE.value or not members:
        return None
    facts = members[0][0].facts or {}
    lat, lon = facts.get("latitude"), facts.get("longitude")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return float(lat), float(lon)
    return None


def _render(
    renderer: Renderer,
    pub: Publication,
    members: Sequence[tuple[Any, Any]],
    channels: Mapping[str, ChannelSettings],
    rows: pd.DataFrame,
) -> list[NewMessage]:
    """One message per (channel, language), rendered once per distinct rendering."""
    cache: dict[tuple[Any, ...], Rendered] = {}
    messages = []
    for channel, language in (
        rows[["channel", "language"]].drop_duplicates().itertuples(index=False)
    ):
        settings = channels[channel]
        key = (
            settings.audience == "responders",
            family_for(settings),
            language,
            _departments(settings),
        )
        if key not in cache:
            cache[key] = render_for_channel(
                renderer, pub, members, settings, language=language, fallback=True
            )
        got = cache[key]
        messages.append(NewMessage(channel, language, got.subject, got.body))
    return messages


def _departments(settings: ChannelSettings) -> tuple[str, ...] | None:
    only = (settings.options or {}).get("departments")
    return tuple(str(d) for d in only) if isinstance(only, list) else None


def render_for_channel(
    renderer: Renderer,
    pub: Publication,
    members: Sequence[tuple[Any, Any]],
    channel: ChannelSettings,
    *,
    language: str,
    fallback: bool = False,
) -> Rendered:
    """What ``channel`` carries of a publication (fan-out and ``alerts render``).

    A warning: its family's public text, or on a channel with ``audience:
    responders`` the response procedure (alerts.responders), limited to the
    channel's ``options.departments`` when it names some. A bulletin: its
    rendering from the stored content (alerts.bulletins).
    """
    if pub.kind != "alert":
        return render_publication_bulletin(
            renderer, pub, family=bulletin_family(channel), language=language, fallback=fallback
        )
    family = family_for(channel)
    if channel.audience == "responders":
        from alerts.responders import render_instructions

        return render_instructions(
            renderer,
            pub,
            members,
            language=language,
            family=family,
            fallback=fallback,
            departments=_departments(channel),
        )
    return render_publication(
        renderer, pub, members, language=language, family=family, fallback=fallback
    )


# -- dispatch -----------------------------------------------------------------------


@dataclass
class DispatchSummary:
    sent: int = 0
    retry: int = 0
    dead: int = 0
    unknown: int = 0
    confirmed: int = 0  # abandoned sends the vendor confirmed: recorded sent, not resent
    calls: int = 0  # channel.send calls (one vendor call each for batching channels)
    deactivated: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """The tallies (every field but ``by_channel``), in field order."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "by_channel"
        }

    def add(self, other: DispatchSummary) -> None:
        for name, n in other.counts().items():
            setattr(self, name, getattr(self, name) + n)
        for k, v in other.by_channel.items():
            self.by_channel[k] = self.by_channel.get(k, 0) + v


def dispatch(
    store: Store,
    channels: Mapping[str, Channel],
    settings: Mapping[str, ChannelSettings],
    *,
    clock: Callable[[], datetime],
    worker: str | None = None,
    policy: DeliverySettings | None = None,
    max_claims: int | None = None,
    only: Iterable[str] | None = None,
) -> DispatchSummary:
    """Send every row due now, most severe first, until none is due; return the tally.

    First hands back rows that dead workers left in ``sending`` (lease expired,
    or the claimer's process is gone from this host), to be confirmed.
    ``only``: these channels' rows (a task per channel); default every channel.
    """
    policy = policy or DeliverySettings.model_validate({})
    worker = worker or worker_id()
    summary = DispatchSummary()
    store.recover_abandoned(
        now=clock(),
        lease_s=policy.lease_s,
        dead_workers=dead_workers(store.sending_claimers()),
        confirm_delay_s=policy.confirm_delay_s,
        deduplicating=[name for name, ch in channels.items() if ch.idempotent],
    )
    claims = 0
    while max_claims is None or claims < max_claims:
        progressed = False
        for group in store.due_groups(now=clock(), channels=only):
            channel = channels.get(group.channel)
            batch = _batch(channel, settings.get(group.channel))
            limit = batch if batch > 1 else policy.claim_size
            while max_claims is None or claims < max_claims:
                claim = store.claim_deliveries(
                    now=clock(),
                    worker=worker,
                    channel=group.channel,
                    message_id=group.message_id,
                    limit=limit,
                )
                if claim is None:
                    break
                claims += 1
                progressed = True
                done = _send_claim(
                    store, claim, channel, settings.get(group.channel), clock, policy
                )
                summary.add(done)
                if done.retry and not (done.sent or done.dead or done.unknown):
                    break  # deferred (rate limit) or failing: the next group's turn
        if not progressed:
            break
    return summary


def _send_claim(
    store: Store,
    claim: Claim,
    channel: Channel | None,
    settings: ChannelSettings | None,
    clock: Callable[[], datetime],
    policy: DeliverySettings,
) -> DispatchSummary:
    summary = DispatchSummary()
    first = claim.rows[0]
    stored = claim.messages[first.message_id]
    message = Message(
        first.alert_id,
        first.version,
        stored.subject,
        stored.body,
        first.language,
        identifier=first.key.split("/", 1)[0],
        batch_id=claim.token,
        html=stored.html,
        images=stored.image_bytes(),
    )
    max_attempts = settings.max_attempts if settings is not None else 1

    def record(outcomes: list[DeliveryOutcome], rows: Sequence[Delivery]) -> None:
        store.record_outcomes(outcomes, now=clock(), claim=claim.token)
        by_id = {d.id: d for d in rows}
        for o in outcomes:
            setattr(summary, o.status, getattr(summary, o.status) + 1)
            if o.status == "sent":
                summary.by_channel[first.channel] = summary.by_channel.get(first.channel, 0) + 1
            gone = getattr(channel, "gone_codes", ())
            d = by_id[o.delivery_id]
            if o.status == "dead" and o.error_code in gone and d.subscriber_id is not None:
                if store.deactivate_subscriber(
                    d.channel, d.recipient, f"{o.error_code}: {o.error_text}", now=clock()
                ):
                    summary.deactivated += 1

    if channel is None:
        record(
            [
                DeliveryOutcome(
                    d.id, "dead", None, "no-channel", f"channel {first.channel!r} is not configured"
                )
                for d in claim.rows
            ],
            claim.rows,
        )
        return summary

    to_send = _confirm_abandoned(claim, channel, settings, message, record, summary)
    confirming = isinstance(channel, Confirming) and not channel.idempotent
    batch = _batch(channel, settings)
    for start in range(0, len(to_send), batch):
        chunk = to_send[start : start + batch]
        wait = _rate_wait(store, channel, settings, clock())
        if wait > 0:
            later = clock() + timedelta(seconds=wait)
            rest = to_send[start:]
            record(
                [
                    DeliveryOutcome(
                        d.id,
                        "retry",
                        None,
                        "rate-limited",
                        f"{first.channel}: account rate limit, next try in {wait:.0f} s",
                        later,
                        refund_attempt=True,
                        confirm_token=d.confirm_token,
                    )
                    for d in rest
                ],
                rest,
            )
            break
        results = _send(channel, message, [Recipient(d.recipient, d.key) for d in chunk])
        summary.calls += 1
        now = clock()
        record(
            [
                _outcome(d, results.get(d.key), max_attempts, now, policy, claim.token, confirming)
                for d in chunk
            ],
            chunk,
        )
    return summary


def _batch(channel: Channel | None, settings: ChannelSettings | None) -> int:
    """Recipients per send: the channel's maximum, lowered by ``batch_size``."""
    most = max(int(getattr(channel, "max_batch", 1) or 1), 1)
    if settings is not None and settings.batch_size:
        return min(most, settings.batch_size)
    return most


def _confirm_abandoned(
    claim: Claim,
    channel: Channel,
    settings: ChannelSettings | None,
    message: Message,
    record: Callable[[list[DeliveryOutcome], Sequence[Delivery]], None],
    summary: DispatchSummary,
) -> list[Delivery]:
    """Settle rows whose last attempt's fate is unknown; return the rows to send now."""
    unsure = [d for d in claim.rows if d.confirm_token]
    if not unsure or channel.idempotent:
        return claim.rows  # the vendor (or the outbox) drops a repeat of the same key
    send = [d for d in claim.rows if not d.confirm_token]
    held: list[DeliveryOutcome] = []
    done: list[DeliveryOutcome] = []
    by_token: dict[str, list[Delivery]] = {}
    for d in unsure:
        by_token.setdefault(str(d.confirm_token), []).append(d)
    hold = settings is None or settings.on_unconfirmed == "hold"
    for token, rows in by_token.items():
        answers: Mapping[str, bool | None] = {}
        if isinstance(channel, Confirming):
            try:
                answers = channel.confirm(
                    dataclasses.replace(message, batch_id=token),
                    [Recipient(d.recipient, d.key) for d in rows],
                    since=min(d.created_at for d in rows),
                )
            except Exception:  # a confirmation that fails is "cannot tell"
                answers = {}
        for d in rows:
            answer = answers.get(d.key)
            if answer is True:
                done.append(DeliveryOutcome(d.id, "sent", f"confirmed:{token}"))
            elif answer is False or not hold:
                send.append(d)
            else:
                held.append(
                    DeliveryOutcome(
                        d.id,
                        "unknown",
                        None,
                        "unconfirmed",
                        "an earlier attempt may have been delivered and the channel cannot "
                        "confirm it; held for an operator (resend or leave)",
                    )
                )
    if done:
        record(done, unsure)
        summary.confirmed += len(done)
    if held:
        record(held, unsure)
    return sorted(send, key=lambda d: d.id)


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
    d: Delivery,
    result: SendResult | None,
    max_attempts: int,
    now: datetime,
    policy: DeliverySettings,
    token: str,
    confirming: bool,
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
            d.id,
            "retry",
            None,
            result.error_code,
            result.error_text,
            now + backoff(d.attempts, policy.backoff_s, policy.backoff_max_s),
            # a failed call may still have gone out (a timeout after the vendor took
            # it): a channel that can confirm checks before trying again
            confirm_token=token if confirming else None,
        )
    return DeliveryOutcome(d.id, "dead", None, result.error_code, result.error_text)
