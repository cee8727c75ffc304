"""Exactly once through crashes and vendor faults, with real worker processes.

Each test fans one provincial red warning out to thousands of SMS
subscribers in this process, then runs ``alerts dispatch`` workers as
separate processes against the Aliyun SMS simulator (a loopback server in
this process, so it outlives any worker). The simulator counts what every
number received: the assertion is always "each number exactly once".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.cli import main
from alerts.config import load_settings
from alerts.lifecycle import Decision
from alerts.model import Action, Level
from alerts.pipeline import Runtime
from alerts.store import Store
from tests.alertkit import alert_id, rain
from tests.simulators.aliyun_sms import AliyunSmsSimulator

NOW = datetime.now(UTC).replace(microsecond=0)  # the simulator checks timestamps: real time
ALERTS = str(Path(sys.executable).with_name("alerts"))


def _numbers(n: int, start: int = 0) -> list[str]:
    return [f"139{i:08d}" for i in range(start, start + n)]


def _sms_channel(sim: AliyunSmsSimulator, **extra: object) -> dict[str, object]:
    return {
        "name": "sms",
        "type": "sms",
        "recipients": [],
        "base_url": sim.url,
        "max_attempts": 50,
        "timeout_s": 5,
        "credentials": {
            "access_key_id": "LTAI-test",
            "access_key_secret": "secret-test",
            "sign_name": "预警中心",
            "template_code": "SMS_0001",
        },
        **extra,
    }


@pytest.fixture
def sim() -> Iterator[AliyunSmsSimulator]:
    with AliyunSmsSimulator() as s:
        assert isinstance(s, AliyunSmsSimulator)
        yield s


def _environment(
    alerts_env: Path, store_url: str, channel: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    values = {
        "ALERTS_STORE_URL": store_url,
        "ALERTS_CHANNELS": json.dumps([channel]),
        "ALERTS_DELIVERY__BACKOFF_S": "0.05",
        "ALERTS_DELIVERY__BACKOFF_MAX_S": "0.2",
        "ALERTS_DELIVERY__LEASE_S": "120",
        "ALERTS_APPROVAL__LEVELS": "[]",  # red weather publishes at once here
        "ALERTS_DELIVERY__CONFIRM_DELAY_S": "0.5",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return {**os.environ, **values}


def _publish_red_to(numbers: list[str], *, bad: list[str] = ()) -> int:  # type: ignore[assignment]
    """Subscribe the numbers to Sichuan, issue a red rainstorm there, fan it out."""
    rt = Runtime.from_settings(load_settings(), clock=lambda: NOW)
    rows = [
        {
            "name": f"s{i}",
            "channel": "sms",
            "address": n,
            "areas": ["51"],
            "hazards": [],
            "min_level": 1,
            "source": "csv",
        }
        for i, n in enumerate([*numbers, *bad])
    ]
    rt.store.upsert_subscribers(rows, now=NOW)
    w = rain(Level.RED, NOW, hours=6)
    rt.store.apply(
        [Decision(Action.ISSUE, alert_id(w), w, None, "t")],
        now=NOW,
        publisher=rt.publisher("test"),
    )
    from alerts.delivery import fan_out

    created = fan_out(rt.store, rt.renderer, rt.settings.channels, now=NOW)
    rt.close()
    return created


def _worker(env: dict[str, str], name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ALERTS, "dispatch", "--until-idle", "--interval", "0.1", "--worker", name],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _total(proc: subprocess.Popen[str], timeout: float = 240) -> dict[str, int]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1])["total"])


def _statuses(store_url: str) -> dict[str, int]:
    with Store(store_url) as store:
        counts: dict[str, int] = {}
        for (_, status), n in store.delivery_counts().items():
            counts[status] = counts.get(status, 0) + n
        return counts


def test_a_worker_killed_mid_send_is_recovered_without_a_second_message(
    alerts_env: Path, tmp_path: Path, sim: AliyunSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    env = _environment(alerts_env, url, _sms_channel(sim), monkeypatch)
    numbers = _numbers(10_000)
    assert _publish_red_to(numbers) == 10_000
    sim.hold_after = 4  # the vendor takes the 4th call; the worker never sees the answer
    first = _worker(env, "first")
    assert sim.held.wait(120), "the worker never reached the 4th call"
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert len(sim.accepted) == 4  # 4,000 sent, 1,000 of them unrecorded in the ledger
    sim.release.set()

    second = _worker(env, "second")
    total = _total(second)
    # the abandoned batch was confirmed by its OutId (QuerySendDetails), not resent
    assert total["confirmed"] == 1000 and total["sent"] == 6000 + 1000
    received = sim.received_counts()
    assert set(received) == set(numbers) and set(received.values()) == {1}
    assert _statuses(url) == {"sent": 10_000}


def test_retryable_faults_deliver_everyone_once_and_fatal_ones_are_dead_lettered(
    alerts_env: Path,
    tmp_path: Path,
    sim: AliyunSmsSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path / 'faults.db'}"
    env = _environment(alerts_env, url, _sms_channel(sim, batch_size=100), monkeypatch)
    numbers = _numbers(10_000)
    bad = ["12345", "1390000000x"]  # legacy rows that were never valid numbers
    assert _publish_red_to(numbers, bad=bad) == 10_002
    sim.fail_rate = 0.3
    total = _total(_worker(env, "w"))
    assert sim.failed >= 15  # about 30 % of ~140 calls failed with isp.SYSTEM_ERROR
    received = sim.received_counts()
    assert set(received) == set(numbers) and set(received.values()) == {1}
    assert total["sent"] == 10_000 and total["dead"] == 2
    assert _statuses(url) == {"sent": 10_000, "dead": 2}
    assert main(["deliveries", "--status", "dead", "--json"]) == 0
    dead = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {(d["recipient"], d["error_code"]) for d in dead} == {
        (b, "isv.MOBILE_NUMBER_ILLEGAL") for b in bad
    }


def test_an_account_fault_dead_letters_everyone_until_fixed_and_resent(
    alerts_env: Path,
    tmp_path: Path,
    sim: AliyunSmsSimulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path / 'account.db'}"
    wrong = _sms_channel(sim)
    wrong["credentials"] = {**wrong["credentials"], "template_code": "SMS_9999"}  # type: ignore[dict-item]
    env = _environment(alerts_env, url, wrong, monkeypatch)
    numbers = _numbers(2_000)
    _publish_red_to(numbers)
    total = _total(_worker(env, "w"))
    assert total["dead"] == 2_000 and sim.accepted == []
    assert main(["deliveries", "--summary", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"sms": {"dead": 2000}}

    # the operator fixes the template code and resends the failed ones
    _environment(alerts_env, url, _sms_channel(sim), monkeypatch)
    (identifier,) = {d.key.split("/", 1)[0] for d in Store(url).deliveries()}
    assert main(["resend", identifier, "--failed", "--reason", "template fixed"]) == 0
    assert json.loads(capsys.readouterr().out)["delivered"] == 2_000
    received = sim.received_counts()
    assert set(received) == set(numbers) and set(received.values()) == {1}


@pytest.mark.postgres
def test_four_dispatchers_in_parallel_on_postgresql_send_nothing_twice(
    alerts_env: Path, pg_url: str, sim: AliyunSmsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _environment(alerts_env, pg_url, _sms_channel(sim, batch_size=50), monkeypatch)
    numbers = _numbers(10_000)
    assert _publish_red_to(numbers) == 10_000
    sim.fail_rate = 0.1  # retries interleave with fresh claims
    workers = [_worker(env, f"w{i}") for i in range(4)]
    totals = [_total(w) for w in workers]
    received = sim.received_counts()
    assert set(received) == set(numbers) and set(received.values()) == {1}
    assert sum(t["sent"] for t in totals) == 10_000
    assert sum(1 for t in totals if t["calls"]) >= 2, totals  # they did share the work
    assert _statuses(pg_url) == {"sent": 10_000}
