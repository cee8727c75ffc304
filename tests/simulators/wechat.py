"""The WeChat Official Account API: stable_token, template messages, mass send by tag.

Checks what the platform checks: appid (40013) and secret (40125) for a
token; the access token on every call (40001 unknown, 42001 expired); the
template id (40037); every data value at most 20 characters without a newline
(47003); the openid known and following (43004 not following, 43101 refused,
40003 unknown). Answers with errcode inside HTTP 200, as WeChat does.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.simulators.base import Answer, Request, Simulator

__all__ = ["WeChatSimulator"]


def _err(code: int, msg: str) -> Answer:
    return Answer(body={"errcode": code, "errmsg": msg})


class WeChatSimulator(Simulator):
    def __init__(
        self,
        *,
        app_id: str = "wx-app",
        app_secret: str = "wx-secret",
        template_ids: tuple[str, ...] = ("TPL-WARN",),
        followers: tuple[str, ...] = ("o-alice", "o-bob"),
        unfollowed: tuple[str, ...] = ("o-gone",),
        refusing: tuple[str, ...] = ("o-refuses",),
        tags: tuple[int, ...] = (100,),
        expires_in: int = 7200,
    ) -> None:
        super().__init__()
        self.app_id = app_id
        self.app_secret = app_secret
        self.template_ids = set(template_ids)
        self.followers = set(followers)
        self.unfollowed = set(unfollowed)
        self.refusing = set(refusing)
        self.tags = set(tags)
        self.expires_in = expires_in
        self.token_requests: list[dict[str, Any]] = []  # every stable_token body received
        self._valid: set[str] = set()
        self._expired: set[str] = set()
        self._born_expired = 0
        self._serial = itertools.count(1)
        self._msgid = itertools.count(1000)
        self._current: str | None = None

    def expire_tokens(self, *, also_next: int = 0) -> None:
        """Expire every issued token (42001 from now on); ``also_next`` tokens are born expired."""
        self._expired |= self._valid
        self._valid.clear()
        self._current = None
        self._born_expired = also_next

    @property
    def forced_refreshes(self) -> int:
        return sum(1 for body in self.token_requests if body.get("force_refresh") is True)

    def handle(self, request: Request) -> Answer:
        if request.path == "/cgi-bin/stable_token" and request.method == "POST":
            return self._stable_token(request.json())
        token = request.query.get("access_token")
        if not token:
            return _err(41001, "access_token missing")
        if token in self._expired:
            return _err(42001, "access_token expired")
        if token not in self._valid:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        if request.path == "/cgi-bin/message/template/send":
            return self._template(request.json())
        if request.path == "/cgi-bin/message/mass/sendall":
            return self._mass(request.json())
        return Answer(status=404, body={"errcode": 404, "errmsg": "not found"})

    def _stable_token(self, body: dict[str, Any]) -> Answer:
        self.token_requests.append(body)
        if body.get("grant_type") != "client_credential":
            return _err(40002, "invalid grant_type")
        if body.get("appid") != self.app_id:
            return _err(40013, "invalid appid")
        if body.get("secret") != self.app_secret:
            return _err(40125, "invalid appsecret")
        if self._current is None or body.get("force_refresh") is True:
            token = f"token-{next(self._serial)}"
            if self._born_expired > 0:
                self._born_expired -= 1
                self._expired.add(token)
            else:
                self._valid.add(token)
            self._current = token
        return Answer(body={"access_token": self._current, "expires_in": self.expires_in})

    def _template(self, body: dict[str, Any]) -> Answer:
        if body.get("template_id") not in self.template_ids:
            return _err(40037, "invalid template_id")
        data = body.get("data")
        if not isinstance(data, dict):
            return _err(47001, "data format error")
        for key, field in data.items():
            value = field.get("value") if isinstance(field, dict) else None
            if not isinstance(value, str) or len(value) > 20 or "\n" in value or "\r" in value:
                return _err(47003, f"argument invalid! data.{key}.value invalid")
        touser = body.get("touser")
        if touser in self.unfollowed:
            return _err(43004, "require subscribe")
        if touser in self.refusing:
            return _err(43101, "user refuse to accept the msg")
        if touser not in self.followers:
            return _err(40003, "invalid openid")
        msgid = next(self._msgid)
        self.accepted.append({"kind": "template", "msgid": msgid, **body})
        return Answer(body={"errcode": 0, "errmsg": "ok", "msgid": msgid})

    def _mass(self, body: dict[str, Any]) -> Answer:
        flt = body.get("filter") or {}
        if flt.get("is_to_all") is not False or flt.get("tag_id") not in self.tags:
            return _err(40050, "invalid tag id")
        if body.get("msgtype") != "text" or not (body.get("text") or {}).get("content"):
            return _err(44004, "empty content")
        msgid = next(self._msgid)
        self.accepted.append({"kind": "mass", "msg_id": msgid, **body})
        return Answer(
            body={
                "errcode": 0,
                "errmsg": "send job submission success",
                "msg_id": msgid,
                "msg_data_id": msgid * 10,
            }
        )
