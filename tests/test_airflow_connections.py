"""Airflow connection types for the delivery channels (alerts_airflow).

A connection of type ``alerts_<channel type>`` holds one channel account; the
provider entry point makes Airflow's UI offer it with labelled fields, and
the hooks turn it into :class:`alerts.config.ChannelSettings`.
"""

from __future__ import annotations

import importlib
import json
import re
from datetime import UTC, datetime
from importlib.metadata import entry_points
from typing import Any

import pytest
import requests

from alerts.channels import CHANNEL_TYPES
from alerts.config import ChannelSettings, ConfigError
from tests.conftest import ROOT

pytestmark = pytest.mark.airflow

TYPES = [t for t in CHANNEL_TYPES if t != "outbox"]

# docs/channels.md: the credentials each channel type needs.
DOC_CREDENTIALS = {
    "wecom_bot": {"key"},
    "wecom_app": {"corp_id", "corp_secret", "agent_id"},
    "wechat_oa": {"app_id", "app_secret"},
    "weibo": {"access_token"},
    "dingtalk": {"access_token", "secret"},
    "feishu": {"token", "secret"},
    "sms": {"access_key_id", "access_key_secret", "sign_name", "template_code"},
    "email": {"smtp_host", "from_addr", "username", "password"},
    "webhook": {"secret"},
}

# One connection per type (JSON form of AIRFLOW_CONN_<ID>) and what it must become:
# (connection, credentials, options, base_url).
CASES: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, Any], str | None]] = {
    "wecom_bot": (
        {
            "conn_type": "alerts_wecom_bot",
            "password": "bot-key-1",
            "host": "http://127.0.0.1:9001",
            "extra": {"msgtype": "text", "mention_all": True},
        },
        {"key": "bot-key-1"},
        {"msgtype": "text", "mention_all": True},
        "http://127.0.0.1:9001",
    ),
    "wecom_app": (
        {
            "conn_type": "alerts_wecom_app",
            "login": "ww0123456789",
            "password": "corp-secret-1",
            "extra": {"agent_id": 1000002, "msgtype": "markdown"},
        },
        {"corp_id": "ww0123456789", "corp_secret": "corp-secret-1", "agent_id": "1000002"},
        {"msgtype": "markdown"},
        None,
    ),
    "wechat_oa": (
        {
            "conn_type": "alerts_wechat_oa",
            "login": "wx0123456789",
            "password": "app-secret-1",
            "extra": {
                "template_id": "TPL-1",
                "url": "https://alerts.example.org/",
                "options": {"fields": {"first": "subject"}},
            },
        },
        {"app_id": "wx0123456789", "app_secret": "app-secret-1"},
        {
            "template_id": "TPL-1",
            "url": "https://alerts.example.org/",
            "fields": {"first": "subject"},
        },
        None,
    ),
    "weibo": (
        {
            "conn_type": "alerts_weibo",
            "password": "2.00token",
            "host": "api.weibo.example",
            "schema": "https",
            "port": 8443,
            "extra": {"safe_domain_url": "https://alerts.example.org/"},
        },
        {"access_token": "2.00token"},
        {"safe_domain_url": "https://alerts.example.org/"},
        "https://api.weibo.example:8443",
    ),
    "dingtalk": (
        {
            "conn_type": "alerts_dingtalk",
            "password": "ding-token",
            "extra": {
                "secret": "SECabc",
                "at_all": True,
                "options": {"at_mobiles": ["13800000000"]},
            },
        },
        {"access_token": "ding-token", "secret": "SECabc"},
        {"at_all": True, "at_mobiles": ["13800000000"]},
        None,
    ),
    "feishu": (
        {
            "conn_type": "alerts_feishu",
            "password": "hook-token",
            "host": "127.0.0.1",
            "schema": "http",
            "port": 9002,
            "extra": {"secret": "fs-secret", "msg_type": "text"},
        },
        {"token": "hook-token", "secret": "fs-secret"},
        {"msg_type": "text"},
        "http://127.0.0.1:9002",
    ),
    "sms": (
        {
            "conn_type": "alerts_sms",
            "login": "LTAIid",
            "password": "ak-secret",
            "extra": {
                "sign_name": "应急预警",
                "template_code": "SMS_123456789",
                "options": {"template_params": {"content": "text"}},
            },
        },
        {
            "access_key_id": "LTAIid",
            "access_key_secret": "ak-secret",
            "sign_name": "应急预警",
            "template_code": "SMS_123456789",
        },
        {"template_params": {"content": "text"}},
        None,
    ),
    "email": (
        {
            "conn_type": "alerts_email",
            "host": "smtp.example.org",
            "port": 465,
            "login": "alerts",
            "password": "mail-pw",
            "extra": {"from_addr": "预警发布 <alerts@example.org>", "ssl": True},
        },
        {
            "smtp_host": "smtp.example.org",
            "from_addr": "预警发布 <alerts@example.org>",
            "username": "alerts",
            "password": "mail-pw",
        },
        {"smtp_port": 465, "ssl": True},
        None,
    ),
    "webhook": (
        {
            "conn_type": "alerts_webhook",
            "host": "https://receiver.example.org/alerts/hook",
            "password": "hmac-secret",
            "extra": {"idempotency_header": False},
        },
        {"secret": "hmac-secret"},
        {"idempotency_header": False},
        "https://receiver.example.org/alerts/hook",
    ),
}


