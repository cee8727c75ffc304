"""Feishu / Lark custom bot (飞书自定义机器人): one group, one HTTP call per message.

A bot posts to the one group it belongs to, so ``send`` makes a single call
per message and every recipient of that call gets the call's result.

Credentials: ``token`` (the hook token, or the whole hook URL
``https://open.feishu.cn/open-apis/bot/v2/hook/TOKEN``: both are accepted;
a whole URL also selects its host, e.g. Lark's open.larksuite.com, unless
``base_url`` is set) and, when the bot's security setting is "签名校验",
``secret``. A signed body carries ``"timestamp"`` (seconds, as a string, from
the injected clock) and ``"sign" = base64(HMAC_SHA256(key=f"{timestamp}\\n{secret}",
msg=b""))``.

Options: ``msg_type`` ``post`` (default: ``content.post.zh_cn`` with the
subject as title and one paragraph per line of the body) or ``text``.

Feishu reports failure as ``code`` in the JSON body, with HTTP 200 or 400;
the old format's ``StatusCode`` is read too. The JSON body may be at most
20 KB (20 * 1024 bytes): a longer message is cut like DingTalk's, keeping
the first line (the headline) and the last (the link); one that cannot be cut
that far fails ``too-long`` (fatal) without any call. Rate: 5 messages a
second per bot (``rate = (5, 1)``), and also at most 100 a minute: a
dispatcher honouring only the per-second rate may still see 11232, which is
retryable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from alerts.channels.base import Message, Recipient, SendResult
from alerts.channels.dingtalk import too_long
from alerts.channels.fit import ELLIPSIS, fit_text
from alerts.channels.http import Reply, Verdict, dumps_json, judge, post_json, results
from alerts.config import ChannelSettings, ConfigError

__all__ = ["DEFAULT_BASE_URL", "MAX_BYTES", "FeishuChannel", "build", "sign"]

DEFAULT_BASE_URL = "https://open.feishu.cn"
HOOK_PATH = "/open-apis/bot/v2/hook/"
MAX_BYTES = 20 * 1024
RATE = (5.0, 1.0)  # messages, per seconds; Feishu also caps a bot at 100 a minute
PER_MINUTE = 100

OK_CODES = (0,)
RETRY_CODES = (11232,)  # frequency limited
# 19001: the hook token is invalid (param invalid: incoming webhook access token invalid).
FATAL_CODES = (19001, 19021, 19022, 19024, 19007)
TOO_MANY = 9499  # retry when its msg says "too many request", fatal ("Bad Request") otherwise
MSG_TYPES = ("post", "text")


def sign(secret: str, timestamp_s: int) -> str:
    """The body's ``sign``: base64 of HMAC-SHA256 keyed by ``f"{timestamp}\\n{secret}"``."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def _hook(value: str) -> tuple[str, str | None]:
    """(token, base URL of a pasted hook URL or None) from the ``token`` credential."""
    if "://" in value:
        parts = urlsplit(value)
        if HOOK_PATH in parts.path:
            token = parts.path.split(HOOK_PATH, 1)[1].strip("/")
            return token, f"{parts.scheme}://{parts.netloc}"
    return value.strip("/"), None


