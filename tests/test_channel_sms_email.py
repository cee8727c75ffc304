"""Aliyun SMS and SMTP e-mail channels against their loopback simulators."""

from __future__ import annotations

import email
import email.policy
import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import requests

from alerts.channels import Message, Recipient, SendResult, build_channel
from alerts.channels.email import render_html
from alerts.channels.sms import fit, segments, sign
from alerts.config import ChannelSettings, ConfigError
from tests.simulators.aliyun_sms import AliyunSmsSimulator
from tests.simulators.base import Answer
from tests.simulators.smtp import SmtpSimulator

NOW = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
LINK = "https://alerts.example.gov.cn/a/us7000abcd"
BODY = (
    "【地震预警】西藏日喀则市定日县\n"
    "中国地震台网正式测定：7月1日16时0分在西藏日喀则市定日县发生6.8级地震，震源深度10千米。\n"
    "防御指南：远离危险建筑，注意余震。\n"
    f"详情：{LINK}"
)
MSG = Message(
    "us7000abcd", 2, "【地震预警】西藏日喀则市定日县", BODY, "zh-CN", identifier="CN-000000-1"
)


def clock() -> datetime:
    return NOW


def keys(results: Sequence[SendResult | Recipient]) -> list[str]:
    return [r.key for r in results]


# -- SMS -----------------------------------------------------------------------------------

SMS_CREDENTIALS = {
    "access_key_id": "LTAI-test",
    "access_key_secret": "secret-test",
    "sign_name": "预警中心",
    "template_code": "SMS_0001",
}


@pytest.fixture
def sms_sim() -> Iterator[AliyunSmsSimulator]:
    with AliyunSmsSimulator(clock=clock) as sim:
        assert isinstance(sim, AliyunSmsSimulator)
        yield sim


def sms_channel(sim: AliyunSmsSimulator, *, timeout_s: float = 5, **changes: Any) -> Any:
    settings = {
        "name": "sms",
        "type": "sms",
        "base_url": sim.url,
        "timeout_s": timeout_s,
        "credentials": {**SMS_CREDENTIALS, **changes.pop("credentials", {})},
        **changes,
    }
    return build_channel(ChannelSettings.model_validate(settings), store=None, clock=clock)  # type: ignore[arg-type]


def phones(n: int, start: int = 0) -> list[Recipient]:
    return [Recipient(f"139{start + i:08d}", f"CN-000000-1/sms/{start + i}") for i in range(n)]


def test_sms_success_sends_the_fitted_text_with_a_stable_out_id(
    sms_sim: AliyunSmsSimulator,
) -> None:
    channel = sms_channel(sms_sim)
    assert channel.name == "sms" and channel.idempotent is False
    recipients = [Recipient("+86 139-0000-0001", "k/1"), Recipient("13900000002", "k/2")]
    results = channel.send(MSG, recipients)
    assert [r.ok for r in results] == [True, True] and keys(results) == ["k/1", "k/2"]
    [sent] = sms_sim.accepted
    assert sent["numbers"] == ["13900000001", "13900000002"]
    assert sent["sign_name"] == "预警中心" and sent["template_code"] == "SMS_0001"
    assert sent["params"] == {"content": BODY}
    n = segments(f"【预警中心】{BODY}")
    assert results[0].provider_message_id == f"{sent['biz_id']};segments={n}" and n == 2
    assert sent["out_id"] == hashlib.sha1(b"k/1\nk/2").hexdigest()[:32]
    channel.send(MSG, list(reversed(recipients)))  # same keys, same reference
    assert sms_sim.accepted[1]["out_id"] == sent["out_id"]