def _define(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn: dict[str, Any] | str) -> None:
    value = conn if isinstance(conn, str) else json.dumps(conn)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)


def _secrets(settings: ChannelSettings) -> dict[str, str]:
    return {k: v.get_secret_value() for k, v in settings.credentials.items()}


# --- provider registration -------------------------------------------------------


def test_provider_info_lists_every_channel_type_with_an_importable_hook() -> None:
    from airflow.sdk import BaseHook
    from airflow.sdk._shared.module_loading import import_string

    from alerts_airflow.hooks import ChannelHook
    from alerts_airflow.provider import get_provider_info

    info = get_provider_info()
    assert info["package-name"] == "alerts"  # must equal the distribution name
    by_type = {c["connection-type"]: c for c in info["connection-types"]}
    assert set(by_type) == {f"alerts_{t}" for t in TYPES}
    for channel_type in TYPES:
        entry = by_type[f"alerts_{channel_type}"]
        assert entry["hook-class-name"].startswith("alerts_airflow.hooks.")
        hook = import_string(entry["hook-class-name"])
        assert issubclass(hook, ChannelHook) and issubclass(hook, BaseHook)
        assert hook.conn_type == entry["connection-type"]
        assert hook.channel_type == channel_type
        assert hook.conn_name_attr == "alerts_conn_id"
        assert hook.default_conn_name == f"alerts_{channel_type}_default"
        # Chinese first, English second.
        assert re.match(r"^[\u4e00-\u9fff]+.* [A-Za-z]", hook.hook_name), hook.hook_name
        assert entry["hook-name"] == hook.hook_name
        assert entry["ui-field-behaviour"]["hidden-fields"] == hook.spec().hidden_fields


def test_provider_info_is_valid_and_registered_as_entry_point() -> None:
    from airflow.providers_manager import _create_provider_info_schema_validator

    from alerts_airflow.provider import get_provider_info

    _create_provider_info_schema_validator().validate(get_provider_info())
    eps = entry_points(group="apache_airflow_provider")
    assert "alerts_airflow.provider:get_provider_info" in {ep.value for ep in eps}


def test_each_type_offers_exactly_the_documented_credentials() -> None:
    from alerts_airflow.spec import SPECS

    assert set(SPECS) == set(TYPES)
    for channel_type, spec in SPECS.items():
        assert set(spec.credential_keys) == DOC_CREDENTIALS[channel_type], channel_type
        secret_fields = [f.key for f in spec.credential_fields if f.secret]
        assert all("secret" in key for key in secret_fields)


def test_providers_manager_knows_the_form_of_alerts_wecom_bot() -> None:
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    meta = {m.connection_type: m for m in pm.iter_connection_type_hook_ui_metadata()}
    assert meta["alerts_wecom_bot"].hook_name == "企业微信群机器人 WeCom robot"
    assert meta["alerts_wecom_bot"].hook_class_name == "alerts_airflow.hooks.WeComBotHook"
    behaviour = pm.field_behaviours["alerts_wecom_bot"]
    assert "login" in behaviour["hidden_fields"]
    assert "Robot key" in behaviour["relabeling"]["password"]
    widgets = pm.connection_form_widgets
    msgtype = widgets["extra__alerts_wecom_bot__msgtype"]
    assert msgtype.hook_class_name == "alerts_airflow.hooks.WeComBotHook"
    assert msgtype.field["schema"]["enum"] == ["markdown", "text"]
    assert widgets["extra__alerts_dingtalk__secret"].is_sensitive
    assert not widgets["extra__alerts_sms__sign_name"].is_sensitive
    for channel_type in TYPES:
        assert f"alerts_{channel_type}" in pm.field_behaviours


