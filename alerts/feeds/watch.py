"""Watching earthquake feeds for edges: new or revised events worth a cycle.

:func:`poll` is what the event trigger (``alerts_airflow.triggers``) calls every
few seconds. It fetches one feed with conditional GET, as its own feed
``watch:<source>`` (so its validators and failures are kept apart from the
minute cycle's), and compares the events in the newest stored body with what
the watcher saw before. It answers a :class:`WatchResult` only for an *edge*:
an event at or above the watch magnitude that is new, or one already tracked
whose solution changed (updated time, status, magnitude or epicentre, which
covers a revision below the threshold too). A standing condition ("there are
strong quakes in the feed") never fires twice.

The watcher keeps no memory in the process: a trigger is re-created after
every event. What it saw lives in the alert store:

* the ``feed_state`` cursor of ``watch:<source>`` holds the last body
  evaluated and the solution signature of each tracked event (by every id it
  has), so an unchanged feed costs one conditional GET and no parsing;
* each fired revision is claimed once in ``inbound_events`` (source
  ``watch:<source>``, key ``<event id>|<signature>``, an insert that does
  nothing when the key is there). That insert is the commit point: two
  pollers (two triggerers during a failover, or a trigger re-created while
  its predecessor finishes) may both see a revision as new, and only the one
  whose claim inserted it fires.

A revision claimed by a poller that then died, or whose trigger event never
became a DAG run, is caught by the minute cycle: :func:`fallback_payloads`
hands it the newest stored body of each source that no successful ingest has
marked (:func:`mark_ingested`), because the minute cycle's own conditional GET
sees nothing new in a body the watcher already stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from alerts.feeds import FeedFormatError, parser_for
from alerts.feeds.fetch import FetchError

if TYPE_CHECKING:
    import requests

    from alerts.criteria.earthquake import EarthquakeRules
    from alerts.pipeline import Runtime

__all__ = [
    "WatchResult",
    "changes",
    "fallback_payloads",
    "ingested_feed",
    "mark_ingested",
    "min_magnitude",
    "poll",
    "watch_feed",
]

log = logging.getLogger(__name__)


def watch_feed(source: str) -> str:
    """The feed name under which the watcher fetches ``source`` and keeps its cursor."""
    return f"watch:{source}"


def ingested_feed(source: str) -> str:
    """The feed name whose ``last_payload_id`` is the newest payload of ``source`` ingested."""
    return f"ingested:{source}"


@dataclass(frozen=True)
class WatchResult:
    """An edge: the stored body to ingest and the events that are new or changed in it."""

    source: str
    payload_id: int
    events: tuple[str, ...]

    def as_payload(self) -> dict[str, Any]:
        """JSON-ready, as the trigger event carries it to the DAG run."""
        return {
            "source": self.source,
            "payload_ids": [self.payload_id],
            "events": list(self.events),
        }


def min_magnitude(rules: EarthquakeRules) -> float:
    """The lowest magnitude any earthquake rule can grade (national response or intensity)."""
    lowest = min(rules.national_response.levels.values())
    if rules.intensity is not None:
        lowest = min(lowest, rules.intensity.min_magnitude)
    return float(lowest)


def _signature(row: Any) -> str:
    """What identifies one solution of an event: a change in any part is a revision."""

    def num(value: Any, digits: int) -> str:
        return "" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"

    updated = "" if pd.isna(row.updated) else str(int(row.updated.timestamp() * 1000))
    return "|".join(
        (
            updated,
            str(row.status),
            num(row.magnitude, 1),
            num(row.latitude, 2),
            num(row.longitude, 2),
        )
    )


def changes(
    frame: pd.DataFrame, seen: dict[str, str], *, minimum: float
) -> tuple[dict[str, str], dict[str, str]]:
    """Compare a parsed earthquake frame with the signatures seen before.

    An event is tracked when its magnitude reaches ``minimum`` (as graded: to
    0.1, half up) or when any of its ids was tracked before (so a revision
    below the threshold, or a retraction, still counts). Returns
    ``(new, tracked)``: the new or changed events (preferred id -> signature)
    and every tracked id with its signature, which becomes the next ``seen``.
    Events that left the feed drop out of ``seen``.
    """
    new: dict[str, str] = {}
    tracked: dict[str, str] = {}
    for row in frame.itertuples(index=False):
        ids = [str(a) for a in (row.aliases if isinstance(row.aliases, list) else [])]
        ids = ids or [str(row.event_id)]
        mag = row.magnitude
        strong = mag is not None and not pd.isna(mag) and float(mag) >= minimum - 0.05
        known = [i for i in ids if i in seen]
        if not strong and not known:
            continue
        sig = _signature(row)
        for i in ids:
            tracked[i] = sig
        if not any(seen[i] == sig for i in known):
            new[str(row.event_id)] = sig
    return new, tracked


def poll(
    rt: Runtime,
    source: str,
    *,
    minimum: float | None = None,
    session: requests.Session | None = None,
) -> WatchResult | None:
    """Fetch ``source`` once; a :class:`WatchResult` when it has new or changed events.

    ``minimum`` is the watch magnitude (default :func:`min_magnitude` of the
    rules). Fetch failures are recorded on the ``watch:<source>`` feed and
    raised (the caller logs them and polls again later). Safe to run in
    several processes at once: each revision fires in exactly one of them.
    """
    from alerts.pipeline import feed_url, fetch_feed

    feed = watch_feed(source)
    url = feed_url(rt.settings, source)
    state = rt.store.feed_state(feed)
    cursor = dict(state.cursor or {}) if state is not None else {}
    fetched = fetch_feed(rt, source, feed=feed, url=url, session=session)
    if fetched is not None:
        payload_id = fetched
    else:  # unchanged for us; the minute cycle may have stored a newer body meanwhile
        latest = rt.store.latest_payload(source, url)
        if latest is None:
            return None
        payload_id = latest.id
    if cursor.get("payload_id") == payload_id:
        return None  # evaluated already

    seen: dict[str, str] = dict(cursor.get("seen") or {})
    try:
        parsed = parser_for(source)(rt.store.payload(payload_id).body)
    except FeedFormatError as exc:  # the minute cycle quarantines it; do not re-parse it
        log.warning("watch %s: payload %s is unusable: %s", source, payload_id, exc)
        _save_cursor(rt, source, url, payload_id, seen)
        return None
    if minimum is None:
        minimum = min_magnitude(rt.rules.earthquake)
    new, tracked = changes(parsed.frame, seen, minimum=minimum)
    now = rt.clock()
    won = [
        event_id
        for event_id, sig in new.items()
        if rt.store.record_inbound(feed, f"{event_id}|{sig}"[:300], now=now)
    ]
    _save_cursor(rt, source, url, payload_id, tracked)
    if not won:
        return None
    return WatchResult(source, payload_id, tuple(won))


def _save_cursor(rt: Runtime, source: str, url: str, payload_id: int, seen: dict[str, str]) -> None:
    rt.store.record_fetch(
        watch_feed(source),
        source=source,
        url=url,
        now=rt.clock(),
        cursor={"payload_id": payload_id, "seen": seen},
    )


def fallback_payloads(
    rt: Runtime,
    *,
    fetch: Sequence[str] = (),
    watched: Sequence[str] = (),
    session: requests.Session | None = None,
) -> list[int]:
    """What the minute cycle ingests: its own fetches, and what the watcher left behind.

    Each source in ``fetch`` is fetched as today (feed ``<source>``): a new
    body is returned. A source that fails is logged and recorded in its feed
    state, and the others go on; :class:`FetchError` is raised only when every
    source failed, so one publisher's outage never holds up the other's
    alerts. Then, for every source in ``fetch`` or ``watched``, the newest
    stored body is added when no successful ingest marked it (the watcher
    stored it but its run never happened, or an earlier cycle failed). The
    store is idempotent, so a body that was ingested after all finds nothing new.
    """
    from alerts.pipeline import feed_url, fetch_feed

    ids: set[int] = set()
    failures: list[str] = []
    for source in fetch:
        try:
            pid = fetch_feed(rt, source, session=session)
        except FetchError as exc:
            log.error("fetch %s failed: %s", source, exc)
            failures.append(f"{source}: {exc}")
            continue
        if pid is not None:
            ids.add(pid)
    if fetch and len(failures) == len(fetch):
        raise FetchError("every source failed: " + "; ".join(failures))
    for source in dict.fromkeys([*fetch, *watched]):
        latest = rt.store.latest_payload(source, feed_url(rt.settings, source))
        if latest is not None and latest.id > _ingested_up_to(rt, source):
            ids.add(latest.id)
    return sorted(ids)


def _ingested_up_to(rt: Runtime, source: str) -> int:
    state = rt.store.feed_state(ingested_feed(source))
    return (state.last_payload_id or 0) if state is not None else 0


def mark_ingested(rt: Runtime, payload_ids: Iterable[int]) -> None:
    """Record that these payloads were ingested: the newest per source, never going back.

    Kept as the ``last_payload_id`` of the feed ``ingested:<source>`` (shown
    by ``alerts feeds`` with its ``last_change_at``).
    """
    newest: dict[str, tuple[int, str]] = {}
    for pid in payload_ids:
        payload = rt.store.payload(pid)
        if pid > newest.get(payload.source, (0, ""))[0]:
            newest[payload.source] = (pid, payload.url)
    for source, (pid, url) in newest.items():
        if pid > _ingested_up_to(rt, source):
            rt.store.record_fetch(
                ingested_feed(source), source=source, url=url, now=rt.clock(), payload_id=pid
            )
