"""Responder instructions: the packaged procedures, inheritance, the fallback, bad files,
and the responders' own channel in fan-out (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import logging
import re
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from alerts.config import load_settings
from alerts.criteria import RuleFileError
from alerts.lifecycle import Decision
from alerts.model import Action, Hazard, Level, Warning
from alerts.pipeline import Runtime, fan_out_new
from alerts.responders import (
    Procedure,
    Procedures,
    load_procedures,
    packaged_procedures_path,
    procedure_for,
    procedure_json,
    render_instructions,
)
from alerts.store.models import DeliveryMessage
from tests.alertkit import CHENGDU, alert_id, rain

NOW = datetime(2026, 7, 10, 6, 0, tzinfo=UTC)  # 14:00 Beijing
CJK = re.compile(r"[\u4e00-\u9fff]")
FOUR = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
FROM_YELLOW = (Level.YELLOW, Level.ORANGE, Level.RED)


@pytest.fixture(scope="module")
def procedures() -> Procedures:
    return load_procedures()


def _zh(procedure: Procedure, department: str, lst: str) -> list[str]:
    (d,) = [d for d in procedure.departments if d.id == department]
    return [t.zh for t in getattr(d, lst)]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "responders.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


SMALL = """
version: t1
departments:
  water: 水利 | Water resources
  education: 教育 | Education
procedures:
  rainstorm:
    yellow:
      response: III
      on_duty: 专人值班 | A duty officer
      departments:
        water:
          inspect: [水库 | Reservoirs]
    orange:
      response: II
      departments:
        water:
          close: [渡口 | Ferries]
        education:
          close: [危险区学校停课 | Classes in danger zones]
    red:
      response: I
      departments:
        education:
          replace: true
          close: [全部学校停课 | Classes everywhere]
