"""What each channel's Airflow connection looks like: pure data, no Airflow import.

One :class:`ChannelSpec` per channel type says which credential lives in which
standard connection field (login / password / host), which credentials and
options are extra fields (Airflow 3 "conn-fields", stored flat in the
connection's ``extra`` JSON), and how the standard fields are relabelled or
hidden in the UI. :mod:`alerts_airflow.provider` publishes it to Airflow and
:mod:`alerts_airflow.hooks` reads connections with it, so the form and the
mapping cannot drift apart.

The credential keys are those of docs/channels.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["COMMON_FIELDS", "SPECS", "ChannelSpec", "ExtraField", "conn_type_of"]

CONN_TYPE_PREFIX = "alerts_"

Kind = Literal["string", "boolean", "integer", "number"]


@dataclass(frozen=True)
class ExtraField:
    """A field kept in the connection's ``extra`` JSON under ``key``."""

    key: str
    label: str
    kind: Kind = "string"
    secret: bool = False  # masked in the UI and the API ("format": "password")
    enum: tuple[str, ...] = ()
    description: str | None = None

    def conn_field(self) -> dict[str, Any]:
        """The ``conn-fields`` entry of provider info (Airflow 3 declarative form fields)."""
        schema: dict[str, Any] = {"type": [self.kind, "null"]}
        if self.secret:
            schema["format"] = "password"
        if self.enum:
            schema["enum"] = list(self.enum)
        entry: dict[str, Any] = {"label": self.label, "schema": schema}
        if self.description:
            entry["description"] = self.description
        return entry


# ChannelSettings fields (not credentials, not options) an account may set in extra.
COMMON_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "audience",
        "受众 Audience",
        enum=("public", "internal", "responders"),
        description="internal: receives exercises and tests; public: real alerts only "
        "(default public); responders: each warning's response procedure for departments",
    ),
    ExtraField(
        "rate_per_minute",
        "每分钟上限 Requests per minute",
        kind="number",
        description="Default: the vendor's documented limit for this account",
    ),
    ExtraField("timeout_s", "超时（秒） Timeout (s)", kind="number", description="Default 10"),
)

# Advanced options that are not simple fields go into extra as {"options": {...}}.
OPTIONS_KEY = "options"

_BASE_URL_LABELS = {
    "host": "API 地址（可选，默认官方） API host (optional)",
    "schema": "协议 Scheme",
    "port": "端口 Port",
}


@dataclass(frozen=True)
class ChannelSpec:
    """How one channel type maps onto an Airflow connection."""

    channel_type: str
    hook_class: str
    hook_name: str  # Chinese first, English second
    login: str | None = None  # credential key kept in the login field
    password: str | None = None  # credential key kept in the password field
    # "base_url": host (+ schema as scheme, + port) is the API address (a proxy or
    # simulator); otherwise the credential key kept in the host field; None: hidden.
    host: str | None = "base_url"
    port_option: str | None = None  # the option key the port field fills (host is a credential)
    credential_fields: tuple[ExtraField, ...] = ()
    option_fields: tuple[ExtraField, ...] = ()
    relabeling: dict[str, str] = field(default_factory=dict)
    placeholders: dict[str, str] = field(default_factory=dict)

    @property
    def conn_type(self) -> str:
        return CONN_TYPE_PREFIX + self.channel_type

    @property
    def credential_keys(self) -> tuple[str, ...]:
        """Every credential of this type, in the order of docs/channels.md."""
        standard = [self.login, self.password]
        if self.host not in (None, "base_url"):
            standard.append(self.host)
        keys = [k for k in standard if k] + [f.key for f in self.credential_fields]
        return tuple(keys)

    @property
    def hidden_fields(self) -> list[str]:
        hidden = []
        if self.login is None:
            hidden.append("login")
        if self.password is None:
            hidden.append("password")
        if self.host is None:
            hidden += ["host", "schema", "port"]
        elif self.host != "base_url":
            hidden.append("schema")
            if self.port_option is None:
                hidden.append("port")
        return hidden

    @property
    def extra_fields(self) -> tuple[ExtraField, ...]:
        return self.credential_fields + self.option_fields + COMMON_FIELDS

    def field_behaviour(self) -> dict[str, Any]:
        """Hidden, relabelled and placeholder-filled standard fields (Python-style keys)."""
        relabeling = dict(_BASE_URL_LABELS) if self.host == "base_url" else {}
        relabeling.update(self.relabeling)
        placeholders = {"schema": "https", "port": "443"} if self.host == "base_url" else {}
        placeholders.update(self.placeholders)
        return {
            "hidden_fields": self.hidden_fields,
            "relabeling": relabeling,
            "placeholders": placeholders,
        }

    def connection_type_info(self, module: str) -> dict[str, Any]:
        """This type's entry in provider info ``connection-types``."""
        behaviour = self.field_behaviour()
        return {
            "connection-type": self.conn_type,
            "hook-class-name": f"{module}.{self.hook_class}",
            "hook-name": self.hook_name,
            "conn-fields": {f.key: f.conn_field() for f in self.extra_fields},
            "ui-field-behaviour": {
                "hidden-fields": behaviour["hidden_fields"],
                "relabeling": behaviour["relabeling"],
                "placeholders": behaviour["placeholders"],
            },
        }


