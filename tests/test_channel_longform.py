"""Long-form channels: e-mail bulletins with inline images, WeChat Official Account articles."""

from __future__ import annotations

import email
import email.policy
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from alerts.channels import Message, Recipient, SendResult, build_channel
from alerts.channels.email import check_inline_images, cid_references
from alerts.channels.wechat_oa import article_content, cut, plain_article
from alerts.config import ChannelSettings, ConfigError
from tests.simulators.base import Answer
from tests.simulators.smtp import SmtpSimulator
from tests.simulators.wechat import IMAGE_MAX, WeChatSimulator

T0 = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)
LINK = "https://alerts.example.cn/outlook/2026-07-20"
SUBJECT = "【风险展望】2026年7月20日至23日：四川省成都市暴雨黄色、雅安市高温风险，请注意防范"
BODY = (
    f"{SUBJECT}\n"
    "未来72小时，四川省成都市预计出现暴雨（最大6小时降雨量61.3毫米，标准50毫米）；"
    "雅安市最高气温接近35℃。请减少户外活动，注意防范城市内涝和中暑。\n"
    f"详情：{LINK}\n"
)
UPLOADIMG = "/cgi-bin/media/uploadimg"
DRAFT = "/cgi-bin/draft/add"
PUBLISH = "/cgi-bin/freepublish/submit"
SENDALL = "/cgi-bin/message/mass/sendall"


