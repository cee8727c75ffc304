"""Resend one publication (all, the failed, or one recipient): an operator's form in the UI."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from alerts_airflow.dagkit import default_args

DOC = """
### resend_alert — 补发预警 Resend

Trigger with the form (**Trigger DAG**): the publication's CAP identifier
(`alerts show ALERT_ID`, the operator page), who to send to — everyone it
was addressed to (`all`), the deliveries that failed (`failed`: dead
letters and held `unknown` rows) or one recipient (`one`: channel and
address) — and a reason. New ledger rows (keys ending `#rN`) are created and
sent; the alert's audit trail records who asked, why and how many. Nothing
already sent is touched.
"""


@dag(
    dag_id="resend_alert",
    schedule=None,
    catchup=False,
    tags=["alerts", "operator"],
    doc_md=DOC,
    default_args=default_args(retries=0),
    params={
        "identifier": Param(
            "", type="string", minLength=1, title="发布标识 Publication identifier"
        ),
        "mode": Param(
            "failed",
            enum=["failed", "all", "one"],
            title="补发对象 Who",
            description="failed: dead letters and unknown rows; all: everyone; one: one recipient",
        ),
        "channel": Param("", type="string", title="渠道 Channel (mode one)"),
        "recipient": Param("", type="string", title="接收方 Recipient (mode one)"),
        "reason": Param("", type="string", minLength=1, title="理由 Reason"),
    },
)
def resend_alert() -> None:
    @task
    def resend() -> dict[str, Any]:
        """Create the audited resend rows and dispatch them."""
        from alerts.orchestration import resend as resend_publication
        from alerts_airflow.dagkit import runtime

        context = get_current_context()
        p = context["params"]
        user = getattr(context["dag_run"], "triggering_user_name", None) or "airflow"
        with runtime() as rt:
            return resend_publication(
                rt,
                p["identifier"],
                mode=p["mode"],
                channel=p.get("channel") or None,
                recipient=p.get("recipient") or None,
                actor=f"operator:{user}",
                reason=p["reason"],
            )

    resend()


resend_alert()
