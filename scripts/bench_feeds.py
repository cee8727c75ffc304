#!/usr/bin/env python
"""Benchmark the feed parsers on large synthetic payloads (a script, not a test).

Two payloads are generated in memory from a fixed seed, so every run parses
the same bytes:

* a USGS GeoJSON summary feed of 100,000 events whose features look like
  those of ``tests/data/usgs/all_hour.geojson`` (every property the feed
  carries, ``ids``/``sources``/``types`` lists, a few null magnitudes);
* an Open-Meteo forecast answer for the 369 prefectures of the packaged
  regions table x 240 hours (``past_days=1&forecast_days=9``), as one JSON
  array in request order.

Each case runs in a fresh child process so that its peak RSS is its own.
Wall time is the best of 3 parses (``time.perf_counter``); peak Python memory
is measured in a separate fourth parse under ``tracemalloc`` (which slows
allocation-heavy code, so it is never timed); peak RSS is the child's
``ru_maxrss`` at the end, generation of the payload included, next to its
value just before parsing.

    .venv/bin/python scripts/bench_feeds.py           # full size, ~1 minute
    .venv/bin/python scripts/bench_feeds.py --quick   # 10x smaller
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import multiprocessing
import random
import resource
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 20260720
REPEAT = 3

# Networks and the regions their events come from: (net, lon range, lat range, place).
_NETWORKS = [
    ("nc", (-123.5, -118.0), (35.0, 40.5), "CA"),
    ("ci", (-120.0, -115.0), (32.5, 36.0), "CA"),
    ("ak", (-170.0, -140.0), (52.0, 65.0), "Alaska"),
    ("hv", (-156.0, -154.8), (18.9, 20.2), "Hawaii"),
    ("nn", (-120.0, -114.0), (36.0, 42.0), "Nevada"),
    ("ok", (-99.0, -96.0), (35.0, 37.0), "Oklahoma"),
    ("pr", (-68.0, -64.5), (17.5, 19.5), "Puerto Rico"),
    ("uw", (-124.5, -120.5), (45.5, 49.0), "Washington"),
    ("us", (-180.0, 180.0), (-60.0, 70.0), None),
]
_TOWNS = ["Ridgecrest", "Cobb", "Pahala", "Anza", "Petrolia", "Perry", "Indios", "Tolchester"]
_REGIONS = ["Kermadec Islands, New Zealand", "Tonga", "southern Xinjiang, China", "Fiji region"]
_COMPASS = ["N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "NW"]


def usgs_payload(events: int, seed: int = SEED) -> bytes:
    """A summary feed with ``events`` features, newest first."""
    rng = random.Random(seed)
    newest = 1_784_505_600_000  # 2026-07-20T00:00:00Z in epoch ms
    features = []
    t = newest
    for i in range(events):
        net, (lon0, lon1), (lat0, lat1), area = rng.choice(_NETWORKS)
        t -= rng.randint(1_000, 60_000)
        code = f"{75_000_000 + i}" if net != "us" else f"7000{i:05x}"
        event_id = f"{net}{code}"
        mag: float | None = round(rng.lognormvariate(0.3, 0.7), 2)
        if net == "us":
            mag = round(4.0 + rng.expovariate(2.2), 1)
        if rng.random() < 0.002:
            mag = None  # the feed does publish events without a magnitude yet
        place = (
            f"{rng.randint(1, 90)} km {rng.choice(_COMPASS)} of {rng.choice(_TOWNS)}, {area}"
            if area
            else rng.choice(_REGIONS)
        )
        reviewed = rng.random() < 0.4
        others = [f"us7000{i:05x}"] if net != "us" and rng.random() < 0.05 else []
        ids = [event_id, *others]
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "mag": mag,
                    "place": place,
                    "time": t,
                    "updated": t + rng.randint(60_000, 3_600_000),
                    "tz": None,
                    "url": f"https://earthquake.usgs.gov/earthquakes/eventpage/{event_id}",
                    "detail": "https://earthquake.usgs.gov/earthquakes/feed/v1.0/detail/"
                    f"{event_id}.geojson",
                    "felt": None,
                    "cdi": None,
                    "mmi": None,
                    "alert": None,
                    "status": "reviewed" if reviewed else "automatic",
                    "tsunami": 0,
                    "sig": int(max(0.0, (mag or 0.0)) * 60),
                    "net": net,
                    "code": code,
                    "ids": "," + ",".join(ids) + ",",
                    "sources": "," + ",".join(x[:2] for x in ids) + ",",
                    "types": ",nearby-cities,origin,phase-data,",
                    "nst": rng.randint(4, 80),
                    "dmin": round(rng.uniform(0.001, 2.5), 6),
                    "rms": round(rng.uniform(0.01, 1.2), 4),
                    "gap": round(rng.uniform(20, 300), 1),
                    "magType": "mb" if net == "us" else rng.choice(["md", "ml", "ml", "mww"]),
                    "type": "earthquake" if rng.random() < 0.98 else "quarry blast",
                    "title": f"M {mag if mag is not None else '?'} - {place}",
                },
                "geometry": {
                    "type": "Point",
                    "coordinates": [
                        round(rng.uniform(lon0, lon1), 4),
                        round(rng.uniform(lat0, lat1), 4),
                        round(rng.uniform(-2.0, 660.0 if net == "us" else 25.0), 2),
                    ],
                },
                "id": event_id,
            }
        )
    doc = {
        "type": "FeatureCollection",
        "metadata": {
            "generated": newest,
            "url": "https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/synthetic.geojson",
            "title": "USGS synthetic benchmark feed",
            "status": 200,
            "api": "1.10.3",
            "count": events,
        },
        "features": features,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def openmeteo_payload(hours: int, seed: int = SEED) -> tuple[bytes, list[Any]]:
    """A forecast array for every default location, ``hours`` hours each."""
    import numpy as np

    from alerts.feeds.openmeteo import default_locations

    rng = np.random.default_rng(seed)
    locations = default_locations()
    start = np.datetime64("2026-07-19T00:00")
    stamps = [str(start + np.timedelta64(h, "h"))[:16] for h in range(hours)]
    local_hour = np.arange(hours) % 24
    cycle = np.cos((local_hour - 15) / 24 * 2 * math.pi)
    units = {
        "time": "iso8601",
        "precipitation": "mm",
        "temperature_2m": "°C",
        "relative_humidity_2m": "%",
        "wind_speed_10m": "m/s",
        "wind_gusts_10m": "m/s",
        "snowfall": "cm",
        "visibility": "m",
        "weather_code": "wmo code",
    }
    blocks = []
    for loc in locations:
        mean = 30.0 - 0.45 * (loc.latitude - 20.0) + rng.normal(0, 2)
        temp = mean + 5.0 * cycle + rng.normal(0, 0.5, hours)
        rain = np.where(rng.random(hours) < 0.08, rng.gamma(0.8, 3.0, hours), 0.0)
        wind = np.clip(2.5 + 0.8 * cycle + rng.normal(0, 0.8, hours), 0.1, None)
        hourly = {
            "time": stamps,
            "precipitation": np.round(rain, 2).tolist(),
            "temperature_2m": np.round(temp, 1).tolist(),
            "relative_humidity_2m": np.clip(70 - 18 * cycle + rain * 3, 5, 100).round().tolist(),
            "wind_speed_10m": np.round(wind, 1).tolist(),
            "wind_gusts_10m": np.round(wind * rng.uniform(1.6, 2.5, hours), 1).tolist(),
            "snowfall": [0.0] * hours,
            "visibility": np.where(rain > 2, 8000.0, 24140.0).tolist(),
            "weather_code": np.where(rain > 0, 61, 2).astype(int).tolist(),
        }
        blocks.append(
            {
                # the grid snaps each point; 0.125 degrees like the fixtures
                "latitude": round(loc.latitude * 8) / 8,
                "longitude": round(loc.longitude * 8) / 8,
                "generationtime_ms": float(rng.uniform(0.02, 0.3)),
                "utc_offset_seconds": 28800,
                "timezone": "Asia/Shanghai",
                "timezone_abbreviation": "GMT+8",
                "elevation": float(rng.integers(0, 4500)),
                "hourly_units": units,
                "hourly": hourly,
            }
        )
    payload = json.dumps(blocks, ensure_ascii=False, separators=(",", ":")).encode()
    return payload, locations


def _rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def run_case(case: str, quick: bool) -> dict[str, Any]:
    """Generate one payload and parse it; runs in its own process."""
    from alerts.feeds import openmeteo, usgs

    began = time.perf_counter()
    if case == "usgs":
        size_label = f"{10_000 if quick else 100_000:,} events"
        payload = usgs_payload(10_000 if quick else 100_000)

        def parse() -> Any:
            return usgs.parse(payload)
    else:
        hours = 24 if quick else 240
        payload, locations = openmeteo_payload(hours)
        size_label = f"{len(locations)} loc x {hours} h"

        def parse() -> Any:
            return openmeteo.parse(payload, locations)

    generated_s = time.perf_counter() - began
    gc.collect()
    rss_before = _rss_mib()
    best = math.inf
    result = None
    for _ in range(REPEAT):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = parse()
        best = min(best, time.perf_counter() - t0)
    assert result is not None
    rows, quarantined = len(result.frame), len(result.quarantined)
    result = None
    gc.collect()
    tracemalloc.start()
    parse()
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "case": case,
        "size": size_label,
        "payload_mib": len(payload) / 2**20,
        "rows": rows,
        "quarantined": quarantined,
        "best_s": best,
        "py_peak_mib": py_peak / 2**20,
        "rss_before_mib": rss_before,
        "rss_peak_mib": _rss_mib(),
        "generated_s": generated_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a 10x smaller run")
    args = parser.parse_args(argv)

    results = []
    spawn = multiprocessing.get_context("spawn")
    for case in ("usgs", "open-meteo"):
        # One case at a time, each in a fresh interpreter: no contention on two
        # cores, and ru_maxrss is the case's own high-water mark.
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            results.append(pool.submit(run_case, case, args.quick).result())

    header = [
        ("feed", "<"),
        ("size", "<"),
        ("payload", ">"),
        ("rows", ">"),
        ("quar.", ">"),
        (f"best of {REPEAT}", ">"),
        ("rows/s", ">"),
        ("py peak", ">"),
        ("RSS before", ">"),
        ("RSS peak", ">"),
    ]
    table = [
        [
            r["case"],
            r["size"],
            f"{r['payload_mib']:.1f} MiB",
            f"{r['rows']:,}",
            f"{r['quarantined']:,}",
            f"{r['best_s'] * 1000:,.0f} ms",
            f"{r['rows'] / r['best_s']:,.0f}",
            f"{r['py_peak_mib']:.0f} MiB",
            f"{r['rss_before_mib']:.0f} MiB",
            f"{r['rss_peak_mib']:.0f} MiB",
        ]
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, (h, _) in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(cells, header, widths, strict=True)
        )

    print(f"python {sys.version.split()[0]}, seed {SEED}{', quick' if args.quick else ''}")
    print(line([h for h, _ in header]))
    print(line(["-" * w for w in widths]))
    for row in table:
        print(line(row))
    print(
        "py peak: tracemalloc peak of one parse; RSS: the child process's ru_maxrss "
        "after generating the payload (before) and after all parses (peak)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
