"""WeChat Official Account and Weibo channels against their protocol simulators."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.channels import build_channel
from alerts.channels.base import Channel, Message, Recipient, SendResult
from alerts.channels.wechat_oa import cut
from alerts.channels.weibo import compose_status, unique_suffix, weibo_length
from alerts.config import ChannelSettings, ConfigError
from tests.simulators.base import Answer
from tests.simulators.wechat import WeChatSimulator
from tests.simulators.weibo import WeiboSimulator, weibo_count

T0 = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)
SAFE = "https://alerts.example.cn/"
IDENT = "110000001000000_20260720080000_0"
SUBJECT = "【暴雨红色预警·升级】北京市、天津市、河北省石家庄市、保定市等12地"
BODY = (
    f"{SUBJECT}\n"
    "应急管理局预警发布中心升级暴雨红色（I级）预警：预计2026年07月20日14时00分（北京时间）前后，"
    "北京市未来6小时内降雨量可达120.0毫米（标准100毫米）。\n"
    "防御指南：政府及相关部门按照职责做好防暴雨应急和抢险工作；停止集会、停课、停业（除特殊行业外）；"
    "做好山洪、滑坡、泥石流等灾害的防御和抢险工作。\n"
    "详情：https://alerts.example.cn/?alert=rainstorm:weather:110000\n"
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def message(
    *, body: str = BODY, subject: str = SUBJECT, identifier: str | None = IDENT, version: int = 1
) -> Message:
    return Message(
        "rainstorm:weather:110000", version, subject, body, "zh-CN", identifier=identifier
    )


def rcpts(*addresses: str) -> list[Recipient]:
    return [Recipient(a, f"{IDENT}/ch/{a}") for a in addresses]


def channel(clock: Clock, kind: str, **fields: Any) -> Channel:
    settings = ChannelSettings.model_validate({"name": "ch", "type": kind, **fields})
    return build_channel(settings, store=None, clock=clock)  # type: ignore[arg-type]


def outcome(r: SendResult) -> tuple[bool, bool, str | None]:
    return r.ok, r.retryable, r.error_code


# -- WeChat Official Account ---------------------------------------------------------------


@pytest.fixture
def wx() -> Iterator[WeChatSimulator]:
    with WeChatSimulator() as sim:
        assert isinstance(sim, WeChatSimulator)
        yield sim


def wechat(sim: WeChatSimulator, clock: Clock, **options: Any) -> Channel:
    creds = options.pop("credentials", {"app_id": sim.app_id, "app_secret": sim.app_secret})
    timeout = options.pop("timeout_s", 5.0)
    return channel(
        clock,
        "wechat_oa",
        base_url=sim.url,
        timeout_s=timeout,
        credentials=creds,
        options={"template_id": "TPL-WARN", **options},
    )


def test_wechat_template_message_per_follower(wx: WeChatSimulator) -> None:
    ch = wechat(wx, Clock())
    assert ch.idempotent is False and ch.name == "ch"
    got = ch.send(message(), rcpts("o-alice", "o-bob"))
    assert [r.ok for r in got] == [True, True]
    assert [r.provider_message_id for r in got] == ["1000", "1001"]
    assert [a["touser"] for a in wx.accepted] == ["o-alice", "o-bob"]
    sent = wx.accepted[0]
    assert sent["template_id"] == "TPL-WARN"
    assert sent["url"] == "https://alerts.example.cn/?alert=rainstorm:weather:110000"
    assert sent["data"] == {"first": {"value": SUBJECT[:19] + "…"}}
    assert wx.token_requests == [
        {
            "grant_type": "client_credential",
            "appid": "wx-app",
            "secret": "wx-secret",
            "force_refresh": False,
        }
    ]
    assert ch.send(message(), []) == []


def test_wechat_url_option_wins_and_no_url_is_omitted(wx: WeChatSimulator) -> None:
    clock = Clock()
    wechat(wx, clock, url="https://x.example.cn/a").send(message(), rcpts("o-alice"))
    wechat(wx, clock).send(message(body="无链接"), rcpts("o-alice"))
    assert wx.accepted[0]["url"] == "https://x.example.cn/a"
    assert "url" not in wx.accepted[1]


def test_wechat_fields_are_cut_to_20_characters_visibly(wx: WeChatSimulator) -> None:
    fields = {
        "first": "subject",
        "keyword1": "hazard",
        "keyword2": "level",
        "keyword3": "area",
        "keyword4": "time",
    }
    subject = "【演练】【暴雨红色预警】北京市\n海淀区、朝阳区、丰台区、石景山区"
    got = wechat(wx, Clock(), fields=fields).send(message(subject=subject), rcpts("o-alice"))
    assert got[0].ok, got
    data = {k: v["value"] for k, v in wx.accepted[0]["data"].items()}
    assert data == {
        "first": "【演练】【暴雨红色预警】北京市 海淀区…",
        "keyword1": "暴雨",
        "keyword2": "红色预警",
        "keyword3": "北京市 海淀区、朝阳区、丰台区、石景山区",
        "keyword4": "2026-07-20 08:00",  # the identifier's issue time, Beijing
    }
    assert all(len(v) <= 20 and "\n" not in v for v in data.values())


def test_wechat_time_without_identifier_is_the_clock_in_beijing(wx: WeChatSimulator) -> None:
    ch = wechat(wx, Clock(), fields={"first": "time"})
    ch.send(message(identifier=None), rcpts("o-alice"))
    assert wx.accepted[0]["data"] == {"first": {"value": "2026-07-20 08:00"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("短文本", "短文本"),
        ("一行\n两行\r\n  三行", "一行 两行 三行"),
        ("一二三四五六七八九十" * 2, "一二三四五六七八九十" * 2),
        ("一二三四五六七八九十" * 2 + "多", "一二三四五六七八九十一二三四五六七八九…"),
        ("a" * 18 + "e\u0301" + "zz", "a" * 18 + "…"),  # never splits é from its accent
        ("a" * 17 + "👨\u200d👩" + "zz", "a" * 17 + "…"),  # nor an emoji sequence
    ],
)
def test_cut(text: str, expected: str) -> None:
    assert cut(text) == expected
    assert len(cut(text)) <= 20


@pytest.mark.parametrize(
    ("openid", "expected"),
    [
        ("o-gone", (False, False, "43004")),  # not following: the subscriber goes inactive
        ("o-refuses", (False, False, "43101")),
        ("o-nobody", (False, False, "40003")),
    ],
)
def test_wechat_subscriber_errors_from_the_simulator(
    wx: WeChatSimulator, openid: str, expected: tuple[bool, bool, str]
) -> None:
    got = wechat(wx, Clock()).send(message(), rcpts("o-alice", openid))
    assert got[0].ok
    assert outcome(got[1]) == expected
    assert got[1].error_text


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(body={"errcode": -1, "errmsg": "system error"}), (False, True, "-1")),
        (
            Answer(body={"errcode": 45009, "errmsg": "api freq out of limit"}),
            (False, True, "45009"),
        ),
        (Answer(body={"errcode": 43004, "errmsg": "require subscribe"}), (False, False, "43004")),
        (Answer(body={"errcode": 43101, "errmsg": "user refuse"}), (False, False, "43101")),
        (Answer(body={"errcode": 47003, "errmsg": "argument invalid"}), (False, False, "47003")),
        (Answer(body={"errcode": 40037, "errmsg": "invalid template_id"}), (False, False, "40037")),
        (Answer(body={"errcode": 88888, "errmsg": "new"}), (False, True, "88888")),  # unknown
        (Answer(status=502, body="bad gateway"), (False, True, "http-502")),
        (Answer(status=503, body={"errcode": -1}), (False, True, "http-503")),
        (Answer(status=200, body="<html>"), (False, True, "http-200")),
        (Answer(delay_s=1.0, body={"errcode": 0, "msgid": 1}), (False, True, "timeout")),
    ],
)
def test_wechat_codes_are_classified(
    wx: WeChatSimulator, answer: Answer, expected: tuple[bool, bool, str]
) -> None:
    ch = wechat(wx, Clock(), timeout_s=0.3)
    assert ch.send(message(), rcpts("o-alice"))[0].ok  # the token is cached now
    wx.inject(answer)
    got = ch.send(message(), rcpts("o-alice"))
    assert outcome(got[0]) == expected
    assert got[0].error_text
    assert wx.forced_refreshes == 0


@pytest.mark.parametrize("code", [40001, 40014, 42001])
def test_wechat_token_error_refreshes_once_then_succeeds(wx: WeChatSimulator, code: int) -> None:
    ch = wechat(wx, Clock())
    assert ch.send(message(), rcpts("o-alice"))[0].ok
    wx.inject(Answer(body={"errcode": code, "errmsg": "access_token invalid"}))
    got = ch.send(message(), rcpts("o-bob"))
    assert got[0].ok and got[0].provider_message_id
    assert [b["force_refresh"] for b in wx.token_requests] == [False, True]
    assert [a["touser"] for a in wx.accepted] == ["o-alice", "o-bob"]


@pytest.mark.parametrize("code", [40001, 40014, 42001])
def test_wechat_token_error_after_the_refresh_is_fatal(wx: WeChatSimulator, code: int) -> None:
    ch = wechat(wx, Clock())
    assert ch.send(message(), rcpts("o-alice"))[0].ok
    wx.inject(
        Answer(body={"errcode": 42001, "errmsg": "access_token expired"}),
        Answer(body={"access_token": "fresh", "expires_in": 7200}),  # the forced refresh
        Answer(body={"errcode": code, "errmsg": "still refused"}),
    )
    got = ch.send(message(), rcpts("o-bob"))
    assert outcome(got[0]) == (False, False, str(code))
    assert wx.forced_refreshes == 0  # the injected refresh answered it
    assert len(wx.requests) == 1 + 1 + 3


def test_wechat_expired_token_is_refreshed_exactly_once(wx: WeChatSimulator) -> None:
    ch = wechat(wx, Clock())
    assert ch.send(message(), rcpts("o-alice"))[0].ok
    wx.expire_tokens()
    got = ch.send(message(), rcpts("o-alice", "o-bob"))
    assert [r.ok for r in got] == [True, True]
    assert wx.forced_refreshes == 1
    sends = [r for r in wx.requests if r.path == "/cgi-bin/message/template/send"]
    assert len(sends) == 1 + 3  # warm-up, the refused one, its retry, the second recipient


def test_wechat_second_expiry_during_the_retry_is_fatal(wx: WeChatSimulator) -> None:
    ch = wechat(wx, Clock())
    assert ch.send(message(), rcpts("o-alice"))[0].ok
    wx.expire_tokens(also_next=1)  # the refreshed token is already expired too
    got = ch.send(message(), rcpts("o-alice"))
    assert outcome(got[0]) == (False, False, "42001")
    assert wx.forced_refreshes == 1
    assert len(wx.accepted) == 1


def test_wechat_token_is_cached_until_five_minutes_before_expiry(wx: WeChatSimulator) -> None:
    clock = Clock()
    ch = wechat(wx, clock)
    for _ in range(3):
        assert ch.send(message(), rcpts("o-alice"))[0].ok
    assert len(wx.token_requests) == 1
    clock.now = T0 + timedelta(seconds=7200 - 300 - 1)
    assert ch.send(message(), rcpts("o-alice"))[0].ok
    assert len(wx.token_requests) == 1
    clock.now = T0 + timedelta(seconds=7200 - 300)
    assert ch.send(message(), rcpts("o-alice"))[0].ok
    assert [b["force_refresh"] for b in wx.token_requests] == [False, False]


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        ({"app_id": "wx-other", "app_secret": "wx-secret"}, "40013"),
        ({"app_id": "wx-app", "app_secret": "wrong"}, "40125"),
    ],
)
def test_wechat_bad_credentials_are_fatal(
    wx: WeChatSimulator, credentials: dict[str, str], code: str
) -> None:
    got = wechat(wx, Clock(), credentials=credentials).send(message(), rcpts("o-alice", "o-bob"))
    assert [outcome(r) for r in got] == [(False, False, code)] * 2
    assert "stable_token" in (got[0].error_text or "")
    assert wx.accepted == []


def test_wechat_token_endpoint_timeout_is_retryable(wx: WeChatSimulator) -> None:
    wx.inject(Answer(delay_s=1.0, body={"access_token": "late", "expires_in": 7200}))
    got = wechat(wx, Clock(), timeout_s=0.3).send(message(), rcpts("o-alice"))
    assert outcome(got[0]) == (False, True, "timeout")


def test_wechat_mass_send_by_tag_is_one_call(wx: WeChatSimulator) -> None:
    ch = channel(
        Clock(),
        "wechat_oa",
        base_url=wx.url,
        credentials={"app_id": "wx-app", "app_secret": "wx-secret"},
        options={"mode": "mass", "tag_id": 100},
        recipients=["tag-100"],
    )
    got = ch.send(message(), rcpts("a", "b", "c"))
    assert [r.ok for r in got] == [True] * 3
    assert {r.provider_message_id for r in got} == {"1000"}
    assert len(wx.accepted) == 1
    sent = wx.accepted[0]
    assert sent["filter"] == {"is_to_all": False, "tag_id": 100}
    assert sent["msgtype"] == "text" and sent["text"]["content"] == BODY.strip()
    wx.inject(Answer(body={"errcode": 45009, "errmsg": "reach max api daily quota limit"}))
    assert [outcome(r) for r in ch.send(message(), rcpts("a", "b"))] == [(False, True, "45009")] * 2


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (
            {"credentials": {"app_id": "x"}, "options": {"template_id": "T"}},
            "channels.ch.credentials.app_secret",
        ),
        (
            {"credentials": {"app_secret": "x"}, "options": {"template_id": "T"}},
            "channels.ch.credentials.app_id",
        ),
        ({"options": {}}, "channels.ch.options.template_id"),
        (
            {"options": {"template_id": "T", "fields": {"first": "colour"}}},
            "channels.ch.options.fields",
        ),
        ({"options": {"mode": "mass"}}, "channels.ch.options.tag_id"),
        ({"options": {"mode": "broadcast"}}, "channels.ch.options.mode"),
        ({"options": {"template_id": "T", "url": "ftp://x"}}, "channels.ch.options.url"),
    ],
)
def test_wechat_config_errors_name_the_key(fields: dict[str, Any], named: str) -> None:
    fields.setdefault("credentials", {"app_id": "a", "app_secret": "s"})
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        channel(Clock(), "wechat_oa", **fields)


# -- Weibo ------------------------------------------------------------------------------------


@pytest.fixture
def wb() -> Iterator[WeiboSimulator]:
    with WeiboSimulator() as sim:
        assert isinstance(sim, WeiboSimulator)
        yield sim


def weibo(
    sim: WeiboSimulator, *, token: str = "wb-token", safe: str = SAFE, timeout_s: float = 5.0
) -> Channel:
    return channel(
        Clock(),
        "weibo",
        base_url=sim.url,
        timeout_s=timeout_s,
        credentials={"access_token": token},
        options={"safe_domain_url": safe},
    )


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("a", 1),  # half a character, rounded up
        ("ab", 1),
        ("abc", 2),
        ("暴雨", 2),
        ("暴雨a", 3),
        ("暴雨ab", 3),
        ("【暴雨红色预警】", 8),  # full-width brackets count one each
        ("预警·升级", 5),  # U+00B7 is not ASCII: one
        ("https://alerts.example.cn/", 13),  # 26 ASCII
        ("详情 https://alerts.example.cn/?a=1", 18),  # 2 + 31 halves, rounded up
        ("😀", 2),  # outside the BMP: two UTF-16 units
        ("暴" * 140, 140),
        ("a" * 281, 141),
    ],
)
def test_weibo_length_counts_cjk_one_and_ascii_half(text: str, count: int) -> None:
    assert weibo_length(text) == count
    assert weibo_count(text) == count  # the simulator agrees


def test_weibo_post_success(wb: WeiboSimulator) -> None:
    ch = weibo(wb)
    assert ch.idempotent is False
    got = ch.send(message(), rcpts("followers", "also"))
    assert [r.ok for r in got] == [True, True]
    assert {r.provider_message_id for r in got} == {"4900000000000001"}
    assert len(wb.accepted) == 1
    status = wb.accepted[0]["status"]
    assert status == compose_status(message(), SAFE)
    assert status.startswith(SUBJECT + "\n")
    assert status.endswith(
        "https://alerts.example.cn/?alert=rainstorm:weather:110000 (20260720080000-0)"
    )
    assert weibo_length(status) <= 140
    assert ch.send(message(), []) == []
    assert len(wb.requests) == 1


LINK = "https://alerts.example.cn/?alert=rainstorm:weather:110000"
TAIL = f"{LINK} (20260720080000-0)"  # 76 ASCII: 38


def test_weibo_status_is_fitted_at_a_sentence_boundary() -> None:
    body = (
        f"{SUBJECT}\n"
        "北京市未来6小时内降雨量可达120.0毫米。请停止户外集会！\n"
        "中小学停课；山区注意防范山洪、泥石流。Stay indoors. "
        "交通部门加强道路巡查，及时发布路况信息。\n"
        f"详情：{LINK}\n"
    )
    status = compose_status(message(body=body), SAFE)
    assert status == (
        f"{SUBJECT}\n"  # 33 + newline 0.5
        "北京市未来6小时内降雨量可达120.0毫米。请停止户外集会！\n"  # 27 + 0.5
        "中小学停课；山区注意防范山洪、泥石流。Stay indoors.\n"  # 25.5 + 0.5
        f"{TAIL}"  # 38
    )
    assert weibo_length(status) == 125  # the next sentence (20.5) would make 145.5
    assert (
        weibo_length(
            status.replace("\n" + TAIL, " 交通部门加强道路巡查，及时发布路况信息。\n" + TAIL)
        )
        > 140
    )


def test_weibo_status_keeps_leading_clauses_when_no_sentence_fits() -> None:
    status = compose_status(message(), SAFE)
    assert status == (
        f"{SUBJECT}\n"
        "应急管理局预警发布中心升级暴雨红色（I级）预警：预计2026年07月20日14时00分（北京时间）前后…\n"
        f"{TAIL}"
    )
    assert weibo_length(status) == 118


def test_weibo_status_uses_the_safe_url_when_the_body_links_elsewhere() -> None:
    body = f"{SUBJECT}\n第一句。第二句！\n详情：http://localhost:8080/?alert=x\n"
    status = compose_status(message(body=body), SAFE)
    assert status == f"{SUBJECT}\n第一句。第二句！\n{SAFE} (20260720080000-0)"


def test_weibo_status_keeps_headline_and_link_of_a_long_single_sentence() -> None:
    body = "【台风红色预警】沿海\n" + "狂风暴雨" * 60 + "。\n"
    status = compose_status(message(body=body, identifier="CN-1"), SAFE)
    assert status == f"【台风红色预警】沿海\n{SAFE} (CN-1)"


def test_weibo_headline_too_long_is_cut_visibly() -> None:
    status = compose_status(message(body="警" * 200), SAFE)
    headline, tail = status.split("\n")
    assert headline.endswith("…")
    assert weibo_length(status) == 139  # 116 + 0.5 + 22.5: no CJK character fits the last half
    assert tail == f"{SAFE} (20260720080000-0)"


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        (IDENT, "20260720080000-0"),  # GB/T 35965.1: issue time and serial
        ("110000001000000_20260720080000_7", "20260720080000-7"),
        ("CN-42", "CN-42"),
        ("urn:oid:2.49.0.1.156.0.2026.7.20.12345678", "sha1"),
        (None, "sha1"),  # of alert_id#version
    ],
)
def test_weibo_unique_suffix(identifier: str | None, expected: str) -> None:
    got = unique_suffix(message(identifier=identifier))
    if expected == "sha1":
        seed = identifier or "rainstorm:weather:110000#1"
        assert got == hashlib.sha1(seed.encode()).hexdigest()[:8]
    else:
        assert got == expected
    other = unique_suffix(message(identifier=identifier, version=2))
    assert (other != got) == (identifier is None)


def test_weibo_same_text_twice_is_not_a_duplicate_post(wb: WeiboSimulator) -> None:
    ch = weibo(wb)
    first = ch.send(message(identifier="110000001000000_20260720080000_0"), rcpts("f"))
    second = ch.send(message(identifier="110000001000000_20260720090000_0"), rcpts("f"))
    assert first[0].ok and second[0].ok
    assert wb.accepted[0]["status"] != wb.accepted[1]["status"]
    # the very same message again is refused by Weibo as a repeat: fatal, not retried
    again = ch.send(message(identifier="110000001000000_20260720080000_0"), rcpts("f"))
    assert outcome(again[0]) == (False, False, "20019")


def test_weibo_simulator_checks(wb: WeiboSimulator) -> None:
    assert outcome(weibo(wb, token="wb-expired").send(message(), rcpts("f"))[0]) == (
        False,
        False,
        "21327",
    )
    off_domain = weibo(wb, safe="https://elsewhere.example.com/")
    assert outcome(off_domain.send(message(), rcpts("f"))[0]) == (False, False, "10017")
    assert wb.accepted == []


def test_weibo_rate_limit_is_retryable() -> None:
    with WeiboSimulator(rate_limit=1) as sim:
        assert isinstance(sim, WeiboSimulator)
        ch = weibo(sim)
        assert ch.send(message(version=1, identifier="A-1"), rcpts("f"))[0].ok
        got = ch.send(message(version=2, identifier="A-2"), rcpts("f", "g"))
        assert [outcome(r) for r in got] == [(False, True, "20016")] * 2


def _weibo_error(status: int, code: int) -> Answer:
    return Answer(
        status=status,
        body={"request": "/2/statuses/share.json", "error_code": code, "error": f"e{code}"},
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (_weibo_error(400, 10022), (False, True, "10022")),
        (_weibo_error(400, 10023), (False, True, "10023")),
        (_weibo_error(400, 10024), (False, True, "10024")),
        (_weibo_error(403, 20016), (False, True, "20016")),
        (_weibo_error(400, 10017), (False, False, "10017")),
        (_weibo_error(400, 20012), (False, False, "20012")),
        (_weibo_error(400, 20017), (False, False, "20017")),
        (_weibo_error(400, 20019), (False, False, "20019")),
        (_weibo_error(403, 21327), (False, False, "21327")),
        (_weibo_error(403, 10014), (False, False, "10014")),
        (_weibo_error(200, 10014), (False, False, "10014")),  # an error inside HTTP 200
        (_weibo_error(400, 12345), (False, True, "12345")),  # unknown: retry
        (_weibo_error(500, 20019), (False, True, "20019")),  # a 5xx is retried whatever it says
        (Answer(status=502, body="bad gateway"), (False, True, "http-502")),
        (Answer(status=200, body={"created_at": "x"}), (False, True, "http-200")),
        (Answer(delay_s=1.0, body={"id": 1, "idstr": "1"}), (False, True, "timeout")),
    ],
)
def test_weibo_codes_are_classified(
    wb: WeiboSimulator, answer: Answer, expected: tuple[bool, bool, str]
) -> None:
    wb.inject(answer)
    got = weibo(wb, timeout_s=0.3).send(message(), rcpts("f", "g"))
    assert [outcome(r) for r in got] == [expected] * 2
    assert got[0].error_text


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"options": {"safe_domain_url": SAFE}}, "channels.ch.credentials.access_token"),
        ({"credentials": {"access_token": "t"}}, "channels.ch.options.safe_domain_url"),
        (
            {"credentials": {"access_token": "t"}, "options": {"safe_domain_url": "alerts.cn"}},
            "channels.ch.options.safe_domain_url",
        ),
    ],
)
def test_weibo_config_errors_name_the_key(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        channel(Clock(), "weibo", **fields)
