"""The alert store: the only code that writes SQL.

SQLite by default (a file under ``ALERTS_HOME``), PostgreSQL in production
(``postgresql+psycopg://``). The schema is created and upgraded by Alembic
(``alerts db upgrade``, or automatically when a store is opened).
"""

from __future__ import annotations

import base64
import io
import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Engine,
    Integer,
    String,
    Text,
    any_,
    case,
    cast,
    create_engine,
    delete,
    event,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from alerts.feeds.base import EARTHQUAKE_COLUMNS, Quarantined
from alerts.feeds.cenc import SameEvent
from alerts.lifecycle import ActiveAlert, Decision
from alerts.model import Action, Hazard, Level
from alerts.regions import EARTH_RADIUS_KM
from alerts.store.models import (
    Alert,
    AlertVersion,
    AuditEntry,
    Base,
    Delivery,
    DeliveryMessage,
    Event,
    EventAlias,
    FeedPayload,
    FeedState,
    InboundEvent,
    OutboxMessage,
    Publication,
    QuarantinedRecord,
    RateEvent,
    Subscriber,
    UTCDateTime,
)
from alerts.store.publishing import Publisher, publish_versions

__all__ = [
    "Claim",
    "DeliveryOutcome",
    "DueGroup",
    "NewDelivery",
    "NewMessage",
    "Publisher",
    "Store",
    "StoreError",
]

_MIGRATION_LOCK = 7_204_311  # pg_advisory_lock key: one migrator at a time


class StoreError(RuntimeError):
    """The store is unreachable or a write conflicted with another writer."""


@dataclass(frozen=True)
class NewMessage:
    """A publication rendered for one channel and language."""

    channel: str
    language: str
    subject: str
    body: str
    html: str | None = None
    images: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class NewDelivery:
    """One ledger row to create: its message is the (channel, language) one."""

    key: str
    channel: str
    recipient: str
    language: str
    subscriber_id: int | None = None
    origin: str = "channel"  # channel / match / earlier / resend


DELIVERY_COLUMNS = ("key", "channel", "recipient", "language", "subscriber_id", "origin")


@dataclass(frozen=True)
class DeliveryOutcome:
    delivery_id: int
    status: str  # sent / retry / dead / unknown
    provider_message_id: str | None = None
    error_code: str | None = None
    error_text: str | None = None
    next_attempt_at: datetime | None = None
    refund_attempt: bool = False  # deferred before sending (rate limit): not an attempt
    confirm_token: str | None = None  # the next attempt confirms this attempt first


@dataclass(frozen=True)
class DueGroup:
    channel: str
    message_id: int
    rows: int
    level: int


@dataclass(frozen=True)
class Claim:
    """Rows one worker claimed for one send, with the messages they carry."""

    token: str
    worker: str
    rows: list[Delivery]
    messages: dict[int, DeliveryMessage]