"""


# -- the packaged file ------------------------------------------------------------------------


def test_the_packaged_file_loads_is_cached_and_covers_the_hazards(
    procedures: Procedures,
) -> None:
    assert load_procedures() is procedures
    again = load_procedures(packaged_procedures_path())
    assert again == procedures and again is not procedures
    required = {
        "rainstorm": FOUR,
        "typhoon": FOUR,
        "blizzard": FOUR,
        "cold_wave": FOUR,
        "gale": FOUR,
        "earthquake": FOUR,
        "any": FOUR,
        "heat": FROM_YELLOW,
        "road_icing": FROM_YELLOW,
        "fog": FROM_YELLOW,
        "haze": FROM_YELLOW,
    }
    resolved = procedures.resolved()
    for entry, levels in required.items():
        for level in levels:
            p = resolved[(entry, level)]
            assert p.response in ("IV", "III", "II", "I"), (entry, level)
            assert p.departments, (entry, level)
            assert CJK.search(p.on_duty.zh) and not CJK.search(p.on_duty.en), (entry, level)
    for p in resolved.values():
        for d in p.departments:
            for t in (*d.inspect, *d.close, *d.do):
                assert CJK.search(t.zh) and not CJK.search(t.en), (p.entry, p.level, t)
    # the departments the issue names are there
    names = {t.zh for t in procedures.departments.values()}
    for zh in ("应急管理", "气象", "水利", "住房城乡建设", "交通运输", "教育", "文化和旅游"):
        assert zh in names
    assert {"public_security", "fire_rescue", "health", "agriculture", "power", "telecom"} <= set(
        procedures.departments
    )
    # response levels rise with the warning level
    rain = [resolved[("rainstorm", lv)].response for lv in FOUR]
    assert rain == ["IV", "III", "II", "I"]


def test_every_field_of_the_file_is_documented_in_its_header() -> None:
    header = packaged_procedures_path().read_text(encoding="utf-8").split("\nversion:")[0]
    words = ("departments", "procedures", "response", "on_duty", "inherit", "inspect", "close")
    for word in (*words, "do", "replace", "any", "version"):
        assert re.search(rf"\b{word}\b", header), word


# -- inheritance and choosing -----------------------------------------------------------------


def test_a_higher_level_holds_the_lower_levels_tasks(procedures: Procedures) -> None:
    orange = procedure_for(procedures, Hazard.RAINSTORM, Level.ORANGE)
    red = procedure_for(procedures, "rainstorm", 4)
    assert orange is not None and red is not None
    assert (orange.response, red.response) == ("II", "I")
    for dept in ("water", "natural_resources", "housing", "transport", "power", "telecom"):
        for lst in ("inspect", "close", "do"):
            assert set(_zh(orange, dept, lst)) <= set(_zh(red, dept, lst)), (dept, lst)
    # orange's own on top of yellow's and blue's, in order
    assert _zh(red, "water", "inspect")[0].startswith("水库、山塘")  # blue
    assert "水库按调度泄洪，堤防24小时巡守" in _zh(red, "water", "do")  # orange
    assert "受影响线路客运班车" in _zh(red, "transport", "close")  # red's own
    # education replaces: red closes every school, not only those in danger zones
    assert _zh(orange, "education", "close") == ["危险区学校和幼儿园停课"]
    assert _zh(red, "education", "close") == ["全部学校和幼儿园停课"]
    assert red.on_duty.zh.startswith("主要领导坐镇指挥")


def test_inheritance_rules_on_a_small_file(tmp_path: Path) -> None:
    small = load_procedures(_write(tmp_path, SMALL))
    yellow = procedure_for(small, "rainstorm", "yellow")
    orange = procedure_for(small, "rainstorm", "orange")
    red = procedure_for(small, "rainstorm", "red")
    assert yellow and orange and red
    assert orange.on_duty.zh == "专人值班"  # left out: inherited
    assert _zh(orange, "water", "inspect") == ["水库"] and _zh(orange, "water", "close") == ["渡口"]
    assert [d.id for d in red.departments] == ["water", "education"]  # first appearance
    assert _zh(red, "education", "close") == ["全部学校停课"]  # replace
    assert _zh(red, "water", "close") == ["渡口"]
    # inherit: false starts from nothing
    data = yaml.safe_load(SMALL)
    data["procedures"]["rainstorm"]["red"]["inherit"] = False
    data["procedures"]["rainstorm"]["red"]["on_duty"] = "主要领导带班 | Leaders on duty"
    fresh = Procedures.model_validate(data)
    red = procedure_for(fresh, "rainstorm", "red")
    assert red is not None and [d.id for d in red.departments] == ["education"]


def test_a_hazard_or_level_without_its_own_procedure_falls_back_to_any(
    procedures: Procedures, tmp_path: Path
) -> None:
    heat_blue = procedure_for(procedures, "heat", "blue")  # heat starts at yellow
    frost = procedure_for(procedures, Hazard.FROST, Level.ORANGE)  # no frost procedure
    assert heat_blue is not None and frost is not None
    assert (heat_blue.entry, heat_blue.hazard, heat_blue.level) == ("any", "heat", Level.BLUE)
    assert (frost.entry, frost.hazard, frost.response) == ("any", "frost", "II")
    heat = procedure_for(procedures, "heat", "yellow")
    assert heat is not None and heat.entry == "heat"
    assert procedure_json(frost)["entry"] == "any"
    # a file without `any`: nothing for frost, nor for a level rainstorm lacks
    small = load_procedures(_write(tmp_path, SMALL))
    assert procedure_for(small, "frost", "orange") is None
    assert procedure_for(small, "rainstorm", "blue") is None
    with pytest.raises(ValueError):
        procedure_for(small, "tornado", "red")


def test_procedure_json(procedures: Procedures) -> None:
    red = procedure_for(procedures, "rainstorm", "red")
    assert red is not None
    got = procedure_json(red)
    json.dumps(got, ensure_ascii=False)
    assert (got["hazard"], got["entry"], got["level"], got["colour"]) == (
        "rainstorm",
        "rainstorm",
        4,
        "red",
    )
    assert (got["response"], got["response_zh"], got["response_en"]) == (
        "I",
        "I级应急响应",
        "Level I emergency response",
    )
    assert set(got["on_duty"]) == {"zh", "en"} and got["version"] == procedures.version
    water = next(d for d in got["departments"] if d["id"] == "water")
    assert (water["zh"], water["en"]) == ("水利", "Water resources")
    assert set(water) == {"id", "zh", "en", "inspect", "close", "do"}
    assert water["do"][-1] == {
        "zh": "水库按调度泄洪，堤防24小时巡守",
        "en": "Release reservoirs as scheduled; guard dikes around the clock",
    }


# -- bad files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["procedures"].update(tornado=d["procedures"]["rainstorm"]),
            "procedures.tornado: unknown hazard 'tornado'",
        ),
        (
            lambda d: d["procedures"]["rainstorm"].update(purple={"response": "I"}),
            "procedures.rainstorm.purple: unknown level 'purple'",
        ),
        (
            lambda d: d["procedures"]["rainstorm"]["orange"]["departments"].update(
                police={"do": ["巡逻 | Patrol"]}
            ),
            "procedures.rainstorm.orange.departments.police: unknown department 'police'",
        ),
        (
            lambda d: d["procedures"]["rainstorm"]["red"].update(response="V"),
            "procedures.rainstorm.red.response: response 'V'",
        ),
        (
            lambda d: d["procedures"]["rainstorm"]["red"].pop("response"),
            "procedures.rainstorm.red.response: Field required",
        ),
        (
            lambda d: d["procedures"]["rainstorm"]["yellow"].pop("on_duty"),
            "procedures.rainstorm.yellow.on_duty: required (no lower level",
        ),
        (
            lambda d: d["procedures"]["rainstorm"]["yellow"]["departments"]["water"].update(
                inspect=["只有中文"]
            ),
            "procedures.rainstorm.yellow.departments.water.inspect.0: write '中文 | English'",
        ),
        (
            lambda d: d["procedures"]["rainstorm"]["yellow"]["departments"]["water"].update(
                check=["水库 | Reservoirs"]
            ),
            "procedures.rainstorm.yellow.departments.water.check: Extra inputs",
        ),
        (
            lambda d: d["departments"].update({"Water-Bureau": "水务 | Water bureau"}),
            "departments.Water-Bureau: bad id",
        ),
    ],
)
def test_a_mistake_names_the_file_and_the_entry(
    tmp_path: Path, change: object, message: str
) -> None:
    data = yaml.safe_load(SMALL)
    change(data)  # type: ignore[operator]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RuleFileError) as info:
        load_procedures(path)
    assert str(path) in str(info.value)
    assert message in str(info.value), str(info.value)


def test_an_operator_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = _write(tmp_path, SMALL)
    first = load_procedures(path)
    assert load_procedures(path) is first
    path.write_text(SMALL.replace("version: t1", "version: t2-longer"), encoding="utf-8")
    assert load_procedures(path).version == "t2-longer"


# -- the responders' channel ------------------------------------------------------------------

PUBLIC = {"name": "outbox", "type": "outbox", "recipients": ["duty-room"]}
RESPONDERS = {
    "name": "depts",
    "type": "wecom_app",
    "audience": "responders",
    "recipients": ["water-duty", "edu-duty"],
    "options": {"msgtype": "markdown"},
    "credentials": {"corp_id": "c", "corp_secret": "s", "agent_id": "1"},
}


@pytest.fixture
def make_rt(alerts_env: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("ALERTS_STORE_URL", store_url)
    opened: list[Runtime] = []

    def make(*channels: dict[str, object], **env: str) -> Runtime:
        monkeypatch.setenv("ALERTS_CHANNELS", json.dumps(list(channels)))
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        rt = Runtime.from_settings(load_settings(), clock=lambda: NOW)
        opened.append(rt)
        return rt

    yield make
    for rt in opened:
        rt.close()


def _apply(rt: Runtime, action: Action, warning: Warning | None, at: datetime = NOW) -> None:
    previous = rt.store.active_alert(alert_id(warning)) if warning else None
    if action is Action.CANCEL:
        (previous,) = rt.store.active_alerts()
    rt.store.apply(
        [
            Decision(
                action,
                previous.alert_id if previous else alert_id(warning),  # type: ignore[arg-type]
                warning,
                previous,
                "t",
            )
        ],
        now=at,
        publisher=rt.publisher("test"),
    )
    fan_out_new(rt)


def _messages(rt: Runtime, version: int = 1) -> dict[str, DeliveryMessage]:
    """The stored message of each channel, for the alert's ``version``."""
    out = {}
    for d in rt.store.deliveries():
        if d.version == version:
            msg = rt.store.delivery_message(d.message_id)
            assert msg is not None
            out[d.channel] = msg
    return out


