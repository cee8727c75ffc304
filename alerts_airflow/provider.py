"""Provider info: how Airflow discovers our connection types.

Registered in pyproject.toml as the ``apache_airflow_provider`` entry point.
Airflow 3.3 reads the form of each connection type declaratively from here
(``conn-fields`` for extra fields, ``ui-field-behaviour`` for the standard
ones) without importing the hooks; the hook methods
``get_connection_form_widgets`` / ``get_ui_field_behaviour`` are deprecated
there and the former needs flask-appbuilder / wtforms, which 3.3 no longer
installs.
"""

from __future__ import annotations

from typing import Any

from alerts_airflow.spec import SPECS

__all__ = ["HOOKS_MODULE", "PACKAGE_NAME", "get_provider_info"]

# Must equal the distribution name (pyproject [project] name): Airflow checks it.
PACKAGE_NAME = "alerts"
HOOKS_MODULE = "alerts_airflow.hooks"


def get_provider_info() -> dict[str, Any]:
    """Provider info in the form of ``airflow/provider_info.schema.json``."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Alerts early-warning channels",
        "description": "预警发布渠道连接 Connection types for the alert pipeline's delivery "
        "channels (WeCom, WeChat, Weibo, DingTalk, Feishu, Aliyun SMS, e-mail, webhook).\n",
        "integrations": [
            {
                "integration-name": "Alerts early-warning channels",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Alerts early-warning channels",
                "python-modules": [HOOKS_MODULE],
            }
        ],
        "connection-types": [spec.connection_type_info(HOOKS_MODULE) for spec in SPECS.values()],
    }
