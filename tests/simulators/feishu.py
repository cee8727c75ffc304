"""Feishu custom bot simulator: ``POST /open-apis/bot/v2/hook/<token>``.

Checks the token (19001), the body's ``timestamp`` (within an hour) and
``sign`` when the bot has a secret (19021), the keyword when one is set
(19024), the size (20 KB) and structure of the body (9499 Bad Request, HTTP
400), and 5 messages a second (11232). Answers with Feishu's
``{"code", "msg", "data"}`` bodies. The signature is recomputed here
independently of the channel's code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.simulators.base import Answer, Request, Simulator

__all__ = ["FeishuSimulator"]

HOOK = "/open-apis/bot/v2/hook/"
SIGN_FAIL = "sign match fail or timestamp is not within one hour from current time"


def _answer(code: int, msg: str, status: int = 200) -> Answer:
    return Answer(status=status, body={"code": code, "data": {}, "msg": msg})


class FeishuSimulator(Simulator):
    def __init__(
        self,
        *,
        token: str = "fs-token",
        secret: str | None = None,
        keyword: str | None = None,
        per_second: int = 5,
        max_bytes: int = 20 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.token = token
        self.secret = secret
        self.keyword = keyword
        self.per_second = per_second
        self.max_bytes = max_bytes
        self.clock = clock
        self._sent: deque[float] = deque()

    def _sign(self, timestamp: str) -> str:
        assert self.secret is not None
        mac = hmac.HMAC(f"{timestamp}\n{self.secret}".encode(), digestmod=hashlib.sha256)
        return base64.standard_b64encode(mac.digest()).decode()

    def handle(self, request: Request) -> Answer:
        if request.method != "POST" or not request.path.startswith(HOOK):
            return Answer(status=404, body="404 page not found")
        if request.path[len(HOOK) :] != self.token:
            return _answer(19001, "param invalid: incoming webhook access token invalid")
        if len(request.body) > self.max_bytes:
            return _answer(9499, "Bad Request", status=400)
        try:
            payload: dict[str, Any] = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _answer(9499, "Bad Request", status=400)
        now = self.clock()
        if self.secret is not None:
            ts, given = payload.get("timestamp"), payload.get("sign")
            if (
                not isinstance(ts, str)
                or not ts.isdigit()
                or abs(now - int(ts)) > 3600
                or not isinstance(given, str)
                or not hmac.compare_digest(self._sign(ts), given)
            ):
                return _answer(19021, SIGN_FAIL)
        text = _text(payload)
        if text is None:
            return _answer(9499, "Bad Request", status=400)
        if self.keyword and self.keyword not in text:
            return _answer(19024, "Key Words Not Found")
        while self._sent and now - self._sent[0] >= 1:
            self._sent.popleft()
        if len(self._sent) >= self.per_second:
            return _answer(11232, "frequency limited psm[lark.oapi.app_platform_runtime]")
        self._sent.append(now)
        self.accepted.append(payload)
        return _answer(0, "success")


def _text(payload: dict[str, Any]) -> str | None:
    """All the text of a text or post message, None when the structure is wrong."""
    content = payload.get("content")
    if not isinstance(content, dict):
        return None
    if payload.get("msg_type") == "text":
        return content["text"] if isinstance(content.get("text"), str) else None
    if payload.get("msg_type") != "post" or not isinstance(content.get("post"), dict):
        return None
    texts: list[str] = []
    for lang in content["post"].values():
        if not isinstance(lang, dict) or not isinstance(lang.get("content"), list):
            return None
        texts.append(str(lang.get("title", "")))
        for paragraph in lang["content"]:
            if not isinstance(paragraph, list):
                return None
            for element in paragraph:
                if not isinstance(element, dict) or "tag" not in element:
                    return None
                texts.append(str(element.get("text", "")))
    return "\n".join(texts) if texts else None
