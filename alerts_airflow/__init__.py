"""Airflow glue for the alert pipeline: one connection type per delivery channel.

The domain core (:mod:`alerts`) never imports Airflow; this package does. It
registers itself as an Airflow provider (entry point ``apache_airflow_provider``
in pyproject.toml, :func:`alerts_airflow.provider.get_provider_info`) so the
Connections page offers ``alerts_wecom_bot``, ``alerts_sms``, ... with labelled
fields, and turns such a connection into :class:`alerts.config.ChannelSettings`
(:func:`alerts_airflow.hooks.channel_settings_from_connection`).

Nothing is imported here on purpose: Airflow imports this package while it
discovers providers, before it is ready to import hooks.
"""