_MSGTYPE_HELP = "Default {0}"
_OPTIONS_HELP = 'More options in Extra as {{"options": {{...}}}}: {0}'

SPECS: dict[str, ChannelSpec] = {
    spec.channel_type: spec
    for spec in (
        ChannelSpec(
            channel_type="wecom_bot",
            hook_class="WeComBotHook",
            hook_name="企业微信群机器人 WeCom robot",
            password="key",
            option_fields=(
                ExtraField(
                    "msgtype",
                    "消息类型 Message type",
                    enum=("markdown", "text"),
                    description=_MSGTYPE_HELP.format("markdown"),
                ),
                ExtraField("mention_all", "@所有人 Mention all (text only)", kind="boolean"),
            ),
            relabeling={"password": "机器人 Key 或 Webhook 地址 Robot key or webhook URL"},
            placeholders={
                "password": "key, or https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...",
                "host": "qyapi.weixin.qq.com",
            },
        ),
        ChannelSpec(
            channel_type="wecom_app",
            hook_class="WeComAppHook",
            hook_name="企业微信应用 WeCom app",
            login="corp_id",
            password="corp_secret",
            credential_fields=(ExtraField("agent_id", "应用 AgentId Agent ID", kind="integer"),),
            option_fields=(
                ExtraField(
                    "msgtype",
                    "消息类型 Message type",
                    enum=("text", "markdown"),
                    description=_MSGTYPE_HELP.format("text"),
                ),
            ),
            relabeling={"login": "企业ID Corp ID", "password": "应用 Secret App secret"},
            placeholders={"login": "ww0123456789abcdef", "host": "qyapi.weixin.qq.com"},
        ),
        ChannelSpec(
            channel_type="wechat_oa",
            hook_class="WeChatOAHook",
            hook_name="微信公众号 WeChat Official Account",
            login="app_id",
            password="app_secret",
            option_fields=(
                ExtraField(
                    "mode",
                    "发送方式 Mode",
                    enum=("template", "mass", "article"),
                    description="template: template message to each openid (default); "
                    "mass: mass send to a tag; article: bulletins as an article "
                    "(draft, then publish or push)",
                ),
                ExtraField(
                    "template_id",
                    "模板ID Template ID",
                    description="Template mode. "
                    + _OPTIONS_HELP.format('{"fields": {"first": "subject"}}'),
                ),
                ExtraField("url", "模板跳转链接 Template link URL"),
                ExtraField("tag_id", "标签ID Tag ID", kind="integer", description="mass mode"),
                ExtraField(
                    "thumb_media_id",
                    "封面素材ID Cover media_id",
                    description="article mode (required): a permanent image material",
                ),
                ExtraField("author", "作者 Author", description="article mode, at most 16"),
                ExtraField(
                    "push",
                    "群发推送 Push to followers",
                    kind="boolean",
                    description="article mode: mass-send the article instead of publishing it",
                ),
            ),
            relabeling={"login": "开发者ID AppID", "password": "开发者密码 AppSecret"},
            placeholders={
                "login": "wx0123456789abcdef",
                "host": "api.weixin.qq.com",
            },
        ),
        ChannelSpec(
            channel_type="weibo",
            hook_class="WeiboHook",
            hook_name="微博 Weibo",
            password="access_token",
            option_fields=(
                ExtraField(
                    "safe_domain_url",
                    "安全域名链接 Safe-domain link",
                    description="Required: an http(s) link on the app's safe domain",
                ),
            ),
            relabeling={"password": "Access token（用户授权） User access token"},
            placeholders={"host": "api.weibo.com"},
        ),
        ChannelSpec(
            channel_type="dingtalk",
            hook_class="DingTalkHook",
            hook_name="钉钉机器人 DingTalk robot",
            password="access_token",
            credential_fields=(
                ExtraField(
                    "secret",
                    "加签密钥 Signing secret",
                    secret=True,
                    description="SEC..., when the robot's security setting is 加签",
                ),
            ),
            option_fields=(
                ExtraField(
                    "msgtype",
                    "消息类型 Message type",
                    enum=("markdown", "text"),
                    description=_MSGTYPE_HELP.format("markdown"),
                ),
                ExtraField(
                    "at_all",
                    "@所有人 At all",
                    kind="boolean",
                    description=_OPTIONS_HELP.format('{"at_mobiles": ["13800000000"]}'),
                ),
            ),
            relabeling={"password": "access_token 或 Webhook 地址 Access token or webhook URL"},
            placeholders={
                "host": "oapi.dingtalk.com",
            },
        ),
        ChannelSpec(
            channel_type="feishu",
            hook_class="FeishuHook",
            hook_name="飞书机器人 Feishu bot",
            password="token",
            credential_fields=(
                ExtraField(
                    "secret",
                    "签名校验密钥 Signing secret",
                    secret=True,
                    description="When the bot's security setting is 签名校验",
                ),
            ),
            option_fields=(
                ExtraField(
                    "msg_type",
                    "消息类型 Message type",
                    enum=("post", "text"),
                    description=_MSGTYPE_HELP.format("post"),
                ),
            ),
            relabeling={"password": "Webhook token 或地址 Hook token or URL"},
            placeholders={"host": "open.feishu.cn"},
        ),
        ChannelSpec(
            channel_type="sms",
            hook_class="AliyunSmsHook",
            hook_name="阿里云短信 Aliyun SMS",
            login="access_key_id",
            password="access_key_secret",
            credential_fields=(
                ExtraField("sign_name", "短信签名 Sign name"),
                ExtraField(
                    "template_code",
                    "模板CODE Template code",
                    description="SMS_123456789. "
                    + _OPTIONS_HELP.format('{"template_params": {"content": "text"}}'),
                ),
            ),
            relabeling={"login": "AccessKey ID", "password": "AccessKey Secret"},
            placeholders={
                "login": "LTAI...",
                "host": "dysmsapi.aliyuncs.com",
            },
        ),
        ChannelSpec(
            channel_type="email",
            hook_class="EmailHook",
            hook_name="电子邮件 E-mail (SMTP)",
            login="username",
            password="password",
            host="smtp_host",
            port_option="smtp_port",
            credential_fields=(
                ExtraField(
                    "from_addr",
                    "发件人 From address",
                    description="预警发布 <alerts@example.gov.cn>",
                ),
            ),
            option_fields=(
                ExtraField(
                    "starttls", "STARTTLS", kind="boolean", description="Default: on for port 587"
                ),
                ExtraField(
                    "ssl", "SSL/TLS", kind="boolean", description="Default: on for port 465"
                ),
            ),
            relabeling={
                "host": "SMTP 服务器 SMTP host",
                "port": "SMTP 端口 SMTP port",
                "login": "用户名（可选） Username (optional)",
                "password": "密码 Password",
            },
            placeholders={
                "host": "smtp.example.gov.cn",
                "port": "587 (465 with SSL)",
            },
        ),
        ChannelSpec(
            channel_type="webhook",
            hook_class="WebhookHook",
            hook_name="通用回调 Generic webhook",
            password="secret",
            option_fields=(
                ExtraField(
                    "idempotency_header",
                    "发送 Idempotency-Key 头 Send Idempotency-Key",
                    kind="boolean",
                    description="Default on",
                ),
            ),
            relabeling={"host": "回调地址 Webhook URL", "password": "HMAC 签名密钥 HMAC secret"},
            placeholders={"host": "https://receiver.example.org/alerts"},
        ),
    )
}


def conn_type_of(channel_type: str) -> str:
    """The Airflow connection type of a channel type (``wecom_bot`` -> ``alerts_wecom_bot``)."""
    return CONN_TYPE_PREFIX + channel_type
