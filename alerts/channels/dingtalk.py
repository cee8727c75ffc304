"""DingTalk custom robot (钉钉自定义机器人): one group, one HTTP call per message.

A robot posts to the one group it belongs to, so ``send`` makes a single call
per message and every recipient of that call gets the call's result (the
recipients are labels for the group, e.g. ``public``, not addresses).

Credentials: ``access_token`` (the token, or the whole webhook URL pasted
from DingTalk: both are accepted) and, when the robot's security setting is
"加签", ``secret``. A signed call carries ``timestamp`` (milliseconds, from
the injected clock) and ``sign = urlencode(base64(HMAC_SHA256(secret,
f"{timestamp}\\n{secret}")))`` as query parameters. A robot secured by
keyword rejects (310000) every message without it: put the keyword in the
templates, not here.

Options: ``msgtype`` ``markdown`` (default: ``{title: subject, text: body}``,
lines joined as markdown paragraphs) or ``text``; ``at_all`` (bool) and
``at_mobiles`` (list) fill ``at``.

DingTalk answers HTTP 200 and reports failure as ``errcode``. The body may
be at most 20000 bytes: a longer message is cut at line boundaries (or a
sentence end) keeping its first line (the headline) and its last (the link),
the dropped lines replaced by ``…`` (:func:`alerts.channels.fit.fit_text`
measuring the JSON body); a message that cannot be cut that far fails
``too-long`` (fatal) without any call. Rate: 20 messages a minute per robot.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import requests

from alerts.channels.base import Message, Recipient, SendResult
from alerts.channels.fit import ELLIPSIS, fit_text
from alerts.channels.http import Reply, Verdict, dumps_json, int_code, judge, post_json, results
from alerts.config import ChannelSettings, ConfigError

__all__ = ["DEFAULT_BASE_URL", "MAX_BYTES", "DingTalkChannel", "build", "sign", "too_long"]

DEFAULT_BASE_URL = "https://oapi.dingtalk.com"
MAX_BYTES = 20000
RATE = (20.0, 60.0)  # messages, per seconds

OK_CODES = (0,)
RETRY_CODES = (130101, 410100, -1)  # sent too fast, busy, system busy
FATAL_CODES = (310000, 300001, 300005, 400013, 400102, 400106)
MSGTYPES = ("markdown", "text")


def sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value: URL-encoded base64 of the HMAC-SHA256."""
    mac = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote_plus(base64.b64encode(mac).decode("ascii"))


def too_long(recipients: Sequence[Recipient], limit: int) -> list[SendResult]:
    """Fatal ``too-long`` for everyone: the JSON body cannot be cut to ``limit`` bytes."""
    return results(
        recipients,
        "fatal",
        code="too-long",
        text=f"cannot fit the message in {limit} bytes at a line boundary",
    )


def _token(value: str) -> str:
    """The access token, from the token itself or a pasted webhook URL."""
    if "://" in value or "access_token=" in value:
        found = parse_qs(urlsplit(value).query).get("access_token")
        if found:
            return found[0]
    return value


class DingTalkChannel:
    """A DingTalk robot; see the module docstring for the wire contract."""

    idempotent = False  # DingTalk does not deduplicate: a retried call may post twice
    rate: tuple[float, float] | None = RATE

    def __init__(
        self,
        *,
        name: str,
        access_token: str,
        secret: str | None,
        session: requests.Session,
        clock: Callable[[], datetime],
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 10.0,
        msgtype: str = "markdown",
        at_all: bool = False,
        at_mobiles: Sequence[str] = (),
    ) -> None:
        self.name = name
        self._token = access_token
        self._secret = secret
        self._session = session
        self._clock = clock
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_s
        self._msgtype = msgtype
        self._at: dict[str, Any] = {"isAtAll": at_all}
        if at_mobiles:
            self._at["atMobiles"] = list(at_mobiles)

    def payload(self, message: Message, text: str) -> dict[str, Any]:
        """The JSON body for ``text`` (the possibly cut body of ``message``)."""
        if self._msgtype == "text":
            return {"msgtype": "text", "text": {"content": text}, "at": self._at}
        markdown = "\n\n".join(text.split("\n"))  # a single newline is no break in markdown
        return {
            "msgtype": "markdown",
            "markdown": {"title": message.subject, "text": markdown},
            "at": self._at,
        }

    def encode(self, message: Message) -> bytes | None:
        """The request body within :data:`MAX_BYTES`, cut if needed; None if impossible."""

        def size(text: str) -> int:
            return len(dumps_json(self.payload(message, text)))

        text = fit_text(message.body, MAX_BYTES, size, mark=ELLIPSIS)
        return None if text is None else dumps_json(self.payload(message, text))

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """The text :meth:`send` would post (markdown: lines as paragraphs), the bytes
        of its JSON body, and the limit. A message that cannot be cut to fit comes
        back whole, its size over the limit (:meth:`send` fails it ``too-long``).
        """
        body = self.encode(message)
        if body is None:
            body = dumps_json(self.payload(message, message.body))
        payload = json.loads(body)
        text = payload["text"]["content"] if "text" in payload else payload["markdown"]["text"]
        return str(text), len(body), MAX_BYTES

    def url(self) -> str:
        url = f"{self._base_url}/robot/send?access_token={quote_plus(self._token)}"
        if self._secret:
            ts = int(self._clock().timestamp() * 1000)
            url += f"&timestamp={ts}&sign={sign(self._secret, ts)}"
        return url

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        if not recipients:
            return []
        body = self.encode(message)
        if body is None:
            return too_long(recipients, MAX_BYTES)
        reply = post_json(self._session, self.url(), body, timeout=self._timeout)
        outcome, code, text = _judge(reply, secrets=(self._token, self._secret))
        return results(recipients, outcome, code=code, text=text)


def _judge(reply: Reply, *, secrets: Sequence[str | None]) -> Verdict:
    """The ``errcode`` first, then HTTP (:func:`alerts.channels.http.judge`)."""
    return judge(
        reply,
        code_of=lambda body: int_code(body.get("errcode")),
        text_of=lambda body: str(body.get("errmsg", "")),
        ok=OK_CODES,
        retry=RETRY_CODES,
        fatal=FATAL_CODES,
        status_code="{}",
        secrets=secrets,
    )


def build(
    settings: ChannelSettings, *, session: requests.Session, clock: Callable[[], datetime]
) -> DingTalkChannel:
    """A DingTalk channel from its settings; ConfigError names a missing or bad key."""
    token = _token(settings.secret("access_token"))
    secret_value = settings.credentials.get("secret")
    secret = secret_value.get_secret_value() if secret_value is not None else None
    msgtype = settings.options.get("msgtype", "markdown")
    if msgtype not in MSGTYPES:
        raise ConfigError(
            f"channels.{settings.name}.options.msgtype: one of {', '.join(MSGTYPES)}, "
            f"got {msgtype!r}"
        )
    at_mobiles = settings.options.get("at_mobiles", [])
    if not isinstance(at_mobiles, list):
        raise ConfigError(f"channels.{settings.name}.options.at_mobiles: must be a list")
    return DingTalkChannel(
        name=settings.name,
        access_token=token,
        secret=secret or None,
        session=session,
        clock=clock,
        base_url=settings.base_url or DEFAULT_BASE_URL,
        timeout_s=settings.timeout_s,
        msgtype=msgtype,
        at_all=bool(settings.options.get("at_all", False)),
        at_mobiles=[str(m) for m in at_mobiles],
    )
