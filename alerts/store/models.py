"""Tables of the alert store (SQLAlchemy 2 declarative).

Changing a table here needs an Alembic revision in ``migrations/versions``;
``tests/test_store.py`` fails when the two disagree.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Alert",
    "AlertVersion",
    "AuditEntry",
    "Base",
    "Delivery",
    "DeliveryMessage",
    "Event",
    "EventAlias",
    "FeedPayload",
    "FeedState",
    "InboundEvent",
    "OutboxMessage",
    "Publication",
    "QuarantinedRecord",
    "RateEvent",
    "Subscriber",
    "UTCDateTime",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store: pass UTC-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class FeedPayload(Base):
    """A fetched feed body, kept so every cycle can be replayed and audited."""

    __tablename__ = "feed_payloads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32), index=True)
    url: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime]
    status_code: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class FeedState(Base):
    """Per feed: conditional-GET validators, cursor, and the last success and failure.

    Kept so staleness can be shown and alarmed: a feed that keeps failing has
    a growing ``consecutive_failures`` and an old ``last_success_at``.
    """

    __tablename__ = "feed_state"

    feed: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[dict[str, Any] | None]
    last_attempt_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_change_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_payload_id: Mapped[int | None] = mapped_column(ForeignKey("feed_payloads.id"))


class QuarantinedRecord(Base):
    """A feed record that failed validation, with the reason; the rest of its batch flowed on."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32), index=True)
    payload_id: Mapped[int | None] = mapped_column(ForeignKey("feed_payloads.id"))
    record_key: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    record: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class Event(Base):
    """One physical event (an earthquake), merged over every id any source gave it."""

    __tablename__ = "events"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    preferred_id: Mapped[str] = mapped_column(String(128))
    time: Mapped[datetime]
    updated: Mapped[datetime | None]
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    depth_km: Mapped[float | None] = mapped_column(Float)
    magnitude: Mapped[float | None] = mapped_column(Float)
    magnitude_type: Mapped[str | None] = mapped_column(String(16))
    place: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str | None] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class EventAlias(Base):
    """Every id under which an event was published points at the event's key."""

    __tablename__ = "event_aliases"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_key: Mapped[str] = mapped_column(ForeignKey("events.key"), index=True)


