"""Publish alerts: duty-officer approval where required, then fan-out and delivery per channel.

Thin wiring over ``alerts.orchestration``; the human-in-the-loop step is the
standard provider's ``HITLOperator``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from alerts_airflow.dagkit import ALERT_VERSIONS, default_args, ui_base_url

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

    @task(max_active_tis_per_dagrun=8)
    def deliver(channel: str) -> dict[str, Any]:
        """Send one channel's due rows (batched, rate-limited, retried, dead-lettered)."""
        from alerts.orchestration import dispatch_channel
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return dispatch_channel(rt, channel)

    deliver.expand(channel=channels(fan_out()))

    @task
    def approvals() -> list[dict[str, Any]]:
        """Publications waiting for the duty officer, claimed by this run."""
        from airflow.sdk import get_current_context

        from alerts.orchestration import approval_requests
        from alerts_airflow.dagkit import runtime

        run_id = get_current_context()["run_id"]
        link = f"{ui_base_url()}/dags/publish_alerts/runs/{run_id}"
        with runtime() as rt:
            return approval_requests(rt, run_id, ui_url=link)

    @task
    def announce(requests: list[dict[str, Any]]) -> int:
        """Tell the duty officer on the internal channels (a failure retries, then fails)."""
        from alerts.orchestration import notify_approvals
        from alerts_airflow.dagkit import runtime

        if not requests:
            return 0
        with runtime() as rt:
            return notify_approvals(rt, requests, ui_url=ui_base_url()).delivered

    @task
    def questions(requests: list[dict[str, Any]], announced: int) -> list[dict[str, Any]]:
        """The human-in-the-loop requests, one per publication."""
        return [
            {
                "subject": r["subject"],
                "body": r["body"],
                "options": r["options"],  # 发布 Publish / 驳回 Reject, each naming the publication
                "defaults": r["defaults"],
                "response_timeout": timedelta(seconds=r["timeout_s"])
                if r["timeout_s"] is not None
                else None,
            }
            for r in requests
        ]

    requests = approvals()
    ask = HITLOperator.partial(
        task_id="approve",
        params={
            "guidance": Param(
                "",
                type="string",
                title="防御指南（可改写）Advice (optional rewrite)",
                maxLength=300,
            ),
            "reason": Param("", type="string", title="理由 Reason", maxLength=500),
        },
        retries=0,
        execution_timeout=None,
    ).expand_kwargs(questions(requests, announce(requests)))

    @task(trigger_rule="all_done")
    def record(requests: list[dict[str, Any]], answers: list[Any]) -> dict[str, str]:
        """Record each decision (audited); unanswered ones stay pending for another run."""
        from airflow.sdk import get_current_context

        from alerts.orchestration import apply_approvals
        from alerts_airflow.dagkit import runtime

        # answers name their publication (stale ones from an earlier try are ignored)
        results = [a for a in (answers or []) if a]
        with runtime() as rt:
            return apply_approvals(rt, get_current_context()["run_id"], requests, results)

    @task(trigger_rule="all_done")
    def fan_out_decided(decided: dict[str, str]) -> int:
        from alerts.orchestration import fan_out_approved
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return fan_out_approved(rt)

    @task
    def channels_after(created: int) -> list[str]:
        from alerts.orchestration import channels_due
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return channels_due(rt)

    deliver.override(task_id="deliver_approved").expand(
        channel=channels_after(fan_out_decided(record(requests, ask.output)))
    )


publish_alerts()
