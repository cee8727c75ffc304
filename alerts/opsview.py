"""The duty officer's overview: one JSON-ready dict of what is warned, sent and stuck.

:func:`overview` gathers, in a bounded number of queries (a few for the
page, plus at most three per active publication), the active alerts grouped
by the publication that carries them (the message people got), the national
banner, the map's levels, publications waiting for approval, feed health
and quarantine counts. :func:`region_alerts` lists the active alerts
covering one prefecture (the map's click-through).

Recipients are masked (phones keep their last four digits, e-mail addresses
and account ids keep a few characters), vendor errors are cut, and URLs lose
their query strings, so the page shows no personal data or credentials.
Every time is an ISO 8601 UTC string ending in ``Z``. No Airflow here.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from alerts.approval import plan
from alerts.config import Settings
from alerts.mapsvg import LEVEL_FILL, NATIONAL, levels_by_region, prefectures_of
from alerts.model import Action, Hazard, Level, utc_iso
from alerts.regions import Regions, load_regions
from alerts.render import HAZARD_EN
from alerts.responders import Procedures, procedure_for, procedure_json, procedures_or_packaged
from alerts.store import Store
from alerts.store.models import Alert, AlertVersion, Delivery, Publication

__all__ = [
    "DEAD_LETTER_LIMIT",
    "DELIVERY_STATES",
    "cap_url",
    "mask_recipient",
    "overview",
    "region_alerts",
]

DELIVERY_STATES = ("pending", "sending", "sent", "retry", "dead", "unknown")
DEAD_LETTER_LIMIT = 50  # dead and unknown rows listed per publication (newest first)
ERROR_LIMIT = 300  # characters of a vendor's or a feed's error shown
INTERNAL_FEED_PREFIXES = ("ingested:",)  # bookkeeping rows of feed_state, not feeds
WATCH_PREFIX = "watch:"

_LEVEL_EN = {1: "Blue", 2: "Yellow", 3: "Orange", 4: "Red"}
_APPROVAL_ZH = {"none": "无需审批", "pending": "待审批", "approved": "已批准", "rejected": "已驳回"}


def cap_url(identifier: str) -> str:
    """The public CAP document of a publication (served by the Airflow plugin)."""
    return f"/alerts-public/cap/{identifier}.xml"


# -- the overview ---------------------------------------------------------------------


def overview(
    store: Store, settings: Settings, *, now: datetime, regions: Regions | None = None
) -> dict[str, Any]:
    """Everything the duty officer's page shows, as one JSON-ready dict.

    Keys: ``generated_at``, ``national`` (the banner), ``alerts`` (active
    alerts grouped by publication, most severe first), ``map_levels``
    (:func:`alerts.mapsvg.levels_by_region`), ``approvals``, ``bulletins``
    (the daily outlooks and campaign sends of the last two days, with their
    review and deliveries), ``feeds``, ``quarantine`` (by source) and
    ``counts``. Each alert entry carries the response procedure for its
    hazard and level (``procedure``:
    :func:`alerts.responders.procedure_json`, or None), from ``responders_file``.
    """
    if now.tzinfo is None:
        raise ValueError("overview: pass an aware UTC time as now")
    table = regions if regions is not None else load_regions(_regions_file(settings))
    rows = _active_rows(store)
    groups = _group(rows)
    message_pubs = _message_publications(store, groups)
    procedures = procedures_or_packaged(settings.responders_file)

    alerts = []
    dead = unknown = 0
    for key, members in groups.items():
        entry = _publication_entry(store, members, message_pubs.get(key), procedures)
        dead += entry["deliveries"]["by_status"]["dead"]
        unknown += entry["deliveries"]["by_status"]["unknown"]
        alerts.append(entry)
    alerts.sort(key=lambda a: (-a["level"], _neg_time(a["sent"]), a["identifier"]))

    pending = store.pending_approvals()
    by_pub: dict[int, list[_Row]] = defaultdict(list)
    for row in rows:
        if row.publication is not None:
            by_pub[row.publication.id].append(row)
    approvals = [_approval_entry(settings, p, by_pub.get(p.id, []), now) for p in pending]

    feeds, quarantine = _feeds(store, settings, now)
    return {
        "generated_at": _iso(now),
        "national": _national(rows, procedures),
        "alerts": alerts,
        "bulletins": _bulletins(store, now),
        "map_levels": levels_by_region(
            [_Cover(r.alert.region_code, r.alert.level) for r in rows], regions=table
        ),
        "approvals": approvals,
        "feeds": feeds,
        "quarantine": quarantine,
        "counts": {
            "active_alerts": len(rows),
            "publications": len(alerts),
            "pending_approvals": len(approvals),
            "dead_letters": dead,
            "unknown": unknown,
            "stale_feeds": sum(1 for f in feeds if f["stale"]),
            "failing_feeds": sum(1 for f in feeds if f["consecutive_failures"]),
            "quarantined_24h": sum(q["last_24h"] for q in quarantine.values()),
        },
    }


def region_alerts(
    store: Store,
    adcode: str,
    *,
    regions: Regions | None = None,
    procedures: Procedures | None = None,
) -> list[dict[str, Any]]:
    """The active alerts covering one prefecture: its own, its province's and national ones.

    Also those of its counties (a county code resolves to its prefecture).
    Most severe first, then newest. Each with its response procedure
    (``procedures``: default the packaged ones).
    """
    table = regions if regions is not None else load_regions()
    procedures = procedures if procedures is not None else procedures_or_packaged()
    out = []
    for row in _active_rows(store):
        code = row.alert.region_code
        if code == NATIONAL or code == adcode or adcode in prefectures_of(code, table):
            out.append(_alert_entry(row, procedures))
    out.sort(key=lambda a: (-a["level"], _neg_time(a["sent"]), a["alert_id"]))
    return out


# -- active alerts and their publications ----------------------------------------------


@dataclass(frozen=True)
class _Row:
    alert: Alert
    version: AlertVersion  # the alert's current version
    publication: Publication | None  # the publication carrying it


@dataclass(frozen=True)
class _Cover:
    region_code: str
    level: int


def _active_rows(store: Store) -> list[_Row]:
    """Every active alert with its current version and that version's publication."""
    return [_Row(a, v, p) for a, v, p in store.active_with_publications()]


