"""The outlook bulletin (alerts.bulletin): every family and language, the HTML document,
near-threshold marking, zero-risk wording, exercises, escaping, operator templates."""

from __future__ import annotations

import copy
import math
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import pytest

from alerts import bulletin
from alerts.bulletin import CHART_CID, ROW_LIMIT, outlook_view, render_outlook
from alerts.guidance import guidance
from alerts.model import Hazard, Level
from alerts.render import FAMILIES, LANGUAGES, SHORT_BUDGET, Renderer
from tests.conftest import ROOT

ISSUER = "应急管理局预警发布中心"
DETAILS = "http://alerts.test"
START = datetime(2026, 7, 19, 16, tzinfo=UTC)  # 2026-07-20 00:00 Beijing time
HOSTILE = "<img src=x onerror=alert(1)>"


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _series(seed: int) -> dict[str, list[Any]]:
    return {
        "time": [_iso(START + timedelta(hours=h + 1)) for h in range(72)],
        "precipitation_mm": [round(max(0.0, 9 * math.sin((h + seed) / 9)), 1) for h in range(72)],
        "temperature_c": [round(26 + 6 * math.sin((h + seed) / 24 * 6.28), 1) for h in range(72)],
        "wind_gust_ms": [round(6 + 4 * math.sin(h / 5 + seed), 1) for h in range(72)],
    }


def _risk(hazard: str, level: int | None, **extra: Any) -> dict[str, Any]:
    base = {
        "rainstorm": {"variable": "rain_mm", "threshold": 50.0, "window_h": 12.0},
        "heat": {"variable": "temperature_c", "threshold": 35.0, "window_h": 72.0},
        "gale": {"variable": "wind_gust_ms", "threshold": 17.2, "window_h": 1.0},
    }[hazard]
    return {
        "hazard": hazard,
        "level": level,
        "near": level is None,
        "peak_at": "2026-07-21T09:00:00Z",
        "value": 61.3,
        "ratio": 1.23,
        "rule_id": f"{hazard}.x",
        **base,
        **extra,
    }


def _pref(code: str, name: str, risks: list[dict[str, Any]], series: bool = True) -> dict:
    levels = [r["level"] for r in risks if r["level"]]
    return {
        "code": code,
        "name": name,
        "province": code[:2] + "0000",
        "province_name": "四川省",
        "level": max(levels, default=0),
        "risks": risks,
        "series": _series(int(code[2:4])) if series else None,
    }


def make_outlook(prefectures: list[dict[str, Any]] | None = None, **extra: Any) -> dict:
    """An outlook per the contract: Sichuan, a yellow rainstorm, near rain, near heat."""
    if prefectures is None:
        prefectures = [
            _pref(
                "510100",
                "成都市",
                [
                    _risk("rainstorm", 2),
                    _risk("heat", None, value=33.1, ratio=0.95, peak_at="2026-07-22T07:00:00Z"),
                ],
            ),
            _pref("511800", "雅安市", [_risk("rainstorm", None, value=41.0, ratio=0.82)]),
            _pref("511100", "乐山市", [_risk("heat", None, value=32.4, ratio=0.93)]),
            _pref("513200", "阿坝藏族羌族自治州", [], series=False),
        ]
    levels = [p["level"] for p in prefectures]
    outlook = {
        "kind": "outlook",
        "issued_at": "2026-07-20T00:00:00Z",
        "start": "2026-07-20T00:00:00Z",
        "end": "2026-07-23T00:00:00Z",
        "hours": 72,
        "timezone": "Asia/Shanghai",
        "rule_set_version": "cma2007-haze2013-r1",
        "near_share": 0.7,
        "scope": {"code": "51", "name": "四川省"},
        "level": max(levels, default=0),
        "provinces": [
            {"code": "510000", "name": "四川省", "level": max(levels, default=0), "hazards": []}
        ]
        if any(p["risks"] for p in prefectures)
        else [],
        "prefectures": prefectures,
        "seasonal": [
            {
                "id": "summer_drowning",
                "zh": "防溺水",
                "en": "drowning",
                "hazards": ["flood"],
                "advice_zh": "不到江河湖库野泳，家长看护好孩子。",
                "advice_en": "Do not swim in rivers or reservoirs; watch children near water.",
            },
            {
                "id": "summer_heat",
                "zh": "防暑降温",
                "en": "heat stroke",
                "hazards": ["heat"],
                "advice_zh": "午后减少户外活动，多饮水。",
                "advice_en": "Avoid the afternoon sun; drink water.",
            },
        ],
    }
    outlook.update(extra)
    return outlook


