"""The operator plugin: authenticated outbox endpoints inside the Airflow api-server."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alerts_ops", ROOT / "plugins" / "alerts_ops.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def client(plugin: ModuleType):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    return TestClient(plugin.app)


def _deliver_one(data: Path, alerts_env: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from alerts.config import load_settings
    from alerts.pipeline import Runtime, run_cycle
    from tests.feedtools import usgs_features, usgs_feed

    now = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    feed = alerts_env.parent / "feed.json"
    features = usgs_features(data / "usgs" / "china_dingri_4.5_day.geojson")
    feed.write_bytes(usgs_feed(features, newest=now - timedelta(minutes=5)))
    rt = Runtime.from_settings(load_settings())
    run_cycle(rt, [("usgs", feed)], now=now)
    rt.close()


def test_every_route_requires_a_logged_in_user(client) -> None:  # type: ignore[no-untyped-def]
    for path in ("/outbox", "/api/outbox"):
        assert client.get(path).status_code in (401, 403)


def test_outbox_is_listed_for_a_logged_in_user(
    plugin: ModuleType,
    client,
    data: Path,
    alerts_env: Path,  # type: ignore[no-untyped-def]
    national_only_rules: Path,
) -> None:
    from airflow.api_fastapi.core_api.security import get_user

    _deliver_one(data, alerts_env)
    plugin.app.dependency_overrides[get_user] = lambda: object()
    try:
        items = client.get("/api/outbox").json()
        page = client.get("/outbox")
    finally:
        plugin.app.dependency_overrides.clear()
    assert [(m["alert_id"], m["version"]) for m in items] == [("earthquake:usgs:us6000pi9w:CN", 1)]
    assert page.status_code == 200 and "预警发件箱" in page.text
    assert "7.1级地震" in page.text and json.dumps(items, ensure_ascii=False)


def test_plugin_registers_the_app_and_a_menu_entry(plugin: ModuleType) -> None:
    p = plugin.AlertsOpsPlugin
    assert p.fastapi_apps[0]["url_prefix"] == "/alerts-ops"
    assert p.external_views[0]["href"] == "/alerts-ops/outbox"


def test_the_public_feed_serves_atom_and_cap_without_login(
    plugin: ModuleType, data: Path, alerts_env: Path, national_only_rules: Path
) -> None:
    from defusedxml import ElementTree

    from alerts.cap_out import validate
    from alerts.feeds import cap

    _deliver_one(data, alerts_env)
    from fastapi.testclient import TestClient

    client = TestClient(plugin.public)
    atom = client.get("/atom.xml")
    assert atom.status_code == 200 and atom.headers["content-type"] == "application/atom+xml"
    (entry,) = cap.parse_atom(atom.content)
    assert entry.link and "/cap/" in entry.link and "地震红色预警" in (entry.title or "")
    path = entry.link.split("/alerts-public", 1)[1]
    doc = client.get(path)
    assert doc.status_code == 200 and doc.headers["content-type"] == "application/cap+xml"
    validate(doc.content)
    assert ElementTree.fromstring(doc.content) is not None
    assert client.get("/cap/nope.xml").status_code == 404
    assert client.post("/atom.xml").status_code == 405  # read-only
