"""One cycle of the pipeline, as the functions the DAG tasks and the CLI both call.

fetch -> ingest (parse, merge events, grade, reconcile, record versions) ->
publish (fan out to the ledger, dispatch). Each step is safe to rerun: a
payload ingested twice yields no new version, and the ledger delivers each
version to each recipient once.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from urllib.parse import urljoin

import pandas as pd
import requests

from alerts.approval import needs_approval
from alerts.cap_publish import publication_xml
from alerts.channels import Channel, build_channel
from alerts.config import CapFeed, Settings, load_settings
from alerts.criteria import RuleSet, load_rules
from alerts.criteria.earthquake import grade_earthquakes, grade_intensity
from alerts.criteria.official import grade_official
from alerts.criteria.weather import grade_weather
from alerts.delivery import DispatchSummary, dispatch, fan_out
from alerts.feeds import FeedFormatError, Quarantined, cap, openmeteo, parser_for
from alerts.feeds import source as feed_source
from alerts.feeds.fetch import FetchError, fetch, http_session
from alerts.lifecycle import ActiveAlert, Decision, Policy, reconcile
from alerts.model import Action, Hazard, Warning, utc_iso
from alerts.regions import Regions, load_regions
from alerts.render import Renderer
from alerts.store import Publisher, Store
from alerts.store.models import FeedPayload

__all__ = [
    "IngestSummary",
    "PublishSummary",
    "Runtime",
    "cancel_alert",
    "fetch_cap_feed",
    "fetch_feed",
    "fetch_weather",
    "ingest",
    "ingest_payloads",
    "publish",
    "run_cycle",
    "runtime",
    "store_payload",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """What one process needs to run cycles, built once from the settings."""

    settings: Settings
    store: Store
    rules: RuleSet
    renderer: Renderer
    clock: Callable[[], datetime] = utcnow
    _locations: list[openmeteo.Location] | None = field(default=None, repr=False)
    _channel_session: requests.Session | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Callable[[], datetime] = utcnow
    ) -> Runtime:
        settings.home.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings,
            store=Store(settings.resolved_store_url),
            rules=load_rules(settings.rules_dir),
            renderer=renderer_for(settings),
            clock=clock,
        )

    @functools.cached_property
    def regions(self) -> Regions:
        """The regions table, read on first use: fetching and publishing never need it."""
        path = self.settings.regions_file
        return load_regions(str(path) if path else None)

    def channels(self) -> dict[str, Channel]:
        """The enabled channels, sharing one HTTP session (connection reuse)."""
        if self._channel_session is None:
            self._channel_session = requests.Session()
        return {
            c.name: build_channel(
                c, store=self.store, clock=self.clock, session=self._channel_session
            )
            for c in self.settings.channels
            if c.enabled
        }

    def locations(self) -> list[openmeteo.Location]:
        """The weather locations: the configured file, else one point per prefecture."""
        if self._locations is None:
            path = self.settings.feeds.locations_file
            self._locations = (
                openmeteo.load_locations(path) if path else openmeteo.default_locations()
            )
        return self._locations

    def policy(self) -> Policy:
        lc = self.settings.lifecycle
        return Policy(
            downgrade_dwell=timedelta(minutes=lc.downgrade_dwell_min),
            clear_after=timedelta(minutes=lc.clear_after_min),
            notify_expire=lc.notify_expire,
            per_hazard={
                Hazard(name): (
                    timedelta(minutes=t.downgrade_dwell_min),
                    timedelta(minutes=t.clear_after_min),
                )
                for name, t in lc.per_hazard.items()
            },
        )

    def publisher(self, actor: str = "pipeline") -> Publisher:
        cap_settings, lc = self.settings.cap, self.settings.lifecycle
        return Publisher(
            sender=cap_settings.sender,
            adcode=cap_settings.adcode,
            agency_code=cap_settings.agency_code,
            status=lc.status,
            notify_expire=lc.notify_expire,
            actor=actor,
            needs_approval=lambda hazard, level, action, status: needs_approval(
                self.settings.approval, hazard=hazard, level=level, action=action, status=status
            ),
        )

    def cap_document(self, ident: str, *, version: int | None = None) -> bytes:
        """CAP 1.2 XML of a publication (by identifier) or of an alert's version."""
        pub = self.store.publication(ident)
        if pub is None:
            alert = self.store.alert(ident)
            if alert is None:
                raise ValueError(f"no alert or publication {ident!r}")
            wanted = version or alert.current_version
            found = [v for v in self.store.alert_versions(ident) if v.version == wanted]
            if not found or found[0].publication_id is None:
                raise ValueError(f"alert {ident} has no version {wanted}")
            pub_id = found[0].publication_id
            pub = self.store.publications_by_id([pub_id])[pub_id]
        return publication_xml(
            pub,
            self.store.publication_members(pub.id),
            regions=self.regions,
            renderer=self.renderer,
            sender_name_zh=self.settings.issuer_zh,
            sender_name_en=self.settings.cap.sender_name_en,
        )

    def close(self) -> None:
        if self._channel_session is not None:
            self._channel_session.close()
        self.store.close()


