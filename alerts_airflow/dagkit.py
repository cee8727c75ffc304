"""What the production DAGs share: the asset of new alert versions and default task settings.

Imported by the DAG files only (Airflow on the import path); the domain core
never imports this.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset

__all__ = ["ALERT_VERSIONS", "default_args", "fail_if_any_failed", "ui_base_url"]

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
