"""Seismic alerts: USGS feed -> graded national response -> alert versions -> outbox.

Thin wiring: every task body calls ``alerts.pipeline``; the domain core has no
Airflow import and runs the same from ``alerts pipeline``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from airflow.sdk import dag, task

DOC = """
### seismic_alerts — 地震预警（USGS）

Every minute: fetch the USGS GeoJSON summary feed (`ALERTS_FEEDS__USGS_URL`,
conditional GET; an unchanged feed stores nothing), merge revisions and alias
ids into stored events, grade each earthquake by the national initial-response
rule (M ≥ 5.0 blue IV … M ≥ 7.0 red I, within 300 km of the territory), reconcile
with the active alerts (issue / update / upgrade / downgrade / cancel / expire),
render the Chinese message and deliver it through the configured channels
(the local outbox by default: `alerts outbox`).

**Rerun safely.** Clearing any task, or the whole run, never delivers the same
alert version twice: `ingest` replays the stored payload at its fetch time and
finds nothing new; `publish` only sends ledger rows that are still due.
Failures per recipient are retried with backoff and dead-lettered after the
channel's `max_attempts` (see `docs/operations.md`).
"""


@dag(
    dag_id="seismic_alerts",
    schedule="* * * * *",
    catchup=False,
    max_active_runs=1,
    tags=["alerts", "seismic", "usgs"],
    doc_md=DOC,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=20),
        "execution_timeout": timedelta(minutes=5),
    },
)
def seismic_alerts() -> None:
    @task
    def fetch_usgs() -> list[int]:
        """Fetch the feed; return the new payload's id (none if the feed is unchanged)."""
        from alerts.pipeline import fetch_feed, runtime

        with runtime() as rt:
            payload_id = fetch_feed(rt, "usgs")
        return [] if payload_id is None else [payload_id]

    @task
    def ingest(payload_ids: list[int]) -> dict[str, Any]:
        """Parse, grade and reconcile; record new alert versions."""
        from alerts.pipeline import ingest_payloads, runtime

        with runtime() as rt:
            return asdict(ingest_payloads(rt, payload_ids))

    @task
    def publish(ingested: dict[str, Any]) -> dict[str, Any]:
        """Fan new versions out to the delivery ledger and send what is due."""
        from alerts.pipeline import publish as publish_versions
        from alerts.pipeline import runtime

        with runtime() as rt:
            return asdict(publish_versions(rt))

    publish(ingest(fetch_usgs()))


seismic_alerts()