def quiet_outlook(series: bool = True) -> dict:
    return make_outlook(
        [_pref("510100", "成都市", [], series=series), _pref("511800", "雅安市", [], series=False)]
    )


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS)


class _Doc(HTMLParser):
    """Checks nesting (every element closed, in order) and collects tags and attributes."""

    VOID = {"meta", "br", "img", "hr", "link", "input", "source", "wbr", "col", "area", "base"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []
        self.doctype = False
        self.text: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(html: str) -> _Doc:
    doc = _Doc()
    doc.feed(html)
    doc.close()
    assert doc.doctype, "no <!DOCTYPE html>"
    assert not doc.errors, doc.errors
    assert not doc.stack, f"unclosed: {doc.stack}"
    return doc


def _attrs(doc: _Doc, name: str) -> list[str]:
    return [str(a[name]) for _, a in doc.tags if a.get(name) is not None]


def test_the_long_form_is_a_self_contained_html_document_with_the_chart(
    renderer: Renderer,
) -> None:
    msg = render_outlook(renderer, make_outlook(), family="long", identifier="ol-51-20260720")
    assert msg.html is not None
    doc = parse_html(msg.html)
    names = [t for t, _ in doc.tags]
    assert names[:2] == ["html", "head"] and "body" in names
    assert not {"script", "style", "link", "iframe", "object", "form"} & set(names)
    assert not [k for _, a in doc.tags for k in a if k.startswith("on")]  # no handlers
    # the only resource is the chart, by content id; the only link is the details page
    assert _attrs(doc, "src") == [f"cid:{CHART_CID}"]
    assert _attrs(doc, "href") == [f"{DETAILS}/?bulletin=ol-51-20260720"]
    assert msg.html.count(f"cid:{CHART_CID}") == 1
    assert re.findall(r"https?://", msg.html) == [f"{DETAILS[:7]}"]
    assert ("viewport" in _attrs(doc, "name")) and doc.tags[0][1] == {"lang": "zh-CN"}
    # inline styles only (WeChat drops <style>): the layout is in style attributes
    assert len(_attrs(doc, "style")) > 10
    [(name, png)] = msg.images
    assert name == CHART_CID and png.startswith(b"\x89PNG\r\n\x1a\n")
    text = "".join(doc.text)
    assert "四川省未来72小时灾害性天气风险提示" in text
    assert "发布时间：2026年07月20日08时00分（北京时间）" in text
    assert "预报时段：07月20日08时至07月23日08时" in text
    # the caption names the charted prefectures in Chinese with the adcodes of the panels
    assert "图：成都市（510100）、雅安市（511800）、乐山市（511100）" in text
    [alt] = _attrs(doc, "alt")
    assert alt.startswith("成都市、雅安市、乐山市") and "阿坝" not in alt
    # the table: every prefecture at risk, not the quiet one; level chips in colour
    assert "成都市" in text and "阿坝藏族羌族自治州" not in text
    assert "暴雨 黄色" in text and "最高黄色" in text
    chips = [s for s in _attrs(doc, "style") if "border-radius" in s]
    assert any("background:#f5c400" in s for s in chips)  # yellow
    assert "12小时降雨量61.3毫米（标准50毫米），21日17时前后" in text
    assert ISSUER in text


def test_near_threshold_risks_are_marked(renderer: Renderer) -> None:
    msg = render_outlook(renderer, make_outlook(), family="long")
    assert msg.html is not None
    text = "".join(parse_html(msg.html).text)
    assert "暴雨 接近预警标准" in text and "高温 接近预警标准" in text
    # the summary names each hazard's prefectures per grade: Ya'an's rain is only near
    assert (
        "3个市（州）有灾害性天气风险：成都市暴雨可达黄色预警标准；"
        "成都市、乐山市高温接近预警标准；雅安市暴雨接近预警标准。"
    ) in text
    near_chips = [s for s in _attrs(parse_html(msg.html), "style") if "dashed" in s]
    assert len(near_chips) == 3  # Chengdu heat, Ya'an rain, Leshan heat
    assert "雅安市：暴雨接近预警标准，12小时降雨量41.0毫米（标准50毫米）" in msg.body
    en = render_outlook(renderer, make_outlook(), family="long", language="en")
    assert "rainstorm near threshold, 12-hour rainfall 41.0 mm (threshold 50 mm)" in en.body
    assert "heat near the warning threshold in 成都市, 乐山市" in en.body


def test_the_long_text_body_carries_the_whole_bulletin(renderer: Renderer) -> None:
    msg = render_outlook(renderer, make_outlook(), family="long", identifier="ol-1")
    assert msg.subject == "【风险提示】四川省未来72小时：暴雨可达黄色预警标准，高温接近预警标准"
    lines = msg.body.splitlines()
    assert lines[0] == msg.subject
    assert lines[-1] == f"详情：{DETAILS}/?bulletin=ol-1"
    assert "- 成都市：暴雨黄色，12小时降雨量61.3毫米（标准50毫米），21日17时前后；" in msg.body
    for advice in (
        guidance(Hazard.RAINSTORM, Level.YELLOW),
        guidance(Hazard.HEAT, Level.BLUE),
        "不到江河湖库野泳，家长看护好孩子。",
    ):
        assert advice in msg.body and advice in (msg.html or "")
    assert guidance(Hazard.GALE, Level.BLUE) not in msg.body  # only hazards present


def test_markdown_and_text_are_compact_lists(renderer: Renderer) -> None:
    md = render_outlook(renderer, make_outlook(), family="markdown")
    assert md.body.startswith(f"**{md.subject}**\n")
    assert "- **暴雨**：成都市（黄色）；雅安市（接近预警标准），21日17时前后最强\n" in md.body
    assert "- **高温**：成都市、乐山市（接近预警标准），22日15时前后最强\n" in md.body
    assert "> 季节提示（防溺水）：不到江河湖库野泳" in md.body
    assert md.body.rstrip().endswith(f"[查看详情]({DETAILS}/)")
    assert md.html is None and md.images == ()
    text = render_outlook(renderer, make_outlook(), family="text")
    assert "- 暴雨：成都市（黄色）；雅安市（接近预警标准），21日17时前后最强\n" in text.body
    assert text.body.rstrip().endswith(f"详情：{DETAILS}/")
    assert "**" not in text.body


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_short_form_is_one_sentence_within_budget_and_the_link(
    renderer: Renderer, language: str
) -> None:
    msg = render_outlook(renderer, make_outlook(), family="short", language=language)
    *text, link = msg.body.strip().splitlines()
    assert len(text) == 1 and len(text[0]) <= SHORT_BUDGET
    assert link.endswith(f"{DETAILS}/")
    assert msg.html is None and msg.images == ()
    if language == "zh-CN":
        assert text[0] == (
            "【风险提示】四川省未来72小时：成都市暴雨可达黄色预警标准；"
            "成都市、乐山市高温接近预警标准；雅安市暴雨接近预警标准。季节提示：防溺水、防暑降温。"
        )
    else:  # the least severe group no longer fits
        assert text[0] == (
            "[Risk outlook] 四川省, next 72 h: rainstorm may reach the yellow warning level in "
            "成都市; heat near the warning threshold in 成都市, 乐山市."
        )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_short_form_stays_within_budget_for_a_crowded_outlook(
    renderer: Renderer, language: str
) -> None:
    hazards = ["rainstorm", "heat", "gale"]
    prefectures = [
        _pref(
            f"51{i:02d}00",
            "阿坝藏族羌族自治州" + "某" * i,
            [_risk(hazards[i % 3], 1 + i % 4), _risk(hazards[(i + 1) % 3], None)],
            series=i < 6,
        )
        for i in range(1, 31)
    ]
    msg = render_outlook(renderer, make_outlook(prefectures), family="short", language=language)
    *text, _ = msg.body.strip().splitlines()
    assert len(text) == 1 and len(text[0]) <= SHORT_BUDGET
    # the most severe risk (red) is named first, with fewer prefectures if need be
    zh = language == "zh-CN"
    first = text[0].split("：" if zh else ": ", 1)[1].split("；" if zh else "; ")[0]
    assert ("可达红色预警标准" if zh else "may reach the red warning level") in first


def test_a_zero_risk_outlook_still_renders(renderer: Renderer) -> None:
    outlook = quiet_outlook()
    for family in FAMILIES:
        msg = render_outlook(renderer, outlook, family=family)
        assert "未来72小时无明显灾害性天气风险" in msg.body, family
        assert "防溺水" in msg.body, family  # the seasonal reminders still go out
        assert "防御指南" not in msg.body, family
    long = render_outlook(renderer, outlook, family="long")
    assert long.subject == "【风险提示】四川省未来72小时无明显灾害性天气风险"
    assert long.html is not None
    doc = parse_html(long.html)
    text = "".join(doc.text)
    assert "四川省未来72小时无明显灾害性天气风险" in text and "季节性风险提示" in text
    assert "<table" not in long.html
    # the outlook charts its first prefecture when none is at risk
    assert _attrs(doc, "src") == [f"cid:{CHART_CID}"] and len(long.images) == 1
    en = render_outlook(renderer, outlook, family="short", language="en")
    assert "no significant severe weather risk" in en.body


def test_without_any_series_there_is_no_chart(renderer: Renderer) -> None:
    msg = render_outlook(renderer, quiet_outlook(series=False), family="long")
    assert msg.images == () and msg.html is not None
    assert "cid:" not in msg.html and "<img" not in msg.html and "图：" not in msg.body


def test_english_reads_as_english(renderer: Renderer) -> None:
    msg = render_outlook(renderer, make_outlook(), family="long", language="en-US")
    assert msg.subject == (
        "[Risk outlook] 四川省, next 72 hours: rainstorm may reach the yellow warning level; "
        "heat near the warning threshold"
    )
    assert msg.html is not None
    doc = parse_html(msg.html)
    assert doc.tags[0][1] == {"lang": "en"}
    text = "".join(doc.text)
    assert "72-hour severe weather risk outlook: 四川省" in text
    assert "Issued 2026-07-20 08:00 (Beijing time)" in text
    assert "Emergency Warning Release Centre" in text
    assert guidance(Hazard.RAINSTORM, Level.YELLOW, "en") in text
    assert "Do not swim in rivers or reservoirs" in text
    assert "Figure: 成都市 (510100), 雅安市 (511800), 乐山市 (511100)" in text
    for word in ("暴雨", "高温", "接近预警标准", "详情", "防御指南", "北京时间"):
        assert word not in msg.html and word not in msg.body, word
    assert msg.body.rstrip().endswith(f"Details: {DETAILS}/")


@pytest.mark.parametrize(("status", "tag"), [("Exercise", "【演练】"), ("Test", "【测试】")])
def test_an_exercise_is_marked_in_every_family(renderer: Renderer, status: str, tag: str) -> None:
    for family in FAMILIES:
        msg = render_outlook(renderer, make_outlook(), family=family, status=status)
        assert msg.subject.startswith(tag) and msg.body.startswith(tag), family
        en = render_outlook(renderer, make_outlook(), family=family, language="en", status=status)
        assert en.subject.startswith(f"[{status.upper()}] "), family
    long = render_outlook(renderer, make_outlook(), family="long", status=status)
    assert long.html is not None and tag in "".join(parse_html(long.html).text)
    actual = render_outlook(renderer, make_outlook(), family="long")
    assert "【" + "演练" not in (actual.html or "") and not actual.subject.startswith(tag)


def test_hostile_names_and_texts_are_escaped(renderer: Renderer) -> None:
    outlook = make_outlook()
    outlook["prefectures"][0]["name"] = HOSTILE
    outlook["prefectures"][1]["province_name"] = HOSTILE
    outlook["provinces"][0]["name"] = f"{HOSTILE} @all http://evil.example"
    outlook["scope"]["name"] = f"<b>x</b>{HOSTILE}"
    outlook["seasonal"][0]["advice_zh"] = f'{HOSTILE}"><script>alert(2)</script>'
    outlook["seasonal"][0]["zh"] = "#话题#"
    long = render_outlook(renderer, outlook, family="long")
    assert long.html is not None
    doc = parse_html(long.html)
    names = [t for t, _ in doc.tags]
    assert "script" not in names and "b" not in names and names.count("img") == 1
    assert "<img src=x" not in long.html and "&lt;img src=x onerror=alert(1)&gt;" in long.html
    assert "http://evil" not in long.html and "@all" not in long.html
    assert _attrs(doc, "href") == [f"{DETAILS}/"]
    md = render_outlook(renderer, outlook, family="markdown")
    assert "<img" not in md.body and "＜img src=x onerror=alert(1)＞" in md.body
    short = render_outlook(renderer, outlook, family="short")
    assert "#话题#" not in short.body and "＃话题＃" in short.body
    text = render_outlook(renderer, outlook, family="text")
    assert "http://evil" not in text.body


def test_a_duty_officers_advice_replaces_the_packaged_one(renderer: Renderer) -> None:
    edited = "请各地加强值守，see http://evil.example @所有人"
    for family in FAMILIES:
        msg = render_outlook(renderer, make_outlook(), family=family, guidance_zh=edited)
        if family != "short":
            assert "请各地加强值守" in msg.body, family
        assert guidance(Hazard.RAINSTORM, Level.YELLOW) not in msg.body, family
        assert "http://evil" not in msg.body and "@所有人" not in msg.body, family
    long = render_outlook(renderer, make_outlook(), family="long", guidance_zh=edited)
    assert long.html is not None and "请各地加强值守" in long.html
    assert guidance(Hazard.HEAT, Level.BLUE) not in long.html
    # English bulletins keep the packaged English advice
    en = render_outlook(renderer, make_outlook(), family="text", language="en", guidance_zh=edited)
    assert guidance(Hazard.RAINSTORM, Level.YELLOW, "en") in en.body and "值守" not in en.body


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
            "outlook/short.zh-CN.j2": (
                '{% set subject = "本地" ~ scope_name %}'
                "{{ subject }}：{{ hazards | map(attribute='name') | join('、') }}\n"
                "{{ details_url }}\n"
            ),
            "outlook/bulletin.zh-CN.html.j2": (
                "<!DOCTYPE html><html><head><title>{{ subject }}</title></head><body>"
                "<h1>{{ scope_name }}{{ hazards[0].name }}</h1>"
                '{% if chart %}<img src="cid:{{ chart.cid }}" alt="">{% endif %}'
                "<p>{{ outlook.prefectures[0].name }}</p></body></html>"
            ),
        },
    )
    custom = Renderer(
        timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS, templates_dir=folder
    )
    outlook = make_outlook()
    outlook["prefectures"][0]["name"] = HOSTILE
    short = render_outlook(custom, outlook, family="short")
    assert short.subject == "本地四川省" and short.body.startswith("本地四川省：暴雨、高温\n")
    long = render_outlook(custom, outlook, family="long", status="Exercise")
    assert long.html is not None
    assert "<h1>四川省暴雨</h1>" in long.html and "&lt;img src=x" in long.html  # autoescaped
    # the operator's page forgot the exercise mark: it is added
    assert "【演练】" in "".join(parse_html(long.html).text)
    # the packaged long text is still used
    assert long.subject.startswith("【演练】【风险提示】四川省")
    # English falls back to the packaged English templates, not the operator's Chinese one
    assert render_outlook(custom, outlook, family="short", language="en").subject.startswith(
        "[Risk outlook]"
    )