def renderer_for(settings: Settings) -> Renderer:
    """The message renderer the settings describe (issuer, time zone, operator templates)."""
    return Renderer(
        timezone=settings.timezone,
        issuer_zh=settings.issuer_zh,
        details_url=settings.details_url,
        issuer_en=settings.cap.sender_name_en,
        templates_dir=settings.templates_dir,
        responders_file=settings.responders_file,
    )


@contextmanager
def runtime(settings: Settings | None = None) -> Iterator[Runtime]:
    """A runtime from the process's configuration, closed afterwards (what DAG tasks use)."""
    rt = Runtime.from_settings(settings or load_settings())
    try:
        yield rt
    finally:
        rt.close()


def feed_url(settings: Settings, source: str) -> str:
    feeds = settings.feeds
    urls = {"usgs": feeds.usgs_url, "cenc": feeds.cenc_url, "gdacs": feeds.gdacs_url}
    try:
        return urls[source]
    except KeyError:
        raise ValueError(f"no URL configured for source {source!r}") from None


def fetch_feed(
    rt: Runtime,
    source: str,
    *,
    feed: str | None = None,
    url: str | None = None,
    session: requests.Session | None = None,
) -> int | None:
    """Fetch one feed and keep the body; return the new payload's id, or None if unchanged.

    Conditional GET with the feed's stored validators (a 304 is "nothing new"),
    and nothing stored when the body is byte-identical to the last one. Every
    attempt is recorded in ``feed_state``; a failure is recorded and re-raised
    so the task fails loudly and staleness stays visible.
    """
    url = url or feed_url(rt.settings, source)
    feed = feed or source
    state = rt.store.feed_state(feed)
    same_url = state is not None and state.url == url
    own_session = session is None
    session = session or http_session(rt.settings.feeds)
    try:
        got = fetch(
            session,
            url,
            rt.settings.feeds,
            etag=state.etag if state and same_url else None,
            last_modified=state.last_modified if state and same_url else None,
        )
    except FetchError as exc:
        rt.store.record_fetch(feed, source=source, url=url, now=rt.clock(), error=str(exc))
        raise
    finally:
        if own_session:
            session.close()
    now = rt.clock()
    last = None if got.not_modified else rt.store.latest_payload(source, url)
    if got.not_modified or (last is not None and last.sha256 == got.sha256):
        rt.store.record_fetch(
            feed, source=source, url=url, now=now, etag=got.etag, last_modified=got.last_modified
        )
        return None
    payload_id = store_payload(
        rt,
        source,
        got.body,
        url=url,
        fetched_at=now,
        etag=got.etag,
        last_modified=got.last_modified,
    )
    rt.store.record_fetch(
        feed,
        source=source,
        url=url,
        now=now,
        etag=got.etag,
        last_modified=got.last_modified,
        payload_id=payload_id,
    )
    return payload_id