def _group(rows: Sequence[_Row]) -> dict[str, list[_Row]]:
    """Rows by current publication, the national alert first, then by alert id."""
    groups: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        key = f"p{row.publication.id}" if row.publication else f"a{row.alert.id}"
        groups[key].append(row)
    for members in groups.values():
        members.sort(key=lambda r: (r.alert.region_code != NATIONAL, r.alert.id))
    return dict(groups)


def _lead(members: Sequence[_Row]) -> _Row:
    pub = members[0].publication
    if pub is not None:
        for row in members:
            if row.alert.id == pub.lead_alert_id:
                return row
    return members[0]


def _message_publications(
    store: Store, groups: dict[str, list[_Row]]
) -> dict[str, Publication | None]:
    """The publication whose message people got, per group.

    The current one when it notifies; after a quiet one (an extension, a
    silent expiry) the lead alert's latest notifying publication, found in
    one query for every group.
    """
    out: dict[str, Publication | None] = {}
    quiet: dict[str, str] = {}
    for key, members in groups.items():
        pub = members[0].publication
        if pub is not None and pub.notify:
            out[key] = pub
        else:
            quiet[key] = _lead(members).alert.id
    if quiet:
        latest = store.latest_notifying_publications(quiet.values())
        found = store.publications_by_id(latest.values())
        for key, alert_id in quiet.items():
            pub_id = latest.get(alert_id)
            out[key] = found.get(pub_id) if pub_id is not None else None
    return out


def _publication_entry(
    store: Store, members: Sequence[_Row], message: Publication | None, procedures: Procedures
) -> dict[str, Any]:
    lead = _lead(members)
    pub = lead.publication
    identifier = pub.identifier if pub else lead.version.identifier
    level = pub.level if pub else lead.alert.level
    entry: dict[str, Any] = {
        "identifier": identifier,
        "cap_url": cap_url(identifier) if pub else None,
        "publication_id": pub.id if pub else None,
        "subject": lead.alert.subject,
        "lead_alert_id": lead.alert.id,
        **_hazard(lead.version.hazard),
        **_level(level),
        **_action(lead.version.action),
        "msg_type": lead.version.msg_type,
        "state": lead.alert.state,
        "status": pub.status if pub else lead.alert.status,
        "national": any(r.alert.region_code == NATIONAL for r in members),
        "notify": bool(pub.notify) if pub else bool(lead.version.notify),
        "regions": [_region(r) for r in members],
        "versions": {
            "current": lead.alert.current_version,
            "count": lead.alert.current_version,  # versions are numbered 1..N
        },
        "approval": _approval_state(pub),
        "sent": _iso(pub.sent if pub else lead.version.sent),
        "onset": _iso(pub.onset if pub else lead.version.onset),
        "expires": _iso(
            max((r.alert.expires_at for r in members if r.alert.expires_at), default=None)
        ),
        "reason": lead.version.reason,
        "deliveries": _deliveries(store, message),
        "procedure": _procedure(procedures, lead.version.hazard, level),
    }
    return entry


