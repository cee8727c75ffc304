"""An inline SVG map of every prefecture, coloured by its highest active warning level.

Self-contained (no scripts, fonts, styles or images from elsewhere: it works
offline and embeds in a page as is) and deterministic. Each prefecture is one
``<path class="region">`` carrying ``data-adcode``, ``data-name`` (the full
Chinese name) and ``data-level`` (0 none, 1 blue ... 4 red), with a
``<title>`` for hover; a page attaches click handlers by class.

Projection: Albers equal-area conic with standard parallels 25° N and 47° N
and central meridian 105° E (the usual projection of maps of China), north
up. The islands of the South China Sea south of 18° N are drawn at half
scale in an inset at the bottom right (南海诸岛), so the mainland keeps the
space. Boundaries are simplified to about a third of a pixel at the
requested width; the projected, simplified paths are computed once per
:class:`~alerts.regions.Regions` object and width.

The national code ``CN`` colours no prefecture: a national alert is shown
by the caller as a banner (:func:`levels_by_region` ignores it; see
``alerts.opsview.overview()["national"]``).
"""

from __future__ import annotations

import html
import math
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import shapely

from alerts.model import Level
from alerts.regions import Regions, load_regions

__all__ = [
    "LEVEL_FILL",
    "NATIONAL",
    "NO_LEVEL_FILL",
    "STROKE",
    "level_label",
    "levels_by_region",
    "map_svg",
    "prefectures_of",
]

NATIONAL = "CN"

# Fills (kept in one place so a page's own legend can reuse them). The four
# signal colours are the official hues, darkened or deepened where needed so
# that each is distinct from its neighbours and from the grey of "none" for
# the common forms of colour blindness; the <title> and legend carry the text.
NO_LEVEL_FILL = "#e4e4e4"
LEVEL_FILL: dict[int, str] = {
    0: NO_LEVEL_FILL,
    int(Level.BLUE): "#1e6fd9",
    int(Level.YELLOW): "#f2c200",
    int(Level.ORANGE): "#f28c00",
    int(Level.RED): "#d62828",
}
STROKE = "#707070"  # thin borders, visible on the grey and on every level colour
# Chinese-capable system fonts first; nothing is downloaded
_FONTS = "PingFang SC, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif"

_EN = {1: "Blue", 2: "Yellow", 3: "Orange", 4: "Red"}

UNITS = 10  # viewBox units per output pixel: coordinates are integers in 0.1 px
TOLERANCE_PX = 0.35  # Douglas-Peucker tolerance, in output pixels
MIN_PART_PX2 = 0.25  # smaller islands are dropped (a region's largest part always stays)
MARGIN_PX = 8.0
SOUTH_SEA_LAT = 18.0  # parts wholly south of this (and east of 105° E) go to the inset
INSET_SCALE = 0.5

# Albers equal-area conic for China
_PHI1, _PHI2, _LON0 = math.radians(25.0), math.radians(47.0), math.radians(105.0)
_N = (math.sin(_PHI1) + math.sin(_PHI2)) / 2
_C = math.cos(_PHI1) ** 2 + 2 * _N * math.sin(_PHI1)
_RHO0 = math.sqrt(_C) / _N


class _Covering(Protocol):
    """What :func:`levels_by_region` reads of an active alert (``ActiveAlert``, ``Alert``)."""

    @property
    def region_code(self) -> str: ...

    @property
    def level(self) -> int: ...


@dataclass(frozen=True)
class _Shape:
    adcode: str
    name: str  # full Chinese name
    d: str  # SVG path data


@dataclass(frozen=True)
class _Layout:
    width: int  # px
    height: int  # px
    shapes: tuple[_Shape, ...]
    inset: tuple[int, int, int, int] | None  # frame x, y, w, h in viewBox units


@dataclass(frozen=True)
class _Index:
    codes: frozenset[str]
    by_province: dict[str, tuple[str, ...]]  # province code -> its prefectures, table order
    full_names: dict[str, str]


_LAYOUTS: weakref.WeakKeyDictionary[Regions, dict[int, _Layout]] = weakref.WeakKeyDictionary()
_INDEXES: weakref.WeakKeyDictionary[Regions, _Index] = weakref.WeakKeyDictionary()


# -- which prefectures an alert's region code covers ------------------------------------


def _index(regions: Regions) -> _Index:
    found = _INDEXES.get(regions)
    if found is None:
        frame = regions.frame
        codes = [str(c) for c in frame["adcode"]]
        names = [str(n) for n in frame["name"]]
        provinces = [str(p) for p in frame["province"]]
        if "province_code" in frame.columns:
            province_codes = [str(p) for p in frame["province_code"]]
        else:
            province_codes = [c[:2] + "0000" for c in codes]
        by_province: dict[str, list[str]] = {}
        for code, province in zip(codes, province_codes, strict=True):
            by_province.setdefault(province, []).append(code)
        found = _Index(
            codes=frozenset(codes),
            by_province={p: tuple(c) for p, c in by_province.items()},
            full_names={
                c: n if n == p else f"{p}{n}"
                for c, n, p in zip(codes, names, provinces, strict=True)
            },
        )
        _INDEXES[regions] = found
    return found


