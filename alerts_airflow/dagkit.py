"""What the production DAGs share: the asset of new alert versions and default task settings.

Imported by the DAG files only (Airflow on the import path); the domain core
never imports this.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, CronTriggerTimetable

if TYPE_CHECKING:
    from alerts.config import Settings
    from alerts.pipeline import Runtime

__all__ = [
    "ALERT_VERSIONS",
    "default_args",
    "fail_if_any_failed",
    "runtime",
    "settings_with_connections",
    "ui_base_url",
]

# Produced by the DAGs that ingest feeds (seismic, weather, official): new alert
# versions may exist. publish_alerts runs when it is updated.
ALERT_VERSIONS = Asset(name="alert_versions", uri="x-alerts://alert-versions")


def default_args(**overrides: Any) -> dict[str, Any]:
    """Retries with exponential backoff and a bounded run time, for every task.

    The first retry waits ``ALERTS_AIRFLOW_RETRY_DELAY_S`` seconds (default 15),
    doubling up to 5 minutes.
    """
    return {
        "retries": 3,
        "retry_delay": timedelta(seconds=float(os.environ.get("ALERTS_AIRFLOW_RETRY_DELAY_S", 15))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(minutes=10),
        **overrides,
    }


def ui_base_url() -> str:
    """The Airflow UI's address, for links in notices (``[api] base_url``)."""
    from airflow.configuration import conf

    return str(conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")


def fail_if_any_failed(what: str) -> None:
    """Body of a final task with ``trigger_rule="one_failed"``: the run shows failed.

    The feed DAGs grade whatever their healthy sources brought (their ingest
    runs when all fetches are done); this task keeps a failed source visible.
    """
    from airflow.exceptions import AirflowFailException

    raise AirflowFailException(
        f"{what} failed: see the failed fetch task(s); the rest was ingested"
    )


def settings_with_connections(settings: Settings) -> Settings:
    """The settings with every channel that names an Airflow ``connection`` filled from it.

    The connection (type ``alerts_<channel type>``) gives the credentials and
    account: base URL, options (merged over the configured ones), audience,
    rate and timeout when it sets them; the configuration keeps the channel's
    name, type, recipients, language and delivery policy.
    """
    from alerts_airflow.hooks import channel_settings_from_connection

    channels = []
    for c in settings.channels:
        if not c.connection:
            channels.append(c)
            continue
        got = channel_settings_from_connection(
            c.connection, channel_type=c.type, name=c.name, recipients=c.recipients
        )
        explicit = got.model_fields_set
        channels.append(
            c.model_copy(
                update={
                    "credentials": got.credentials,
                    "base_url": got.base_url or c.base_url,
                    "options": {**c.options, **got.options},
                    **{
                        k: getattr(got, k)
                        for k in ("audience", "rate_per_minute", "timeout_s")
                        if k in explicit
                    },
                }
            )
        )
    return settings.model_copy(update={"channels": channels})


@contextmanager
def runtime() -> Iterator[Runtime]:
    """What a DAG task opens: the configured runtime, channel secrets from Airflow connections."""
    from alerts.config import load_settings
    from alerts.pipeline import runtime as core_runtime

    with core_runtime(settings_with_connections(load_settings())) as rt:
        yield rt


def outlook_schedule() -> CronTriggerTimetable:
    """Every morning at ``outlook.hour_local`` in the configured time zone (daily_outlook)."""
    from alerts.config import load_settings

    settings = load_settings()
    return CronTriggerTimetable(
        f"0 {settings.outlook.hour_local} * * *", timezone=settings.timezone
    )
