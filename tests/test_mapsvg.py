"""The warning map: every prefecture drawn, coloured by level, small, escaped, cached."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import pytest
import shapely
from defusedxml import ElementTree

from alerts import mapsvg
from alerts.mapsvg import LEVEL_FILL, levels_by_region, map_svg, prefectures_of
from alerts.regions import Regions, load_regions, packaged_regions_path

SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class A:
    region_code: str
    level: int


@pytest.fixture(scope="module")
def regions() -> Regions:
    return load_regions()


def _paths(svg: str) -> dict[str, ElementTree.Element]:
    root = ElementTree.fromstring(svg)
    return {p.get("data-adcode"): p for p in root.iter(f"{SVG}path") if p.get("class") == "region"}


def test_every_prefecture_is_one_titled_path_and_the_map_stays_small(regions: Regions) -> None:
    mapsvg._LAYOUTS.pop(regions, None)
    start = time.perf_counter()
    svg = map_svg({}, regions=regions)
    first = time.perf_counter() - start
    start = time.perf_counter()
    again = map_svg({"510100": 4}, regions=regions)
    cached = time.perf_counter() - start
    size = len(svg.encode("utf-8"))
    print(
        f"\nmap of {len(regions)} prefectures: {size / 1024:.0f} KiB; "
        f"first render {first * 1000:.0f} ms, cached {cached * 1000:.1f} ms"
    )
    assert size < 400_000
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("viewBox") and root.get("width") == "960"
    paths = _paths(svg)
    assert set(paths) == {str(c) for c in regions.frame["adcode"]}
    for path in paths.values():
        assert path.get("d", "").startswith("M") and path.get("data-level") == "0"
        assert path.get("fill") == LEVEL_FILL[0]
        (title,) = path.findall(f"{SVG}title")
        assert title.text == f"{path.get('data-name')}：无预警 None"
    assert paths["510100"].get("data-name") == "四川省成都市"
    assert paths["110100"].get("data-name") == "北京市"  # a municipality is not repeated
    assert "href" not in svg and "<script" not in svg and "url(" not in svg  # nothing external
    assert again != svg and cached < first


def test_fill_and_level_follow_the_highest_level_per_prefecture(regions: Regions) -> None:
    levels = {"510100": 4, "440300": 1, "460300": 2, "999999": 3, "110100": 9}
    paths = _paths(map_svg(levels, regions=regions))
    assert (paths["510100"].get("data-level"), paths["510100"].get("fill")) == ("4", "#d62828")
    assert (paths["440300"].get("data-level"), paths["440300"].get("fill")) == ("1", "#1e6fd9")
    assert paths["460300"].get("fill") == "#f2c200"  # Sansha, drawn in the inset
    assert paths["110100"].get("data-level") == "4"  # clamped
    (title,) = paths["510100"].findall(f"{SVG}title")
    assert title.text == "四川省成都市：红色预警 Red (I)"
    assert sum(p.get("data-level") != "0" for p in paths.values()) == 4


def test_the_legend_lists_the_four_levels_and_none(regions: Regions) -> None:
    root = ElementTree.fromstring(map_svg({}, regions=regions))
    (legend,) = [g for g in root.iter(f"{SVG}g") if g.get("class") == "legend"]
    items = [g for g in legend.iter(f"{SVG}g") if g.get("class") == "legend-item"]
    labels = [(g.get("data-level"), g.find(f"{SVG}text").text) for g in items]  # type: ignore[union-attr]
    assert labels == [
        ("1", "蓝色预警 Blue (IV)"),
        ("2", "黄色预警 Yellow (III)"),
        ("3", "橙色预警 Orange (II)"),
        ("4", "红色预警 Red (I)"),
        ("0", "无预警 None"),
    ]
    fills = [g.find(f"{SVG}rect").get("fill") for g in items]  # type: ignore[union-attr]
    assert fills == [LEVEL_FILL[n] for n in (1, 2, 3, 4, 0)]
    assert [g for g in root.iter(f"{SVG}g") if g.get("class") == "inset"]  # 南海诸岛


def test_output_is_deterministic_and_the_geometry_cached_per_table(regions: Regions) -> None:
    levels = {"510100": 3}
    one = map_svg(levels, regions=regions)
    layout = mapsvg._LAYOUTS[regions][960]
    assert map_svg(levels, regions=regions) == one
    assert mapsvg._LAYOUTS[regions][960] is layout
    fresh = Regions.from_csv(packaged_regions_path())  # another object: computed again, same
    assert map_svg(levels, regions=fresh) == one
    assert mapsvg._LAYOUTS[fresh][960] is not layout
    small = map_svg(levels, regions=regions, width=480)
    assert ElementTree.fromstring(small).get("width") == "480" and len(small) < len(one)
    with pytest.raises(ValueError, match="width"):
        map_svg(levels, regions=regions, width=50)


def _tiny(names: list[str]) -> Regions:
    frame = pd.DataFrame(
        {
            "adcode": ["510100", "510700", "460300"],
            "name": names,
            "province": ["四川省", "四川省", "海南省"],
            "province_code": ["510000", "510000", "460000"],
            "population_2020": [1, 2, 3],
        }
    )
    geoms = shapely.from_wkt(
        [
            "POLYGON ((103 30, 104 30, 104 31, 103 31, 103 30))",
            "MULTIPOLYGON (((104 31, 105 31, 105 32, 104 32, 104 31)), "
            "((105.5 31.5, 105.50001 31.5, 105.5 31.50001, 105.5 31.5)))",
            "POLYGON ((112 16, 112.5 16, 112.5 16.5, 112 16.5, 112 16))",
        ]
    )
    return Regions(frame, geoms)


def test_text_is_escaped() -> None:
    hostile = '成都<script>alert("x")</script>&\'"'
    table = _tiny([hostile, "绵阳市", "三沙市"])
    svg = map_svg({"510100": 2}, regions=table)
    assert "<script>" not in svg
    paths = _paths(svg)  # parses: well-formed
    assert paths["510100"].get("data-name") == f"四川省{hostile}"
    assert (
        paths["510100"].findall(f"{SVG}title")[0].text == f"四川省{hostile}：黄色预警 Yellow (III)"
    )
    # a sub-pixel island of the largest region is dropped, the region stays one path
    assert paths["510700"].get("d", "").count("M") == 1
    assert paths["460300"].get("d")  # drawn in the inset


def test_levels_by_region_resolves_prefecture_province_and_county_codes(
    regions: Regions,
) -> None:
    sichuan = set(prefectures_of("510000", regions))
    assert len(sichuan) == 21 and "510100" in sichuan
    levels = levels_by_region(
        [
            A("510000", 1),  # the province: every prefecture blue
            A("510100", 4),  # Chengdu red wins over the province's blue
            A("510704", 3),  # a county of Mianyang: Mianyang orange
            A("440305000000", 2),  # a 12-digit township code in Shenzhen
            A("500229", 2),  # a Chongqing county under 5002xx: the municipality
            A("810000", 3),  # Hong Kong is its own prefecture-level unit
            A("CN", 4),  # national: shown as a banner, colours nothing
            A("台风影响区域", 4),  # an official warning's free-text area
        ],
        regions=regions,
    )
    assert levels["510100"] == 4 and levels["510700"] == 3 and levels["511300"] == 1
    assert levels["440300"] == 2 and levels["500100"] == 2 and levels["810000"] == 3
    assert set(levels) == sichuan | {"440300", "500100", "810000"}
    assert "CN" not in levels and list(levels) == sorted(levels)
    assert levels_by_region([], regions=regions) == {}
