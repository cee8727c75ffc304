"""Hooks: an Airflow connection of type ``alerts_<channel type>`` -> ChannelSettings.

Each channel type has a hook class (``WeComBotHook`` for ``alerts_wecom_bot``,
...). A hook only reads its connection; sending stays in
:mod:`alerts.channels`::

    settings = channel_settings_from_connection("duty_room", recipients=["duty-group"])
    channel = build_channel(settings, store=store, clock=clock)

Where each value comes from (per type, see :mod:`alerts_airflow.spec`):

* credentials: the login / password (/ host for e-mail) field the type assigns
  to a credential, else the same key in ``extra`` (a non-empty standard field
  wins);
* ``base_url``: ``host`` (with ``schema`` as the scheme, default https, and
  ``port``) when given, else the vendor's default;
* options: the type's option fields in ``extra`` plus ``extra["options"]`` (a
  JSON object, for options that are not simple fields); the e-mail port is
  ``options.smtp_port``;
* ``audience``, ``rate_per_minute``, ``timeout_s``: the same keys in ``extra``.

Any other ``extra`` key is refused with a :class:`~alerts.config.ConfigError`
naming it, as a typo in a credential's name would otherwise only show up when
the channel is built.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import requests
from airflow.sdk import BaseHook
from pydantic import ValidationError

from alerts.config import ChannelSettings, ConfigError
from alerts_airflow.spec import COMMON_FIELDS, OPTIONS_KEY, SPECS, ChannelSpec, ExtraField

if TYPE_CHECKING:
    from airflow.sdk import Connection

__all__ = [
    "HOOKS",
    "AliyunSmsHook",
    "ChannelHook",
    "DingTalkHook",
    "EmailHook",
    "FeishuHook",
    "WeChatOAHook",
    "WeComAppHook",
    "WeComBotHook",
    "WebhookHook",
    "WeiboHook",
    "channel_settings_from_connection",
    "hook_class_for",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ChannelHook(BaseHook):
    """Reads one delivery channel's account from an Airflow connection.

    Subclasses name their channel type: ``class WeComBotHook(ChannelHook,
    channel_type="wecom_bot")``; ``conn_type``, ``hook_name`` and
    ``default_conn_name`` follow from :data:`alerts_airflow.spec.SPECS`.
    """

    channel_type: ClassVar[str] = ""
    conn_name_attr = "alerts_conn_id"
    default_conn_name = ""
    conn_type = ""
    hook_name = ""

    def __init_subclass__(cls, *, channel_type: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if channel_type is None:  # a further subclass keeps its parent's type
            return
        spec = SPECS[channel_type]
        cls.channel_type = channel_type
        cls.conn_type = spec.conn_type
        cls.hook_name = spec.hook_name
        cls.default_conn_name = f"{spec.conn_type}_default"

    def __init__(self, alerts_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.alerts_conn_id = alerts_conn_id or self.default_conn_name

    @classmethod
    def spec(cls) -> ChannelSpec:
        return SPECS[cls.channel_type]

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The form's standard fields (Airflow 2 style; 3.3 reads provider info instead)."""
        return cls.spec().field_behaviour()

    def get_conn(self) -> ChannelSettings:
        """The channel settings of this hook's connection (name from the connection id)."""
        return self.channel_settings()

    def channel_settings(
        self, *, name: str | None = None, recipients: list[str] | None = None, **overrides: Any
    ) -> ChannelSettings:
        """Our settings from the connection ``alerts_conn_id``.

        ``name`` defaults to the connection id (made a valid channel name),
        ``recipients`` to ChannelSettings' default. ``overrides`` are further
        ChannelSettings fields (``audience``, ``max_attempts``, ``language``,
        ...); ``options`` and ``credentials`` given here are merged key by key
        over the connection's.
        """
        conn = self.get_connection(self.alerts_conn_id)
        return self.settings_from_connection(conn, name=name, recipients=recipients, **overrides)

    @classmethod
    def settings_from_connection(
        cls,
        conn: Connection,
        *,
        name: str | None = None,
        recipients: list[str] | None = None,
        **overrides: Any,
    ) -> ChannelSettings:
        """ChannelSettings from an already fetched connection of this hook's type."""
        where = f"connection {conn.conn_id!r} ({conn.conn_type})"
        if conn.conn_type != cls.conn_type:
            raise ConfigError(
                f"connection {conn.conn_id!r} has conn_type {conn.conn_type!r}, "
                f"not {cls.conn_type!r} ({cls.hook_name})"
            )
        spec = cls.spec()
        extra = _extra(conn)
        _refuse_unknown(spec, extra, where)

        data: dict[str, Any] = {
            "name": name if name is not None else _channel_name(conn.conn_id),
            "type": spec.channel_type,
            "credentials": _credentials(spec, conn, extra, where),
            "options": _options(spec, conn, extra, where),
        }
        for fld in COMMON_FIELDS:
            value = _present(extra.get(fld.key))
            if value is not None:
                data[fld.key] = _coerce(fld, value, where)
        if spec.host == "base_url":
            base_url = _base_url(conn.host, conn.schema, conn.port, where)
            if base_url:
                data["base_url"] = base_url
        if recipients is not None:
            data["recipients"] = list(recipients)
        for key, value in overrides.items():
            if key == "type":
                raise ConfigError(f"{where}: the channel type follows from the conn_type")
            if key in ("credentials", "options") and isinstance(value, Mapping):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        try:
            return ChannelSettings.model_validate(data)
        except ValidationError as exc:
            # loc and msg only: the input may be a secret.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigError(f"{where}: {problems}") from None

    def test_connection(self) -> tuple[bool, str]:
        """Build the channel from the connection without sending anything ("Test" button)."""
        try:
            settings = self.channel_settings()
            module = importlib.import_module(f"alerts.channels.{settings.type}")
            module.build(settings, session=requests.Session(), clock=lambda: datetime.now(UTC))
        except Exception as exc:  # the button shows the message
            return False, str(exc)
        return True, (
            "配置有效，未发送消息 Configuration is valid; nothing was sent "
            "(`alerts send-test` sends a test message)"
        )