def test_sms_signature_matches_aliyuns_documented_example() -> None:
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert sign(params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("isp.SYSTEM_ERROR", 200, True),
        ("isv.BUSINESS_LIMIT_CONTROL", 200, True),
        ("isv.SOMETHING_NEW", 200, True),  # unknown: retry, never a silent loss
        ("isv.MOBILE_NUMBER_ILLEGAL", 200, False),
        ("isv.TEMPLATE_MISSING_PARAMETERS", 200, False),
        ("isv.INVALID_JSON_PARAM", 200, False),
        ("isv.AMOUNT_NOT_ENOUGH", 200, False),
        ("SignatureDoesNotMatch", 400, False),
        ("InvalidAccessKeyId.NotFound", 404, False),
    ],
)
def test_sms_vendor_codes_are_classified(
    sms_sim: AliyunSmsSimulator, code: str, status: int, retryable: bool
) -> None:
    sms_sim.inject(Answer(status, {"Code": code, "Message": "m", "RequestId": "R1"}))
    [result] = sms_channel(sms_sim).send(MSG, phones(1))
    assert not result.ok and result.retryable is retryable and result.error_code == code
    assert "R1" in (result.error_text or "")
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        assert (result.error_text or "").startswith("wait:")


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (Answer(503, "<html>Service Unavailable</html>"), "http 503"),
        (
            Answer(500, {"Code": "isp.SYSTEM_ERROR", "Message": "x", "RequestId": "R"}),
            "isp.SYSTEM_ERROR",
        ),
        (Answer(200, "not json"), "http 200"),
        (Answer(200, {"Code": "OK"}, delay_s=1.0), "transport"),  # beyond the timeout
    ],
)
def test_sms_server_errors_and_timeouts_are_retryable(
    sms_sim: AliyunSmsSimulator, answer: Answer, code: str
) -> None:
    sms_sim.inject(answer)
    [result] = sms_channel(sms_sim, timeout_s=0.3).send(MSG, phones(1))
    assert not result.ok and result.retryable and result.error_code == code


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        ({"access_key_secret": "wrong"}, "SignatureDoesNotMatch"),
        ({"access_key_id": "LTAI-unknown"}, "InvalidAccessKeyId.NotFound"),
        ({"sign_name": "别的签名"}, "isv.SMS_SIGNATURE_ILLEGAL"),
        ({"template_code": "SMS_9999"}, "isv.SMS_TEMPLATE_ILLEGAL"),
    ],
)
def test_sms_simulator_rejects_bad_credentials_fatally(
    sms_sim: AliyunSmsSimulator, credentials: dict[str, str], code: str
) -> None:
    [result] = sms_channel(sms_sim, credentials=credentials).send(MSG, phones(1))
    assert not result.ok and not result.retryable and result.error_code == code
    assert sms_sim.accepted == []


def test_sms_simulator_checks_time_nonce_and_template_params(
    sms_sim: AliyunSmsSimulator,
) -> None:
    # A clock 20 minutes off: the timestamp is refused (an unknown code to the channel: retry).
    stale = sms_channel(sms_sim)
    stale._clock = lambda: NOW - timedelta(minutes=20)
    [result] = stale.send(MSG, phones(1))
    assert result.error_code == "InvalidTimeStamp.Expired" and result.retryable
    # Replaying a signed request: the nonce is used once only.
    sms_channel(sms_sim).send(MSG, phones(1))
    query = sms_sim.requests[-1].query
    replay = requests.get(f"{sms_sim.url}/?{urlencode(query, quote_via=quote)}", timeout=5)
    assert replay.json()["Code"] == "SignatureNonceUsed"
    # Non-string template values, and a template variable left out.
    sms_sim.templates["SMS_0002"] = {"title", "content"}
    params = dict(query, TemplateCode="SMS_0002", SignatureNonce="n2")
    params["Signature"] = sign({k: v for k, v in params.items() if k != "Signature"}, "secret-test")
    answer = requests.get(f"{sms_sim.url}/?{urlencode(params, quote_via=quote)}", timeout=5)
    assert answer.json()["Code"] == "isv.TEMPLATE_MISSING_PARAMETERS"
    params = dict(query, TemplateParam='{"content": 1}', SignatureNonce="n3")
    params["Signature"] = sign({k: v for k, v in params.items() if k != "Signature"}, "secret-test")
    answer = requests.get(f"{sms_sim.url}/?{urlencode(params, quote_via=quote)}", timeout=5)
    assert answer.json()["Code"] == "isv.INVALID_JSON_PARAM"


def test_sms_template_params_map_variables_to_message_fields(
    sms_sim: AliyunSmsSimulator,
) -> None:
    sms_sim.templates["SMS_0002"] = {"title", "url"}
    channel = sms_channel(
        sms_sim,
        credentials={"template_code": "SMS_0002"},
        options={"template_params": {"title": "subject", "url": "link"}},
    )
    [result] = channel.send(MSG, phones(1))
    assert result.ok
    assert sms_sim.accepted[0]["params"] == {"title": MSG.subject, "url": LINK}
    # The template wants a variable the mapping does not give: fatal.
    sms_sim.templates["SMS_0002"] = {"title", "url", "level"}
    [result] = channel.send(MSG, phones(1))
    assert result.error_code == "isv.TEMPLATE_MISSING_PARAMETERS" and not result.retryable


