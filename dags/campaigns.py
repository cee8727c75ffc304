"""Campaigns: publicity campaigns by their calendar, reviewed, then delivered."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from alerts_airflow.approvalflow import review_and_deliver
from alerts_airflow.dagkit import default_args

DOC = """
### campaigns — 专项宣传（按宣传日历）

**Every hour at :05.** The campaign calendar (`alerts/data/campaigns.yaml`, or
`campaigns_file`) says when each campaign sends: days relative to its period
(the National Day holiday, the start of term, the Spring Festival travel
rush, ...) at a local time. `make` stores one bulletin per send that fell due
in the last day (a paused or failed hour catches up; a rerun makes nothing
new), its content fed by the forecast at the campaign's places.

* Review: as for warnings and the daily outlook, the duty officer publishes
  or rejects each one; with no answer in `approval.bulletin_timeout_min` (30)
  minutes it is published as it is.
* Delivery: to the campaign's channels (default: every public channel) and
  to subscribers in its regions whose audiences include one of the
  campaign's (subscribers without audiences are the general public and get
  every campaign); each recipient once.
"""


@dag(
    dag_id="campaigns",
    schedule="5 * * * *",
    catchup=False,
    max_active_runs=1,
    tags=["alerts", "campaigns", "bulletin", "approval"],
    doc_md=DOC,
    default_args=default_args(),
)
def campaigns() -> None:
    @task
    def make() -> list[dict[str, Any]]:
        """A bulletin per campaign send due in the last day (stored once per send)."""
        from alerts.orchestration import campaign_bulletins
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return campaign_bulletins(rt)

    review_and_deliver(("campaign",), upstream=make())


campaigns()
