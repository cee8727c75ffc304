"""Weather alerts: Open-Meteo forecasts in batches -> graded signals -> alert versions.

Thin wiring over ``alerts.pipeline`` / ``alerts.orchestration``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from alerts_airflow.dagkit import ALERT_VERSIONS, default_args, fail_if_any_failed

DOC = """
### weather_alerts — 气象预警（Open-Meteo 预报）

**Hourly** (at minute 5) and on demand (trigger the DAG). The configured
locations (`ALERTS_FEEDS__LOCATIONS_FILE`, default one point per prefecture)
are fetched in batches (`ALERTS_FEEDS__OPENMETEO_BATCH_SIZE`), **one mapped
task per batch**, each with its own conditional GET and feed state: a failing
batch is retried and, if it still fails, marks the run failed while the other
batches are graded anyway (`ingest` runs when all fetches are done).

`ingest` grades the forecasts against the national warning signals
(`docs/criteria.md`), reconciles with the active weather alerts (issue,
update, upgrade, downgrade after the dwell, lift after the clear time) and
updates the asset `alert_versions`, which starts **publish_alerts**: orange
and red warnings wait there for the duty officer's approval.

**Rerun safely.** An unchanged forecast stores nothing; ingesting the same
payloads again finds nothing new.
"""


@dag(
    dag_id="weather_alerts",
    schedule="5 * * * *",
    catchup=False,
    max_active_runs=1,
    tags=["alerts", "weather", "open-meteo"],
    doc_md=DOC,
    default_args=default_args(),
)
def weather_alerts() -> None:
    @task
    def batches() -> list[int]:
        """The location batches (one fetch task each)."""
        from alerts.orchestration import weather_batch_ids
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return weather_batch_ids(rt)

    @task(max_active_tis_per_dagrun=4)
    def fetch(batch: int) -> list[int]:
        """Fetch one batch's forecast and air quality; the new payloads' ids."""
        from alerts.pipeline import fetch_weather_batch
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return fetch_weather_batch(rt, batch)

    @task(trigger_rule="all_done", outlets=[ALERT_VERSIONS])
    def ingest(fetched: list[list[int]]) -> dict[str, Any]:
        """Grade what the batches brought (failed batches bring nothing) and reconcile."""
        from alerts.orchestration import ingest_new
        from alerts_airflow.dagkit import runtime

        ids = sorted({pid for got in fetched or [] if got for pid in got})
        with runtime() as rt:
            return ingest_new(rt, ids, feeds=("open-meteo:",))

    @task(trigger_rule="one_failed", retries=0)
    def report_failures() -> None:
        """Fails the run when a batch failed (the others were graded anyway)."""
        fail_if_any_failed("weather batch(es)")

    fetched = fetch.expand(batch=batches())
    [fetched, ingest(fetched)] >> report_failures()


weather_alerts()