def test_sms_batches_2500_numbers_into_3_calls(sms_sim: AliyunSmsSimulator) -> None:
    recipients = phones(2500)
    results = sms_channel(sms_sim).send(MSG, recipients)
    assert keys(results) == keys(recipients) and all(r.ok for r in results)
    assert [len(a["numbers"]) for a in sms_sim.accepted] == [1000, 1000, 500]
    batches = [a["biz_id"] for a in sms_sim.accepted]
    assert {r.provider_message_id.split(";")[0] for r in results[:1000]} == {batches[0]}  # type: ignore[union-attr]
    assert {r.provider_message_id.split(";")[0] for r in results[2000:]} == {batches[2]}  # type: ignore[union-attr]
    assert len({a["out_id"] for a in sms_sim.accepted}) == 3


def test_sms_invalid_numbers_are_rejected_without_a_call(sms_sim: AliyunSmsSimulator) -> None:
    bad = ["12345", "021-12345678", "+1 2025550100", "12912345678", "1390000000a", ""]
    recipients = [Recipient(a, f"bad/{i}") for i, a in enumerate(bad)]
    channel = sms_channel(sms_sim)
    results = channel.send(MSG, recipients)
    assert all(not r.ok and not r.retryable for r in results)
    assert {r.error_code for r in results} == {"isv.MOBILE_NUMBER_ILLEGAL"}
    assert sms_sim.requests == []
    results = channel.send(MSG, [recipients[0], *phones(1), recipients[1]])
    assert [r.ok for r in results] == [False, True, False]
    assert sms_sim.accepted[0]["numbers"] == ["13900000000"]


def test_sms_long_text_is_fitted_keeping_first_and_last_line(
    sms_sim: AliyunSmsSimulator,
) -> None:
    middle = "".join(f"第{i}句，受影响地区请注意防范。" for i in range(60))
    body = f"【暴雨红色预警】某市\n{middle}\n其他说明！\n详情：{LINK}"
    text = fit(body, "预警中心")
    assert len("【预警中心】" + text) <= 500
    lines = text.splitlines()
    assert lines[0] == "【暴雨红色预警】某市" and lines[-1] == f"详情：{LINK}"
    assert lines[1].endswith("。") and middle.startswith(lines[1])  # cut at a sentence end
    channel = sms_channel(sms_sim)
    [result] = channel.send(Message("a", 1, "s", body, "zh-CN"), phones(1))
    assert sms_sim.accepted[0]["params"]["content"] == text
    assert result.provider_message_id.endswith(f";segments={segments('【预警中心】' + text)}")  # type: ignore[union-attr]
    # No sentence end to cut at: a hard cut with an ellipsis, never mid-character.
    hard = fit("【预警】\n" + "雨" * 600 + "\n" + LINK, "预警中心")
    assert len("【预警中心】" + hard) <= 500 and hard.endswith("…\n" + LINK)
    emoji = fit("👨‍👩‍👧" * 300, "预警中心")
    assert emoji.endswith("👧…") and len(emoji) <= 494
    assert fit("短信。", "预警中心") == "短信。"


@pytest.mark.parametrize(
    ("length", "expected"), [(10, 1), (70, 1), (71, 2), (134, 2), (135, 3), (500, 8)]
)
def test_sms_segments_are_counted(length: int, expected: int) -> None:
    assert segments("字" * length) == expected


@pytest.mark.parametrize(("body_len", "expected"), [(64, 1), (65, 2)])
def test_sms_segment_count_includes_the_signature(
    sms_sim: AliyunSmsSimulator, body_len: int, expected: int
) -> None:
    # 【预警中心】 is 6 characters: 64 + 6 = 70 is one SMS, 71 is two of 67.
    [result] = sms_channel(sms_sim).send(Message("a", 1, "s", "字" * body_len, "zh-CN"), phones(1))
    assert result.ok and result.provider_message_id.endswith(f";segments={expected}")  # type: ignore[union-attr]


# -- e-mail --------------------------------------------------------------------------------


@pytest.fixture
def smtp_sim() -> Iterator[SmtpSimulator]:
    with SmtpSimulator(username="alerts", password="pw-test") as sim:
        yield sim


def email_channel(port: int, *, timeout_s: float = 5, **credentials: str) -> Any:
    settings = {
        "name": "mail",
        "type": "email",
        "timeout_s": timeout_s,
        "credentials": {
            "smtp_host": "127.0.0.1",
            "from_addr": "预警中心 <alerts@example.gov.cn>",
            "username": "alerts",
            "password": "pw-test",
            **credentials,
        },
        "options": {"smtp_port": port, "starttls": False},
    }
    return build_channel(ChannelSettings.model_validate(settings), store=None, clock=clock)  # type: ignore[arg-type]


