"""The event trigger that makes ``seismic_alerts`` event-driven.

:class:`FeedWatchTrigger` runs in the triggerer, watched by an ``AssetWatcher``
on the seismic feeds asset (``dags/seismic_alerts.py``). Every ``interval``
seconds it polls each source through :func:`alerts.feeds.watch.poll` (in a
worker thread: the poll is synchronous HTTP and SQL) and yields one
``TriggerEvent`` per source with new or changed events::

    {"source": "usgs", "payload_ids": [123], "events": ["us6000pi9w"]}

which reaches the DAG run as ``triggering_asset_events[asset][i].extra["payload"]``.

The trigger keeps no state of its own: Airflow re-creates it from
:meth:`FeedWatchTrigger.serialize` (after an event, a restart, a move to
another triggerer), and what was seen lives in the alert store, so it fires
on edges only. A failing poll is logged and retried at the next interval; the
loop never ends by itself, so one bad answer cannot stop the watch.

Nothing from :mod:`alerts` is imported at module level: the DAG file imports
this module while it is parsed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

if TYPE_CHECKING:
    import requests

    from alerts.pipeline import Runtime

__all__ = ["FeedWatchTrigger", "triggered_payload_ids"]

DEFAULT_SOURCES = ("usgs", "cenc")
MIN_INTERVAL_S = 5.0


class FeedWatchTrigger(BaseEventTrigger):
    """Poll earthquake feeds and fire on new or changed events.

    :param sources: feed sources to watch (``usgs``, ``cenc``); URLs come from
        the alert settings (``ALERTS_FEEDS__USGS_URL`` ...) of the triggerer.
    :param interval: seconds between rounds (at least 5).
    :param min_magnitude: events below it do not fire; default the lowest
        magnitude any earthquake rule grades (``alerts.feeds.watch.min_magnitude``).
    """

    def __init__(
        self,
        sources: Sequence[str] = DEFAULT_SOURCES,
        interval: float = 15.0,
        min_magnitude: float | None = None,
    ) -> None:
        super().__init__()
        if not sources:
            raise ValueError("FeedWatchTrigger needs at least one source")
        if interval < MIN_INTERVAL_S:
            raise ValueError(f"interval must be at least {MIN_INTERVAL_S} s, not {interval}")
        self.sources = [str(s) for s in sources]
        self.interval = float(interval)
        self.min_magnitude = None if min_magnitude is None else float(min_magnitude)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sources": list(self.sources),
                "interval": self.interval,
                "min_magnitude": self.min_magnitude,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        opened: tuple[Runtime, requests.Session] | None = None
        try:
            while True:
                for source in self.sources:
                    try:
                        if opened is None:
                            opened = await asyncio.to_thread(_open)
                        rt, session = opened
                        result = await asyncio.to_thread(
                            _poll, rt, source, self.min_magnitude, session
                        )
                    except Exception:  # never end the watch: log, poll again next round
                        self.log.exception("watch %s: poll failed", source)
                        continue
                    if result is not None:
                        self.log.info(
                            "watch %s: new or changed events %s", source, result["events"]
                        )
                        yield TriggerEvent(result)
                await asyncio.sleep(self.interval)
        finally:
            if opened is not None:
                _close(*opened)


def _open() -> tuple[Runtime, requests.Session]:
    from alerts.config import load_settings
    from alerts.feeds.fetch import http_session
    from alerts.pipeline import Runtime

    rt = Runtime.from_settings(load_settings())
    return rt, http_session(rt.settings.feeds)


def _poll(
    rt: Runtime, source: str, minimum: float | None, session: requests.Session
) -> dict[str, Any] | None:
    from alerts.feeds.watch import poll

    result = poll(rt, source, minimum=minimum, session=session)
    return None if result is None else result.as_payload()


def _close(rt: Runtime, session: requests.Session) -> None:
    session.close()
    rt.close()


def triggered_payload_ids(
    events: Mapping[Any, Iterable[Any]] | None, conf: Mapping[str, Any] | None = None
) -> list[int] | None:
    """The payload ids a run was given, or None for a run that fetches for itself.

    ``events`` is the context's ``triggering_asset_events`` (every event of
    every asset: several trigger events may be coalesced into one run);
    ``conf`` may name ``payload_ids`` too (a manual replay). A run with
    neither (the minute timetable, a plain manual trigger) returns None.
    """
    ids: set[int] = set()
    given = False
    for asset_events in (events or {}).values():
        for event in asset_events:
            payload = (getattr(event, "extra", None) or {}).get("payload") or {}
            given = True
            ids.update(int(p) for p in payload.get("payload_ids") or [])
    if conf and "payload_ids" in conf:
        given = True
        ids.update(int(p) for p in conf["payload_ids"] or [])
    return sorted(ids) if given else None