def prefectures_of(code: str, regions: Regions | None = None) -> tuple[str, ...]:
    """The prefecture adcodes of the table that an alert's region code covers.

    A prefecture's own code covers itself; a province's (``510000``) every
    prefecture of the province; a county's (``510104``, or a 12-digit
    township code) the prefecture it lies in (for a municipality's counties,
    the municipality). The national code ``CN`` and codes outside the table
    (an official warning's free-text area) cover nothing.
    """
    index = _index(regions if regions is not None else load_regions())
    code = str(code).strip()
    if len(code) == 12 and code.isdigit():
        code = code[:6]
    if len(code) != 6 or not code.isdigit():
        return ()
    if code in index.codes:
        return (code,)
    if code.endswith("0000"):
        return index.by_province.get(code, ())
    prefecture = code[:4] + "00"
    if prefecture in index.codes:
        return (prefecture,)
    in_province = index.by_province.get(code[:2] + "0000", ())
    if len(in_province) == 1:  # a municipality's county under a second prefix (5002xx)
        return in_province
    return ()


def levels_by_region(
    active_alerts: Iterable[_Covering], *, regions: Regions | None = None
) -> dict[str, int]:
    """The highest active level per prefecture adcode (prefectures without one are absent).

    ``active_alerts``: the store's active alerts (anything with ``region_code``
    and ``level``). A province code colours every prefecture of the province.
    The national code ``CN`` colours nothing: the caller shows a national alert
    as a banner (``overview()["national"]``).
    """
    table = regions if regions is not None else load_regions()
    out: dict[str, int] = {}
    for alert in active_alerts:
        level = int(alert.level)
        for code in prefectures_of(alert.region_code, table):
            if level > out.get(code, 0):
                out[code] = level
    return dict(sorted(out.items()))


# -- geometry -----------------------------------------------------------------------------


def _albers(coords: np.ndarray) -> np.ndarray:
    lam = np.radians(coords[:, 0]) - _LON0
    lam = (lam + math.pi) % (2 * math.pi) - math.pi
    rho = np.sqrt(_C - 2 * _N * np.sin(np.radians(coords[:, 1]))) / _N
    theta = _N * lam
    # y grows downwards in SVG: north up
    return np.column_stack([rho * np.sin(theta), rho * np.cos(theta) - _RHO0])