def parsed(data: bytes) -> Any:
    return email.message_from_bytes(data, policy=email.policy.default)


def test_email_sends_one_multipart_message_per_recipient(smtp_sim: SmtpSimulator) -> None:
    channel = email_channel(smtp_sim.port)
    assert channel.name == "mail" and channel.idempotent is False
    recipients = [Recipient("a@example.org", "k/a"), Recipient("b@example.org", "k/b")]
    results = channel.send(MSG, recipients)
    assert [r.ok for r in results] == [True, True] and keys(results) == ["k/a", "k/b"]
    assert smtp_sim.auth_log == [("PLAIN", "alerts")]
    assert [(m.mail_from, m.rcpt_to) for m in smtp_sim.received] == [
        ("alerts@example.gov.cn", ["a@example.org"]),
        ("alerts@example.gov.cn", ["b@example.org"]),
    ]
    msg = parsed(smtp_sim.received[0].data)
    assert msg["To"] == "a@example.org" and msg["Subject"] == MSG.subject
    assert msg["From"].addresses[0].display_name == "预警中心"
    assert "=?utf-8?" in smtp_sim.received[0].data.decode("ascii").lower()  # 7-bit on the wire
    assert msg["X-Alerts-Identifier"] == "CN-000000-1"
    plain = msg.get_body(("plain",)).get_content()
    assert plain.replace("\r\n", "\n").rstrip("\n") == BODY  # canonical CRLF on the wire
    html = msg.get_body(("html",)).get_content()
    assert f'<a href="{LINK}">{LINK}</a>' in html and "<br>" in html
    assert results[0].provider_message_id == msg["Message-ID"]


def test_email_message_id_is_stable_per_delivery_key(smtp_sim: SmtpSimulator) -> None:
    channel = email_channel(smtp_sim.port)
    channel.send(MSG, [Recipient("a@example.org", "k/a"), Recipient("b@example.org", "k/b")])
    channel.send(MSG, [Recipient("a@example.org", "k/a")])
    ids = [parsed(m.data)["Message-ID"] for m in smtp_sim.received]
    assert ids[0] == ids[2] != ids[1]
    assert ids[0].endswith("@example.gov.cn>")


def test_email_html_part_is_escaped() -> None:
    body = '<script>alert("x")</script> & 1 < 2\n详情：javascript:alert(1)'
    out = render_html(body)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 1 &lt; 2<br>" in out
    assert "<a " not in out and "<script>" not in out
    tricky = render_html('第一行\n详情：https://x.example/a?b=1&c="><script>')
    assert '<a href="https://x.example/a?b=1&amp;c=">' in tricky
    assert "</a>&quot;&gt;&lt;script&gt;</p>" in tricky
    assert "<script>" not in tricky


