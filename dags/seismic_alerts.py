"""Seismic alerts: USGS / CENC events -> graded response -> alert versions -> channels.

Event-driven: a trigger watches the feeds and starts a run on new or changed
events; a minute timetable is the fallback. Thin wiring: every task body calls
``alerts.pipeline`` / ``alerts.feeds.watch``; the domain core never imports
Airflow and runs the same from ``alerts pipeline``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    AsyncCallback,
    CronTriggerTimetable,
    DeadlineAlert,
    DeadlineReference,
    dag,
    get_current_context,
    task,
)


def _feeds_settings() -> tuple[list[str], list[str], float]:
    """(watched sources, fallback sources, watch interval) from the configuration.

    Read when the DAG file is parsed (the trigger's arguments are part of the
    DAG): ALERTS_FEEDS__WATCH_SOURCES, __FALLBACK_SOURCES, __WATCH_INTERVAL_S.
    """
    from alerts.config import load_settings

    feeds = load_settings().feeds
    return list(feeds.watch_sources), list(feeds.fallback_sources), feeds.watch_interval_s


WATCHED_SOURCES, FALLBACK_FETCH, WATCH_INTERVAL_S = _feeds_settings()

DOC = """
### seismic_alerts — 地震预警（USGS / CENC，事件驱动）

**When it runs.** `schedule` is `AssetOrTimeSchedule`: the asset
`seismic_feeds` **or** every minute.

* *Event-driven:* `FeedWatchTrigger` (in the **triggerer**, which must be
  running) polls the USGS and CENC feeds every 10 s
  (`ALERTS_FEEDS__WATCH_INTERVAL_S`) with conditional GET and
  fires only when an earthquake at or above the lowest graded magnitude
  (M 4.0 with the packaged rules) is new or revised. The run ingests exactly
  the stored payloads the events name (`triggering_asset_events`; several
  events may be coalesced into one run).
* *Fallback, every minute:* fetch USGS (`ALERTS_FEEDS__USGS_URL`) as before,
  plus the newest stored payload of each watched source that no run has
  ingested yet (a trigger event that never became a run). With no new
  payload the cycle still runs, so expired alerts are expired.
* *Manual replay:* trigger with conf `{"payload_ids": [...]}`.

Then: merge revisions and alias ids into stored events, grade each
earthquake (national response M ≥ 5.0 blue IV … M ≥ 7.0 red I within 300 km
of the territory; regional intensity), reconcile with the active alerts
(issue / update / upgrade / downgrade / cancel / expire), render and deliver
through the configured channels (the local outbox by default: `alerts outbox`).

**Deadline.** A run unfinished 60 s after it was queued logs at ERROR and
notifies the channels whose `audience` is `internal`
(`alerts_airflow.notify.deadline_missed`).

**Rerun safely.** Clearing any task, or the whole run, never delivers the same
alert version twice: `ingest` replays the stored payloads at their fetch time
and finds nothing new; `publish` only sends ledger rows that are still due.
The trigger and the fallback may both hand the same payload to a run: the
second ingest finds nothing new. Failures per recipient are retried with
backoff and dead-lettered after the channel's `max_attempts` (see
`docs/operations.md`, `docs/feeds.md` "Event-driven earthquakes").
"""


# A run unfinished 60 s after it was queued notifies the operators
# (alerts_airflow.notify.deadline_missed: ERROR log + the "internal" channels).
# Note: dag.test() of a DAG with a deadline crashes in Airflow 3.3.2
# (apache/airflow#73428); tests/conftest.py works around it for the tests.
DEADLINE = DeadlineAlert(
    reference=DeadlineReference.DAGRUN_QUEUED_AT,
    interval=timedelta(seconds=60),
    callback=AsyncCallback(
        "alerts_airflow.notify.deadline_missed", kwargs={"dag_id": "seismic_alerts"}
    ),
)


def _seismic_feeds() -> Asset:
    """The watched asset; the trigger class is imported here, not at the top (light parsing)."""
    from alerts_airflow.triggers import FeedWatchTrigger

    return Asset(
        name="seismic_feeds",
        uri="x-alerts://seismic-feeds",
        watchers=[
            AssetWatcher(
                name="seismic_feed_watch",
                trigger=FeedWatchTrigger(sources=WATCHED_SOURCES, interval=WATCH_INTERVAL_S),
            )
        ],
    )


@dag(
    dag_id="seismic_alerts",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("* * * * *", timezone="UTC"),
        assets=_seismic_feeds(),
    ),
    catchup=False,
    max_active_runs=1,
    tags=["alerts", "seismic", "usgs", "cenc", "event-driven"],
    doc_md=DOC,
    deadline=DEADLINE,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=1),
        "execution_timeout": timedelta(minutes=5),
    },
)
def seismic_alerts() -> None:
    @task(execution_timeout=timedelta(minutes=2))
    def collect() -> list[int]:
        """The payloads this run ingests: the trigger's (or conf's), else fetched now."""
        from alerts.feeds.watch import fallback_payloads
        from alerts_airflow.dagkit import runtime
        from alerts_airflow.triggers import triggered_payload_ids

        context = get_current_context()
        dag_run = context["dag_run"]
        given = triggered_payload_ids(
            context.get("triggering_asset_events"), getattr(dag_run, "conf", None)
        )
        with runtime() as rt:
            fetch = FALLBACK_FETCH if given is None else []
            extra = fallback_payloads(rt, fetch=fetch, watched=WATCHED_SOURCES)
        return sorted({*(given or []), *extra})

    @task
    def ingest(payload_ids: list[int]) -> dict[str, Any]:
        """Parse, grade and reconcile; record new alert versions; mark the payloads ingested."""
        from alerts.feeds.watch import mark_ingested
        from alerts.pipeline import ingest_payloads
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            summary = ingest_payloads(rt, payload_ids)
            mark_ingested(rt, payload_ids)
            return asdict(summary)

    @task
    def publish(ingested: dict[str, Any]) -> dict[str, Any]:
        """Fan new versions out to the delivery ledger and send what is due."""
        from alerts.pipeline import publish as publish_versions
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return asdict(publish_versions(rt))

    publish(ingest(collect()))


seismic_alerts()