def _scaled(geoms: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    return shapely.transform(geoms, lambda c: c * scale + np.array([dx, dy]))


def _layout(regions: Regions, width: int) -> _Layout:
    per_width = _LAYOUTS.setdefault(regions, {})
    if width in per_width:
        return per_width[width]
    index = _index(regions)
    codes = [str(c) for c in regions.frame["adcode"]]
    parts = shapely.get_parts(regions.geoms, return_index=True)
    part_geoms, owner = parts[0], parts[1]
    bounds = shapely.bounds(part_geoms)  # lon/lat
    south = (bounds[:, 3] < SOUTH_SEA_LAT) & (bounds[:, 0] > 105.0)
    projected = shapely.transform(part_geoms, _albers)

    units = float(width * UNITS)
    margin = MARGIN_PX * UNITS
    main = projected[~south]
    minx, miny, maxx, maxy = shapely.total_bounds(main)
    scale = (units - 2 * margin) / (maxx - minx)
    height_units = math.ceil((maxy - miny) * scale + 2 * margin)
    placed = np.empty_like(projected)
    placed[~south] = _scaled(main, scale, margin - minx * scale, margin - miny * scale)

    inset: tuple[int, int, int, int] | None = None
    if south.any():
        small = projected[south]
        sminx, sminy, smaxx, smaxy = shapely.total_bounds(small)
        k = scale * INSET_SCALE
        pad = 6 * UNITS
        w = (smaxx - sminx) * k + 2 * pad
        h = (smaxy - sminy) * k + 2 * pad
        x0, y0 = units - margin - w, height_units - margin - h
        placed[south] = _scaled(small, k, x0 + pad - sminx * k, y0 + pad - sminy * k)
        inset = (round(x0), round(y0), round(w), round(h))

    simplified = shapely.simplify(placed, TOLERANCE_PX * UNITS, preserve_topology=True)
    areas = shapely.area(simplified)
    by_region: dict[int, list[int]] = {}
    for i, region in enumerate(owner.tolist()):
        by_region.setdefault(region, []).append(i)
    min_area = MIN_PART_PX2 * UNITS * UNITS
    shapes = []
    for region, code in enumerate(codes):
        members = by_region.get(region, [])
        largest = max(members, key=lambda i: areas[i], default=None)
        d = "".join(
            _polygon_path(simplified[i]) for i in members if i == largest or areas[i] >= min_area
        )
        shapes.append(_Shape(code, index.full_names[code], d))
    layout = _Layout(width, math.ceil(height_units / UNITS), tuple(shapes), inset)
    per_width[width] = layout
    return layout


def _polygon_path(polygon: shapely.Polygon) -> str:
    if polygon.is_empty:
        return ""
    return "".join(
        _ring_path(np.asarray(ring.coords)) for ring in (polygon.exterior, *polygon.interiors)
    )


def _ring_path(coords: np.ndarray) -> str:
    """``M x y l dx dy ... z`` in integer units, the separators a minus sign makes dropped."""
    points = np.rint(coords[:-1]).astype(np.int64)
    if len(points) == 0:
        return ""
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = np.any(points[1:] != points[:-1], axis=1)
    points = points[keep]
    if len(points) < 3:  # collapsed below the grid: a dot still marks the island
        x, y = points[0].tolist()
        return f"M{x} {y}h{UNITS // 2}v{UNITS // 2}h-{UNITS // 2}z"
    x, y = points[0].tolist()
    out = [f"M{x} {y}l"]
    first = True
    for v in np.diff(points, axis=0).ravel().tolist():
        out.append(str(v) if first or v < 0 else f" {v}")
        first = False
    out.append("z")
    return "".join(out)


# -- the SVG --------------------------------------------------------------------------


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def level_label(level: int) -> str:
    """``红色预警 Red (I)``; ``无预警 None`` for 0."""
    if level <= 0:
        return "无预警 None"
    lv = Level(level)
    return f"{lv.zh}预警 {_EN[level]} ({lv.roman})"


def map_svg(levels: Mapping[str, int], *, regions: Regions | None = None, width: int = 960) -> str:
    """An inline SVG of every prefecture of ``regions`` filled by ``levels[adcode]`` (0-4).

    ``levels`` is :func:`levels_by_region`'s output; codes not in the table are
    ignored, levels are clamped to 0-4. ``width`` in pixels; the height follows.
    """
    if width < 200:
        raise ValueError(f"map width {width} px: at least 200")
    table = regions if regions is not None else load_regions()
    layout = _layout(table, int(width))
    u = UNITS
    vw, vh = layout.width * u, layout.height * u
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="alert-map" '
        f'viewBox="0 0 {vw} {vh}" width="{layout.width}" height="{layout.height}" '
        f'role="img" aria-label="{_esc("预警地图 Warning map")}">',
        f"<title>{_esc('各地市预警等级 Warning level by prefecture')}</title>",
    ]
    if layout.inset is not None:
        x, y, w, h = layout.inset
        out.append(
            f'<g class="inset"><rect x="{x}" y="{y}" width="{w}" height="{h}" fill="none" '
            f'stroke="{STROKE}" stroke-width="{u}"/>'
            f'<text x="{x + 4 * u}" y="{y + 14 * u}" font-family="{_FONTS}" '
            f'font-size="{11 * u}" fill="#444">{_esc("南海诸岛")}</text></g>'
        )
    out.append(
        f'<g class="regions" stroke="{STROKE}" stroke-width="{round(0.35 * u, 2):g}" '
        f'stroke-linejoin="round" fill-rule="evenodd">'
    )
    for shape in layout.shapes:
        raw = levels.get(shape.adcode, 0)
        level = min(max(int(raw), 0), 4)
        out.append(
            f'<path class="region" data-adcode="{_esc(shape.adcode)}" '
            f'data-name="{_esc(shape.name)}" data-level="{level}" fill="{LEVEL_FILL[level]}" '
            f'd="{shape.d}"><title>{_esc(f"{shape.name}：{level_label(level)}")}</title></path>'
        )
    out.append("</g>")
    out.append(_legend(layout))
    out.append("</svg>")
    return "\n".join(out)


def _legend(layout: _Layout) -> str:
    u = UNITS
    rows = [(lv, level_label(lv)) for lv in (1, 2, 3, 4)] + [(0, level_label(0))]
    line = 20 * u
    x0, y0 = MARGIN_PX * u, layout.height * u - MARGIN_PX * u - (len(rows) + 1) * line - 8 * u
    parts = [
        f'<g class="legend" font-family="{_FONTS}" font-size="{13 * u}" fill="#222">',
        f'<rect x="{x0:g}" y="{y0:g}" width="{170 * u}" height="{(len(rows) + 1) * line + 8 * u}" '
        f'fill="#ffffff" fill-opacity="0.85" stroke="#bbbbbb" stroke-width="{u}"/>',
        f'<text x="{x0 + 8 * u:g}" y="{y0 + 18 * u:g}" font-weight="bold">'
        f"{_esc('预警等级 Warning level')}</text>",
    ]
    for i, (level, label) in enumerate(rows):
        y = y0 + (i + 1) * line + 6 * u
        parts.append(
            f'<g class="legend-item" data-level="{level}">'
            f'<rect x="{x0 + 8 * u:g}" y="{y:g}" width="{18 * u}" height="{12 * u}" '
            f'fill="{LEVEL_FILL[level]}" stroke="{STROKE}" stroke-width="{u}"/>'
            f'<text x="{x0 + 32 * u:g}" y="{y + 11 * u:g}">{_esc(label)}</text></g>'
        )
    parts.append("</g>")
    return "".join(parts)