def fetch_cap_feed(
    rt: Runtime, feed: CapFeed, *, session: requests.Session | None = None
) -> list[int]:
    """Fetch a CAP source: an Atom index and the CAP documents it links to, or one document.

    The index's entries already fetched (by id and ``updated``) are kept as
    the feed's cursor, so each document is fetched once per revision. Polling
    faster than the publisher's ``min_interval_s`` is skipped. A document that
    cannot be fetched fails the call after the others were stored, and is
    retried next time (it stays out of the cursor).
    """
    name = f"cap:{feed.name}"
    state = rt.store.feed_state(name)
    now = rt.clock()
    if state and state.last_attempt_at and state.consecutive_failures == 0:
        if (now - state.last_attempt_at).total_seconds() < feed.min_interval_s:
            return []
    own_session = session is None
    session = session or http_session(rt.settings.feeds)
    try:
        index_id = fetch_feed(rt, "cap", feed=name, url=feed.url, session=session)
        if index_id is None:
            return []
        body = rt.store.payload(index_id).body
        if not cap.looks_like_atom(body):
            return [index_id]
        seen: dict[str, str] = dict((state.cursor or {}).get("seen", {}) if state else {})
        stored: list[int] = []
        failures: list[str] = []
        for entry in cap.parse_atom(body):
            revision = entry.updated.isoformat() if entry.updated else ""
            if not entry.link or seen.get(entry.id) == revision:
                continue
            try:
                got = fetch(session, urljoin(feed.url, entry.link), rt.settings.feeds)
            except FetchError as exc:
                failures.append(str(exc))
                continue
            stored.append(
                store_payload(
                    rt,
                    "cap",
                    got.body,
                    url=got.url,
                    fetched_at=rt.clock(),
                    etag=got.etag,
                    last_modified=got.last_modified,
                )
            )
            seen[entry.id] = revision
        rt.store.record_fetch(
            name, source="cap", url=feed.url, now=rt.clock(), cursor={"seen": seen}
        )
        if failures:
            error = f"{len(failures)} CAP document(s) failed: " + "; ".join(failures[:5])
            rt.store.record_fetch(name, source="cap", url=feed.url, now=rt.clock(), error=error)
            raise FetchError(error)
        return stored
    finally:
        if own_session:
            session.close()


def weather_batches(rt: Runtime) -> list[tuple[int, str, str]]:
    """The Open-Meteo requests for the configured locations: (batch, forecast URL, air URL)."""
    feeds = rt.settings.feeds
    return [
        (n, forecast_url, air_url)
        for n, (_, forecast_url, air_url) in enumerate(
            openmeteo.request_urls(
                rt.locations(),
                base_url=feeds.openmeteo_url,
                air_quality_url=feeds.air_quality_url,
                batch_size=feeds.openmeteo_batch_size,
            )
        )
    ]


def fetch_weather_batch(
    rt: Runtime, batch: int, *, session: requests.Session | None = None
) -> list[int]:
    """Fetch one batch's forecast and air quality (each its own feed and state).

    Both requests are tried; their failures are raised together afterwards.
    """
    found = [b for b in weather_batches(rt) if b[0] == batch]
    if not found:
        raise ValueError(f"no weather batch {batch} (there are {len(weather_batches(rt))})")
    _, forecast_url, air_url = found[0]
    own_session = session is None
    session = session or http_session(rt.settings.feeds)
    stored: list[int] = []
    failures: list[str] = []
    try:
        for kind, url in (("forecast", forecast_url), ("air", air_url)):
            try:
                pid = fetch_feed(
                    rt, "open-meteo", feed=f"open-meteo:{kind}:{batch}", url=url, session=session
                )
            except FetchError as exc:
                failures.append(f"{kind} batch {batch}: {exc}")
                continue
            if pid is not None:
                stored.append(pid)
    finally:
        if own_session:
            session.close()
    if failures:
        raise FetchError("; ".join(failures))
    return stored