class FeishuChannel:
    """A Feishu / Lark bot; see the module docstring for the wire contract."""

    idempotent = False  # Feishu does not deduplicate: a retried call may post twice
    rate: tuple[float, float] | None = RATE

    def __init__(
        self,
        *,
        name: str,
        token: str,
        secret: str | None,
        session: requests.Session,
        clock: Callable[[], datetime],
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 10.0,
        msg_type: str = "post",
    ) -> None:
        self.name = name
        self._token = token
        self._secret = secret
        self._session = session
        self._clock = clock
        self._url = f"{base_url.rstrip('/')}{HOOK_PATH}{token}"
        self._timeout = timeout_s
        self._msg_type = msg_type

    def payload(self, message: Message, text: str, signed: dict[str, str]) -> dict[str, Any]:
        """The JSON body for ``text`` (the possibly cut body of ``message``)."""
        content: dict[str, Any]
        if self._msg_type == "text":
            content = {"text": text}
        else:
            paragraphs = [[{"tag": "text", "text": line}] for line in text.split("\n")]
            content = {"post": {"zh_cn": {"title": message.subject, "content": paragraphs}}}
        return {**signed, "msg_type": self._msg_type, "content": content}

    def signature(self) -> dict[str, str]:
        """``timestamp`` and ``sign`` for the body, or nothing without a secret."""
        if not self._secret:
            return {}
        ts = int(self._clock().timestamp())
        return {"timestamp": str(ts), "sign": sign(self._secret, ts)}

    def encode(self, message: Message) -> bytes | None:
        """The request body within :data:`MAX_BYTES`, cut if needed; None if impossible."""
        signed = self.signature()

        def size(text: str) -> int:
            return len(dumps_json(self.payload(message, text, signed)))

        text = fit_text(message.body, MAX_BYTES, size, mark=ELLIPSIS)
        return None if text is None else dumps_json(self.payload(message, text, signed))

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """The text :meth:`send` would post (a post's paragraphs, one a line; its title
        is the subject), the bytes of its JSON body, and the limit. A message that
        cannot be cut to fit comes back whole, its size over the limit.
        """
        body = self.encode(message)
        if body is None:
            body = dumps_json(self.payload(message, message.body, self.signature()))
        content = json.loads(body)["content"]
        if "text" in content:
            text = str(content["text"])
        else:
            paragraphs = content["post"]["zh_cn"]["content"]
            text = "\n".join("".join(part["text"] for part in p) for p in paragraphs)
        return text, len(body), MAX_BYTES

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        if not recipients:
            return []
        body = self.encode(message)
        if body is None:
            return too_long(recipients, MAX_BYTES)
        reply = post_json(self._session, self._url, body, timeout=self._timeout)
        outcome, code, text = _judge(reply, secrets=(self._token, self._secret))
        return results(recipients, outcome, code=code, text=text)


def _code(body: dict[str, Any]) -> Any:
    return body.get("code", body.get("StatusCode"))


def _msg(body: dict[str, Any]) -> str:
    return str(body.get("msg", body.get("StatusMessage", "")))


def _judge(reply: Reply, *, secrets: Sequence[str | None]) -> Verdict:
    """The body's ``code`` first, then HTTP (:func:`alerts.channels.http.judge`).

    9499 means two things: "too many request" (retry) or "Bad Request" (fatal).
    """
    verdict = judge(
        reply,
        code_of=_code,
        text_of=_msg,
        ok=OK_CODES,
        retry=RETRY_CODES,
        fatal=FATAL_CODES,
        status_code="{}",
        secrets=secrets,
    )
    if verdict.code == str(TOO_MANY) and "too many request" not in (verdict.text or "").lower():
        return verdict._replace(outcome="fatal")
    return verdict


def build(
    settings: ChannelSettings, *, session: requests.Session, clock: Callable[[], datetime]
) -> FeishuChannel:
    """A Feishu channel from its settings; ConfigError names a missing or bad key."""
    token, hook_base = _hook(settings.secret("token"))
    if not token:
        raise ConfigError(f"channels.{settings.name}.credentials.token: no token in the hook URL")
    secret_value = settings.credentials.get("secret")
    secret = secret_value.get_secret_value() if secret_value is not None else None
    msg_type = settings.options.get("msg_type", "post")
    if msg_type not in MSG_TYPES:
        raise ConfigError(
            f"channels.{settings.name}.options.msg_type: one of {', '.join(MSG_TYPES)}, "
            f"got {msg_type!r}"
        )
    return FeishuChannel(
        name=settings.name,
        token=token,
        secret=secret or None,
        session=session,
        clock=clock,
        base_url=settings.base_url or hook_base or DEFAULT_BASE_URL,
        timeout_s=settings.timeout_s,
        msg_type=msg_type,
    )
