"""DingTalk robot, Feishu bot and generic webhook channels, against their simulators.

Every test goes over real HTTP on loopback: the simulators check tokens,
signatures (recomputed with their own code), sizes, structure and rates, and
answer with the vendors' real bodies; faults are injected with ``inject``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.channels import Channel, Message, Recipient, SendResult, build_channel
from alerts.config import ChannelSettings, ConfigError
from tests.simulators.base import Answer, Simulator
from tests.simulators.dingtalk import DingTalkSimulator
from tests.simulators.feishu import FeishuSimulator
from tests.simulators.webhook import WebhookSimulator

KINDS = ["dingtalk", "feishu", "webhook"]
ROBOTS = ["dingtalk", "feishu"]
LIMITS = {"dingtalk": 20000, "feishu": 20 * 1024}

HEADLINE = "【地震预警】四川省甘孜州发生5.8级地震，橙色预警"
LINK = "详情：https://alerts.example.org/?alert=eq-2024-001"
MESSAGE = Message(
    alert_id="eq-2024-001",
    version=2,
    subject="地震橙色预警",
    body=f"{HEADLINE}\n震中：北纬30.1度，东经101.2度\n请远离建筑物。\n{LINK}",
    language="zh-CN",
    identifier="44000041600000000000000000000001",
)
RECIPIENTS = [
    Recipient("public", "eq-2024-001:2:ch:public"),
    Recipient("ops", "eq-2024-001:2:ch:ops"),
]


def wall_clock() -> datetime:
    return datetime.now(UTC)


def new_simulator(kind: str, **kwargs: Any) -> Simulator:
    if kind == "dingtalk":
        return DingTalkSimulator(access_token="dt-token", secret="SECdt-secret", **kwargs)
    if kind == "feishu":
        return FeishuSimulator(token="fs-token", secret="fs-secret", **kwargs)
    return WebhookSimulator(secret="wh-secret", **kwargs)


def channel_for(
    kind: str,
    sim: Simulator,
    *,
    credentials: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
    timeout_s: float = 5.0,
    clock: Callable[[], datetime] = wall_clock,
    **extra: Any,
) -> Channel:
    """A channel built through the registry, pointed at the simulator."""
    if credentials is None:
        credentials = {
            "dingtalk": {"access_token": "dt-token", "secret": "SECdt-secret"},
            "feishu": {"token": "fs-token", "secret": "fs-secret"},
            "webhook": {"secret": "wh-secret"},
        }[kind]
    base_url = sim.endpoint if isinstance(sim, WebhookSimulator) else sim.url
    settings = ChannelSettings.model_validate(
        {
            "name": f"test-{kind}",
            "type": kind,
            "base_url": base_url,
            "timeout_s": timeout_s,
            "credentials": credentials,
            "options": options or {},
            **extra,
        }
    )
    return build_channel(settings, store=None, clock=clock)  # type: ignore[arg-type]


@pytest.fixture
def start() -> Iterator[Callable[..., Simulator]]:
    """Start a simulator of a kind; every started one is stopped after the test."""
    started: list[Simulator] = []

    def _start(kind: str, **kwargs: Any) -> Simulator:
        sim = new_simulator(kind, **kwargs).start()
        started.append(sim)
        return sim

    yield _start
    for sim in started:
        sim.stop()


def outcome(results: list[SendResult]) -> tuple[str, str | None]:
    """The one outcome every recipient shares, as (ok|retry|fatal, error code)."""
    assert [r.key for r in results] == [r.key for r in RECIPIENTS]
    assert len({(r.ok, r.retryable, r.error_code) for r in results}) == 1
    first = results[0]
    return ("ok" if first.ok else "retry" if first.retryable else "fatal"), first.error_code


def delivered_lines(kind: str, payload: dict[str, Any]) -> list[str]:
    """The lines of the body as the robot received them."""
    if kind == "dingtalk":
        return str(payload["markdown"]["text"]).split("\n\n")
    paragraphs = payload["content"]["post"]["zh_cn"]["content"]
    return [p[0]["text"] for p in paragraphs]


# --- success -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_message_is_one_call_and_every_recipient_gets_its_result(
    kind: str, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    channel = channel_for(kind, sim)

    results = channel.send(MESSAGE, RECIPIENTS)

    assert isinstance(channel, Channel)
    assert outcome(results) == ("ok", None)
    assert len(sim.requests) == 1 and len(sim.accepted) == 1


def test_dingtalk_posts_signed_markdown_with_the_subject_as_title(
    start: Callable[..., Simulator],
) -> None:
    sim = start("dingtalk")
    channel_for("dingtalk", sim).send(MESSAGE, RECIPIENTS)

    query = sim.requests[0].query
    assert query["access_token"] == "dt-token"
    assert (
        query["timestamp"].isdigit() and abs(int(query["timestamp"]) - time.time() * 1000) < 60_000
    )
    payload = sim.accepted[0]
    assert payload["msgtype"] == "markdown"
    assert payload["markdown"]["title"] == MESSAGE.subject
    assert delivered_lines("dingtalk", payload) == MESSAGE.body.split("\n")


def test_feishu_posts_a_signed_post_with_one_paragraph_per_line(
    start: Callable[..., Simulator],
) -> None:
    sim = start("feishu")
    channel_for("feishu", sim).send(MESSAGE, RECIPIENTS)

    payload = sim.accepted[0]
    assert payload["msg_type"] == "post"
    assert (
        isinstance(payload["timestamp"], str) and abs(int(payload["timestamp"]) - time.time()) < 60
    )
    assert payload["content"]["post"]["zh_cn"]["title"] == MESSAGE.subject
    assert payload["content"]["post"]["zh_cn"]["content"][0] == [{"tag": "text", "text": HEADLINE}]
    assert delivered_lines("feishu", payload) == MESSAGE.body.split("\n")


def test_webhook_posts_the_message_as_signed_utf8_json(start: Callable[..., Simulator]) -> None:
    sim = start("webhook")
    results = channel_for("webhook", sim).send(MESSAGE, RECIPIENTS)

    assert results[0].provider_message_id == "evt-1"
    request = sim.requests[0]
    assert HEADLINE.encode("utf-8") in request.body  # raw UTF-8, not \u escapes
    assert request.headers["x-alerts-signature"].startswith("sha256=")
    payload = sim.accepted[0]
    assert set(payload) == {
        "identifier", "alert_id", "version", "subject", "body", "language", "recipients", "sent_at",
    }  # fmt: skip
    assert payload["identifier"] == MESSAGE.identifier and payload["version"] == 2
    assert payload["body"] == MESSAGE.body and payload["recipients"] == ["public", "ops"]
    assert payload["sent_at"].endswith("Z")


@pytest.mark.parametrize(
    ("kind", "options", "text_of"),
    [
        ("dingtalk", {"msgtype": "text"}, lambda p: p["text"]["content"]),
        ("feishu", {"msg_type": "text"}, lambda p: p["content"]["text"]),
    ],
)
def test_plain_text_is_an_option(
    kind: str,
    options: dict[str, Any],
    text_of: Callable[[Any], str],
    start: Callable[..., Simulator],
) -> None:
    sim = start(kind)
    assert outcome(channel_for(kind, sim, options=options).send(MESSAGE, RECIPIENTS))[0] == "ok"
    assert text_of(sim.accepted[0]) == MESSAGE.body


@pytest.mark.parametrize("kind", KINDS)
def test_no_recipients_means_no_call(kind: str, start: Callable[..., Simulator]) -> None:
    sim = start(kind)
    assert channel_for(kind, sim).send(MESSAGE, []) == []
    assert sim.requests == []


# --- vendor codes and HTTP failures -----------------------------------------------------------


def ding(code: int, msg: str) -> Answer:
    return Answer(body={"errcode": code, "errmsg": msg})


def fs(code: int, msg: str, status: int = 200) -> Answer:
    return Answer(status=status, body={"code": code, "data": {}, "msg": msg})


VENDOR_ANSWERS = [
    # DingTalk: always HTTP 200, errcode in the body
    ("dingtalk", ding(130101, "send too fast"), "retry", "130101"),
    ("dingtalk", ding(410100, "系统繁忙"), "retry", "410100"),
    ("dingtalk", ding(-1, "系统繁忙"), "retry", "-1"),
    ("dingtalk", ding(777777, "new code"), "retry", "777777"),
    ("dingtalk", ding(310000, "sign not match"), "fatal", "310000"),
    ("dingtalk", ding(300001, "token is not exist"), "fatal", "300001"),
    ("dingtalk", ding(300005, "token is not exist"), "fatal", "300005"),
    ("dingtalk", ding(400013, "群已被解散"), "fatal", "400013"),
    ("dingtalk", ding(400102, "机器人已停用"), "fatal", "400102"),
    ("dingtalk", ding(400106, "机器人不存在"), "fatal", "400106"),
    # Feishu: code in the body, with HTTP 200 or 400
    ("feishu", fs(11232, "frequency limited"), "retry", "11232"),
    ("feishu", fs(9499, "too many request"), "retry", "9499"),
    ("feishu", fs(9499, "Too Many Request", 400), "retry", "9499"),
    ("feishu", fs(9499, "Bad Request", 400), "fatal", "9499"),
    ("feishu", fs(55555, "new code"), "retry", "55555"),
    ("feishu", fs(19021, "sign match fail"), "fatal", "19021"),
    ("feishu", fs(19022, "Ip Not Allowed"), "fatal", "19022"),
    ("feishu", fs(19024, "Key Words Not Found", 400), "fatal", "19024"),
    ("feishu", fs(19007, "Bot Not Enabled"), "fatal", "19007"),
    ("feishu", Answer(body={"StatusCode": 0, "StatusMessage": "success"}), "ok", None),
    # the generic webhook: HTTP status only
    *[("webhook", Answer(status=s, body={"error": "later"}), "retry", str(s))
      for s in (408, 425, 429, 500, 502, 503, 504)],
    *[("webhook", Answer(status=s, body={"error": "no"}), "fatal", str(s))
      for s in (400, 401, 403, 404, 410, 413, 422)],
    ("webhook", Answer(status=302, headers={"Location": "/elsewhere"}, body=""), "fatal", "302"),
    ("webhook", Answer(status=204, body=""), "ok", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "answer", "expected", "code"),
    VENDOR_ANSWERS,
    ids=[f"{k}-{a.status}-{json.dumps(a.body)[:40]}" for k, a, _, _ in VENDOR_ANSWERS],
)
def test_every_answer_is_classified_as_the_vendor_means_it(
    kind: str, answer: Answer, expected: str, code: str | None, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    sim.inject(answer)
    results = channel_for(kind, sim).send(MESSAGE, RECIPIENTS)
    assert outcome(results) == (expected, code)
    if expected != "ok":
        assert results[0].error_text is not None


@pytest.mark.parametrize("kind", ROBOTS)
@pytest.mark.parametrize(
    "answer",
    [
        Answer(status=500, body="Internal Server Error"),
        Answer(status=502, body="<html>502 Bad Gateway</html>"),
        Answer(status=503, body={"errcode": 310000, "code": 19021, "msg": "upstream"}),
    ],
    ids=["500", "502-html", "503-with-fatal-code"],
)
def test_server_errors_are_retryable(
    kind: str, answer: Answer, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    sim.inject(answer)
    assert outcome(channel_for(kind, sim).send(MESSAGE, RECIPIENTS)) == (
        "retry",
        str(answer.status),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_timeout_is_retryable(kind: str, start: Callable[..., Simulator]) -> None:
    sim = start(kind)
    sim.inject(Answer(delay_s=1.0, body={"errcode": 0, "code": 0}))
    results = channel_for(kind, sim, timeout_s=0.3).send(MESSAGE, RECIPIENTS)
    assert outcome(results) == ("retry", "transport")
    assert "Timeout" in (results[0].error_text or "")


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_connection_is_retryable(kind: str, start: Callable[..., Simulator]) -> None:
    sim = start(kind)
    channel = channel_for(kind, sim)
    sim.stop()
    assert outcome(channel.send(MESSAGE, RECIPIENTS)) == ("retry", "transport")


# --- signatures ---------------------------------------------------------------------------

WRONG_SECRET = [
    ("dingtalk", {"access_token": "dt-token", "secret": "SECwrong"}, "310000"),
    ("feishu", {"token": "fs-token", "secret": "wrong"}, "19021"),
    ("webhook", {"secret": "wrong"}, "401"),
]


@pytest.mark.parametrize(("kind", "credentials", "code"), WRONG_SECRET)
def test_a_wrong_secret_is_refused_by_the_simulator_and_fatal(
    kind: str, credentials: dict[str, str], code: str, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    results = channel_for(kind, sim, credentials=credentials).send(MESSAGE, RECIPIENTS)
    assert outcome(results) == ("fatal", code)
    assert sim.accepted == []


@pytest.mark.parametrize(
    ("kind", "code"), [("dingtalk", "310000"), ("feishu", "19021"), ("webhook", "401")]
)
def test_a_clock_two_hours_off_is_refused_and_fatal(
    kind: str, code: str, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    late = channel_for(kind, sim, clock=lambda: datetime.now(UTC) - timedelta(hours=2))
    assert outcome(late.send(MESSAGE, RECIPIENTS)) == ("fatal", code)


@pytest.mark.parametrize(
    ("kind", "credentials", "code"),
    [
        ("dingtalk", {"access_token": "other"}, "300001"),
        ("feishu", {"token": "other"}, "19001"),
    ],
)
def test_an_unknown_token_is_fatal(
    kind: str, credentials: dict[str, str], code: str, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    assert outcome(channel_for(kind, sim, credentials=credentials).send(MESSAGE, RECIPIENTS)) == (
        "fatal",
        code,
    )


@pytest.mark.parametrize(("kind", "code"), [("dingtalk", "310000"), ("feishu", "19024")])
def test_a_missing_keyword_is_fatal(kind: str, code: str, start: Callable[..., Simulator]) -> None:
    sim = start(kind, keyword="演练")
    assert outcome(channel_for(kind, sim).send(MESSAGE, RECIPIENTS)) == ("fatal", code)
    with_keyword = Message(**{**MESSAGE.__dict__, "body": "演练\n" + MESSAGE.body})
    assert outcome(channel_for(kind, sim).send(with_keyword, RECIPIENTS)) == ("ok", None)


def test_dingtalk_accepts_the_whole_webhook_url_as_token(start: Callable[..., Simulator]) -> None:
    sim = start("dingtalk")
    pasted = "https://oapi.dingtalk.com/robot/send?access_token=dt-token"
    channel = channel_for(
        "dingtalk", sim, credentials={"access_token": pasted, "secret": "SECdt-secret"}
    )
    assert outcome(channel.send(MESSAGE, RECIPIENTS)) == ("ok", None)


def test_feishu_accepts_the_whole_hook_url_and_uses_its_host(
    start: Callable[..., Simulator],
) -> None:
    sim = start("feishu")
    settings = ChannelSettings.model_validate(
        {
            "name": "lark",
            "type": "feishu",
            "credentials": {
                "token": f"{sim.url}/open-apis/bot/v2/hook/fs-token",
                "secret": "fs-secret",
            },
        }
    )
    channel = build_channel(settings, store=None, clock=wall_clock)  # type: ignore[arg-type]
    assert outcome(channel.send(MESSAGE, RECIPIENTS)) == ("ok", None)


# --- size limits ----------------------------------------------------------------------------


def long_body(lines: int) -> str:
    middle = [f"第{i}条：受影响区域的乡镇与街道名单，请相关人员注意避险。" for i in range(lines)]
    return "\n".join([HEADLINE, *middle, LINK])


@pytest.mark.parametrize("kind", ROBOTS)
def test_a_long_message_is_cut_at_a_line_boundary_keeping_headline_and_link(
    kind: str, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    body = long_body(1500)  # about 110 KB of UTF-8
    message = Message(**{**MESSAGE.__dict__, "body": body})

    assert outcome(channel_for(kind, sim).send(message, RECIPIENTS)) == ("ok", None)

    assert len(sim.requests[0].body) <= LIMITS[kind]
    lines = delivered_lines(kind, sim.accepted[0])
    original = body.split("\n")
    assert lines[0] == HEADLINE and lines[-1] == LINK and lines[-2] == "…"
    kept = lines[1:-2]
    assert kept == original[1 : 1 + len(kept)]  # whole lines, in order, from the top
    assert len(kept) > 100  # the budget is used, not thrown away


@pytest.mark.parametrize("kind", ROBOTS)
def test_a_message_just_under_the_limit_is_not_cut(
    kind: str, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    message = Message(**{**MESSAGE.__dict__, "body": long_body(150)})  # about 11 KB
    assert outcome(channel_for(kind, sim).send(message, RECIPIENTS)) == ("ok", None)
    assert delivered_lines(kind, sim.accepted[0]) == message.body.split("\n")


@pytest.mark.parametrize("kind", ROBOTS)
@pytest.mark.parametrize(
    "body",
    ["警" * 8000, f"{'警' * 8000}\n{LINK}", f"{HEADLINE}\n中\n{'链' * 8000}"],
    ids=["one-line", "huge-headline", "huge-last-line"],
)
def test_a_message_that_cannot_be_cut_fails_too_long_without_sending(
    kind: str, body: str, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    message = Message(**{**MESSAGE.__dict__, "body": body})
    results = channel_for(kind, sim).send(message, RECIPIENTS)
    assert outcome(results) == ("fatal", "too-long")
    assert sim.requests == []


# --- rate limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "allowed", "code"), [("dingtalk", 20, "130101"), ("feishu", 5, "11232")]
)
def test_rate_limit_answers_are_retryable(
    kind: str, allowed: int, code: str, start: Callable[..., Simulator]
) -> None:
    frozen = time.time()
    sim = start(kind, clock=lambda: frozen)  # every call in the same second
    channel = channel_for(kind, sim, clock=lambda: datetime.fromtimestamp(frozen, UTC))

    outcomes = [outcome(channel.send(MESSAGE, RECIPIENTS)) for _ in range(allowed + 1)]

    assert outcomes[:allowed] == [("ok", None)] * allowed
    assert outcomes[allowed] == ("retry", code)
    assert len(sim.accepted) == allowed


@pytest.mark.parametrize(
    ("kind", "rate", "configured"),
    [
        ("dingtalk", (20, 60), (30, 60)),
        ("feishu", (5, 1), (30, 60)),
        ("webhook", None, (30, 60)),
    ],
)
def test_channels_declare_their_vendor_rate_unless_configured(
    kind: str, rate: Any, configured: Any, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    assert getattr(channel_for(kind, sim), "rate") == rate  # noqa: B009 - not in the protocol
    assert getattr(channel_for(kind, sim, rate_per_minute=30), "rate") == configured  # noqa: B009


# --- idempotency ----------------------------------------------------------------------------


def test_webhook_sends_an_idempotency_key_that_lets_the_receiver_drop_a_retry(
    start: Callable[..., Simulator],
) -> None:
    sim = start("webhook")
    channel = channel_for("webhook", sim)
    assert channel.idempotent is True

    first = channel.send(MESSAGE, RECIPIENTS)
    again = channel.send(MESSAGE, list(reversed(RECIPIENTS)))  # same delivery, any order

    assert outcome(first)[0] == "ok" and again[0].ok
    keys = [r.headers["idempotency-key"] for r in sim.requests]
    assert keys[0] == keys[1] and len(keys[0]) == 64
    assert len(sim.accepted) == 1
    other = channel.send(MESSAGE, [Recipient("public", "eq-2024-001:3:ch:public")])
    assert other[0].ok and sim.requests[-1].headers["idempotency-key"] != keys[0]


def test_webhook_without_the_idempotency_header_is_not_idempotent(
    start: Callable[..., Simulator],
) -> None:
    sim = start("webhook")
    channel = channel_for("webhook", sim, options={"idempotency_header": False})
    assert channel.idempotent is False
    assert outcome(channel.send(MESSAGE, RECIPIENTS)) == ("ok", None)
    assert "idempotency-key" not in sim.requests[0].headers


@pytest.mark.parametrize("kind", ROBOTS)
def test_robots_are_not_idempotent(kind: str, start: Callable[..., Simulator]) -> None:
    assert channel_for(kind, start(kind)).idempotent is False


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "credentials", "key"),
    [
        ("dingtalk", {}, "channels.test-dingtalk.credentials.access_token"),
        ("dingtalk", {"access_token": ""}, "channels.test-dingtalk.credentials.access_token"),
        ("feishu", {"secret": "s"}, "channels.test-feishu.credentials.token"),
        ("webhook", {}, "channels.test-webhook.credentials.secret"),
    ],
)
def test_missing_credentials_fail_at_build_naming_the_key(
    kind: str, credentials: dict[str, str], key: str, start: Callable[..., Simulator]
) -> None:
    sim = start(kind)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        channel_for(kind, sim, credentials=credentials)


def test_webhook_without_a_url_fails_at_build_naming_options_url() -> None:
    settings = ChannelSettings.model_validate(
        {"name": "hook", "type": "webhook", "credentials": {"secret": "s"}}
    )
    with pytest.raises(ConfigError, match=r"channels\.hook\.options\.url"):
        build_channel(settings, store=None, clock=wall_clock)  # type: ignore[arg-type]


def test_webhook_url_may_come_from_options(start: Callable[..., Simulator]) -> None:
    sim = start("webhook")
    assert isinstance(sim, WebhookSimulator)
    settings = ChannelSettings.model_validate(
        {
            "name": "hook",
            "type": "webhook",
            "credentials": {"secret": "wh-secret"},
            "options": {"url": sim.endpoint},
        }
    )
    channel = build_channel(settings, store=None, clock=wall_clock)  # type: ignore[arg-type]
    assert outcome(channel.send(MESSAGE, RECIPIENTS)) == ("ok", None)


@pytest.mark.parametrize(
    ("kind", "options", "key"),
    [
        ("dingtalk", {"msgtype": "actionCard"}, "options.msgtype"),
        ("feishu", {"msg_type": "interactive"}, "options.msg_type"),
    ],
)
def test_an_unsupported_message_type_fails_at_build(
    kind: str, options: dict[str, Any], key: str, start: Callable[..., Simulator]
) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        channel_for(kind, start(kind), options=options)
