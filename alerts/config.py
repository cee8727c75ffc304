"""The one place that reads configuration.

Settings come, strongest first, from keyword arguments, ``ALERTS_*``
environment variables (nested keys joined by ``__``, e.g.
``ALERTS_FEEDS__USGS_URL``), the YAML file named by ``ALERTS_CONFIG``, and the
defaults below. Everything is validated at load time: a bad value fails with
:class:`ConfigError` naming the key, before any feed is fetched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

__all__ = ["CapFeed", "ChannelSettings", "ConfigError", "FeedSettings", "Settings", "load_settings"]

USGS_DEFAULT_URL = "https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/4.5_day.geojson"
CENC_DEFAULT_URL = "https://www.cenc.ac.cn/prodlaunch-web-backend/open/data/catalogs"


# ALERTS_* variables that are not settings (read by the test suite, not the app).
# Environment variables named ALERTS_* that are not settings of the core:
# the test suite's PostgreSQL, and the DAGs' retry delay (alerts_airflow.dagkit).
_NOT_SETTINGS = {"ALERTS_TEST_PG", "ALERTS_AIRFLOW_RETRY_DELAY_S"}


class ConfigError(ValueError):
    """Configuration is invalid; the message names every offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://", "file://")):
        raise ValueError("must be an http(s):// or file:// URL")
    return value


class CapFeed(_Section):
    """An official-warning source publishing CAP 1.2: an Atom index or one CAP document."""

    name: str = Field(min_length=1, pattern=r"^[a-z0-9_\-]+$")
    url: str
    min_interval_s: float = Field(120.0, ge=0)  # publishers ask for polite polling

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _url(value)