def _region(row: _Row) -> dict[str, Any]:
    a = row.alert
    return {
        "code": a.region_code,
        "name": a.region_name,
        "alert_id": a.id,
        "level": a.level,
        "version": a.current_version,
        "expires": _iso(a.expires_at),
        "pending_level": a.pending_level,
        "pending_since": _iso(a.pending_since),
        "clear_since": _iso(a.clear_since),
    }


def _alert_entry(row: _Row, procedures: Procedures) -> dict[str, Any]:
    a, v, pub = row.alert, row.version, row.publication
    return {
        "alert_id": a.id,
        "region_code": a.region_code,
        "region_name": a.region_name,
        "national": a.region_code == NATIONAL,
        "subject": a.subject,
        **_hazard(a.hazard),
        **_level(a.level),
        **_action(v.action),
        "version": a.current_version,
        "identifier": pub.identifier if pub else v.identifier,
        "cap_url": cap_url(pub.identifier) if pub else None,
        "approval": _approval_state(pub),
        "status": a.status,
        "sent": _iso(v.sent),
        "expires": _iso(a.expires_at),
        "reason": v.reason,
        "procedure": _procedure(procedures, a.hazard, a.level),
    }


def _procedure(procedures: Procedures, hazard: str, level: int) -> dict[str, Any] | None:
    """What the departments do for this hazard and level (the responders file), or None."""
    try:
        found = procedure_for(procedures, hazard, level)
    except ValueError:  # a hazard or level this build does not know
        return None
    return procedure_json(found) if found is not None else None


def _approval_state(pub: Publication | None) -> dict[str, Any]:
    state = pub.approval if pub else "none"
    return {
        "state": state,
        "state_zh": _APPROVAL_ZH.get(state, state),
        "actor": pub.approval_actor if pub else None,
        "at": _iso(pub.approval_at) if pub else None,
        "reason": pub.approval_reason if pub else None,
    }


def _national(rows: Sequence[_Row], procedures: Procedures) -> dict[str, Any]:
    national = sorted(
        (r for r in rows if r.alert.region_code == NATIONAL),
        key=lambda r: (-r.alert.level, _neg_time(_iso(r.version.sent)), r.alert.id),
    )
    if not national:
        return {"active": False, "level": None, "identifier": None, "alerts": []}
    items = [_alert_entry(r, procedures) for r in national]
    top = items[0]
    return {
        "active": True,
        **{k: top[k] for k in ("level", "colour", "level_zh", "level_en", "label", "fill")},
        **{k: top[k] for k in ("hazard", "hazard_zh", "hazard_en")},
        "identifier": top["identifier"],
        "cap_url": top["cap_url"],
        "alerts": items,
    }


# -- deliveries -----------------------------------------------------------------------------


def _deliveries(store: Store, pub: Publication | None) -> dict[str, Any]:
    """Counts by channel and state, and the dead and unknown rows, of one publication."""
    by_status = dict.fromkeys(DELIVERY_STATES, 0)
    out: dict[str, Any] = {
        "identifier": pub.identifier if pub else None,
        "fanned_out_at": _iso(pub.fanned_out_at) if pub else None,
        "by_channel": {},
        "by_status": by_status,
        "total": 0,
        "dead_letters": [],
        "dead_letters_total": 0,
        "truncated": False,
    }
    if pub is None or pub.fanned_out_at is None:  # not fanned out: no ledger rows yet
        return out
    counts = store.delivery_counts(pub.id)
    by_channel: dict[str, dict[str, int]] = {}
    for (channel, status), n in sorted(counts.items()):
        by_channel.setdefault(channel, dict.fromkeys(DELIVERY_STATES, 0))
        by_channel[channel][status] = by_channel[channel].get(status, 0) + n
        by_status[status] = by_status.get(status, 0) + n
    failed = by_status["dead"] + by_status["unknown"]
    out.update(by_channel=by_channel, total=sum(counts.values()), dead_letters_total=failed)
    if failed:
        rows = store.deliveries(
            ("dead", "unknown"), publication_id=pub.id, limit=DEAD_LETTER_LIMIT, newest_first=True
        )
        resent = _resent(store, pub.id, rows)
        out["dead_letters"] = [_dead_letter(d, resent.get(d.id)) for d in rows]
        out["truncated"] = failed > len(rows)
    return out


