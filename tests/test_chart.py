"""The 72-hour outlook chart (alerts.chart): size, determinism, gaps, panels, no global state."""

from __future__ import annotations

import io
import math
import struct
import subprocess
import sys
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import matplotlib
import pytest
from PIL import Image

from alerts import chart
from alerts.chart import CHART_LIMIT, chart_prefectures, outlook_chart
from tests.conftest import ROOT

START = datetime(2026, 7, 19, 16, tzinfo=UTC)  # local midnight of 2026-07-20 in Beijing


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _series(seed: int, hours: int = 72) -> dict[str, list[Any]]:
    return {
        "time": [_iso(START + timedelta(hours=h + 1)) for h in range(hours)],
        "precipitation_mm": [
            round(max(0.0, 9 * math.sin((h + seed * 7) / 9.0)), 1) for h in range(hours)
        ],
        "temperature_c": [
            round(26 + 6 * math.sin((h - 8 + seed) / 24 * 2 * math.pi), 1) for h in range(hours)
        ],
        "wind_gust_ms": [round(6 + 4 * math.sin(h / 5 + seed), 1) for h in range(hours)],
    }


RAIN = {
    "hazard": "rainstorm",
    "level": 2,
    "near": False,
    "peak_at": "2026-07-21T09:00:00Z",
    "value": 61.3,
    "threshold": 50.0,
    "variable": "rain_mm",
    "ratio": 1.23,
    "window_h": 12.0,
    "rule_id": "rainstorm.yellow",
}
HEAT_NEAR = {
    "hazard": "heat",
    "level": None,
    "near": True,
    "peak_at": "2026-07-22T07:00:00Z",
    "value": 33.1,
    "threshold": 35.0,
    "variable": "temperature_c",
    "ratio": 0.95,
    "window_h": 72.0,
    "rule_id": "heat.yellow~near",
}


def _pref(i: int, *, series: Any = "auto", risks: list[dict[str, Any]] | None = None) -> dict:
    return {
        "code": f"51{i:02d}00",
        "name": f"市{i}",
        "province": "510000",
        "province_name": "四川省",
        "level": 2 if risks and risks[0].get("level") else 0,
        "risks": risks if risks is not None else [RAIN, HEAT_NEAR],
        "series": _series(i) if series == "auto" else series,
    }


