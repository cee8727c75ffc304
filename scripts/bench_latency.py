#!/usr/bin/env python
"""End-to-end alert latency with the real scheduler (a script, not a test).

``airflow standalone`` (scheduler, dag-processor, triggerer, api-server,
LocalExecutor) runs as a subprocess in a throwaway ``AIRFLOW_HOME`` and
``ALERTS_HOME`` (SQLite, as ``scripts/run.sh``; PostgreSQL with ``--pg``),
with this repository's ``dags/`` and ``plugins/``. In this process:

* a loopback feed server answers the USGS summary feed (GeoJSON, with ETag /
  Last-Modified, so conditional GETs get 304) and an empty CENC catalogue;
* the WeCom robot simulator (``tests/simulators/wecom.py``) is the only
  channel (``ALERTS_CHANNELS``: one ``wecom_bot``); a subclass here stamps
  the time each accepted message arrived.

Once the watcher (``FeedWatchTrigger`` in the triggerer) polls the feed
server, and one warm-up run has finished, each of ``--events`` events is
published: at T0 the USGS feed gains a new M6.5 earthquake in Sichuan
(about 30.5N 103.0E, a fresh id, ``time`` = ``updated`` = T0; earlier events
stay in the feed, as in the real hour feed). The script waits (``--timeout``)
for a robot message naming that event and records T(message) - T0, with the
stage times it can observe from outside:

* the first GET of the USGS feed after T0 answered with the new body, and
  who made it (the triggerer's watcher or a task of the minute fallback,
  found by the client socket's process);
* the asset event the trigger fired (``/api/v2/assets/events``);
* the delivering DAG run's ``queued_at`` / ``start_date`` and each task's
  ``queued_when`` / ``start_date`` / ``end_date``
  (``/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances``);
* the simulator's receive time.

After each delivery the script waits for that run to finish, then a random
``--gap`` (so events fall at random phases of the 15 s watch interval and of
the minute fallback). It prints a table per event and a summary: p50, p95 and
max of the end-to-end latency and each stage's mean seconds and mean share.
It asserts nothing. Every subprocess (the whole process group) is stopped at
the end, on an error or on Ctrl-C.

    .venv/bin/python scripts/bench_latency.py                 # 10 events, Airflow defaults
    .venv/bin/python scripts/bench_latency.py --tuned         # + the settings of --show-tuned
    .venv/bin/python scripts/bench_latency.py --events 3 --set AIRFLOW__SCHEDULER__X=1
    .venv/bin/python scripts/bench_latency.py --pg            # PostgreSQL (ALERTS_TEST_PG)

Takes about 1 minute to start and warm up, then 20-50 s per event (~7 minutes for 10).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.simulators.base import Answer, Request  # noqa: E402
from tests.simulators.wecom import WeComSimulator  # noqa: E402

ROBOT_KEY = "bench-robot-key"
DAG_ID = "seismic_alerts"
TASKS = ("collect", "ingest", "publish")
PG_ADMIN_URL = os.environ.get("ALERTS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

# Settings that shorten the scheduler's and triggerer's waits (see docs/operations.md, "Latency").
TUNED: dict[str, str] = {
    # the scheduler loop sleeps this long when a loop found nothing to do
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
}


# -- the feed server ---------------------------------------------------------------


@dataclass
class Hit:
    t: float
    path: str
    status: int
    client: str  # "watcher" (the triggerer), "task" or the process name


class FeedServer:
    """USGS summary feed and CENC catalogue on loopback; conditional GET; every hit logged."""

    USGS = "/usgs/4.5_hour.geojson"
    CENC = "/cenc/catalogs"

    def __init__(self) -> None:
        self.features: list[dict[str, Any]] = []
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._set_usgs(time.time())
        cenc = b'{"code":0,"msg":"success","data":[]}'
        self._cenc = (cenc, _etag(cenc), formatdate(time.time(), usegmt=True))
        self._clients: dict[int, str] = {}  # client port -> who (cached per connection)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the watcher's session keeps one socket

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                t = time.time()
                path = self.path.split("?", 1)[0]
                with server._lock:
                    if path == server.USGS:
                        body, etag, modified = server._usgs
                    elif path == server.CENC:
                        body, etag, modified = server._cenc
                    else:
                        body, etag, modified = b"not found", "", ""
                if not etag:
                    status = 404
                elif self.headers.get("If-None-Match") == etag or (
                    self.headers.get("If-None-Match") is None
                    and self.headers.get("If-Modified-Since") == modified
                ):
                    status, body = 304, b""
                else:
                    status = 200
                client = server._client(self.client_address[1])
                with server._lock:
                    server.hits.append(Hit(t, path, status, client))
                try:
                    self.send_response(status)
                    if etag:
                        self.send_header("ETag", etag)
                        self.send_header("Last-Modified", modified)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if status != 304:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _client(self, port: int) -> str:
        """Which process holds the other end of this connection (once per connection)."""
        with self._lock:
            known = self._clients.get(port)
        if known is not None:
            return known
        who = "?"
        try:
            import psutil

            for conn in psutil.net_connections("tcp4"):
                if conn.laddr and conn.laddr.port == port and conn.pid:
                    cmd = " ".join(psutil.Process(conn.pid).cmdline())
                    who = "watcher" if "triggerer" in cmd else "task"
                    break
        except Exception:  # the classification is a label only
            pass
        with self._lock:
            self._clients[port] = who
        return who

    def _set_usgs(self, now: float) -> None:
        doc = {
            "type": "FeatureCollection",
            "metadata": {
                "generated": int(now * 1000),
                "url": "https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/4.5_hour.geojson",
                "title": "USGS Magnitude 4.5+ Earthquakes, Past Hour (benchmark replay)",
                "status": 200,
                "api": "1.10.3",
                "count": len(self.features),
            },
            "features": list(reversed(self.features)),  # newest first, as USGS
        }
        body = json.dumps(doc).encode()
        self._usgs = (body, _etag(body), formatdate(now, usegmt=True))

    def publish(self, feature: dict[str, Any], now: float) -> None:
        with self._lock:
            self.features.append(feature)
            self._set_usgs(now)

    def first_hit(self, path: str, after: float, status: int | None = None) -> Hit | None:
        with self._lock:
            for hit in self.hits:
                if hit.path == path and hit.t >= after and (status is None or hit.status == status):
                    return hit
        return None


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def quake(event_id: str, t0: float, k: int) -> dict[str, Any]:
    """A new M6.5 in Sichuan (near 30.5N 103.0E) at ``t0``, shaped like a USGS summary feature."""
    rng = random.Random(event_id)
    lat = round(30.5 + rng.uniform(-0.3, 0.3), 3)
    lon = round(103.0 + rng.uniform(-0.3, 0.3), 3)
    ms = int(t0 * 1000)
    return {
        "type": "Feature",
        "properties": {
            "mag": 6.5,
            "place": f"Sichuan, China (bench {event_id})",
            "time": ms,
            "updated": ms,
            "tz": None,
            "url": f"https://earthquake.usgs.gov/earthquakes/eventpage/{event_id}",
            "detail": f"https://earthquake.usgs.gov/earthquakes/feed/v1.0/detail/{event_id}.geojson",
            "felt": None,
            "cdi": None,
            "mmi": None,
            "alert": None,
            "status": "automatic",
            "tsunami": 0,
            "sig": 650,
            "net": "us",
            "code": event_id[2:],
            "ids": f",{event_id},",
            "sources": ",us,",
            "types": ",origin,phase-data,",
            "nst": None,
            "dmin": 2.1,
            "rms": 0.9,
            "gap": 35,
            "magType": "mww",
            "type": "earthquake",
            "title": f"M 6.5 - Sichuan, China (bench {k})",
        },
        "geometry": {"type": "Point", "coordinates": [lon, lat, 10.0]},
        "id": event_id,
    }


# -- the WeCom robot, with receive times ---------------------------------------------


class TimedWeCom(WeComSimulator):
    """The WeCom simulator; every accepted robot message also gets its receive time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.received: list[tuple[float, str]] = []  # (time.time(), content)

    def handle(self, request: Request) -> Answer:
        t = time.time()
        answer = super().handle(request)
        body = answer.body if isinstance(answer.body, dict) else {}
        if request.path == "/cgi-bin/webhook/send" and body.get("errcode") == 0:
            msg = request.json()
            content = (msg.get(msg.get("msgtype")) or {}).get("content", "")
            with self._lock:
                self.received.append((t, content))
        return answer

    def first_naming(self, text: str) -> float | None:
        with self._lock:
            for t, content in self.received:
                if text in content:
                    return t
        return None


