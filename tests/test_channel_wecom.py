"""WeCom robot and application channels against the WeCom simulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from alerts.channels import Channel, Message, Recipient, build_channel
from alerts.channels.wecom_app import WeComAppChannel
from alerts.channels.wecom_bot import WeComBotChannel, fit
from alerts.config import ChannelSettings, ConfigError
from tests.simulators.base import Answer
from tests.simulators.wecom import WeComSimulator

KEY = "robot-key-1"
CORP_ID, CORP_SECRET, AGENT_ID = "ww-corp", "corp-secret", 1000002
HEADLINE = "【暴雨橙色预警】成都市"
LINK = "详情：https://alerts.example/a/usgs-1"
BODY = f"{HEADLINE}\n市气象台发布暴雨橙色（II级）预警。\n防御指南：注意防范。\n{LINK}"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 7, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def sim() -> Iterator[WeComSimulator]:
    s = WeComSimulator(keys=[KEY], corp_id=CORP_ID, corp_secret=CORP_SECRET, agent_id=AGENT_ID)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def settings(sim: WeComSimulator, type_: str, **over: Any) -> ChannelSettings:
    creds: dict[str, Any] = (
        {"key": KEY}
        if type_ == "wecom_bot"
        else {"corp_id": CORP_ID, "corp_secret": CORP_SECRET, "agent_id": str(AGENT_ID)}
    )
    raw: dict[str, Any] = {
        "name": "wecom",
        "type": type_,
        "base_url": sim.url,
        "timeout_s": 0.3,
        "credentials": creds,
    }
    raw.update(over)
    return ChannelSettings.model_validate(raw)


def channel(sim: WeComSimulator, type_: str, clock: Clock, **over: Any) -> Channel:
    return build_channel(settings(sim, type_, **over), store=None, clock=clock)  # type: ignore[arg-type]


def message(body: str = BODY) -> Message:
    return Message("a-1", 1, HEADLINE, body, "zh-CN", identifier="pub-1")


def recipients(*addresses: str) -> list[Recipient]:
    return [Recipient(a, f"pub-1/wecom/{a}") for a in addresses]


def paths(sim: WeComSimulator) -> list[str]:
    return [r.path for r in sim.requests]


def error(code: int) -> Answer:
    return Answer(body={"errcode": code, "errmsg": "simulated"})


def long_body(
    nbytes: int, line: str = "- 成都市青羊区：降雨量52.3毫米，13日20时前后达到标准（50毫米）"
) -> str:
    lines = [HEADLINE]
    i = 0
    while len("\n".join([*lines, LINK]).encode()) < nbytes:
        lines.append(f"{line}{i}")
        i += 1
    return "\n".join([*lines, LINK])


# -- robot ---------------------------------------------------------------------


def test_bot_markdown_is_posted_once_and_every_recipient_gets_the_result(
    sim: WeComSimulator, clock: Clock
) -> None:
    bot = channel(sim, "wecom_bot", clock)
    assert isinstance(bot, WeComBotChannel)
    assert (bot.name, bot.type, bot.idempotent, bot.rate) == ("wecom", "wecom_bot", False, (20, 60))

    out = bot.send(message(), recipients("ops", "duty"))

    assert [(r.key, r.ok) for r in out] == [("pub-1/wecom/ops", True), ("pub-1/wecom/duty", True)]
    assert len(sim.requests) == 1
    assert sim.accepted == [
        {"api": "robot", "key": KEY, "msgtype": "markdown", "content": BODY, "mentioned_list": []}
    ]


def test_bot_text_with_mention_all_mentions_everyone(sim: WeComSimulator, clock: Clock) -> None:
    bot = channel(sim, "wecom_bot", clock, options={"msgtype": "text", "mention_all": True})
    assert bot.send(message(), recipients("ops"))[0].ok
    assert sim.accepted[0]["msgtype"] == "text"
    assert sim.accepted[0]["mentioned_list"] == ["@all"]


@pytest.mark.parametrize(
    "options, wrong",
    [
        ({"mention_all": True}, "mention_all"),  # markdown cannot @all
        ({"msgtype": "news"}, "msgtype"),
        ({"msgtype": "text", "mention_all": "yes"}, "mention_all"),
    ],
)
def test_bot_refuses_bad_options_at_build_time(
    sim: WeComSimulator, clock: Clock, options: dict[str, Any], wrong: str
) -> None:
    with pytest.raises(ConfigError, match=f"options.{wrong}"):
        channel(sim, "wecom_bot", clock, options=options)


@pytest.mark.parametrize(
    "code, retryable",
    [(45009, True), (-1, True), (99999, True), (93000, False), (40058, False), (40008, False)],
)
def test_bot_errcode_is_classified(
    sim: WeComSimulator, clock: Clock, code: int, retryable: bool
) -> None:
    sim.inject(error(code))
    [result] = channel(sim, "wecom_bot", clock).send(message(), recipients("ops"))
    assert (result.ok, result.retryable, result.error_code) == (False, retryable, str(code))
    assert str(code) in (result.error_text or "")
    assert sim.accepted == []


@pytest.mark.parametrize(
    "fault, code",
    [(Answer(status=502, body="Bad Gateway"), "http-502"), (Answer(delay_s=0.8), "transport")],
    ids=["http-502", "timeout"],
)
def test_bot_transport_failures_are_retryable_and_do_not_leak_the_key(
    sim: WeComSimulator, clock: Clock, fault: Answer, code: str
) -> None:
    sim.inject(fault)
    [result] = channel(sim, "wecom_bot", clock).send(message(), recipients("ops"))
    assert (result.ok, result.retryable, result.error_code) == (False, True, code)
    assert KEY not in (result.error_text or "")


def test_bot_unknown_key_is_fatal_93000(sim: WeComSimulator, clock: Clock) -> None:
    bot = channel(sim, "wecom_bot", clock, credentials={"key": "no-such-key"})
    [result] = bot.send(message(), recipients("ops"))
    assert (result.ok, result.retryable, result.error_code) == (False, False, "93000")


def test_bot_answer_without_errcode_is_not_counted_as_sent(
    sim: WeComSimulator, clock: Clock
) -> None:
    sim.inject(Answer(status=200, body="<html>proxy</html>"))
    [result] = channel(sim, "wecom_bot", clock).send(message(), recipients("ops"))
    assert (result.ok, result.retryable) == (False, True)


@pytest.mark.parametrize(
    "pasted",
    [
        f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}",
        f"  https://qyapi.weixin.qq.com/cgi-bin/webhook/send?debug=1&key={KEY}  ",
        f"key={KEY}",
        KEY,
    ],
)
def test_bot_accepts_a_whole_webhook_url_as_key(
    sim: WeComSimulator, clock: Clock, pasted: str
) -> None:
    bot = channel(sim, "wecom_bot", clock, credentials={"key": pasted})
    assert bot.send(message(), recipients("ops"))[0].ok
    assert sim.accepted[0]["key"] == KEY
    assert sim.requests[0].path == "/cgi-bin/webhook/send"  # base_url, not the pasted host


def test_bot_webhook_url_without_key_is_refused(sim: WeComSimulator, clock: Clock) -> None:
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?kye=x"
    with pytest.raises(ConfigError, match="credentials.key"):
        channel(sim, "wecom_bot", clock, credentials={"key": url})


def test_bot_over_the_rate_limit_is_retryable_45009(sim: WeComSimulator, clock: Clock) -> None:
    bot = channel(sim, "wecom_bot", clock)
    outcomes = [bot.send(message(), recipients("ops"))[0] for _ in range(21)]
    assert all(r.ok for r in outcomes[:20])
    assert (outcomes[20].ok, outcomes[20].retryable, outcomes[20].error_code) == (
        False,
        True,
        "45009",
    )
    assert len(sim.accepted) == 20


def test_bot_cuts_a_long_markdown_body_at_a_line_keeping_headline_and_link(
    sim: WeComSimulator, clock: Clock
) -> None:
    body = long_body(5000)
    assert len(body.encode()) >= 5000
    [result] = channel(sim, "wecom_bot", clock).send(message(body), recipients("ops"))

    assert result.ok
    sent = sim.accepted[0]["content"]
    assert len(sent.encode()) <= 4096
    lines, original = sent.split("\n"), body.split("\n")
    assert lines[0] == HEADLINE and lines[-1] == LINK
    assert lines[-2] == "……"
    kept = lines[1:-2]
    assert kept == original[1 : 1 + len(kept)]  # whole lines from the top
    # as many as fit: one more line would not
    assert len("\n".join([*lines[:-2], original[1 + len(kept)], *lines[-2:]]).encode()) > 4096


def test_bot_cuts_a_text_body_to_2048_bytes(sim: WeComSimulator, clock: Clock) -> None:
    bot = channel(sim, "wecom_bot", clock, options={"msgtype": "text"})
    assert bot.send(message(long_body(3000)), recipients("ops"))[0].ok
    sent = sim.accepted[0]["content"]
    assert len(sent.encode()) <= 2048
    assert sent.startswith(HEADLINE + "\n") and sent.endswith("\n" + LINK)


def test_bot_body_that_cannot_fit_is_fatal_too_long_and_nothing_is_sent(
    sim: WeComSimulator, clock: Clock
) -> None:
    body = "【" + "很长的标题" * 300 + "】\n正文。\n" + LINK  # the headline alone is over 4096 B
    out = channel(sim, "wecom_bot", clock).send(message(body), recipients("ops", "duty"))
    assert [(r.ok, r.retryable, r.error_code) for r in out] == [(False, False, "too-long")] * 2
    assert sim.requests == []


def test_bot_missing_key_raises_config_error_naming_it(sim: WeComSimulator, clock: Clock) -> None:
    with pytest.raises(ConfigError, match=r"channels\.wecom\.credentials\.key"):
        channel(sim, "wecom_bot", clock, credentials={})


# -- fit -----------------------------------------------------------------------


def test_fit_leaves_a_body_within_the_limit_alone() -> None:
    assert fit(BODY, 4096) == BODY


def test_fit_cuts_inside_a_long_line_only_after_a_sentence_end() -> None:
    body = f"{HEADLINE}\n第一句话。第二句话！第三句话？第四句没有结尾\n{LINK}"
    limit = len(f"{HEADLINE}\n第一句话。第二句话！\n……\n{LINK}".encode()) + 5
    assert fit(body, limit) == f"{HEADLINE}\n第一句话。第二句话！\n……\n{LINK}"


@pytest.mark.parametrize("limit", range(60, 140))
def test_fit_never_splits_a_character_and_keeps_headline_and_link(limit: int) -> None:
    body = f"{HEADLINE}\n甲乙丙丁。戊己庚辛！\n壬癸子丑寅卯\n{LINK}"
    out = fit(body, limit)
    if out is None:
        assert len(f"{HEADLINE}\n{LINK}".encode()) > limit
        return
    assert len(out.encode()) <= limit
    assert out.startswith(HEADLINE + "\n") and out.endswith("\n" + LINK)
    for line in out.split("\n")[1:-1]:
        assert (
            line == "……"
            or line in body.split("\n")
            or line in ("甲乙丙丁。", "甲乙丙丁。戊己庚辛！")
        )


def test_fit_drops_the_cut_mark_when_only_headline_and_link_fit() -> None:
    body = f"{HEADLINE}\n很长的正文。\n{LINK}"
    limit = len(f"{HEADLINE}\n{LINK}".encode())
    assert fit(body, limit) == f"{HEADLINE}\n{LINK}"
    assert fit(body, limit - 1) is None


# -- application -----------------------------------------------------------------


def app(sim: WeComSimulator, clock: Clock, **over: Any) -> WeComAppChannel:
    ch = channel(sim, "wecom_app", clock, **over)
    assert isinstance(ch, WeComAppChannel)
    return ch


def test_app_sends_to_all_recipients_in_one_call_with_duplicate_check(
    sim: WeComSimulator, clock: Clock
) -> None:
    ch = app(sim, clock)
    assert (ch.name, ch.type, ch.idempotent) == ("wecom", "wecom_app", True)

    out = ch.send(message(), recipients("alice", "bob"))

    assert all(r.ok and r.provider_message_id for r in out)
    assert paths(sim) == ["/cgi-bin/gettoken", "/cgi-bin/message/send"]
    sent = sim.requests[1].json()
    assert sent["touser"] == "alice|bob"
    assert (sent["agentid"], sent["msgtype"]) == (AGENT_ID, "text")
    assert (sent["enable_duplicate_check"], sent["duplicate_check_interval"]) == (1, 1800)
    assert sim.accepted == [
        {
            "api": "app",
            "agentid": AGENT_ID,
            "touser": ["alice", "bob"],
            "toparty": [],
            "totag": [],
            "msgtype": "text",
            "content": BODY,
        }
    ]
    assert "toparty" not in sent and "totag" not in sent


def test_app_markdown_option_sends_markdown(sim: WeComSimulator, clock: Clock) -> None:
    assert app(sim, clock, options={"msgtype": "markdown"}).send(message(), recipients("a"))[0].ok
    assert sim.accepted[0]["msgtype"] == "markdown"


def test_app_resend_after_a_crash_is_deduplicated_by_wecom(
    sim: WeComSimulator, clock: Clock
) -> None:
    ch = app(sim, clock)
    assert ch.send(message(), recipients("alice"))[0].ok
    assert ch.send(message(), recipients("alice"))[0].ok  # the reclaimed row, sent again
    assert len(sim.accepted) == 1 and sim.duplicates == 1


def test_app_token_is_cached_across_sends(sim: WeComSimulator, clock: Clock) -> None:
    ch = app(sim, clock)
    for _ in range(3):
        assert ch.send(message(), recipients("alice"))[0].ok
        clock.advance(600)
    assert sim.tokens_issued == 1
    assert paths(sim).count("/cgi-bin/message/send") == 3


def test_app_token_is_renewed_five_minutes_before_expiry(sim: WeComSimulator, clock: Clock) -> None:
    ch = app(sim, clock, options={"msgtype": "markdown"})
    ch.send(message(), recipients("alice"))
    clock.advance(7200 - 301)
    ch.send(message("x\ny"), recipients("alice"))
    assert sim.tokens_issued == 1
    clock.advance(2)
    ch.send(message("x\nz"), recipients("alice"))
    assert sim.tokens_issued == 2


@pytest.mark.parametrize("code", [42001, 40014])
def test_app_rejected_token_is_renewed_once_then_the_send_succeeds(
    sim: WeComSimulator, clock: Clock, code: int
) -> None:
    ch = app(sim, clock)
    ch.send(message("warm\nup"), recipients("alice"))
    sim.inject(error(code))

    [result] = ch.send(message(), recipients("alice"))

    assert result.ok
    assert sim.tokens_issued == 2
    assert paths(sim)[2:] == ["/cgi-bin/message/send", "/cgi-bin/gettoken", "/cgi-bin/message/send"]


def test_app_expired_tokens_are_refreshed_exactly_once(sim: WeComSimulator, clock: Clock) -> None:
    ch = app(sim, clock)
    ch.send(message("warm\nup"), recipients("alice"))
    sim.expire_tokens()

    assert ch.send(message(), recipients("alice"))[0].ok
    assert sim.tokens_issued == 2
    assert ch.send(message("again\n!"), recipients("alice"))[0].ok  # the new token is cached
    assert sim.tokens_issued == 2


def test_app_token_rejected_again_after_renewal_is_retryable_without_a_third_try(
    sim: WeComSimulator, clock: Clock
) -> None:
    ch = app(sim, clock)
    ch.send(message("warm\nup"), recipients("alice"))
    bogus = {"errcode": 0, "errmsg": "ok", "access_token": "bogus", "expires_in": 7200}
    sim.inject(error(42001), Answer(body=bogus))  # the renewed token is not known either: 40014

    [result] = ch.send(message(), recipients("alice"))

    assert (result.ok, result.retryable, result.error_code) == (False, True, "40014")
    assert paths(sim)[2:] == ["/cgi-bin/message/send", "/cgi-bin/gettoken", "/cgi-bin/message/send"]


@pytest.mark.parametrize(
    "code, retryable",
    [
        (45009, True),
        (-1, True),
        (99999, True),
        (40001, False),
        (48001, False),
        (60020, False),
        (81013, False),
    ],
)
def test_app_send_errcode_is_classified(
    sim: WeComSimulator, clock: Clock, code: int, retryable: bool
) -> None:
    ch = app(sim, clock)
    ch.send(message("warm\nup"), recipients("alice"))
    sim.inject(error(code))
    out = ch.send(message(), recipients("alice", "bob"))
    assert [(r.ok, r.retryable, r.error_code) for r in out] == [(False, retryable, str(code))] * 2
    assert len(sim.accepted) == 1  # only the warm-up


@pytest.mark.parametrize(
    "code, retryable", [(40001, False), (60020, False), (45009, True), (-1, True), (99999, True)]
)
def test_app_token_fetch_errcode_is_classified_and_nothing_is_sent(
    sim: WeComSimulator, clock: Clock, code: int, retryable: bool
) -> None:
    sim.inject(error(code))
    out = app(sim, clock).send(message(), recipients("alice"))
    assert [(r.ok, r.retryable, r.error_code) for r in out] == [(False, retryable, str(code))]
    assert paths(sim) == ["/cgi-bin/gettoken"]


def test_app_wrong_secret_is_fatal_40001_and_not_leaked(sim: WeComSimulator, clock: Clock) -> None:
    creds = {"corp_id": CORP_ID, "corp_secret": "wrong-secret", "agent_id": str(AGENT_ID)}
    [result] = app(sim, clock, credentials=creds).send(message(), recipients("alice"))
    assert (result.ok, result.retryable, result.error_code) == (False, False, "40001")
    assert "wrong-secret" not in (result.error_text or "")


@pytest.mark.parametrize(
    "fault, code",
    [(Answer(status=502, body="Bad Gateway"), "http-502"), (Answer(delay_s=0.8), "transport")],
    ids=["http-502", "timeout"],
)
@pytest.mark.parametrize("stage", ["gettoken", "send"])
def test_app_transport_failures_are_retryable_and_do_not_leak_secrets(
    sim: WeComSimulator, clock: Clock, fault: Answer, code: str, stage: str
) -> None:
    ch = app(sim, clock)
    if stage == "send":
        ch.send(message("warm\nup"), recipients("alice"))
    sim.inject(fault)
    [result] = ch.send(message(), recipients("alice"))
    assert (result.ok, result.retryable, result.error_code) == (False, True, code)
    assert CORP_SECRET not in (result.error_text or "")
    assert not any(t in (result.error_text or "") for t in sim.tokens)


def test_app_invalid_users_fail_and_the_others_succeed(sim: WeComSimulator, clock: Clock) -> None:
    sim.users = {"alice", "bob"}
    out = app(sim, clock).send(message(), recipients("alice", "carol", "bob", "dave"))
    assert [(r.key.rsplit("/", 1)[1], r.ok, r.retryable, r.error_code) for r in out] == [
        ("alice", True, False, None),
        ("carol", False, False, "invaliduser"),
        ("bob", True, False, None),
        ("dave", False, False, "invaliduser"),
    ]
    assert sim.accepted[0]["touser"] == ["alice", "bob"]


def test_app_all_recipients_invalid_is_fatal_81013(sim: WeComSimulator, clock: Clock) -> None:
    sim.users = {"alice"}
    out = app(sim, clock).send(message(), recipients("carol", "dave"))
    assert [(r.ok, r.retryable, r.error_code) for r in out] == [(False, False, "81013")] * 2


def test_app_sends_at_most_1000_users_per_call(sim: WeComSimulator, clock: Clock) -> None:
    people = [f"u{i}" for i in range(2500)]
    out = app(sim, clock).send(message(), recipients(*people))
    assert len(out) == 2500 and all(r.ok for r in out)
    assert [len(m["touser"]) for m in sim.accepted] == [1000, 1000, 500]
    assert sim.tokens_issued == 1


def test_app_token_failure_fails_every_batch_with_one_fetch(
    sim: WeComSimulator, clock: Clock
) -> None:
    sim.inject(error(45009))
    out = app(sim, clock).send(message(), recipients(*[f"u{i}" for i in range(1500)]))
    assert {(r.ok, r.retryable, r.error_code) for r in out} == {(False, True, "45009")}
    assert paths(sim) == ["/cgi-bin/gettoken"]


def sent_targets(sim: WeComSimulator) -> list[tuple[str, str]]:
    """(field, value) of each message/send call, in order; each call has one target field."""
    out = []
    for r in sim.requests:
        if r.path == "/cgi-bin/message/send":
            fields = [f for f in ("touser", "toparty", "totag") if f in r.json()]
            assert len(fields) == 1, fields
            out.append((fields[0], r.json()[fields[0]]))
    return out


def test_app_sends_to_departments_and_tags_one_kind_per_call(
    sim: WeComSimulator, clock: Clock
) -> None:
    ch = app(sim, clock)
    assert ch.max_batch == 1000

    out = ch.send(message(), recipients("party:2", "tag:7", "party:3"))

    assert all(r.ok and r.provider_message_id for r in out)
    assert sent_targets(sim) == [("toparty", "2|3"), ("totag", "7")]
    assert [(m["touser"], m["toparty"], m["totag"]) for m in sim.accepted] == [
        ([], ["2", "3"], []),
        ([], [], ["7"]),
    ]
    assert sim.tokens_issued == 1


def test_app_mixes_users_all_departments_and_tags_and_keeps_the_order_of_results(
    sim: WeComSimulator, clock: Clock
) -> None:
    addresses = ("alice", "party:2", "Party:002", "bob", "tag:7", "@all", " tag:8 ")
    out = app(sim, clock).send(message(), recipients(*addresses))

    assert [r.key for r in out] == [f"pub-1/wecom/{a}" for a in addresses]
    assert all(r.ok for r in out)
    # @all on its own, then users, departments and tags; ids as numbers, sent once
    assert sent_targets(sim) == [
        ("touser", "@all"),
        ("touser", "alice|bob"),
        ("toparty", "2"),
        ("totag", "7|8"),
    ]


@pytest.mark.parametrize(
    "kind, field", [("party", "invalidparty"), ("tag", "invalidtag")], ids=["party", "tag"]
)
def test_app_listed_invalid_department_or_tag_fails_fatal_and_the_others_succeed(
    sim: WeComSimulator, clock: Clock, kind: str, field: str
) -> None:
    sim.parties = {"2"}
    sim.tags = {"7"}
    good = "party:2" if kind == "party" else "tag:7"
    bad = f"{kind}:9"
    out = app(sim, clock).send(message(), recipients("alice", good, bad, f"{kind}:0009"))

    assert [(r.ok, r.retryable, r.error_code) for r in out] == [
        (True, False, None),
        (True, False, None),
        (False, False, field),
        (False, False, field),  # the same id, written with zeros
    ]
    assert f"'{bad}'" in (out[2].error_text or "") and field in (out[2].error_text or "")
    assert out[2].provider_message_id  # the call went through for the others
    assert sim.accepted[-1]["toparty" if kind == "party" else "totag"] == [good.split(":")[1]]


def test_app_call_whose_departments_are_all_invalid_is_fatal_81013_for_them_only(
    sim: WeComSimulator, clock: Clock
) -> None:
    sim.parties = {"2"}
    out = app(sim, clock).send(message(), recipients("alice", "party:8", "party:9", "tag:7"))
    assert [(r.ok, r.retryable, r.error_code) for r in out] == [
        (True, False, None),
        (False, False, "81013"),
        (False, False, "81013"),
        (True, False, None),
    ]


@pytest.mark.parametrize(
    "address",
    ["party:", "party:abc", "tag:x", "tag:-1", "party:0", "party:1.5", "tag:٣", "party:2|3"],
)
def test_app_malformed_department_or_tag_address_fails_fatal_without_a_call(
    sim: WeComSimulator, clock: Clock, address: str
) -> None:
    ch = app(sim, clock)
    [result] = ch.send(message(), recipients(address))
    assert (result.ok, result.retryable, result.error_code) == (False, False, "invalid-address")
    assert repr(address) in (result.error_text or "")
    assert "positive whole number" in (result.error_text or "")
    assert sim.requests == []

    bad, good = ch.send(message(), recipients(address, "party:4"))
    assert (bad.ok, bad.error_code, good.ok) == (False, "invalid-address", True)
    assert sent_targets(sim) == [("toparty", "4")]


def test_app_malformed_address_and_a_body_too_long_are_told_apart(
    sim: WeComSimulator, clock: Clock
) -> None:
    out = app(sim, clock).send(message("很" * 1000), recipients("tag:x", "party:2"))
    assert [r.error_code for r in out] == ["invalid-address", "too-long"]
    assert sim.requests == []


def test_app_splits_a_full_mixed_claim_into_calls_within_each_limit(
    sim: WeComSimulator, clock: Clock
) -> None:
    addresses = (
        [f"u{i}" for i in range(600)]
        + [f"party:{i}" for i in range(1, 251)]
        + [f"tag:{i}" for i in range(1, 151)]
    )
    assert len(addresses) == 1000  # one claim at max_batch
    out = app(sim, clock).send(message(), recipients(*addresses))

    assert len(out) == 1000 and all(r.ok for r in out)
    assert [(f, len(v.split("|"))) for f, v in sent_targets(sim)] == [
        ("touser", 600),
        ("toparty", 100),
        ("toparty", 100),
        ("toparty", 50),
        ("totag", 100),
        ("totag", 50),
    ]
    assert len(sim.accepted) == 6 and sim.tokens_issued == 1


def test_app_resend_to_departments_and_tags_is_deduplicated_by_wecom(
    sim: WeComSimulator, clock: Clock
) -> None:
    ch = app(sim, clock)
    for _ in range(2):  # the reclaimed rows, sent again
        out = ch.send(message(), recipients("alice", "party:2", "tag:7"))
        assert all(r.ok for r in out)
    assert len(sim.accepted) == 3 and sim.duplicates == 3
    assert all(r.json()["enable_duplicate_check"] == 1 for r in sim.requests[1:])


def test_app_department_call_renews_a_rejected_token_once(
    sim: WeComSimulator, clock: Clock
) -> None:
    ch = app(sim, clock)
    ch.send(message("warm\nup"), recipients("alice"))
    sim.inject(error(42001))
    [result] = ch.send(message(), recipients("party:2"))
    assert result.ok and sim.tokens_issued == 2
    assert sim.accepted[-1]["toparty"] == ["2"]


def test_app_token_failure_fails_every_kind_with_one_fetch(
    sim: WeComSimulator, clock: Clock
) -> None:
    sim.inject(error(45009))
    out = app(sim, clock).send(message(), recipients("alice", "party:2", "tag:7", "tag:x"))
    assert [(r.ok, r.retryable, r.error_code) for r in out] == [(False, True, "45009")] * 3 + [
        (False, False, "invalid-address")
    ]
    assert paths(sim) == ["/cgi-bin/gettoken"]


def test_simulator_lists_invalid_targets_of_a_mixed_call_and_81013_when_all_are(
    sim: WeComSimulator, clock: Clock
) -> None:
    sim.users, sim.parties, sim.tags = {"alice"}, {"2"}, {"7"}
    token = requests.get(
        f"{sim.url}/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": CORP_SECRET}
    ).json()["access_token"]

    def post(**targets: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "msgtype": "text",
            "agentid": AGENT_ID,
            "text": {"content": "x"},
            **targets,
        }
        url = f"{sim.url}/cgi-bin/message/send"
        answer: dict[str, Any] = requests.post(
            url, params={"access_token": token}, json=body
        ).json()
        return answer

    partly = post(touser="alice|bob", toparty="2 | 3", totag="7|8")
    assert (partly["errcode"], partly["invaliduser"]) == (0, "bob")
    assert (partly["invalidparty"], partly["invalidtag"]) == ("3", "8")
    assert post(touser="bob", toparty="3", totag="8")["errcode"] == 81013
    assert post(toparty="|".join(map(str, range(101))))["errcode"] == 40031
    assert post(touser="@all", toparty="3")["errcode"] == 0  # toparty ignored with @all


def test_app_cuts_a_long_body_to_2048_bytes(sim: WeComSimulator, clock: Clock) -> None:
    assert app(sim, clock).send(message(long_body(5000)), recipients("alice"))[0].ok
    sent = sim.accepted[0]["content"]
    assert len(sent.encode()) <= 2048
    assert sent.startswith(HEADLINE + "\n") and sent.endswith("\n" + LINK)


def test_app_body_that_cannot_fit_is_fatal_too_long_and_nothing_is_sent(
    sim: WeComSimulator, clock: Clock
) -> None:
    out = app(sim, clock).send(message("很" * 1000), recipients("alice"))
    assert [(r.ok, r.retryable, r.error_code) for r in out] == [(False, False, "too-long")]
    assert sim.requests == []


@pytest.mark.parametrize("missing", ["corp_id", "corp_secret", "agent_id"])
def test_app_missing_credential_raises_config_error_naming_it(
    sim: WeComSimulator, clock: Clock, missing: str
) -> None:
    creds = {"corp_id": CORP_ID, "corp_secret": CORP_SECRET, "agent_id": str(AGENT_ID)}
    del creds[missing]
    with pytest.raises(ConfigError, match=rf"channels\.wecom\.credentials\.{missing}"):
        app(sim, clock, credentials=creds)


def test_app_agent_id_must_be_a_number(sim: WeComSimulator, clock: Clock) -> None:
    creds = {"corp_id": CORP_ID, "corp_secret": CORP_SECRET, "agent_id": "abc"}
    with pytest.raises(ConfigError, match="agent_id"):
        app(sim, clock, credentials=creds)
