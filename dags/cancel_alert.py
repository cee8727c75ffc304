"""Cancel (解除) one active alert by hand: a form in the UI and the duty desk's action."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from alerts_airflow.dagkit import default_args

DOC = """
### cancel_alert — 解除预警 Cancel an alert

**用途。** 值班员手工解除一条仍有效的预警：填写预警编号（`alerts list --active`、
值班页面 *预警值班 Duty desk*）和理由后 **Trigger DAG**，或在值班页面点“解除”。
任务 **cancel** 记录解除（新版本 `Cancel`，审计记录写明 `operator:<触发者>` 和理由，
并在一段时间内抑制同级别重发，见 `docs/lifecycle.md`）；任务 **publish** 随即把
解除通知分发给收到过该预警的每个人。

**Use.** The duty officer cancels an alert that is still active: the alert id
and a reason, then **Trigger DAG** (or *解除 Cancel* on the duty desk page).
Task **cancel** records the cancellation (a new `Cancel` version; the audit
trail names `operator:<triggering user>` and the reason; re-issue at that level
is suppressed for a while). Task **publish** fans the cancellation out to
everyone who got the warning and delivers it.

**不重试 No retry on cancel.** 解除只执行一次：重试不会带来任何好处——
预警一旦解除便不再有效，存储层会拒绝再次解除（“no active alert”），
所以重复触发或清除重跑只会失败并说明原因，不会发出第二条解除通知。
A cancel is applied once; the store refuses to cancel an alert that is no
longer active, so a rerun fails with that reason and sends nothing twice.
**publish** retries (fan-out and delivery are idempotent: each ledger row is
sent once); should it still fail, the next `publish_alerts` run delivers the
cancellation anyway.
"""


@dag(
    dag_id="cancel_alert",
    schedule=None,
    catchup=False,
    # nothing runs unless a duty officer triggers it: not paused, so a trigger runs at once
    is_paused_upon_creation=False,
    tags=["alerts", "operator"],
    doc_md=DOC,
    default_args=default_args(),
    params={
        "alert_id": Param(
            "",
            type="string",
            minLength=1,
            title="预警编号 Alert id",
            description="例如 / e.g. earthquake:usgs:us6000pi9w:540200",
        ),
        "reason": Param("", type="string", minLength=1, maxLength=500, title="理由 Reason"),
    },
)
def cancel_alert() -> None:
    # retries=0: a cancel is applied once. A retry after the cancellation was stored
    # would only meet the store's refusal ("no active alert"); one before it changes
    # nothing a fresh trigger would not. The operator sees the failure and its reason.
    @task(retries=0)
    def cancel() -> dict[str, Any]:
        """Record the cancellation (audited with the triggering user and the reason)."""
        from alerts.pipeline import cancel_alert as cancel_one
        from alerts_airflow.dagkit import runtime

        context = get_current_context()
        p = context["params"]
        user = getattr(context["dag_run"], "triggering_user_name", None) or "airflow"
        with runtime() as rt:
            version_id = cancel_one(
                rt, p["alert_id"].strip(), reason=p["reason"], actor=f"operator:{user}"
            )
        return {"alert_id": p["alert_id"].strip(), "version_id": version_id, "by": user}

    @task
    def publish(cancelled: dict[str, Any]) -> dict[str, Any]:
        """Fan the cancellation out and deliver it (idempotent: safe to retry)."""
        from dataclasses import asdict

        from alerts.pipeline import publish as publish_due
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return {**cancelled, **asdict(publish_due(rt))}

    publish(cancel())


cancel_alert()