# -- Airflow --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ts(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Airflow:
    """``airflow standalone`` in its own process group, and its REST API."""

    def __init__(self, home: Path, env: dict[str, str], port: int) -> None:
        self.home = home
        self.env = env
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / "standalone.log"
        self.http = requests.Session()

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "airflow"), "standalone"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as a whole
            cwd=str(self.home),
        )

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        pids: list[int] = []
        try:
            import psutil

            pids = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        except Exception:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in pids:  # any child that left the group (its own session)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far per standalone component (process trees, reaped children too)."""
        import psutil

        out: dict[str, float] = {}
        if self.proc is None:
            return out
        root = psutil.Process(self.proc.pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                cmd = " ".join(p.cmdline())
                name = next(
                    (
                        label
                        for key, label in (
                            ("LocalExecutor", "workers+tasks"),
                            ("serve-logs", "log servers"),
                            ("scheduler", "scheduler"),
                            ("triggerer", "triggerer"),
                            ("dag-processor", "dag-processor"),
                            ("api_server", "api-server"),
                            ("api-server", "api-server"),
                        )
                        if key in cmd
                    ),
                    "other",
                )
                t = p.cpu_times()
                own = t.user + t.system
                reaped = t.children_user + t.children_system
                out[name] = out.get(name, 0.0) + own + (reaped if p is not root else 0.0)
        return out

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def login(self, user: str, password: str) -> None:
        r = self.http.post(
            f"{self.base}/auth/token", json={"username": user, "password": password}, timeout=10
        )
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(f"{self.base}/api/v2{path}", params=params, timeout=20)
        r.raise_for_status()
        return r.json()

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        r = self.http.patch(f"{self.base}/api/v2{path}", json=body, timeout=20)
        r.raise_for_status()
        return r.json()

    def runs(self, dag_id: str, limit: int = 25) -> list[dict[str, Any]]:
        got = self.get(f"/dags/{dag_id}/dagRuns", order_by="-run_after", limit=limit)
        return list(got["dag_runs"])

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        got = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)
        return {ti["task_id"]: ti for ti in got["task_instances"]}

    def asset_events(self, limit: int = 50) -> list[dict[str, Any]]:
        got = self.get("/assets/events", order_by="-timestamp", limit=limit)
        return list(got["asset_events"])