def _size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        data = png[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(
            kind + data
        )
        out.append((kind, data))
        pos += 12 + length
    return out


def _expected_height(panels: int) -> int:
    inches = chart.HEADER_IN + chart.FOOTER_IN + chart.PANEL_HEIGHT_IN * panels
    return round(inches * chart.DPI)


def test_six_panels_make_a_small_png_of_the_expected_size() -> None:
    png = outlook_chart([_pref(i) for i in range(1, 7)])
    assert _size(png) == (640, _expected_height(6))
    assert len(png) < 60 * 1024
    with Image.open(io.BytesIO(png)) as img:
        img.load()
        assert img.size == (640, _expected_height(6))
        # not a blank canvas: the bars, lines and bands are drawn in several colours
        assert len(img.convert("RGB").getcolors(4096) or []) > 8


def test_the_width_follows_width_px() -> None:
    png = outlook_chart([_pref(1)], width_px=480)
    assert _size(png)[0] == 480


def test_the_same_input_gives_the_same_bytes_and_no_timestamp() -> None:
    prefectures = [_pref(i) for i in range(1, 4)]
    first = outlook_chart(prefectures)
    chart._draw.cache_clear()  # draw again, not from the cache
    second = outlook_chart([dict(p) for p in prefectures])
    assert first == second
    kinds = {kind for kind, _ in _chunks(first)}
    assert b"tIME" not in kinds
    texts = b"".join(data for kind, data in _chunks(first) if kind in (b"tEXt", b"iTXt", b"zTXt"))
    assert b"Software" not in texts and b"matplotlib" not in texts.lower()


def test_missing_values_are_gaps_not_zeros() -> None:
    with_gap = _series(1)
    with_gap["temperature_c"][30] = None
    with_nan = _series(1)
    with_nan["temperature_c"][30] = float("nan")
    with_zero = _series(1)
    with_zero["temperature_c"][30] = 0.0
    gap = outlook_chart([_pref(1, series=with_gap)])
    assert gap == outlook_chart([_pref(1, series=with_nan)])  # None and NaN: the same gap
    assert gap != outlook_chart([_pref(1, series=with_zero)])  # a zero is drawn, a gap is not
    assert chart._values([None, "x", float("nan"), float("inf"), True, 1, 2.5], 8) == [
        pytest.approx(v, nan_ok=True)
        for v in [math.nan, math.nan, math.nan, math.nan, math.nan, 1.0, 2.5, math.nan]
    ]


def test_a_series_without_gusts_or_with_gaps_everywhere_still_draws() -> None:
    series = _series(2)
    del series["wind_gust_ms"]
    series["precipitation_mm"] = [None] * 72
    png = outlook_chart([_pref(2, series=series, risks=[])])
    assert _size(png) == (640, _expected_height(1))


def test_a_single_prefecture_and_at_most_six_panels() -> None:
    one = outlook_chart([_pref(1)])
    assert _size(one) == (640, _expected_height(1))
    many = [_pref(i) for i in range(1, 10)]
    assert len(chart_prefectures(many)) == CHART_LIMIT
    assert _size(outlook_chart(many)) == (640, _expected_height(CHART_LIMIT))


def test_only_prefectures_with_a_series_are_charted() -> None:
    prefectures = [_pref(1, series=None), _pref(2), _pref(3, series=None), _pref(4)]
    assert [p["code"] for p in chart_prefectures(prefectures)] == ["510200", "510400"]
    assert _size(outlook_chart(prefectures)) == (640, _expected_height(2))
    with pytest.raises(ValueError, match="no prefecture"):
        outlook_chart([_pref(1, series=None)])


def test_the_peak_bands_are_drawn() -> None:
    quiet = outlook_chart([_pref(1, risks=[])])
    assert quiet != outlook_chart([_pref(1, risks=[RAIN])])
    assert outlook_chart([_pref(1, risks=[RAIN])]) != outlook_chart(
        [_pref(1, risks=[{**RAIN, "level": 4}])]
    )  # the band takes the level's colour


def test_panel_titles_are_ascii_with_the_adcode_and_risks() -> None:
    title = chart._title(_pref(1))
    assert title == "510100  rainstorm YELLOW 61.3 mm; heat near 33.1 C"
    assert chart._title({"code": "成都", "risks": []}) == "??  no risk"
    assert title.isascii()


def test_day_ticks_are_local_dates() -> None:
    # series hours end 2026-07-19T17:00Z .. 2026-07-22T16:00Z: Beijing 7/20 01:00 .. 7/23 00:00
    ticks = chart._day_tick_labels(
        START + timedelta(hours=1), START + timedelta(hours=72), "Asia/Shanghai"
    )
    assert [label for _, label in ticks] == ["7/20", "7/21", "7/22", "7/23"]
    assert [x for x, _ in ticks] == [0.0, 24.0, 48.0, 72.0]
    utc = chart._day_tick_labels(START + timedelta(hours=1), START + timedelta(hours=72), "UTC")
    assert [label for _, label in utc] == ["7/20", "7/21", "7/22"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        outlook_chart([_pref(1)], width_px=50)
    naive = _series(1)
    naive["time"] = [t.rstrip("Z") for t in naive["time"]]
    with pytest.raises(ValueError, match="no time zone"):
        outlook_chart([_pref(1, series=naive)])


def test_drawing_touches_no_global_matplotlib_state() -> None:
    before = dict(matplotlib.rcParams)
    outlook_chart([_pref(5)])
    assert dict(matplotlib.rcParams) == before
    code = (
        "import sys\n"
        "import alerts.chart as c\n"
        "from tests.test_chart import _pref\n"
        "c.outlook_chart([_pref(1)])\n"
        "print(sorted(m for m in sys.modules if m == 'matplotlib.pyplot'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
