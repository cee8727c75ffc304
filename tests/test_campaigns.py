"""Publicity campaigns as data: the packaged file, bad files, selection by date,
audience and region, the send calendar, the context fed by an outlook, rendering,
and `alerts campaigns list|show|preview`."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.campaigns import (
    Catalog,
    campaign_channels,
    campaign_context,
    due_sends,
    load_catalog,
    next_send,
    packaged_catalog_path,
    region_prefixes,
    render_campaign,
    select_campaigns,
)
from alerts.cli import main
from alerts.config import ChannelSettings
from alerts.criteria import RuleFileError
from alerts.render import FAMILIES, SHORT_BUDGET, Renderer

BEIJING = timezone(timedelta(hours=8))
CJK = re.compile(r"[\u4e00-\u9fff]")


def bj(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(
        timezone="Asia/Shanghai",
        issuer_zh="四川省预警发布中心",
        details_url="https://yj.example.gov.cn/",
    )


def outlook(prefectures: list[dict[str, Any]], seasonal: list[dict[str, Any]] | None = None):
    """An outlook as `Outlook.to_json()` gives it (the shared contract)."""
    return {
        "kind": "outlook",
        "issued_at": "2026-08-23T00:00:00Z",
        "start": "2026-08-23T00:00:00Z",
        "end": "2026-08-26T00:00:00Z",
        "hours": 72,
        "timezone": "Asia/Shanghai",
        "rule_set_version": "cma2007-haze2013-r1",
        "near_share": 0.7,
        "scope": None,
        "level": max((p["level"] for p in prefectures), default=0),
        "provinces": [],
        "prefectures": prefectures,
        "seasonal": seasonal or [],
    }


def prefecture(code: str, name: str, *risks: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "province": code[:2] + "0000",
        "province_name": "",
        "level": max((r["level"] or 0 for r in risks), default=0),
        "risks": list(risks),
        "series": None,
    }


def risk(hazard: str, level: int | None, *, peak_at: str = "2026-08-24T09:00:00Z") -> dict:
    near = level is None
    return {
        "hazard": hazard,
        "level": level,
        "near": near,
        "peak_at": peak_at,
        "value": 38.0 if near else 61.3,
        "threshold": 50.0,
        "variable": "rain_mm",
        "ratio": 0.76 if near else 1.23,
        "window_h": 6.0,
        "rule_id": f"{hazard}.yellow" + ("~near" if near else ""),
    }


# Chengdu (四川大学望江校区 510107, 成都东站 510108): rain near the threshold, and heat.
# Wuhan (武汉大学 420106): nothing. Aba (九寨沟, flood-season region 5132): yellow rain.
OUTLOOK = outlook(
    [
        prefecture("513200", "阿坝藏族羌族自治州", risk("rainstorm", 2)),
        prefecture(
            "510100",
            "成都市",
            risk("rainstorm", None),
            risk("heat", None, peak_at="2026-08-24T07:00:00Z"),
        ),
        prefecture("420100", "武汉市"),
        prefecture("440100", "广州市", risk("rainstorm", 3)),
    ],
    seasonal=[
        {
            "id": "summer_drowning",
            "zh": "防溺水",
            "en": "drowning",
            "hazards": ["flood"],
            "advice_zh": "远离危险水域。",
            "advice_en": "Keep away from open water.",
        },
        {
            "id": "winter_gas",
            "zh": "防煤气中毒",
            "en": "carbon monoxide",
            "hazards": ["cold_wave"],
            "advice_zh": "注意通风。",
            "advice_en": "Keep rooms aired.",
        },
    ],
)


# -- the packaged file ---------------------------------------------------------------------


def test_packaged_file_loads_and_is_cached(catalog: Catalog) -> None:
    assert load_catalog() is catalog
    again = load_catalog(packaged_catalog_path())
    assert again == catalog and again is not catalog
    assert {
        "national-day-tourists",
        "term-start-students",
        "spring-festival-travel",
        "summer-drowning",
        "winter-gas-poisoning",
        "flood-season-mountains",
    } <= set(catalog.campaigns)
    assert len(catalog.places) >= 15
    assert {p.kind for p in catalog.places.values()} >= {"scenic", "school", "station"}
    assert "farmers" in catalog.calendar.audiences
    for c in catalog.campaigns.values():
        assert CJK.search(c.title_zh) and CJK.search(c.zh), c.id
        assert not CJK.search(c.title_en) and not CJK.search(c.en), c.id
        assert c.title("zh-CN") == c.title_zh and c.title("en") == c.title_en
    nd = catalog.campaigns["national-day-tourists"]
    assert nd.sends.days == (-2, 0) and nd.sends.at.strftime("%H:%M") == "09:00"
    assert catalog.places["jiuzhaigou"].region == "513225"


def test_region_prefixes_join_regions_groups_and_places(catalog: Catalog) -> None:
    nd = region_prefixes(catalog, catalog.campaigns["national-day-tourists"])
    assert "5132" in nd  # tourist_regions (阿坝州)
    assert "513225" in nd  # 九寨沟's county
    assert "330106" in nd  # 西湖
    assert region_prefixes(catalog, catalog.campaigns["term-start-students"]) == [
        "510107",
        "420106",
        "110108",
    ]
    assert region_prefixes(catalog, catalog.campaigns["summer-drowning"]) == []  # national


# -- bad files -----------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "version": "test-1",
    "places": [
        {"id": "p1", "zh": "成都东站", "en": "Chengdu East", "kind": "station", "region": "510108"}
    ],
    "campaigns": [
        {
            "id": "c1",
            "title_zh": "测试活动",
            "title_en": "Test campaign",
            "period": "national_day",
            "audiences": ["tourists"],
            "places": ["p1"],
            "zh": "{{ period.zh }}请注意安全。",
            "en": "Take care during the {{ period.en }}.",
        }
    ],
}


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "campaigns.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def variant(**changes: Any) -> dict[str, Any]:
    """BASE with fields of campaign c1 changed (None removes a field)."""
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            data["campaigns"][0].pop(key, None)
        else:
            data["campaigns"][0][key] = value
    return data


def test_a_minimal_file_loads(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path, BASE))
    assert list(catalog.campaigns) == ["c1"]
    assert catalog.campaigns["c1"].sends.days == (0,)  # defaults: day 0 at 09:00


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            variant(period="golden_week"),
            "campaigns.c1.period: unknown period 'golden_week'",
            id="unknown-period",
        ),
        pytest.param(
            variant(audiences=["tourists", "astronauts"]),
            "campaigns.c1.audiences: unknown audience 'astronauts'",
            id="unknown-audience",
        ),
        pytest.param(
            variant(places=["p1", "mars_base"]),
            "campaigns.c1.places: unknown place 'mars_base'",
            id="unknown-place",
        ),
        pytest.param(
            variant(regions=["tourist_regions", "ski_resorts"]),
            "campaigns.c1.regions: unknown region group 'ski_resorts'",
            id="unknown-region-group",
        ),
        pytest.param(
            variant(regions=["5199"]),
            "campaigns.c1.regions: no region with adcode prefix 5199",
            id="unknown-adcode-prefix",
        ),
        pytest.param(
            variant(regions=["5"]),
            "campaigns.c1.regions: bad adcode prefix '5'",
            id="bad-adcode-prefix",
        ),
        pytest.param(
            variant(recurring=["10-01..10-07"]),
            "campaigns.c1: give either `period` or own",
            id="period-and-own-ranges",
        ),
        pytest.param(
            variant(period=None), "campaigns.c1: a campaign needs a `period`", id="no-period"
        ),
        pytest.param(
            variant(sends={"days": [-2, 0], "at": 540}),  # YAML reads unquoted 9:00 as 540
            "campaigns.c1.sends.at: bad time 540",
            id="unquoted-time",
        ),
        pytest.param(
            variant(sends={"days": [0, 0]}),
            "campaigns.c1.sends.days: repeated day",
            id="repeated-day",
        ),
        pytest.param(variant(hazards=["rain"]), "campaigns.c1.hazards.0", id="unknown-hazard"),
        pytest.param(
            variant(zh="{% if period.zh %}没有结束"),
            "campaigns.c1.zh: template syntax error on line 1",
            id="template-syntax-error",
        ),
        pytest.param(
            variant(en="Take care in {{ perod.en }}."),
            "campaigns.c1.en: the template fails: UndefinedError: 'perod' is undefined",
            id="template-undefined-variable",
        ),
        pytest.param(
            variant(zh="{{ forecast[0].place_zh }}有雨。"),  # unguarded: no forecast
            "campaigns.c1.zh: the template fails",
            id="template-needs-a-forecast",
        ),
        pytest.param(
            variant(short_zh="请注意安全。" * 30),
            "campaigns.c1.short_zh: 186 characters with the headline, over the short budget",
            id="short-over-budget",
        ),
    ],
)
def test_a_bad_campaign_fails_naming_it_and_the_field(
    tmp_path: Path, data: dict[str, Any], expected: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(RuleFileError) as err:
        load_catalog(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_duplicate_campaign_id_is_named(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["campaigns"].append(copy.deepcopy(data["campaigns"][0]))
    with pytest.raises(RuleFileError, match="duplicate campaign id 'c1'"):
        load_catalog(write(tmp_path, data))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"region": "5101"}, "places.p1.region: bad adcode '5101'"),
        ({"region": "990108"}, "places.p1.region: bad adcode '990108'"),
        ({"region": "519908"}, "places.p1.region: no region with adcode 519908"),
        ({"kind": "castle"}, "places.p1.kind: unknown place kind 'castle'"),
        ({"latitude": 123.0}, "places.p1.latitude"),
    ],
)
def test_a_bad_place_fails_naming_it(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    data = copy.deepcopy(BASE)
    data["places"][0].update(change)
    with pytest.raises(RuleFileError) as err:
        load_catalog(write(tmp_path, data))
    assert expected in str(err.value)


def test_place_kinds_extend_the_built_in_list(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["places"][0]["kind"] = "hospital"
    data["place_kinds"] = {"hospital": {"zh": "医院", "en": "hospital"}}
    catalog = load_catalog(write(tmp_path, data))
    assert catalog.kinds["hospital"].zh == "医院" and "scenic" in catalog.kinds


def test_the_file_may_not_smuggle_a_calendar(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE) | {"calendar": {"version": "x"}}
    with pytest.raises(RuleFileError, match="calendar: not a field"):
        load_catalog(write(tmp_path, data))


# -- selection -----------------------------------------------------------------------------


def ids(campaigns: list[Any]) -> list[str]:
    return [c.id for c in campaigns]


@pytest.mark.parametrize(
    ("when", "campaign", "running"),
    [
        pytest.param(bj(2026, 10, 3, 12), "national-day-tourists", True, id="in-period"),
        pytest.param(bj(2026, 10, 8, 0, 5), "national-day-tourists", False, id="day-after"),
        pytest.param(bj(2026, 9, 30, 23), "national-day-tourists", False, id="eve"),
        # 16:30 UTC on 30 September is 00:30 on 1 October in Beijing: the local date counts
        pytest.param(
            datetime(2026, 9, 30, 16, 30, tzinfo=UTC),
            "national-day-tourists",
            True,
            id="local-date-not-utc-date",
        ),
        pytest.param(bj(2026, 12, 31, 20), "winter-gas-poisoning", True, id="winter-december"),
        pytest.param(bj(2027, 1, 15), "winter-gas-poisoning", True, id="winter-across-year-end"),
        pytest.param(bj(2028, 2, 29), "winter-gas-poisoning", True, id="winter-leap-day"),
        pytest.param(bj(2027, 3, 1), "winter-gas-poisoning", False, id="winter-over"),
        pytest.param(bj(2026, 2, 10), "spring-festival-travel", True, id="dated-2026"),
        pytest.param(bj(2027, 1, 22), "spring-festival-travel", True, id="dated-2027-first-day"),
        pytest.param(bj(2027, 1, 21), "spring-festival-travel", False, id="dated-2027-eve"),
        pytest.param(bj(2029, 2, 1), "spring-festival-travel", False, id="dated-not-yet-listed"),
        pytest.param(bj(2026, 8, 30), "term-start-students", True, id="second-range-of-year"),
        pytest.param(bj(2026, 5, 1, 8), "flood-season-mountains", True, id="own-range"),
        pytest.param(bj(2026, 10, 1), "flood-season-mountains", False, id="own-range-over"),
    ],
)
def test_select_by_date(catalog: Catalog, when: datetime, campaign: str, running: bool) -> None:
    assert (campaign in ids(select_campaigns(catalog, when=when))) is running


def test_select_by_audience(catalog: Catalog) -> None:
    july = bj(2026, 7, 15, 10)
    assert ids(select_campaigns(catalog, when=july)) == [
        "flood-season-mountains",
        "summer-drowning",
    ]
    assert ids(select_campaigns(catalog, when=july, audience="students")) == ["summer-drowning"]
    assert ids(select_campaigns(catalog, when=july, audience="farmers")) == [
        "flood-season-mountains"
    ]
    assert select_campaigns(catalog, when=july, audience="tourists") == []
    winter = bj(2027, 1, 10)
    assert ids(select_campaigns(catalog, when=winter, audience="elderly")) == [
        "winter-gas-poisoning"
    ]


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        # a province contains 阿坝州 (tourist_regions) and 九寨沟: shorter prefix, overlap
        ("51", {"national-day-tourists"}),
        ("510000", {"national-day-tourists"}),  # trailing zeros are a province too
        # a county inside a prefecture of the campaign: longer prefix, overlap
        ("513225", {"national-day-tourists"}),
        ("513221", {"national-day-tourists"}),  # 汶川县: only the prefecture 5132 holds it
        ("513200", {"national-day-tourists"}),
        ("3301", {"national-day-tourists"}),  # by place only: 西湖 330106
        ("330106", {"national-day-tourists"}),
        ("3302", set()),  # 宁波: neither a region nor a place of it
        ("44", set()),
    ],
)
def test_select_by_region_prefix_overlap(catalog: Catalog, region: str, expected: set[str]) -> None:
    chosen = ids(select_campaigns(catalog, when=bj(2026, 10, 2, 10), region=region))
    assert set(chosen) == expected


def test_select_by_region_place_based_and_national(catalog: Catalog) -> None:
    term = bj(2026, 8, 30, 9)  # term_start and summer_vacation overlap
    assert "term-start-students" in ids(select_campaigns(catalog, when=term, region="4201"))
    assert "term-start-students" in ids(select_campaigns(catalog, when=term, region="510107"))
    assert "term-start-students" not in ids(select_campaigns(catalog, when=term, region="3301"))
    # summer-drowning names no regions or places: national, every region matches
    for region in ("65", "3301", "110101"):
        assert "summer-drowning" in ids(select_campaigns(catalog, when=term, region=region))
    with pytest.raises(ValueError, match="bad adcode prefix"):
        select_campaigns(catalog, when=term, region="Chengdu")


def test_select_needs_an_aware_time(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        select_campaigns(catalog, when=datetime(2026, 10, 2))


# -- the send calendar ---------------------------------------------------------------------


def sends_of(catalog: Catalog, campaign: str, when: datetime, lookback: timedelta) -> list:
    return [at for c, at in due_sends(catalog, when=when, lookback=lookback) if c.id == campaign]


def test_due_sends_at_the_local_time_including_days_before_the_period(catalog: Catalog) -> None:
    # national-day-tourists: days [-2, 0] at 09:00 Beijing -> 29 September 01:00 UTC
    first = datetime(2026, 9, 29, 1, 0, tzinfo=UTC)
    assert sends_of(catalog, "national-day-tourists", first, timedelta(days=1)) == [first]
    before = first - timedelta(minutes=1)
    assert sends_of(catalog, "national-day-tourists", before, timedelta(days=1)) == []
    # (when - lookback, when]: a send exactly lookback ago is not due again
    later = first + timedelta(days=1)
    assert sends_of(catalog, "national-day-tourists", later, timedelta(days=1)) == []
    assert sends_of(catalog, "national-day-tourists", later, timedelta(days=1, seconds=1)) == [
        first
    ]


def test_due_sends_returns_utc_sorted_by_time(catalog: Catalog) -> None:
    due = due_sends(catalog, when=bj(2026, 12, 31, 23, 59), lookback=timedelta(days=366))
    times = [at for _, at in due]
    assert times == sorted(times)
    assert all(at.utcoffset() == timedelta(0) for at in times)
    assert len(set((c.id, at) for c, at in due)) == len(due)  # no send twice


@pytest.mark.parametrize(
    ("campaign", "expected"),
    [
        # two ranges a year (February, August), days [-1, 7] at 17:30
        (
            "term-start-students",
            [bj(2026, 2, 14, 17, 30), bj(2026, 2, 22, 17, 30),
             bj(2026, 8, 24, 17, 30), bj(2026, 9, 1, 17, 30)],
        ),
        # winter crosses the year end: the 2025 range's day 61 falls in 2026
        (
            "winter-gas-poisoning",
            [bj(2026, 1, 31, 18), bj(2026, 12, 1, 18), bj(2026, 12, 31, 18)],
        ),
        ("national-day-tourists", [bj(2026, 9, 29, 9), bj(2026, 10, 1, 9)]),
        # dated: 2026-02-02..03-13, days [-3, 0, 20]; the 2027 range starts 22 January 2027
        (
            "spring-festival-travel",
            [bj(2026, 1, 30, 10), bj(2026, 2, 2, 10), bj(2026, 2, 22, 10)],
        ),
    ],
)  # fmt: skip
def test_a_year_of_sends_once_per_range(
    catalog: Catalog, campaign: str, expected: list[datetime]
) -> None:
    year = sends_of(catalog, campaign, bj(2027, 1, 1), timedelta(days=365))
    assert year == [e.astimezone(UTC) for e in expected]


def test_ranges_starting_the_same_day_send_once(tmp_path: Path) -> None:
    data = variant(
        period=None,
        recurring=["10-01..10-07"],
        dated=["2026-10-01..2026-10-03"],
        sends={"days": [0], "at": "08:00"},
    )
    catalog = load_catalog(write(tmp_path, data))
    due = due_sends(catalog, when=bj(2026, 10, 1, 8), lookback=timedelta(days=2))
    assert [(c.id, at) for c, at in due] == [("c1", bj(2026, 10, 1, 8).astimezone(UTC))]


def test_next_send(catalog: Catalog) -> None:
    nd = catalog.campaigns["national-day-tourists"]
    assert next_send(catalog, nd, bj(2026, 9, 29, 9)) == bj(2026, 9, 29, 9).astimezone(UTC)
    assert next_send(catalog, nd, bj(2026, 9, 29, 9, 1)) == bj(2026, 10, 1, 9).astimezone(UTC)
    assert next_send(catalog, nd, bj(2026, 10, 2)) == bj(2027, 9, 29, 9).astimezone(UTC)
    sft = catalog.campaigns["spring-festival-travel"]
    assert next_send(catalog, sft, bj(2029, 1, 1)) is None  # dated ranges ran out


# -- context -------------------------------------------------------------------------------


def test_context_shows_near_threshold_rain_at_a_place_in_that_prefecture(
    catalog: Catalog,
) -> None:
    term = catalog.campaigns["term-start-students"]
    ctx = campaign_context(catalog, term, when=bj(2026, 8, 24, 17, 30), outlook=OUTLOOK)
    places = {p["id"]: p for p in ctx["places"]}
    scu = places["scu_wangjiang"]
    assert scu["prefecture"] == "510100" and scu["prefecture_name"] == "成都市"
    rain = next(r for r in scu["risks"] if r["hazard"] == "rainstorm")
    assert rain["level"] is None and rain["near"] is True
    assert rain["hazard_zh"] == "暴雨" and rain["peak_at"] == "2026-08-24T09:00:00Z"
    assert {r["hazard"] for r in scu["risks"]} == {"rainstorm", "heat"}  # both in its hazards
    # 武汉大学 and 北京大学: prefectures without risks (or absent from the outlook)
    assert places["whu"]["risks"] == [] and places["pku"]["risks"] == []
    assert {(f["place"], f["hazard"]) for f in ctx["forecast"]} == {
        ("scu_wangjiang", "rainstorm"),
        ("scu_wangjiang", "heat"),
    }
    assert ctx["period"]["name"] == "term_start"
    assert ctx["period"]["start"] == "2026-08-25" and ctx["period"]["days_to_start"] == 1
    assert [s["id"] for s in ctx["seasonal"]] == ["summer_drowning"]  # flood is its hazard
    assert ctx["campaign"]["templates"]["zh"] == term.zh
    assert ctx["audiences"] == [
        {"key": "students", "zh": "学生、家长", "en": "students and parents"}
    ]
    assert json.loads(json.dumps(ctx)) == ctx  # plain JSON, storable


def test_context_keeps_only_the_campaigns_hazards(catalog: Catalog) -> None:
    # 成都东站 is in Chengdu too, but the Spring Festival campaign is about cold and snow
    sft = catalog.campaigns["spring-festival-travel"]
    ctx = campaign_context(catalog, sft, when=bj(2027, 1, 19, 10), outlook=OUTLOOK)
    east = next(p for p in ctx["places"] if p["id"] == "chengdu_east")
    assert east["risks"] == [] and ctx["forecast"] == []
    assert [s["id"] for s in ctx["seasonal"]] == ["winter_gas"]
    assert ctx["period"]["dates_zh"] == "1月22日至3月2日"
    assert ctx["period"]["days_to_start"] == 3


def test_context_region_and_national_lines(catalog: Catalog) -> None:
    flood = catalog.campaigns["flood-season-mountains"]
    ctx = campaign_context(catalog, flood, when=bj(2026, 8, 1, 7, 30), outlook=OUTLOOK)
    # 阿坝州 is one of its regions; 成都 and 广州 are not
    assert [(f["prefecture"], f["level"], f["place"]) for f in ctx["forecast"]] == [
        ("513200", 2, None)
    ]
    drowning = catalog.campaigns["summer-drowning"]  # national: the worst of the country
    ctx = campaign_context(catalog, drowning, when=bj(2026, 7, 1, 16), outlook=OUTLOOK)
    assert [(f["prefecture"], f["level"]) for f in ctx["forecast"]] == [
        ("440100", 3),
        ("513200", 2),
        ("510100", None),
        ("510100", None),
    ]


def test_context_without_an_outlook_and_with_a_bad_one(catalog: Catalog) -> None:
    nd = catalog.campaigns["national-day-tourists"]
    ctx = campaign_context(catalog, nd, when=bj(2026, 9, 29, 9), outlook=None)
    assert ctx["forecast"] == [] and ctx["outlook"] is None and ctx["seasonal"] == []
    assert ctx["period"]["dates_zh"] == "10月1日至7日" and ctx["period"]["days_to_start"] == 2
    assert ctx["when"] == "2026-09-29T01:00:00Z"
    with pytest.raises(ValueError, match="not an outlook"):
        campaign_context(catalog, nd, when=bj(2026, 9, 29, 9), outlook={"kind": "bulletin"})


# -- rendering -----------------------------------------------------------------------------


def body_without_link(body: str) -> str:
    return "".join(body.strip().splitlines()[:-1])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_every_family_and_language_renders(
    catalog: Catalog, renderer: Renderer, family: str, language: str
) -> None:
    term = catalog.campaigns["term-start-students"]
    ctx = campaign_context(catalog, term, when=bj(2026, 8, 24, 17, 30), outlook=OUTLOOK)
    stored = json.loads(json.dumps(ctx))  # rendered later from the stored context alone
    out = render_campaign(renderer, stored, family=family, language=language)
    lines = out.body.strip().splitlines()
    zh = language == "zh-CN"
    assert out.subject == (f"【{term.title_zh}】" if zh else term.title_en)
    assert lines[0] in (out.subject, f"**{out.subject}**")
    assert "https://yj.example.gov.cn/?campaign=term-start-students" in lines[-1]
    if family == "short":
        assert len(body_without_link(out.body)) <= SHORT_BUDGET
        assert (term.short_zh if zh else term.short_en or "").strip() in out.body
    else:
        assert ("开学季到了" if zh else "It is the start of school term.") in out.body
        near_en = "Sichuan University (Wangjiang campus) (成都市): rainstorm near the warning"
        near = "四川大学望江校区（成都市）：暴雨接近预警标准" if zh else near_en + " threshold"
        assert near in out.body
        peak = "24日17时前后最强" if zh else "strongest around 08-24 17:00"  # Beijing time
        assert peak in out.body
        assert ("四川省预警发布中心" if zh else "Emergency Warning Release Centre") in out.body
    if not zh:
        assert not CJK.search(out.body.replace("成都市", ""))


def test_short_message_carries_forecast_lines_within_budget(
    catalog: Catalog, renderer: Renderer
) -> None:
    term = catalog.campaigns["term-start-students"]
    ctx = campaign_context(catalog, term, when=bj(2026, 8, 24, 17, 30), outlook=OUTLOOK)
    out = render_campaign(renderer, ctx, family="short", language="zh-CN")
    assert "四川大学望江校区暴雨接近预警标准" in out.body
    assert len(body_without_link(out.body)) <= SHORT_BUDGET


def test_a_long_message_without_short_text_is_cut_to_the_budget(
    tmp_path: Path, renderer: Renderer
) -> None:
    catalog = load_catalog(write(tmp_path, variant(zh="请注意出行安全，" * 40)))
    ctx = campaign_context(catalog, catalog.campaigns["c1"], when=bj(2026, 10, 1, 9), outlook=None)
    out = render_campaign(renderer, ctx, family="short", language="zh-CN")
    assert len(body_without_link(out.body)) <= SHORT_BUDGET
    assert out.body.splitlines()[1].endswith("…")
    full = render_campaign(renderer, ctx, family="text", language="zh-CN")
    assert "请注意出行安全，" * 40 in full.body


@pytest.mark.parametrize(
    ("status", "language", "tag"),
    [
        ("Exercise", "zh-CN", "【演练】"),
        ("Exercise", "en", "[EXERCISE] "),
        ("Test", "zh-CN", "【测试】"),
    ],
)
def test_exercise_marking(
    catalog: Catalog, renderer: Renderer, status: str, language: str, tag: str
) -> None:
    nd = catalog.campaigns["national-day-tourists"]
    ctx = campaign_context(catalog, nd, when=bj(2026, 9, 29, 9), outlook=None)
    out = render_campaign(renderer, ctx, family="text", language=language, status=status)
    assert out.subject.startswith(tag) and out.body.startswith(tag)
    actual = render_campaign(renderer, ctx, family="text", language=language)
    assert not actual.subject.startswith(tag) and tag.strip() not in actual.body


def test_identifier_links_to_the_bulletin(catalog: Catalog, renderer: Renderer) -> None:
    nd = catalog.campaigns["national-day-tourists"]
    ctx = campaign_context(catalog, nd, when=bj(2026, 9, 29, 9), outlook=None)
    out = render_campaign(
        renderer, ctx, family="text", language="zh-CN", identifier="CAMPAIGN-x-202609290900"
    )
    assert out.body.strip().endswith("?bulletin=CAMPAIGN-x-202609290900")


def test_the_message_mentions_the_forecast_at_the_sites(
    catalog: Catalog, renderer: Renderer
) -> None:
    nd = catalog.campaigns["national-day-tourists"]
    aba = outlook([prefecture("513200", "阿坝藏族羌族自治州", risk("rainstorm", None))])
    ctx = campaign_context(catalog, nd, when=bj(2026, 9, 29, 9), outlook=aba)
    out = render_campaign(renderer, ctx, family="text", language="zh-CN")
    assert "国庆黄金周（10月1日至7日）即将开始" in out.body
    assert "据预报，九寨沟风景名胜区近期天气不利出游" in out.body
    assert "- 九寨沟风景名胜区（阿坝藏族羌族自治州）：暴雨接近预警标准" in out.body
    calm = render_campaign(
        renderer,
        campaign_context(catalog, nd, when=bj(2026, 10, 1, 9), outlook=None),
        family="text",
        language="zh-CN",
    )
    assert "国庆黄金周（10月1日至7日）期间" in calm.body and "据预报" not in calm.body


def test_operator_template_overrides_one_campaign(catalog: Catalog, tmp_path: Path) -> None:
    folder = tmp_path / "templates" / "campaign" / "summer-drowning"
    folder.mkdir(parents=True)
    (folder / "text.zh-CN.j2").write_text(
        '{% set subject = "【本地】" ~ campaign.title_zh %}{{ subject }}\n{{ message }}\n'
        "本地热线：12345\n",
        encoding="utf-8",
    )
    renderer = Renderer(
        timezone="Asia/Shanghai",
        issuer_zh="某市预警中心",
        details_url="https://x.example/",
        templates_dir=tmp_path / "templates",
    )
    when = bj(2026, 7, 1, 16)
    drowning = campaign_context(
        catalog, catalog.campaigns["summer-drowning"], when=when, outlook=None
    )
    out = render_campaign(renderer, drowning, family="text", language="zh-CN")
    assert out.subject == "【本地】暑期防溺水提示" and "本地热线：12345" in out.body
    # other families and other campaigns keep the packaged wrapper
    assert (
        "本地热线" not in render_campaign(renderer, drowning, family="short", language="zh-CN").body
    )
    flood = campaign_context(
        catalog, catalog.campaigns["flood-season-mountains"], when=when, outlook=None
    )
    assert "本地热线" not in render_campaign(renderer, flood, family="text", language="zh-CN").body
    # a broken operator template: an error, or the packaged wrapper with fallback
    (folder / "text.zh-CN.j2").write_text("{{ no_such_thing }}", encoding="utf-8")
    with pytest.raises(Exception, match="no_such_thing"):
        render_campaign(renderer, drowning, family="text", language="zh-CN")
    out = render_campaign(renderer, drowning, family="text", language="zh-CN", fallback=True)
    assert out.subject == "【暑期防溺水提示】"


def test_channels_of_a_campaign(catalog: Catalog, tmp_path: Path) -> None:
    channels = [
        ChannelSettings.model_validate({"name": "outbox", "type": "outbox"}),
        ChannelSettings.model_validate({"name": "duty", "type": "outbox", "audience": "internal"}),
        ChannelSettings.model_validate({"name": "old", "type": "outbox", "enabled": False}),
    ]
    nd = catalog.campaigns["national-day-tourists"]
    assert [c.name for c in campaign_channels(nd, channels)] == ["outbox"]
    own = load_catalog(write(tmp_path, variant(channels=["duty", "old"]))).campaigns["c1"]
    assert [c.name for c in campaign_channels(own, channels)] == ["duty"]
    missing = load_catalog(write(tmp_path, variant(channels=["weibo"]))).campaigns["c1"]
    with pytest.raises(ValueError, match="campaign c1: channels: not configured: weibo"):
        campaign_channels(missing, channels)


# -- the command line ----------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["campaigns", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_list(alerts_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 6
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    drowning = next(r for r in rows if r["id"] == "summer-drowning")
    assert drowning["national"] is True and drowning["regions"] == []
    assert drowning["next_send"].endswith("T08:00:00Z")  # 16:00 Beijing
    code, out, _ = run(capsys, "list", "--at", "2026-10-02T02:00:00Z", "--region", "5132", "--json")
    assert code == 0 and [json.loads(x)["id"] for x in out.splitlines()] == [
        "national-day-tourists"
    ]
    code, out, _ = run(capsys, "list", "--at", "2026-07-10T02:00:00Z", "--audience", "students")
    assert code == 0 and out.split()[0] == "summer-drowning" and len(out.splitlines()) == 1
    code, out, _ = run(capsys, "list", "--at", "2026-11-10T02:00:00Z", "--audience", "tourists")
    assert code == 0 and out.strip() == "(no campaign)"
    code, _, err = run(capsys, "list", "--audience", "astronauts")
    assert code == 2 and "unknown audience 'astronauts'" in err


def test_cli_show(alerts_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "flood-season-mountains")
    doc = json.loads(out)
    assert code == 0 and doc["id"] == "flood-season-mountains"
    assert doc["recurring"] == ["05-01..09-30"] and doc["sends"] == {
        "days": [0, 31, 61, 92],
        "at": "07:30",
    }
    assert doc["region_prefixes"][:2] == ["5132", "5133"] and len(doc["next_sends"]) == 3
    code, out, err = run(capsys, "show", "no-such-campaign")
    assert code == 2 and out == ""
    assert "no campaign 'no-such-campaign'" in err and "national-day-tourists" in err


def test_cli_preview(alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "outlook.json"
    file.write_text(json.dumps(OUTLOOK, ensure_ascii=False), encoding="utf-8")
    code, out, _ = run(
        capsys, "preview", "term-start-students", "--at", "2026-08-24T09:30:00Z",
        "--outlook", str(file),
    )  # fmt: skip
    assert code == 0
    assert out.startswith("【开学季安全提示】")
    assert "- 四川大学望江校区（成都市）：暴雨接近预警标准" in out
    code, out, _ = run(
        capsys, "preview", "term-start-students", "--at", "2026-08-24T09:30:00Z",
        "--family", "short", "--language", "en", "--json",
    )  # fmt: skip
    doc = json.loads(out)
    assert code == 0 and doc["family"] == "short" and doc["language"] == "en"
    assert doc["subject"] == "Back-to-school safety" and doc["context"]["forecast"] == []
    assert len(body_without_link(doc["body"])) <= SHORT_BUDGET
    code, _, err = run(capsys, "preview", "nope")
    assert code == 2 and "no campaign 'nope'" in err
    file.write_text('{"kind": "something else"}', encoding="utf-8")
    code, _, err = run(capsys, "preview", "summer-drowning", "--outlook", str(file))
    assert code == 2 and "not an outlook" in err


def test_cli_uses_another_file(
    alerts_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, BASE)
    code, out, _ = run(capsys, "--file", str(path), "list", "--json")
    assert code == 0 and [json.loads(x)["id"] for x in out.splitlines()] == ["c1"]
    bad = write(tmp_path, variant(period="nope"))
    code, _, err = run(capsys, "--file", str(bad), "list")
    assert code == 2 and "campaigns.c1.period: unknown period 'nope'" in err