def fetch_weather(rt: Runtime, *, session: requests.Session | None = None) -> list[int]:
    """Fetch forecasts and air quality for every configured location, in batches.

    Each batch is its own feed (``open-meteo:forecast:N`` / ``open-meteo:air:N``)
    with its own state, so one failing batch does not stop the others; the
    failures are raised together after every batch was tried.
    """
    own_session = session is None
    session = session or http_session(rt.settings.feeds)
    stored: list[int] = []
    failures: list[str] = []
    try:
        for batch, _, _ in weather_batches(rt):
            try:
                stored += fetch_weather_batch(rt, batch, session=session)
            except FetchError as exc:
                failures.append(str(exc))
    finally:
        if own_session:
            session.close()
    if failures:
        raise FetchError(f"{len(failures)} Open-Meteo batch(es) failed: " + "; ".join(failures))
    return stored


def store_payload(
    rt: Runtime,
    source: str,
    body: bytes,
    *,
    url: str,
    fetched_at: datetime,
    etag: str | None = None,
    last_modified: str | None = None,
) -> int:
    parser_for(source)  # reject an unknown source before keeping anything
    return rt.store.save_payload(
        FeedPayload(
            source=source,
            url=url,
            fetched_at=fetched_at,
            status_code=200,
            sha256=sha256(body).hexdigest(),
            etag=etag,
            last_modified=last_modified,
            size=len(body),
            body=body,
        )
    )


@dataclass
class IngestSummary:
    records_read: int = 0
    events_read: int = 0
    quarantined: int = 0
    warnings: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    version_ids: list[int] = field(default_factory=list)


def ingest(rt: Runtime, payload_ids: Iterable[int], *, now: datetime) -> IngestSummary:
    """Parse, merge, grade and reconcile the given payloads as one cycle at ``now``."""
    summary = IngestSummary()
    frames: dict[str, list[pd.DataFrame]] = {"earthquake": [], "weather": [], "official": []}
    for pid in payload_ids:
        payload = rt.store.payload(pid)
        src = feed_source(payload.source)
        try:
            if src.name == "open-meteo":  # answers map to locations by request order
                located = openmeteo.locations_in_url(payload.url, rt.locations())
                result = openmeteo.parse(payload.body, located or None)
            else:
                result = src.parse(payload.body)
        except FeedFormatError as exc:
            bad = Quarantined(
                payload.source,
                None,
                str(exc),
                payload.body[:2000].decode("utf-8", errors="replace"),
            )
            summary.quarantined += rt.store.quarantine([bad], payload_id=pid, now=now)
            continue
        summary.quarantined += rt.store.quarantine(result.quarantined, payload_id=pid, now=now)
        summary.records_read += len(result.frame)
        if result.frame.empty:
            continue
        if src.kind == "earthquake":
            summary.events_read += len(result.frame)
            frames["earthquake"].append(
                rt.store.merge_events(result.frame, now=now, same_event=src.same_event)
            )
        else:
            frames[src.kind].append(result.frame)

    active = rt.store.active_alerts()
    cycle = grade_cycle(rt, frames, now, active=active)
    summary.warnings = len(cycle.warnings)
    decisions = reconcile(
        active,
        cycle.warnings,
        observed=cycle.observed,
        observed_regions=cycle.observed_regions,
        withdrawn=cycle.withdrawn,
        now=now,
        policy=rt.policy(),
        suppressed=rt.store.suppressed(now),
    )
    summary.version_ids = rt.store.apply(decisions, now=now, publisher=rt.publisher())
    summary.actions = dict(Counter(d.action.value for d in decisions if d.action))
    return summary


