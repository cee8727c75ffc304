"""Message templates: every hazard, level, family and language; limits; feed text; sandbox."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import pytest
import requests
from jinja2.exceptions import SecurityError

from alerts.channels.base import Message
from alerts.channels.email import render_html
from alerts.config import ChannelSettings
from alerts.model import Action, Hazard, Level
from alerts.regions import load_regions
from alerts.render import (
    CHANNEL_FAMILIES,
    FAMILIES,
    FEED_TEXT_LIMIT,
    LANGUAGES,
    SHORT_BUDGET,
    Rendered,
    Renderer,
    family_for,
    feed_text,
)

SENT = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)
ISSUER = "应急管理局预警发布中心"
DETAILS = "http://alerts.test"

EQ: dict[str, Any] = {
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


def _warned(code: str, name: str, roman: str, distance: float) -> dict[str, Any]:
    return {
        **EQ,
        "intensity": 7.2,
        "intensity_degree": 7,
        "intensity_roman": roman,
        "distance_km": distance,
        "warned_region_code": code,
        "warned_region_name": name,
    }


def _weather(code: str, name: str, value: float | None = 82.4, basis: str = "forecast") -> dict:
    return {
        "location_id": code,
        "location_name": name,
        "variable": "rain_mm",
        "value": value,
        "threshold": 50.0,
        "window_h": 3.0,
        "basis": basis,
        "reached_at": "2026-07-20T02:00:00+00:00",
    }


OFFICIAL: dict[str, Any] = {
    "sender": "w-nws.webmaster@noaa.gov",
    "event": "Tsunami Warning",
    "headline": "TSUNAMI WARNING IN EFFECT FOR THE COAST",
    "severity": "Extreme",
    "area_desc": "Coastal areas",
}

# (name, hazard or None for "every hazard", facts, regions)
SCENARIOS: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "weather": (
        _weather("510100", "四川省成都市"),
        [{"code": "510100", "name": "四川省成都市", "facts": _weather("510100", "四川省成都市")}],
    ),
    "observed": (
        _weather("510100", "四川省成都市", basis="observed"),
        [{"code": "510100", "name": "四川省成都市", "facts": _weather("510100", "四川省成都市")}],
    ),
    "no-value": (
        _weather("510100", "四川省成都市", value=None),
        [{"code": "510100", "name": "四川省成都市", "facts": _weather("510100", "四川省成都市")}],
    ),
    "several": (
        _weather("510100", "四川省成都市"),
        [
            {"code": "510100", "name": "四川省成都市", "facts": _weather("510100", "四川省成都市")},
            {"code": "510600", "name": "四川省德阳市", "facts": _weather("510600", "四川省德阳市")},
        ],
    ),
    "official": (OFFICIAL, [{"code": "Coastal areas", "name": "Coastal areas", "facts": OFFICIAL}]),
}
EQ_SCENARIOS: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "national": (EQ, [{"code": "CN", "name": "中国", "facts": EQ}]),
    "regional": (
        _warned("540200", "西藏自治区日喀则市", "VIII", 0.0),
        [
            {"code": c, "name": n, "facts": _warned(c, n, r, d)}
            for c, n, r, d in [
                ("540200", "西藏自治区日喀则市", "VIII", 0.0),
                ("540100", "西藏自治区拉萨市", "VI", 180.4),
                ("540500", "西藏自治区山南市", "VI", 210.0),
                ("540600", "西藏自治区那曲市", "V", 260.0),
            ]
        ],
    ),
}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS)


def _render(
    renderer: Renderer,
    hazard: str,
    facts: dict[str, Any],
    regions: list[dict[str, Any]] | None,
    *,
    family: str,
    language: str,
    level: int = 4,
    action: str = "issue",
    status: str = "Actual",
    sent: datetime = SENT,
) -> Rendered:
    code = regions[0]["code"] if regions else "x"
    return renderer.render(
        alert_id=f"{hazard}:test:{code}",
        version=1,
        action=action,
        hazard=hazard,
        level=level,
        facts=facts,
        sent=sent,
        expires=sent + timedelta(hours=6),
        family=family,
        language=language,
        regions=[{"level": Level(level), **r} for r in regions] if regions else None,
        status=status,
        identifier="43000041600000_20260720080000_0",
    )


def _check(msg: Rendered, family: str) -> None:
    for text in (msg.subject, msg.body):
        assert text.strip()
        for leak in ("None", "undefined", "Undefined", "{{", "{%", "[]"):
            assert leak not in text, (leak, text)
    first = msg.body.splitlines()[0]
    assert first == (f"**{msg.subject}**" if family == "markdown" else msg.subject)
    assert msg.body.endswith("\n") and not msg.body.endswith("\n\n")
    assert "http://alerts.test/?alert=" in msg.body.splitlines()[-1]


# -- every hazard x level x family x language ---------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("level", list(Level), ids=lambda lv: lv.colour)
@pytest.mark.parametrize("hazard", list(Hazard), ids=lambda h: h.value)
def test_every_hazard_level_family_and_language_renders(
    renderer: Renderer, hazard: Hazard, level: Level, family: str, language: str
) -> None:
    scenarios = EQ_SCENARIOS if hazard is Hazard.EARTHQUAKE else SCENARIOS
    for facts, regions in scenarios.values():
        msg = _render(
            renderer, hazard.value, facts, regions, family=family, language=language, level=level
        )
        _check(msg, family)
        if language == "en":
            assert not re.search(r"[预警发布详情]", msg.body.replace(ISSUER, ""))
            assert f"{level.colour} warning (level {level.roman})" in msg.subject
        else:
            assert f"{hazard.zh}{level.zh}预警" in msg.subject


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_every_action_renders_and_only_live_warnings_give_guidance(
    renderer: Renderer, action: Action, family: str, language: str
) -> None:
    for hazard, scenarios in (("rainstorm", SCENARIOS), ("earthquake", EQ_SCENARIOS)):
        for facts, regions in scenarios.values():
            msg = _render(
                renderer, hazard, facts, regions, family=family, language=language, action=action
            )
            _check(msg, family)
            advice = "防御指南" if language == "zh-CN" else "Advice:"
            over = action in (Action.CANCEL, Action.EXPIRE)
            if over:
                assert advice not in msg.body
            elif family != "short":
                assert advice in msg.body


def test_english_reads_as_english(renderer: Renderer) -> None:
    facts, regions = SCENARIOS["weather"]
    msg = _render(renderer, "rainstorm", facts, regions, family="text", language="en")
    assert msg.subject == "Rainstorm red warning (level I) for 四川省成都市"
    assert (
        "Emergency Warning Release Centre has issued a rainstorm red warning (level I) for "
        "四川省成都市: rainfall may reach 82.4 mm within 3 hours from around 2026-07-20 10:00 "
        "(Beijing time) (threshold 50 mm)."
    ) in msg.body
    assert "Advice: Stop outdoor activities" in msg.body
    up = _render(
        renderer, "rainstorm", facts, regions, family="text", language="en", action="upgrade"
    )
    assert up.subject == "Rainstorm red warning (level I) upgraded for 四川省成都市"
    assert "has upgraded the rainstorm warning for 四川省成都市 to red (level I)" in up.body
    eq = _render(renderer, "earthquake", *EQ_SCENARIOS["national"], family="long", language="en")
    assert eq.subject == "Earthquake red warning (level I): M7.1 earthquake, 西藏自治区日喀则市"
    assert (
        "At 2025-01-07 09:05 (Beijing time), an M7.1 earthquake struck 西藏自治区日喀则市 "
        "(28.64°N, 87.36°E), at a depth of 10 km."
    ) in eq.body


def test_the_text_family_keeps_its_headlines(renderer: Renderer) -> None:
    facts, regions = SCENARIOS["weather"]
    msg = _render(renderer, "rainstorm", facts, regions, family="text", language="zh-CN", level=1)
    assert msg.subject == "【暴雨蓝色预警】四川省成都市"
    eq = _render(renderer, "earthquake", *EQ_SCENARIOS["national"], family="text", language="zh")
    assert eq.subject == "【地震红色预警】西藏自治区日喀则市7.1级地震"


def test_the_long_family_exports_cap_description_and_instruction(renderer: Renderer) -> None:
    msg = _render(renderer, "earthquake", *EQ_SCENARIOS["regional"], family="long", language="zh")
    assert msg.description and msg.description.startswith("2025年01月07日09时05分")
    assert "预计最大烈度：西藏自治区日喀则市VIII度" in msg.description
    assert msg.instruction and msg.instruction.startswith("震区群众远离受损建筑")
    lifted = _render(
        renderer, "earthquake", *EQ_SCENARIOS["national"], family="long", language="zh",
        action="cancel",
    )  # fmt: skip
    assert lifted.instruction is None


def test_an_exercise_is_marked_in_every_family(renderer: Renderer) -> None:
    facts, regions = SCENARIOS["weather"]
    for family in FAMILIES:
        zh = _render(
            renderer, "rainstorm", facts, regions, family=family, language="zh-CN",
            status="Exercise",
        )  # fmt: skip
        en = _render(
            renderer, "rainstorm", facts, regions, family=family, language="en", status="Test"
        )
        assert zh.subject.startswith("【演练】") and zh.body.startswith("【演练】")
        assert en.subject.startswith("[TEST] ") and en.body.startswith("[TEST] ")


def test_the_short_family_is_one_sentence_and_the_link(renderer: Renderer) -> None:
    facts, regions = SCENARIOS["weather"]
    msg = _render(renderer, "rainstorm", facts, regions, family="short", language="zh-CN")
    lines = msg.body.splitlines()
    assert lines[1] == (
        "应急管理局预警发布中心发布暴雨红色预警：预计20日10时前后3小时内降雨量可达82.4毫米。"
    )
    assert lines[-1] == "详情：http://alerts.test/?alert=rainstorm:test:510100"
    assert len("".join(lines[:-1])) <= SHORT_BUDGET


# -- channel families ---------------------------------------------------------------------------


def test_each_channel_type_has_a_family() -> None:
    from alerts.channels import CHANNEL_TYPES

    assert set(CHANNEL_FAMILIES) == set(CHANNEL_TYPES)
    assert {t for t, f in CHANNEL_FAMILIES.items() if f == "short"} == {
        "sms",
        "weibo",
        "wechat_oa",
    }
    assert {t for t, f in CHANNEL_FAMILIES.items() if f == "markdown"} == {
        "wecom_bot",
        "wecom_app",
        "dingtalk",
        "feishu",
    }
    assert CHANNEL_FAMILIES["email"] == "long"
    assert CHANNEL_FAMILIES["webhook"] == CHANNEL_FAMILIES["outbox"] == "text"


@pytest.mark.parametrize(
    ("kind", "options", "family"),
    [
        ("wecom_bot", {}, "markdown"),
        ("wecom_bot", {"msgtype": "text"}, "text"),
        ("wecom_app", {"msgtype": "markdown"}, "markdown"),
        ("wecom_app", {}, "text"),  # wecom_app sends plain text by default
        ("dingtalk", {"msgtype": "text"}, "text"),
        ("feishu", {}, "markdown"),
        ("sms", {}, "short"),
        ("email", {}, "long"),
        ("webhook", {"family": "markdown"}, "markdown"),
    ],
)
def test_family_for_a_channel(kind: str, options: dict[str, Any], family: str) -> None:
    settings = ChannelSettings.model_validate({"name": "c", "type": kind, "options": options})
    assert family_for(settings) == family


def test_an_unknown_family_option_is_refused() -> None:
    settings = ChannelSettings.model_validate(
        {"name": "c", "type": "sms", "options": {"family": "tiny"}}
    )
    with pytest.raises(ValueError, match="options.family"):
        family_for(settings)


# -- limits after each channel's fitting --------------------------------------------------------


def _channel(kind: str, **options: Any) -> Any:
    import importlib

    credentials = {
        "wecom_bot": {"key": "k"},
        "wecom_app": {"corp_id": "c", "corp_secret": "s", "agent_id": "1"},
        "wechat_oa": {"app_id": "a", "app_secret": "s"},
        "weibo": {"access_token": "t"},
        "dingtalk": {"access_token": "t", "secret": "s"},
        "feishu": {"token": "t", "secret": "s"},
        "sms": {
            "access_key_id": "a",
            "access_key_secret": "s",
            "sign_name": "应急管理局预警发布中心",
            "template_code": "SMS_1",
        },
        "email": {"smtp_host": "localhost", "from_addr": "alerts@example.org"},
        "webhook": {"secret": "s"},
    }[kind]
    defaults: dict[str, dict[str, Any]] = {
        "wechat_oa": {
            "template_id": "T",
            "fields": {"first": "subject", "keyword1": "area", "keyword2": "level"},
        },
        "weibo": {"safe_domain_url": "http://alerts.test/"},
        "webhook": {"url": "http://127.0.0.1:9/hook"},
    }
    settings = ChannelSettings.model_validate(
        {
            "name": kind.replace("_", "-"),
            "type": kind,
            "credentials": credentials,
            "options": {**defaults.get(kind, {}), **options},
        }
    )
    module = importlib.import_module(f"alerts.channels.{kind}")
    return settings, module.build(
        settings, session=requests.Session(), clock=lambda: SENT + timedelta(minutes=1)
    )


CHANNELS = [
    ("wecom_bot", {}),
    ("wecom_bot", {"msgtype": "text"}),
    ("wecom_app", {}),
    ("wecom_app", {"msgtype": "markdown"}),
    ("wechat_oa", {}),
    ("weibo", {}),
    ("dingtalk", {}),
    ("dingtalk", {"msgtype": "text"}),
    ("feishu", {}),
    ("sms", {}),
    ("email", {}),
    ("webhook", {}),
]


def _longest_regions(n: int = 5) -> list[dict[str, Any]]:
    frame = load_regions().frame
    longest = frame.assign(size=frame["name"].str.len()).nlargest(n, "size")
    return [
        {
            "code": row.adcode,
            "name": f"{row.province}{row.name}",
            "facts": _weather(row.adcode, f"{row.province}{row.name}"),
        }
        for row in longest.itertuples()
    ]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("kind", "options"), CHANNELS, ids=lambda v: str(v))
def test_limits_hold_for_the_longest_names_and_descriptions(
    renderer: Renderer, kind: str, options: dict[str, Any], language: str
) -> None:
    settings, channel = _channel(kind, **options)
    family = family_for(settings)
    regions = _longest_regions()
    assert any(len(r["name"]) >= 18 for r in regions)  # e.g. 新疆维吾尔自治区克孜勒苏柯尔克孜自治州
    long_official = {
        **OFFICIAL,
        "headline": "沿海地区将出现特大风暴潮，" * 400,
        "area_desc": "、".join(r["name"] for r in regions) * 10,
    }
    cases = [
        ("rainstorm", regions[0]["facts"], regions[:1]),
        ("rainstorm", regions[0]["facts"], regions),
        ("typhoon", long_official, [{"code": "x", "name": long_official["area_desc"]}]),
        ("earthquake", EQ_SCENARIOS["regional"][0], EQ_SCENARIOS["regional"][1]),
    ]
    for hazard, facts, rs in cases:
        for level in (Level.BLUE, Level.RED):
            msg = _render(
                renderer, hazard, facts, rs, family=family, language=language, level=level
            )
            text, size, limit = channel.preview(
                Message(f"{hazard}:x", 1, msg.subject, msg.body, language, "id_20260720080000_1")
            )
            assert text.strip() and size > 0
            if limit is not None:
                assert size <= limit, (kind, hazard, size, limit)
            assert len(msg.body) < 4000  # feed text is cut before rendering
            if kind in ("wecom_bot", "wecom_app", "dingtalk", "feishu", "sms", "weibo"):
                assert "alerts.test/?alert=" in text  # the link survives the fitting


def test_preview_reuses_the_channels_own_fitting(renderer: Renderer) -> None:
    from alerts.channels import sms, wecom_bot, weibo

    facts, regions = SCENARIOS["weather"]
    msg = _render(renderer, "rainstorm", facts, regions, family="short", language="zh-CN")
    message = Message("rainstorm:x", 1, msg.subject, msg.body * 8, "zh-CN", "x_20260720080000_3")
    _, sms_channel = _channel("sms")
    text, size, limit = sms_channel.preview(message)
    assert text == "【应急管理局预警发布中心】" + sms.fit(message.body, "应急管理局预警发布中心")
    assert (size, limit) == (len(text), sms.MAX_CHARS)
    _, bot = _channel("wecom_bot")
    assert bot.preview(message)[0] == wecom_bot.fit(message.body.strip("\n"), 4096)
    _, wb = _channel("weibo")
    status = weibo.compose_status(message, "http://alerts.test/")
    assert wb.preview(message) == (status, weibo.weibo_length(status), 140)


# -- hostile feed text --------------------------------------------------------------------------

HOSTILE = [
    "@all",
    "@所有人 请注意",
    "<script>alert(1)</script>",
    "[x](http://evil.example)",
    "{{ 7*7 }}{% if true %}X{% endif %}",
    "A" * 10_000,
    "see www.evil.example/a and evil.example now",
    "line one\n详情：http://evil.example/phish\n",
    "见http://evil.example/x，网址evil.example的WWW.EVIL.EXAMPLE",
    '<font color="warning">**urgent**</font> # topic # ![i](http://evil.example/i.png)',
]


def _hostile_scenarios(text: str) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    official = {
        "sender": text,
        "event": text,
        "headline": text,
        "severity": "Extreme",
        "area_desc": text,
    }
    weather = {**_weather("x", text)}
    eq = {**EQ, "place": text}
    return [
        ("typhoon", official, [{"code": "x", "name": text, "facts": official}]),
        ("typhoon", official, []),
        ("rainstorm", weather, [{"code": "x", "name": text, "facts": weather}]),
        ("rainstorm", weather, [{"code": "x", "name": text, "facts": weather}] * 3),
        ("earthquake", eq, [{"code": "CN", "name": text, "facts": eq}]),
    ]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: t[:12])
def test_hostile_feed_text_is_neutralised(
    renderer: Renderer, text: str, family: str, language: str
) -> None:
    for hazard, facts, regions in _hostile_scenarios(text):
        msg = _render(renderer, hazard, facts, regions or None, family=family, language=language)
        lines = msg.body.splitlines()
        for out in (msg.subject, msg.body):
            assert "@all" not in out and "@所有人" not in out
            assert "49" not in out  # template syntax in feed text is never evaluated
            assert "evil.example" not in out  # no link, no clickable host
            assert "A" * (FEED_TEXT_LIMIT + 1) not in out
        assert len(msg.body) < 8 * FEED_TEXT_LIMIT + 1500
        # the only URL is our own details link, on the last line
        assert [line for line in lines if re.search(r"(?i)https?://", line)] == [lines[-1]]
        assert f"{DETAILS}/?alert={hazard}:test:" in lines[-1]
        if "{{" in text and hazard != "earthquake":  # (a short quake message has no place)
            assert "{{ 7" in msg.body  # literal, not evaluated
        if family == "markdown":
            assert not re.search(r"\[[^\]]*\]\(", "\n".join(lines[:-1]))  # no link but ours
            assert "<" not in msg.body and "**urgent**" not in msg.body
            assert not re.search(r"(?m)^#", msg.body)
            assert lines[-1].startswith(("[查看详情](http://", "[Details](http://"))
        if family == "long":
            html = render_html(msg.body, language)
            assert "<script>" not in html and "<font" not in html
            assert html.count("<a href=") == 1
        if family == "short":
            assert "# topic #" not in msg.body  # no Weibo topic


def test_feed_text_filter() -> None:
    assert feed_text(None) == ""
    assert feed_text("  a\n\tb  ") == "a b"
    assert feed_text("@all hi") == "＠all hi"
    assert feed_text("go to http://evil.example/x") == "go to http[:]//evil[.]example/x"
    assert feed_text("见http://a.cn/x，网址t.cn的") == "见http[:]//a[.]cn/x，网址t[.]cn的"
    assert feed_text("M7.1 v1.2 10.5km U.S. e.g. 120.0") == "M7.1 v1.2 10.5km U.S. e.g. 120.0"
    assert feed_text("【地震红色预警】") == "〔地震红色预警〕"
    assert feed_text("a\u202eb\u200bc") == "abc"
    assert feed_text("[x](y) *b* <i>", "markdown") == "［x］(y) ＊b＊ ＜i＞"
    assert feed_text("#话题#", "short") == "＃话题＃"
    assert feed_text("#话题#", "text") == "#话题#"
    cut = feed_text("字" * 500)
    assert len(cut) == FEED_TEXT_LIMIT and cut.endswith("…")
    assert len(feed_text("x" * 50, limit=10)) == 10
    # a cut never separates a character from its combining mark
    assert not feed_text("e\u0301" * 300).endswith("e…")
    with pytest.raises(jinja2.UndefinedError):
        feed_text(jinja2.StrictUndefined(name="place"))


# -- strictness and the sandbox -----------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("language", LANGUAGES)
def test_a_missing_variable_raises(renderer: Renderer, family: str, language: str) -> None:
    facts = {k: v for k, v in _weather("510100", "四川省成都市").items() if k != "threshold"}
    with pytest.raises(jinja2.UndefinedError, match="threshold"):
        _render(renderer, "rainstorm", facts, None, family=family, language=language)
    eq = {k: v for k, v in EQ.items() if k != "magnitude"}
    with pytest.raises(jinja2.UndefinedError, match="magnitude"):
        _render(renderer, "earthquake", eq, None, family=family, language=language)


def _operator_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "templates"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_an_operator_template_overrides_the_packaged_one(tmp_path: Path) -> None:
    folder = _operator_dir(
        tmp_path,
        {
            "rainstorm/short.zh-CN.j2": (
                '{% set subject = "【" ~ hazard.zh ~ "】" ~ facts.location_name | feed_text %}'
                "{{ subject }}\n本地模板：{{ level.zh }}，{{ guidance }}\n详情：{{ details_url }}\n"
            ),
            "default/markdown.en.j2": (
                '{% set subject = "custom" %}## {{ subject }}\n{{ details_url }}\n'
            ),
        },
    )
    custom = Renderer(
        timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS, templates_dir=folder
    )
    facts, regions = SCENARIOS["weather"]
    msg = _render(custom, "rainstorm", facts, regions, family="short", language="zh-CN")
    assert msg.subject == "【暴雨】四川省成都市"
    assert msg.body.startswith("【暴雨】四川省成都市\n本地模板：红色，停止户外活动")
    hail = _render(custom, "hail", facts, regions, family="markdown", language="en")
    assert hail.subject == "custom"
    # every other file still comes from the package
    text = _render(custom, "rainstorm", facts, regions, family="text", language="zh-CN")
    assert text.subject == "【暴雨红色预警】四川省成都市"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ facts.__class__ }}",
        "{{ level.__class__.__init__.__globals__ }}",
        "{% set xs = [] %}{{ xs.append(1) }}",
        "{{ facts.update({'magnitude': 1}) }}",
        "{{ self.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ no_such_name }}",
    ],
)
def test_an_operator_template_cannot_reach_python_internals(tmp_path: Path, template: str) -> None:
    folder = _operator_dir(
        tmp_path, {"rainstorm/text.zh-CN.j2": '{% set subject = "x" %}' + template}
    )
    custom = Renderer(
        timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS, templates_dir=folder
    )
    facts, regions = SCENARIOS["weather"]
    with pytest.raises((SecurityError, jinja2.UndefinedError)) as info:
        _render(custom, "rainstorm", facts, regions, family="text", language="zh-CN")
    if "__" in template or "append" in template or "update" in template:
        assert isinstance(info.value, SecurityError)


def test_a_broken_operator_template_falls_back_to_the_packaged_one_in_delivery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _operator_dir(tmp_path, {"rainstorm/text.zh-CN.j2": "{{ no_such_variable }}"})
    custom = Renderer(
        timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS, templates_dir=folder
    )
    facts, regions = SCENARIOS["weather"]
    kwargs: dict[str, Any] = {
        "alert_id": "rainstorm:x:510100",
        "version": 1,
        "action": "issue",
        "hazard": "rainstorm",
        "level": 4,
        "facts": facts,
        "sent": SENT,
        "expires": None,
        "regions": regions,
    }
    with pytest.raises(jinja2.UndefinedError):
        custom.render(**kwargs)
    msg = custom.render(**kwargs, fallback=True)
    assert msg.subject == "【暴雨红色预警】四川省成都市"
    assert "operator template" in caplog.text


def test_templates_dir_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a folder"):
        Renderer(
            timezone="UTC", issuer_zh=ISSUER, details_url=DETAILS, templates_dir=tmp_path / "x"
        )


# -- targeted publicity ---------------------------------------------------------------------------


def test_tips_are_asked_for_with_the_warnings_hazard_level_time_and_regions() -> None:
    calls: list[dict[str, Any]] = []

    def tips(**kwargs: Any) -> list[str]:
        calls.append(kwargs)
        return ["第一条提示。", "第二条提示。", "第三条提示。"][: kwargs["limit"]]

    r = Renderer(timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS, tips=tips)
    facts, regions = EQ_SCENARIOS["regional"]
    for family, count in (("text", 2), ("markdown", 2), ("long", 2), ("short", 1)):
        msg = _render(r, "earthquake", facts, regions, family=family, language="zh-CN", level=1)
        assert msg.body.count("温馨提示：") == count, family
        assert "第三条提示" not in msg.body
    call = calls[-1]
    assert call["hazard"] is Hazard.EARTHQUAKE and call["level"] is Level.BLUE
    assert call["when"] == SENT and call["language"] == "zh-CN"
    assert {"540200", "540100", "540500", "540600"} <= set(call["region_codes"])
    assert [c["limit"] for c in calls] == [2, 2, 2, 1]


def test_a_short_message_shows_a_tip_only_if_it_fits() -> None:
    facts, regions = SCENARIOS["weather"]
    short = Renderer(
        timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS,
        tips=lambda **kw: ["雨天路滑。"],
    )  # fmt: skip
    long_tip = Renderer(
        timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS,
        tips=lambda **kw: ["很长的提示" * 30],
    )  # fmt: skip
    assert (
        "温馨提示：雨天路滑。"
        in _render(
            short, "rainstorm", facts, regions, family="short", language="zh-CN", level=1
        ).body
    )
    assert (
        "温馨提示"
        not in _render(
            long_tip, "rainstorm", facts, regions, family="short", language="zh-CN", level=1
        ).body
    )
    assert (
        "温馨提示：很长的提示"
        in _render(
            long_tip, "rainstorm", facts, regions, family="long", language="zh-CN", level=1
        ).body
    )


def test_tips_appear_when_publicity_says_so_and_not_otherwise(renderer: Renderer) -> None:
    publicity = pytest.importorskip("alerts.publicity")
    calendar = publicity.load_calendar()
    lijiang = _weather("530700", "云南省丽江市")
    regions = [{"code": "530700", "name": "云南省丽江市", "facts": lijiang}]
    for language, label in (("zh-CN", "温馨提示："), ("en", "Tip: ")):
        expected = publicity.tips_for(
            hazard=Hazard.RAINSTORM,
            level=Level.RED,
            when=SENT,
            region_codes=["530700"],
            calendar=calendar,
            language=language,
            limit=2,
        )
        assert expected, "a July rainstorm in Lijiang has tips"
        for family in ("text", "markdown", "long"):
            msg = _render(renderer, "rainstorm", lijiang, regions, family=family, language=language)
            for tip in expected:
                assert f"{label}{tip}" in msg.body
            assert msg.body.count(label) == 2
        short = _render(renderer, "rainstorm", lijiang, regions, family="short", language=language)
        assert short.body.count(label) <= 1
    # the Lijiang-specific tip (scenic areas) is not given to Beijing
    beijing = _weather("110100", "北京市")
    bj = _render(
        renderer, "rainstorm", beijing, [{"code": "110100", "name": "北京市", "facts": beijing}],
        family="long", language="zh-CN",
    )  # fmt: skip
    lj = _render(renderer, "rainstorm", lijiang, regions, family="long", language="zh-CN")
    specific = set(lj.body.splitlines()) - set(bj.body.splitlines())
    assert any(line.startswith("温馨提示：") for line in specific)
    # no tip applies: no tip line at all
    november = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert not publicity.tips_for(
        hazard=Hazard.EARTHQUAKE,
        level=Level.RED,
        when=november,
        region_codes=["CN", "540200"],
        calendar=calendar,
    )
    for family in FAMILIES:
        msg = _render(
            renderer, "earthquake", *EQ_SCENARIOS["national"], family=family, language="zh-CN",
            sent=november,
        )  # fmt: skip
        assert "温馨提示" not in msg.body
    lifted = _render(
        renderer, "rainstorm", lijiang, regions, family="text", language="zh-CN", action="cancel"
    )
    assert "温馨提示" not in lifted.body


def test_the_details_link_encodes_only_what_must_be(renderer: Renderer) -> None:
    facts, regions = SCENARIOS["weather"]
    for alert_id, shown in [
        ("earthquake:usgs:us6000pi9w:CN", "earthquake:usgs:us6000pi9w:CN"),
        ("rainstorm:weather:30.75,103.875", "rainstorm:weather:30.75,103.875"),
        ("tsunami:cap:x:Coastal (a) [b]", "tsunami:cap:x:Coastal%20%28a%29%20%5Bb%5D"),
    ]:
        for family in FAMILIES:
            msg = renderer.render(
                alert_id=alert_id, version=1, action="issue", hazard="rainstorm", level=2,
                facts=facts, sent=SENT, expires=None, regions=regions, family=family,
            )  # fmt: skip
            assert f"{DETAILS}/?alert={shown}" in msg.body.splitlines()[-1]