def _resent(store: Store, publication_id: int, rows: Sequence[Delivery]) -> dict[int, str]:
    """For each failed row resent since, the state of its newest resend (one query)."""
    newest: dict[str, tuple[int, str]] = {}
    for row_id, key, status in store.resend_rows(publication_id, (d.recipient for d in rows)):
        base = key.partition("#r")[0]
        if row_id > newest.get(base, (0, ""))[0]:
            newest[base] = (row_id, status)
    out = {}
    for d in rows:
        later = newest.get(d.key.partition("#r")[0])
        if later is not None and later[0] > d.id:
            out[d.id] = later[1]
    return out


def _dead_letter(d: Delivery, resent: str | None) -> dict[str, Any]:
    masked = mask_recipient(d.recipient)
    error = d.error_text or ""
    if d.recipient and len(d.recipient) >= 4:
        error = error.replace(d.recipient, masked)
    return {
        "id": d.id,
        "channel": d.channel,
        "recipient": masked,
        "status": d.status,
        "error_code": d.error_code,
        "error_text": _cut(_scrub_urls(error)) if d.error_text else None,
        "attempts": d.attempts,
        "updated_at": _iso(d.updated_at),
        "origin": d.origin,
        "resent": resent,  # the state of a later resend to the same recipient, if any
    }


_EMAIL = re.compile(r"^([^@\s]+)@([^@\s]+)$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")


def mask_recipient(recipient: str) -> str:
    """A recipient as the page may show it.

    Phone numbers keep their last four digits (``+*********8000``); e-mail
    addresses their first character and domain (``z***@example.com``); URLs
    (webhooks carry tokens) their scheme and host; other ids (WeChat openids,
    user and chat ids) their first two and last four characters, or only
    the first when short.
    """
    text = (recipient or "").strip()
    if not text:
        return ""
    if m := _EMAIL.match(text):
        return f"{m.group(1)[:1]}***@{m.group(2)}"
    if _PHONE.match(text) and sum(c.isdigit() for c in text) >= 7:
        digits = [c for c in text if c.isdigit()]
        return (
            ("+" if text.startswith("+") else "") + "*" * (len(digits) - 4) + "".join(digits[-4:])
        )
    if "://" in text:
        parts = urlsplit(text)
        return f"{parts.scheme}://{parts.hostname or ''}/***"
    if len(text) >= 10:
        return f"{text[:2]}***{text[-4:]}"
    return f"{text[:1]}***"


# -- approvals ---------------------------------------------------------------------------


# The DAG that asks the duty officer about each kind of publication, and a bulletin's name.
APPROVAL_DAGS = {"alert": "publish_alerts", "outlook": "daily_outlook", "campaign": "campaigns"}
_BULLETIN_NAMES = {
    "outlook": ("每日风险展望", "Daily risk outlook"),
    "campaign": ("专项宣传", "Publicity campaign"),
}
_NO_LEVEL = {
    "level": 0,
    "colour": "none",
    "level_zh": "无预警等级",
    "level_en": "no warning level",
    "grade": "",
    "label": "无预警等级 no warning level",
    "fill": "#e5e7eb",
}


def _bulletins(store: Store, now: datetime, days: float = 2.0) -> list[dict[str, Any]]:
    """The recent bulletins, newest first: did today's outlook and campaigns go out?"""
    since = now - timedelta(days=days)
    recent = [
        pub
        for kind in _BULLETIN_NAMES
        for pub in store.publications(kind=kind, limit=20)
        if pub.sent >= since
    ]
    recent.sort(key=lambda p: (p.sent, p.id), reverse=True)
    out = []
    for pub in recent[:20]:
        zh, en = _BULLETIN_NAMES[pub.kind]
        out.append(
            {
                "identifier": pub.identifier,
                "kind": pub.kind,
                "kind_zh": zh,
                "kind_en": en,
                "dag": APPROVAL_DAGS[pub.kind],
                "subject": pub.subject,
                "status": pub.status,
                "sent": _iso(pub.sent),
                **(_level(pub.level) if pub.level else _NO_LEVEL),
                "approval": _approval_state(pub),
                "fanned_out": pub.fanned_out_at is not None,
                "deliveries": _deliveries(store, pub),
            }
        )
    return out