def test_the_responders_channel_gets_the_procedure_and_the_public_the_warning(
    make_rt: object,
) -> None:
    rt = make_rt(PUBLIC, RESPONDERS)  # type: ignore[operator]
    _apply(rt, Action.ISSUE, rain(Level.ORANGE, NOW))
    rows = {(d.channel, d.recipient) for d in rt.store.deliveries()}
    assert rows == {("outbox", "duty-room"), ("depts", "water-duty"), ("depts", "edu-duty")}
    got = _messages(rt)
    public, depts = got["outbox"].body, got["depts"].body
    # the public text: the warning and the advice to the public, no procedure
    assert "暴雨橙色" in public and "防御指南" in public
    assert "应急响应" not in public and "水利" not in public
    # the responders': markdown, the response level, who is on duty, the departments
    assert depts.startswith("**【暴雨橙色预警·启动II级应急响应】四川省成都市**")
    assert got["depts"].subject == "【暴雨橙色预警·启动II级应急响应】四川省成都市"
    assert "> 响应：启动暴雨II级应急响应。" in depts
    assert "> 值班：24小时领导带班，部门主要负责人在岗，每2小时报告。" in depts
    assert "**水利** 检查：水库、山塘、堤防和在建水利工程。" in depts
    assert "**教育** 关停：危险区学校和幼儿园停课。" in depts
    assert "防御指南" not in depts
    pub = rt.store.publications()[0]
    assert f"标识：{pub.identifier}" in depts
    assert depts.rstrip().endswith(f"?alert={alert_id(rain(Level.ORANGE, NOW))})")


