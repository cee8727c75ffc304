"""Daily outlook: the 72-hour risk outlook as a bulletin, reviewed, then delivered."""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task

from alerts_airflow.approvalflow import review_and_deliver
from alerts_airflow.dagkit import default_args, outlook_schedule

DOC = """
### daily_outlook — 每日风险展望（未来72小时）

**When it runs.** Every morning at `outlook.hour_local` (default 07:00) in
the configured time zone (`timezone`, Asia/Shanghai).

* `make`: grades the forecast of the next 72 hours (the newest stored
  Open-Meteo forecasts, fetched again when older than 6 hours): per
  prefecture and province, each hazard's highest level and the risks near the
  blue threshold (`alerts/data/outlook.yaml`), with the seasonal reminders.
  One bulletin per scope and day: national (`outlook.national`) and each
  prefix in `outlook.regions`. A rerun the same day makes nothing new.
* Review: the duty officer answers **发布 Publish** (optionally rewriting the
  advice) or **驳回 Reject** in the task's **Required Action**; with no answer
  in `approval.bulletin_timeout_min` (30) minutes the bulletin is published
  as it is (`approval.bulletin_on_timeout`).
* Delivery: long form (e-mail with the 72-hour chart, WeChat article), short
  form (SMS, Weibo), to the channels in `outlook.channels` (default: every
  public channel) and to subscribers who asked for every level in the
  bulletin's regions; each recipient once.
"""


@dag(
    dag_id="daily_outlook",
    schedule=outlook_schedule(),
    catchup=False,
    max_active_runs=1,
    tags=["alerts", "outlook", "bulletin", "approval"],
    doc_md=DOC,
    default_args=default_args(),
)
def daily_outlook() -> None:
    @task
    def make() -> list[dict[str, Any]]:
        """Today's outlook bulletins (stored once per scope and day)."""
        from alerts.orchestration import outlook_bulletins
        from alerts_airflow.dagkit import runtime

        with runtime() as rt:
            return outlook_bulletins(rt)

    review_and_deliver(("outlook",), upstream=make())


daily_outlook()