def _approval_entry(
    settings: Settings, pub: Publication, members: Sequence[_Row], now: datetime
) -> dict[str, Any]:
    p = plan(settings.approval, pub.level, pub.kind)
    then = p.text
    ordered = sorted(members, key=lambda r: (r.alert.region_code != NATIONAL, r.alert.id))
    if pub.kind == "alert":
        what = _hazard(pub.hazard)
    else:
        zh, en = _BULLETIN_NAMES.get(pub.kind, (pub.kind, pub.kind))
        what = {"hazard": pub.kind, "hazard_zh": zh, "hazard_en": en}
    return {
        "identifier": pub.identifier,
        "kind": pub.kind,
        "dag": APPROVAL_DAGS.get(pub.kind, "publish_alerts"),
        "cap_url": cap_url(pub.identifier) if pub.kind == "alert" else None,
        "publication_id": pub.id,
        "subject": pub.subject,
        **what,
        **(_level(pub.level) if pub.level else _NO_LEVEL),
        **_action(pub.action),
        "status": pub.status,
        "sent": _iso(pub.sent),
        "waiting_min": round(max((now - pub.sent).total_seconds(), 0.0) / 60, 1),
        "timeout_min": p.timeout_min,
        "on_timeout": p.on_timeout,
        "on_timeout_text": then,
        "asked": pub.approval_run is not None,  # an orchestration run has asked the officer
        "lead_alert_id": pub.lead_alert_id,
        "regions": [{"code": r.alert.region_code, "name": r.alert.region_name} for r in ordered],
    }


# -- feeds and quarantine ----------------------------------------------------------------


def _feeds(
    store: Store, settings: Settings, now: datetime
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    from alerts.orchestration import stale_states

    hk = settings.housekeeping
    stale = {
        s["feed"]: s
        for s in stale_states(
            store.feed_states(), now=now, factor=hk.stale_factor, intervals=hk.intervals_s
        )
    }
    quarantine = store.quarantine_counts(now - timedelta(hours=24))
    feeds = []
    for st in store.feed_states():
        if st.feed.startswith(INTERNAL_FEED_PREFIXES):
            continue
        q = quarantine.get(st.source, {"last_24h": 0, "total": 0})
        judged = stale.get(st.feed)
        feeds.append(
            {
                "feed": st.feed,
                "source": st.source,
                "kind": "watch" if st.feed.startswith(WATCH_PREFIX) else "feed",
                "url": _strip_url(st.url),
                "last_attempt_at": _iso(st.last_attempt_at),
                "last_success_at": _iso(st.last_success_at),
                "last_change_at": _iso(st.last_change_at),
                "last_failure_at": _iso(st.last_failure_at),
                "last_error": _cut(_scrub_urls(st.last_error)) if st.last_error else None,
                "consecutive_failures": st.consecutive_failures or 0,
                "stale": judged is not None,
                "age_s": judged["age_s"] if judged else _age(st.last_success_at, now),
                "limit_s": judged["limit_s"] if judged else None,
                "quarantined": q,
            }
        )
    return feeds, quarantine


# -- small helpers ---------------------------------------------------------------------------


def _regions_file(settings: Settings) -> str | None:
    return str(settings.regions_file) if settings.regions_file else None


def _iso(when: datetime | None) -> str | None:
    return utc_iso(when, "seconds")


def _neg_time(iso: str | None) -> float:
    """Sort key: newest first (None last)."""
    if iso is None:
        return float("inf")
    return -datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _age(when: datetime | None, now: datetime) -> int | None:
    return None if when is None else round((now - when).total_seconds())


def _cut(text: str, limit: int = ERROR_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_URL_QUERY = re.compile(r"(https?://[^\s?#\"'<>]+)\?[^\s\"'<>]*")


def _scrub_urls(text: str) -> str:
    """Drop the query strings of URLs in a message (API keys, tokens)."""
    return _URL_QUERY.sub(r"\1?…", text)


def _strip_url(url: str | None) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _hazard(value: str) -> dict[str, str]:
    try:
        h = Hazard(value)
    except ValueError:
        return {"hazard": value, "hazard_zh": value, "hazard_en": value}
    return {"hazard": value, "hazard_zh": h.zh, "hazard_en": HAZARD_EN[h]}


def _level(value: int) -> dict[str, Any]:
    lv = Level(int(value))
    return {
        "level": int(lv),
        "colour": lv.colour,
        "level_zh": lv.zh,
        "level_en": _LEVEL_EN[int(lv)],
        "grade": lv.roman,
        "label": f"{lv.zh} {_LEVEL_EN[int(lv)]}",
        "fill": LEVEL_FILL[int(lv)],
    }


def _action(value: str) -> dict[str, str]:
    try:
        return {"action": value, "action_zh": Action(value).zh}
    except ValueError:
        return {"action": value, "action_zh": value}