class Store:
    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = _engine(url)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._session.begin() as s:
            yield s

    # -- schema ---------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision (no-op when current)."""
        cfg = _alembic_config(self.url)
        head = ScriptDirectory.from_config(cfg).get_current_head()
        sqlite_db = self.engine.dialect.name == "sqlite"
        with self.engine.connect() as conn:
            if sqlite_db:
                # SQLite migrations rebuild tables (copy, drop, rename): references to a
                # table being rebuilt must not block it; the rebuilt tables keep them.
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                conn.commit()
            try:
                with conn.begin():
                    if not sqlite_db:
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK}
                        )
                    if MigrationContext.configure(conn).get_current_revision() == head:
                        return
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
            finally:
                if sqlite_db:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    # -- feed payloads and quarantine -----------------------------------------

    def latest_payload(self, source: str, url: str) -> FeedPayload | None:
        with self.session() as s:
            return s.scalars(
                select(FeedPayload)
                .where(FeedPayload.source == source, FeedPayload.url == url)
                .order_by(FeedPayload.id.desc())
                .limit(1)
            ).first()

    def save_payload(self, payload: FeedPayload) -> int:
        with self.session() as s:
            s.add(payload)
            s.flush()
            return payload.id

    def payload(self, payload_id: int) -> FeedPayload:
        with self.session() as s:
            found = s.get(FeedPayload, payload_id)
            if found is None:
                raise StoreError(f"no feed payload with id {payload_id}")
            return found

    def feed_state(self, feed: str) -> FeedState | None:
        with self.session() as s:
            return s.get(FeedState, feed)

    def feed_states(self) -> list[FeedState]:
        with self.session() as s:
            return list(s.scalars(select(FeedState).order_by(FeedState.feed)))

    def record_fetch(
        self,
        feed: str,
        *,
        source: str,
        url: str,
        now: datetime,
        error: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        payload_id: int | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> FeedState:
        """Record one fetch attempt: a success (with or without a new payload) or a failure."""
        with self.session() as s:
            state = s.get(FeedState, feed)
            if state is None:
                state = FeedState(feed=feed, source=source, url=url, consecutive_failures=0)
                s.add(state)
            state.url, state.source, state.last_attempt_at = url, source, now
            if error is not None:
                state.last_failure_at = now
                state.last_error = error[:4000]
                state.consecutive_failures = (state.consecutive_failures or 0) + 1
            else:
                state.last_success_at = now
                state.consecutive_failures = 0
                if etag is not None or last_modified is not None:
                    state.etag, state.last_modified = etag, last_modified
                if payload_id is not None:
                    state.last_payload_id, state.last_change_at = payload_id, now
                if cursor is not None:
                    state.cursor = cursor
            s.flush()
            return state

    def quarantine(
        self, items: Iterable[Quarantined], *, payload_id: int | None, now: datetime
    ) -> int:
        rows = [
            QuarantinedRecord(
                source=q.source,
                payload_id=payload_id,
                record_key=q.record_key,
                reason=q.reason,
                record=q.record_json(),
                created_at=now,
            )
            for q in items
        ]
        with self.session() as s:
            s.add_all(rows)
        return len(rows)

    def quarantined(self, limit: int = 100) -> list[QuarantinedRecord]:
        with self.session() as s:
            stmt = select(QuarantinedRecord).order_by(QuarantinedRecord.id.desc()).limit(limit)
            return list(s.scalars(stmt))

    # -- events -----------------------------------------------------------------

    def merge_events(
        self, frame: pd.DataFrame, *, now: datetime, same_event: SameEvent | None = None
    ) -> pd.DataFrame:
        """Merge solutions into stored events; return the current solution of each.

        Every id in ``aliases`` names the same event; a solution replaces the
        stored one only when its ``updated`` is not older. The result has the
        earthquake columns plus ``subject`` (the event's stable key), one row per
        distinct event touched, so a stale solution never reaches grading.

        With ``same_event`` (sources that re-number a solution, like CENC), a
        solution no alias matches joins a stored event of the same source that
        is close in time, place and magnitude when one of the two is automatic.
        A reviewed solution is never replaced by an automatic one.
        """
        if frame.empty:
            return frame.assign(subject=pd.Series(dtype="object"))
        touched: list[str] = []
        with self.session() as s:
            for row in frame.to_dict(orient="records"):
                key = self._merge_one(s, row, now, same_event)
                if key not in touched:
                    touched.append(key)
            s.flush()
            events = {e.key: e for e in s.scalars(select(Event).where(Event.key.in_(touched)))}
            aliases: dict[str, list[str]] = {}
            for a in s.scalars(select(EventAlias).where(EventAlias.event_key.in_(touched))):
                aliases.setdefault(a.event_key, []).append(a.alias)
        records = [_event_record(events[k], sorted(aliases.get(k, []))) for k in touched]
        out = pd.DataFrame.from_records(records, columns=[*EARTHQUAKE_COLUMNS, "subject"])
        for col in ("time", "updated"):
            out[col] = pd.to_datetime(out[col], utc=True)
        for col in ("latitude", "longitude", "depth_km", "magnitude"):
            out[col] = pd.to_numeric(out[col]).astype("Float64")
        return out

    def _merge_one(
        self, s: Session, row: dict[str, Any], now: datetime, same_event: SameEvent | None
    ) -> str:
        source = row["source"]
        ids = [str(a) for a in row["aliases"]] or [str(row["event_id"])]
        known = s.scalars(
            select(EventAlias.event_key).where(
                EventAlias.source == source, EventAlias.alias.in_(ids)
            )
        ).all()
        if known:
            key = known[0]
        else:
            near = self._nearby_event(s, row, same_event) if same_event else None
            key = near or f"{source}:{row['event_id']}"
        updated = _py(row["updated"])
        event = s.get(Event, key)
        values = {
            "source": source,
            "preferred_id": str(row["event_id"]),
            "time": _py(row["time"]),
            "updated": updated,
            "latitude": float(row["latitude"]),
            "longitude": float(row["longitude"]),
            "depth_km": _num(row["depth_km"]),
            "magnitude": _num(row["magnitude"]),
            "magnitude_type": _opt(row["magnitude_type"]),
            "place": _opt(row["place"]),
            "status": str(row["status"]),
            "event_type": _opt(row["event_type"]),
            "url": _opt(row["url"]),
        }
        if event is None:
            s.add(Event(key=key, first_seen=now, last_seen=now, **values))
        else:
            event.last_seen = max(event.last_seen, now)
            newer = updated is None or event.updated is None or updated >= event.updated
            demotion = event.status == "reviewed" and values["status"] == "automatic"
            if newer and not demotion:
                for name, value in values.items():
                    setattr(event, name, value)
        s.flush()
        have = set(
            s.scalars(
                select(EventAlias.alias).where(
                    EventAlias.source == source, EventAlias.alias.in_(ids)
                )
            )
        )
        s.add_all(EventAlias(source=source, alias=a, event_key=key) for a in ids if a not in have)
        return key

    def _nearby_event(self, s: Session, row: dict[str, Any], rule: SameEvent) -> str | None:
        when = _py(row["time"])
        if when is None or row["magnitude"] is None or pd.isna(row["magnitude"]):
            return None
        window = pd.Timedelta(seconds=rule.max_seconds).to_pytimedelta()
        candidates = s.scalars(
            select(Event).where(
                Event.source == row["source"],
                Event.time >= when - window,
                Event.time <= when + window,
            )
        ).all()
        best: tuple[float, str] | None = None
        for e in candidates:
            if "automatic" not in (e.status, row["status"]) or e.magnitude is None:
                continue
            km = _distance_km(e.latitude, e.longitude, row["latitude"], row["longitude"])
            if km <= rule.max_km and abs(e.magnitude - float(row["magnitude"])) <= (
                rule.max_magnitude_diff
            ):
                if best is None or km < best[0]:
                    best = (km, e.key)
        return best[1] if best else None

    # -- alerts -----------------------------------------------------------------

    def active_alerts(self, hazard: Hazard | None = None) -> list[ActiveAlert]:
        """Active alerts with their current version's facts (of one hazard, or all)."""
        stmt = (
            select(Alert, AlertVersion)
            .join(
                AlertVersion,
                (AlertVersion.alert_id == Alert.id)
                & (AlertVersion.version == Alert.current_version),
            )
            .where(Alert.state == "active")
        )
        if hazard is not None:
            stmt = stmt.where(Alert.hazard == hazard.value)
        with self.session() as s:
            rows = s.execute(stmt).all()
        return [_active(a, v) for a, v in rows]

    def suppressed(self, now: datetime) -> dict[str, Level]:
        """Alerts an operator cancelled, still suppressed at ``now``: the level cancelled."""
        with self.session() as s:
            rows = s.execute(
                select(Alert.id, Alert.level).where(
                    Alert.state == "cancelled", Alert.suppressed_until > now
                )
            ).all()
        return {alert_id: Level(level) for alert_id, level in rows}

    def active_alert(self, alert_id: str) -> ActiveAlert | None:
        with self.session() as s:
            row = s.execute(
                select(Alert, AlertVersion)
                .join(
                    AlertVersion,
                    (AlertVersion.alert_id == Alert.id)
                    & (AlertVersion.version == Alert.current_version),
                )
                .where(Alert.id == alert_id, Alert.state == "active")
            ).first()
        return _active(*row) if row else None

    def apply(
        self, decisions: Sequence[Decision], *, now: datetime, publisher: Publisher | None = None
    ) -> list[int]:
        """Record each decision; group the new versions into publications; return version ids.

        Every decision leaves an audit entry. Decisions without an action only
        move an alert's hysteresis state (a pending downgrade or all-clear).
        Runs in one transaction: a concurrent writer that moved an alert first
        makes this raise :class:`StoreError` and write nothing.
        """
        publisher = publisher or Publisher()
        created: list[tuple[AlertVersion, str]] = []
        with self.session() as s:
            for d in decisions:
                if d.action is None:
                    self._hold(s, d, now)
                else:
                    created.append(self._apply_one(s, d, now, publisher))
                s.add(_audit(d, now, publisher.actor, created[-1][0] if d.action else None))
            s.flush()
            publish_versions(s, created, publisher, now)
            return [v.id for v, _ in created]

    def _hold(self, s: Session, d: Decision, now: datetime) -> None:
        prev = d.previous
        assert prev is not None
        s.execute(
            update(Alert)
            .where(Alert.id == d.alert_id, Alert.current_version == prev.version)
            .values(
                pending_level=int(d.pending_level) if d.pending_level else None,
                pending_since=d.pending_since,
                clear_since=d.clear_since,
                updated_at=now,
            )
        )

    def _apply_one(
        self, s: Session, d: Decision, now: datetime, publisher: Publisher
    ) -> tuple[AlertVersion, str]:
        w, prev = d.warning, d.previous
        assert d.action is not None
        existing = s.get(Alert, d.alert_id) if d.action is Action.ISSUE else None
        if existing is not None:  # issued again after a cancel or expiry: the same alert
            assert w is not None
            version = existing.current_version + 1
            existing.state, existing.level, existing.expires_at = "active", int(w.level), w.expires
            existing.current_version, existing.updated_at = version, now
            existing.status, existing.suppressed_until = publisher.status, None
            existing.pending_level = existing.pending_since = existing.clear_since = None
        elif d.action is Action.ISSUE:
            assert w is not None
            s.add(
                Alert(
                    id=d.alert_id,
                    hazard=w.hazard.value,
                    subject=w.subject,
                    region_code=w.region_code,
                    region_name=w.region_name,
                    state="active",
                    status=publisher.status,
                    level=int(w.level),
                    current_version=1,
                    created_at=now,
                    updated_at=now,
                    expires_at=w.expires,
                )
            )
            s.flush()
            version = 1
        else:
            assert prev is not None
            version = prev.version + 1
            state = {Action.CANCEL: "cancelled", Action.EXPIRE: "expired"}.get(d.action, "active")
            changes: dict[str, Any] = {
                "current_version": version,
                "updated_at": now,
                "state": state,
                "pending_level": None,
                "pending_since": None,
                "clear_since": None,
            }
            if w is not None:
                changes.update(level=int(w.level), expires_at=w.expires)
            if d.action is Action.CANCEL and publisher.actor.startswith("operator:"):
                changes["suppressed_until"] = prev.expires_at or now
            result = s.execute(
                update(Alert)
                .where(Alert.id == d.alert_id, Alert.current_version == prev.version)
                .values(**changes)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise StoreError(f"alert {d.alert_id} changed underneath this cycle; rerun it")
        hazard = w.hazard if w else prev.hazard  # type: ignore[union-attr]
        level = w.level if w else prev.level  # type: ignore[union-attr]
        v = AlertVersion(
            alert_id=d.alert_id,
            version=version,
            identifier=f"{d.alert_id}#{version}",
            action=d.action.value,
            msg_type=d.action.msg_type,
            hazard=hazard.value,
            level=int(level),
            sent=now,
            onset=w.onset if w else None,
            expires=w.expires if w else now,
            rule_id=w.rule_id if w else prev.rule_id,  # type: ignore[union-attr]
            rule_set_version=w.rule_set_version if w else None,
            reason=d.reason,
            facts=dict(w.facts) if w else dict(prev.facts),  # type: ignore[union-attr]
            notify=d.action.notifies,
        )
        s.add(v)
        subject = w.subject if w else prev.subject  # type: ignore[union-attr]
        return v, subject

    def alert_versions(self, alert_id: str | None = None) -> list[AlertVersion]:
        with self.session() as s:
            stmt = select(AlertVersion).order_by(AlertVersion.id)
            if alert_id:
                stmt = stmt.where(AlertVersion.alert_id == alert_id)
            return list(s.scalars(stmt))

    def alerts(self, *, active_only: bool = False) -> list[Alert]:
        with self.session() as s:
            stmt = select(Alert).order_by(Alert.updated_at.desc(), Alert.id)
            if active_only:
                stmt = stmt.where(Alert.state == "active")
            return list(s.scalars(stmt))

    def alert(self, alert_id: str) -> Alert | None:
        with self.session() as s:
            return s.get(Alert, alert_id)

    def audit(self, alert_id: str) -> list[AuditEntry]:
        with self.session() as s:
            stmt = select(AuditEntry).where(AuditEntry.alert_id == alert_id).order_by(AuditEntry.id)
            return list(s.scalars(stmt))

    # -- publications, fan-out and the delivery ledger ---------------------------------

    def publications(
        self, *, limit: int | None = None, active: bool = False, kind: str | None = "alert"
    ) -> list[Publication]:
        """Newest first; ``active``: only those whose lead alert is still active.

        ``kind``: CAP documents of warnings (``alert``, the default), bulletins
        (``outlook``, ``campaign``), or every kind (None).
        """
        with self.session() as s:
            stmt = select(Publication).order_by(Publication.sent.desc(), Publication.id.desc())
            if kind is not None:
                stmt = stmt.where(Publication.kind == kind)
            if active:
                stmt = stmt.join(Alert, Alert.id == Publication.lead_alert_id).where(
                    Alert.state == "active", Publication.msg_type != "Cancel"
                )
            if limit:
                stmt = stmt.limit(limit)
            return list(s.scalars(stmt))

    def publications_by_id(self, ids: Iterable[int]) -> dict[int, Publication]:
        wanted = set(ids)
        if not wanted:
            return {}
        with self.session() as s:
            found = s.scalars(select(Publication).where(Publication.id.in_(wanted)))
            return {p.id: p for p in found}

    def publication(self, identifier: str) -> Publication | None:
        with self.session() as s:
            return s.scalar(select(Publication).where(Publication.identifier == identifier))

    def publication_members(self, publication_id: int) -> list[tuple[AlertVersion, Alert]]:
        """The versions a publication carries, with their alerts, lead first."""
        with self.session() as s:
            rows = s.execute(
                select(AlertVersion, Alert)
                .join(Alert, Alert.id == AlertVersion.alert_id)
                .where(AlertVersion.publication_id == publication_id)
                .order_by(AlertVersion.id)
            ).all()
        members = [(v, a) for v, a in rows]
        members.sort(key=lambda m: (not m[1].id.endswith(":CN"), m[1].id))
        return members

    def create_bulletin(
        self,
        *,
        kind: str,
        identifier: str,
        sender: str,
        subject: str,
        level: int,
        content: dict[str, Any],
        now: datetime,
        expires: datetime | None,
        approval: bool,
        status: str = "Actual",
    ) -> tuple[Publication, bool]:
        """Store a bulletin (a daily outlook, a campaign send) once: (publication, created).

        ``identifier`` names the bulletin for good (one outlook per scope and
        day, one campaign per send): a rerun finds the stored one and creates
        nothing, so a bulletin is approved, fanned out and delivered once.
        With ``approval`` it waits for a duty officer, as orange warnings do.
        The audit trail keeps its creation under ``<kind>:<identifier>``.
        """
        if kind == "alert":
            raise ValueError("create_bulletin: warnings are published by publish_versions")
        lead = f"{kind}:{identifier}"
        found = self.publication(identifier)
        if found is not None:
            return found, False
        pub = Publication(
            identifier=identifier,
            sender=sender,
            status=status,
            msg_type="Alert",
            action="issue",
            hazard=kind,
            level=int(level),
            subject=subject[:300],
            sent=now,
            onset=None,
            expires=expires,
            references="",
            notify=True,
            lead_alert_id=lead,
            lead_version=1,
            approval="pending" if approval else "none",
            kind=kind,
            content=content,
        )
        try:
            with self.session() as s:
                s.add(pub)
                s.add(
                    AuditEntry(
                        alert_id=lead,
                        version=1,
                        at=now,
                        actor="system",
                        action="issue",
                        reason=f"{kind} bulletin {identifier}"
                        + (": waiting for the duty officer" if approval else ""),
                        details={"identifier": identifier, "level": int(level)},
                    )
                )
        except IntegrityError:  # another run stored it first
            found = self.publication(identifier)
            if found is None:
                raise
            return found, False
        return pub, True

    def publications_to_fan_out(self) -> list[Publication]:
        """Publications not fanned out yet, except those waiting for a duty officer."""
        with self.session() as s:
            stmt = (
                select(Publication)
                .where(Publication.fanned_out_at.is_(None), Publication.approval != "pending")
                .order_by(Publication.id)
            )
            return list(s.scalars(stmt))

    def pending_approvals(self) -> list[Publication]:
        """Publications waiting for a duty officer, oldest first."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(Publication)
                    .where(Publication.approval == "pending")
                    .order_by(Publication.id)
                )
            )

    def request_approvals(self, run: str, kinds: Sequence[str] = ("alert",)) -> list[Publication]:
        """Pending publications of ``kinds`` this orchestration run should ask about (once each).

        A publication is asked about by one run: those not yet asked are
        claimed for ``run``; those ``run`` claimed before are returned again (a
        rerun of the same run asks again, no other run does). Warnings are
        asked by ``publish_alerts``, bulletins by the DAG that made them.
        """
        with self.session() as s:
            s.execute(
                update(Publication)
                .where(
                    Publication.approval == "pending",
                    Publication.approval_run.is_(None),
                    Publication.kind.in_(list(kinds)),
                )
                .values(approval_run=run)
            )
            return list(
                s.scalars(
                    select(Publication)
                    .where(Publication.approval == "pending", Publication.approval_run == run)
                    .order_by(Publication.id)
                )
            )

    def release_approval_requests(self, run: str) -> int:
        """Let another run ask about what ``run`` claimed and left undecided."""
        with self.session() as s:
            done = s.execute(
                update(Publication)
                .where(Publication.approval == "pending", Publication.approval_run == run)
                .values(approval_run=None)
            )
            return int(done.rowcount or 0)  # type: ignore[attr-defined]

    def decide_approval(
        self,
        publication_id: int,
        *,
        approve: bool,
        actor: str,
        reason: str,
        now: datetime,
        guidance: str | None = None,
    ) -> bool:
        """Approve (optionally with the officer's advice text) or reject a pending publication.

        Only a pending publication changes (a second answer, or a rerun of the
        task that asked, changes nothing: False). A rejected one is closed
        without deliveries. Audited on every alert it carries.
        """
        with self.session() as s:
            values: dict[str, Any] = {
                "approval": "approved" if approve else "rejected",
                "approval_actor": actor,
                "approval_at": now,
                "approval_reason": reason,
            }
            if approve and guidance and guidance.strip():
                values["guidance_override"] = guidance.strip()
            if not approve:
                values["fanned_out_at"] = now
            done = s.execute(
                update(Publication)
                .where(Publication.id == publication_id, Publication.approval == "pending")
                .values(**values)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                return False
            pub = s.get(Publication, publication_id)
            assert pub is not None
            carried = [
                (v.alert_id, v.version)
                for v in s.scalars(
                    select(AlertVersion).where(AlertVersion.publication_id == publication_id)
                )
            ]
            if pub.kind != "alert":  # a bulletin: audited under its own id
                carried = [(pub.lead_alert_id, pub.lead_version)]
            for alert_id, version in carried:
                s.add(
                    AuditEntry(
                        alert_id=alert_id,
                        version=version,
                        at=now,
                        actor=actor,
                        action="approve" if approve else "reject",
                        reason=reason,
                        details={
                            "identifier": pub.identifier,
                            "guidance": values.get("guidance_override"),
                        },
                    )
                )
            return True

    def fan_out(
        self,
        pub: Publication,
        messages: Sequence[NewMessage],
        rows: pd.DataFrame | Sequence[NewDelivery],
        *,
        now: datetime,
    ) -> int:
        """Store the publication's messages and ledger rows and mark it fanned out, atomically.

        ``rows`` (a DataFrame with the :class:`NewDelivery` fields as columns, or
        a sequence of them) name a message by (channel, language). Returns how
        many rows were new; a second call for the same publication adds nothing
        (the flag is checked in the same transaction, and keys are unique).
        On PostgreSQL the rows go in through ``COPY`` (a million rows in seconds).
        """
        frame = _delivery_frame(rows)
        with self.session() as s:
            flagged = s.execute(
                update(Publication)
                .where(Publication.id == pub.id, Publication.fanned_out_at.is_(None))
                .values(fanned_out_at=now)
            )
            if flagged.rowcount != 1:  # type: ignore[attr-defined]
                return 0
            ids = self._put_messages(s, pub.id, messages, now)
            if frame.empty:
                return 0
            missing = set(zip(frame["channel"], frame["language"], strict=True)) - set(ids)
            if missing:
                raise ValueError(f"fan_out: no message for (channel, language) {sorted(missing)}")
            return self._insert_deliveries(s, pub, frame, ids, now)

    def _put_messages(
        self, s: Session, publication_id: int, messages: Sequence[NewMessage], now: datetime
    ) -> dict[tuple[str, str], int]:
        values = [
            {
                "publication_id": publication_id,
                "channel": m.channel,
                "language": m.language,
                "subject": m.subject,
                "body": m.body,
                "html": m.html,
                "images": [{"name": n, "png": base64.b64encode(b).decode()} for n, b in m.images]
                or None,
                "created_at": now,
            }
            for m in messages
        ]
        if values:
            dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
            s.execute(
                dialect.insert(DeliveryMessage).on_conflict_do_nothing(
                    index_elements=["publication_id", "channel", "language"]
                ),
                values,
            )
        found = s.execute(
            select(DeliveryMessage.id, DeliveryMessage.channel, DeliveryMessage.language).where(
                DeliveryMessage.publication_id == publication_id
            )
        ).all()
        return {(channel, language): mid for mid, channel, language in found}

    def _insert_deliveries(
        self,
        s: Session,
        pub: Publication,
        frame: pd.DataFrame,
        message_ids: dict[tuple[str, str], int],
        now: datetime,
    ) -> int:
        frame = frame.assign(
            message_id=[
                message_ids[(c, lang)]
                for c, lang in zip(frame["channel"], frame["language"], strict=True)
            ]
        )
        # The rows of one message together, in the given order within it: a claim on
        # PostgreSQL scans the due index in row order and must step over every pending
        # row of the channel's other messages (English among Chinese) before its own.
        frame = frame.sort_values("message_id", kind="stable")
        columns = ["key", "message_id", "channel", "recipient", "language", "subscriber_id"]
        columns.append("origin")
        fixed = {
            "publication_id": pub.id,
            "alert_id": pub.lead_alert_id,
            "version": pub.lead_version,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        table = Delivery.__table__
        if self.engine.dialect.name == "postgresql":
            return _copy_deliveries(s, frame[columns], fixed)
        before = s.scalar(
            select(func.count()).select_from(table).where(table.c.publication_id == pub.id)
        )
        records = frame[columns].astype(object).where(frame[columns].notna(), None)
        values = [{**fixed, **r} for r in records.to_dict("records")]
        for start in range(0, len(values), 5000):
            s.execute(
                sqlite.insert(Delivery).on_conflict_do_nothing(index_elements=["key"]),
                values[start : start + 5000],
            )
        after = s.scalar(
            select(func.count()).select_from(table).where(table.c.publication_id == pub.id)
        )
        return int(after or 0) - int(before or 0)

    def earlier_recipients(self, publication_id: int) -> pd.DataFrame:
        """Who received (or is being sent) an earlier version of this publication's alerts.

        An update, downgrade or cancellation goes to them even if they have
        since narrowed their subscription. Dead and held rows are not counted
        as received. Columns: channel, recipient, language, subscriber_id.
        """
        members = select(AlertVersion.alert_id).where(AlertVersion.publication_id == publication_id)
        earlier = (
            select(AlertVersion.publication_id)
            .where(
                AlertVersion.alert_id.in_(members),
                AlertVersion.publication_id.is_not(None),
                AlertVersion.publication_id != publication_id,
            )
            .distinct()
        )
        stmt = (
            select(Delivery.channel, Delivery.recipient, Delivery.language, Delivery.subscriber_id)
            .where(
                Delivery.publication_id.in_(earlier),
                Delivery.status.in_(("sent", "pending", "sending", "retry")),
            )
            .distinct()
        )
        with self.engine.connect() as conn:
            result = conn.execute(stmt)
            return pd.DataFrame(result.all(), columns=list(result.keys()))

    def due_groups(self, *, now: datetime, channels: Iterable[str] | None = None) -> list[DueGroup]:
        """The (channel, message) pairs with due rows, most severe publication first."""
        due = _due(now)
        stmt = (
            select(
                Delivery.channel,
                Delivery.message_id,
                func.count().label("rows"),
                func.max(Publication.level).label("level"),
            )
            .join(Publication, Publication.id == Delivery.publication_id)
            .where(due)
            .group_by(Delivery.channel, Delivery.message_id)
            .order_by(func.max(Publication.level).desc(), Delivery.message_id)
        )
        if channels is not None:
            stmt = stmt.where(Delivery.channel.in_(list(channels)))
        with self.session() as s:
            return [DueGroup(c, m, n, lv) for c, m, n, lv in s.execute(stmt).all()]

    def claim_deliveries(
        self,
        *,
        now: datetime,
        worker: str,
        channel: str | None = None,
        message_id: int | None = None,
        limit: int = 1000,
    ) -> Claim | None:
        """Claim up to ``limit`` due rows for one send: ``sending``, attempts + 1.

        PostgreSQL picks them ``FOR UPDATE SKIP LOCKED``, so parallel workers
        take disjoint rows without waiting; SQLite serialises writers, and the
        same statement re-checks that each row is still due. Every row of the
        claim gets one fresh ``claim_token`` (a channel may pass it to the
        vendor, e.g. as the SMS ``OutId``, so the attempt can be confirmed later).
        """
        token = uuid.uuid4().hex
        due = _due(now)
        group = []
        if channel is not None:
            group.append(Delivery.channel == channel)
        if message_id is not None:
            group.append(Delivery.message_id == message_id)
        claim = (
            update(Delivery)
            .values(
                status="sending",
                attempts=Delivery.attempts + 1,
                updated_at=now,
                claimed_by=worker,
                claim_token=token,
            )
            .returning(Delivery)
            .execution_options(synchronize_session=False)
        )
        with self.session() as s:
            claimed: list[Delivery] = []
            if self.engine.dialect.name == "postgresql":
                # Due retries (longest due first), then pending rows, each in the order
                # of the due index (status, channel, next_attempt_at): the scan stops at
                # the limit. ORDER BY id over both would sort every due row of the
                # channel on each claim (seconds on a ledger of a million rows), as
                # FOR UPDATE keeps PostgreSQL from a top-N sort. A materialized CTE:
                # PostgreSQL may re-run an IN (... LIMIT) subquery and take more than
                # the limit; FOR UPDATE SKIP LOCKED leaves other workers' rows.
                retry = (Delivery.status == "retry") & (Delivery.next_attempt_at <= now)
                for branch in (retry, Delivery.status == "pending"):
                    room = limit - len(claimed)
                    if room <= 0:
                        break
                    picked = (
                        select(Delivery.id)
                        .where(branch, *group)
                        .order_by(Delivery.channel, Delivery.next_attempt_at)
                        .limit(room)
                        .with_for_update(skip_locked=True)
                        .cte("picked")
                        .prefix_with("MATERIALIZED")
                    )
                    claimed += s.scalars(claim.where(Delivery.id == picked.c.id, due)).all()
            else:  # SQLite: one writer at a time; the outer WHERE re-checks that rows are due
                pick = select(Delivery.id).where(due, *group).order_by(Delivery.id).limit(limit)
                claimed += s.scalars(
                    claim.where(Delivery.id.in_(pick.scalar_subquery()), due)
                ).all()
            if not claimed:
                return None
            rows = sorted(claimed, key=lambda d: d.id)
            ids = {r.message_id for r in rows}
            messages = {
                m.id: m
                for m in s.scalars(select(DeliveryMessage).where(DeliveryMessage.id.in_(ids)))
            }
        return Claim(token, worker, rows, messages)

    def sending_claimers(self) -> list[str]:
        """The workers that hold rows in ``sending`` now."""
        with self.session() as s:
            return list(
                s.scalars(
                    select(Delivery.claimed_by)
                    .where(Delivery.status == "sending", Delivery.claimed_by.is_not(None))
                    .distinct()
                )
            )

    def recover_abandoned(
        self,
        *,
        now: datetime,
        lease_s: float,
        dead_workers: Iterable[str] = (),
        confirm_delay_s: float = 0.0,
        deduplicating: Iterable[str] = (),
    ) -> int:
        """Hand rows a worker left in ``sending`` back to the dispatcher, to confirm first.

        A row is abandoned when its claim is older than the lease, or its worker
        is known to be dead (same host, process gone). It becomes ``retry``,
        due after ``confirm_delay_s``, with ``confirm_token`` = the token of the attempt that may or
        may not have reached the vendor: the next attempt asks the channel to
        confirm (or relies on its deduplication, or holds it for an operator)
        instead of sending blindly. Returns how many rows were recovered.
        """
        stale = now - timedelta(seconds=lease_s)
        dead = list(dead_workers)
        cond = Delivery.updated_at < stale
        if dead:
            cond = cond | Delivery.claimed_by.in_(dead)
        with self.session() as s:
            done = s.execute(
                update(Delivery)
                .where(Delivery.status == "sending", cond)
                .values(
                    status="retry",
                    # nothing to confirm where the vendor drops repeats: due at once
                    next_attempt_at=case(
                        (Delivery.channel.in_(list(deduplicating) or [""]), now),
                        else_=now + timedelta(seconds=confirm_delay_s),
                    ),
                    confirm_token=Delivery.claim_token,
                    error_code="abandoned",
                    error_text="worker stopped mid-send; confirming before any resend",
                    updated_at=now,
                )
            )
            return int(done.rowcount or 0)  # type: ignore[attr-defined]

    def record_outcomes(
        self, outcomes: Iterable[DeliveryOutcome], *, now: datetime, claim: str | None = None
    ) -> int:
        """Record sent / retry / dead / unknown; rows sharing an outcome in one UPDATE.

        Only rows still ``sending`` (under ``claim`` when given) are written: a row a
        recovery took over is not overwritten by a late worker. Returns rows written.
        """
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for o in outcomes:
            groups[
                (
                    o.status,
                    o.provider_message_id,
                    o.error_code,
                    o.error_text,
                    o.next_attempt_at,
                    o.refund_attempt,
                    o.confirm_token,
                )
            ].append(o.delivery_id)
        written = 0
        # Rows are found by id (and claim token); "still sending" is checked on each
        # row, not looked up: until VACUUM, PostgreSQL's index on status holds an entry
        # for every row ever claimed, and scanning it grows with the ledger.
        sending = (Delivery.status + "") == "sending"
        with self.session() as s:
            for (status, provider, code, error, next_at, refund, confirm), ids in groups.items():
                for start in range(0, len(ids), 5000):
                    chunk = ids[start : start + 5000]
                    where = [_among(Delivery.id, chunk, s), sending]
                    if claim is not None:
                        where.append(Delivery.claim_token == claim)
                    done = s.execute(
                        update(Delivery)
                        .where(*where)
                        .values(
                            status=status,
                            provider_message_id=provider,
                            error_code=code,
                            error_text=error,
                            next_attempt_at=next_at,
                            confirm_token=confirm,
                            delivered_at=now if status == "sent" else None,
                            updated_at=now,
                            attempts=Delivery.attempts - (1 if refund else 0),
                        )
                        .execution_options(synchronize_session=False)
                    )
                    written += int(done.rowcount or 0)  # type: ignore[attr-defined]
        return written

    def deliveries(
        self,
        status: str | Iterable[str] | None = None,
        *,
        publication_id: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Delivery]:
        with self.session() as s:
            stmt = select(Delivery).order_by(Delivery.id.desc() if newest_first else Delivery.id)
            if isinstance(status, str):
                stmt = stmt.where(Delivery.status == status)
            elif status is not None:
                stmt = stmt.where(Delivery.status.in_(list(status)))
            if publication_id is not None:
                stmt = stmt.where(Delivery.publication_id == publication_id)
            if limit:
                stmt = stmt.limit(limit)
            return list(s.scalars(stmt))

    def delivery_counts(self, publication_id: int | None = None) -> dict[tuple[str, str], int]:
        """Rows per (channel, status), for one publication or all."""
        stmt = select(Delivery.channel, Delivery.status, func.count()).group_by(
            Delivery.channel, Delivery.status
        )
        if publication_id is not None:
            stmt = stmt.where(Delivery.publication_id == publication_id)
        with self.session() as s:
            return {(c, st): int(n) for c, st, n in s.execute(stmt).all()}

    def open_work(self) -> tuple[int, datetime | None]:
        """(rows pending or being sent, when the earliest ``retry`` row falls due)."""
        with self.session() as s:
            busy = s.scalar(select(func.count()).where(Delivery.status.in_(("pending", "sending"))))
            due = s.scalar(
                select(func.min(Delivery.next_attempt_at)).where(Delivery.status == "retry")
            )
            return int(busy or 0), due

    def delivery_message(self, message_id: int) -> DeliveryMessage | None:
        with self.session() as s:
            return s.get(DeliveryMessage, message_id)

    def resend(
        self,
        publication_id: int,
        *,
        mode: str,
        actor: str,
        reason: str,
        now: datetime,
        channel: str | None = None,
        recipient: str | None = None,
    ) -> int:
        """New, audited ledger rows that send a publication again; returns how many.

        ``mode``: ``all`` (everyone it was addressed to), ``failed`` (whose latest
        row is dead or unknown) or ``one`` (``channel`` + ``recipient``). Each new
        row's key is the original key + ``#rN`` (N = this publication's resend
        round), so a resend is itself exactly-once; the earlier rows stay as they
        were. An audit entry on the lead alert names the actor, reason and count.
        """
        if mode not in ("all", "failed", "one"):
            raise ValueError(f"resend mode {mode!r}: all, failed or one")
        if mode == "one" and not (channel and recipient):
            raise ValueError("resend one: give the channel and the recipient")
        if not reason.strip():
            raise ValueError("a reason is required")
        with self.session() as s:
            pub = s.get(Publication, publication_id)
            if pub is None:
                raise ValueError(f"no publication {publication_id}")
            stmt = select(Delivery).where(Delivery.publication_id == publication_id)
            if channel is not None:
                stmt = stmt.where(Delivery.channel == channel)
            if recipient is not None:
                stmt = stmt.where(Delivery.recipient == recipient)
            latest: dict[str, Delivery] = {}
            rounds = 0
            for d in s.scalars(stmt.order_by(Delivery.id)):
                base, _, suffix = d.key.partition("#r")
                rounds = max(rounds, int(suffix) if suffix.isdigit() else 0)
                latest[base] = d
            chosen = [
                d for d in latest.values() if mode != "failed" or d.status in ("dead", "unknown")
            ]
            if mode == "one" and not chosen:
                raise ValueError(
                    f"{channel} {recipient}: never addressed by publication {pub.identifier}"
                )
            round_ = rounds + 1
            values = [
                {
                    "key": f"{base}#r{round_}",
                    "publication_id": d.publication_id,
                    "message_id": d.message_id,
                    "alert_id": d.alert_id,
                    "version": d.version,
                    "channel": d.channel,
                    "recipient": d.recipient,
                    "language": d.language,
                    "subscriber_id": d.subscriber_id,
                    "origin": "resend",
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for base, d in latest.items()
                if d in chosen
            ]
            created = self._insert_ignore(s, Delivery, values, "key")
            s.add(
                AuditEntry(
                    alert_id=pub.lead_alert_id,
                    version=pub.lead_version,
                    at=now,
                    actor=actor,
                    action="resend",
                    reason=reason,
                    details={
                        "identifier": pub.identifier,
                        "mode": mode,
                        "round": round_,
                        "deliveries": created,
                        "channel": channel,
                        "recipient": recipient,
                    },
                )
            )
            return created

    def apply_follow(
        self,
        source: str,
        key: str,
        *,
        now: datetime,
        channel: str,
        address: str,
        follower: dict[str, Any] | None,
        reason: str = "",
    ) -> str:
        """Record a pushed follow (``follower`` given) or unfollow and apply it, atomically.

        Returns ``duplicate`` (the push was applied before: a vendor retry),
        ``subscribed``, ``resubscribed`` (the row existed: reactivated with the new
        consent time, its areas and levels kept), ``unsubscribed`` or ``ignored``
        (an unfollow of someone who was not a subscriber).
        """
        with self.session() as s:
            if not self._first_inbound(s, source, key, now):
                return "duplicate"
            found = s.scalar(
                select(Subscriber).where(
                    Subscriber.channel == channel, Subscriber.address == address
                )
            )
            if follower is None:
                if found is None or not found.active:
                    return "ignored"
                found.active, found.deactivated_reason, found.updated_at = False, reason, now
                return "unsubscribed"
            if found is not None:
                found.active, found.deactivated_reason = True, None
                found.consent_at, found.updated_at = follower.get("consent_at"), now
                return "resubscribed"
            fields = {k: follower[k] for k in self.SUBSCRIBER_FIELDS if k in follower}
            s.add(
                Subscriber(
                    channel=channel, address=address, created_at=now, updated_at=now, **fields
                )
            )
            return "subscribed"

    # -- reads for the duty officer's page (alerts.opsview) ---------------------------

    def active_with_publications(
        self,
    ) -> list[tuple[Alert, AlertVersion, Publication | None]]:
        """Every active alert with its current version and that version's publication."""
        stmt = (
            select(Alert, AlertVersion, Publication)
            .join(
                AlertVersion,
                (AlertVersion.alert_id == Alert.id)
                & (AlertVersion.version == Alert.current_version),
            )
            .outerjoin(Publication, Publication.id == AlertVersion.publication_id)
            .where(Alert.state == "active")
            .order_by(Alert.id)
        )
        with self.session() as s:
            return [(a, v, p) for a, v, p in s.execute(stmt).all()]

    def latest_notifying_publications(self, alert_ids: Iterable[str]) -> dict[str, int]:
        """Per alert, the publication id of its newest version that was announced."""
        stmt = select(
            AlertVersion.alert_id, AlertVersion.version, AlertVersion.publication_id
        ).where(
            AlertVersion.alert_id.in_(set(alert_ids)),
            AlertVersion.notify.is_(True),
            AlertVersion.publication_id.is_not(None),
        )
        latest: dict[str, tuple[int, int]] = {}
        with self.session() as s:
            for alert_id, version, pub_id in s.execute(stmt).all():
                if pub_id is not None and version > latest.get(alert_id, (0, 0))[0]:
                    latest[alert_id] = (version, pub_id)
        return {alert_id: pub_id for alert_id, (_, pub_id) in latest.items()}

    def resend_rows(
        self, publication_id: int, recipients: Iterable[str]
    ) -> list[tuple[int, str, str]]:
        """(id, key, status) of the resend rows of a publication for these recipients."""
        wanted = sorted(set(recipients))
        if not wanted:
            return []
        stmt = select(Delivery.id, Delivery.key, Delivery.status).where(
            Delivery.publication_id == publication_id,
            Delivery.origin == "resend",
            Delivery.recipient.in_(wanted),
        )
        with self.session() as s:
            return [(i, k, st) for i, k, st in s.execute(stmt).all()]

    def quarantine_counts(self, since: datetime) -> dict[str, dict[str, int]]:
        """Quarantined records per source: since ``since`` and in all (one grouped query)."""
        recent = func.sum(case((QuarantinedRecord.created_at >= since, 1), else_=0))
        stmt = (
            select(QuarantinedRecord.source, func.count(), recent)
            .group_by(QuarantinedRecord.source)
            .order_by(QuarantinedRecord.source)
        )
        with self.session() as s:
            return {
                source: {"last_24h": int(n_recent or 0), "total": int(n)}
                for source, n, n_recent in s.execute(stmt).all()
            }

    def apply_retention(self, *, before: datetime) -> dict[str, int]:
        """Delete what is older than ``before`` and not needed for the record.

        Quarantined records, feed payloads (except each feed's latest, which
        conditional GET compares against, and any a kept quarantine row cites),
        outbox messages and remembered inbound events. Alerts, versions,
        publications, the audit trail and the delivery ledger are kept: they
        are the record of what was warned and who was told.
        """
        with self.session() as s:
            counts = {
                "quarantine": s.execute(
                    delete(QuarantinedRecord).where(QuarantinedRecord.created_at < before)
                ).rowcount,  # type: ignore[attr-defined]
            }
            keep = select(FeedState.last_payload_id).where(FeedState.last_payload_id.is_not(None))
            cited = select(QuarantinedRecord.payload_id).where(
                QuarantinedRecord.payload_id.is_not(None)
            )
            counts["feed_payloads"] = s.execute(
                delete(FeedPayload).where(
                    FeedPayload.fetched_at < before,
                    FeedPayload.id.not_in(keep),
                    FeedPayload.id.not_in(cited),
                )
            ).rowcount  # type: ignore[attr-defined]
            counts["outbox_messages"] = s.execute(
                delete(OutboxMessage).where(OutboxMessage.delivered_at < before)
            ).rowcount  # type: ignore[attr-defined]
            counts["inbound_events"] = s.execute(
                delete(InboundEvent).where(InboundEvent.received_at < before)
            ).rowcount  # type: ignore[attr-defined]
            counts["rate_events"] = s.execute(
                delete(RateEvent).where(RateEvent.at < before)
            ).rowcount  # type: ignore[attr-defined]
        return {k: int(v or 0) for k, v in counts.items()}

    def record_inbound(self, source: str, key: str, *, now: datetime) -> bool:
        """Remember an inbound event; False when it was seen before (a vendor retry)."""
        with self.session() as s:
            return self._first_inbound(s, source, key, now)

    def _first_inbound(self, s: Session, source: str, key: str, now: datetime) -> bool:
        row = {"source": source, "key": key, "received_at": now}
        return self._insert_ignore(s, InboundEvent, [row], ("source", "key")) == 1

    def reserve_rate(self, account: str, *, limit: int, window_s: float, now: datetime) -> float:
        """Take one call from the account's budget: 0 if taken, else seconds to wait.

        The reservation is inserted first and counted after, in one transaction
        that holds the write lock (SQLite) or an advisory lock on the account
        (PostgreSQL), so two processes can never both take the last slot.
        """
        since = now - timedelta(seconds=window_s)
        with self.session() as s:
            if self.engine.dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:a))"), {"a": account})
            mine = RateEvent(account=account, at=now)
            s.add(mine)
            s.flush()
            taken = s.scalars(
                select(RateEvent.at)
                .where(RateEvent.account == account, RateEvent.at > since)
                .order_by(RateEvent.at)
            ).all()
            if len(taken) <= limit:
                s.execute(
                    delete(RateEvent).where(RateEvent.account == account, RateEvent.at <= since)
                )
                return 0.0
            s.delete(mine)
            oldest = taken[0]
            return max((oldest - since).total_seconds(), 0.001)

    # -- outbox -------------------------------------------------------------------

    def outbox_put(self, message: dict[str, Any]) -> bool:
        """Store one outbox message; False when its delivery key is already there."""
        with self.session() as s:
            return self._insert_ignore(s, OutboxMessage, [message], "delivery_key") == 1

    def outbox(self, limit: int | None = None) -> list[OutboxMessage]:
        with self.session() as s:
            stmt = select(OutboxMessage).order_by(
                OutboxMessage.delivered_at.desc(), OutboxMessage.id.desc()
            )
            if limit:
                stmt = stmt.limit(limit)
            return list(s.scalars(stmt))

    # -- subscribers ------------------------------------------------------------------

    SUBSCRIBER_FIELDS = (
        "name",
        "language",
        "areas",
        "hazards",
        "audiences",
        "min_level",
        "quiet_start",
        "quiet_end",
        "active",
        "consent_at",
        "source",
    )

    def subscribers_frame(self, *, active_only: bool = False) -> pd.DataFrame:
        """Every subscriber as one DataFrame (one query), for set-wise matching.

        Areas and hazards are read as JSON text and decoded once per distinct
        text (each row still gets its own list). On PostgreSQL the rows come
        through ``COPY ... TO STDOUT`` into ``pandas.read_csv``, not row objects:
        a million subscribers load in seconds.
        """
        table = Subscriber.__table__
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "postgresql":
                frame = _copy_subscribers(conn, active_only=active_only)
            else:
                stmt = select(
                    *(
                        cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c
                        for c in table.c
                    )
                ).order_by(table.c.id)
                if active_only:
                    stmt = stmt.where(table.c.active.is_(True))
                result = conn.execute(stmt)
                frame = pd.DataFrame(result.all(), columns=list(result.keys()))
        for column in ("areas", "hazards", "audiences"):
            frame[column] = _json_lists(frame[column])
        for column in ("quiet_start", "quiet_end", "deactivated_reason"):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        return frame

    def add_subscriber(self, values: dict[str, Any], *, now: datetime | None = None) -> int:
        """Add a new subscriber; ``ValueError`` when the channel and address are taken."""
        now = now or datetime.now(UTC)
        with self.session() as s:
            taken = s.scalar(
                select(Subscriber.id).where(
                    Subscriber.channel == values["channel"],
                    Subscriber.address == values["address"],
                )
            )
            if taken is not None:
                raise ValueError(
                    f"{values['channel']} {values['address']}: already a subscriber (id {taken})"
                )
            row = Subscriber(
                channel=values["channel"],
                address=values["address"],
                created_at=now,
                updated_at=now,
                **{k: values[k] for k in self.SUBSCRIBER_FIELDS if k in values},
            )
            s.add(row)
            s.flush()
            return row.id

    def upsert_subscribers(
        self, rows: Sequence[dict[str, Any]], *, now: datetime | None = None
    ) -> tuple[int, int]:
        """Insert or update (same channel and address) in one transaction: (inserted, updated)."""
        now = now or datetime.now(UTC)
        inserted = updated = 0
        with self.session() as s:
            existing: dict[tuple[str, str], Subscriber] = {}
            for channel in {r["channel"] for r in rows}:
                addresses = {r["address"] for r in rows if r["channel"] == channel}
                for sub in s.scalars(
                    select(Subscriber).where(
                        Subscriber.channel == channel, Subscriber.address.in_(addresses)
                    )
                ):
                    existing[(sub.channel, sub.address)] = sub
            for r in rows:
                fields = {k: r[k] for k in self.SUBSCRIBER_FIELDS if k in r}
                found = existing.get((r["channel"], r["address"]))
                if found is None:
                    sub = Subscriber(
                        channel=r["channel"],
                        address=r["address"],
                        created_at=now,
                        updated_at=now,
                        **fields,
                    )
                    s.add(sub)
                    existing[(sub.channel, sub.address)] = sub
                    inserted += 1
                else:
                    for key, value in fields.items():
                        setattr(found, key, value)
                    if fields.get("active", True):
                        found.deactivated_reason = None
                    found.updated_at = now
                    updated += 1
        return inserted, updated

    def deactivate_subscriber(
        self, channel: str, address: str, reason: str, *, now: datetime | None = None
    ) -> bool:
        """Stop sending to a subscriber, keeping the row and why; False when unknown."""
        with self.session() as s:
            done = s.execute(
                update(Subscriber)
                .where(Subscriber.channel == channel, Subscriber.address == address)
                .values(
                    active=False, deactivated_reason=reason, updated_at=now or datetime.now(UTC)
                )
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def remove_subscriber(self, channel: str, address: str) -> bool:
        """Delete a subscriber's row (e.g. erasure on request); False when unknown."""
        with self.session() as s:
            done = s.execute(
                delete(Subscriber).where(
                    Subscriber.channel == channel, Subscriber.address == address
                )
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    # -- helpers --------------------------------------------------------------------

    def _insert_ignore(
        self,
        s: Session,
        model: type[Base],
        values: list[dict[str, Any]],
        unique: str | tuple[str, ...],
    ) -> int:
        if not values:
            return 0
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        table = model.__table__
        stmt = (
            dialect.insert(table)
            .on_conflict_do_nothing(
                index_elements=[unique] if isinstance(unique, str) else list(unique)
            )
            .returning(table.c.id)  # type: ignore[attr-defined]
        )
        return len(s.execute(stmt, values).all())


def _among(column: Any, ids: Sequence[int], s: Session) -> Any:
    """``column IN ids``; on PostgreSQL ``= ANY`` of one array parameter, not one per id
    (a thousand placeholders cost more to build and parse than the UPDATE they select)."""
    if s.get_bind().dialect.name == "postgresql":
        return column == any_(literal(list(ids), postgresql.ARRAY(Integer)))
    return column.in_(ids)


def _due(now: datetime) -> Any:
    return (Delivery.status == "pending") | (
        (Delivery.status == "retry") & (Delivery.next_attempt_at <= now)
    )


def _delivery_frame(rows: pd.DataFrame | Sequence[NewDelivery]) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        frame = rows
    else:
        frame = pd.DataFrame(
            [[getattr(r, c) for c in DELIVERY_COLUMNS] for r in rows], columns=DELIVERY_COLUMNS
        )
    missing = [c for c in ("key", "channel", "recipient", "language") if c not in frame.columns]
    if missing:
        raise ValueError(f"fan_out: delivery rows lack columns {missing}")
    if "subscriber_id" not in frame.columns:
        frame = frame.assign(subscriber_id=None)
    if "origin" not in frame.columns:
        frame = frame.assign(origin="channel")
    return frame.reset_index(drop=True)


def _copy_deliveries(s: Session, frame: pd.DataFrame, fixed: dict[str, Any]) -> int:
    """PostgreSQL: COPY the rows into a temporary table, then insert the new keys."""
    conn = s.connection().connection.driver_connection
    columns = list(frame.columns)
    buf = io.StringIO()
    out = frame.copy()
    out["subscriber_id"] = out["subscriber_id"].astype("Int64")
    out.to_csv(buf, index=False, header=False, na_rep="\\N")
    with conn.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS fan_out_rows (key text, message_id integer, "
            "channel text, recipient text, language text, subscriber_id integer, origin text) "
            "ON COMMIT DELETE ROWS"
        )
        with cur.copy(
            f"COPY fan_out_rows ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
        ) as copy:
            copy.write(buf.getvalue())
        names = list(fixed)
        cur.execute(
            f"INSERT INTO deliveries ({', '.join(columns + names)}) "
            f"SELECT {', '.join(columns)}, {', '.join('%s' for _ in names)} FROM fan_out_rows "
            "ON CONFLICT (key) DO NOTHING",
            [fixed[n] for n in names],
        )
        inserted = cur.rowcount
        cur.execute("TRUNCATE fan_out_rows")
    return int(inserted)


def _copy_subscribers(conn: Connection, *, active_only: bool) -> pd.DataFrame:
    """PostgreSQL: the subscribers table through COPY (CSV) and ``read_csv``.

    The frame has the columns and dtypes the row-by-row read gives: JSON
    columns as their text (decoded by the caller), times as UTC-aware
    datetimes (an all-NULL column stays None), NULL text as missing.
    """
    table = Subscriber.__table__
    parts: list[str] = []
    dtypes: dict[str, Any] = {}  # integers and booleans are NOT NULL in this table
    nullable_text: list[str] = []
    times: list[str] = []
    for c in table.c:
        dtypes[c.name] = str
        if isinstance(c.type, JSON):
            parts.append(f"{c.name}::text AS {c.name}")
        elif isinstance(c.type, UTCDateTime):
            parts.append(f"{c.name} AT TIME ZONE 'UTC' AS {c.name}")
            times.append(c.name)
        elif isinstance(c.type, String) and c.nullable:
            # CSV cannot tell NULL from '' once parsed: carry the NULLs in a flag column
            parts += [c.name, f"{c.name} IS NULL AS {c.name}__null"]
            dtypes[f"{c.name}__null"] = bool
            nullable_text.append(c.name)
        else:
            parts.append(c.name)
            if isinstance(c.type, Boolean):
                dtypes[c.name] = bool
            elif isinstance(c.type, Integer):
                dtypes[c.name] = "int64"
    sql = f"SELECT {', '.join(parts)} FROM {Subscriber.__tablename__}"
    if active_only:
        sql += " WHERE active IS TRUE"
    buf = io.BytesIO()
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor()
    cursor.execute("SET LOCAL DateStyle TO ISO")  # times as 2026-07-20 08:00:00[.123456]
    with cursor, cursor.copy(f"COPY ({sql} ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)") as cp:
        for chunk in cp:
            buf.write(chunk)
    buf.seek(0)
    names = [c.name for c in table.c]
    raw = pd.read_csv(
        buf,
        dtype=dtypes,
        true_values=["t"],
        false_values=["f"],
        na_filter=False,
        encoding=driver.info.encoding,
    )
    del buf
    if raw.empty:
        return pd.DataFrame([], columns=names)
    frame = pd.DataFrame(index=raw.index)
    for name in names:
        values = raw[name]
        if name in nullable_text:
            nulls = raw[f"{name}__null"]
            frame[name] = values.where(~nulls) if nulls.any() else values
        elif name in times:
            missing = values.eq("")
            if missing.all():
                frame[name] = pd.Series([None] * len(values), index=values.index, dtype=object)
            else:
                stamps = pd.to_datetime(values.where(~missing), utc=True, format="ISO8601")
                frame[name] = stamps.astype("datetime64[us, UTC]")
        else:
            frame[name] = values
    return frame


def _json_lists(values: pd.Series) -> pd.Series:
    """JSON array texts as one fresh list per row (null: []); each distinct text decoded once."""
    if values.empty:
        return pd.Series([], index=values.index, dtype=object)
    texts = values.astype(object).where(values.notna(), "null")
    codes, distinct = pd.factorize(texts)
    decoded = json.loads("[" + ",".join(distinct.tolist()) + "]")
    return pd.Series(
        [list(decoded[k] or ()) for k in codes.tolist()], index=values.index, dtype=object
    )


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("alerts.store") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _event_record(e: Event, aliases: list[str]) -> dict[str, Any]:
    preferred = [e.preferred_id, *[a for a in aliases if a != e.preferred_id]]
    return {
        "source": e.source,
        "event_id": e.preferred_id,
        "aliases": preferred,
        "time": e.time,
        "updated": e.updated,
        "latitude": e.latitude,
        "longitude": e.longitude,
        "depth_km": e.depth_km,
        "magnitude": e.magnitude,
        "magnitude_type": e.magnitude_type,
        "place": e.place,
        "status": e.status,
        "event_type": e.event_type,
        "url": e.url,
        "subject": e.key,
    }


def _active(a: Alert, v: AlertVersion) -> ActiveAlert:
    return ActiveAlert(
        alert_id=a.id,
        hazard=Hazard(a.hazard),
        subject=a.subject,
        region_code=a.region_code,
        level=Level(a.level),
        version=a.current_version,
        expires_at=a.expires_at,
        facts=dict(v.facts),
        pending_level=Level(a.pending_level) if a.pending_level else None,
        pending_since=a.pending_since,
        clear_since=a.clear_since,
        rule_id=v.rule_id,
    )


def _audit(d: Decision, now: datetime, actor: str, version: AlertVersion | None) -> AuditEntry:
    w = d.warning
    details: dict[str, Any] = {}
    if w is not None:
        details = {
            "level": w.level.colour,
            "rule_id": w.rule_id,
            "rule_set_version": w.rule_set_version,
            "value": w.observed,
            "threshold": w.threshold,
            "window_h": w.window_h,
            "reached_at": w.reached_at.isoformat() if w.reached_at else None,
            "source_ref": w.source_ref,
        }
    if d.pending_level is not None or d.clear_since is not None:
        details["pending_level"] = d.pending_level.colour if d.pending_level else None
        details["pending_since"] = d.pending_since.isoformat() if d.pending_since else None
        details["clear_since"] = d.clear_since.isoformat() if d.clear_since else None
    return AuditEntry(
        alert_id=d.alert_id,
        version=version.version if version is not None else None,
        at=now,
        actor=actor,
        action=d.action.value if d.action else "hold",
        reason=d.reason,
        details=details,
    )


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _py(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _opt(value: Any) -> str | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)
