"""Send an exercise (演练) message to the duty groups: checks the internal channels end to end."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from alerts_airflow.dagkit import default_args

DOC = """
### exercise_message — 演练消息 Exercise message

**用途。** 值班演练：向所有内部渠道（`audience: internal`，如值班室企业微信群）
的固定接收人发送一条标明“演练”的消息，确认值班通知链路畅通。填写演练内容和理由后
**Trigger DAG**，或在值班页面 *预警值班 Duty desk* 点“发送演练消息”。

**Use.** A duty exercise: one message marked 演练 / EXERCISE goes to the static
recipients of every enabled internal channel (the duty groups), to check that
operator notices get through. Give the text and a reason, then **Trigger DAG**
(or *发送演练消息 Send exercise* on the duty desk page).

**它不是什么 What it is not.** 这不是预警发布：不进入投递台账，不生成 CAP，
不发给任何公众订阅者，也不出现在公开的 Atom 源里。消息走的是值班提醒
（`alerts.notices.notify_operators`）的同一路径。
It is not a publication: no ledger rows, no CAP document, no public subscriber
and nothing in the public Atom feed. It takes the operator-notice path
(`alerts.notices.notify_operators`), the one approvals and stale-feed alarms use.

**失败 Failure.** 没有配置内部渠道时任务失败（演练没有送达任何人，不重试）；
所有内部渠道都发送失败时任务失败并重试（没有人收到，重试不会重复发送）；
部分失败时任务成功，日志列出每个失败的接收人。
With no internal channel configured the task fails at once (the exercise
reached nobody). When every internal recipient failed it fails and retries
(nobody got it, so a retry repeats nothing); a partial failure succeeds and the
log lists each recipient that failed.
"""


@dag(
    dag_id="exercise_message",
    schedule=None,
    catchup=False,
    # nothing runs unless a duty officer triggers it: not paused, so a trigger runs at once
    is_paused_upon_creation=False,
    tags=["alerts", "operator", "exercise"],
    doc_md=DOC,
    default_args=default_args(),
    params={
        "text": Param(
            "值班通知链路演练，请回复“收到”。Duty notice drill: please reply “received”.",
            type="string",
            minLength=1,
            maxLength=500,
            title="演练内容 Exercise text",
        ),
        "reason": Param("", type="string", minLength=1, maxLength=500, title="理由 Reason"),
    },
)
def exercise_message() -> None:
    @task
    def send() -> dict[str, Any]:
        """Send the exercise to every internal channel's recipients."""
        from airflow.sdk.exceptions import AirflowFailException

        from alerts.notices import notify_operators
        from alerts_airflow.dagkit import runtime

        context = get_current_context()
        p = context["params"]
        run_id = context["run_id"]
        user = getattr(context["dag_run"], "triggering_user_name", None) or "airflow"
        subject = "【演练 EXERCISE】值班演练消息 / duty exercise"
        body = (
            f"{p['text'].strip()}\n"
            "此为演练，不是真实预警，无需采取防御行动。"
            "This is an exercise, not a real warning: take no protective action.\n"
            f"发起人 By: operator:{user}；理由 Reason: {p['reason'].strip()}\n"
            f"运行 Run: {run_id}"
        )
        with runtime() as rt:
            internal = [
                c.name
                for c in rt.settings.channels
                if c.enabled and c.audience == "internal" and c.recipients
            ]
            if not internal:
                raise AirflowFailException(
                    "没有启用的内部渠道，演练未送达任何人 / no enabled internal channel with "
                    "recipients: the exercise reached nobody (configure audience: internal)"
                )
            result = notify_operators(rt, subject, body, kind="exercise", key=f"exercise-{run_id}")
        return {
            "channels": internal,
            "delivered": result.delivered,
            "failed": result.failed,
            "by": user,
        }

    send()


exercise_message()