def test_an_exercise_reaches_the_responders_but_not_the_public(make_rt: object) -> None:
    rt = make_rt(  # type: ignore[operator]
        PUBLIC, RESPONDERS, ALERTS_LIFECYCLE__STATUS="Exercise"
    )
    _apply(rt, Action.ISSUE, rain(Level.RED, NOW))
    assert {d.channel for d in rt.store.deliveries()} == {"depts"}
    msg = _messages(rt)["depts"]
    assert msg.subject.startswith("【演练】【暴雨红色预警·启动I级应急响应】")
    assert msg.body.startswith("【演练】")


def test_a_cancellation_tells_the_responders_the_response_ends(make_rt: object) -> None:
    english = {**RESPONDERS, "name": "depts-en", "language": "en", "options": {}}
    rt = make_rt(PUBLIC, RESPONDERS, english)  # type: ignore[operator]
    _apply(rt, Action.ISSUE, rain(Level.ORANGE, NOW))
    _apply(rt, Action.CANCEL, None, at=NOW + timedelta(hours=1))
    got = _messages(rt, version=2)
    assert set(got) == {"outbox", "depts", "depts-en"}
    assert "解除" in got["outbox"].body and "终止" not in got["outbox"].body
    zh = got["depts"].body
    assert got["depts"].subject == "【暴雨橙色预警解除·终止II级应急响应】四川省成都市"
    assert "> 终止暴雨II级应急响应：各部门恢复日常值班" in zh
    assert "**水利**" not in zh  # no tasks once it is over
    en = got["depts-en"].body  # wecom_app's default msgtype text: the text family
    assert en.startswith("Rainstorm orange warning lifted: the response ends")
    assert "The response ends (level II): departments return to normal duty" in en
    assert "[Water resources]" not in en


def test_a_channel_can_carry_some_departments_only(make_rt: object) -> None:
    water = {**RESPONDERS, "options": {"msgtype": "text", "departments": ["water", "education"]}}
    police = {**RESPONDERS, "name": "police", "options": {"departments": ["public_security"]}}
    rt = make_rt(water, police)  # type: ignore[operator]
    _apply(rt, Action.ISSUE, rain(Level.YELLOW, NOW))
    got = _messages(rt)
    text = got["depts"].body
    assert "【水利】" in text and "【教育】" in text and "【住房城乡建设】" not in text
    assert "值班：24小时领导带班和专人值班" in text
    # public security has no task at yellow: the message says so
    assert "本渠道所列部门在此等级无专项任务" in got["police"].body


def test_the_operator_file_is_used_and_a_broken_one_falls_back(
    make_rt: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = SMALL.replace("危险区学校停课 | Classes in danger zones", "本地自定义停课 | Our own")
    path = _write(tmp_path, own)
    rt = make_rt(RESPONDERS, ALERTS_RESPONDERS_FILE=str(path))  # type: ignore[operator]
    _apply(rt, Action.ISSUE, rain(Level.ORANGE, NOW))
    assert "**教育** 关停：本地自定义停课。" in _messages(rt)["depts"].body

    broken = tmp_path / "broken.yaml"
    broken.write_text(own.replace("response: II", "response: V"), encoding="utf-8")
    rt2 = make_rt(RESPONDERS, ALERTS_RESPONDERS_FILE=str(broken))  # type: ignore[operator]
    with caplog.at_level(logging.ERROR, logger="alerts.responders"):
        _apply(rt2, Action.UPGRADE, rain(Level.RED, NOW), at=NOW + timedelta(hours=1))
    assert "using the packaged procedures" in caplog.text and "response 'V'" in caplog.text
    body = _messages(rt2, version=2)["depts"].body
    assert "提升至暴雨I级应急响应" in body and "全部学校和幼儿园停课" in body  # packaged


def test_render_instructions_without_a_procedure_says_so(make_rt: object, tmp_path: Path) -> None:
    rt = make_rt(PUBLIC)  # type: ignore[operator]
    rt.store.apply(
        [Decision(Action.ISSUE, alert_id(rain(Level.BLUE, NOW)), rain(Level.BLUE, NOW), None, "t")],
        now=NOW,
        publisher=rt.publisher("test"),
    )
    (pub,) = rt.store.publications()
    members = rt.store.publication_members(pub.id)
    small = load_procedures(_write(tmp_path, SMALL))  # no blue rainstorm, no `any`
    got = render_instructions(rt.renderer, pub, members, family="text", procedures=small)
    assert got.subject == "【暴雨蓝色预警·按预案响应】" + CHENGDU[1]
    assert "未配置本灾种本等级的响应措施" in got.body
    en = render_instructions(
        rt.renderer, pub, members, family="markdown", language="en", procedures=small
    )
    assert "No response procedure is configured" in en.body
    with pytest.raises(ValueError, match="unknown template family"):
        render_instructions(rt.renderer, pub, members, family="html")