def test_the_ui_endpoint_serves_labelled_fields() -> None:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    meta = {m.connection_type: m for m in HookMetaService.hook_meta_data()}
    email = meta["alerts_email"]
    assert email.standard_fields is not None and email.extra_fields is not None
    assert email.standard_fields.url_schema is not None and email.standard_fields.url_schema.hidden
    assert email.standard_fields.host is not None
    assert email.standard_fields.host.title == "SMTP 服务器 SMTP host"
    assert list(email.extra_fields)[:3] == ["from_addr", "starttls", "ssl"]


def test_connection_get_hook_finds_our_hook() -> None:
    from airflow.sdk import Connection

    from alerts_airflow.hooks import DingTalkHook

    hook = Connection(conn_id="duty_ding", conn_type="alerts_dingtalk").get_hook()
    assert isinstance(hook, DingTalkHook)
    assert hook.alerts_conn_id == "duty_ding"


# --- connection -> ChannelSettings ---------------------------------------------


@pytest.mark.parametrize("channel_type", TYPES)
def test_connection_becomes_channel_settings(
    channel_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alerts_airflow.hooks import HOOKS, channel_settings_from_connection

    conn, credentials, options, base_url = CASES[channel_type]
    conn_id = f"alerts_t_{channel_type}"
    _define(monkeypatch, conn_id, conn)

    settings = channel_settings_from_connection(conn_id, recipients=["duty"])
    assert settings.type == channel_type
    assert settings.name == conn_id
    assert settings.recipients == ["duty"]
    assert _secrets(settings) == credentials
    assert settings.options == options
    assert settings.base_url == base_url

    # The hook of that type reads the same, with the brief's keyword signature.
    hook = HOOKS[f"alerts_{channel_type}"](conn_id)
    again = hook.channel_settings(name="duty-room", recipients=["duty"], audience="internal")
    assert again.name == "duty-room" and again.audience == "internal"
    assert _secrets(again) == credentials

    # And the channel module accepts it (builds offline; nothing is sent).
    module = importlib.import_module(f"alerts.channels.{channel_type}")
    module.build(settings, session=requests.Session(), clock=lambda: datetime.now(UTC))
    assert hook.test_connection()[0] is True


def test_uri_form_scheme_from_schema_and_string_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts_airflow.hooks import channel_settings_from_connection

    _define(
        monkeypatch,
        "bot_uri",
        "alerts-wecom-bot://:k%2F1@127.0.0.1:9003/http?mention_all=true&msgtype=text"
        "&rate_per_minute=10&audience=internal",
    )
    settings = channel_settings_from_connection("bot_uri", channel_type="wecom_bot")
    assert settings.base_url == "http://127.0.0.1:9003"
    assert _secrets(settings) == {"key": "k/1"}
    assert settings.options == {"mention_all": True, "msgtype": "text"}
    assert settings.rate_per_minute == 10
    assert settings.audience == "internal"


def test_credentials_may_come_from_extra_and_standard_fields_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alerts_airflow.hooks import channel_settings_from_connection

    _define(
        monkeypatch,
        "feishu_extra",
        {"conn_type": "alerts_feishu", "extra": {"token": "from-extra", "secret": "s"}},
    )
    assert _secrets(channel_settings_from_connection("feishu_extra"))["token"] == "from-extra"
    _define(
        monkeypatch,
        "feishu_both",
        {"conn_type": "alerts_feishu", "password": "from-field", "extra": {"token": "x"}},
    )
    assert _secrets(channel_settings_from_connection("feishu_both"))["token"] == "from-field"


def test_overrides_merge_options_and_name_defaults_to_a_valid_channel_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from alerts_airflow.hooks import channel_settings_from_connection

    _define(
        monkeypatch,
        "Duty.Room",
        {
            "conn_type": "alerts_dingtalk",
            "password": "t",
            "extra": {"msgtype": "text", "timeout_s": "5", "options": '{"at_all": true}'},
        },
    )
    settings = channel_settings_from_connection(
        "Duty.Room", options={"at_mobiles": ["13800000000"]}, max_attempts=3
    )
    assert settings.name == "duty-room"
    assert settings.options == {"msgtype": "text", "at_all": True, "at_mobiles": ["13800000000"]}
    assert settings.timeout_s == 5.0 and settings.max_attempts == 3
    assert settings.recipients == ["public"]  # ChannelSettings' default


# --- clear errors ---------------------------------------------------------------


def test_a_foreign_conn_type_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts_airflow.hooks import WeComBotHook, channel_settings_from_connection

    _define(monkeypatch, "plain_http", {"conn_type": "http", "host": "example.org"})
    with pytest.raises(ConfigError, match=r"'plain_http' has conn_type 'http'.*alerts_wecom_bot"):
        channel_settings_from_connection("plain_http")
    with pytest.raises(ConfigError, match=r"not 'alerts_wecom_bot'"):
        WeComBotHook("plain_http").channel_settings(name="x", recipients=["y"])


def test_a_connection_of_another_channel_type_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts_airflow.hooks import WeComBotHook, channel_settings_from_connection

    _define(monkeypatch, "a_dingtalk", {"conn_type": "alerts_dingtalk", "password": "t"})
    with pytest.raises(ConfigError, match=r"is a dingtalk connection .* not wecom_bot"):
        channel_settings_from_connection("a_dingtalk", channel_type="wecom_bot")
    with pytest.raises(ConfigError, match=r"conn_type 'alerts_dingtalk', not 'alerts_wecom_bot'"):
        WeComBotHook("a_dingtalk").get_conn()
    with pytest.raises(ConfigError, match=r"channel type 'outbox'"):
        channel_settings_from_connection("a_dingtalk", channel_type="outbox")


def test_unknown_extra_keys_and_bad_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts_airflow.hooks import channel_settings_from_connection

    _define(
        monkeypatch,
        "typo",
        {"conn_type": "alerts_dingtalk", "password": "t", "extra": {"secert": "s"}},
    )
    with pytest.raises(ConfigError, match=r"unknown extra key\(s\) secert .*known: access_token"):
        channel_settings_from_connection("typo")
    _define(
        monkeypatch,
        "bad_enum",
        {"conn_type": "alerts_wecom_bot", "password": "k", "extra": {"msgtype": "news"}},
    )
    with pytest.raises(ConfigError, match=r"extra.msgtype must be one of markdown, text"):
        channel_settings_from_connection("bad_enum")
    _define(
        monkeypatch,
        "bad_host",
        {"conn_type": "alerts_weibo", "password": "t", "host": "ftp://example.org"},
    )
    with pytest.raises(ConfigError, match=r"host must be an http\(s\) address"):
        channel_settings_from_connection("bad_host")
    _define(
        monkeypatch,
        "clash",
        {
            "conn_type": "alerts_feishu",
            "password": "t",
            "extra": {"msg_type": "text", "options": {"msg_type": "post"}},
        },
    )
    with pytest.raises(ConfigError, match=r"option msg_type given twice"):
        channel_settings_from_connection("clash")


def test_settings_errors_never_echo_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts_airflow.hooks import channel_settings_from_connection

    _define(
        monkeypatch,
        "bad_rate",
        {"conn_type": "alerts_webhook", "password": "hush-hush", "extra": {"rate_per_minute": -1}},
    )
    with pytest.raises(ConfigError) as err:
        channel_settings_from_connection("bad_rate")
    assert "rate_per_minute" in str(err.value) and "hush-hush" not in str(err.value)


def test_test_button_reports_a_missing_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts_airflow.hooks import AliyunSmsHook

    _define(monkeypatch, "sms_half", {"conn_type": "alerts_sms", "login": "id", "password": "s"})
    ok, message = AliyunSmsHook("sms_half").test_connection()
    assert not ok and "sign_name" in message


# --- the boundary ---------------------------------------------------------------


def test_the_core_package_never_imports_airflow() -> None:
    offenders = []
    for path in sorted((ROOT / "alerts").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.lstrip()
            if stripped.startswith(("import airflow", "from airflow")):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    assert not offenders, offenders