def test_email_script_arrives_escaped(smtp_sim: SmtpSimulator) -> None:
    message = Message("a", 1, "s <b>", "注意 <script>alert(1)</script>\n详情：" + LINK, "zh-CN")
    [result] = email_channel(smtp_sim.port).send(message, [Recipient("a@example.org", "k")])
    assert result.ok
    html = parsed(smtp_sim.received[0].data).get_body(("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_email_refused_recipients_get_their_own_codes(smtp_sim: SmtpSimulator) -> None:
    smtp_sim.refuse["gone@example.org"] = (550, "5.1.1 No such user")
    smtp_sim.refuse["full@example.org"] = (450, "4.2.2 Mailbox full")
    recipients = [
        Recipient("a@example.org", "k/a"),
        Recipient("gone@example.org", "k/gone"),
        Recipient("full@example.org", "k/full"),
        Recipient("b@example.org", "k/b"),
        Recipient("not an address", "k/bad"),
    ]
    results = {r.key: r for r in email_channel(smtp_sim.port).send(MSG, recipients)}
    assert results["k/a"].ok and results["k/b"].ok
    gone, full, bad = results["k/gone"], results["k/full"], results["k/bad"]
    assert (gone.ok, gone.retryable, gone.error_code) == (False, False, "550")
    assert "No such user" in (gone.error_text or "")
    assert (full.ok, full.retryable, full.error_code) == (False, True, "450")
    assert (bad.ok, bad.retryable, bad.error_code) == (False, False, "invalid-address")
    assert [m.rcpt_to for m in smtp_sim.received] == [["a@example.org"], ["b@example.org"]]


@pytest.mark.parametrize(
    ("reply", "retryable"), [((451, "4.3.0 Try later"), True), ((554, "5.7.1 Spam"), False)]
)
def test_email_data_replies_are_classified(
    smtp_sim: SmtpSimulator, reply: tuple[int, str], retryable: bool
) -> None:
    smtp_sim.data_reply = reply
    [result] = email_channel(smtp_sim.port).send(MSG, [Recipient("a@example.org", "k")])
    assert not result.ok and result.retryable is retryable and result.error_code == str(reply[0])


def test_email_wrong_password_is_fatal(smtp_sim: SmtpSimulator) -> None:
    [result] = email_channel(smtp_sim.port, password="wrong").send(
        MSG, [Recipient("a@example.org", "k")]
    )
    assert not result.ok and not result.retryable and result.error_code == "535"


def test_email_login_mechanism(smtp_sim: SmtpSimulator) -> None:
    smtp_sim.mechanisms = ("LOGIN",)
    [result] = email_channel(smtp_sim.port).send(MSG, [Recipient("a@example.org", "k")])
    assert result.ok and smtp_sim.auth_log == [("LOGIN", "alerts")]


def test_email_server_down_or_stalled_is_retryable() -> None:
    with SmtpSimulator() as down:
        port = down.port  # stopped on leaving: the port is closed
    results = email_channel(port).send(
        MSG, [Recipient("a@example.org", "k/a"), Recipient("b@example.org", "k/b")]
    )
    assert all(not r.ok and r.retryable and r.error_code == "connect" for r in results)
    with SmtpSimulator() as stalled:
        stalled.greeting_delay_s = 1.0
        [result] = email_channel(stalled.port, timeout_s=0.3).send(
            MSG, [Recipient("a@example.org", "k")]
        )
        assert not result.ok and result.retryable and result.error_code == "connect"


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("missing", sorted(SMS_CREDENTIALS))
def test_sms_missing_credentials_fail_at_build_time(missing: str) -> None:
    credentials = {k: v for k, v in SMS_CREDENTIALS.items() if k != missing}
    settings = ChannelSettings.model_validate(
        {"name": "sms", "type": "sms", "credentials": credentials}
    )
    with pytest.raises(ConfigError, match=f"credentials.{missing}"):
        build_channel(settings, store=None, clock=clock)  # type: ignore[arg-type]


def test_sms_unknown_template_field_fails_at_build_time() -> None:
    settings = ChannelSettings.model_validate(
        {
            "name": "sms",
            "type": "sms",
            "credentials": SMS_CREDENTIALS,
            "options": {"template_params": {"x": "nope"}},
        }
    )
    with pytest.raises(ConfigError, match="template_params.x"):
        build_channel(settings, store=None, clock=clock)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("credentials", "missing"),
    [
        ({"from_addr": "a@example.org"}, "smtp_host"),
        ({"smtp_host": "127.0.0.1"}, "from_addr"),
        ({"smtp_host": "h", "from_addr": "a@example.org", "username": "u"}, "password"),
    ],
)
def test_email_missing_credentials_fail_at_build_time(
    credentials: dict[str, str], missing: str
) -> None:
    settings = ChannelSettings.model_validate(
        {"name": "mail", "type": "email", "credentials": credentials}
    )
    with pytest.raises(ConfigError, match=f"credentials.{missing}"):
        build_channel(settings, store=None, clock=clock)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "credentials", "port", "ssl", "starttls"),
    [
        ({}, {}, 587, False, True),
        ({"ssl": True}, {}, 465, True, False),
        ({"smtp_port": 465}, {}, 465, True, False),
        ({}, {"smtp_port": "25"}, 25, False, False),
        ({"smtp_port": 587, "starttls": False}, {}, 587, False, False),
    ],
)
def test_email_port_and_tls_defaults(
    options: dict[str, Any], credentials: dict[str, str], port: int, ssl: bool, starttls: bool
) -> None:
    settings = ChannelSettings.model_validate(
        {
            "name": "mail",
            "type": "email",
            "credentials": {"smtp_host": "h", "from_addr": "a@example.org", **credentials},
            "options": options,
        }
    )
    channel = build_channel(settings, store=None, clock=clock)  # type: ignore[arg-type]
    assert (channel._port, channel._ssl, channel._starttls) == (port, ssl, starttls)  # type: ignore[attr-defined]
