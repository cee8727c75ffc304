"""`alerts render`: a message exactly as a channel would send it; fan-out per family."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path
from typing import Any

import pytest

from alerts.cli import main
from alerts.config import load_settings
from alerts.render import SHORT_BUDGET
from alerts.store import Store
from tests.simulators.aliyun_sms import AliyunSmsSimulator
from tests.simulators.smtp import SmtpSimulator
from tests.simulators.wecom import WeComSimulator
from tests.test_pipeline_weather import NOW, _forecast

SMS_CREDENTIALS = {
    "access_key_id": "LTAI-test",
    "access_key_secret": "secret-test",
    "sign_name": "预警中心",
    "template_code": "SMS_0001",
}


def _channels(
    wecom_url: str = "http://127.0.0.1:9", sms_url: str = "http://127.0.0.1:9", smtp_port: int = 9
) -> list[dict[str, Any]]:
    """A WeCom robot, an SMS account and an e-mail account (English); dummy credentials."""
    return [
        {"name": "outbox", "type": "outbox"},
        {
            "name": "duty-room",
            "type": "wecom_bot",
            "base_url": wecom_url,
            "credentials": {"key": "robot-key-1"},
            "recipients": ["duty-group"],
        },
        {
            "name": "sms",
            "type": "sms",
            "base_url": sms_url,
            "credentials": SMS_CREDENTIALS,
            "recipients": ["13900000001"],
        },
        {
            "name": "mail",
            "type": "email",
            "language": "en",
            "credentials": {"smtp_host": "127.0.0.1", "from_addr": "alerts@example.gov.cn"},
            "options": {"smtp_port": smtp_port, "starttls": False},
            "recipients": ["duty@example.org"],
        },
    ]


def _cycle(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    """One pipeline cycle issuing a yellow rainstorm warning; the alert's id."""
    yellow = _forecast(tmp_path, "a.json", {h: 12.5 for h in range(1, 5)})  # 50 mm in 4 h
    assert main(["pipeline", "--now", NOW.isoformat(), "--input", f"open-meteo={yellow}"]) == 0
    capsys.readouterr()
    assert main(["list", "--json"]) == 0
    (alert,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    return str(alert["id"])


def _render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["render", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _size(err: str) -> tuple[int, int | None]:
    size, limit = err.split()[0].split("/")
    return int(size), None if limit == "-" else int(limit)


@pytest.fixture
def stored(
    alerts_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    alert_id = _cycle(capsys, tmp_path)
    monkeypatch.setenv("ALERTS_CHANNELS", json.dumps(_channels()))  # configured after the cycle
    return alert_id


def test_render_a_stored_alert_for_a_wecom_robot(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _render(capsys, "--channel", "duty-room", stored)
    assert code == 0
    assert out.startswith("**【暴雨黄色预警】")
    assert "> 防御指南：" in out
    assert out.rstrip("\n").splitlines()[-1].startswith("[查看详情](http://localhost:8080/?alert=")
    content = out[:-1]  # the robot posts the content; print adds the newline
    assert _size(err) == (len(content.encode("utf-8")), 4096)
    assert "duty-room: wecom_bot, markdown family, zh-CN" in err


def test_render_a_stored_alert_for_sms_as_the_phone_shows_it(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _render(capsys, "--channel", "sms", stored)
    assert code == 0
    lines = out.rstrip("\n").splitlines()
    assert lines[0].startswith("【预警中心】【暴雨黄色预警】")
    assert "应急管理局预警发布中心发布暴雨黄色预警：" in lines[1]
    assert lines[-1].startswith("详情：http://localhost:8080/?alert=")
    assert _size(err) == (len(out.rstrip("\n")), 500)


def test_render_a_stored_alert_for_email_in_its_language(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _render(capsys, "--channel", "mail", stored)
    assert code == 0
    assert out.startswith("Rainstorm yellow warning (level III) for ")
    assert "Advice: " in out and "Issued 2026-07-20 08:00 (Beijing time)" in out
    assert _size(err) == (len(out), None)
    assert err.startswith(f"{len(out)}/-")
    # --lang overrides the channel's language
    code, out, err = _render(capsys, "--channel", "mail", "--lang", "zh-CN", stored)
    assert code == 0 and out.startswith("【暴雨黄色预警】") and "发布时间：" in out


def test_a_publication_identifier_renders_the_same(
    stored: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["show", stored, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    identifier = doc["versions"][-1]["publication"]
    by_alert = _render(capsys, "--channel", "sms", stored)
    by_publication = _render(capsys, "--channel", "sms", identifier)
    assert by_alert == by_publication


def test_render_an_alert_json_file(
    alerts_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ALERTS_CHANNELS", json.dumps(_channels()))
    doc = {
        "hazard": "rainstorm",
        "level": "red",
        "action": "issue",
        "sent": "2026-07-20T08:00:00+08:00",
        "expires": "2026-07-20T14:00:00+08:00",
        "facts": {
            "location_id": "530700",
            "location_name": "云南省丽江市",
            "variable": "rain_mm",
            "value": 82.4,
            "threshold": 50,
            "window_h": 3,
            "basis": "forecast",
            "reached_at": "2026-07-20T10:00:00+08:00",
        },
        "regions": [{"code": "530700", "name": "云南省丽江市"}],
    }
    path = tmp_path / "alert.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    code, out, err = _render(capsys, "--channel", "duty-room", str(path))
    assert code == 0
    assert out.startswith("**【暴雨红色预警】云南省丽江市**\n")
    assert "降雨量可达82.4毫米" in out
    assert "[查看详情](http://localhost:8080/?alert=rainstorm:preview:530700)" in out
    if _has_publicity():
        assert "> 温馨提示：" in out  # a July rainstorm in Lijiang has tips
    assert _size(err)[1] == 4096

    code, out, err = _render(capsys, "--channel", "sms", str(path))
    assert code == 0 and out.startswith("【预警中心】【暴雨红色预警】云南省丽江市\n")
    assert _size(err) == (len(out.rstrip("\n")), 500)

    code, out, err = _render(capsys, "--channel", "mail", str(path))
    assert code == 0 and out.startswith("Rainstorm red warning (level I) for 云南省丽江市\n")
    assert "rainfall may reach 82.4 mm within 3 hours" in out
    assert _size(err) == (len(out), None)


def test_render_explains_bad_input(
    stored: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _render(capsys, "--channel", "nope", stored)
    assert code == 2 and "configured: outbox, duty-room, sms, mail" in err
    code, _, err = _render(capsys, "--channel", "sms", "rainstorm:nothing:here")
    assert code == 2 and "no alert or publication" in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hazard": "rainstorm", "level": 2}))
    code, _, err = _render(capsys, "--channel", "sms", str(bad))
    assert code == 2 and "missing facts, sent" in err


def test_fan_out_renders_each_channel_in_its_family_and_language(
    alerts_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with (
        WeComSimulator() as wecom,
        AliyunSmsSimulator() as sms,
        SmtpSimulator() as smtp,
    ):
        assert isinstance(wecom, WeComSimulator) and isinstance(sms, AliyunSmsSimulator)
        monkeypatch.setenv("ALERTS_CHANNELS", json.dumps(_channels(wecom.url, sms.url, smtp.port)))
        _cycle(capsys, tmp_path)
        with Store(load_settings().resolved_store_url) as store:
            rows = {d.channel: d for d in store.deliveries()}
            bodies = {c: store.delivery_message(d.message_id).body for c, d in rows.items()}  # type: ignore[union-attr]
        assert {name: d.status for name, d in rows.items()} == dict.fromkeys(
            ("outbox", "duty-room", "sms", "mail"), "sent"
        )
        # what each vendor received is what `alerts render` shows
        assert bodies["outbox"].startswith("【暴雨黄色预警】")  # text, as before
        (robot,) = wecom.accepted
        assert robot["content"].startswith("**【暴雨黄色预警】")
        (text,) = sms.accepted
        assert text["params"]["content"].startswith("【暴雨黄色预警】")
        short = bodies["sms"].rstrip("\n").splitlines()  # the short family
        assert short[-1].startswith("详情：") and len("".join(short[:-1])) <= SHORT_BUDGET
        (mail,) = smtp.received
        plain = email.message_from_bytes(mail.data, policy=email.policy.default)
        assert plain["Subject"].startswith("Rainstorm yellow warning (level III) for ")
        assert rows["mail"].language == "en"
        alert_id = rows["duty-room"].alert_id
        for name, family_text in (("duty-room", robot["content"]), ("mail", bodies["mail"])):
            code, out, _ = _render(capsys, "--channel", name, alert_id)
            assert code == 0
            assert out.rstrip("\n") == family_text.rstrip("\n")


def _has_publicity() -> bool:
    try:
        import alerts.publicity  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True
