"""A real `airflow standalone` and a real browser (Debian's chromium, driven by Playwright).

Skipped, with the reason, when chromium or Playwright is missing
(`scripts/test.sh` installs chromium on a Debian machine where it can).
Screenshots go to ``ALERTS_TEST_ARTIFACTS`` (default ``test-artifacts/`` in
the repository, ignored by git).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = os.environ.get("ALERTS_TEST_CHROMIUM", "/usr/bin/chromium")
USERS = {"admin": ("admin", "admin"), "duty": ("duty", "op"), "watch": ("watch", "viewer")}
START_TIMEOUT_S = 180


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"chromium not installed ({CHROMIUM}); `apt-get install chromium` or scripts/test.sh"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e .[test])"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Standalone:
    url: str
    env: dict[str, str]
    home: Path
    log: Path

    def token(self, user: str) -> str:
        name, _ = USERS[user]
        req = urllib.request.Request(
            f"{self.url}/auth/token",
            data=json.dumps({"username": name, "password": name}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return str(json.loads(resp.read())["access_token"])

    def api(self, method: str, path: str, user: str = "admin", body: Any = None) -> Any:
        req = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.token(user)}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("ALERTS_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def standalone_env() -> dict[str, str]:
    """Extra environment for the module's standalone (a test module overrides this)."""
    return {}


@pytest.fixture(scope="module")
def standalone(
    tmp_path_factory: pytest.TempPathFactory, standalone_env: dict[str, str]
) -> Iterator[Standalone]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("standalone")
    home, alerts_home = base / "airflow", base / "alerts"
    home.mkdir()
    alerts_home.mkdir()
    (home / "simple_auth_manager_passwords.json.generated").write_text(
        json.dumps({name: name for name, _ in USERS.values()})
    )
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ALERTS_"))}
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                f"{n}:{r}" for n, r in USERS.values()
            ),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            # only the runs the tests trigger
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
            "ALERTS_HOME": str(alerts_home),
            "ALERTS_AIRFLOW_RETRY_DELAY_S": "1",
            # the earthquake watcher polls; never the internet from a test
            "ALERTS_FEEDS__USGS_URL": "http://127.0.0.1:9/usgs.geojson",
            "ALERTS_FEEDS__CENC_URL": "http://127.0.0.1:9/cenc.json",
        }
    )
    env.update(standalone_env)
    log = base / "standalone.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["airflow", "standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"airflow standalone exited:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as r:
                    health = json.loads(r.read())
                if health.get("scheduler", {}).get("status") == "healthy":
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            raise RuntimeError(f"airflow standalone not up in time:\n{log.read_text()[-4000:]}")
        yield Standalone(url, env, home, log)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


def login(browser: Any, standalone: Standalone, user: str) -> Any:
    """A browser page logged in to the Airflow UI as ``user``."""
    name, _ = USERS[user]
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{standalone.url}/", wait_until="networkidle")
    page.fill("input[name='username']", name)
    page.fill("input[name='password']", name)
    page.click("button[type='submit']")
    page.wait_for_url(lambda u: "/auth/login" not in u and "login" not in u, timeout=60_000)
    return page