@dataclass
class GradedCycle:
    warnings: list[Warning]
    observed: set[str]  # subjects this cycle saw (events, official documents)
    observed_regions: set[tuple[str, str]]  # (subject, region) pairs it graded (weather)
    withdrawn: set[str]  # subjects their source retracted


def grade_cycle(
    rt: Runtime,
    frames: dict[str, list[pd.DataFrame]],
    now: datetime,
    *,
    active: list[ActiveAlert],
) -> GradedCycle:
    """Grade one cycle's earthquakes, weather and official warnings with the rule set.

    ``active`` (the alerts in force) lets an authority's Update or Cancel
    document find the alert it continues.
    """
    rules = rt.rules
    warnings: list[Warning] = []
    observed: set[str] = set()
    observed_regions: set[tuple[str, str]] = set()
    withdrawn: set[str] = set()
    if frames["earthquake"]:
        events = pd.concat(frames["earthquake"], ignore_index=True)
        events = events.drop_duplicates("subject", keep="last")
        warnings += grade_earthquakes(events, rules.earthquake, rt.regions, now)
        warnings += grade_intensity(events, rules.earthquake, rt.regions, now)
        observed |= set(events["subject"])
        withdrawn |= set(events.loc[events["status"] == "deleted", "subject"])
    official = pd.concat(frames["official"], ignore_index=True) if frames["official"] else None
    if official is not None:
        chain = _official_chain(official, active)
        for w in grade_official(official, rules.official, now):
            warnings.append(dataclasses.replace(w, subject=chain.get(w.subject, w.subject)))
        observed |= {
            chain.get(s, s) for s in (f"{r.source}:{r.identifier}" for r in official.itertuples())
        }
        withdrawn |= {
            chain.get(f"{r.source}:{r.identifier}", "")
            for r in official.itertuples()
            if r.msg_type == "Cancel"
        } - {""}
    if frames["weather"]:
        weather = combine_weather(frames["weather"])
        names = {loc.id: loc.name or loc.id for loc in rt.locations()}
        for loc, lat, lon in (
            weather[["location_id", "latitude", "longitude"]]
            .drop_duplicates("location_id")
            .itertuples(index=False)
        ):
            if loc not in names and pd.notna(lat) and pd.notna(lon):  # an unlisted point
                names[loc] = rt.regions.nearest(float(lon), float(lat)).full_name
        warnings += grade_weather(
            weather, rules.weather, now, cyclones=active_cyclones(official), names=names
        )
        observed_regions |= {("weather", str(loc)) for loc in weather["location_id"].unique()}
    return GradedCycle(warnings, observed, observed_regions, withdrawn)


def _official_chain(official: pd.DataFrame, active: list[ActiveAlert]) -> dict[str, str]:
    """Map an Update or Cancel document to the subject of the alert it references.

    An authority's Update carries a new identifier and references the
    document it replaces: it continues that alert (update, upgrade,
    downgrade) instead of opening a second one; a Cancel withdraws it. An
    alert is known by its first document and by the one its current version
    came from.
    """
    known: dict[str, str] = {}
    for a in active:
        known[a.subject] = a.subject
        ref = a.facts.get("source_reference")
        if isinstance(ref, str) and len(ref.split(",")) >= 2:
            known[f"{a.subject.split(':', 1)[0]}:{ref.split(',')[1]}"] = a.subject
    chain: dict[str, str] = {}
    for r in official.itertuples():
        me = f"{r.source}:{r.identifier}"
        for ref in r.references if isinstance(r.references, list) else []:
            parts = str(ref).split(",")
            if len(parts) >= 2 and f"{r.source}:{parts[1]}" in known:
                chain[me] = known[f"{r.source}:{parts[1]}"]
                break
    return chain


