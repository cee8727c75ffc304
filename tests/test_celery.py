"""The production shape, end to end: Airflow on the CeleryExecutor with PostgreSQL
(metadata, Celery results and the alert store) and Redis (the broker).

Started as subprocesses, like the services of docker-compose.yml: the
api-server (UI, REST and the execution API the workers run tasks through), the
scheduler, the dag-processor and one Celery worker. Each DAG in ``DAG_IDS`` is
triggered through the REST API and must succeed, every task that runs being run
by the Celery worker: seismic_alerts delivers the Dingri M7.1 red alert, and
publish_alerts takes a pending red rainstorm warning through the duty officer's
approval (the human-in-the-loop task times out after 3 s and the scheduler's
AWAITING_INPUT sweep applies the default, publish), then delivers it. Each is
delivered exactly once, also after the whole runs are cleared and run again.

Skipped, with the reason, unless PostgreSQL (``ALERTS_TEST_PG``, default
127.0.0.1:5432) and Redis (``ALERTS_TEST_REDIS``, default 127.0.0.1:6379, db 5,
where the stack's broker keys carry their own prefix and are deleted afterwards)
answer. tests/test_compose.py checks that docker-compose.yml configures the
same shape (``COMPOSE_COMMANDS``, ``shape_env``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from tests.alertkit import CHENGDU, rain
from tests.conftest import DATA, PG_ADMIN_URL, ROOT, FeedServer, pg_skip_reason
from tests.feedtools import usgs_features, usgs_feed

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

REDIS_URL = os.environ.get("ALERTS_TEST_REDIS", "redis://127.0.0.1:6379/5")

# The DAGs run end to end, in this order (each triggered once, then cleared and rerun).
DAG_IDS = ("seismic_alerts", "publish_alerts")
# The Airflow command of each long-running compose service this test starts.
# (compose also runs airflow-triggerer, for event-driven schedules: manual
# triggers do not need it.)
COMPOSE_COMMANDS = {
    "airflow-apiserver": ["api-server"],
    "airflow-scheduler": ["scheduler"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-worker": ["celery", "worker"],
}
SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)

RUN_TIMEOUT_S = 180
START_TIMEOUT_S = 90
DINGRI_NATIONAL = "earthquake:usgs:us6000pi9w:CN"
RAIN_RED = f"rainstorm:rainstorm:{CHENGDU[0]}:{CHENGDU[0]}"  # the alert id of rain(...)
# A mapped task expanded over an empty list: its unmapped placeholder is
# skipped; on a rerun, the map indexes of the earlier expansion are removed.
NOTHING_MAPPED = {"skipped", "removed"}

TiKey = tuple[str, int]  # (task_id, map_index)

T = TypeVar("T")


def shape_env(
    *, postgres: str, airflow_db: str, store_db: str, broker: str, api: str, jwt_secret: str
) -> dict[str, str]:
    """The settings every component must share (docker-compose.yml's common env).

    ``postgres`` is ``user[:password]@host[:port]``, ``broker`` a redis:// URL
    and ``api`` the api-server's ``host:port``.
    """
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        # psycopg (3) is Airflow 3's default PostgreSQL driver; psycopg2 is not installed.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://{postgres}/{airflow_db}",
        # The async engine (api-server) too: Airflow would derive postgresql+asyncpg otherwise.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+psycopg://{postgres}/{airflow_db}",
        # Celery's SQLAlchemy result backend would pick psycopg2 for a bare postgresql://.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg://{postgres}/{airflow_db}",
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{api}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "ALERTS_STORE_URL": f"postgresql+psycopg://{postgres}/{store_db}",
    }


def _redis_skip_reason() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3).ping()
        return None
    except Exception as exc:  # any failure means: skip, and say why
        return f"Redis not reachable at {REDIS_URL}: {exc}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(
    what: str, probe: Callable[[], T | None], timeout_s: float, check: Callable[[], None]
) -> T:
    """Poll ``probe`` until it returns something other than None; ``check`` fails fast."""
    deadline = time.monotonic() + timeout_s
    while True:
        check()
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(1)


@dataclass
class Stack:
    """The Airflow processes, their logs and a REST client for the api-server."""

    home: Path
    env: dict[str, str]
    api: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    token: str = ""

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def run(self, *args: str, timeout_s: float = 300) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        assert proc.returncode == 0, (
            f"airflow {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )

    def start(self, name: str, *args: str) -> None:
        with self.log(name).open("wb") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped with its children
            )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # anything left in the group (a worker's children, a gunicorn worker)
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)

    def tail(self, name: str, chars: int = 6000) -> str:
        path = self.log(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def dump(self) -> None:
        for name in self.procs:
            print(f"\n===== {name} ({self.log(name)}) =====\n{self.tail(name)}")
        for path in sorted((self.home / "logs").glob("dag_id=*/**/*.log")):
            print(f"\n===== {path.relative_to(self.home)} =====")
            print(path.read_text(errors="replace")[-4000:])

    # REST ---------------------------------------------------------------

    def login(self) -> None:
        def token() -> str | None:
            try:
                response = requests.post(
                    f"http://{self.api}/auth/token",
                    json={"username": "admin", "password": "admin"},
                    timeout=10,
                )
            except requests.ConnectionError:
                return None
            return response.json()["access_token"] if response.ok else None

        self.token = _wait("the api-server", token, START_TIMEOUT_S, self.check_alive)

    def rest(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"http://{self.api}/api/v2{path}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            **kwargs,
        )

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.rest(method, path, **kwargs)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def parsed(self, dag_id: str) -> bool | None:
        return self.rest("GET", f"/dags/{dag_id}").ok or None

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self.ok(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )
        return list(body["task_instances"])

    def mapped_tasks(self, dag_id: str) -> set[str]:
        return {
            t["task_id"] for t in self.ok("GET", f"/dags/{dag_id}/tasks")["tasks"] if t["is_mapped"]
        }

    def wait_for_success(
        self, dag_id: str, run_id: str, before: dict[TiKey, int] | None = None
    ) -> dict[TiKey, dict[str, Any]]:
        """The run's task instances by (task_id, map_index), once the run succeeded.

        Every task instance succeeded, except those of a mapped task expanded
        over an empty list (``_ran``). With ``before`` (the try numbers of the
        run's previous pass), every task instance that ran again is at a later try.
        """
        mapped = self.mapped_tasks(dag_id)

        def done() -> dict[TiKey, dict[str, Any]] | None:
            run = self.ok("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            assert run["state"] != "failed", f"{dag_id} {run_id} failed"
            if run["state"] != "success":
                return None
            tis = {
                (ti["task_id"], ti["map_index"]): ti for ti in self.task_instances(dag_id, run_id)
            }
            ran = _ran(tis, mapped)  # fails on any other state of a finished run
            if before is not None and any(
                ti["try_number"] <= before.get(key, 0) for key, ti in tis.items() if key in ran
            ):
                return None  # not the rerun's outcome yet
            return tis

        return _wait(f"{dag_id} {run_id} to succeed", done, RUN_TIMEOUT_S, self.check_alive)


def _ran(tis: dict[TiKey, dict[str, Any]], mapped: set[str]) -> set[TiKey]:
    """The task instances of a finished run that ran (and succeeded).

    The only other outcome accepted: a mapped task expanded over an empty
    list (e.g. ``deliver`` when no channel had rows due at that moment, or
    ``approve`` when nothing waited for the duty officer), none of whose task
    instances ran. A failed, upstream-failed or otherwise skipped task fails.
    """
    ran = set()
    by_task: dict[str, list[dict[str, Any]]] = {}
    for key, ti in tis.items():
        by_task.setdefault(key[0], []).append(ti)
        if ti["state"] == "success":
            ran.add(key)
    for task_id, group in by_task.items():
        states = sorted({ti["state"] for ti in group})
        if states == ["success"]:
            continue
        empty = task_id in mapped and set(states) <= NOTHING_MAPPED
        empty = empty and all(ti["map_index"] >= 0 for ti in group if ti["state"] == "removed")
        empty = empty and all(ti["map_index"] == -1 for ti in group if ti["state"] == "skipped")
        assert empty, f"{task_id}: {[(ti['map_index'], ti['state']) for ti in group]}"
    return ran


@pytest.fixture
def celery_stack(
    request: pytest.FixtureRequest, tmp_path: Path, feed_server: FeedServer
) -> Iterator[Stack]:
    reason = pg_skip_reason() or _redis_skip_reason()
    if reason:
        pytest.skip(reason)
    import psycopg
    import redis

    from alerts.store import Store

    suffix = uuid.uuid4().hex[:10]
    broker_prefix = f"alerts-celery-{suffix}:"
    airflow_db, store_db = f"airflow_celery_{suffix}", f"alerts_celery_{suffix}"
    home = tmp_path / "airflow"
    home.mkdir()
    # Fixed login for the simple auth manager (it reads this file instead of generating one).
    (home / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({"admin": "admin"}), encoding="utf-8"
    )
    api = f"127.0.0.1:{_free_port()}"
    postgres = PG_ADMIN_URL.removeprefix("postgresql://").rsplit("/", 1)[0]
    now = datetime.now(UTC)
    china = usgs_features(DATA / "usgs" / "china_dingri_4.5_day.geojson")
    feed_url = feed_server.serve(
        "/feed.geojson", usgs_feed(china, newest=now - timedelta(minutes=2))
    )

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ALERTS_"))}
    env.update(
        shape_env(
            postgres=postgres,
            airflow_db=airflow_db,
            store_db=store_db,
            broker=REDIS_URL,
            api=api,
            jwt_secret=uuid.uuid4().hex,
        )
    )
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
            # Only the runs this test triggers: no cron runs competing for max_active_runs.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # Free ports, so that a developer's own Airflow does not collide.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
            "ALERTS_HOME": str(tmp_path / "alerts-home"),
            "ALERTS_FEEDS__USGS_URL": feed_url,
            # A failing task retries after 1 s, 2 s, 4 s (default 15 s, doubling):
            # a task that keeps failing fails the run well within RUN_TIMEOUT_S.
            "ALERTS_AIRFLOW_RETRY_DELAY_S": "1",
            # This stack's own keys in the shared Redis database: test runs in
            # parallel neither take each other's tasks nor flush each other's queue.
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": broker_prefix,
            # The product's approval policy (orange and red weather wait; no
            # ALERTS_APPROVAL__LEVELS here), with red's publish-by-default after
            # 0.05 min = 3 s instead of 10 min ...
            "ALERTS_APPROVAL__TIMEOUT_MIN": '{"red": 0.05}',
            # ... applied by the scheduler's AWAITING_INPUT sweep, every 2 s (default 15).
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
        }
    )
    stack = Stack(home=home, env=env, api=api)
    failures = request.session.testsfailed
    completed = False
    broker = redis.Redis.from_url(REDIS_URL)
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for name in (airflow_db, store_db):
                conn.execute(f'CREATE DATABASE "{name}"')
        Store(env["ALERTS_STORE_URL"]).close()  # migrated once, before tasks open it
        stack.run("db", "migrate")
        stack.start("api-server", "api-server", "--host", "127.0.0.1", "--port", api.split(":")[1])
        stack.start("scheduler", "scheduler")
        stack.start("dag-processor", "dag-processor")
        stack.start(
            "worker",
            "celery",
            "worker",
            "--concurrency",
            "2",
            "--without-mingle",
            "--without-gossip",
        )
        stack.login()
        yield stack
        completed = True
    finally:
        try:
            stack.stop()
            if not completed or request.session.testsfailed > failures:
                stack.dump()  # shown with the failure (captured output)
        finally:
            for key in broker.scan_iter(match=f"{broker_prefix}*"):
                broker.delete(key)
            broker.close()
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                for name in (airflow_db, store_db):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _outbox(stack: Stack) -> list[tuple[str, str, int, str, str]]:
    from alerts.store import Store

    with Store(stack.env["ALERTS_STORE_URL"]) as store:
        return sorted(
            (m.delivery_key, m.alert_id, m.version, m.recipient, m.subject) for m in store.outbox()
        )


def _assert_ran_on_celery(stack: Stack, dag_id: str, run_id: str, ran: set[TiKey]) -> None:
    """Every task instance in ``ran`` was sent through Celery and run by our worker.

    The scheduler pre-assigns each task instance's Celery task id
    (``external_executor_id``); the worker logs it when it receives the task and
    the result backend (``celery_taskmeta``, in the metadata database) records
    its outcome, a moment after the task instance itself reported success.
    """
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(stack.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).set(drivername="postgresql")

    def results() -> list[tuple[str, int, str | None, str | None, str | None]] | None:
        with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
            rows = conn.execute(
                "SELECT ti.task_id, ti.map_index, ti.external_executor_id, ti.queue, tm.status"
                " FROM task_instance ti LEFT JOIN celery_taskmeta tm"
                " ON tm.task_id = ti.external_executor_id"
                " WHERE ti.dag_id = %s AND ti.run_id = %s",
                (dag_id, run_id),
            ).fetchall()
        rows = [row for row in rows if (row[0], row[1]) in ran]
        return rows if len(rows) == len(ran) and all(row[4] == "SUCCESS" for row in rows) else None

    rows = _wait(f"Celery results of {dag_id} {run_id}", results, 30, stack.check_alive)
    worker_log = stack.log("worker").read_text(errors="replace")
    for task_id, map_index, celery_id, queue, _ in rows:
        where = f"{task_id}[{map_index}]"
        assert celery_id and queue == "default", (where, celery_id, queue)
        assert celery_id in worker_log, f"{where}: Celery task {celery_id} not in the worker log"


def _pending_red_rain(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> str:
    """Issue a red rainstorm warning in the stack's store, as weather_alerts would:
    its publication waits for the duty officer. Returns the publication's identifier."""
    from alerts.config import load_settings
    from alerts.lifecycle import Decision
    from alerts.model import Action, Level
    from alerts.pipeline import Runtime

    for key in list(os.environ):  # exactly the stack's ALERTS_* settings
        if key.startswith("ALERTS_") and key != "ALERTS_TEST_PG":
            monkeypatch.delenv(key)
    for key, value in stack.env.items():
        if key.startswith("ALERTS_"):
            monkeypatch.setenv(key, value)
    now = datetime.now(UTC)
    warning = rain(Level.RED, now, CHENGDU)
    rt = Runtime.from_settings(load_settings())
    try:
        rt.store.apply(
            [Decision(Action.ISSUE, RAIN_RED, warning, None, "t")],
            now=rt.clock(),
            publisher=rt.publisher("test"),
        )
        (pub,) = rt.store.publications()
    finally:
        rt.close()
    assert (pub.lead_alert_id, pub.approval) == (RAIN_RED, "pending")
    return pub.identifier


def test_dags_run_on_celery_and_deliver_once(
    celery_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = celery_stack
    started = time.monotonic()
    rain = _pending_red_rain(stack, monkeypatch)  # before publish_alerts is triggered
    runs: dict[str, str] = {}
    for dag_id in DAG_IDS:
        _wait(
            f"{dag_id} to be parsed",
            partial(stack.parsed, dag_id),
            START_TIMEOUT_S,
            stack.check_alive,
        )
        # Trigger first, then unpause: works for a cron schedule and for an
        # asset-or-time one alike, and this run is the one that goes first.
        run = stack.ok("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {}})
        runs[dag_id] = run["dag_run_id"]
        stack.ok("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    tries: dict[str, dict[TiKey, int]] = {}
    for dag_id, run_id in runs.items():
        tis = stack.wait_for_success(dag_id, run_id)
        tries[dag_id] = {key: ti["try_number"] for key, ti in tis.items()}
        _assert_ran_on_celery(stack, dag_id, run_id, _ran(tis, stack.mapped_tasks(dag_id)))
        if dag_id == "publish_alerts":  # the duty officer was asked, and the timeout answered
            assert tis["approve", 0]["state"] == "success", tis["approve", 0]
    first = _outbox(stack)
    print(f"first runs done after {time.monotonic() - started:.0f} s")

    national = [m for m in first if m[1] == DINGRI_NATIONAL]
    assert len(national) == 1, first
    _, _, version, recipient, subject = national[0]
    assert (version, recipient) == (1, "public")
    assert "红色" in subject and "7.1" in subject, subject
    assert len({m[0] for m in first}) == len(first)

    red_rain = [m for m in first if m[1] == RAIN_RED]
    assert len(red_rain) == 1, first
    assert red_rain[0][3] == "public" and "暴雨红色预警" in red_rain[0][4], red_rain
    from alerts.store import Store

    with Store(stack.env["ALERTS_STORE_URL"]) as store:
        pub = store.publication(rain)
    assert pub is not None
    assert (pub.approval, pub.approval_actor) == ("approved", "timeout-default")

    # Clear every run completely: all tasks run again (a decided publication is
    # not asked about again, so approve and the deliveries may expand over
    # nothing this time), and nothing is delivered twice.
    for dag_id, run_id in runs.items():
        cleared = stack.ok(
            "POST",
            f"/dags/{dag_id}/clearTaskInstances",
            json={"dry_run": False, "dag_run_id": run_id, "only_failed": False},
        )
        assert {ti["task_id"] for ti in cleared["task_instances"]} == {
            task_id for task_id, _ in tries[dag_id]
        }
    for dag_id, run_id in runs.items():
        tis = stack.wait_for_success(dag_id, run_id, before=tries[dag_id])
        ran = _ran(tis, stack.mapped_tasks(dag_id))
        assert ran, f"{dag_id}: nothing ran again"
        _assert_ran_on_celery(stack, dag_id, run_id, ran)
    assert _outbox(stack) == first
    print(f"cleared runs done after {time.monotonic() - started:.0f} s")
