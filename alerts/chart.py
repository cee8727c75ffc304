"""The 72-hour outlook chart: small multiples, one panel per charted prefecture, as a PNG.

Each panel shows hourly precipitation (bars, mm/h, left axis), temperature
(line, °C, right axis) and, when the series has them, wind gusts (dashed line,
m/s, right axis), over the outlook window in local time with a tick per day
("7/21"); a light band in the level's colour marks the peak of each risk
(grey for a near-threshold one).

The image carries no Chinese text, so it renders the same on a machine
without CJK fonts (matplotlib's bundled DejaVu Sans has every glyph used):
panel titles name the adcode and the risks in ASCII, and the bulletin's HTML
caption around the image gives the Chinese names.

Drawing uses :class:`matplotlib.figure.Figure` with the Agg canvas directly,
never ``pyplot`` or ``rcParams``: no global state is touched, so concurrent
users of matplotlib in the same process are unaffected. Output is
deterministic for the same input (fixed size and DPI, no timestamp or
software name in the PNG metadata).
"""

from __future__ import annotations

import functools
import io
import json
import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from alerts.model import Level

__all__ = ["CHART_LIMIT", "chart_prefectures", "outlook_chart"]

CHART_LIMIT = 6  # panels at most
DPI = 100
PALETTE_COLOURS = 64
PANEL_HEIGHT_IN = 1.3
HEADER_IN = 0.42  # the legend above the panels
FOOTER_IN = 0.32  # the day labels below the last panel

LEVEL_COLOURS = {
    Level.BLUE: "#1e6fd9",
    Level.YELLOW: "#e6b800",
    Level.ORANGE: "#ff8a00",
    Level.RED: "#d81e06",
}
NEAR_COLOUR = "#9a9a9a"
RAIN_COLOUR = "#3b82c4"
TEMP_COLOUR = "#c0392b"
GUST_COLOUR = "#4d4d4d"
FONT = "DejaVu Sans"  # bundled with matplotlib: present on every machine

# ASCII units of the risk variables for the panel titles.
_UNITS = {
    "rain_mm": "mm",
    "precipitation_mm": "mm",
    "snowfall_water_mm": "mm",
    "wind_speed_ms": "m/s",
    "wind_gust_ms": "m/s",
    "visibility_m": "m",
    "temperature_c": "C",
    "temperature_drop_c": "C",
    "relative_humidity_pct": "%",
    "pm25_ugm3": "ug/m3",
}