class Alert(Base):
    """The current state of one warned thing: (hazard, subject, region)."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("hazard", "subject", "region_code"),)

    id: Mapped[str] = mapped_column(String(400), primary_key=True)
    hazard: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(300))
    region_code: Mapped[str] = mapped_column(String(64))
    region_name: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(16), default="Actual")  # CAP: Actual/Exercise/Test
    level: Mapped[int]
    current_version: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    # hysteresis: a lower level seen since pending_since; not warned since clear_since
    pending_level: Mapped[int | None]
    pending_since: Mapped[datetime | None]
    clear_since: Mapped[datetime | None]
    # an operator's cancel: no re-issue at this level or below until then
    suppressed_until: Mapped[datetime | None]


class AlertVersion(Base):
    """An immutable version of an alert: what was decided, when, and why."""

    __tablename__ = "alert_versions"
    __table_args__ = (UniqueConstraint("alert_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    version: Mapped[int]
    identifier: Mapped[str] = mapped_column(String(420), unique=True)
    publication_id: Mapped[int | None] = mapped_column(ForeignKey("publications.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    msg_type: Mapped[str] = mapped_column(String(16))
    hazard: Mapped[str] = mapped_column(String(32))
    level: Mapped[int]
    sent: Mapped[datetime]
    onset: Mapped[datetime | None]
    expires: Mapped[datetime | None]
    rule_id: Mapped[str | None] = mapped_column(String(64))
    rule_set_version: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any]]
    notify: Mapped[bool] = mapped_column(Boolean, default=True)


class Publication(Base):
    """One published message (a CAP document): the versions of one cycle that share
    hazard, subject, level and action, each region keeping its own alert state."""

    __tablename__ = "publications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(64), unique=True)
    sender: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    msg_type: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    hazard: Mapped[str] = mapped_column(String(32))
    level: Mapped[int]
    subject: Mapped[str] = mapped_column(String(300))
    sent: Mapped[datetime] = mapped_column(index=True)
    onset: Mapped[datetime | None]
    expires: Mapped[datetime | None]
    references: Mapped[str] = mapped_column(Text, default="")
    notify: Mapped[bool] = mapped_column(Boolean)
    lead_alert_id: Mapped[str] = mapped_column(String(400))
    lead_version: Mapped[int]
    fanned_out_at: Mapped[datetime | None] = mapped_column(index=True)
    # A duty officer's sign-off (alerts.approval): none (not needed), pending,
    # approved or rejected; who, when, why; the officer's wording of the advice.
    approval: Mapped[str] = mapped_column(String(16), default="none", index=True)
    approval_actor: Mapped[str | None] = mapped_column(String(200))
    approval_at: Mapped[datetime | None]
    approval_reason: Mapped[str | None] = mapped_column(Text)
    guidance_override: Mapped[str | None] = mapped_column(Text)
    # the orchestration run that asked the duty officer (one request per publication)
    approval_run: Mapped[str | None] = mapped_column(String(250))
    # "alert": a CAP document of warnings (alert_versions point here); "outlook" or
    # "campaign": a bulletin (alerts.bulletins) with no alert versions, rendered from
    # ``content`` (the outlook or campaign context as JSON) and delivered the same way.
    kind: Mapped[str] = mapped_column(String(16), default="alert", index=True)
    content: Mapped[dict[str, Any] | None]


class AuditEntry(Base):
    """Every transition of an alert: who or what decided it, when, and why. Never rewritten."""

    __tablename__ = "alert_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(400), index=True)
    version: Mapped[int | None]
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]


class DeliveryMessage(Base):
    """The rendered message of one publication for one channel and language.

    Stored once and shared by every ledger row that carries it, so a
    provincial alert to a million phones writes one body, not a million.
    """

    __tablename__ = "delivery_messages"
    __table_args__ = (UniqueConstraint("publication_id", "channel", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publications.id"))
    channel: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    # long-form bulletins: the HTML document and its images ([{"name", "png": base64}])
    html: Mapped[str | None] = mapped_column(Text)
    images: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]

    def image_bytes(self) -> tuple[tuple[str, bytes], ...]:
        """The images as (name, PNG bytes), for :class:`~alerts.channels.base.Message`."""
        return tuple((i["name"], base64.b64decode(i["png"])) for i in self.images or ())


class Delivery(Base):
    """The ledger: one row per (publication, channel, recipient), claimed before sending.

    ``key`` is the idempotency key; its uniqueness is what makes a rerun
    unable to deliver the same version twice to the same recipient. A
    resend is a new row with its own key (``...#r1``) and an audit entry.

    States: ``pending`` -> ``sending`` (claimed by ``claimed_by`` under
    ``claim_token``) -> ``sent`` / ``retry`` (due again at
    ``next_attempt_at``) / ``dead`` (fatal or attempts exhausted) /
    ``unknown`` (a worker died mid-send on a channel that can neither
    deduplicate nor confirm: an operator decides). ``confirm_token`` names an
    attempt whose fate is unknown: the next attempt confirms it with the
    vendor (or relies on the vendor's deduplication) before sending again.
    """

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "channel", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publications.id"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("delivery_messages.id"))
    alert_id: Mapped[str] = mapped_column(String(400))  # the publication's lead alert
    version: Mapped[int]
    channel: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(16))
    # who asked for it: a subscriber (kept even if the subscriber is later erased),
    # else a recipient listed in the channel's configuration
    subscriber_id: Mapped[int | None] = mapped_column(Integer, index=True)
    origin: Mapped[str] = mapped_column(
        String(16), default="channel"
    )  # channel/match/earlier/resend
    # (no index of its own: ix_deliveries_due starts with status)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_token: Mapped[str | None] = mapped_column(String(32), index=True)
    confirm_token: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class InboundEvent(Base):
    """An event pushed to us (a WeChat follow), kept so a vendor's retries apply once."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("source", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(index=True)


class RateEvent(Base):
    """One call made on a rate-limited channel account; shared by every process."""

    __tablename__ = "rate_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    at: Mapped[datetime] = mapped_column(index=True)


class OutboxMessage(Base):
    """A message delivered to the local outbox channel, viewable without credentials."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_key: Mapped[str] = mapped_column(String(400), unique=True)
    identifier: Mapped[str | None] = mapped_column(String(64))  # the publication's CAP id
    alert_id: Mapped[str] = mapped_column(String(400), index=True)
    version: Mapped[int]
    channel: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    delivered_at: Mapped[datetime] = mapped_column(index=True)


class Subscriber(Base):
    """A person or group who asked for alerts on one channel (see :mod:`alerts.subscribers`).

    ``areas`` holds region-code prefixes ("51", "510100") or circles
    ("circle:lat,lon,km"); empty ``hazards`` means every hazard.
    """

    __tablename__ = "subscribers"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(64))  # a configured channel's name
    address: Mapped[str] = mapped_column(String(1000))
    language: Mapped[str] = mapped_column(String(16), default="zh-CN")
    areas: Mapped[list[str]]
    hazards: Mapped[list[str]] = mapped_column(JSON, default=list)
    # publicity audiences (alerts/data/publicity.yaml) for campaigns; empty: the general public
    audiences: Mapped[list[str]] = mapped_column(JSON, default=list)
    min_level: Mapped[int] = mapped_column(Integer, default=1)
    quiet_start: Mapped[str | None] = mapped_column(String(5))  # local HH:MM
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    consent_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16))  # csv / operator / wechat
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deactivated_reason: Mapped[str | None] = mapped_column(Text)