class WeComBotHook(ChannelHook, channel_type="wecom_bot"):
    """企业微信群机器人: the robot key (password)."""


class WeComAppHook(ChannelHook, channel_type="wecom_app"):
    """企业微信应用: corp id (login), app secret (password), agent id (extra)."""


class WeChatOAHook(ChannelHook, channel_type="wechat_oa"):
    """微信公众号: AppID (login), AppSecret (password)."""


class WeiboHook(ChannelHook, channel_type="weibo"):
    """微博: the user access token (password)."""


class DingTalkHook(ChannelHook, channel_type="dingtalk"):
    """钉钉机器人: access token (password), signing secret (extra)."""


class FeishuHook(ChannelHook, channel_type="feishu"):
    """飞书机器人: hook token (password), signing secret (extra)."""


class AliyunSmsHook(ChannelHook, channel_type="sms"):
    """阿里云短信: AccessKey id (login) and secret (password), sign name, template code."""


class EmailHook(ChannelHook, channel_type="email"):
    """SMTP e-mail: host, port, username (login), password, from address (extra)."""


class WebhookHook(ChannelHook, channel_type="webhook"):
    """Generic webhook: URL (host), HMAC secret (password)."""


HOOKS: dict[str, type[ChannelHook]] = {
    cls.conn_type: cls
    for cls in (
        WeComBotHook,
        WeComAppHook,
        WeChatOAHook,
        WeiboHook,
        DingTalkHook,
        FeishuHook,
        AliyunSmsHook,
        EmailHook,
        WebhookHook,
    )
}


def hook_class_for(conn_type: str | None, *, conn_id: str = "?") -> type[ChannelHook]:
    """The hook class of an ``alerts_*`` connection type, or a ConfigError naming the types."""
    try:
        return HOOKS[conn_type or ""]
    except KeyError:
        raise ConfigError(
            f"connection {conn_id!r} has conn_type {conn_type!r}, which is not an alert "
            f"channel; use one of {', '.join(HOOKS)}"
        ) from None


def channel_settings_from_connection(
    conn_id: str,
    *,
    channel_type: str | None = None,
    name: str | None = None,
    recipients: list[str] | None = None,
    **overrides: Any,
) -> ChannelSettings:
    """ChannelSettings from the Airflow connection ``conn_id``, whatever its channel type.

    The hook is chosen by the connection's conn_type; ``channel_type``, when
    given, must agree with it. See :meth:`ChannelHook.channel_settings`.
    """
    if channel_type is not None and channel_type not in SPECS:
        raise ConfigError(
            f"no Airflow connection type for channel type {channel_type!r} "
            f"(known: {', '.join(SPECS)})"
        )
    conn = BaseHook.get_connection(conn_id)
    hook_cls = hook_class_for(conn.conn_type, conn_id=conn_id)
    if channel_type is not None and hook_cls.channel_type != channel_type:
        raise ConfigError(
            f"connection {conn_id!r} is a {hook_cls.channel_type} connection "
            f"({conn.conn_type}), not {channel_type}"
        )
    return hook_cls.settings_from_connection(conn, name=name, recipients=recipients, **overrides)