def chart_prefectures(prefectures: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The prefectures the chart shows: those with a ``series``, in order, at most six."""
    return [p for p in prefectures if p.get("series")][:CHART_LIMIT]


def outlook_chart(
    prefectures: list[dict[str, Any]],
    *,
    timezone: str = "Asia/Shanghai",
    width_px: int = 640,
) -> bytes:
    """The PNG of the outlook chart for the prefectures of an outlook (contract shape).

    Only prefectures with a ``series`` are drawn (at most :data:`CHART_LIMIT`);
    None / NaN values are gaps (no bar, a break in the line), never zeros.
    Raises ValueError when no prefecture has a series.
    """
    shown = chart_prefectures(prefectures)
    if not shown:
        raise ValueError("no prefecture of the outlook has an hourly series to chart")
    if width_px < 200:
        raise ValueError(f"chart width {width_px} px is too small (at least 200)")
    ZoneInfo(timezone)  # an unknown zone fails here, with its name
    # Cached on the canonical JSON of what is drawn: every family and language of one
    # bulletin (and every channel of one fan-out) shares the same chart.
    key = json.dumps(
        [
            {"code": p.get("code"), "risks": p.get("risks") or [], "series": p["series"]}
            for p in shown
        ],
        sort_keys=True,
        ensure_ascii=True,
        default=str,
    )
    return _draw(key, timezone, width_px)


@functools.lru_cache(maxsize=8)
def _draw(key: str, timezone: str, width_px: int) -> bytes:
    panels: list[dict[str, Any]] = json.loads(key)
    tz = ZoneInfo(timezone)
    times = [_utc(t) for p in panels for t in p["series"].get("time") or []]
    if not times:
        raise ValueError("the charted series have no times")
    first, last = min(times), max(times)
    origin, x_start, x_end = _axis(first, last, tz)

    height_in = HEADER_IN + FOOTER_IN + PANEL_HEIGHT_IN * len(panels)
    fig = Figure(figsize=(width_px / DPI, height_in), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    top = 1 - HEADER_IN / height_in
    bottom = FOOTER_IN / height_in
    fig.subplots_adjust(left=0.075, right=0.925, top=top, bottom=bottom, hspace=0.42)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    handles: dict[str, Any] = {}
    for ax, panel in zip(axes, panels, strict=True):
        _panel(ax, panel, origin, handles)
        ax.set_xlim(x_start, x_end)
    _day_ticks(axes[-1], _day_tick_labels(first, last, timezone), x_start, x_end)
    for ax in axes[:-1]:
        ax.tick_params(axis="x", labelbottom=False)
    order = [k for k in ("precip mm/h", "temp C", "gust m/s") if k in handles]
    fig.legend(
        [handles[k] for k in order],
        order,
        loc="upper center",
        ncol=len(order),
        frameon=False,
        prop={"family": FONT, "size": 8},
        bbox_to_anchor=(0.5, 1.0),
    )
    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return _palette_png(raw.getvalue())


def _palette_png(png: bytes) -> bytes:
    """The PNG re-encoded with a 64-colour palette: a third of the size, same look."""
    with Image.open(io.BytesIO(png)) as img:
        small = img.convert("RGB").quantize(
            colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)  # no text chunks: no time, no software
    return out.getvalue()


def _panel(ax: Any, panel: dict[str, Any], origin: datetime, handles: dict[str, Any]) -> None:
    series = panel["series"]
    xs = [_hours(_utc(t), origin) - 0.5 for t in series.get("time") or []]
    rain = _values(series.get("precipitation_mm"), len(xs))
    temp = _values(series.get("temperature_c"), len(xs))
    gust = _values(series.get("wind_gust_ms"), len(xs))

    for risk in panel.get("risks") or []:
        _peak_band(ax, risk, origin)

    bars = [(x, v) for x, v in zip(xs, rain, strict=True) if not math.isnan(v)]
    ax.bar(
        [x for x, _ in bars],
        [v for _, v in bars],
        width=0.9,
        color=RAIN_COLOUR,
        linewidth=0,
        zorder=2,
    )
    top = max([v for _, v in bars] + [0.0])
    ax.set_ylim(0, max(2.0, top * 1.15))
    handles["precip mm/h"] = ax.containers[0] if ax.containers else _proxy(ax, RAIN_COLOUR)
    ax.set_ylabel("mm/h", fontsize=7, fontfamily=FONT, color=RAIN_COLOUR, labelpad=2)

    right = ax.twinx()
    shown_right = [v for v in temp + gust if not math.isnan(v)]
    if any(not math.isnan(v) for v in temp):
        (line,) = right.plot(xs, temp, color=TEMP_COLOUR, linewidth=1.2, zorder=3)
        handles["temp C"] = line
    if any(not math.isnan(v) for v in gust):
        (line,) = right.plot(
            xs, gust, color=GUST_COLOUR, linewidth=0.9, linestyle=(0, (3, 2)), zorder=3
        )
        handles["gust m/s"] = line
    if shown_right:
        lo, hi = min(shown_right), max(shown_right)
        pad = max(1.0, (hi - lo) * 0.12)
        right.set_ylim(lo - pad, hi + pad)
    right.set_ylabel("C | m/s", fontsize=7, fontfamily=FONT, labelpad=2)

    for a in (ax, right):
        a.tick_params(labelsize=7, length=2, pad=1)
        for label in a.get_yticklabels():
            label.set_fontfamily(FONT)
        for side in ("top",):
            a.spines[side].set_visible(False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.set_title(_title(panel), fontsize=8, fontfamily=FONT, loc="left", pad=3)


def _peak_band(ax: Any, risk: dict[str, Any], origin: datetime) -> None:
    """A light band over the hours leading to a risk's peak (its window, at most a day)."""
    peak = risk.get("peak_at")
    if not peak:
        return
    end = _hours(_utc(peak), origin)
    window = risk.get("window_h")
    span = float(window) if isinstance(window, int | float) and 0 < window <= 24 else 1.0
    level = risk.get("level")
    colour = LEVEL_COLOURS[Level(level)] if level else NEAR_COLOUR
    ax.axvspan(end - span, end, color=colour, alpha=0.18, linewidth=0, zorder=1)


def _title(panel: dict[str, Any]) -> str:
    """'510100  rainstorm YELLOW 61.3 mm; heat near 33.1 C' (ASCII only)."""
    parts = []
    for risk in (panel.get("risks") or [])[:3]:
        hazard = str(risk.get("hazard", "")).replace("_", " ")
        level = risk.get("level")
        grade = Level(level).colour.upper() if level else "near"
        value = risk.get("value")
        unit = _UNITS.get(str(risk.get("variable")), "")
        shown = f" {value:.1f} {unit}".rstrip() if isinstance(value, int | float) else ""
        parts.append(f"{hazard} {grade}{shown}")
    more = len(panel.get("risks") or []) - 3
    if more > 0:
        parts.append(f"+{more}")
    title = f"{_ascii(panel.get('code'))}  " + ("; ".join(parts) if parts else "no risk")
    return _ascii(title)


def _axis(first: datetime, last: datetime, tz: ZoneInfo) -> tuple[datetime, float, float]:
    """x is hours since the local midnight before the first hour's start: (origin, start, end)."""
    start_local = (first - timedelta(hours=1)).astimezone(tz)
    origin = start_local.replace(hour=0, minute=0, second=0, microsecond=0)
    return origin, _hours(first, origin) - 1.0, _hours(last, origin)


def _day_tick_labels(first: datetime, last: datetime, timezone: str) -> list[tuple[float, str]]:
    """(x, "7/21") at each local midnight within the hours ending ``first`` .. ``last``."""
    origin, x_start, x_end = _axis(first, last, ZoneInfo(timezone))
    ticks = []
    day = 0
    while day * 24 <= x_end:
        if day * 24 >= x_start:
            when = origin + timedelta(days=day)
            ticks.append((day * 24.0, f"{when.month}/{when.day}"))
        day += 1
    return ticks


def _day_ticks(ax: Any, ticks: list[tuple[float, str]], x_start: float, x_end: float) -> None:
    """Major ticks at local midnights labelled "7/21", minor ticks every 6 hours."""
    ax.set_xticks([x for x, _ in ticks])
    ax.set_xticklabels([label for _, label in ticks], fontsize=7, fontfamily=FONT)
    minor = [h for h in range(math.floor(x_start), math.ceil(x_end) + 1) if h % 6 == 0]
    ax.set_xticks(minor, minor=True)
    ax.tick_params(axis="x", which="minor", length=1.5)


def _proxy(ax: Any, colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((0, 0), 1, 1, color=colour)


def _values(raw: Any, n: int) -> list[float]:
    """Floats with NaN for None, NaN or anything not a number; padded to ``n``."""
    out = []
    for v in list(raw or [])[:n]:
        try:
            f = float(v) if v is not None and not isinstance(v, bool) else math.nan
        except (TypeError, ValueError):
            f = math.nan
        out.append(f if math.isfinite(f) else math.nan)
    return out + [math.nan] * (n - len(out))


def _utc(value: str | datetime) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        raise ValueError(f"series time {value!r} has no time zone")
    return when


def _hours(when: datetime, origin: datetime) -> float:
    return (when - origin).total_seconds() / 3600.0


def _ascii(text: Any) -> str:
    return str(text).encode("ascii", "replace").decode("ascii")
