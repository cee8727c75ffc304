"""The earthquake message template, rendered in Chinese."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import pytest

from alerts.criteria import load_earthquake_rules
from alerts.feeds.usgs import parse
from alerts.grading import grade_earthquakes
from alerts.regions import load_regions
from alerts.render import Rendered, Renderer

ALERT_ID = "earthquake:usgs:us6000pi9w:CN"
SENT = datetime(2025, 1, 7, 1, 20, tzinfo=UTC)
ISSUER = "应急管理局预警发布中心"
FACTS: dict[str, Any] = {
    "event_id": "us6000pi9w",
    "source": "usgs",
    "magnitude": 7.1,
    "magnitude_type": "mww",
    "latitude": 28.639,
    "longitude": 87.3608,
    "depth_km": 10.0,
    "place": "2025 Southern Tibetan Plateau Earthquake",
    "time": "2025-01-07T01:05:16.824000+00:00",
    "status": "reviewed",
    "url": "https://earthquake.usgs.gov/earthquakes/eventpage/us6000pi9w",
    "region_adcode": "540200",
    "region_name": "西藏自治区日喀则市",
    "region_distance_km": 0.0,
}


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url="http://alerts.test")


def render(renderer: Renderer, action: str = "issue", level: int = 4, **facts: Any) -> Rendered:
    return renderer.render(
        alert_id=ALERT_ID,
        version=1,
        action=action,
        hazard="earthquake",
        level=level,
        facts={**FACTS, **facts},
        sent=SENT,
        expires=SENT + timedelta(hours=24),
    )


@pytest.mark.parametrize(
    ("action", "level", "subject", "phrase"),
    [
        (
            "issue",
            4,
            "【地震红色预警】西藏自治区日喀则市7.1级地震",
            f"{ISSUER}发布地震红色（I级）预警。",
        ),
        (
            "upgrade",
            4,
            "【地震红色预警·升级】西藏自治区日喀则市7.1级地震",
            "本预警升级为红色（I级）。",
        ),
        (
            "downgrade",
            3,
            "【地震橙色预警·降级】西藏自治区日喀则市7.1级地震",
            "本预警降级为橙色（II级）。",
        ),
        (
            "update",
            2,
            "【地震黄色预警·更新】西藏自治区日喀则市7.1级地震",
            "本预警更新为黄色（III级）。",
        ),
        ("issue", 1, "【地震蓝色预警】西藏自治区日喀则市7.1级地震", "发布地震蓝色（IV级）预警。"),
    ],
    ids=["issue-red", "upgrade", "downgrade", "update", "issue-blue"],
)
def test_notice_names_action_level_and_magnitude(
    renderer: Renderer, action: str, level: int, subject: str, phrase: str
) -> None:
    msg = render(renderer, action, level)
    assert msg.subject == subject
    assert msg.body.startswith(subject + "\n")
    assert phrase in msg.body
    assert (
        "2025年01月07日09时05分（北京时间），西藏自治区日喀则市（北纬28.64度，东经87.36度）"
        "发生7.1级地震，震源深度10公里。"
    ) in msg.body
    assert "防御指南" in msg.body
    assert msg.body.endswith(f"详情：http://alerts.test/?alert={ALERT_ID}\n")


def test_cancel_says_the_warning_is_lifted(renderer: Renderer) -> None:
    msg = render(renderer, "cancel", 3)
    assert msg.subject == "【地震橙色预警·解除】西藏自治区日喀则市7.1级地震"
    assert (
        f"{ISSUER}解除2025年01月07日09时05分（北京时间）西藏自治区日喀则市7.1级地震的"
        "橙色（II级）预警。"
    ) in msg.body
    assert "防御指南" not in msg.body
    assert "发布地震" not in msg.body


def test_expiry_says_the_warning_ran_out_not_that_it_was_issued(renderer: Renderer) -> None:
    msg = render(renderer, "expire", 3)
    assert msg.subject == "【地震橙色预警·到期】西藏自治区日喀则市7.1级地震"
    assert "预警已到期" in msg.body
    assert "发布地震" not in msg.body and "防御指南" not in msg.body


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        ("2025-01-07T01:05:16+00:00", "2025年01月07日09时05分"),
        ("2025-01-07T20:30:00+00:00", "2025年01月08日04时30分"),
        ("2024-12-31T16:00:00Z", "2025年01月01日00时00分"),
        ("2025-01-07T09:05:00+08:00", "2025年01月07日09时05分"),
    ],
    ids=["morning", "next-day", "new-year-z-suffix", "already-beijing"],
)
def test_time_is_shown_in_beijing_time(renderer: Renderer, utc: str, local: str) -> None:
    assert f"{local}（北京时间）" in render(renderer, time=utc).body


def test_time_zone_is_configurable() -> None:
    utc_renderer = Renderer(timezone="UTC", issuer_zh=ISSUER, details_url="http://alerts.test")
    assert "2025年01月07日01时05分" in render(utc_renderer).body


@pytest.mark.parametrize(
    ("depth", "text"),
    [(10.0, "震源深度10公里"), (106.86, "震源深度107公里"), (None, "震源深度待定")],
)
def test_depth_is_rounded_or_pending(renderer: Renderer, depth: float | None, text: str) -> None:
    assert text in render(renderer, depth_km=depth).body


def test_event_outside_names_the_distance(renderer: Renderer) -> None:
    body = render(renderer, longitude=85.3, latitude=27.7, region_distance_km=64.8).body
    assert "距西藏自治区日喀则市约65公里处（北纬27.70度，东经85.30度）" in body


def test_southern_and_western_hemispheres(renderer: Renderer) -> None:
    body = render(renderer, latitude=-23.2955, longitude=-68.4217, region_distance_km=250.0).body
    assert "（南纬23.30度，西经68.42度）" in body


@pytest.mark.parametrize(
    ("level", "advice"),
    [(1, "就近躲避"), (2, "就近躲避"), (3, "远离受损建筑"), (4, "远离受损建筑")],
)
def test_guidance_depends_on_the_level(renderer: Renderer, level: int, advice: str) -> None:
    assert advice in render(renderer, "issue", level).body


def test_source_and_place_close_the_notice(renderer: Renderer) -> None:
    body = render(renderer).body
    assert "来源：USGS（2025 Southern Tibetan Plateau Earthquake）" in body
    assert "来源：USGS（）" in render(renderer, place=None).body


@pytest.mark.parametrize("missing", ["magnitude", "time", "region_name", "region_distance_km"])
def test_missing_fact_raises_undefined_error(renderer: Renderer, missing: str) -> None:
    facts = {k: v for k, v in FACTS.items() if k != missing}
    with pytest.raises(jinja2.UndefinedError, match=missing):
        renderer.render(
            alert_id=ALERT_ID,
            version=1,
            action="issue",
            hazard="earthquake",
            level=4,
            facts=facts,
            sent=SENT,
            expires=None,
        )


@pytest.mark.parametrize(
    ("action", "level"), [("retract", 4), ("issue", 5)], ids=["unknown-action", "unknown-level"]
)
def test_unknown_action_or_level_raises(renderer: Renderer, action: str, level: int) -> None:
    with pytest.raises(ValueError):
        render(renderer, action, level)


def test_graded_facts_render_end_to_end(data: Path, renderer: Renderer) -> None:
    frame = parse((data / "usgs" / "china_dingri_4.5_day.geojson").read_bytes()).frame
    frame["subject"] = "usgs:us6000pi9w"
    [w] = grade_earthquakes(frame, load_earthquake_rules(), load_regions(), SENT)
    msg = renderer.render(
        alert_id=ALERT_ID,
        version=1,
        action="issue",
        hazard=w.hazard.value,
        level=int(w.level),
        facts=w.facts,
        sent=SENT,
        expires=w.expires,
    )
    assert msg.subject == "【地震红色预警】西藏自治区日喀则市7.1级地震"
    assert "2025年01月07日09时05分（北京时间）" in msg.body
    assert "震源深度10公里" in msg.body
