"""WeCom group robot (企业微信群机器人): one webhook call posts one message to one group.

``POST {base_url}/cgi-bin/webhook/send?key=KEY`` with ``text`` or ``markdown``
JSON. The key is the whole credential; users often paste the whole webhook
URL, so ``credentials.key`` accepts either (the key is taken from its query;
the host of a pasted URL is ignored: ``base_url`` alone says where requests go).

Addressing: a robot posts to the one group it belongs to, so the recipients'
addresses are not used. One HTTP call is made per message and every recipient
gets that call's result (configure one recipient per robot channel, e.g. the
group's name, so the ledger has one row per group).

Failure is reported inside HTTP 200 as ``errcode``: 0 is success; 45009
(frequency limit), -1 (busy), HTTP 5xx and transport errors are retryable;
93000 (invalid key), 40058 (too long), 40008 (bad msgtype) are fatal; an
unknown errcode, or a 200 without one, is retryable (never counted as sent).

Size limits (UTF-8 bytes of ``content``: text 2048, markdown 4096) are enforced
before sending: a longer body is cut at a line (or sentence) boundary keeping
its headline and its last line (the "详情：..." link), see :func:`fit`; a body
that cannot be cut to fit gets fatal ``too-long`` and nothing is sent.

Not idempotent: the robot API has no deduplication, so a send interrupted
mid-call may or may not have been delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from alerts.channels.base import Message, Recipient, SendResult
from alerts.channels.fit import fit_text, utf8_bytes
from alerts.channels.http import Reply, Verdict, int_code, judge, post_json, results
from alerts.config import ChannelSettings, ConfigError

__all__ = [
    "DEFAULT_BASE_URL",
    "LIMITS",
    "WeComBotChannel",
    "body_of",
    "build",
    "fit",
    "interpret",
    "parse_key",
    "too_long",
]

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
LIMITS = {"text": 2048, "markdown": 4096}  # bytes of content, UTF-8
RETRY = (45009, -1)
FATAL = (93000, 40058, 40008)
CUT_MARK = "……"  # a line of its own where the body was cut


def body_of(message: Message) -> str:
    """The text a WeCom message carries: the rendered body (its first line is the subject)."""
    return message.body.strip("\n") or message.subject


def fit(content: str, limit: int) -> str | None:
    """``content`` within ``limit`` UTF-8 bytes, or None when it cannot be cut to fit.

    :func:`alerts.channels.fit.fit_text` by UTF-8 bytes: the headline and the
    "详情：..." link line are kept, the lines between cut at a line or sentence
    end, and a line "……" marks the cut when there is room for it.
    """
    return fit_text(content, limit, utf8_bytes, mark=CUT_MARK)


def too_long(
    recipients: Sequence[Recipient], msgtype: str, body: str, limit: int
) -> list[SendResult]:
    """Fatal ``too-long`` for everyone: the body cannot be cut to ``limit`` bytes."""
    return results(
        recipients,
        "fatal",
        code="too-long",
        text=f"{msgtype} body of {utf8_bytes(body)} bytes cannot be cut to {limit}",
    )


def parse_key(value: str, *, channel: str) -> str:
    """The robot key from a bare key or a pasted webhook URL (``...?key=KEY``)."""
    value = value.strip()
    if "://" in value or "?" in value or "key=" in value:
        keys = parse_qs(urlsplit(value).query).get("key") or parse_qs(value).get("key")
        if not keys or not keys[0].strip():
            raise ConfigError(
                f"channels.{channel}.credentials.key: a webhook URL must contain key=..."
            )
        return keys[0].strip()
    return value


def _errcode(body: dict[str, Any]) -> Any:
    return int_code(body.get("errcode"))


def _errtext(body: dict[str, Any]) -> str:
    return f"{_errcode(body)} {body.get('errmsg', '')}".strip()


def interpret(
    reply: Reply,
    *,
    retry: Collection[Any],
    fatal: Collection[Any],
    secrets: Iterable[str | None] = (),
) -> Verdict:
    """The verdict on a WeCom answer (:func:`alerts.channels.http.judge`); secrets masked.

    Only ``errcode`` 0 counts as delivered; an answer without one (a proxy's
    page, an empty 200) retries.
    """
    return judge(
        reply,
        code_of=_errcode,
        text_of=_errtext,
        ok=(0,),
        retry=retry,
        fatal=fatal,
        secrets=secrets,
    )


class WeComBotChannel:
    type = "wecom_bot"
    idempotent = False  # the robot API does not deduplicate
    rate: tuple[float, float] = (20, 60)  # 20 messages per 60 s per robot

    def __init__(
        self,
        *,
        name: str,
        key: str,
        session: requests.Session,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 10.0,
        msgtype: str = "markdown",
        mention_all: bool = False,
    ) -> None:
        if msgtype not in LIMITS:
            raise ConfigError(
                f"channels.{name}.options.msgtype: {msgtype!r} is not one of text, markdown"
            )
        if mention_all and msgtype != "text":
            raise ConfigError(
                f"channels.{name}.options.mention_all: WeCom allows @all only with msgtype text"
            )
        self.name = name
        self._key = key
        self._session = session
        self._url = f"{base_url.rstrip('/')}/cgi-bin/webhook/send"
        self._timeout = timeout_s
        self.msgtype = msgtype
        self.mention_all = mention_all

    def payload(self, content: str) -> dict[str, Any]:
        if self.msgtype == "text":
            text: dict[str, Any] = {"content": content}
            if self.mention_all:
                text["mentioned_list"] = ["@all"]
            return {"msgtype": "text", "text": text}
        return {"msgtype": "markdown", "markdown": {"content": content}}

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """The content :meth:`send` would post, its UTF-8 bytes and the limit.

        A body that cannot be cut to fit comes back whole (over the limit:
        :meth:`send` fails it ``too-long``).
        """
        body = body_of(message)
        limit = LIMITS[self.msgtype]
        content = fit(body, limit)
        text = body if content is None else content
        return text, utf8_bytes(text), limit

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        if not recipients:
            return []
        body = body_of(message)
        limit = LIMITS[self.msgtype]
        content = fit(body, limit)
        if content is None:
            return too_long(recipients, self.msgtype, body, limit)
        reply = post_json(
            self._session,
            self._url,
            self.payload(content),
            timeout=self._timeout,
            params={"key": self._key},
        )
        outcome, code, text = interpret(reply, retry=RETRY, fatal=FATAL, secrets=[self._key])
        return results(recipients, outcome, code=code, text=text)


def _flag(settings: ChannelSettings, option: str) -> bool:
    value = settings.options.get(option, False)
    if not isinstance(value, bool):
        raise ConfigError(f"channels.{settings.name}.options.{option}: must be true or false")
    return value


def build(
    settings: ChannelSettings,
    *,
    session: requests.Session,
    clock: Callable[[], datetime],
) -> WeComBotChannel:
    del clock  # the robot keeps no time-dependent state
    return WeComBotChannel(
        name=settings.name,
        key=parse_key(settings.secret("key"), channel=settings.name),
        session=session,
        base_url=settings.base_url or DEFAULT_BASE_URL,
        timeout_s=settings.timeout_s,
        msgtype=str(settings.options.get("msgtype", "markdown")),
        mention_all=_flag(settings, "mention_all"),
    )