class FeedSettings(_Section):
    """Where and how feeds are fetched."""

    usgs_url: str = USGS_DEFAULT_URL
    cenc_url: str = CENC_DEFAULT_URL
    gdacs_url: str = "https://www.gdacs.org/xml/rss.xml"
    openmeteo_url: str = "https://api.open-meteo.com/v1/forecast"
    air_quality_url: str = "https://air-quality-api.open-meteo.com/v1/air-quality"
    locations_file: Path | None = None  # default: one point per prefecture
    openmeteo_batch_size: int = Field(50, ge=1, le=1000)
    cap_feeds: list[CapFeed] = Field(default_factory=list)
    connect_timeout_s: float = Field(5.0, gt=0, le=60)
    timeout_s: float = Field(20.0, gt=0, le=300)
    max_bytes: int = Field(32 * 1024 * 1024, gt=0)
    retries: int = Field(3, ge=0, le=10)
    user_agent: str = "alerts-early-warning/0.1 (+https://github.com/)"
    # The earthquake watcher (seismic_alerts' trigger): every watch_interval_s it
    # polls these sources with conditional GET; the minute fallback fetches
    # fallback_sources itself. The poll wait is most of the alert latency.
    watch_sources: list[Literal["usgs", "cenc"]] = ["usgs", "cenc"]
    watch_interval_s: float = Field(10.0, ge=5.0, le=300.0)
    fallback_sources: list[Literal["usgs", "cenc"]] = ["usgs"]

    @field_validator("usgs_url", "cenc_url", "gdacs_url", "openmeteo_url", "air_quality_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _url(value)


# Channel types; each but the outbox is a module alerts/channels/<type>.py.
ChannelType = Literal[
    "outbox",
    "wecom_bot",
    "wecom_app",
    "wechat_oa",
    "weibo",
    "dingtalk",
    "feishu",
    "sms",
    "email",
    "webhook",
]


class ChannelSettings(_Section):
    """One configured delivery channel and its static recipients.

    ``type`` selects the implementation in :mod:`alerts.channels`.
    """

    name: str = Field(min_length=1, pattern=r"^[a-z0-9_\-]+$")
    type: ChannelType
    enabled: bool = True
    # Static recipients: every publication goes to them (duty groups, robots, the
    # outbox's "public"); subscribers (alerts.subscribers) are matched per alert.
    recipients: list[str] = Field(default_factory=lambda: ["public"])
    language: str = "zh-CN"
    max_attempts: int = Field(5, ge=1, le=50)
    # Exercise and test alerts reach only "internal" and "responders" channels, never
    # "public" ones. "responders" channels (department duty groups) carry the response
    # procedure of each warning (alerts.responders: response level, who is on duty, each
    # department's tasks), not the public text; like internal ones they get exercises
    # too; they do not get the daily outlook or campaigns. Operator notices go to
    # "internal" channels only.
    audience: Literal["public", "internal", "responders"] = "public"
    # Where the vendor API lives (default: the vendor's own); a simulator or proxy otherwise.
    base_url: str | None = None
    timeout_s: float = Field(10.0, gt=0, le=120)
    # Secrets and account settings the channel type needs (see docs/channels.md), e.g.
    # key, secret, corp_id, corp_secret, agent_id, app_id, app_secret, access_token,
    # access_key_id, access_key_secret, sign_name, template_code, smtp_host, ...
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    # Non-secret per-channel options (message type, template id, mentions, ...).
    options: dict[str, Any] = Field(default_factory=dict)
    # Requests per minute this account may make; default: the vendor's documented limit.
    rate_per_minute: float | None = Field(None, gt=0)
    # A send interrupted mid-call (the worker died) on a channel that can neither
    # deduplicate nor confirm with the vendor: "hold" it as ``unknown`` for an
    # operator (never twice), or "resend" it (never lost, perhaps twice).
    on_unconfirmed: Literal["hold", "resend"] = "hold"
    # Recipients per vendor call, below the channel's own maximum (SMS and WeCom
    # application: 1000) when the account is limited further.
    batch_size: int | None = Field(None, ge=1)
    # Inside Airflow: take credentials, base_url, options, audience, rate and
    # timeout from this Airflow connection (type alerts_<type>) instead of here.
    connection: str | None = None

    def secret(self, key: str) -> str:
        """A credential, or a ConfigError naming the channel and the missing key."""
        value = self.credentials.get(key)
        if value is None or not value.get_secret_value():
            raise ConfigError(f"channels.{self.name}.credentials.{key}: required for {self.type}")
        return value.get_secret_value()


class HazardTiming(_Section):
    downgrade_dwell_min: float = Field(ge=0)
    clear_after_min: float = Field(ge=0)


class LifecycleSettings(_Section):
    """Hysteresis and notification policy of alerts (see docs/lifecycle.md)."""

    downgrade_dwell_min: float = Field(60, ge=0)  # a lower level must hold this long
    clear_after_min: float = Field(60, ge=0)  # not warned this long before 解除
    per_hazard: dict[str, HazardTiming] = Field(
        default_factory=lambda: {
            "earthquake": HazardTiming(downgrade_dwell_min=0, clear_after_min=0)
        }
    )
    notify_expire: bool = False
    status: Literal["Actual", "Exercise", "Test"] = "Actual"

    @field_validator("per_hazard")
    @classmethod
    def _known_hazards(cls, value: dict[str, HazardTiming]) -> dict[str, HazardTiming]:
        from alerts.model import Hazard

        for name in value:
            Hazard(name)
        return value


class DeliverySettings(_Section):
    """The dispatcher's lease, backoff and claim size (see docs/delivery.md)."""

    # A claim older than this is taken as abandoned (its worker died); keep it
    # above the longest send (timeout_s x calls per claim).
    lease_s: float = Field(300, gt=0)
    # A dead worker's send is confirmed with the vendor no sooner than this after it
    # is found (a vendor's query API may lag its send API by some seconds).
    confirm_delay_s: float = Field(30, ge=0)
    backoff_s: float = Field(30, ge=0)  # the first retry's delay; doubles per attempt
    backoff_max_s: float = Field(900, ge=0)
    claim_size: int = Field(1000, ge=1, le=10000)  # rows per claim (channels batch within)


Colour = Literal["blue", "yellow", "orange", "red"]


class ApprovalSettings(_Section):
    """Which publications wait for a duty officer, and what a silent timeout does.

    By default weather and official warnings at orange and red wait (issue,
    update, upgrade, extend; never a cancellation or a downgrade); red
    publishes by itself after 10 minutes without an answer, orange waits for
    one; earthquakes publish at once; exercises follow ``exercise``.
    """

    levels: list[Colour] = ["orange", "red"]  # pydantic copies mutable defaults
    exempt_hazards: list[str] = Field(default_factory=lambda: ["earthquake"])
    exercise: Literal["auto", "approve"] = "auto"
    # minutes without an answer before on_timeout applies; missing: wait for ever
    timeout_min: dict[Colour, float] = {"red": 10.0}
    on_timeout: dict[Colour, Literal["publish", "reject"]] = {"red": "publish"}
    # Bulletins (the daily outlook, campaigns; alerts.bulletins): reviewed by the duty
    # officer too, and published as they are when nobody answers in time.
    bulletins: bool = True
    bulletin_timeout_min: float | None = Field(30.0, gt=0)
    bulletin_on_timeout: Literal["publish", "reject"] = "publish"

    @field_validator("exempt_hazards")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from alerts.model import Hazard

        for name in value:
            Hazard(name)
        return value


class HousekeepingSettings(_Section):
    """Stale-feed alarms and retention (the ``housekeeping`` DAG)."""

    # a feed is stale without a success within stale_factor x its interval (seconds,
    # by feed name or prefix; "cap:" covers every CAP source)
    stale_factor: float = Field(3.0, gt=1)
    intervals_s: dict[str, float] = {
        "usgs": 60.0,
        "cenc": 60.0,
        "gdacs": 300.0,
        "cap:": 300.0,
        "open-meteo": 3600.0,
    }
    retention_days: int = Field(90, ge=1)


class SubscriptionSettings(_Section):
    """Sign-ups that arrive by themselves (WeChat Official Account follows)."""

    # The configured wechat_oa channel whose followers subscribe, and the token
    # set in the account's server configuration (消息推送 Token).
    wechat_channel: str | None = None
    wechat_token: SecretStr | None = None
    # Areas, hazards and level a new follower starts with (they can be changed later).
    default_areas: list[str] = Field(default_factory=list)
    default_hazards: list[str] = Field(default_factory=list)
    default_min_level: str = "blue"


class OutlookSettings(_Section):
    """The daily 72-hour risk outlook (see docs/outlook.md)."""

    # An operator's own outlook.yaml (near-threshold share, seasonal calendar);
    # default: the packaged alerts/data/outlook.yaml.
    rules_file: Path | None = None
    # Adcode prefixes ("51", "5101") that get their own bulletin besides the national one.
    regions: list[str] = Field(default_factory=list)
    hour_local: int = Field(7, ge=0, le=23)  # local hour (Settings.timezone) it is issued at
    # Whether the national outlook is a bulletin of its own (a city bureau sets false
    # and lists its own prefix in `regions`).
    national: bool = True
    # Channels (configured names) the outlook bulletins go to; empty: every enabled
    # public channel. Subscribers get it when they asked for every level (blue).
    channels: list[str] = Field(default_factory=list)

    @field_validator("regions", mode="before")
    @classmethod
    def _prefixes(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        for prefix in value:  # YAML may read an unquoted 51 as a number
            if not (str(prefix).isdigit() and 2 <= len(str(prefix)) <= 6):
                raise ValueError(f"region prefix {prefix!r} is not 2-6 digits of an adcode")
        return [str(p) for p in value]


class CapSettings(_Section):
    """Who publishes: the CAP sender and the GB/T 35965.1 identifier parts."""

    sender: str = Field("alerts@example.gov.cn", min_length=1)
    sender_name_en: str = "Emergency Warning Release Centre"
    adcode: str = Field("000000", pattern=r"^\d{6}$")  # the issuer's admin division
    agency_code: str = Field("000", pattern=r"^\d{3}$")


class Settings(BaseSettings):
    """The validated settings of one process."""

    model_config = SettingsConfigDict(
        env_prefix="ALERTS_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Field(default_factory=lambda: Path.home() / ".alerts")
    store_url: str = ""
    config: Path | None = None
    feeds: FeedSettings = Field(default_factory=lambda: FeedSettings.model_validate({}))
    channels: list[ChannelSettings] = Field(
        default_factory=lambda: [
            ChannelSettings.model_validate({"name": "outbox", "type": "outbox"})
        ]
    )
    rules_dir: Path | None = None  # a copy of alerts/criteria/rules; missing files: packaged
    # Operator message templates, laid out like alerts/templates (<hazard>/<family>.<lang>.j2);
    # searched first, the packaged templates fill in the rest (see docs/messages.md).
    templates_dir: Path | None = None
    regions_file: Path | None = None
    # Response procedures per hazard and level (a copy of alerts/data/responders.yaml,
    # see docs/responders.md); missing: the packaged file.
    responders_file: Path | None = None
    # An operator's campaigns.yaml (places, campaigns; see docs/campaigns.md); missing:
    # the packaged alerts/data/campaigns.yaml.
    campaigns_file: Path | None = None
    language: str = "zh-CN"
    timezone: str = "Asia/Shanghai"
    issuer_zh: str = "应急管理局预警发布中心"
    lifecycle: LifecycleSettings = Field(
        default_factory=lambda: LifecycleSettings.model_validate({})
    )
    cap: CapSettings = Field(default_factory=lambda: CapSettings.model_validate({}))
    delivery: DeliverySettings = Field(default_factory=lambda: DeliverySettings.model_validate({}))
    approval: ApprovalSettings = Field(default_factory=lambda: ApprovalSettings.model_validate({}))
    housekeeping: HousekeepingSettings = Field(
        default_factory=lambda: HousekeepingSettings.model_validate({})
    )
    subscriptions: SubscriptionSettings = Field(
        default_factory=lambda: SubscriptionSettings.model_validate({})
    )
    outlook: OutlookSettings = Field(default_factory=lambda: OutlookSettings.model_validate({}))
    details_url: str = "http://localhost:8080/"

    @field_validator("store_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @field_validator("templates_dir")
    @classmethod
    def _a_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a folder")
        return value

    @field_validator("responders_file")
    @classmethod
    def _a_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, value: list[ChannelSettings]) -> list[ChannelSettings]:
        names = [c.name for c in value]
        if len(names) != len(set(names)):
            raise ValueError(f"channel names must be unique, got {names}")
        return value

    @property
    def resolved_store_url(self) -> str:
        """The store URL; by default a SQLite file under ``home``."""
        return self.store_url or f"sqlite:///{(self.home / 'alerts.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_path = os.environ.get("ALERTS_CONFIG")
        if yaml_path:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Load and validate settings, or raise :class:`ConfigError` naming the bad keys."""
    yaml_path = os.environ.get("ALERTS_CONFIG")
    if yaml_path and not Path(yaml_path).is_file():
        raise ConfigError(f"ALERTS_CONFIG: file {yaml_path} does not exist")
    unknown = sorted(
        key
        for key in os.environ
        if key.startswith("ALERTS_")
        and key not in _NOT_SETTINGS
        and key[len("ALERTS_") :].split("__")[0].lower() not in Settings.model_fields
    )
    if unknown:
        known = ", ".join("ALERTS_" + name.upper() for name in Settings.model_fields)
        raise ConfigError(f"unknown setting {', '.join(unknown)} (known: {known})")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, yaml_path)) from None
    except Exception as exc:  # YAML syntax errors and unreadable files
        raise ConfigError(f"ALERTS_CONFIG {yaml_path}: {exc}") from None


def _describe(exc: ValidationError, yaml_path: str | None) -> str:
    lines = ["invalid configuration:"]
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        if any(isinstance(p, int) for p in err["loc"]):  # inside a list: YAML or JSON env
            top = "ALERTS_" + str(err["loc"][0]).upper()
            where = f"{dotted} (in {yaml_path or top + ' as JSON'})"
        else:
            env = "ALERTS_" + "__".join(str(p) for p in err["loc"]).upper()
            where = f"{dotted} (env {env}" + (f" or {yaml_path}" if yaml_path else "") + ")"
        lines.append(f"  {where}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)
