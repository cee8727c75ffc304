"""Publish alerts: duty-officer approval where required, then fan-out and delivery per channel.

Thin wiring over ``alerts.orchestration``; the review chain (the standard
provider's ``HITLOperator``) is ``alerts_airflow.approvalflow``, shared with the
bulletin DAGs.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from alerts_airflow.approvalflow import deliver, review_and_deliver
from alerts_airflow.dagkit import ALERT_VERSIONS, default_args

DOC = """
### publish_alerts — 预警发布（审批、分发、投递）

**When it runs.** When the asset `alert_versions` is updated (by
seismic_alerts, weather_alerts, official_warnings) **or** every 5 minutes
(retries that fell due, approvals decided elsewhere).

**Two branches, so an approval never holds anything else back.**

* *Deliver what may go:* fan out every publication that needs no approval
  (earthquakes, yellow and blue, cancellations, downgrades) or was decided,
  then one mapped **deliver** task per channel with rows due.
* *Approvals:* each orange or red weather / official warning waits for the
  duty officer (`approval` settings). The officer is notified on the internal
  channels, then answers the task's **Required Action** in the UI (or REST
  `PATCH .../hitlDetails`): **发布 Publish** (optionally rewriting the advice in
  *guidance*) or **驳回 Reject** (each option names the publication). A red
  warning with no answer publishes after 10 minutes
  (`ALERTS_APPROVAL__TIMEOUT_MIN__RED`); orange waits for an answer.
  `alerts approve IDENTIFIER` decides from the command line too. Each decision
  is in the alert's audit trail with the officer's name.

**Rerun safely.** Fan-out happens once per publication; each ledger row is
sent once; a publication is asked about by one run, and decided once.
"""


@dag(
    dag_id="publish_alerts",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/5 * * * *", timezone="UTC"), assets=ALERT_VERSIONS
    ),
    catchup=False,
    max_active_runs=4,  # an orange approval may wait for hours: other runs go on
    tags=["alerts", "publish", "approval"],
    doc_md=DOC,
    default_args=default_args(),
)
def publish_alerts() -> None:
    @task
    def fan_out() -> int:
        """Ledger rows for every publication that may go now."""
        from alerts.orchestration import fan_out_approved
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return fan_out_approved(rt)

    @task
    def channels(created: int) -> list[str]:
        """Channels with rows due now."""
        from alerts.orchestration import channels_due
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return channels_due(rt)

    deliver.expand(channel=channels(fan_out()))
    review_and_deliver(("alert",))


publish_alerts()
