"""What the production DAGs' tasks call: one function per task, no Airflow here.

The DAG files (``dags/``) stay thin: each task opens a runtime and calls one
of these with plain, JSON-friendly arguments and results (XCom carries them).
Every function is idempotent on rerun: the store decides what is new.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from alerts.approval import plan
from alerts.bulletins import make_campaigns, make_outlooks, render_publication_bulletin
from alerts.notices import NoticeResult, notify_operators
from alerts.pipeline import (
    Runtime,
    dispatch_due,
    fan_out_new,
    fetch_cap_feed,
    fetch_feed,
    ingest,
    ingest_payloads,
    publish,
    weather_batches,
)
from alerts.render import render_publication
from alerts.store.models import FeedState

__all__ = [
    "PUBLISH",
    "REJECT",
    "apply_approvals",
    "option",
    "approval_requests",
    "campaign_bulletins",
    "channels_due",
    "dispatch_channel",
    "expire_alerts",
    "fan_out_approved",
    "fetch_official",
    "official_sources",
    "outlook_bulletins",
    "resend",
    "stale_feeds",
    "stale_states",
    "weather_batch_ids",
]

log = logging.getLogger(__name__)

# The duty officer's options (Chinese first); the first publishes.
PUBLISH = "发布 Publish"
REJECT = "驳回 Reject"


# -- feeds ------------------------------------------------------------------------


def weather_batch_ids(rt: Runtime) -> list[int]:
    return [n for n, _, _ in weather_batches(rt)]


def official_sources(rt: Runtime) -> list[str]:
    """Every official-warning source: each configured CAP feed, then GDACS."""
    return [f"cap:{f.name}" for f in rt.settings.feeds.cap_feeds] + ["gdacs"]


def fetch_official(rt: Runtime, source: str) -> list[int]:
    """Fetch one official source (``cap:NAME`` or ``gdacs``); the new payloads' ids."""
    if source == "gdacs":
        pid = fetch_feed(rt, "gdacs")
        return [] if pid is None else [pid]
    name = source.removeprefix("cap:")
    for feed in rt.settings.feeds.cap_feeds:
        if feed.name == name:
            return fetch_cap_feed(rt, feed)
    raise ValueError(f"no official source {source!r} (configured: {official_sources(rt)})")


def ingest_new(rt: Runtime, payload_ids: list[int], *, feeds: tuple[str, ...]) -> dict[str, Any]:
    """Ingest the fetched payloads and any stored one of ``feeds`` no ingest has marked yet.

    A fetch task that failed after storing a body (the sibling request of
    its batch failed) returns nothing; its body would otherwise never be
    graded, since the next fetch sees it unchanged. ``feeds`` are feed-name
    prefixes (``open-meteo:``, ``cap:``, ``gdacs``); each feed's newest
    ingested payload is remembered as the feed ``ingested:<feed>``.
    """
    states = [
        st
        for st in rt.store.feed_states()
        if st.last_payload_id and any(st.feed == f or st.feed.startswith(f) for f in feeds)
    ]
    marks = {st.feed: rt.store.feed_state(f"ingested:{st.feed}") for st in states}
    left = {
        st.last_payload_id
        for st in states
        if st.last_payload_id
        and (marks[st.feed] is None or (marks[st.feed].last_payload_id or 0) < st.last_payload_id)  # type: ignore[union-attr]
    }
    ids = sorted({*payload_ids, *left})
    summary = ingest_payloads(rt, ids)
    for st in states:
        if st.last_payload_id in ids:
            rt.store.record_fetch(
                f"ingested:{st.feed}",
                source=st.source,
                url=st.url,
                now=rt.clock(),
                payload_id=st.last_payload_id,
            )
    return {**asdict(summary), "payload_ids": ids}


# -- approval ------------------------------------------------------------------------


