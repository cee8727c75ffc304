#!/usr/bin/env python
"""Benchmark fan-out and SMS dispatch of one big alert on PostgreSQL (a script, not a test).

N subscribers (default 1,000,000) are generated from a fixed seed and loaded
with ``COPY`` (not the ORM), in a child process so that the peak RSS printed
is the pipeline's own: every one on the SMS channel ``sms`` with a
distinct mainland mobile number (1[3-9] + 9 digits); areas are region-code
prefixes from the packaged regions table, spread over the provinces by
population except that about 9 % live in Sichuan (51): a province prefix
("51"), a prefecture's 4- or 6-digit prefix ("5101", "510100"), two areas
(home and elsewhere) or a circle ``circle:lat,lon,km`` near a prefecture's
representative point; about 60 % want every hazard, the rest a list; min_level
1-4; some quiet hours; about 2 % inactive; about 3 % in English.

Then one red alert is published:

* ``--alert province`` (default): a rainstorm red warning for every prefecture
  of Sichuan, one publication (as the weather grader would issue it);
* ``--alert national``: a national (``CN``) earthquake red response, which
  matches every active subscriber who wants earthquakes (the million-SMS case).

and the real path runs, each stage timed on its own (``time.perf_counter``):
``alerts.delivery.fan_out`` (its subscriber load ``Store.subscribers_frame``,
its ``alerts.subscribers.match`` and its ledger write ``Store.fan_out`` are
timed inside it), then ``alerts.delivery.dispatch`` to the Aliyun SMS
simulator (``tests/simulators/aliyun_sms.py``, in this process) through the
real channel (``alerts.channels.build_channel``). The matched set is checked
against what the generator knows each subscriber asked for, and the numbers
the simulator accepted against the ledger: each exactly once.

    .venv/bin/python scripts/bench_delivery.py                     # 1,000,000 subscribers
    .venv/bin/python scripts/bench_delivery.py --subscribers 100000
    .venv/bin/python scripts/bench_delivery.py --alert national

Without ``--store-url`` a scratch database ``alerts_bench_<random>`` is created
on ``--admin-url`` and dropped at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import alerts.delivery as delivery  # noqa: E402
from alerts.channels import build_channel  # noqa: E402
from alerts.config import ChannelSettings, DeliverySettings  # noqa: E402
from alerts.lifecycle import Decision, alert_id_for  # noqa: E402
from alerts.model import Action, Hazard, Level, Warning  # noqa: E402
from alerts.regions import EARTH_RADIUS_KM, load_regions  # noqa: E402
from alerts.render import Renderer  # noqa: E402
from alerts.store import Publisher, Store  # noqa: E402
from tests.simulators.aliyun_sms import AliyunSmsSimulator  # noqa: E402

SEED = 20260720
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PROVINCE = "51"  # Sichuan: the alerted province
PROVINCE_SHARE = 0.09
CREDENTIALS = {
    "access_key_id": "LTAI-bench",
    "access_key_secret": "secret-bench",
    "sign_name": "预警中心",
    "template_code": "SMS_0001",
}

# (hazards, weight): empty = every hazard
HAZARD_LISTS: list[tuple[list[str], float]] = [
    ([], 0.60),
    (["rainstorm"], 0.05),
    (["earthquake"], 0.08),
    (["earthquake", "rainstorm"], 0.06),
    (["rainstorm", "gale", "typhoon"], 0.05),
    (["rainstorm", "flood"], 0.03),
    (["earthquake", "tsunami"], 0.02),
    (["gale", "typhoon"], 0.03),
    (["heat", "cold_wave", "frost"], 0.03),
    (["fog", "haze"], 0.02),
    (["blizzard", "road_icing"], 0.03),
]
QUIET_HOURS = [("22:00", "07:00"), ("23:00", "06:30"), ("12:30", "14:00"), ("21:30", "08:00")]
# area kinds: province prefix, prefecture (4 digits), prefecture (6 digits), two areas, circle
AREA_KINDS = np.array([0.40, 0.25, 0.22, 0.08, 0.05])
CIRCLE_KM = [5.0, 10.0, 20.0, 30.0, 50.0, 80.0]


def _rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


# -- the alert ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertCase:
    hazard: Hazard
    region_codes: list[str]
    points: list[tuple[float, float]]  # what circles are tested against (lat, lon)
    national: bool


def alert_case(kind: str) -> AlertCase:
    frame = load_regions().frame
    if kind == "national":
        return AlertCase(Hazard.EARTHQUAKE, ["CN"], [(31.0, 103.4)], True)
    rows = frame[frame["adcode"].astype(str).str.startswith(PROVINCE)]
    points = list(
        zip(
            pd.to_numeric(rows["rep_lat"]).tolist(),
            pd.to_numeric(rows["rep_lon"]).tolist(),
            strict=True,
        )
    )
    return AlertCase(Hazard.RAINSTORM, rows["adcode"].astype(str).tolist(), points, False)


def publish(store: Store, case: AlertCase, now: datetime) -> None:
    """One red publication, through ``Store.apply`` as the pipeline does it."""
    names = dict(
        zip(
            load_regions().frame["adcode"].astype(str),
            load_regions().frame["name"].astype(str),
            strict=True,
        )
    )
    warnings = []
    if case.national:
        facts: dict[str, Any] = {
            "event_id": "usbench0001",
            "source": "usgs",
            "magnitude": 7.1,
            "magnitude_type": "mww",
            "latitude": 31.0,
            "longitude": 103.4,
            "depth_km": 14.0,
            "place": "eastern Sichuan, China",
            "time": (now - timedelta(minutes=4)).isoformat(),
            "status": "reviewed",
            "url": "https://earthquake.usgs.gov/earthquakes/eventpage/usbench0001",
            "region_adcode": "513200",
            "region_name": "四川省阿坝藏族羌族自治州",
            "region_distance_km": 0.0,
        }
        warnings.append(
            Warning(
                hazard=Hazard.EARTHQUAKE,
                level=Level.RED,
                region_code="CN",
                region_name="全国",
                subject="usgs:usbench0001",
                onset=now - timedelta(minutes=4),
                expires=now + timedelta(hours=24),
                rule_id="earthquake.national.red",
                rule_set_version="bench",
                observed=7.1,
                threshold=7.0,
                reason="bench: M7.1 >= 7.0",
                facts=facts,
            )
        )
    else:
        for i, code in enumerate(case.region_codes):
            value = 100.0 + (i * 7.3) % 60
            reached = (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
            warnings.append(
                Warning(
                    hazard=Hazard.RAINSTORM,
                    level=Level.RED,
                    region_code=code,
                    region_name=names[code],
                    subject="weather",
                    onset=reached,
                    expires=now + timedelta(hours=3),
                    rule_id="rainstorm.red",
                    rule_set_version="bench",
                    observed=value,
                    threshold=100.0,
                    reason=f"rainstorm.red: rain_mm {value:.1f} vs 100 over 3 h (forecast)",
                    facts={
                        "location_id": code,
                        "location_name": names[code],
                        "variable": "rain_mm",
                        "value": value,
                        "threshold": 100.0,
                        "window_h": 3.0,
                        "basis": "forecast",
                        "reached_at": reached.isoformat(),
                    },
                    window_h=3.0,
                    reached_at=reached,
                )
            )
    decisions = [
        Decision(Action.ISSUE, alert_id_for(w.hazard, w.subject, w.region_code), w, None, "bench")
        for w in warnings
    ]
    publisher = Publisher(sender="alerts@sc.example.gov.cn", adcode="510000", agency_code="001")
    store.apply(decisions, now=now, publisher=publisher)


# -- subscribers -----------------------------------------------------------------------------


@dataclass
class Generated:
    rows: int
    numbers: np.ndarray  # int64, in insertion order
    expected: np.ndarray  # bool: the generator's own answer to "does this one get the alert"
    active: int
    seconds: float = 0.0
    copy_seconds: float = 0.0
    rss_mib: float = 0.0  # the generating process's peak
    area_kinds: dict[str, int] = field(default_factory=dict)


def _numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct mainland mobile numbers 1[3-9]xxxxxxxxx, in random order."""
    got = np.empty(0, dtype=np.int64)
    while len(got) < n:
        m = int((n - len(got)) * 1.01) + 16
        draw = 10_000_000_000 + rng.integers(3, 10, m) * 1_000_000_000 + rng.integers(0, 10**9, m)
        got = np.unique(np.concatenate([got, draw]))
    return rng.permutation(got)[:n]


