"""Shared fixtures: test data, an isolated configuration, stores on SQLite and
PostgreSQL, and a loopback HTTP server that serves recorded feed payloads."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
PG_ADMIN_URL = os.environ.get("ALERTS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pytest_configure(config: pytest.Config) -> None:
    """Point Airflow at a throwaway home before anything imports it.

    Tests never touch a developer's own Airflow database; the DAG tests
    migrate this one once per session.
    """
    import tempfile

    home = tempfile.mkdtemp(prefix="alerts-test-airflow-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
    # DAG tasks retry after 0.1 s instead of 15 s under dag.test()
    os.environ["ALERTS_AIRFLOW_RETRY_DELAY_S"] = "0.1"


@pytest.fixture(scope="session", autouse=True)
def _dag_test_survives_deadlines() -> None:
    """Work around apache/airflow#73428 (fix: PR #73430) in this process only.

    In Airflow 3.3.2, ``dag.test()`` of any DAG with a ``deadline`` crashes at the
    end of a successful run: it looks a deadline alert up by id with the
    serialized alert itself. Resolve such a lookup to an equivalent alert, as the
    fixed ``get_by_id`` does; the scheduler path (production) is unaffected.
    """
    try:
        from airflow.models.deadline_alert import DeadlineAlert
        from airflow.serialization.decoders import decode_deadline_alert
    except ImportError:  # Airflow not installed: the DAG tests skip
        return
    original = DeadlineAlert.get_by_id.__func__  # type: ignore[attr-defined]

    def get_by_id(cls, ident, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(ident, dict):
            alert = decode_deadline_alert(ident)
            return cls(reference=alert.reference.serialize_reference(), interval=0, callback_def={})
        return original(cls, ident, **kwargs)

    DeadlineAlert.get_by_id = classmethod(get_by_id)  # type: ignore[method-assign,assignment]


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def alerts_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean ALERTS_* environment with its home (and SQLite store) under tmp_path."""
    for key in list(os.environ):
        if key.startswith("ALERTS_") and key not in (
            "ALERTS_TEST_PG",
            "ALERTS_AIRFLOW_RETRY_DELAY_S",
        ):
            monkeypatch.delenv(key)
    home = tmp_path / "alerts-home"
    monkeypatch.setenv("ALERTS_HOME", str(home))
    # Orange and red weather wait for a duty officer by default; tests of grading,
    # lifecycle and delivery publish at once. Approval tests set their own policy.
    monkeypatch.setenv("ALERTS_APPROVAL__LEVELS", "[]")
    return home


@pytest.fixture
def national_only_rules(alerts_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Rules without regional intensity warnings: one alert per earthquake, for delivery tests."""
    import yaml

    from alerts.criteria import packaged_rules_dir

    data = yaml.safe_load((packaged_rules_dir() / "earthquake.yaml").read_text(encoding="utf-8"))
    data.pop("intensity")
    folder = alerts_env.parent / "rules-national-only"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "earthquake.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    monkeypatch.setenv("ALERTS_RULES_DIR", str(folder))
    return folder


def _pg_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure means: skip, and say why
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"


_PG_SKIP: list[str | None] = []


def pg_skip_reason() -> str | None:
    if not _PG_SKIP:
        _PG_SKIP.append(_pg_reachable())
    return _PG_SKIP[0]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    reason = pg_skip_reason()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"alerts_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a store test on SQLite and again on PostgreSQL (skipped if unreachable)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


@dataclass
class FeedServer:
    """Serves recorded payloads on loopback, with ETag / 304 like the USGS CDN."""

    base_url: str = ""
    routes: dict[str, bytes] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)
    delay_s: dict[str, float] = field(default_factory=dict)
    gzip: set[str] = field(default_factory=set)
    hits: list[str] = field(default_factory=list)

    def serve(
        self,
        path: str,
        body: bytes | Path,
        status: int = 200,
        *,
        fail_first: int = 0,
        delay_s: float = 0.0,
        gzip: bool = False,
    ) -> str:
        """Serve ``body`` at ``path``; the first ``fail_first`` requests get a 503."""
        self.routes[path] = body.read_bytes() if isinstance(body, Path) else body
        self.status[path] = status
        self.fail_first[path] = fail_first
        self.delay_s[path] = delay_s
        if gzip:
            self.gzip.add(path)
        else:
            self.gzip.discard(path)
        return self.base_url + path


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server_state = FeedServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            server_state.hits.append(self.path)
            if self.path not in server_state.routes:  # routes may ignore the query
                self.path = self.path.split("?", 1)[0]
            body = server_state.routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            if server_state.delay_s.get(self.path):
                time.sleep(server_state.delay_s[self.path])
            if server_state.fail_first.get(self.path, 0) > 0:
                server_state.fail_first[self.path] -= 1
                self.send_error(503, "Service Unavailable")
                return
            status = server_state.status.get(self.path, 200)
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if status == 200 and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if self.path in server_state.gzip:
                body = gzip.compress(body)
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Migrate the session's throwaway Airflow metadata database once."""
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return os.environ["AIRFLOW_HOME"]


@pytest.fixture(scope="session")
def dagbag(airflow_db: str):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))