def approval_requests(
    rt: Runtime, run: str, *, ui_url: str = "", kinds: tuple[str, ...] = ("alert",)
) -> list[dict[str, Any]]:
    """One human-in-the-loop request per publication of ``kinds`` waiting for a duty officer.

    Each dict holds the publication's ``identifier`` and the request's
    ``subject``, ``body`` (the Chinese message as it would go out, the plan on
    timeout), ``defaults`` (the option a silent timeout takes, or None: wait)
    and ``timeout_s``. A publication is asked about by one run only.
    Warnings are asked by ``publish_alerts``; bulletins (``outlook``,
    ``campaign``) by the DAG that made them, published as they are on timeout.
    """
    out = []
    for pub in rt.store.request_approvals(run, kinds):
        p = plan(rt.settings.approval, pub.level, pub.kind)
        if pub.kind == "alert":
            members = rt.store.publication_members(pub.id)
            text = render_publication(rt.renderer, pub, members, family="text", fallback=True)
            what = "待审批预警 Warning awaiting approval"
        else:
            text = render_publication_bulletin(
                rt.renderer, pub, family="text", language="zh-CN", fallback=True
            )
            what = "待审核公众信息 Bulletin awaiting review"
        then = p.text
        body = (
            f"**{what}** `{pub.identifier}`\n\n"
            f"{then}。可在 guidance 中改写防御指南 / edit the advice in *guidance*.\n\n"
            f"```\n{text.body.strip()}\n```" + (f"\n\n{ui_url}" if ui_url else "")
        )
        defaults = None
        if p.timeout_min is not None:
            defaults = [option(PUBLISH if p.on_timeout == "publish" else REJECT, pub.identifier)]
        out.append(
            {
                "identifier": pub.identifier,
                "kind": pub.kind,
                "subject": text.subject[:200],
                "body": body,
                "options": [option(PUBLISH, pub.identifier), option(REJECT, pub.identifier)],
                "defaults": defaults,
                "timeout_s": p.timeout_min * 60 if p.timeout_min is not None else None,
            }
        )
    return out


def notify_approvals(rt: Runtime, requests: list[dict[str, Any]], *, ui_url: str) -> NoticeResult:
    """Tell the duty officer that publications wait (internal channels)."""
    lines = [f"- {r['subject']} ({r['identifier']})" for r in requests]
    if all(r.get("kind", "alert") == "alert" for r in requests):
        what = "条预警待审批 / awaiting approval"
    else:
        what = "条待审批（含公众信息）/ awaiting review"
    return notify_operators(
        rt,
        f"{len(requests)} {what}",
        "\n".join(lines) + (f"\n{ui_url}" if ui_url else ""),
        kind="approval",
    )


def option(choice: str, identifier: str) -> str:
    """A duty officer's option naming its publication: ``发布 Publish · <identifier>``.

    Each human-in-the-loop request's options carry the identifier, so an
    answer is matched to its publication by what was chosen, never by
    position (a cleared and re-expanded task can leave stale answers behind).
    """
    return f"{choice} · {identifier}"


def apply_approvals(
    rt: Runtime, run: str, requests: list[dict[str, Any]], results: list[dict[str, Any] | None]
) -> dict[str, str]:
    """Record each answer: approved (with the officer's wording) or rejected; audited.

    ``results`` are the human-in-the-loop tasks' results in any order
    (``chosen_options``, ``params_input``, ``responded_by_user``; a silent
    timeout has no user); each names its publication in its chosen option
    (:func:`option`). A request without an answer stays pending, and another
    run may ask again; answers for anything not asked in ``requests`` (stale
    ones from an earlier try) are ignored.
    """
    asked = {r["identifier"] for r in requests}
    answers: dict[str, dict[str, Any]] = {}
    for res in results:
        chosen = (res or {}).get("chosen_options") or []
        if not chosen:
            continue
        choice, _, identifier = str(chosen[0]).partition(" · ")
        if identifier in asked and choice in (PUBLISH, REJECT):
            answers[identifier] = {**(res or {}), "choice": choice}
    by_id = {p.identifier: p for p in rt.store.pending_approvals()}
    outcome: dict[str, str] = {}
    for identifier in sorted(asked):
        pub = by_id.get(identifier)
        res = answers.get(identifier)
        if pub is None:  # decided meanwhile (operator page, CLI): nothing to do
            outcome[identifier] = "decided elsewhere"
            continue
        if res is None:
            outcome[identifier] = "no answer"
            continue
        user = res.get("responded_by_user") or {}
        name = user.get("name") if isinstance(user, dict) else None
        approve = res["choice"] == PUBLISH
        params = res.get("params_input") or {}
        rt.store.decide_approval(
            pub.id,
            approve=approve,
            actor=f"duty:{name}" if name else "timeout-default",
            reason=str(params.get("reason") or ("" if name else "no answer before the timeout")),
            now=rt.clock(),
            guidance=str(params.get("guidance") or "") or None,
        )
        outcome[identifier] = "approved" if approve else "rejected"
    rt.store.release_approval_requests(run)
    return outcome


