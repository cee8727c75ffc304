"""The Weibo ``statuses/share`` API: one post, checked as Weibo checks it.

The token (21327 expired, 21332 unknown), the status length counted the Weibo
way (an ASCII character half, any other one, rounded up; at most 140: 20012
otherwise), a URL of the safe domain in the text (10017), exact repeats
(20019) and a posting rate limit (``rate_limit`` posts per ``window_s``
seconds: 20016). Errors are ``{"request", "error_code", "error"}`` with HTTP
400 or 403, as Weibo sends them.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections import deque
from urllib.parse import urlsplit

from tests.simulators.base import Answer, Request, Simulator

__all__ = ["WeiboSimulator", "weibo_count"]

PATH = "/2/statuses/share.json"
_URL = re.compile(r"https?://[^\s()（）]+")


def weibo_count(text: str) -> int:
    """Weibo's own count (independent of the channel's): U+0000-U+007F half, BMP one, astral two."""
    half = 0
    for c in text:
        half += 1 if ord(c) < 0x80 else 2 if ord(c) < 0x10000 else 4
    return math.ceil(half / 2)


def _err(status: int, code: int, error: str) -> Answer:
    return Answer(status=status, body={"request": PATH, "error_code": code, "error": error})


class WeiboSimulator(Simulator):
    def __init__(
        self,
        *,
        access_token: str = "wb-token",
        expired_tokens: tuple[str, ...] = ("wb-expired",),
        safe_domain: str = "alerts.example.cn",
        rate_limit: int | None = None,
        window_s: float = 3600.0,
    ) -> None:
        super().__init__()
        self.access_token = access_token
        self.expired_tokens = set(expired_tokens)
        self.safe_domain = safe_domain
        self.rate_limit = rate_limit
        self.window_s = window_s
        self._posted: deque[float] = deque()
        self._texts: set[str] = set()
        self._ids = itertools.count(4_900_000_000_000_001)

    def handle(self, request: Request) -> Answer:
        if request.path != PATH or request.method != "POST":
            return _err(404, 10021, "HTTP method is not suported for this request")
        form = request.form()
        token = form.get("access_token") or request.query.get("access_token")
        if token in self.expired_tokens:
            return _err(403, 21327, "expired_token")
        if token != self.access_token:
            return _err(403, 21332, "invalid_access_token")
        status = form.get("status")
        if not status:
            return _err(400, 10016, "miss required parameter (status)")
        if weibo_count(status) > 140:
            return _err(400, 20012, "Text too long, please input text less than 140 characters!")
        hosts = [(urlsplit(u).hostname or "").lower() for u in _URL.findall(status)]
        if not any(h == self.safe_domain or h.endswith("." + self.safe_domain) for h in hosts):
            return _err(400, 10017, "parameter (status)'s value invalid, expect (safe domain url)")
        if status in self._texts:
            return _err(400, 20019, "repeat content!")
        now = time.monotonic()
        while self._posted and now - self._posted[0] >= self.window_s:
            self._posted.popleft()
        if self.rate_limit is not None and len(self._posted) >= self.rate_limit:
            return _err(403, 20016, "update weibo too fast!")
        self._posted.append(now)
        self._texts.add(status)
        post_id = next(self._ids)
        self.accepted.append({"id": post_id, "status": status, "access_token": token})
        return Answer(
            body={
                "created_at": "Mon Jul 20 08:00:00 +0800 2026",
                "id": post_id,
                "idstr": str(post_id),
                "mid": str(post_id),
                "text": status,
            }
        )
