"""Official warnings: CAP 1.2 / Atom sources and GDACS -> alert versions.

Thin wiring over ``alerts.orchestration``.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from alerts_airflow.dagkit import ALERT_VERSIONS, default_args, fail_if_any_failed

DOC = """
### official_warnings — 官方预警（CAP 1.2 / Atom，GDACS）

**Every 5 minutes.** One mapped fetch per source: each CAP source configured
under `feeds.cap_feeds` (an Atom index followed once per entry revision, or
one CAP document; polling faster than its `min_interval_s` is skipped) and
the GDACS RSS feed. A failing source fails its own task only.

`ingest` grades the official warnings (their stated colour; `docs/criteria.md`),
follows an authority's Update and Cancel chains, and updates the asset
`alert_versions`, which starts **publish_alerts**.
"""


@dag(
    dag_id="official_warnings",
    schedule="*/5 * * * *",
    catchup=False,
    max_active_runs=1,
    tags=["alerts", "official", "cap", "gdacs"],
    doc_md=DOC,
    default_args=default_args(),
)
def official_warnings() -> None:
    @task
    def sources() -> list[str]:
        """Every official source (``cap:NAME`` ..., ``gdacs``)."""
        from alerts.orchestration import official_sources
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return official_sources(rt)

    @task
    def fetch(source: str) -> list[int]:
        """Fetch one source; the new payloads' ids."""
        from alerts.orchestration import fetch_official
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return fetch_official(rt, source)

    @task(trigger_rule="all_done", outlets=[ALERT_VERSIONS])
    def ingest(fetched: list[list[int]]) -> dict[str, Any]:
        """Grade what the sources brought and reconcile."""
        from alerts.orchestration import ingest_new
        from alerts_airflow.dagkit import runtime

        ids = sorted({pid for got in fetched or [] if got for pid in got})
        with runtime() as rt:
            return ingest_new(rt, ids, feeds=("cap:", "gdacs"))

    @task(trigger_rule="one_failed", retries=0)
    def report_failures() -> None:
        """Fails the run when a source failed (the others were graded anyway)."""
        fail_if_any_failed("official source(s)")

    fetched = fetch.expand(source=sources())
    [fetched, ingest(fetched)] >> report_failures()


official_warnings()
