"""Targeted publicity tips: the packaged calendar, choosing tips, and bad files."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from alerts.criteria import RuleFileError
from alerts.model import Hazard, Level
from alerts.publicity import (
    Calendar,
    active_periods,
    load_calendar,
    packaged_calendar_path,
    select_tips,
    tips_for,
    undated_periods,
)

BEIJING = timezone(timedelta(hours=8))
CJK = re.compile(r"[\u4e00-\u9fff]")


def bj(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def calendar() -> Calendar:
    return load_calendar()


def ids(
    calendar: Calendar, hazard: Hazard, level: Level, when: datetime, codes: list[str]
) -> list[str]:
    chosen = select_tips(
        hazard=hazard, level=level, when=when, region_codes=codes, calendar=calendar
    )
    return [tip.id for tip in chosen]


def test_packaged_file_loads_and_is_cached(calendar: Calendar) -> None:
    assert load_calendar() is calendar
    assert 25 <= len(calendar.tips) <= 35
    assert {"tourists", "students", "travellers", "elderly", "outdoor_workers", "drivers"} <= set(
        calendar.audiences
    )
    assert "5307" in calendar.prefixes(calendar.tips["tourists-rainstorm-valleys"])
    for tip in calendar.tips.values():
        assert CJK.search(tip.zh), tip.id
        assert not CJK.search(tip.en), tip.id
    # the same file loaded by path is an equal, separate object
    again = load_calendar(packaged_calendar_path())
    assert again == calendar and again is not calendar


@pytest.mark.parametrize(
    ("hazard", "level", "when", "codes", "first", "present", "absent"),
    [
        pytest.param(
            Hazard.RAINSTORM,
            Level.BLUE,
            bj(2026, 7, 15, 10),
            ["530700"],
            "tourists-rainstorm-valleys",
            {"students-drowning-summer"},
            set(),
            id="july-rainstorm-lijiang-tourists-first",
        ),
        pytest.param(
            Hazard.RAINSTORM,
            Level.BLUE,
            bj(2026, 11, 15, 10),
            ["530700"],
            None,
            set(),
            {"tourists-rainstorm-valleys", "outdoor-rainstorm-sites", "students-drowning-summer"},
            id="november-rainstorm-lijiang-no-summer-tips",
        ),
        pytest.param(
            Hazard.RAINSTORM,
            Level.BLUE,
            bj(2026, 7, 15, 10),
            ["440100"],
            None,
            {"outdoor-rainstorm-sites"},
            {"tourists-rainstorm-valleys"},
            id="july-rainstorm-guangzhou-not-a-tourist-region",
        ),
        pytest.param(
            Hazard.COLD_WAVE,
            Level.BLUE,
            bj(2027, 2, 1, 8),
            ["410100"],
            None,
            {"travellers-chunyun-check-before", "elderly-gas-poisoning"},
            {"travellers-chunyun-stranded"},  # orange and above only
            id="chunyun-cold-wave-migrant-workers",
        ),
        pytest.param(
            Hazard.HEAT,
            Level.YELLOW,
            bj(2026, 8, 10, 14),
            ["440100"],
            None,
            {"outdoor-heat-midday", "elderly-heat-home"},
            {"outdoor-heat-red-stop"},
            id="august-heat-outdoor-workers",
        ),
        pytest.param(
            Hazard.FOG,
            Level.YELLOW,
            bj(2026, 10, 3, 7),
            ["320100"],
            "drivers-fog-golden-week",
            set(),
            set(),
            id="golden-week-fog-drivers",
        ),
        pytest.param(
            Hazard.EARTHQUAKE,
            Level.ORANGE,
            bj(2026, 11, 2, 3),
            ["532901"],
            "tourists-earthquake-slopes",
            set(),
            {"students-earthquake-drill"},
            id="earthquake-dali-county-tourists",
        ),
    ],
)
def test_tips_by_context(
    calendar: Calendar,
    hazard: Hazard,
    level: Level,
    when: datetime,
    codes: list[str],
    first: str | None,
    present: set[str],
    absent: set[str],
) -> None:
    got = ids(calendar, hazard, level, when, codes)
    if first is not None:
        assert got[0] == first
    assert present <= set(got)
    assert not absent & set(got)


def test_november_gives_no_summer_tip(calendar: Calendar) -> None:
    summerish = {"summer", "summer_vacation"}
    for tip_id in ids(calendar, Hazard.RAINSTORM, Level.RED, bj(2026, 11, 15), ["530700"]):
        assert not summerish & set(calendar.tips[tip_id].periods or ())


@pytest.mark.parametrize(
    ("when", "inside"),
    [
        (bj(2026, 12, 31, 23, 59), True),
        (bj(2027, 1, 2, 0, 1), True),
        (bj(2028, 2, 29, 12), True),  # leap day
        (bj(2027, 3, 1, 0, 0), False),
        (bj(2026, 11, 30, 23, 59), False),
        # 2026-11-30 16:30 UTC is already 1 December in Beijing
        (datetime(2026, 11, 30, 16, 30, tzinfo=UTC), True),
    ],
)
def test_winter_crosses_the_year_end(calendar: Calendar, when: datetime, inside: bool) -> None:
    assert ("winter" in active_periods(when, calendar)) is inside


def test_active_periods_dated_and_recurring(calendar: Calendar) -> None:
    assert active_periods(bj(2027, 2, 1), calendar) == [
        "spring_festival_travel",
        "winter",
        "winter_vacation",
    ]
    assert "spring_festival_travel" not in active_periods(bj(2027, 3, 3), calendar)
    assert "spring_festival_travel" in active_periods(bj(2028, 1, 11), calendar)
    assert active_periods(bj(2026, 10, 3), calendar) == ["national_day"]
    assert undated_periods(2028, calendar) == []
    assert "spring_festival_travel" in undated_periods(2029, calendar)


def test_naive_time_is_refused(calendar: Calendar) -> None:
    with pytest.raises(ValueError, match="naive"):
        active_periods(datetime(2026, 7, 1), calendar)


@pytest.mark.parametrize(
    ("level", "blue_tip", "red_tip"),
    [(Level.BLUE, True, False), (Level.ORANGE, True, False), (Level.RED, True, True)],
)
def test_min_level(calendar: Calendar, level: Level, blue_tip: bool, red_tip: bool) -> None:
    got = ids(calendar, Hazard.HEAT, level, bj(2026, 7, 20, 13), ["440100"])
    assert ("outdoor-heat-midday" in got) is blue_tip
    assert ("outdoor-heat-red-stop" in got) is red_tip


def test_languages(calendar: Calendar) -> None:
    def run(language: str) -> list[str]:
        return tips_for(
            hazard=Hazard.RAINSTORM,
            level=Level.BLUE,
            when=bj(2026, 7, 15),
            region_codes=["530700"],
            calendar=calendar,
            language=language,
        )

    zh, en = run("zh-CN"), run("en")
    assert zh[0] == calendar.tips["tourists-rainstorm-valleys"].zh
    assert en[0] == calendar.tips["tourists-rainstorm-valleys"].en
    assert run("zh-TW") == zh and run("en-GB") == en == run("fr")
    assert len(zh) == len(en) == 2
    assert all(CJK.search(t) for t in zh) and not any(CJK.search(t) for t in en)


SMALL = """
version: test-1
periods:
  summer: {zh: 夏季, en: summer, recurring: ["06-01..08-31"]}
  fest: {zh: 节日, en: festival, dated: ["2026-07-10..2026-07-12"]}
