"""DingTalk custom robot simulator: ``POST /robot/send?access_token=..``.

Checks what DingTalk checks, in its order: the token (300001), the signature
when the robot has a secret (timestamp within an hour, then the sign: 310000),
the keyword when one is set (310000), the body's size and structure, and the
rate of 20 messages a minute (130101). Always HTTP 200, with DingTalk's
``{"errcode", "errmsg"}`` bodies. The signature is recomputed here
independently of the channel's code.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.simulators.base import Answer, Request, Simulator

__all__ = ["DingTalkSimulator"]

MORE = ", more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]"


def _error(code: int, msg: str) -> Answer:
    return Answer(body={"errcode": code, "errmsg": msg})


class DingTalkSimulator(Simulator):
    def __init__(
        self,
        *,
        access_token: str = "dt-token",
        secret: str | None = None,
        keyword: str | None = None,
        per_minute: int = 20,
        max_bytes: int = 20000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.access_token = access_token
        self.secret = secret
        self.keyword = keyword
        self.per_minute = per_minute
        self.max_bytes = max_bytes
        self.clock = clock  # Unix seconds, as the server sees them
        self._sent: deque[float] = deque()

    def _signature_ok(self, timestamp: str, sign: str) -> bool:
        assert self.secret is not None
        string_to_sign = timestamp + "\n" + self.secret
        digest = hmac.digest(self.secret.encode(), string_to_sign.encode(), "sha256")
        return hmac.compare_digest(base64.standard_b64encode(digest).decode(), sign)

    def handle(self, request: Request) -> Answer:
        if request.method != "POST" or request.path != "/robot/send":
            return Answer(status=404, body="not found")
        if request.query.get("access_token") != self.access_token:
            return _error(300001, "token is not exist")
        now = self.clock()
        if self.secret is not None:
            ts, given = request.query.get("timestamp", ""), request.query.get("sign", "")
            if not ts.isdigit() or abs(now * 1000 - int(ts)) > 3600 * 1000:
                return _error(310000, "invalid timestamp" + MORE)
            if not self._signature_ok(ts, given):  # parse_qs already URL-decoded it
                return _error(310000, "sign not match" + MORE)
        if len(request.body) > self.max_bytes:
            return _error(460101, f"message too long, exceed {self.max_bytes} bytes")
        try:
            payload: dict[str, Any] = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _error(40035, "缺少参数 json")
        content = _content(payload)
        if content is None:
            return _error(40035, "缺少参数 msgtype/content")
        if self.keyword and self.keyword not in content:
            return _error(310000, "keywords not in content" + MORE)
        while self._sent and now - self._sent[0] >= 60:
            self._sent.popleft()
        if len(self._sent) >= self.per_minute:
            return _error(130101, "send too fast, exceed 20 times per minute")
        self._sent.append(now)
        self.accepted.append(payload)
        return _error(0, "ok")


def _content(payload: dict[str, Any]) -> str | None:
    """The searchable text of a text or markdown message, None when malformed."""
    kind = payload.get("msgtype")
    part = payload.get(kind) if isinstance(kind, str) else None
    if not isinstance(part, dict):
        return None
    if kind == "text" and isinstance(part.get("content"), str):
        return str(part["content"])
    if (
        kind == "markdown"
        and isinstance(part.get("title"), str)
        and isinstance(part.get("text"), str)
    ):
        return f"{part['title']}\n{part['text']}"
    return None