def png(seed: int, width: int = 4, height: int = 3) -> bytes:
    """A small valid RGB PNG whose pixels depend on ``seed``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(
        b"\x00" + bytes((seed + x + y) % 256 for x in range(width) for _ in range(3))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


CHART, MAP = png(1), png(2)
HTML = (
    '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
    "<title>风险展望</title><style>p { margin: 0 }</style></head>\n"
    '<body style="font-family: sans-serif">\n'
    '<h1 style="color:#c00">未来72小时风险展望</h1>\n'
    "<p>成都市：暴雨黄色，预计 61.3 毫米 &amp; 雅安市高温。</p>\n"
    '<img src="cid:chart" alt="成都市逐时降水">\n'
    "<script>alert('x')</script>\n"
    "<p><img src='cid:map' alt=\"风险地图\"></p>\n"
    "</body></html>\n"
)
INNER = (
    '<h1 style="color:#c00">未来72小时风险展望</h1>\n'
    "<p>成都市：暴雨黄色，预计 61.3 毫米 &amp; 雅安市高温。</p>\n"
    '<img src="cid:chart" alt="成都市逐时降水">\n'
    "\n"
    "<p><img src='cid:map' alt=\"风险地图\"></p>"
)


def bulletin(
    *,
    html: str | None = HTML,
    images: tuple[tuple[str, bytes], ...] = (("chart", CHART), ("map", MAP)),
    subject: str = SUBJECT,
    body: str = BODY,
) -> Message:
    return Message(
        "outlook:51:20260720",
        1,
        subject,
        body,
        "zh-CN",
        identifier="outlook-51-20260720",
        html=html,
        images=images,
    )


def rcpts(*addresses: str) -> list[Recipient]:
    return [Recipient(a, f"outlook-51-20260720/ch/{a}") for a in addresses]


def outcome(r: SendResult) -> tuple[bool, bool, str | None]:
    return r.ok, r.retryable, r.error_code


# -- e-mail --------------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpSimulator]:
    with SmtpSimulator(username="alerts", password="pw-test") as sim:
        yield sim


def mail_channel(port: int) -> Any:
    settings = {
        "name": "mail",
        "type": "email",
        "timeout_s": 5,
        "credentials": {
            "smtp_host": "127.0.0.1",
            "from_addr": "预警中心 <alerts@example.gov.cn>",
            "username": "alerts",
            "password": "pw-test",
        },
        "options": {"smtp_port": port, "starttls": False},
    }
    return build_channel(ChannelSettings.model_validate(settings), store=None, clock=lambda: T0)  # type: ignore[arg-type]


def received(sim: SmtpSimulator, i: int = 0) -> Any:
    return email.message_from_bytes(sim.received[i].data, policy=email.policy.default)


def test_email_bulletin_html_with_inline_images(smtp: SmtpSimulator) -> None:
    got = mail_channel(smtp.port).send(bulletin(), rcpts("a@example.org", "b@example.org"))
    assert [r.ok for r in got] == [True, True]
    assert len(smtp.received) == 2
    msg = received(smtp)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Content-Language"] == "zh-CN"
    plain, related = list(msg.iter_parts())
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().replace("\r\n", "\n") == BODY
    assert related.get_content_type() == "multipart/related"
    parts = list(related.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/html", "image/png", "image/png"]
    assert parts[0].get_content().replace("\r\n", "\n") == HTML  # the bulletin, not the body
    assert msg.get_body(("html",)) is parts[0]
    for part, name, data in [(parts[1], "chart", CHART), (parts[2], "map", MAP)]:
        assert part["Content-ID"] == f"<{name}>"
        assert part.get_content_disposition() == "inline"
        assert part.get_filename() == f"{name}.png"
        assert part.get_content() == data


def test_email_bulletin_without_images_is_html_alone(smtp: SmtpSimulator) -> None:
    page = "<!DOCTYPE html><html><body><p>宣传周：防溺水</p></body></html>"
    [result] = mail_channel(smtp.port).send(bulletin(html=page, images=()), rcpts("a@x.org"))
    assert result.ok
    msg = received(smtp)
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg.get_body(("html",)).get_content().strip() == page


def test_email_warning_without_html_is_unchanged(smtp: SmtpSimulator) -> None:
    warning = Message("a", 1, "s", "注意 <b>暴雨</b>\n详情：" + LINK, "zh-CN")
    [result] = mail_channel(smtp.port).send(warning, rcpts("a@x.org"))
    assert result.ok
    msg = received(smtp)
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    html = msg.get_body(("html",)).get_content()
    assert "&lt;b&gt;暴雨&lt;/b&gt;" in html and f'<a href="{LINK}">' in html
    assert msg["Content-Language"] == "zh-CN"


@pytest.mark.parametrize(
    ("html", "images", "error"),
    [
        (HTML, (("chart", CHART),), "not given: cid:map"),
        (HTML, (("chart", CHART), ("map", MAP), ("extra", CHART)), "not referenced.*extra"),
        (None, (("chart", CHART),), "images without html: chart"),
        (HTML, (("chart", CHART), ("map", b"GIF89a...")), "'map' is not a PNG"),
        (HTML, (("chart", CHART), ("map", MAP), ("chart", MAP)), "'chart' is given twice"),
        ('<img src="cid:a b">', (("a b", CHART),), "image name 'a b'"),
    ],
)
def test_email_wrong_images_raise_before_any_connection(
    smtp: SmtpSimulator, html: str | None, images: tuple[tuple[str, bytes], ...], error: str
) -> None:
    channel = mail_channel(smtp.port)
    message = bulletin(html=html, images=images)
    with pytest.raises(ValueError, match=error):
        channel.compose(message, rcpts("a@x.org")[0])
    with pytest.raises(ValueError, match=error):
        channel.send(message, rcpts("a@x.org"))
    assert smtp.received == [] and smtp.auth_log == []


def test_email_message_over_the_servers_size_is_refused_fatally() -> None:
    with SmtpSimulator(username="alerts", password="pw-test", max_size=2000) as sim:
        big = png(3, width=64, height=64)
        page = '<html><body><img src="cid:chart"></body></html>'
        [result] = mail_channel(sim.port).send(
            bulletin(html=page, images=(("chart", big),)), rcpts("a@x.org")
        )
        assert outcome(result) == (False, False, "552")
        assert sim.received == []
        [small] = mail_channel(sim.port).send(Message("a", 1, "s", "短", "zh-CN"), rcpts("a@x.org"))
        assert small.ok


def test_cid_references() -> None:
    page = '<img src="cid:a"><img SRC=\'CID:b.png\'><div style="background:url(cid:c)">cid:d'
    assert cid_references(page) == ["a", "b.png", "c"]
    assert check_inline_images("<p>x</p>", ()) == []


# -- WeChat Official Account articles ------------------------------------------------------


@pytest.fixture
def wx() -> Iterator[WeChatSimulator]:
    with WeChatSimulator() as sim:
        assert isinstance(sim, WeChatSimulator)
        yield sim


def wechat(sim: WeChatSimulator, **options: Any) -> Any:
    settings = ChannelSettings.model_validate(
        {
            "name": "ch",
            "type": "wechat_oa",
            "base_url": sim.url,
            "timeout_s": options.pop("timeout_s", 5.0),
            "credentials": {"app_id": sim.app_id, "app_secret": sim.app_secret},
            "options": {"mode": "article", "thumb_media_id": "THUMB-1", **options},
        }
    )
    return build_channel(settings, store=None, clock=lambda: T0)  # type: ignore[arg-type]


def test_wechat_article_uploads_images_adds_a_draft_and_publishes(wx: WeChatSimulator) -> None:
    ch = wechat(wx, author="应急管理局")
    assert ch.max_batch >= 1000 and ch.idempotent is False
    got = ch.send(bulletin(), rcpts("o-alice", "o-bob", "whatever"))
    assert [r.ok for r in got] == [True] * 3
    [published] = wx.accepted
    assert {r.provider_message_id for r in got} == {published["publish_id"]}
    assert [r.path for r in wx.requests] == [
        "/cgi-bin/stable_token",
        UPLOADIMG,
        UPLOADIMG,
        DRAFT,
        PUBLISH,
    ]
    assert [(u["filename"], u["data"]) for u in wx.uploads] == [
        ("chart.png", CHART),
        ("map.png", MAP),
    ]
    draft = wx.requests[3].json()
    [article] = draft["articles"]
    chart_url, map_url = (u["url"] for u in wx.uploads)
    assert article["content"] == INNER.replace("cid:chart", chart_url).replace("cid:map", map_url)
    assert "cid:" not in article["content"] and "<script" not in article["content"]
    assert "<head" not in article["content"] and "<body" not in article["content"]
    assert published["articles"][0]["content"] == article["content"]  # no image was filtered
    assert article["title"] == SUBJECT[:31] + "…" and len(article["title"]) == 32
    assert article["author"] == "应急管理局"
    assert article["digest"] == cut(BODY, 120) and article["digest"].endswith("…")
    assert article["content_source_url"] == LINK
    assert article["thumb_media_id"] == "THUMB-1"
    assert article["need_open_comment"] == 0
    assert wx.requests[4].json() == {"media_id": published["media_id"]}
    assert wx.drafts == {}  # the published draft left the box
    assert b"\\u" not in wx.requests[3].body  # UTF-8 as is (WeChat refuses escapes: 40033)


def test_wechat_article_from_a_text_message(wx: WeChatSimulator) -> None:
    body = (
        "【宣传】防溺水 <安全> 提示\n\n不要私自下水游泳。\n详情：https://x.example.cn/a?b=1&c=2\n"
    )
    got = wechat(wx).send(bulletin(html=None, images=(), subject="防溺水", body=body), rcpts("x"))
    assert got[0].ok
    [article] = wx.requests[-2].json()["articles"]
    assert article["content"] == (
        "<p>【宣传】防溺水 &lt;安全&gt; 提示</p><p>不要私自下水游泳。</p>"
        "<p>详情：https://x.example.cn/a?b=1&amp;c=2</p>"
    )
    assert article["title"] == "防溺水" and "author" not in article
    assert article["content_source_url"] == "https://x.example.cn/a?b=1&c=2"
    assert wx.uploads == []


def test_wechat_article_url_option_is_the_fallback_link(wx: WeChatSimulator) -> None:
    ch = wechat(wx, url="https://alerts.example.cn/")
    ch.send(bulletin(body="没有链接的正文"), rcpts("x"))
    ch.send(bulletin(images=(("chart", png(7)), ("map", MAP))), rcpts("x"))
    links = [r.json()["articles"][0]["content_source_url"] for r in wx.requests if r.path == DRAFT]
    assert links == ["https://alerts.example.cn/", LINK]


def test_wechat_article_title_limit_option(wx: WeChatSimulator) -> None:
    wx.title_limit = 64
    assert wechat(wx, title_limit=64).send(bulletin(), rcpts("x"))[0].ok
    assert wx.accepted[0]["articles"][0]["title"] == SUBJECT  # 41 characters: whole


def test_wechat_article_images_are_uploaded_once(wx: WeChatSimulator) -> None:
    ch = wechat(wx)
    assert ch.send(bulletin(), rcpts("x"))[0].ok
    assert ch.send(bulletin(subject="第二期"), rcpts("x"))[0].ok
    assert wx.calls(UPLOADIMG) == 2 and wx.calls(DRAFT) == 2 and wx.calls(PUBLISH) == 2
    second = wx.accepted[1]["articles"][0]["content"]
    assert all(u["url"] in second for u in wx.uploads)


@pytest.mark.parametrize("code", [40001, 40014, 42001])
def test_wechat_article_token_error_refreshes_once(wx: WeChatSimulator, code: int) -> None:
    ch = wechat(wx)
    assert ch.send(bulletin(html=None, images=()), rcpts("x"))[0].ok  # the token is cached now
    wx.inject_at(DRAFT, Answer(body={"errcode": code, "errmsg": "access_token invalid"}))
    got = ch.send(bulletin(html=None, images=(), subject="第二期"), rcpts("x", "y"))
    assert [r.ok for r in got] == [True, True]
    assert [b["force_refresh"] for b in wx.token_requests] == [False, True]
    assert wx.calls(DRAFT) == 3 and len(wx.accepted) == 2


def test_wechat_article_expired_token_mid_send(wx: WeChatSimulator) -> None:
    ch = wechat(wx)
    assert ch.send(bulletin(html=None, images=()), rcpts("x"))[0].ok
    wx.expire_tokens()
    assert ch.send(bulletin(), rcpts("x"))[0].ok
    assert wx.forced_refreshes == 1
    assert wx.calls(UPLOADIMG) == 3  # the refused upload, its retry, the second image


def test_wechat_article_second_token_error_is_fatal(wx: WeChatSimulator) -> None:
    ch = wechat(wx)
    assert ch.send(bulletin(html=None, images=()), rcpts("x"))[0].ok
    wx.inject_at(
        DRAFT,
        Answer(body={"errcode": 42001, "errmsg": "access_token expired"}),
        Answer(body={"errcode": 40001, "errmsg": "invalid credential"}),
    )
    got = ch.send(bulletin(html=None, images=(), subject="第二期"), rcpts("x", "y"))
    assert [outcome(r) for r in got] == [(False, False, "40001")] * 2
    assert (got[0].error_text or "").startswith("draft/add: ")
    assert wx.forced_refreshes == 1 and len(wx.accepted) == 1


def test_wechat_article_quota_retries_and_the_draft_is_submitted_again(
    wx: WeChatSimulator,
) -> None:
    ch = wechat(wx)
    wx.inject_at(PUBLISH, Answer(body={"errcode": 45009, "errmsg": "reach max api daily quota"}))
    got = ch.send(bulletin(), rcpts("x", "y"))
    assert [outcome(r) for r in got] == [(False, True, "45009")] * 2
    assert (got[0].error_text or "").startswith("freepublish/submit: ")
    assert list(wx.drafts) == ["DRAFT-1"]
    again = ch.send(bulletin(), rcpts("x", "y"))
    assert [r.ok for r in again] == [True, True]
    assert wx.calls(UPLOADIMG) == 2 and wx.calls(DRAFT) == 1 and wx.calls(PUBLISH) == 2
    assert wx.accepted[0]["media_id"] == "DRAFT-1" and wx.drafts == {}


def test_wechat_article_kept_draft_deleted_meanwhile_retries_with_a_new_one(
    wx: WeChatSimulator,
) -> None:
    ch = wechat(wx)
    wx.inject_at(PUBLISH, Answer(body={"errcode": -1, "errmsg": "system error"}))
    assert outcome(ch.send(bulletin(), rcpts("x"))[0]) == (False, True, "-1")
    wx.drafts.clear()  # an operator deleted the draft on the MP website
    assert outcome(ch.send(bulletin(), rcpts("x"))[0]) == (False, True, "40007")
    assert ch.send(bulletin(), rcpts("x"))[0].ok
    assert wx.calls(DRAFT) == 2 and wx.accepted[0]["media_id"] == "DRAFT-2"


@pytest.mark.parametrize(
    ("path", "answer", "expected"),
    [
        (PUBLISH, Answer(body={"errcode": 53503, "errmsg": "该草稿未通过发布检查"}), "53503"),
        (PUBLISH, Answer(body={"errcode": 53504, "errmsg": "需前往公众平台官网使用草稿"}), "53504"),
        (PUBLISH, Answer(body={"errcode": 53505, "errmsg": "请手动保存成功后再发表"}), "53505"),
        (DRAFT, Answer(body={"errcode": 48001, "errmsg": "api unauthorized"}), "48001"),
        (DRAFT, Answer(status=403, body="forbidden"), "http-403"),
        (UPLOADIMG, Answer(status=400, body={"error": "bad"}), "http-400"),
    ],
)
def test_wechat_article_fatal_answers(
    wx: WeChatSimulator, path: str, answer: Answer, expected: str
) -> None:
    ch = wechat(wx)
    wx.inject_at(path, answer)
    got = ch.send(bulletin(), rcpts("x", "y"))
    assert [outcome(r) for r in got] == [(False, False, expected)] * 2
    assert got[0].error_text
    assert wx.accepted == []
    if path == PUBLISH:  # the refused draft is not kept: the next send adds a fresh one
        assert ch.send(bulletin(), rcpts("x"))[0].ok
        assert wx.calls(DRAFT) == 2


@pytest.mark.parametrize(
    ("path", "answer", "expected"),
    [
        (PUBLISH, Answer(body={"errcode": 53501, "errmsg": "请勿频繁请求"}), "53501"),
        (PUBLISH, Answer(body={"errcode": 99999, "errmsg": "new"}), "99999"),  # unknown
        (DRAFT, Answer(status=502, body="bad gateway"), "http-502"),
        (DRAFT, Answer(body={"errcode": 0, "errmsg": "ok"}), "http-200"),  # no media_id
        (UPLOADIMG, Answer(body={"errcode": 45009, "errmsg": "quota"}), "45009"),
        (UPLOADIMG, Answer(delay_s=1.0, body={"url": "late"}), "timeout"),
    ],
)
def test_wechat_article_retryable_answers(
    wx: WeChatSimulator, path: str, answer: Answer, expected: str
) -> None:
    wx.inject_at(path, answer)
    got = wechat(wx, timeout_s=0.3).send(bulletin(), rcpts("x"))
    assert outcome(got[0]) == (False, True, expected)
    assert wx.accepted == []


def test_wechat_article_image_too_large_is_fatal_at_upload(wx: WeChatSimulator) -> None:
    huge = b"\x89PNG\r\n\x1a\n" + bytes(IMAGE_MAX)
    got = wechat(wx).send(bulletin(images=(("chart", huge), ("map", MAP))), rcpts("x"))
    assert outcome(got[0]) == (False, False, "40009")
    assert (got[0].error_text or "").startswith("media/uploadimg chart: ")
    assert wx.calls(DRAFT) == 0


def test_wechat_article_unknown_cover_is_fatal(wx: WeChatSimulator) -> None:
    got = wechat(wx, thumb_media_id="THUMB-GONE").send(bulletin(), rcpts("x"))
    assert outcome(got[0]) == (False, False, "40007")
    assert wx.calls(PUBLISH) == 0


def test_wechat_article_too_long_fails_without_a_call(wx: WeChatSimulator) -> None:
    page = "<html><body>" + "<p>风险</p>" * 3000 + "</body></html>"
    got = wechat(wx).send(bulletin(html=page, images=()), rcpts("x"))
    assert outcome(got[0]) == (False, False, "too-long")
    assert wx.requests == []


@pytest.mark.parametrize(
    ("html", "images"),
    [
        (HTML, (("chart", CHART),)),  # cid:map is missing
        (HTML, (("chart", CHART), ("map", MAP), ("more", MAP))),  # "more" is not referenced
        (None, (("chart", CHART),)),
    ],
)
def test_wechat_article_wrong_images_raise_before_any_call(
    wx: WeChatSimulator, html: str | None, images: tuple[tuple[str, bytes], ...]
) -> None:
    ch = wechat(wx)
    with pytest.raises(ValueError):
        ch.send(bulletin(html=html, images=images), rcpts("x"))
    with pytest.raises(ValueError):
        ch.preview(bulletin(html=html, images=images))
    assert wx.requests == []


def test_wechat_article_push_mass_sends_the_draft(wx: WeChatSimulator) -> None:
    ch = wechat(wx, push=True)
    got = ch.send(bulletin(), rcpts("x", "y"))
    assert [r.ok for r in got] == [True, True]
    assert {r.provider_message_id for r in got} == {"1000"}
    assert wx.calls(PUBLISH) == 0 and wx.calls(DRAFT) == 1
    [sent] = wx.accepted
    assert sent["kind"] == "mass-mpnews"
    assert wx.requests[-1].json() == {
        "filter": {"is_to_all": True},
        "mpnews": {"media_id": "DRAFT-1"},
        "msgtype": "mpnews",
        "send_ignore_reprint": 0,
    }
    assert wx.drafts == {}
    tagged = wechat(wx, push=True, tag_id=100)
    assert tagged.send(bulletin(subject="第二期"), rcpts("x"))[0].ok
    assert wx.accepted[1]["filter"] == {"is_to_all": False, "tag_id": 100}


def test_wechat_article_push_without_quota_is_fatal(wx: WeChatSimulator) -> None:
    wx.inject_at(SENDALL, Answer(body={"errcode": 45028, "errmsg": "has no masssend quota"}))
    got = wechat(wx, push=True).send(bulletin(), rcpts("x"))
    assert outcome(got[0]) == (False, False, "45028")
    assert (got[0].error_text or "").startswith("message/mass/sendall: ")


def test_wechat_article_preview(wx: WeChatSimulator) -> None:
    text, size, limit = wechat(wx).preview(bulletin())
    assert text.splitlines() == [
        f"title: {SUBJECT[:31]}…",
        f"digest: {cut(BODY, 120)}",
        f"html: {len(INNER)} characters, 2 images",
        f"url: {LINK}",
    ]
    assert (size, limit) == (len(INNER), 20_000)
    assert wx.requests == []


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({}, "thumb_media_id"),
        ({"thumb_media_id": "  "}, "thumb_media_id"),
        ({"thumb_media_id": "T", "author": "作" * 17}, "author"),
        ({"thumb_media_id": "T", "title_limit": 65}, "title_limit"),
        ({"thumb_media_id": "T", "title_limit": "32"}, "title_limit"),
        ({"thumb_media_id": "T", "push": "yes"}, "push"),
        ({"thumb_media_id": "T", "push": True, "tag_id": "all"}, "tag_id"),
    ],
)
def test_wechat_article_config_errors_name_the_key(options: dict[str, Any], named: str) -> None:
    settings = ChannelSettings.model_validate(
        {
            "name": "ch",
            "type": "wechat_oa",
            "credentials": {"app_id": "a", "app_secret": "s"},
            "options": {"mode": "article", **options},
        }
    )
    with pytest.raises(ConfigError, match=rf"channels\.ch\.options\.{named}"):
        build_channel(settings, store=None, clock=lambda: T0)  # type: ignore[arg-type]


def test_article_content_takes_the_body_without_scripts() -> None:
    assert article_content(HTML) == INNER
    assert article_content("<HTML><HEAD><TITLE>t</TITLE></HEAD><P>x</P></HTML>") == "<P>x</P>"
    assert article_content("<body><p>a</p><SCRIPT type='x'>evil()") == "<p>a</p>"
    assert article_content('<body class="b"><p style="color:red">a</p>') == (
        '<p style="color:red">a</p>'
    )
    assert plain_article("a < b\n\n  c  \n") == "<p>a &lt; b</p><p>c</p>"
