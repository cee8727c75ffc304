"""The DAGs load cleanly and `seismic_alerts` delivers end to end under `dag.test()`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT, FeedServer
from tests.feedtools import usgs_features, usgs_feed

pytestmark = pytest.mark.airflow


def test_dags_import_without_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert "seismic_alerts" in dagbag.dags


# Tasks that must not retry, and why.
NO_RETRY = {
    # a retry after the rows were created would create a second resend round
    "resend_alert.resend",
    # a cancel is applied once; the store refuses a second cancel of an inactive alert
    "cancel_alert.cancel",
    # a retry would ask the duty officer again; an unanswered request stays pending
    "publish_alerts.approve",
    "daily_outlook.approve",
    "campaigns.approve",
    # its failure is the alarm (operators were notified); the next run checks again
    "housekeeping.stale_feeds",
    # they only turn a failed fetch into a failed run
    "weather_alerts.report_failures",
    "official_warnings.report_failures",
}


def test_every_dag_has_tags_doc_and_retries(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} has no doc_md"
        for t in dag.tasks:
            if f"{dag_id}.{t.task_id}" in NO_RETRY:
                assert t.retries == 0
                continue
            assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"
            assert t.retry_exponential_backoff, f"{dag_id}.{t.task_id}: no exponential backoff"
            assert t.execution_timeout is not None or t.task_id == "approve"


def test_dag_files_do_not_import_heavy_modules_at_top_level() -> None:
    heavy = re.compile(r"\balerts(\.|\b)(?!_airflow)|pandas")
    for path in (ROOT / "dags").glob("*.py"):
        top = [ln for ln in path.read_text().splitlines() if ln.startswith(("import ", "from "))]
        assert not any(heavy.search(ln) for ln in top), path


def _outbox(home: Path) -> list[tuple[str, int, str, str]]:
    from alerts.store import Store

    with Store(f"sqlite:///{home / 'alerts.db'}") as store:
        return [(m.alert_id, m.version, m.recipient, m.subject) for m in store.outbox()]


def test_seismic_alerts_delivers_the_china_event_once(
    dagbag, alerts_env: Path, feed_server: FeedServer, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    world = usgs_features(data / "usgs" / "significant_month.geojson")
    china = usgs_features(data / "usgs" / "china_dingri_4.5_day.geojson")
    dag = dagbag.dags["seismic_alerts"]

    # 1. The significant feed, replayed as recent: strong quakes, none near China.
    url = feed_server.serve("/feed.geojson", usgs_feed(world, newest=now - timedelta(minutes=3)))
    monkeypatch.setenv("ALERTS_FEEDS__USGS_URL", url)
    assert dag.test().state == "success"
    assert _outbox(alerts_env) == []

    # 2. The Dingri M7.1 arrives: the national red response, and the prefectures
    #    whose estimated intensity reaches a level, one message per level.
    feed = usgs_feed(china + world, newest=now - timedelta(minutes=2))
    feed_server.serve("/feed.geojson", feed)
    assert dag.test().state == "success"
    messages = {m[0]: m for m in _outbox(alerts_env)}
    leads = ("CN", "540200", "540100")  # national; red 日喀则; blue 拉萨 and three others
    assert sorted(messages) == sorted(f"earthquake:usgs:us6000pi9w:{r}" for r in leads)
    assert all(m[1:3] == (1, "public") for m in messages.values())
    national = messages["earthquake:usgs:us6000pi9w:CN"][3]
    assert "红色" in national and "日喀则" in national and "7.1" in national
    blue = messages["earthquake:usgs:us6000pi9w:540100"][3]
    assert blue.startswith(
        "【地震蓝色预警】西藏自治区拉萨市、西藏自治区山南市、西藏自治区那曲市等4地"
    )

    # 3. Run again on the same feed (304), then on a re-generated but equal feed.
    assert dag.test().state == "success"
    feed_server.serve(
        "/feed.geojson", usgs_feed(china + world, newest=now - timedelta(minutes=2), generated=1)
    )
    assert dag.test().state == "success"
    assert len(_outbox(alerts_env)) == len(leads)