def wait_for(what: str, check: Any, timeout: float, every: float = 1.0, af: Airflow | None = None):
    deadline = time.time() + timeout
    last: Exception | None = None
    while time.time() < deadline:
        if af is not None and not af.alive():
            raise RuntimeError(f"airflow standalone exited while waiting for {what}")
        try:
            got = check()
            if got:
                return got
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(every)
    raise TimeoutError(
        f"no {what} within {timeout:.0f} s" + (f" (last error: {last})" if last else "")
    )


# -- one event ----------------------------------------------------------------------


@dataclass
class Sample:
    k: int
    event_id: str
    t0: float
    msg: float | None = None
    poll: Hit | None = None
    fired: float | None = None
    run: dict[str, Any] = field(default_factory=dict)
    tis: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered_by: str = ""  # dag_id/task_id whose window holds the message

    @property
    def e2e(self) -> float | None:
        return None if self.msg is None else self.msg - self.t0

    def milestones(self) -> list[tuple[str, float | None]]:
        """The brief's stages as (name, end time); each stage starts where the last ended."""
        tis = self.tis
        return [
            ("poll wait", self.poll.t if self.poll else None),
            ("trigger->queued", ts(self.run.get("queued_at"))),
            ("queued->running", ts(tis.get("collect", {}).get("start_date"))),
            ("collect", ts(tis.get("collect", {}).get("end_date"))),
            ("ingest", ts(tis.get("ingest", {}).get("end_date"))),
            ("publish/deliver", self.msg),
        ]

    def stages(self) -> dict[str, float]:
        """Consecutive stage durations; the milestones clamped monotonic, so they sum to e2e."""
        out: dict[str, float] = {}
        prev = self.t0
        end = self.msg if self.msg is not None else prev
        for name, t in self.milestones():
            t = prev if t is None else min(max(t, prev), end)
            out[name] = t - prev
            prev = t
        return out

    def detail(self) -> dict[str, float]:
        """Scheduler vs task start-up vs task code, summed over the three tasks."""
        queued = ts(self.run.get("queued_at"))
        if self.msg is None or queued is None:
            return {}
        sched = startup = code = 0.0
        prev = max(queued, self.poll.t if self.poll else queued)
        for task in TASKS:
            ti = self.tis.get(task, {})
            q, s, e = (ts(ti.get(k)) for k in ("queued_when", "start_date", "end_date"))
            if q is None or s is None:
                return {}
            e = self.msg if task == "publish" or e is None else min(e, self.msg)
            q, s = max(q, prev), max(s, q, prev)
            sched += q - prev
            startup += s - q
            code += max(e - s, 0.0)
            prev = max(e, s)
        return {"scheduler waits": sched, "task start-up": startup, "task code": code}