def generate(n: int, case: AlertCase, seed: int) -> tuple[Generated, list[str]]:
    """The subscribers as COPY text lines, and what the generator expects of the alert."""
    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    frame = load_regions().frame
    adcodes = frame["adcode"].astype(str).to_numpy()
    provinces = np.array([a[:2] for a in adcodes])
    pop = frame["population_2020"].astype("float64").to_numpy()
    pop = np.where(np.isnan(pop), np.nanmedian(pop), pop)  # a few have no census figure
    lats = pd.to_numeric(frame["rep_lat"]).to_numpy()
    lons = pd.to_numeric(frame["rep_lon"]).to_numpy()
    # prefecture weights: 9 % in the alerted province, the rest by population
    home = provinces == PROVINCE
    weight = np.where(
        home, PROVINCE_SHARE * pop / pop[home].sum(), (1 - PROVINCE_SHARE) * pop / pop[~home].sum()
    )
    pref = rng.choice(len(adcodes), size=n, p=weight / weight.sum())
    kind = rng.choice(len(AREA_KINDS), size=n, p=AREA_KINDS / AREA_KINDS.sum())

    prefixes = {c[:k] for c in case.region_codes for k in range(1, len(c) + 1)}

    def hit(area: str) -> bool:
        if case.national:
            return True
        if area.startswith("circle:"):
            lat, lon, km = (float(x) for x in area.removeprefix("circle:").split(","))
            return any(_km(lat, lon, p_lat, p_lon) <= km for p_lat, p_lon in case.points)
        return area in prefixes

    # single areas through a pool, the rest (two areas, circles) one by one
    pool = [*sorted(set(provinces)), *sorted({a[:4] for a in adcodes}), *adcodes]
    pool_index = {a: i for i, a in enumerate(pool)}
    pool_json = np.array([json.dumps([a]) for a in pool], dtype=object)
    pool_hit = np.array([hit(a) for a in pool], dtype=bool)
    single_area = np.empty(n, dtype=object)
    single_area[kind == 0] = provinces[pref[kind == 0]]
    single_area[kind == 1] = np.array([a[:4] for a in adcodes], dtype=object)[pref[kind == 1]]
    single_area[kind == 2] = adcodes[pref[kind == 2]]
    single = kind <= 2
    idx = np.array([pool_index[a] for a in single_area[single]], dtype=np.int64)
    areas_json = np.empty(n, dtype=object)
    areas_json[single] = pool_json[idx]
    area_hit = np.zeros(n, dtype=bool)
    area_hit[single] = pool_hit[idx]
    other = rng.choice(len(adcodes), size=n, p=pop / pop.sum())  # a second area, anywhere
    jitter = rng.normal(0.0, 0.25, size=(n, 2))
    radius = rng.choice(CIRCLE_KM, size=n)
    for i in np.flatnonzero(~single).tolist():
        p = int(pref[i])
        if kind[i] == 3:
            areas = [adcodes[p][:4], provinces[int(other[i])]]
            if areas[1] == areas[0][:2]:
                areas = areas[:1]
        else:
            lat = round(float(lats[p] + jitter[i, 0]), 4)
            lon = round(float(lons[p] + jitter[i, 1]), 4)
            areas = [f"circle:{lat},{lon},{radius[i]:g}"]
        areas_json[i] = json.dumps(areas)
        area_hit[i] = any(hit(a) for a in areas)

    h_weights = np.array([w for _, w in HAZARD_LISTS])
    h_pick = rng.choice(len(HAZARD_LISTS), size=n, p=h_weights / h_weights.sum())
    h_json = np.array([json.dumps(h) for h, _ in HAZARD_LISTS], dtype=object)[h_pick]
    h_wants = np.array([not h or case.hazard.value in h for h, _ in HAZARD_LISTS])[h_pick]
    min_level = rng.choice([1, 2, 3, 4], size=n, p=[0.5, 0.25, 0.15, 0.10])
    quiet = rng.random(n) < 0.15
    quiet_pick = rng.integers(0, len(QUIET_HOURS), n)
    q_start = np.where(quiet, np.array([q[0] for q in QUIET_HOURS])[quiet_pick], "\\N")
    q_end = np.where(quiet, np.array([q[1] for q in QUIET_HOURS])[quiet_pick], "\\N")
    active = rng.random(n) >= 0.02
    reason = np.where(
        rng.random(n) < 0.5, "isv.MOBILE_NUMBER_ILLEGAL: 手机号码格式错误", "unsubscribed by SMS"
    )
    reason = np.where(active, "\\N", reason)
    language = np.where(rng.random(n) < 0.03, "en", "zh-CN")
    source = np.where(rng.random(n) < 0.7, "csv", "operator")
    days = pd.Timestamp("2026-01-01", tz="UTC") - pd.to_timedelta(
        rng.integers(0, 720, 366), unit="D"
    )
    stamps = np.array([d.isoformat() for d in days], dtype=object)[rng.integers(0, 366, n)]
    numbers = _numbers(rng, n)
    number_text = numbers.astype(str)
    active_text = np.where(active, "t", "f")

    lines = [
        f"用户{i:07d}\tsms\t{num}\t{lang}\t{areas}\t{haz}\t{lv}\t{qs}\t{qe}\t{act}\t{ts}\t{src}"
        f"\t{ts}\t{ts}\t{why}\n"
        for i, num, lang, areas, haz, lv, qs, qe, act, ts, src, why in zip(
            range(1, n + 1),
            number_text.tolist(),
            language.tolist(),
            areas_json.tolist(),
            h_json.tolist(),
            min_level.tolist(),
            q_start.tolist(),
            q_end.tolist(),
            active_text.tolist(),
            stamps.tolist(),
            source.tolist(),
            reason.tolist(),
            strict=True,
        )
    ]
    expected = active & h_wants & area_hit
    names = ["province", "prefecture-4", "prefecture-6", "two areas", "circle"]
    counts = np.bincount(kind, minlength=len(names))
    gen = Generated(
        rows=n,
        numbers=numbers,
        expected=expected,
        active=int(active.sum()),
        area_kinds={k: int(c) for k, c in zip(names, counts, strict=True)},
    )
    gen.seconds = time.perf_counter() - began
    return gen, lines


