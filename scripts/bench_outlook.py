#!/usr/bin/env python
"""Benchmark the daily outlook and its bulletin (a script, not a test): prints figures.

The 72-hour outlook grades the forecast at every third hour of the next 72
(24 grading passes) and again on the relaxed rules for near-threshold risks
(24 more), so it costs about 48 gradings of the same grid. This prints, for
N locations x the hours around ``now`` of the grading benchmark's synthetic
weather (``scripts/bench_grading.py``: every hazard fires somewhere):

* the outlook's wall time (best of 3) and its ratio to one grading pass of
  the same frame, measured in the same run;
* its peak Python memory (tracemalloc, a separate run);
* the JSON size of the national outlook and of one province's;
* the long-form bulletin's rendering time (HTML and the chart) and the
  chart's PNG size.

    .venv/bin/python scripts/bench_outlook.py            # 369 prefectures (the default locations)
    .venv/bin/python scripts/bench_outlook.py --locations 2800
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_grading import NOW, synthetic_frame  # noqa: E402

from alerts.bulletin import render_outlook  # noqa: E402
from alerts.criteria import load_rules  # noqa: E402
from alerts.criteria.weather import grade_weather  # noqa: E402
from alerts.outlook import build_outlook  # noqa: E402
from alerts.render import Renderer  # noqa: E402


def best_of(n: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--locations", type=int, default=369)
    args = ap.parse_args()

    frame = synthetic_frame(args.locations, 240, now_offset_h=72)
    rules = load_rules(None).weather
    one, warnings = best_of(3, lambda: grade_weather(frame, rules, NOW))
    took, outlook = best_of(3, lambda: build_outlook(frame, rules, NOW))
    tracemalloc.start()
    build_outlook(frame, rules, NOW)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    data = outlook.to_json()
    at_risk = [p for p in data["prefectures"] if p["risks"]]
    near = sum(1 for p in at_risk for r in p["risks"] if r["near"])
    province = at_risk[0]["code"][:2] if at_risk else data["prefectures"][0]["code"][:2]
    scoped = outlook.scoped(province).to_json()
    renderer = Renderer(timezone="Asia/Shanghai", issuer_zh="应急管理局", details_url="http://x/")

    def render() -> Any:
        return render_outlook(renderer, scoped, family="long", identifier="OUTLOOK-bench")

    cold_s, rendered = best_of(1, render)  # the first: the chart is drawn
    warm_s, _ = best_of(3, render)  # later ones reuse the drawn chart
    png = dict(rendered.images).get("outlook-72h", b"")

    rows = len(frame)
    print(f"frame: {args.locations} locations, {rows:,} location-hours, now {NOW:%Y-%m-%d %H:%MZ}")
    print(f"one grading pass: {one:.3f} s ({len(warnings)} warnings)")
    print(
        f"72 h outlook: {took:.3f} s = {took / one:.1f} x one pass; "
        f"peak Python memory {peak / 2**20:.1f} MiB"
    )
    print(
        f"risks: {len(at_risk)} of {len(data['prefectures'])} locations at risk, "
        f"{near} near-threshold risks; highest level {data['level']}"
    )
    print(
        f"JSON: national {len(json.dumps(data, ensure_ascii=False)) / 1024:.0f} KiB, "
        f"province {province} {len(json.dumps(scoped, ensure_ascii=False)) / 1024:.0f} KiB"
    )
    print(
        f"long bulletin (HTML + chart): {cold_s:.3f} s first, {warm_s:.3f} s again; HTML "
        f"{len(rendered.html or '') / 1024:.0f} KiB, chart {len(png) / 1024:.0f} KiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