def test_a_broken_operator_template_falls_back_in_delivery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _operator_dir(tmp_path, {"outlook/text.zh-CN.j2": "{{ no_such_variable }}"})
    custom = Renderer(
        timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS, templates_dir=folder
    )
    with pytest.raises(jinja2.UndefinedError):
        render_outlook(custom, make_outlook(), family="text")
    msg = render_outlook(custom, make_outlook(), family="text", fallback=True)
    assert msg.subject.startswith("【风险提示】四川省") and "operator template" in caplog.text


def test_a_template_must_show_the_chart_exactly_once(tmp_path: Path) -> None:
    folder = _operator_dir(
        tmp_path,
        {
            "outlook/bulletin.zh-CN.html.j2": (
                '<!DOCTYPE html><html><body><img src="cid:{{ chart.cid }}">'
                '<img src="cid:{{ chart.cid }}"></body></html>'
            )
        },
    )
    custom = Renderer(
        timezone="Asia/Shanghai", issuer_zh=ISSUER, details_url=DETAILS, templates_dir=folder
    )
    with pytest.raises(ValueError, match="once"):
        render_outlook(custom, make_outlook(), family="long")


def test_a_chart_that_fails_costs_the_chart_in_delivery_only(
    renderer: Renderer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("no backend")

    monkeypatch.setattr(bulletin, "outlook_chart", broken)
    with pytest.raises(RuntimeError):
        render_outlook(renderer, make_outlook(), family="long")
    msg = render_outlook(renderer, make_outlook(), family="long", fallback=True)
    assert msg.images == () and msg.html is not None and "cid:" not in msg.html
    assert "成都市" in msg.html and "outlook chart failed" in caplog.text


def test_many_prefectures_are_counted_beyond_the_table(renderer: Renderer) -> None:
    prefectures = [
        _pref(f"51{i:02d}00", f"地{i}", [_risk("rainstorm", None)], series=i < 3)
        for i in range(1, ROW_LIMIT + 6)
    ]
    msg = render_outlook(renderer, make_outlook(prefectures), family="long")
    assert msg.html is not None
    assert "另有5个市（州）有风险" in msg.html and "另有5个市（州）有风险" in msg.body
    assert f"地{ROW_LIMIT}<" in msg.html and f"地{ROW_LIMIT + 1}<" not in msg.html
    assert "地1等45地暴雨接近预警标准" not in msg.html  # the summary names five, then counts
    assert "地1、地2、地3、地4、地5等45地暴雨接近预警标准" in msg.html


def test_the_view_orders_hazards_by_severity() -> None:
    outlook = make_outlook(
        [
            _pref("510100", "成都市", [_risk("heat", None, ratio=0.99)]),
            _pref("511800", "雅安市", [_risk("gale", 1, ratio=1.0)]),
            _pref("511100", "乐山市", [_risk("rainstorm", 3, ratio=1.5)]),
        ]
    )
    view = outlook_view(outlook, "zh")
    assert [(h["name"], h["level"]) for h in view["hazards"]] == [
        ("暴雨", Level.ORANGE),
        ("大风", Level.BLUE),
        ("高温", None),
    ]
    assert view["at_risk"] == 3 and view["level"] == Level.ORANGE
    assert [a["text"] for a in view["advice"]][0] == guidance(Hazard.RAINSTORM, Level.ORANGE)
    assert outlook_view(outlook, "en")["hazards"][1]["name"] == "gale"


def test_bad_input_is_refused(renderer: Renderer) -> None:
    with pytest.raises(ValueError, match="family"):
        render_outlook(renderer, make_outlook(), family="poster")
    with pytest.raises(ValueError, match="not an outlook"):
        render_outlook(renderer, {**make_outlook(), "kind": "campaign"}, family="text")


def test_the_details_link(renderer: Renderer) -> None:
    msg = render_outlook(renderer, make_outlook(), family="text", identifier="a b&c")
    assert msg.body.rstrip().endswith(f"详情：{DETAILS}/?bulletin=a%20b%26c")
    own = render_outlook(
        renderer, make_outlook(), family="long", details_url="https://x.test/o?id=1&l=zh"
    )
    assert own.html is not None and 'href="https://x.test/o?id=1&amp;l=zh"' in own.html


def test_rendering_does_not_change_the_outlook(renderer: Renderer) -> None:
    outlook = make_outlook()
    before = copy.deepcopy(outlook)
    for family in FAMILIES:
        render_outlook(renderer, outlook, family=family)
    assert outlook == before


def test_the_example_script_renders_the_fixtures_outlook(tmp_path: Path) -> None:
    """scripts/example_bulletin.py end to end (without the screenshot): `alerts outlook`
    on the 72-hour fixture, rendered and written with the chart inlined."""
    out = tmp_path / "bulletin.html"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "example_bulletin.py"),
            "--no-screenshot",
            "--html",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    doc = parse_html(html)
    [src] = _attrs(doc, "src")
    assert src.startswith("data:image/png;base64,iVBORw0KGgo") and "cid:" not in html
    text = "".join(doc.text)
    assert "四川省未来72小时灾害性天气风险提示" in text and "成都市" in text
    assert "接近预警标准" in text  # the fixture has near-threshold rain and heat