SUBSCRIBER_COLUMNS = (
    "name, channel, address, language, areas, hazards, min_level, quiet_start, quiet_end, "
    "active, consent_at, source, created_at, updated_at, deactivated_reason"
)


def populate(url: str, n: int, alert: str, seed: int) -> Generated:
    """Generate the subscribers and COPY them in (runs in a child process)."""
    gen, lines = generate(n, alert_case(alert), seed)
    with Store(url) as store:
        gen.copy_seconds = copy_subscribers(store, lines)
    gen.rss_mib = _rss_mib()
    return gen


def copy_subscribers(store: Store, lines: list[str]) -> float:
    began = time.perf_counter()
    raw = store.engine.raw_connection()
    try:
        conn: Any = raw.driver_connection
        with conn.cursor() as cur:
            with cur.copy(f"COPY subscribers ({SUBSCRIBER_COLUMNS}) FROM STDIN") as copy:
                for start in range(0, len(lines), 50_000):
                    copy.write("".join(lines[start : start + 50_000]))
            cur.execute("ANALYZE subscribers")
        conn.commit()
    finally:
        raw.close()
    return time.perf_counter() - began


# -- timing the real path ------------------------------------------------------------------


@dataclass
class Timer:
    seconds: dict[str, float] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    rss: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began
            self.calls[name] += 1
            self.rss[name] = _rss_mib()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return fn(*args, **kwargs)

        return timed