audiences:
  all: {zh: 公众, en: public}
region_groups:
  scenic:
    - {prefix: "530700", name: 丽江市}
tips:
  - {id: a-general-any-always, audience: all, periods: always, hazards: any, zh: 甲, en: A}
  - {id: b-general-heat-summer, audience: all, periods: [summer], hazards: [heat], zh: 乙, en: B}
  - {id: c-general-heat-fest, audience: all, periods: [fest], hazards: [heat], zh: 丙, en: C}
  - {id: d-region-any-summer, audience: all, periods: [summer], hazards: any,
     regions: [scenic], zh: 丁, en: D}
  - {id: e-region-heat-summer, audience: all, periods: [summer], hazards: [heat],
     regions: ["53"], zh: 戊, en: E}
  - {id: aa-region-heat-both, audience: all, periods: [summer, fest], hazards: [heat, fog],
     regions: [scenic], zh: 己, en: F}
  - {id: red-only, audience: all, periods: always, hazards: [heat], min_level: 红色,
     zh: 庚, en: G}
"""


@pytest.fixture()
def small(tmp_path: Path) -> Calendar:
    path = tmp_path / "publicity.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return load_calendar(path)


def test_order_most_specific_first(small: Calendar) -> None:
    in_fest = ids(small, Hazard.HEAT, Level.YELLOW, bj(2026, 7, 11), ["530721"])
    assert in_fest == [
        "aa-region-heat-both",  # region, hazard, dated
        "e-region-heat-summer",  # region, hazard, recurring
        "d-region-any-summer",  # region, any hazard
        "c-general-heat-fest",  # general, hazard, dated
        "b-general-heat-summer",  # general, hazard, recurring
        "a-general-any-always",  # general, any hazard, always
    ]
    # elsewhere in Yunnan only the province-wide prefix still matches
    assert ids(small, Hazard.HEAT, Level.YELLOW, bj(2026, 7, 20), ["530100"]) == [
        "e-region-heat-summer",
        "b-general-heat-summer",
        "a-general-any-always",
    ]
    assert ids(small, Hazard.HEAT, Level.RED, bj(2026, 11, 1), []) == [
        "red-only",
        "a-general-any-always",
    ]


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 10])
def test_limit_and_determinism(small: Calendar, limit: int) -> None:
    def run() -> list[str]:
        return tips_for(
            hazard=Hazard.HEAT,
            level=Level.RED,
            when=bj(2026, 7, 11),
            region_codes=["530700"],
            calendar=small,
            language="en",
            limit=limit,
        )

    full = ["F", "E", "D", "C", "B", "G", "A"]
    assert run() == full[:limit]
    assert run() == run()


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        pytest.param(
            "hazards: [heat]\n    regions: [tourist_regions]",
            "hazards: [heatwave]\n    regions: [tourist_regions]",
            ["tips.tourists-heat-sightseeing.hazards", "heatwave"],
            id="unknown-hazard",
        ),
        pytest.param(
            '"06-01..08-31"',
            '"06-01..02-30"',
            ["periods.summer.recurring.0", "02-30"],
            id="bad-month-day",
        ),
        pytest.param(
            '"2027-01-22..2027-03-02"',
            '"2027-01-22..2027-02-30"',
            ["periods.spring_festival_travel.dated.1", "2027-02-30"],
            id="bad-date",
        ),
        pytest.param(
            "periods: [summer, labour_day, dragon_boat]",
            "periods: [summer, holidays]",
            ["tips.tourists-rainstorm-valleys.periods", "unknown period 'holidays'"],
            id="unknown-period",
        ),
        pytest.param(
            "audience: drivers\n    periods: [spring_festival_travel]",
            "audience: motorists\n    periods: [spring_festival_travel]",
            ["tips.drivers-chunyun-snow.audience", "motorists"],
            id="unknown-audience",
        ),
        pytest.param(
            "    min_level: orange",
            "    min_level: purple",
            ["tips.travellers-chunyun-stranded.min_level", "purple"],
            id="bad-level",
        ),
        pytest.param(
            "regions: [tourist_regions]\n    zh: 在景区游玩",
            "regions: [scenic_spots]\n    zh: 在景区游玩",
            ["tips.tourists-rainstorm-valleys.regions", "scenic_spots"],
            id="unknown-region-group",
        ),
        pytest.param(
            "- id: students-thin-ice",
            "- id: students-drowning-summer",
            ["duplicate tip id 'students-drowning-summer'"],
            id="duplicate-id",
        ),
        pytest.param(
            "    hazards: [sandstorm]\n",
            "    hazards: [sandstorm]\n    colour: red\n",
            ["tips.drivers-sandstorm-visibility.colour"],
            id="unknown-field",
        ),
    ],
)
def test_bad_file_names_file_and_tip(tmp_path: Path, old: str, new: str, names: list[str]) -> None:
    text = packaged_calendar_path().read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    path = tmp_path / "bad-publicity.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RuleFileError) as info:
        load_calendar(path)
    message = str(info.value)
    assert str(path) in message
    for name in names:
        assert name in message
