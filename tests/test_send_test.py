"""`alerts send-test`: one test message through a configured account, the vendor's answer shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alerts.cli import main
from tests.simulators.wecom import WeComSimulator


@pytest.mark.parametrize(("key", "code", "ok"), [("robot-key-1", 0, True), ("wrong", 1, False)])
def test_send_test_reports_the_vendors_answer(
    alerts_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    key: str,
    code: int,
    ok: bool,
) -> None:
    with WeComSimulator() as sim:
        monkeypatch.setenv(
            "ALERTS_CHANNELS",
            json.dumps(
                [
                    {
                        "name": "duty-room",
                        "type": "wecom_bot",
                        "base_url": sim.url,
                        "credentials": {"key": key},
                        "recipients": ["duty-group"],
                    },
                ]
            ),
        )
        assert main(["send-test", "--channel", "duty-room"]) == code
        (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert row["recipient"] == "duty-group" and row["ok"] is ok
        if ok:
            assert sim.accepted[0]["content"].startswith("【测试】预警发布渠道测试")
        else:
            assert row["error_code"] == "93000" and not row["retryable"]


def test_send_test_names_the_configured_channels_when_one_is_unknown(
    alerts_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send-test", "--channel", "nope"]) == 2
    assert "configured: outbox" in capsys.readouterr().err
