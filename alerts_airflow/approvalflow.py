"""The duty officer's review, then fan-out and delivery: one task chain every DAG shares.

``publish_alerts`` asks about warnings, ``daily_outlook`` about outlook
bulletins, ``campaigns`` about campaign bulletins: the same tasks, each
asking only about its own kind of publication (a publication is asked about
by one run, decided once). Built inside a ``@dag`` function; task ids:
``approvals``, ``announce``, ``questions``, ``approve`` (the standard
provider's ``HITLOperator``, one mapped instance per publication),
``record``, ``fan_out_decided``, ``channels_after``, ``deliver_approved``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param, task

from alerts_airflow.dagkit import ui_base_url

__all__ = ["deliver", "review_and_deliver"]


@task(max_active_tis_per_dagrun=8)
def deliver(channel: str) -> dict[str, Any]:
    """Send one channel's due rows (batched, rate-limited, retried, dead-lettered)."""
    from alerts.orchestration import dispatch_channel
    from alerts_airflow.dagkit import runtime

    with runtime() as rt:
        return dispatch_channel(rt, channel)


def review_and_deliver(kinds: tuple[str, ...], *, upstream: Any = None) -> Any:
    """Ask the duty officer about pending publications of ``kinds``; deliver what is decided.

    ``upstream``: a task (or output) the review waits for (the task that made
    the bulletins). Returns the mapped delivery task.
    """

    @task
    def approvals(made: Any = None) -> list[dict[str, Any]]:
        """Publications waiting for the duty officer, claimed by this run."""
        from airflow.sdk import get_current_context

        from alerts.orchestration import approval_requests
        from alerts_airflow.dagkit import runtime

        context = get_current_context()
        run_id = context["run_id"]
        link = f"{ui_base_url()}/dags/{context['dag'].dag_id}/runs/{run_id}"
        with runtime() as rt:
            return approval_requests(rt, run_id, ui_url=link, kinds=kinds)

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

    requests = approvals(upstream)
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
    ).expand_kwargs(questions(requests, announce(requests)))  # type: ignore[arg-type]

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

    decided = record(requests, ask.output)  # type: ignore[arg-type]
    return deliver.override(task_id="deliver_approved").expand(
        channel=channels_after(fan_out_decided(decided))  # type: ignore[arg-type]
    )