def find_run(af: Airflow, dag_ids: list[str], sample: Sample) -> None:
    """The run that delivered the message; for seismic_alerts its tasks are the stages."""
    assert sample.msg is not None
    best: tuple[str, dict[str, Any], dict[str, dict[str, Any]], str] | None = None
    for dag_id in dag_ids:
        for run in af.runs(dag_id):
            queued = ts(run.get("queued_at")) or 0.0
            if queued > sample.msg or (ts(run.get("end_date")) or 1e18) < sample.t0 - 60:
                continue
            tis = af.tasks(dag_id, run["dag_run_id"])
            for ti in tis.values():
                s, e = ts(ti.get("start_date")), ts(ti.get("end_date")) or time.time()
                if s is not None and s - 0.5 <= sample.msg <= e + 0.5:
                    best = (dag_id, run, tis, ti["task_id"])
                    break
            if best:
                break
        if best:
            break
    if best is None:
        return
    dag_id, run, tis, task_id = best
    sample.delivered_by = f"{dag_id}.{task_id}"
    if dag_id == DAG_ID:
        sample.run, sample.tis = run, tis


def wait_run_done(af: Airflow, sample: Sample, timeout: float = 90) -> None:
    run_id = sample.run.get("dag_run_id")
    if not run_id:
        time.sleep(5)
        return

    def done() -> bool:
        run = af.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")
        return run["state"] in ("success", "failed")

    with contextlib.suppress(TimeoutError):
        wait_for(f"run {run_id} to finish", done, timeout, af=af)
    sample.run = af.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")
    sample.tis = af.tasks(DAG_ID, run_id)


def fired_at(af: Airflow, event_id: str) -> float | None:
    with contextlib.suppress(Exception):
        for ev in af.asset_events():
            payload = (ev.get("extra") or {}).get("payload") or {}
            if event_id in (payload.get("events") or []):
                return ts(ev.get("timestamp"))
    return None


