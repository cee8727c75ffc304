"""Event-driven seismic alerts: watcher edges, the trigger, the deadline notice, the DAG."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from alerts.config import load_settings
from alerts.feeds import parser_for
from alerts.feeds.fetch import FetchError
from alerts.feeds.watch import (
    changes,
    fallback_payloads,
    mark_ingested,
    min_magnitude,
    poll,
    watch_feed,
)
from alerts.pipeline import Runtime
from alerts_airflow.triggers import FeedWatchTrigger, triggered_payload_ids
from tests.conftest import ROOT, FeedServer
from tests.feedtools import usgs_features, usgs_feed

NOW = datetime.now(UTC).replace(microsecond=0)
DINGRI = "us6000pi9w"


def _china(data: Path) -> list[dict[str, Any]]:
    return usgs_features(data / "usgs" / "china_dingri_4.5_day.geojson")


def _small(data: Path) -> list[dict[str, Any]]:
    """The recorded hour feed without its one strong quake: every magnitude below 4."""
    small = [
        f
        for f in usgs_features(data / "usgs" / "all_hour.geojson")
        if (f["properties"]["mag"] or 0) < 4
    ]
    assert small
    return small


def _revised(features: list[dict[str, Any]], event: str, **props: Any) -> list[dict[str, Any]]:
    out = json.loads(json.dumps(features))
    for f in out:
        if f["id"] == event:
            f["properties"].update(props)
    return out


@pytest.fixture
def rt(
    alerts_env: Path, store_url: str, monkeypatch: pytest.MonkeyPatch, feed_server: FeedServer
) -> Iterator[Runtime]:
    monkeypatch.setenv("ALERTS_FEEDS__RETRIES", "0")
    monkeypatch.setenv("ALERTS_STORE_URL", store_url)
    monkeypatch.setenv("ALERTS_FEEDS__USGS_URL", f"{feed_server.base_url}/usgs.geojson")
    monkeypatch.setenv("ALERTS_FEEDS__CENC_URL", f"{feed_server.base_url}/cenc.json")
    runtime = Runtime.from_settings(load_settings())
    yield runtime
    runtime.close()


def _serve_usgs(
    feed_server: FeedServer, features: list[dict[str, Any]], generated: int = 0
) -> None:
    body = usgs_feed(features, newest=NOW - timedelta(minutes=2), generated=generated)
    feed_server.serve("/usgs.geojson", body)


# -- the edge logic ----------------------------------------------------------------------


def test_the_watch_magnitude_is_the_lowest_graded_one(rt: Runtime) -> None:
    assert min_magnitude(rt.rules.earthquake) == 4.0  # intensity.min_magnitude < blue M5.0
    national_only = rt.rules.earthquake.model_copy(update={"intensity": None})
    assert min_magnitude(national_only) == 5.0


def test_first_sight_fires_an_unchanged_feed_does_not(
    rt: Runtime, feed_server: FeedServer, data: Path
) -> None:
    _serve_usgs(feed_server, _china(data) + _small(data))
    first = poll(rt, "usgs")
    assert first is not None and first.events == (DINGRI,)
    assert first.as_payload() == {
        "source": "usgs",
        "payload_ids": [first.payload_id],
        "events": [DINGRI],
    }
    assert poll(rt, "usgs") is None  # 304 from the stored ETag
    _serve_usgs(feed_server, _china(data) + _small(data), generated=1)
    assert poll(rt, "usgs") is None  # a new body (stored) with the same events
    state = rt.store.feed_state(watch_feed("usgs"))
    assert state is not None and state.cursor is not None
    assert state.cursor["payload_id"] > first.payload_id
    assert list(state.cursor["seen"]) == [DINGRI]  # small quakes are not tracked


def test_a_revised_event_fires_again(rt: Runtime, feed_server: FeedServer, data: Path) -> None:
    china = _china(data)
    _serve_usgs(feed_server, china)
    assert poll(rt, "usgs") is not None
    updated = china[0]["properties"]["updated"] + 600_000
    _serve_usgs(feed_server, _revised(china, DINGRI, updated=updated, mag=7.0))
    again = poll(rt, "usgs")
    assert again is not None and again.events == (DINGRI,)
    assert poll(rt, "usgs") is None


def test_small_quakes_do_not_fire_until_one_reaches_the_watch_magnitude(
    rt: Runtime, feed_server: FeedServer, data: Path
) -> None:
    small = _small(data)
    _serve_usgs(feed_server, small)
    assert poll(rt, "usgs") is None
    strong = small[0]["id"]
    _serve_usgs(feed_server, _revised(small, strong, mag=4.2, updated=int(NOW.timestamp() * 1000)))
    hit = poll(rt, "usgs")
    assert hit is not None and hit.events == (strong,)


def test_a_tracked_event_revised_below_the_threshold_still_counts(data: Path) -> None:
    frame = parser_for("usgs")(usgs_feed(_china(data), newest=NOW)).frame
    new, seen = changes(frame, {}, minimum=4.0)
    assert list(new) == [DINGRI]
    frame.loc[0, "magnitude"] = 3.5
    new, seen = changes(frame, seen, minimum=4.0)
    assert list(new) == [DINGRI] and DINGRI in seen  # downgraded: the alert must follow
    assert changes(frame, seen, minimum=4.0)[0] == {}


def test_an_alias_of_a_seen_event_is_not_new(data: Path) -> None:
    frame = parser_for("usgs")(usgs_feed(_china(data), newest=NOW)).frame
    _, seen = changes(frame, {}, minimum=4.0)
    frame.loc[0, "event_id"] = "at00other"
    frame.at[0, "aliases"] = ["at00other", DINGRI]
    assert changes(frame, seen, minimum=4.0)[0] == {}


def test_cenc_events_fire_once(rt: Runtime, feed_server: FeedServer, data: Path) -> None:
    feed_server.serve("/cenc.json", data / "cenc" / "catalogs_current.json")
    hit = poll(rt, "cenc")
    assert hit is not None and len(hit.events) == 4
    assert poll(rt, "cenc") is None


def test_two_pollers_that_read_the_same_cursor_fire_once(
    rt: Runtime, feed_server: FeedServer, data: Path
) -> None:
    _serve_usgs(feed_server, _china(data))
    state = rt.store.feed_state(watch_feed("usgs"))
    assert state is None
    assert poll(rt, "usgs") is not None
    # The second poller read the cursor before the first one wrote it: it sees the
    # same revision as new, and its claim finds the first one's.
    stale = rt.store.feed_state(watch_feed("usgs"))
    assert stale is not None
    rt.store.record_fetch(
        watch_feed("usgs"), source="usgs", url=stale.url, now=NOW, cursor={"seen": {}}
    )
    other = Runtime.from_settings(load_settings())
    try:
        assert poll(other, "usgs") is None
    finally:
        other.close()


def test_concurrent_pollers_fire_once(rt: Runtime, feed_server: FeedServer, data: Path) -> None:
    _serve_usgs(feed_server, _china(data))
    runtimes = [Runtime.from_settings(load_settings()) for _ in range(4)]
    barrier = threading.Barrier(len(runtimes))
    results: list[object] = []

    def run(r: Runtime) -> None:
        barrier.wait()
        try:
            results.append(poll(r, "usgs"))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in runtimes]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for r in runtimes:
            r.close()
    assert len(results) == 4
    # Pollers racing to create the feed's first state row may fail (Store.record_fetch
    # is not an upsert); the trigger logs that and polls again next round.
    failed = [r for r in results if isinstance(r, Exception)]
    assert all("feed_state" in str(exc) for exc in failed), failed
    retried = [poll(rt, "usgs") for _ in failed]
    fired = [r for r in [*results, *retried] if r is not None and not isinstance(r, Exception)]
    assert len(fired) == 1


# -- the minute fallback ---------------------------------------------------------------------


def test_the_fallback_ingests_what_the_watcher_stored_until_it_is_marked(
    rt: Runtime, feed_server: FeedServer, data: Path
) -> None:
    _serve_usgs(feed_server, _china(data))
    hit = poll(rt, "usgs")
    assert hit is not None
    # The trigger event never became a run: the minute cycle's own fetch finds the
    # body already stored, and the fallback still hands it over.
    assert fallback_payloads(rt, fetch=["usgs"], watched=["usgs"]) == [hit.payload_id]
    mark_ingested(rt, [hit.payload_id])
    assert fallback_payloads(rt, fetch=["usgs"], watched=["usgs"]) == []
    mark_ingested(rt, [hit.payload_id - 1] if hit.payload_id > 1 else [])  # never goes back
    assert fallback_payloads(rt, watched=["usgs"]) == []


def test_the_fallback_survives_one_failing_source_but_not_all(
    rt: Runtime, feed_server: FeedServer, data: Path
) -> None:
    _serve_usgs(feed_server, _china(data))
    feed_server.serve("/cenc.json", b"", status=500)
    got = fallback_payloads(rt, fetch=["usgs", "cenc"])
    assert len(got) == 1
    failing = rt.store.feed_state("cenc")
    assert failing is not None and failing.consecutive_failures == 1
    feed_server.serve("/usgs.geojson", b"", status=503)
    with pytest.raises(FetchError, match="every source failed"):
        fallback_payloads(rt, fetch=["usgs", "cenc"])


# -- the trigger ------------------------------------------------------------------------------


def test_the_trigger_serializes_and_round_trips() -> None:
    from airflow.sdk import AssetWatcher
    from airflow.triggers.base import BaseEventTrigger

    trigger = FeedWatchTrigger(sources=["usgs", "cenc"], interval=12, min_magnitude=4.5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "alerts_airflow.triggers.FeedWatchTrigger"
    assert kwargs == {"sources": ["usgs", "cenc"], "interval": 12.0, "min_magnitude": 4.5}
    module, _, name = classpath.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert again.serialize() == (classpath, kwargs)
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*again.serialize())
    AssetWatcher(name="w", trigger=trigger)  # only event triggers are accepted
    with pytest.raises(ValueError, match="interval"):
        FeedWatchTrigger(interval=1)


async def _events(
    trigger: FeedWatchTrigger,
    seconds: float,
    *,
    server: FeedServer | None = None,
    polls: int = 0,
    cap_s: float = 60.0,
) -> list[Any]:
    """Run the trigger for a while, as the triggerer would; its events.

    At least ``seconds``, and until ``server`` saw ``polls`` more USGS polls
    (a loaded machine polls slower than the fast test interval), at most ``cap_s``.
    """
    events: list[Any] = []
    start = len(server.hits) if server is not None else 0

    def polled() -> int:
        return 0 if server is None else server.hits[start:].count("/usgs.geojson")

    async def consume() -> None:
        async for event in trigger.run():
            events.append(event.payload)

    task = asyncio.create_task(consume())
    loop = asyncio.get_running_loop()
    began = loop.time()
    while loop.time() - began < cap_s and (loop.time() - began < seconds or polled() < polls):
        await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return events


def _fast(sources: list[str]) -> FeedWatchTrigger:
    trigger = FeedWatchTrigger(sources=sources)
    trigger.interval = 0.05  # the minimum is for production; tests poll fast
    return trigger


def test_the_trigger_fires_on_a_new_payload_then_stays_quiet(
    rt: Runtime, feed_server: FeedServer, data: Path
) -> None:
    _serve_usgs(feed_server, _china(data))
    feed_server.serve("/cenc.json", b"", status=500)  # one failing source stops nothing
    events = asyncio.run(_events(_fast(["cenc", "usgs"]), 2.0, server=feed_server, polls=3))
    polls = feed_server.hits.count("/usgs.geojson")
    assert polls >= 3, polls
    assert len(events) == 1
    (event,) = events
    assert event["source"] == "usgs" and event["events"] == [DINGRI]
    assert rt.store.payload(event["payload_ids"][0]).source == "usgs"

    # Re-created (after the event, a restart): it remembers through the store.
    assert asyncio.run(_events(_fast(["usgs"]), 0.5, server=feed_server, polls=3)) == []
    china = _china(data)
    revised = _revised(china, DINGRI, updated=china[0]["properties"]["updated"] + 60_000)
    _serve_usgs(feed_server, revised)
    events = asyncio.run(_events(_fast(["usgs"]), 1.0, server=feed_server, polls=3))
    assert [e["events"] for e in events] == [[DINGRI]]


def test_triggered_payload_ids_reads_every_event_of_every_asset() -> None:
    def ev(payload: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(extra={"from_trigger": True, "payload": payload})

    events = {
        "feeds": [ev({"payload_ids": [3]}), ev({"payload_ids": [5, 3]})],
        "alias": [ev({"payload_ids": [7]}), SimpleNamespace(extra={})],
    }
    assert triggered_payload_ids(events) == [3, 5, 7]
    assert triggered_payload_ids({}, {"payload_ids": [9]}) == [9]
    assert triggered_payload_ids({}, {}) is None  # the minute timetable: fetch
    assert triggered_payload_ids(None, None) is None


# -- the deadline notice ----------------------------------------------------------------------


def test_a_missed_deadline_notifies_internal_channels_once(
    alerts_env: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from alerts.store import Store
    from alerts_airflow.notify import deadline_missed

    channels = [
        {"name": "outbox", "type": "outbox"},
        {"name": "duty", "type": "outbox", "audience": "internal", "recipients": ["duty-room"]},
    ]
    monkeypatch.setenv("ALERTS_CHANNELS", json.dumps(channels))
    context = {
        "dag_run": {"dag_id": "seismic_alerts", "dag_run_id": "r1", "state": "running"},
        "deadline": {"id": "d", "deadline_time": "2026-01-01T00:01:00Z"},
    }
    with caplog.at_level("ERROR", logger="alerts_airflow.notify"):
        assert asyncio.run(deadline_missed(context=context, dag_id="seismic_alerts")) == 1
    assert any("r1" in r.getMessage() for r in caplog.records)
    asyncio.run(deadline_missed(context=context, dag_id="seismic_alerts"))
    with Store(load_settings().resolved_store_url) as store:
        sent = store.outbox()
    assert [(m.channel, m.recipient) for m in sent] == [("duty", "duty-room")]
    assert "seismic_alerts" in sent[0].subject and "r1" in sent[0].body


def test_without_internal_channels_the_notice_is_only_logged(
    alerts_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from alerts_airflow.notify import notify_operators

    with caplog.at_level("ERROR", logger="alerts_airflow.notify"):
        assert notify_operators("late", "run r2 is late", key="k") == 0
    assert "run r2 is late" in caplog.text


# -- the DAG ---------------------------------------------------------------------------------


@pytest.mark.airflow
def test_the_dag_is_scheduled_by_the_asset_or_every_minute(dagbag: Any) -> None:
    from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable

    assert dagbag.import_errors == {}
    dag = dagbag.dags["seismic_alerts"]
    timetable = dag.timetable
    assert isinstance(timetable, AssetOrTimeSchedule)
    assert isinstance(timetable.timetable, CronTriggerTimetable)
    asset = timetable.asset_condition
    assert isinstance(asset, Asset) and asset.name == "seismic_feeds"
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, FeedWatchTrigger)
    assert watcher.trigger.serialize()[1]["sources"] == ["usgs", "cenc"]
    assert dag.max_active_runs == 1
    for t in dag.tasks:
        assert t.retries >= 1 and t.retry_exponential_backoff > 1 and t.execution_timeout


def test_the_prepared_deadline_calls_the_operator_notice() -> None:
    import importlib.util

    from airflow.sdk import AsyncCallback, DeadlineReference

    spec = importlib.util.spec_from_file_location(
        "seismic_dag", ROOT / "dags" / "seismic_alerts.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    deadline = module.DEADLINE
    assert deadline.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert deadline.interval == timedelta(seconds=60)
    assert isinstance(deadline.callback, AsyncCallback)
    assert deadline.callback.path == "alerts_airflow.notify.deadline_missed"


def _outbox(home: Path) -> list[tuple[str, int, str]]:
    from alerts.store import Store

    with Store(f"sqlite:///{home / 'alerts.db'}") as store:
        return sorted((m.alert_id, m.version, m.recipient) for m in store.outbox())


def _registered_watch_triggers() -> list[dict[str, Any]]:
    """The watcher triggers the DAG's sync registered for the triggerer (as it will build them)."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(Trigger).where(Trigger.classpath == "alerts_airflow.triggers.FeedWatchTrigger")
        ).all()
        return [dict(row.kwargs) for row in rows]