# -- bulletins ------------------------------------------------------------------------


def outlook_bulletins(rt: Runtime) -> list[dict[str, Any]]:
    """Today's outlook bulletin per configured scope, stored once (``daily_outlook``)."""
    return make_outlooks(rt)


def campaign_bulletins(rt: Runtime) -> list[dict[str, Any]]:
    """A bulletin per campaign send due in the last day, stored once (``campaigns``)."""
    return make_campaigns(rt)


# -- delivery -------------------------------------------------------------------------


def fan_out_approved(rt: Runtime) -> int:
    """Fan out every publication that may go (not waiting for a duty officer)."""
    return fan_out_new(rt)


def channels_due(rt: Runtime) -> list[str]:
    """Channels with rows due now (one mapped dispatch task each)."""
    return sorted({g.channel for g in rt.store.due_groups(now=rt.clock())})


def dispatch_channel(rt: Runtime, channel: str) -> dict[str, Any]:
    """Dispatch one channel's due rows."""
    done = dispatch_due(rt, only=[channel])
    return {"channel": channel, **done.counts()}


def resend(
    rt: Runtime,
    identifier: str,
    *,
    mode: str,
    actor: str,
    reason: str,
    channel: str | None = None,
    recipient: str | None = None,
) -> dict[str, Any]:
    """Audited resend of a publication (all / failed / one), then dispatch."""
    pub = rt.store.publication(identifier)
    if pub is None:
        raise ValueError(f"no publication {identifier!r}")
    created = rt.store.resend(
        pub.id,
        mode=mode,
        channel=channel or None,
        recipient=recipient or None,
        actor=actor,
        reason=reason,
        now=rt.clock(),
    )
    sent = publish(rt)
    return {"identifier": identifier, "mode": mode, "deliveries": created, **asdict(sent)}


# -- housekeeping ---------------------------------------------------------------------


def expire_alerts(rt: Runtime) -> dict[str, Any]:
    """A cycle with no input at the clock's time: alerts whose validity ended expire."""
    return asdict(ingest(rt, [], now=rt.clock()))


def stale_feeds(rt: Runtime, *, factor: float, intervals: dict[str, float]) -> list[dict[str, Any]]:
    """The stale feeds of the store at the clock's time (see :func:`stale_states`)."""
    return stale_states(rt.store.feed_states(), now=rt.clock(), factor=factor, intervals=intervals)


def stale_states(
    states: Iterable[FeedState], *, now: datetime, factor: float, intervals: dict[str, float]
) -> list[dict[str, Any]]:
    """Feeds without a success within ``factor`` x their interval (by feed name prefix).

    ``intervals`` maps a feed name or prefix (``usgs``, ``open-meteo``,
    ``cap:``) to its polling interval in seconds; a feed matching none is not
    judged. A feed never successful counts from its first attempt.
    """
    out = []
    for state in states:
        interval = _interval(state.feed, intervals)
        if interval is None:
            continue
        since = state.last_success_at or state.last_attempt_at
        if since is None:
            continue
        age = (now - since).total_seconds()
        if age > factor * interval:
            out.append(
                {
                    "feed": state.feed,
                    "last_success_at": state.last_success_at.isoformat()
                    if state.last_success_at
                    else None,
                    "age_s": round(age),
                    "limit_s": round(factor * interval),
                    "consecutive_failures": state.consecutive_failures,
                    "last_error": state.last_error,
                }
            )
    return out


def _interval(feed: str, intervals: dict[str, float]) -> float | None:
    best = None
    for prefix, seconds in intervals.items():
        if feed == prefix or feed.startswith(prefix.rstrip(":") + ":"):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, seconds)
    return best[1] if best else None


def notify_stale(rt: Runtime, stale: list[dict[str, Any]]) -> NoticeResult | None:
    if not stale:
        return None
    lines = [
        f"- {s['feed']}: 最近成功 last success {s['last_success_at'] or '从未 never'}"
        f"（{s['age_s'] // 60} 分钟前 min ago）{s['last_error'] or ''}"
        for s in stale
    ]
    return notify_operators(
        rt, f"{len(stale)} 个数据源停更 / stale feeds", "\n".join(lines), kind="stale"
    )


def retention(rt: Runtime, *, days: int) -> dict[str, int]:
    """Delete what is older than ``days`` and no longer needed (see Store.apply_retention)."""
    return rt.store.apply_retention(before=rt.clock() - timedelta(days=days))