# --- mapping helpers -----------------------------------------------------------------


def _extra(conn: Connection) -> dict[str, Any]:
    """The extra JSON, with Airflow 2 style ``extra__<conn_type>__`` prefixes removed."""
    prefix = f"extra__{conn.conn_type}__"
    return {key.removeprefix(prefix): value for key, value in conn.extra_dejson.items()}


def _refuse_unknown(spec: ChannelSpec, extra: Mapping[str, Any], where: str) -> None:
    known = [*spec.credential_keys, *(f.key for f in spec.option_fields)]
    known += [f.key for f in COMMON_FIELDS] + [OPTIONS_KEY]
    unknown = sorted(set(extra) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: unknown extra key(s) {', '.join(unknown)} (known: {', '.join(known)}; "
            f'other channel options go under "{OPTIONS_KEY}")'
        )


def _present(value: Any) -> Any:
    """None for an absent or empty form value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _credentials(
    spec: ChannelSpec, conn: Connection, extra: Mapping[str, Any], where: str
) -> dict[str, str]:
    from airflow.sdk.log import mask_secret

    values: dict[str, str] = {}
    for key in spec.credential_keys:
        value = _present(extra.get(key))
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(f"{where}: extra.{key} must be text")
        values[key] = str(value).strip()
    standard: list[tuple[str | None, str | None]] = [(spec.login, conn.login)]
    if spec.host != "base_url":
        standard.append((spec.host, conn.host))
    for field_key, field_value in standard:
        if field_key and field_value is not None and _present(field_value) is not None:
            values[field_key] = field_value.strip()
    if spec.password and conn.password:  # as typed: a password may end in a space
        values[spec.password] = conn.password
    secret_keys = {f.key for f in spec.credential_fields if f.secret}
    if spec.password:
        secret_keys.add(spec.password)
    for secret_key in secret_keys & values.keys():
        mask_secret(values[secret_key])  # keep them out of task logs wherever they came from
    return values


def _options(
    spec: ChannelSpec, conn: Connection, extra: Mapping[str, Any], where: str
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for fld in spec.option_fields:
        value = _present(extra.get(fld.key))
        if value is not None:
            options[fld.key] = _coerce(fld, value, where)
    if spec.port_option and conn.port:
        options[spec.port_option] = int(conn.port)
    raw = _present(extra.get(OPTIONS_KEY))
    if raw is None:
        return options
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: extra.{OPTIONS_KEY} is not JSON ({exc.msg})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: extra.{OPTIONS_KEY} must be a JSON object")
    for key, value in raw.items():
        if key in options and options[key] != value:
            raise ConfigError(
                f"{where}: option {key} given twice with different values "
                f"({options[key]!r} as a field, {value!r} in extra.{OPTIONS_KEY})"
            )
        options[key] = value
    return options


def _coerce(fld: ExtraField, value: Any, where: str) -> Any:
    """A form or URI value as the field's kind (URI extras arrive as strings)."""
    what = f"{where}: extra.{fld.key}"
    if fld.kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ConfigError(f"{what} must be true or false, got {value!r}")
    if fld.kind in ("integer", "number"):
        if isinstance(value, bool):
            raise ConfigError(f"{what} must be a number, got {value!r}")
        try:
            return int(value) if fld.kind == "integer" else float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be text, got {value!r}")
    value = value.strip()
    if fld.enum and value not in fld.enum:
        raise ConfigError(f"{what} must be one of {', '.join(fld.enum)}, got {value!r}")
    return value


def _base_url(host: str | None, schema: str | None, port: int | None, where: str) -> str | None:
    """``scheme://host[:port][/path]`` from the host field, or None when it is empty."""
    host = (host or "").strip()
    if not host:
        return None
    if "://" not in host:
        host = f"{(schema or '').strip().lower() or 'https'}://{host}"
    parts = urlsplit(host)
    try:
        has_port = parts.port is not None
    except ValueError:
        raise ConfigError(f"{where}: host {host!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: host must be an http(s) address, got {host!r}")
    netloc = parts.netloc if has_port or not port else f"{parts.netloc}:{int(port)}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _channel_name(conn_id: str) -> str:
    """A valid channel name ([a-z0-9_-]) from a connection id."""
    return re.sub(r"[^a-z0-9_\-]+", "-", conn_id.lower()).strip("-") or "channel"