@contextlib.contextmanager
def _with_asset_event(payload: dict[str, Any]) -> Iterator[None]:
    """Make the next ``dag.test()`` run consume one trigger event of the watched asset,
    as a run the scheduler created from the watcher's event would."""
    import airflow.models.dagrun as dagrun_module
    from airflow.models.asset import AssetEvent, AssetModel
    from sqlalchemy import select

    original = dagrun_module.get_or_create_dagrun

    def create(*args: Any, **kwargs: Any) -> Any:
        dr = original(*args, **kwargs)
        session = kwargs["session"]
        asset = session.scalars(select(AssetModel).where(AssetModel.name == "seismic_feeds")).one()
        event = AssetEvent(asset_id=asset.id, extra={"from_trigger": True, "payload": payload})
        session.add(event)
        session.flush()
        dr.consumed_asset_events.append(event)
        session.commit()
        return dr

    dagrun_module.get_or_create_dagrun = create
    try:
        yield
    finally:
        dagrun_module.get_or_create_dagrun = original


@pytest.mark.airflow
def test_a_trigger_event_run_delivers_once_and_the_fallback_finds_nothing_new(
    dagbag: Any,
    alerts_env: Path,
    feed_server: FeedServer,
    data: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALERTS_FEEDS__RETRIES", "0")
    monkeypatch.setenv("ALERTS_FEEDS__USGS_URL", f"{feed_server.base_url}/usgs.geojson")
    _serve_usgs(feed_server, _china(data))
    dag = dagbag.dags["seismic_alerts"]

    # What the trigger does in the triggerer: one poll, one event.
    rt = Runtime.from_settings(load_settings())
    try:
        hit = poll(rt, "usgs")
    finally:
        rt.close()
    assert hit is not None

    hits_before = len(feed_server.hits)
    with _with_asset_event(hit.as_payload()):
        assert dag.test(logical_date=None).state == "success"
    assert len(feed_server.hits) == hits_before  # a triggered run does not fetch
    assert _registered_watch_triggers() == [
        {"sources": ["usgs", "cenc"], "interval": 10.0, "min_magnitude": None}  # the defaults
    ]
    delivered = _outbox(alerts_env)
    assert delivered and {m[0].split(":")[2] for m in delivered} == {DINGRI}
    assert all(m[1:] == (1, "public") for m in delivered)

    # The minute fallback: its fetch finds the stored body, which was ingested.
    assert dag.test(logical_date=None).state == "success"
    assert len(feed_server.hits) > hits_before
    # A replay of the same payload by hand, and a second delivery of the event.
    assert dag.test(logical_date=None, run_conf={"payload_ids": [hit.payload_id]}).state == (
        "success"
    )
    with _with_asset_event(hit.as_payload()):
        assert dag.test(logical_date=None).state == "success"
    assert _outbox(alerts_env) == delivered