def run(args: argparse.Namespace, url: str) -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = lambda: datetime.now(UTC)  # noqa: E731 - the simulator checks the timestamp
    case = alert_case(args.alert)
    timer = Timer()
    with Store(url) as store:
        with store.engine.connect() as conn:
            taken = conn.exec_driver_sql("SELECT count(*) FROM subscribers").scalar()
        if taken:
            print(f"{url}: the subscribers table is not empty ({taken} rows); use a fresh one")
            return 2
        # generated in a child process: this one's peak RSS is the pipeline's own
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            gen = pool.submit(populate, url, args.subscribers, args.alert, args.seed).result()
        rss_start = _rss_mib()
        publish(store, case, now)

        # the real fan-out, with its stages timed from inside
        matched: list[pd.DataFrame] = []
        real_match = delivery.match

        def timed_match(*a: Any, **kw: Any) -> pd.DataFrame:
            with timer.stage("match"):
                hit = real_match(*a, **kw)
            matched.append(hit)
            return hit

        store.subscribers_frame = timer.wrap("load", store.subscribers_frame)  # type: ignore[method-assign]
        store.fan_out = timer.wrap("ledger write", store.fan_out)  # type: ignore[method-assign]
        delivery.match = timed_match  # type: ignore[assignment]
        renderer = Renderer(
            timezone="Asia/Shanghai",
            issuer_zh="四川省气象台",
            details_url="https://alerts.example.gov.cn/a",
        )
        with AliyunSmsSimulator(
            access_key_id=CREDENTIALS["access_key_id"],
            access_key_secret=CREDENTIALS["access_key_secret"],
        ) as sim:
            assert isinstance(sim, AliyunSmsSimulator)
            settings = ChannelSettings.model_validate(
                {
                    "name": "sms",
                    "type": "sms",
                    "base_url": sim.url,
                    "timeout_s": 60,
                    "recipients": [],
                    "credentials": CREDENTIALS,
                }
            )
            try:
                with timer.stage("fan_out"):
                    created = delivery.fan_out(store, renderer, [settings], now=now)
            finally:
                delivery.match = real_match  # type: ignore[assignment]
            (pub,) = store.publications()
            hit = matched[0] if matched else pd.DataFrame({"address": []})

            channel = build_channel(settings, store=store, clock=clock)
            store.claim_deliveries = timer.wrap("  claim", store.claim_deliveries)  # type: ignore[method-assign]
            store.record_outcomes = timer.wrap("  record", store.record_outcomes)  # type: ignore[method-assign]
            channel.send = timer.wrap("  send (SMS API)", channel.send)  # type: ignore[method-assign]
            with timer.stage("dispatch"):
                summary = delivery.dispatch(
                    store,
                    {"sms": channel},
                    {"sms": settings},
                    clock=clock,
                    policy=DeliverySettings(claim_size=1000),
                )
            counts = store.delivery_counts(pub.id)
            accepted = list(sim.accepted)

    # -- checks -------------------------------------------------------------------------------
    got = np.sort(hit["address"].astype("int64").to_numpy()) if len(hit) else np.empty(0)
    want = np.sort(gen.numbers[gen.expected])
    numbers = Counter(n for call in accepted for n in call["numbers"])
    duplicates = {n: c for n, c in numbers.items() if c > 1}
    delivered = np.sort(np.array([int(n) for n in numbers], dtype=np.int64))
    per_call = [len(call["numbers"]) for call in accepted]

    # -- report -------------------------------------------------------------------------------
    t = timer.seconds
    inside = t.get("load", 0) + t.get("match", 0) + t.get("ledger write", 0)
    print(
        f"python {sys.version.split()[0]}, pandas {pd.__version__}, seed {args.seed}, "
        f"alert {args.alert} ({case.hazard.value} red, {len(case.region_codes)} region(s))"
    )
    print(
        f"subscribers generated: {gen.rows:,} ({gen.active:,} active; areas "
        + ", ".join(f"{k} {v:,}" for k, v in gen.area_kinds.items())
        + f") in {gen.seconds:.1f} s + COPY {gen.copy_seconds:.1f} s "
        f"(in a child process, peak RSS {gen.rss_mib:,.0f} MiB)"
    )
    print(
        f"matched: {len(hit):,} (generator expects {int(gen.expected.sum()):,}: "
        f"{'same set' if np.array_equal(got, want) else 'DIFFERENT SET'})"
    )
    print(f"ledger rows: {created:,}  {dict(sorted(counts.items()))}")
    stages = [
        ("load (subscribers_frame)", "load"),
        ("match", "match"),
        ("ledger write (Store.fan_out)", "ledger write"),
        ("render + rows (rest of fan_out)", None),
        ("fan_out total", "fan_out"),
        ("dispatch", "dispatch"),
        ("  claim", "  claim"),
        ("  send (SMS API)", "  send (SMS API)"),
        ("  record", "  record"),
    ]
    width = max(len(label) for label, _ in stages)
    print(f"{'stage':<{width}}  {'seconds':>8}  {'calls':>6}  {'peak RSS':>10}")
    for label, key in stages:
        if key is None:
            secs, calls, rss = t.get("fan_out", 0) - inside, "", ""
        else:
            secs, calls, rss = (
                t.get(key, 0.0),
                f"{timer.calls[key]:,}",
                f"{timer.rss.get(key, 0):,.0f} MiB",
            )
        print(f"{label:<{width}}  {secs:>8.2f}  {calls:>6}  {rss:>10}")
    print(
        f"match + ledger: {t.get('match', 0) + t.get('ledger write', 0):.2f} s "
        f"(load + match + ledger: {inside:.2f} s; aim: match + ledger < 10 s)"
    )
    print(
        f"dispatch: sent {summary.sent:,}, retry {summary.retry}, dead {summary.dead}, "
        f"unknown {summary.unknown}; channel.send calls {summary.calls:,}"
    )
    print(
        f"SMS API calls accepted by the simulator: {len(accepted):,} "
        f"({min(per_call, default=0):,}-{max(per_call, default=0):,} numbers each; "
        f"requests seen {len(sim.requests):,})"
    )
    print(
        f"numbers delivered: {sum(per_call):,} ({len(numbers):,} distinct; "
        f"{'= the matched set' if np.array_equal(delivered, got) else 'NOT the matched set'})"
    )
    print(
        f"duplicates (numbers received > 1): {len(duplicates)}"
        + (f" e.g. {dict(list(duplicates.items())[:5])}" if duplicates else "")
    )
    print(
        f"peak RSS: {_rss_mib():,.0f} MiB (this process: fan-out, dispatch and the simulator; "
        f"{rss_start:,.0f} MiB before the first stage)"
    )
    ok = (
        np.array_equal(got, want)
        and np.array_equal(delivered, got)
        and not duplicates
        and created == len(hit)
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--alert", choices=("province", "national"), default="province")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--store-url", help="an existing PostgreSQL store with no subscribers (default: scratch)"
    )
    parser.add_argument("--admin-url", default=ADMIN_URL, help="where the scratch database goes")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    if args.store_url:
        return run(args, args.store_url)

    import psycopg

    name = f"alerts_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = args.admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        return run(args, f"{base}/{name}")
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    raise SystemExit(main())
