"""Housekeeping: expire alerts, alarm on stale feeds, apply retention."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from alerts_airflow.dagkit import ALERT_VERSIONS, default_args

DOC = """
### housekeeping — 例行维护

**Every 15 minutes.**

* `expire`: a cycle with no input at the current time: alerts whose validity
  ended are expired (到期; announced only when `lifecycle.notify_expire`).
* `stale_feeds`: every feed without a success within `housekeeping.stale_factor`
  (3) times its interval (`housekeeping.intervals_s`) is reported to the
  operators on the internal channels, and the task **fails** so the run shows
  red in the grid until the feed recovers. `alerts feeds` shows the detail.
* `retention`: quarantined records, old feed payloads (each feed's latest is
  kept), outbox messages and remembered WeChat events older than
  `housekeeping.retention_days` (90) are deleted. Alerts, versions, the audit
  trail and the delivery ledger are kept.
"""


@dag(
    dag_id="housekeeping",
    schedule="*/15 * * * *",
    catchup=False,
    max_active_runs=1,
    tags=["alerts", "housekeeping"],
    doc_md=DOC,
    default_args=default_args(),
)
def housekeeping() -> None:
    @task(outlets=[ALERT_VERSIONS])
    def expire() -> dict[str, Any]:
        from alerts.orchestration import expire_alerts
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return expire_alerts(rt)

    @task(retries=0)
    def stale_feeds() -> list[dict[str, Any]]:
        from alerts.orchestration import notify_stale
        from alerts.orchestration import stale_feeds as find_stale
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            hk = rt.settings.housekeeping
            stale = find_stale(rt, factor=hk.stale_factor, intervals=hk.intervals_s)
            notify_stale(rt, stale)
        if stale:
            names = ", ".join(s["feed"] for s in stale)
            raise RuntimeError(f"stale feeds (operators notified): {names}")
        return stale

    @task
    def retention() -> dict[str, int]:
        from alerts.orchestration import retention as apply_retention
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return apply_retention(rt, days=rt.settings.housekeeping.retention_days)

    expire()
    stale_feeds()
    retention()


housekeeping()
