"""WeCom: the group robot webhook and the application message API, on one loopback server.

Robot: ``POST /cgi-bin/webhook/send?key=`` checks the key (93000), the JSON
body, the msgtype (40008), the content size in UTF-8 bytes (text 2048,
markdown 4096: 40058) and 20 messages per minute per key (45009).

Application: ``GET /cgi-bin/gettoken?corpid=&corpsecret=`` (40013 bad corpid,
40001 bad secret) issues tokens for 7200 s; ``POST /cgi-bin/message/send``
checks the token (41001 missing, 40014 unknown, 42001 expired: see
:meth:`WeComSimulator.expire_tokens`), agentid (40056), msgtype, content size
(2048 B), the targets ``touser`` (at most 1000), ``toparty`` and ``totag``
(at most 100 each; ignored when touser is ``@all``), each ``|``-joined, with
unknown ones listed in ``invaliduser`` / ``invalidparty`` / ``invalidtag``
(known ones: ``users``, ``parties`` and ``tags``, None = all exist) and
81013 when every target of the call is unknown, and honours
``enable_duplicate_check``.

Every message that got through is appended to ``accepted``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from tests.simulators.base import Answer, Request, Simulator

__all__ = ["WeComSimulator"]

ROBOT_LIMITS = {"text": 2048, "markdown": 4096, "markdown_v2": 4096}
APP_LIMITS = {"text": 2048, "markdown": 2048}
ROBOT_RATE = 20  # messages per minute per key


def _error(code: int, msg: str) -> Answer:
    return Answer(body={"errcode": code, "errmsg": msg})


class WeComSimulator(Simulator):
    def __init__(
        self,
        *,
        keys: Iterable[str] = ("robot-key-1",),
        corp_id: str = "ww-corp",
        corp_secret: str = "corp-secret",
        agent_id: int = 1000002,
        users: Iterable[str] | None = None,  # None: every userid exists
        parties: Iterable[str | int] | None = None,  # None: every department id exists
        tags: Iterable[str | int] | None = None,  # None: every tag id exists
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.keys = set(keys)
        self.corp_id = corp_id
        self.corp_secret = corp_secret
        self.agent_id = agent_id
        self.users = None if users is None else set(users)
        self.parties = None if parties is None else {str(p) for p in parties}
        self.tags = None if tags is None else {str(t) for t in tags}
        self.clock = clock
        self.tokens: dict[str, float] = {}  # token -> expiry (simulator clock)
        self.tokens_issued = 0
        self.duplicates = 0  # sends dropped by enable_duplicate_check
        self._sent: dict[str, deque[float]] = {}  # robot key -> send times in the last minute
        self._recent: dict[tuple[Any, ...], float] = {}  # app message -> time sent

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 42001."""
        with self._lock:
            now = self.clock()
            for token in self.tokens:
                self.tokens[token] = now

    def handle(self, request: Request) -> Answer:
        if request.path == "/cgi-bin/webhook/send" and request.method == "POST":
            return self._robot(request)
        if request.path == "/cgi-bin/gettoken" and request.method == "GET":
            return self._gettoken(request)
        if request.path == "/cgi-bin/message/send" and request.method == "POST":
            return self._app_send(request)
        return Answer(status=404, body="not found")

    # -- robot ---------------------------------------------------------------

    def _robot(self, request: Request) -> Answer:
        key = request.query.get("key", "")
        if key not in self.keys:
            return _error(93000, "invalid webhook url, hint: key not exist")
        body = _json(request)
        if body is None:
            return _error(40035, "invalid parameter: body is not JSON")
        msgtype = body.get("msgtype")
        if msgtype not in ROBOT_LIMITS:
            return _error(40008, f"invalid message type: {msgtype!r}")
        part = body.get(msgtype)
        content = part.get("content") if isinstance(part, dict) else None
        if not isinstance(content, str) or not content:
            return _error(44004, "empty content")
        if len(content.encode("utf-8")) > ROBOT_LIMITS[msgtype]:
            return _error(40058, f"content exceed max length {ROBOT_LIMITS[msgtype]}")
        with self._lock:
            now = self.clock()
            sent = self._sent.setdefault(key, deque())
            while sent and sent[0] <= now - 60:
                sent.popleft()
            if len(sent) >= ROBOT_RATE:
                return _error(45009, "api freq out of limit")
            sent.append(now)
            self.accepted.append(
                {
                    "api": "robot",
                    "key": key,
                    "msgtype": msgtype,
                    "content": content,
                    "mentioned_list": part.get("mentioned_list", []) if part else [],
                }
            )
        return _error(0, "ok")

    # -- application ---------------------------------------------------------

    def _gettoken(self, request: Request) -> Answer:
        if request.query.get("corpid") != self.corp_id:
            return _error(40013, "invalid corpid")
        if request.query.get("corpsecret") != self.corp_secret:
            return _error(40001, "invalid credential")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = self.clock() + 7200
            self.tokens_issued += 1
        return Answer(
            body={"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}
        )

    def _app_send(self, request: Request) -> Answer:
        token = request.query.get("access_token")
        if not token:
            return _error(41001, "access_token missing")
        with self._lock:
            expiry = self.tokens.get(token)
            now = self.clock()
        if expiry is None:
            return _error(40014, "invalid access_token")
        if now >= expiry:
            return _error(42001, "access_token expired")
        body = _json(request)
        if body is None:
            return _error(40035, "invalid parameter: body is not JSON")
        if body.get("agentid") != self.agent_id:
            return _error(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if msgtype not in APP_LIMITS:
            return _error(40008, f"invalid message type: {msgtype!r}")
        part = body.get(msgtype)
        content = part.get("content") if isinstance(part, dict) else None
        if not isinstance(content, str) or not content:
            return _error(44004, "empty content")
        if len(content.encode("utf-8")) > APP_LIMITS[msgtype]:
            return _error(40058, f"content exceed max length {APP_LIMITS[msgtype]}")
        lists: dict[str, list[str]] = {}
        for field in ("touser", "toparty", "totag"):
            value = body.get(field, "")
            if not isinstance(value, str):
                return _error(40031, f"invalid {field}: not a string")
            lists[field] = [v.strip() for v in value.split("|") if v.strip()]
        if lists["touser"] == ["@all"]:
            lists["toparty"] = lists["totag"] = []  # ignored with @all
        if not any(lists.values()):
            return _error(40031, "invalid user list: touser, toparty and totag all empty")
        if len(lists["touser"]) > 1000:
            return _error(40031, "too many users: at most 1000")
        if len(lists["toparty"]) > 100:
            return _error(40031, "too many parties: at most 100")
        if len(lists["totag"]) > 100:
            return _error(40031, "too many tags: at most 100")
        known = {"touser": self.users, "toparty": self.parties, "totag": self.tags}
        invalid: dict[str, list[str]] = {}
        for field, values in lists.items():
            exist = known[field]
            if exist is None or (field == "touser" and values == ["@all"]):
                invalid[field] = []
            else:
                invalid[field] = [v for v in values if v not in exist]
        targets = sum(len(v) for v in lists.values())
        if targets == sum(len(v) for v in invalid.values()):
            return _error(81013, "user & party & tag all invalid")
        msgid = secrets.token_hex(8)
        with self._lock:
            signature = (
                body["agentid"],
                *("|".join(lists[f]) for f in ("touser", "toparty", "totag")),
                msgtype,
                content,
            )
            seen = self._recent.get(signature)
            interval = float(body.get("duplicate_check_interval", 1800))
            if body.get("enable_duplicate_check") == 1 and seen is not None:
                if now - seen < interval:
                    self.duplicates += 1
                    return Answer(body={"errcode": 0, "errmsg": "ok", "msgid": msgid})
            self._recent[signature] = now
            self.accepted.append(
                {
                    "api": "app",
                    "agentid": body["agentid"],
                    "touser": [u for u in lists["touser"] if u not in invalid["touser"]],
                    "toparty": [p for p in lists["toparty"] if p not in invalid["toparty"]],
                    "totag": [t for t in lists["totag"] if t not in invalid["totag"]],
                    "msgtype": msgtype,
                    "content": content,
                }
            )
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": msgid}
        for field, name in (("touser", "user"), ("toparty", "party"), ("totag", "tag")):
            if invalid[field]:
                answer[f"invalid{name}"] = "|".join(invalid[field])
        return Answer(body=answer)


def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return body if isinstance(body, dict) else None
