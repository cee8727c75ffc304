"""`alerts deliveries`, `alerts resend` and `alerts dispatch` on a failing, then fixed, channel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.cli import main
from tests.simulators.base import Answer
from tests.simulators.webhook import WebhookSimulator
from tests.test_pipeline_weather import NOW, _forecast


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]


def test_a_dead_letter_is_listed_and_resent_once_fixed(
    alerts_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with WebhookSimulator() as hook:
        assert isinstance(hook, WebhookSimulator)
        channel = {
            "name": "hook",
            "type": "webhook",
            "recipients": ["duty-room"],
            "options": {"url": hook.endpoint},
            "credentials": {"secret": hook.secret},
        }
        monkeypatch.setenv("ALERTS_CHANNELS", json.dumps([channel]))
        hook.inject(Answer(410, {"error": "gone"}))  # fatal: the receiver refuses
        yellow = _forecast(tmp_path, "a.json", {h: 12.5 for h in range(1, 5)})
        assert main(["pipeline", "--now", NOW.isoformat(), "--input", f"open-meteo={yellow}"]) == 0
        (summary,) = _lines(capsys)
        assert summary["dead"] == 1 and hook.accepted == []

        assert main(["deliveries", "--status", "dead", "--json"]) == 0
        (dead,) = _lines(capsys)
        assert (dead["channel"], dead["error_code"]) == ("hook", "410")
        identifier = dead["key"].split("/", 1)[0]

        assert (
            main(["resend", identifier, "--failed", "--reason", "receiver fixed", "--by", "li"])
            == 0
        )
        (resent,) = _lines(capsys)
        assert resent == {
            "identifier": identifier,
            "mode": "failed",
            "deliveries": 1,
            "actor": "operator:li",
            "delivered": 1,
        }
        assert len(hook.accepted) == 1
        # nothing failed any more: a second --failed resend creates nothing
        assert main(["resend", identifier, "--failed", "--reason", "again"]) == 0
        assert _lines(capsys)[0]["deliveries"] == 0

        assert main(["deliveries", "--summary", "--json"]) == 0
        assert _lines(capsys) == [{"hook": {"dead": 1, "sent": 1}}]
        assert main(["resend", identifier, "--to", "nobody", "--reason", "x"]) == 2
        assert "CHANNEL:ADDRESS" in capsys.readouterr().err


def test_dispatch_until_idle_waits_for_retries_then_stops(
    alerts_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with WebhookSimulator() as hook:
        assert isinstance(hook, WebhookSimulator)
        channel = {
            "name": "hook",
            "type": "webhook",
            "recipients": ["duty-room"],
            "options": {"url": hook.endpoint},
            "credentials": {"secret": hook.secret},
        }
        monkeypatch.setenv("ALERTS_CHANNELS", json.dumps([channel]))
        monkeypatch.setenv("ALERTS_DELIVERY__BACKOFF_S", "0.2")
        hook.inject(Answer(503, {"error": "busy"}), Answer(503, {"error": "busy"}))
        yellow = _forecast(tmp_path, "a.json", {h: 12.5 for h in range(1, 5)})
        assert main(["pipeline", "--now", NOW.isoformat(), "--input", f"open-meteo={yellow}"]) == 0
        assert _lines(capsys)[0]["retry"] == 1
        assert main(["dispatch", "--until-idle", "--interval", "0.1", "--worker", "w1"]) == 0
        out = _lines(capsys)
        assert out[-1]["worker"].startswith("w1@")
        assert out[-1] == {
            "worker": out[-1]["worker"],
            "total": {
                "sent": 1,
                "retry": 1,
                "dead": 0,
                "unknown": 0,
                "confirmed": 0,
                "calls": 2,
                "deactivated": 0,
            },
        }
        assert len(hook.accepted) == 1
