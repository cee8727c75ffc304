"""The WeChat Official Account API: stable_token, template messages, mass send, articles.

Checks what the platform checks: appid (40013) and secret (40125) for a
token; the access token on every call (40001 unknown, 42001 expired); the
template id (40037); every data value at most 20 characters without a newline
(47003); the openid known and following (43004 not following, 43101 refused,
40003 unknown). Answers with errcode inside HTTP 200, as WeChat does.

Articles: ``/cgi-bin/media/uploadimg`` takes a multipart ``media`` file, a
PNG or JPEG (else 40005) under 1 MB (else 40009), and answers its URL;
``/cgi-bin/draft/add`` checks the request has no ``\\uXXXX`` escapes (40033),
each article's title (45003, ``title_limit``), author (16) and digest (128)
lengths (45004 for both), a non-empty content (44003) under 20 000
characters (45002) and the cover a known permanent material
(``thumbs``, else 40007), drops ``<img>`` whose src is not an uploaded URL
(as WeChat filters external images) and answers a ``media_id``;
``/cgi-bin/freepublish/submit`` and ``/cgi-bin/message/mass/sendall`` with
``mpnews`` take a draft's media_id (else 40007) and remove the draft from
the box, as the platform does. ``uploads``, ``drafts`` and ``accepted`` show
what got through.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import re
from typing import Any

from tests.simulators.base import Answer, Request, Simulator

__all__ = ["WeChatSimulator"]


def _err(code: int, msg: str) -> Answer:
    return Answer(body={"errcode": code, "errmsg": msg})


IMAGE_MAX = 1024 * 1024  # uploadimg: "大小必须在1MB以下"
_IMG_SRC = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*["']([^"']*)["'][^>]*>""", re.IGNORECASE)
_UNICODE_ESCAPE = re.compile(rb"\\u[0-9a-fA-F]{4}")


def multipart_files(request: Request) -> dict[str, tuple[str | None, str, bytes]]:
    """The files of a multipart/form-data request: field -> (filename, content type, bytes)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        return {}
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + request.body
    )
    out: dict[str, tuple[str | None, str, bytes]] = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            data = part.get_payload(decode=True)
            out[name] = (part.get_filename(), part.get_content_type(), data or b"")
    return out


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
        thumbs: tuple[str, ...] = ("THUMB-1",),
        title_limit: int = 32,
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
        self.thumbs = set(thumbs)  # permanent image materials (article covers)
        self.title_limit = title_limit
        self.uploads: list[dict[str, Any]] = []  # every image uploaded: filename, data, url
        self.drafts: dict[str, list[dict[str, Any]]] = {}  # the draft box: media_id -> articles
        self._media = itertools.count(1)
        self._at: dict[str, list[Answer]] = {}  # path -> faults (inject_at)
        self._publish = itertools.count(2247483647)

    def expire_tokens(self, *, also_next: int = 0) -> None:
        """Expire every issued token (42001 from now on); ``also_next`` tokens are born expired."""
        self._expired |= self._valid
        self._valid.clear()
        self._current = None
        self._born_expired = also_next

    def inject_at(self, path: str, *answers: Answer) -> None:
        """Serve these answers, in order, to the next requests for ``path`` (before any check)."""
        with self._lock:
            self._at.setdefault(path, []).extend(answers)

    def calls(self, path: str) -> int:
        """How many requests ``path`` received."""
        return sum(1 for r in self.requests if r.path == path)

    @property
    def forced_refreshes(self) -> int:
        return sum(1 for body in self.token_requests if body.get("force_refresh") is True)

    def handle(self, request: Request) -> Answer:
        with self._lock:
            queued = self._at.get(request.path)
            fault = queued.pop(0) if queued else None
        if fault is not None:
            return fault
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
        if request.path == "/cgi-bin/media/uploadimg":
            return self._uploadimg(request)
        if request.path == "/cgi-bin/draft/add":
            if _UNICODE_ESCAPE.search(request.body):
                return _err(40033, "invalid charset. please check your request, if include \\uxxxx")
            return self._draft(request.json())
        if request.path == "/cgi-bin/freepublish/submit":
            return self._freepublish(request.json())
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
        if flt.get("is_to_all") is not True and flt.get("tag_id") not in self.tags:
            return _err(40050, "invalid tag id")
        if body.get("msgtype") == "mpnews":
            media_id = (body.get("mpnews") or {}).get("media_id")
            if media_id not in self.drafts:
                return _err(40007, "invalid media_id")
            articles = self.drafts.pop(media_id)  # a mass-sent draft leaves the box
            msgid = next(self._msgid)
            self.accepted.append(
                {"kind": "mass-mpnews", "msg_id": msgid, "articles": articles, **body}
            )
            return Answer(
                body={
                    "errcode": 0,
                    "errmsg": "send job submission success",
                    "msg_id": msgid,
                    "msg_data_id": msgid * 10,
                }
            )
        if flt.get("is_to_all") is not False:
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

    # -- articles -----------------------------------------------------------------------------

    def _uploadimg(self, request: Request) -> Answer:
        media = multipart_files(request).get("media")
        if media is None:
            return _err(41005, "media data missing")
        filename, _, data = media
        if not (data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")):
            return _err(40005, "invalid file type")
        if len(data) >= IMAGE_MAX:
            return _err(40009, "invalid image size")
        url = f"http://mmbiz.qpic.cn/sz_mmbiz_png/sim{len(self.uploads) + 1}/0?wx_fmt=png"
        self.uploads.append({"filename": filename, "data": data, "url": url})
        return Answer(body={"url": url, "errcode": 0, "errmsg": "ok"})

    def _draft(self, body: dict[str, Any]) -> Answer:
        articles = body.get("articles")
        if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
            return _err(47001, "data format error")
        known = {u["url"] for u in self.uploads}
        kept = []
        for article in articles:
            if not isinstance(article, dict):
                return _err(47001, "data format error")
            title = article.get("title")
            if not isinstance(title, str) or not title:
                return _err(40227, "title is empty")
            if len(title) > self.title_limit:
                return _err(45003, "title size out of limit")
            if len(article.get("author") or "") > 16 or len(article.get("digest") or "") > 128:
                return _err(45004, "description size out of limit")
            content = article.get("content")
            if not isinstance(content, str) or not content.strip():
                return _err(44003, "empty news data")
            if len(content) >= 20_000:
                return _err(45002, "content size out of limit")
            if article.get("thumb_media_id") not in self.thumbs:
                return _err(40007, "invalid media_id")
            # WeChat filters images of any origin but its own out of the article
            content = _IMG_SRC.sub(lambda m: m.group(0) if m.group(1) in known else "", content)
            kept.append({**article, "content": content})
        media_id = f"DRAFT-{next(self._media)}"
        self.drafts[media_id] = kept
        return Answer(body={"media_id": media_id, "item": []})

    def _freepublish(self, body: dict[str, Any]) -> Answer:
        media_id = body.get("media_id")
        if media_id not in self.drafts:
            return _err(40007, "invalid media_id")
        articles = self.drafts.pop(media_id)  # a published draft leaves the box
        publish_id = str(next(self._publish))
        self.accepted.append(
            {
                "kind": "publish",
                "publish_id": publish_id,
                "media_id": media_id,
                "articles": articles,
            }
        )
        return Answer(
            body={"errcode": 0, "errmsg": "ok", "publish_id": publish_id, "msg_data_id": 1}
        )