# -- report -------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    v = sorted(values)
    if not v:
        return float("nan")
    pos = (len(v) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def report(samples: list[Sample], label: str) -> None:
    print(f"\n== {label}: per event (seconds after T0 unless noted) ==")
    names = [n for n, _ in samples[0].milestones()] if samples else []
    head = (
        f"{'#':>2} {'path':<8} {'poll by':<8} {'e2e':>6} "
        + " ".join(f"{n:>15}" for n in names)
        + f" {'fired':>6}  run"
    )
    print(head)
    for s in samples:
        if s.msg is None:
            print(f"{s.k:>2} {'-':<8} {'-':<8} {'timeout':>6}  (no message for {s.event_id})")
            continue
        st = s.stages()
        path = {"asset_triggered": "asset", "scheduled": "cron"}.get(
            str(s.run.get("run_type")), str(s.run.get("run_type") or "?")
        )
        fired = f"{s.fired - s.t0:6.1f}" if s.fired else f"{'-':>6}"
        print(
            f"{s.k:>2} {path:<8} {(s.poll.client if s.poll else '-'):<8} {s.e2e:6.1f} "
            + " ".join(f"{st[n]:15.1f}" for n in names)
            + f" {fired}  {s.run.get('dag_run_id', s.delivered_by)}"
        )
    ok = [s for s in samples if s.e2e is not None]
    print(f"\n== {label}: summary ({len(ok)} of {len(samples)} events delivered) ==")
    if not ok:
        return
    e2e = [s.e2e for s in ok if s.e2e is not None]
    print(
        f"end-to-end T(message) - T0: p50 {percentile(e2e, 0.5):.1f} s, "
        f"p95 {percentile(e2e, 0.95):.1f} s, max {max(e2e):.1f} s, "
        f"mean {sum(e2e) / len(e2e):.1f} s   (aim: p50 < 20 s, p95 < 40 s)"
    )
    paths: dict[str, int] = {}
    for s in ok:
        key = str(s.run.get("run_type") or s.delivered_by or "?")
        paths[key] = paths.get(key, 0) + 1
    print("delivered by runs: " + ", ".join(f"{k} x{v}" for k, v in paths.items()))
    print(f"{'stage':<18} {'mean s':>7} {'mean share':>10} {'max s':>7}")
    for n in names:
        vals = [s.stages()[n] for s in ok]
        shares = [s.stages()[n] / s.e2e for s in ok if s.e2e]
        print(
            f"{n:<18} {sum(vals) / len(vals):7.1f} {100 * sum(shares) / len(shares):9.0f}% "
            f"{max(vals):7.1f}"
        )
    details = [d for d in (s.detail() for s in ok) if d]
    if details:
        print("from run queued to message (summed over collect, ingest, publish):")
        for n in details[0]:
            vals = [d[n] for d in details]
            print(f"  {n:<16} {sum(vals) / len(vals):7.1f} s mean, max {max(vals):.1f}")
    fired = [s.fired - s.poll.t for s in ok if s.fired and s.poll and s.poll.client == "watcher"]
    if fired:
        print(
            f"watcher poll -> asset event stored: mean {sum(fired) / len(fired):.1f} s "
            f"(the poll itself and the triggerer's event handling)"
        )


# -- main ---------------------------------------------------------------------------


def pg_databases(admin_url: str, tag: str) -> tuple[dict[str, str], Any]:
    """Two throwaway databases (Airflow, alert store); returns env and a drop function."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    names = [f"bench_airflow_{tag}", f"bench_alerts_{tag}"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')

    def sa(name: str) -> str:
        return url.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )

    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sa(names[0]),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": sa(names[0]),
        "ALERTS_STORE_URL": sa(names[1]),
    }

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return env, drop


@contextlib.contextmanager
def interrupts_as_exit() -> Iterator[None]:
    """SIGTERM / SIGHUP end the run like Ctrl-C does, so the finally blocks run."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per event")
    parser.add_argument(
        "--gap",
        type=float,
        nargs=2,
        default=(5.0, 25.0),
        metavar=("MIN", "MAX"),
        help="random pause after a run finished, before the next T0 (seconds)",
    )
    parser.add_argument(
        "--dags",
        default="seismic_alerts,publish_alerts",
        help="DAGs to unpause (those that exist); the rest stay paused",
    )
    parser.add_argument("--tuned", action="store_true", help="add the settings of --show-tuned")
    parser.add_argument("--show-tuned", action="store_true", help="print them and exit")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for airflow standalone (repeatable)",
    )
    parser.add_argument(
        "--pg",
        nargs="?",
        const=PG_ADMIN_URL,
        default=None,
        metavar="ADMIN_URL",
        help=f"PostgreSQL for Airflow and the store (throwaway databases; default {PG_ADMIN_URL})",
    )
    parser.add_argument(
        "--watch-interval",
        type=float,
        default=None,
        metavar="S",
        help="the watcher's poll interval (ALERTS_FEEDS__WATCH_INTERVAL_S; default 10 s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes and logs")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("-v", "--verbose", action="store_true", help="list the messages received")
    args = parser.parse_args(argv)
    if args.show_tuned:
        for k, v in TUNED.items():
            print(f"{k}={v}")
        return 0
    rng = random.Random(args.seed)
    tag = secrets.token_hex(3)
    work = Path(tempfile.mkdtemp(prefix="alerts-bench-latency-"))
    feeds = FeedServer().start()
    wecom = TimedWeCom(keys=[ROBOT_KEY]).start()
    port = free_port()
    af: Airflow | None = None
    drop_pg = None
    samples: list[Sample] = []
    extra = dict(TUNED) if args.tuned else {}
    for item in args.set:
        key, _, value = item.partition("=")
        extra[key] = value
    label = "tuned" if args.tuned else "Airflow defaults"
    if args.set:
        label += " + " + ", ".join(args.set)
    if args.watch_interval is not None:
        label += f" + watch interval {args.watch_interval:g} s"
    try:
        with interrupts_as_exit():
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ALERTS_"))}
            env.update(
                {
                    "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                    "PYTHONPATH": str(ROOT),
                    "AIRFLOW_HOME": str(work / "airflow"),
                    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
                    "AIRFLOW__API__PORT": str(port),
                    # the scheduler's and triggerer's log servers: free ports, not 8793 / 8794
                    "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                    "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                    "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
                    "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                    "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
                    "ALERTS_HOME": str(work / "alerts"),
                    "ALERTS_FEEDS__USGS_URL": feeds.url + FeedServer.USGS,
                    "ALERTS_FEEDS__CENC_URL": feeds.url + FeedServer.CENC,
                    "ALERTS_FEEDS__RETRIES": "0",
                    "ALERTS_CHANNELS": json.dumps(
                        [
                            {
                                "name": "bench-robot",
                                "type": "wecom_bot",
                                "recipients": ["duty-group"],
                                "base_url": wecom.url,
                                "credentials": {"key": ROBOT_KEY},
                                "options": {"msgtype": "markdown"},
                            }
                        ]
                    ),
                }
            )
            if args.pg:
                pg_env, drop_pg = pg_databases(args.pg, tag)
                env.update(pg_env)
            env.update(extra)
            if args.watch_interval is not None:
                env["ALERTS_FEEDS__WATCH_INTERVAL_S"] = str(args.watch_interval)
            (work / "airflow").mkdir()
            (work / "alerts").mkdir()
            (work / "airflow" / "simple_auth_manager_passwords.json.generated").write_text(
                '{"admin": "admin"}'
            )
            print(f"work dir {work}; feeds {feeds.url}; wecom {wecom.url}; api :{port}")
            print(f"settings: {label}" + (f" {extra}" if extra else ""))
            subprocess.run(
                [str(ROOT / ".venv" / "bin" / "alerts"), "db", "upgrade"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            af = Airflow(work / "airflow", env, port)
            t_start = time.time()
            af.start()

            def healthy() -> bool:
                h = requests.get(f"{af.base}/api/v2/monitor/health", timeout=5).json()
                parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                return all((h.get(p) or {}).get("status") == "healthy" for p in parts)

            wait_for("healthy scheduler, triggerer and dag-processor", healthy, 300, 2, af)
            af.login("admin", "admin")
            wait_for(f"DAG {DAG_ID}", lambda: af.get(f"/dags/{DAG_ID}"), 180, 2, af)
            dags = {d["dag_id"] for d in af.get("/dags", limit=100)["dags"]}
            unpaused = [d for d in args.dags.split(",") if d in dags]
            for dag_id in unpaused:
                af.patch(f"/dags/{dag_id}", {"is_paused": False})
            print(f"up in {time.time() - t_start:.0f} s; unpaused {', '.join(unpaused)}")
            t_unpause = time.time()
            wait_for(
                "the watcher's first poll",
                lambda: feeds.first_hit(FeedServer.CENC, t_unpause),
                240,
                1,
                af,
            )
            print(f"watcher polling {time.time() - t_unpause:.0f} s after the unpause")

            def warm() -> bool:
                return any(r["state"] == "success" for r in af.runs(DAG_ID, 5))

            wait_for("a first successful seismic_alerts run (warm-up)", warm, 180, 2, af)
            print(f"warm after {time.time() - t_start:.0f} s; publishing {args.events} events")
            cpu0, t_cpu0 = af.cpu_seconds(), time.time()

            for k in range(1, args.events + 1):
                pause = rng.uniform(*args.gap)
                time.sleep(pause)
                event_id = f"us7{tag}{k:03d}"
                t0 = time.time()
                feeds.publish(quake(event_id, t0, k), t0)
                sample = Sample(k, event_id, t0)
                samples.append(sample)
                with contextlib.suppress(TimeoutError):
                    sample.msg = wait_for(
                        f"a message naming {event_id}",
                        lambda eid=event_id: wecom.first_naming(eid),
                        args.timeout,
                        0.05,
                        af,
                    )
                sample.poll = feeds.first_hit(FeedServer.USGS, t0, status=200)
                if sample.msg is None:
                    print(f"event {k}: no message within {args.timeout:.0f} s")
                    continue
                find_run(af, unpaused, sample)
                wait_run_done(af, sample)
                sample.fired = fired_at(af, event_id)
                st = sample.stages()
                print(
                    f"event {k:>2} {event_id}: {sample.e2e:5.1f} s "
                    f"(poll {st['poll wait']:.1f} by {sample.poll.client if sample.poll else '-'}, "
                    f"run {sample.run.get('run_type', sample.delivered_by)})",
                    flush=True,
                )
            if af.alive():
                cpu = af.cpu_seconds()
                cpu = {k: v - cpu0.get(k, 0.0) for k, v in cpu.items()}
                wall = time.time() - t_cpu0
                print(
                    f"Airflow CPU while the events ran ({wall:.0f} s): "
                    + ", ".join(f"{k} {100 * v / wall:.0f}%" for k, v in sorted(cpu.items()))
                    + f" of one core (total {100 * sum(cpu.values()) / wall:.0f}%)"
                )
    except KeyboardInterrupt:
        print("\ninterrupted: stopping", file=sys.stderr)
    except Exception as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        if af is not None:
            print(f"airflow log: {af.log_path} (kept)", file=sys.stderr)
            args.keep = True
    finally:
        if af is not None:
            af.stop()
        feeds.stop()
        wecom.stop()
        if drop_pg is not None:
            with contextlib.suppress(Exception):
                drop_pg()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    if samples:
        report(samples, label)
        print(
            f"\nmessages received by the robot: {len(wecom.received)}; "
            f"feed hits: {len(feeds.hits)} "
            f"({sum(1 for h in feeds.hits if h.client == 'watcher')} by the watcher)"
        )
        if args.verbose:
            base = samples[0].t0
            for t, content in wecom.received:
                head = content.strip().splitlines()[0] if content.strip() else ""
                print(f"  {t - base:8.1f} s  {head[:100]}")
    return 0 if samples and all(s.msg is not None for s in samples) else 1


if __name__ == "__main__":
    sys.exit(main())