def combine_weather(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Forecast and air-quality answers as one frame: first known value per location and hour."""
    frame = pd.concat(frames, ignore_index=True)
    return frame.groupby(["location_id", "time"], sort=False, as_index=False).first()


def active_cyclones(official: pd.DataFrame | None) -> list[tuple[float, float]]:
    """Positions of tropical cyclones that GDACS reports as current."""
    if official is None or "event_type" not in official.columns:
        return []
    tc = official[(official["event_type"] == "TC") & official["latitude"].notna()]
    if "expires" in tc.columns:
        tc = tc[tc["expires"].isna()]  # GDACS: no expiry while the event is current
    return [(float(r.latitude), float(r.longitude)) for r in tc.itertuples()]


def ingest_payloads(rt: Runtime, payload_ids: Sequence[int]) -> IngestSummary:
    """Ingest stored payloads at the time they were fetched, so a rerun replays the same cycle.

    With no payload (the feed was unchanged) the cycle still runs at the
    clock's time, so alerts whose validity ended are expired.
    """
    times = [rt.store.payload(pid).fetched_at for pid in payload_ids]
    return ingest(rt, payload_ids, now=max(times) if times else rt.clock())


def cancel_alert(rt: Runtime, alert_id: str, *, reason: str, actor: str) -> int:
    """Cancel an active alert by hand (解除); the audit trail names the operator."""
    if not reason.strip():
        raise ValueError("a reason is required")
    active = rt.store.active_alert(alert_id)
    if active is None:
        raise ValueError(f"no active alert {alert_id!r} (see `alerts list --active`)")
    decision = Decision(Action.CANCEL, alert_id, None, active, f"cancelled by {actor}: {reason}")
    (version_id,) = rt.store.apply([decision], now=rt.clock(), publisher=rt.publisher(actor))
    return version_id


@dataclass
class PublishSummary:
    deliveries_created: int = 0
    delivered: int = 0
    retry: int = 0
    dead: int = 0
    unknown: int = 0


def publish(rt: Runtime, *, worker: str | None = None) -> PublishSummary:
    """Fan out new versions to the ledger and dispatch whatever is due."""
    created = fan_out_new(rt)
    result = dispatch_due(rt, worker=worker)
    return PublishSummary(created, result.sent, result.retry, result.dead, result.unknown)


def fan_out_new(rt: Runtime) -> int:
    """Ledger rows for every publication that may go (none waiting for a duty officer)."""
    return fan_out(
        rt.store,
        rt.renderer,
        rt.settings.channels,
        now=rt.clock(),
        regions=rt.regions if rt.settings.regions_file else None,
    )


def dispatch_due(
    rt: Runtime,
    *,
    worker: str | None = None,
    max_claims: int | None = None,
    only: Iterable[str] | None = None,
) -> DispatchSummary:
    """Dispatch every ledger row due now (of the ``only`` channels, when given)."""
    return dispatch(
        rt.store,
        rt.channels(),
        {c.name: c for c in rt.settings.channels},
        clock=rt.clock,
        worker=worker,
        policy=rt.settings.delivery,
        max_claims=max_claims,
        only=only,
    )


def run_cycle(
    rt: Runtime, inputs: Sequence[tuple[str, Path]], *, now: datetime
) -> dict[str, object]:
    """The whole cycle on local files, without a scheduler (``alerts pipeline``)."""
    ids = [
        store_payload(rt, source, path.read_bytes(), url=path.resolve().as_uri(), fetched_at=now)
        for source, path in inputs
    ]
    ing = ingest(rt, ids, now=now)
    pub = publish(rt)
    return {
        "now": utc_iso(now),
        "events_read": ing.events_read,
        "quarantined": ing.quarantined,
        "warnings": ing.warnings,
        "issued": ing.actions.get("issue", 0),
        "updated": sum(ing.actions.get(a, 0) for a in ("update", "upgrade", "downgrade")),
        "cancelled": ing.actions.get("cancel", 0),
        "expired": ing.actions.get("expire", 0),
        "extended": ing.actions.get("extend", 0),
        "versions": len(ing.version_ids),
        **{k: v for k, v in asdict(pub).items()},
    }
