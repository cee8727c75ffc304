"""Operator notices from Airflow callbacks (deadline alerts).

:func:`deadline_missed` is the ``AsyncCallback`` of the ``seismic_alerts``
deadline: a run still unfinished some time after it was queued means alerts
are late. It logs at ERROR and sends a short notice through every enabled
channel whose ``audience`` is ``internal`` (the duty room), to the channel's
static recipients, once per run (the delivery key names the run; the outbox
and channels that deduplicate by key keep it once). Without an internal
channel the log line is the only notice.

The notice goes straight to the channel, not through the delivery ledger: it
is not an alert, has no publication, and must not wait behind the alerts it
reports. Like any callback, it is best effort; the log is the record.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["deadline_missed", "notify_operators"]

log = logging.getLogger(__name__)


async def deadline_missed(context: dict[str, Any] | None = None, dag_id: str = "", **_: Any) -> int:
    """Deadline callback: the run named in ``context`` is late. Returns recipients reached."""
    run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    dag_id = dag_id or str(run.get("dag_id") or "?")
    run_id = str(run.get("dag_run_id") or run.get("run_id") or "?")
    subject = f"【运维】{dag_id} 运行超时 / run overdue"
    body = (
        f"{dag_id} 的运行 {run_id} 在截止时间 {deadline.get('deadline_time', '?')} 前未完成"
        f"（排队于 {run.get('queued_at', '?')}，状态 {run.get('state', '?')}）。"
        "预警可能延迟，请检查 Airflow 调度器、触发器与执行器。\n"
        f"Run {run_id} of {dag_id} missed its deadline; alerts may be late."
    )
    return await asyncio.to_thread(
        notify_operators, subject, body, key=f"ops:deadline:{dag_id}:{run_id}"
    )


def notify_operators(subject: str, body: str, *, key: str, settings: Any = None) -> int:
    """Log at ERROR and send to the internal channels; the number of recipients reached.

    ``key`` makes each (channel, recipient) delivery unique, so a repeated
    call for the same incident is kept once by channels that deduplicate.
    (:func:`alerts.notices.notify_operators` does the sending.)
    """
    log.error("%s: %s", subject, body)
    from alerts.notices import NoticeError
    from alerts.notices import notify_operators as send_notice
    from alerts.pipeline import runtime

    if settings is None:  # the channels' secrets may live in Airflow connections
        from alerts.config import load_settings
        from alerts_airflow.dagkit import settings_with_connections

        settings = settings_with_connections(load_settings())
    with runtime(settings) as rt:
        try:
            return send_notice(rt, subject, body, kind="deadline", key=key).delivered
        except NoticeError:
            log.exception("operator notice reached nobody")
            return 0
