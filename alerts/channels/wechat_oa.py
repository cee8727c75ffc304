"""WeChat Official Account (微信公众号): template messages, mass send by tag, or articles.

Credentials ``app_id`` and ``app_secret``; options:

- ``mode``: ``"template"`` (default), ``"mass"`` or ``"article"``;
- ``template_id`` (template mode, required) and ``fields``: template data key
  -> one of ``subject``, ``level``, ``hazard``, ``area``, ``time``
  (default ``{"first": "subject"}``); ``url``: the link behind the message
  (default: the last http(s) URL in the message body);
- ``tag_id`` (mass mode, required): the follower tag the text goes to;
- article mode (long-form bulletins): ``thumb_media_id`` (required: the
  cover, a permanent image material the operator uploaded once with
  ``/cgi-bin/material/add_material``), ``author`` (at most 16 characters,
  default none), ``title_limit`` (default 32, at most 64), ``push`` (default
  false) and, with ``push``, ``tag_id`` (default: every follower).

Token: ``POST /cgi-bin/stable_token`` (it does not rotate on every call, unlike
``/cgi-bin/token``), cached until five minutes before expiry by the injected
clock. When a send answers 40001 / 40014 / 42001 the token is fetched again
with ``force_refresh: true`` and that call retried, once per ``send()``: a
second token error in the same ``send()`` is fatal (the forced refresh is
itself rate limited, so a broken credential must not loop).

Template mode makes one call per recipient (the address is the follower's
openid). The platform cuts every data value to 20 characters without
newlines; we cut first, visibly (ending in ``…``), never inside a character.
``time`` is the issue time (from the GB/T 35965.1 identifier, else the clock),
Beijing time. Mass mode makes one call per message for all recipients.

Article mode publishes one article per message, whatever the recipients
(their addresses are ignored: publishing reaches the account's page, so one
send covers every recipient and they share its outcome):

1. each image of ``message.images`` is uploaded with ``POST
   /cgi-bin/media/uploadimg`` (multipart field ``media``; WeChat filters
   image URLs of any other origin out of articles) and ``cid:NAME`` in the
   HTML becomes the returned URL; uploaded URLs are permanent, so they are
   kept (by the image's SHA-256) and not uploaded again;
2. ``POST /cgi-bin/draft/add`` with one article: ``title`` (the subject, cut
   visibly to ``title_limit``), ``author``, ``digest`` (the first 120
   characters of the text body; WeChat allows 128), ``content`` (the inner
   part of the HTML's ``<body>``, ``<script>`` elements removed, inline
   styles kept; without ``message.html``, the body as escaped paragraphs; at
   most 20 000 characters and 1 MB, else fatal ``too-long`` before any
   call), ``content_source_url`` (the last http(s) URL of the text body,
   else the ``url`` option, else empty: WeChat's 阅读原文 link),
   ``thumb_media_id`` and ``need_open_comment: 0``; it answers a ``media_id``;
3. ``POST /cgi-bin/freepublish/submit {"media_id"}`` answers a
   ``publish_id``: every recipient's provider message id. That only submits
   the publishing job (WeChat may still refuse it later, e.g. its content
   check). A published article shows on the account's page but pushes no
   notification to followers. With ``push: true`` the draft is mass-sent
   instead (``POST /cgi-bin/message/mass/sendall`` with
   ``msgtype: mpnews``), which does notify followers; its ``msg_id`` is the
   provider id. Mass sends have a small quota (an authenticated
   subscription account: one a day; a service account: four a month per
   follower), and an account with API mass-send protection must have an
   administrator confirm within 30 minutes.

A draft whose publishing failed retryably is kept (by the article's content)
and submitted again on the next send instead of adding another draft; an
``invalid media_id`` for such a kept draft (an operator deleted it) retries
with a fresh one. A ``message.html`` whose ``cid:`` references and images do
not match (see :func:`alerts.channels.email.check_inline_images`) is our bug:
``send`` and ``preview`` raise ``ValueError`` before any call.

Failures come as ``errcode`` inside HTTP 200. -1, 45009 (quota: wait), 53501
(publishing too often), 5xx and transport failures retry; 43004 (not
following) and 43101 (refused) are fatal with the code kept, so the delivery
layer can deactivate the subscriber; 47003, 40037, 40003 and the credential
errors are fatal, as are the article errors that a retry cannot mend (40005
and 40009 image type and size, 40007 invalid media_id, 44003 empty article,
45002-45004 content / title / digest too long, 48001 no API permission,
45028 no mass-send quota left, 53503 draft failed the publishing check,
53504 and 53505 the draft must be used or saved on the MP website first); an
unknown code retries. Not idempotent: WeChat has no client-side dedup key.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from alerts.channels.base import Message, Recipient, SendResult
from alerts.channels.email import check_inline_images
from alerts.channels.fit import hard_cut
from alerts.channels.http import (
    Reply,
    Verdict,
    dumps_json,
    int_code,
    judge,
    post_json,
    request,
    results,
)
from alerts.config import ChannelSettings, ConfigError
from alerts.model import Hazard

__all__ = [
    "ARTICLE_CONTENT_LIMIT",
    "DEFAULT_BASE_URL",
    "DIGEST_LIMIT",
    "FIELD_SOURCES",
    "FIELD_LIMIT",
    "WeChatOAChannel",
    "article_content",
    "build",
    "cut",
    "plain_article",
    "template_data",
]

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
FIELD_LIMIT = 20
# draft/add limits (developers.weixin.qq.com/doc/service/api/draftbox/draftmanage/api_draft_add):
# title "总长度不超过32个字", author 16, digest 128; content "必须少于2万字符，小于1M".
# The MP website's editor takes 64-character titles: ``title_limit`` goes up to that.
TITLE_LIMIT = 32
TITLE_LIMIT_MAX = 64
AUTHOR_LIMIT = 16
DIGEST_LIMIT = 120
ARTICLE_CONTENT_LIMIT = 20_000  # characters
ARTICLE_CONTENT_BYTES = 1_000_000
KEEP = 64  # uploaded image URLs and pending drafts kept per channel
FIELD_SOURCES = ("subject", "level", "hazard", "area", "time")
TOKEN_MARGIN = timedelta(minutes=5)
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

OK = {0}
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid / expired access_token: refresh once
RETRY = {
    -1,  # busy
    45009,  # API quota (wait, do not hammer)
    45011,  # API calls too frequent
    53501,  # freepublish/submit: "请勿频繁请求" (publishing too often)
}
FATAL = {
    43004,  # the user does not follow the account (subscriber inactive)
    43101,  # the user refused messages (subscriber inactive)
    47003,  # bad template argument
    40037,  # invalid template_id
    40003,  # invalid openid
    40002,  # invalid grant_type
    40013,  # invalid appid
    40125,  # invalid appsecret
    40164,  # caller IP not whitelisted
    # article mode (uploadimg, draft/add, freepublish/submit, mass mpnews)
    40005,  # uploadimg: invalid file type (jpg/png only)
    40009,  # uploadimg: invalid image size (under 1 MB)
    40007,  # invalid media_id (thumb_media_id, or the draft)
    40033,  # \uXXXX escapes in the request
    44003,  # empty article
    45002,  # content too long
    45003,  # title too long
    45004,  # digest too long
    45028,  # no mass-send quota left (for the day / month)
    48001,  # the account has no permission for this API
    53503,  # freepublish: the draft failed the publishing check ("该草稿未通过发布检查")
    53504,  # freepublish: the draft must be used on the MP website ("需前往公众平台官网使用草稿")
    53505,  # freepublish: save the draft on the MP website first ("请手动保存成功后再发表")
} | TOKEN_ERRORS  # still failing after the one refresh
INVALID_MEDIA_ID = 40007

_URL = re.compile(r"https?://[^\s<>\"'，。；、）】」]+")
_LEVEL = re.compile(r"(红|橙|黄|蓝)色")
_HAZARD_IN_SUBJECT = re.compile(r"【([^【】]{1,6}?)(?:红|橙|黄|蓝)色预警")
_GBT_STAMP = re.compile(r"_(\d{14})_\d+$")
_GOT_TOKEN = "access_token"  # the pseudo code of a stable_token answer that carries one
_GOT_FIELD = "got-field"  # the pseudo code of an answer that carries the field asked for
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
_HEAD = re.compile(r"<head\b.*?</head\s*>", re.IGNORECASE | re.DOTALL)
_DOC_TAGS = re.compile(r"<!DOCTYPE[^>]*>|</?html\b[^>]*>|</?body\b[^>]*>", re.IGNORECASE)
_SCRIPT = re.compile(r"<script\b.*?(?:</script\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_CID_SRC = re.compile(r"""(?<=["'(=])(\s*)cid:([^\s"'()<>]+)""", re.IGNORECASE)


@dataclass(frozen=True)
class _Outcome:
    outcome: str  # ok / retry / fatal
    code: str | None = None  # the vendor's code as a string, or http-NNN / timeout / transport
    text: str | None = None
    provider_id: str | None = None
    vendor: int | None = None  # the vendor's errcode as a number

    def result(self, key: str) -> SendResult:
        ok = self.outcome == "ok"
        return SendResult(
            key,
            ok=ok,
            retryable=self.outcome == "retry",
            provider_message_id=self.provider_id,
            error_code=None if ok else self.code,
            error_text=None if ok else self.text,
        )


def cut(text: str, limit: int = FIELD_LIMIT) -> str:
    """One line of at most ``limit`` characters; a cut text ends in ``…``.

    Whitespace runs (newlines included) become one space. The cut
    (:func:`alerts.channels.fit.hard_cut`) never separates a base character
    from its combining marks or an emoji sequence.
    """
    return hard_cut(" ".join(text.split()), limit)


def _issue_time(message: Message, clock: Callable[[], datetime]) -> str:
    m = _GBT_STAMP.search(message.identifier or "")
    if m:
        when = datetime.strptime(m.group(1), "%Y%m%d%H%M%S")
    else:
        when = clock().astimezone(BEIJING)
    return when.strftime("%Y-%m-%d %H:%M")


def _hazard(message: Message) -> str:
    try:
        return Hazard(message.alert_id.split(":", 1)[0]).zh
    except ValueError:
        m = _HAZARD_IN_SUBJECT.search(message.subject)
        return m.group(1) if m else ""


def _source(message: Message, source: str, clock: Callable[[], datetime]) -> str:
    if source == "subject":
        return message.subject
    if source == "level":
        m = _LEVEL.search(message.subject)
        return f"{m.group(0)}预警" if m else ""
    if source == "hazard":
        return _hazard(message)
    if source == "area":
        return message.subject.rsplit("】", 1)[-1].strip()
    return _issue_time(message, clock)  # "time"


def template_data(
    message: Message, fields: Mapping[str, str], clock: Callable[[], datetime]
) -> dict[str, dict[str, str]]:
    """The template ``data``: each field's value from the message, cut to 20 characters."""
    return {
        key: {"value": cut(_source(message, source, clock)) or "-"}
        for key, source in fields.items()
    }


def _link(message: Message) -> str | None:
    urls = _URL.findall(message.body)
    return urls[-1] if urls else None


def article_content(document: str) -> str:
    """The article body WeChat wants from a whole HTML document.

    The inner part of ``<body>`` (the whole document without its doctype,
    ``<html>`` and ``<head>`` when it has no body tag), ``<script>`` elements
    removed (an unclosed one up to the end); everything else, inline styles
    included, as it came.
    """
    opened = _BODY_OPEN.search(document)
    if opened is not None:
        closed = _BODY_CLOSE.search(document, opened.end())
        inner = document[opened.end() : closed.start() if closed else len(document)]
    else:
        inner = _DOC_TAGS.sub("", _HEAD.sub("", document))
    return _SCRIPT.sub("", inner).strip()


def plain_article(body: str) -> str:
    """A text body as article HTML: one escaped paragraph per non-empty line."""
    return "".join(
        f"<p>{html.escape(line.strip())}</p>" for line in body.splitlines() if line.strip()
    )


def _with_urls(content: str, urls: Mapping[str, str]) -> str:
    """``content`` with every ``cid:NAME`` replaced by that image's uploaded URL."""
    return _CID_SRC.sub(lambda m: m.group(1) + html.escape(urls[m.group(2)], quote=True), content)


def _field_code(field: str) -> Callable[[dict[str, Any]], Any]:
    """A non-zero errcode, else the pseudo code of an answer carrying ``field`` (else None)."""

    def code_of(body: dict[str, Any]) -> Any:
        code = _errcode(body)
        if code not in (None, 0):
            return code
        value = body.get(field)
        return _GOT_FIELD if value not in (None, "") else None

    return code_of


def _remember(cache: OrderedDict[str, str], key: str, value: str) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > KEEP:
        cache.popitem(last=False)


@dataclass(frozen=True)
class _Article:
    title: str
    digest: str
    content: str  # with cid:NAME references still in it
    images: list[tuple[str, bytes]]
    source_url: str


def _errcode(body: dict[str, Any]) -> Any:
    return int_code(body.get("errcode"))


def _token_code(body: dict[str, Any]) -> Any:
    return _GOT_TOKEN if body.get("access_token") else _errcode(body)


def _judge(
    reply: Reply,
    *,
    code_of: Callable[[dict[str, Any]], Any],
    ok: Collection[Any],
    secrets: Sequence[str],
) -> Verdict:
    return judge(
        reply,
        code_of=code_of,
        text_of=lambda body: str(body.get("errmsg", "")),
        ok=ok,
        retry=RETRY,
        fatal=FATAL,
        timeout_code="timeout",
        secrets=secrets,
    )


class WeChatOAChannel:
    idempotent = False
    # Answers that mean the follower is gone: the dispatcher deactivates the subscriber.
    gone_codes = frozenset({"43004", "43101"})

    def __init__(
        self,
        *,
        name: str,
        app_id: str,
        app_secret: str,
        session: requests.Session,
        clock: Callable[[], datetime],
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 10.0,
        mode: str = "template",
        template_id: str | None = None,
        fields: Mapping[str, str] | None = None,
        url: str | None = None,
        tag_id: int | None = None,
        thumb_media_id: str | None = None,
        author: str | None = None,
        title_limit: int = TITLE_LIMIT,
        push: bool = False,
    ) -> None:
        self.name = name
        self._app_id = app_id
        self._app_secret = app_secret
        self._session = session
        self._clock = clock
        self._base = base_url.rstrip("/")
        self._timeout = timeout_s
        self._mode = mode
        self._template_id = template_id
        self._fields = dict(fields or {"first": "subject"})
        self._url = url
        self._tag_id = tag_id
        self._thumb_media_id = thumb_media_id
        self._author = author
        self._title_limit = title_limit
        self._push = push
        # mass and article modes reach every follower (or the tag) in one send,
        # whatever the recipients
        self.max_batch = 10_000 if mode in ("mass", "article") else 1
        self._token: str | None = None
        self._refresh_at: datetime | None = None
        self._image_urls: OrderedDict[str, str] = OrderedDict()  # SHA-256 -> uploaded URL
        self._drafts: OrderedDict[str, str] = OrderedDict()  # article digest -> draft media_id

    # -- token ------------------------------------------------------------------

    def _fetch_token(self, *, force: bool) -> str | _Outcome:
        reply = post_json(
            self._session,
            f"{self._base}/cgi-bin/stable_token",
            {
                "grant_type": "client_credential",
                "appid": self._app_id,
                "secret": self._app_secret,
                "force_refresh": force,
            },
            timeout=self._timeout,
        )
        # Only an answer with an access_token will do (errcode 0 without one retries).
        verdict = _judge(reply, code_of=_token_code, ok=(_GOT_TOKEN,), secrets=[self._app_secret])
        if verdict.outcome != "ok":
            return _Outcome(verdict.outcome, verdict.code, f"stable_token: {verdict.text}")
        body: dict[str, Any] = reply.body
        token = body["access_token"]
        try:
            expires_in = float(body.get("expires_in", 7200))
        except (TypeError, ValueError):
            expires_in = 7200.0
        self._token = str(token)
        self._refresh_at = self._clock() + max(
            timedelta(seconds=expires_in) - TOKEN_MARGIN, timedelta(0)
        )
        return self._token

    def _access_token(self) -> str | _Outcome:
        if self._token is not None and self._refresh_at is not None:
            if self._clock() < self._refresh_at:
                return self._token
        return self._fetch_token(force=False)

    # -- calls ------------------------------------------------------------------

    def _post_once(
        self,
        path: str,
        payload: dict[str, Any] | None,
        token: str,
        *,
        field: str | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> _Outcome:
        """One call: a JSON ``payload``, or a multipart upload of ``files``.

        Without ``field`` an ``errcode`` 0 is success and the provider id is
        the ``msgid`` / ``msg_id``; with it, success is an answer carrying
        that field (``url``, ``media_id``, ``publish_id``), its value the id.
        """
        url = f"{self._base}{path}"
        params = {"access_token": token}
        if files is not None:
            reply = request(
                self._session,
                "POST",
                url,
                timeout=self._timeout,
                files=dict(files),
                params=params,
                allow_redirects=False,
            )
        else:
            # UTF-8 as is (post_json): WeChat shows \u escapes literally in some message
            # types, and draft/add refuses them (40033).
            reply = post_json(
                self._session, url, payload or {}, timeout=self._timeout, params=params
            )
        verdict = _judge(
            reply,
            code_of=_errcode if field is None else _field_code(field),
            ok=OK if field is None else (_GOT_FIELD,),
            secrets=[token, self._app_secret],
        )
        if verdict.outcome == "ok":
            if field is not None:
                return _Outcome("ok", provider_id=str(reply.body[field]))
            msgid = reply.body.get("msgid", reply.body.get("msg_id"))
            return _Outcome("ok", provider_id=None if msgid is None else str(msgid))
        vendor = int_code(verdict.code)
        return _Outcome(
            verdict.outcome,
            verdict.code,
            verdict.text,
            vendor=vendor if isinstance(vendor, int) else None,
        )

    def _post(
        self,
        path: str,
        payload: dict[str, Any] | None,
        state: dict[str, bool],
        *,
        field: str | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> _Outcome:
        token = self._access_token()
        if isinstance(token, _Outcome):
            return token
        done = self._post_once(path, payload, token, field=field, files=files)
        if done.vendor in TOKEN_ERRORS:
            self._token = None  # never reuse a token the platform refused
            if not state["refreshed"]:
                state["refreshed"] = True
                token = self._fetch_token(force=True)
                if isinstance(token, _Outcome):
                    return token
                done = self._post_once(path, payload, token, field=field, files=files)
                if done.vendor in TOKEN_ERRORS:
                    self._token = None
        return done

    # -- article mode -----------------------------------------------------------

    def _article(self, message: Message) -> _Article:
        """The article of a message (raises ValueError when its images do not match)."""
        images = check_inline_images(message.html, message.images)
        if message.html is None:
            content = plain_article(message.body)
        else:
            content = article_content(message.html)
        return _Article(
            title=cut(message.subject or message.body, self._title_limit),
            digest=cut(message.body, DIGEST_LIMIT),
            content=content,
            images=images,
            source_url=_link(message) or self._url or "",
        )

    def _upload(self, name: str, data: bytes, state: dict[str, bool]) -> str | _Outcome:
        digest = hashlib.sha256(data).hexdigest()
        known = self._image_urls.get(digest)
        if known is not None:
            return known
        done = self._post(
            "/cgi-bin/media/uploadimg",
            None,
            state,
            field="url",
            files={"media": (f"{name}.png", data, "image/png")},
        )
        if done.outcome != "ok" or done.provider_id is None:
            return done
        _remember(self._image_urls, digest, done.provider_id)
        return done.provider_id

    def _send_article(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        article = self._article(message)  # a wrong bulletin raises before any call

        def fail(done: _Outcome, step: str) -> list[SendResult]:
            return results(
                recipients, done.outcome, code=done.code, text=f"{step}: {done.text or ''}"
            )

        too_long = self._too_long(article.content)
        if too_long:
            return results(recipients, "fatal", code="too-long", text=too_long)
        state = {"refreshed": False}  # one forced token refresh per send()
        urls: dict[str, str] = {}
        for name, data in article.images:
            got = self._upload(name, data, state)
            if isinstance(got, _Outcome):
                return fail(got, f"media/uploadimg {name}")
            urls[name] = got
        content = _with_urls(article.content, urls)
        too_long = self._too_long(content)
        if too_long:
            return results(recipients, "fatal", code="too-long", text=too_long)
        entry: dict[str, Any] = {"title": article.title}
        if self._author:
            entry["author"] = self._author
        entry.update(
            digest=article.digest,
            content=content,
            content_source_url=article.source_url,
            thumb_media_id=self._thumb_media_id,
            need_open_comment=0,
        )
        payload = {"articles": [entry]}
        key = hashlib.sha256(dumps_json(payload)).hexdigest()
        media_id = self._drafts.get(key)
        kept = media_id is not None
        if media_id is None:
            added = self._post("/cgi-bin/draft/add", payload, state, field="media_id")
            if added.outcome != "ok" or added.provider_id is None:
                return fail(added, "draft/add")
            media_id = added.provider_id
            _remember(self._drafts, key, media_id)
        if self._push:
            # POST /cgi-bin/message/mass/sendall, msgtype mpnews with the draft's media_id.
            # What we found: the sendall reference (developers.weixin.qq.com/doc/service/api/
            # notify/message/api_sendall) takes {"filter", "msgtype": "mpnews", "mpnews":
            # {"media_id"}, "send_ignore_reprint"} and answers msg_id / msg_data_id; the
            # draft_add reference says a draft leaves the box once "被群发或发布后" (mass-sent
            # or published), so a draft's media_id serves both; the WeChat community shows
            # this exact body with a draft media_id. The batch-send guide
            # (offiaccount/Message_Management/Batch_Sends_and_Originality_Checks): only
            # is_to_all sends enter the account's history; 45028 = no mass-send quota left.
            flt: dict[str, Any] = (
                {"is_to_all": True}
                if self._tag_id is None
                else {"is_to_all": False, "tag_id": self._tag_id}
            )
            step = "message/mass/sendall"
            done = self._post(
                "/cgi-bin/message/mass/sendall",
                {
                    "filter": flt,
                    "mpnews": {"media_id": media_id},
                    "msgtype": "mpnews",
                    "send_ignore_reprint": 0,
                },
                state,
            )
        else:
            step = "freepublish/submit"
            done = self._post(
                "/cgi-bin/freepublish/submit", {"media_id": media_id}, state, field="publish_id"
            )
        if done.outcome == "retry":
            return fail(done, step)  # the draft is kept: the next send submits it again
        self._drafts.pop(key, None)
        if done.outcome != "ok":
            if kept and done.vendor == INVALID_MEDIA_ID:
                # the kept draft is gone (deleted on the MP website): a fresh one next time
                return fail(_Outcome("retry", done.code, done.text), step)
            return fail(done, step)
        return results(recipients, "ok", provider_id=done.provider_id)

    @staticmethod
    def _too_long(content: str) -> str | None:
        size = len(content.encode("utf-8"))
        if len(content) >= ARTICLE_CONTENT_LIMIT or size >= ARTICLE_CONTENT_BYTES:
            return (
                f"article content of {len(content)} characters ({size} bytes): WeChat takes "
                f"fewer than {ARTICLE_CONTENT_LIMIT} characters and 1 MB"
            )
        return None

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """What :meth:`send` would send, without a call.

        Template mode: one ``key: value`` line per template field and the
        ``url``, the longest field's characters, and the field limit (20).
        Mass mode: the text, its characters, no limit. Article mode: the
        title, the digest and the article HTML's size (its characters, with
        ``cid:`` references not yet replaced by uploaded URLs), and the
        content limit (20 000 characters).
        """
        if self._mode == "article":
            article = self._article(message)
            lines = [
                f"title: {article.title}",
                f"digest: {article.digest}",
                f"html: {len(article.content)} characters, {len(article.images)} images",
            ]
            if article.source_url:
                lines.append(f"url: {article.source_url}")
            return "\n".join(lines), len(article.content), ARTICLE_CONTENT_LIMIT
        if self._mode == "mass":
            content = message.body.strip() or message.subject
            return content, len(content), None
        data = template_data(message, self._fields, self._clock)
        lines = [f"{key}: {field['value']}" for key, field in data.items()]
        link = self._url or _link(message)
        if link:
            lines.append(f"url: {link}")
        size = max((len(field["value"]) for field in data.values()), default=0)
        return "\n".join(lines), size, FIELD_LIMIT

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        if not recipients:
            return []
        if self._mode == "article":
            return self._send_article(message, recipients)
        state = {"refreshed": False}  # one forced token refresh per send()
        if self._mode == "mass":
            content = message.body.strip() or message.subject
            done = self._post(
                "/cgi-bin/message/mass/sendall",
                {
                    "filter": {"is_to_all": False, "tag_id": self._tag_id},
                    "msgtype": "text",
                    "text": {"content": content},
                },
                state,
            )
            return results(
                recipients,
                done.outcome,
                code=done.code,
                text=done.text,
                provider_id=done.provider_id,
            )
        payload: dict[str, Any] = {
            "template_id": self._template_id,
            "data": template_data(message, self._fields, self._clock),
        }
        link = self._url or _link(message)
        if link:
            payload["url"] = link
        out = []
        for r in recipients:
            done = self._post(
                "/cgi-bin/message/template/send", {"touser": r.address, **payload}, state
            )
            out.append(done.result(r.key))
        return out


def _option_error(settings: ChannelSettings, key: str, why: str) -> ConfigError:
    return ConfigError(f"channels.{settings.name}.options.{key}: {why}")


def build(
    settings: ChannelSettings, *, session: requests.Session, clock: Callable[[], datetime]
) -> WeChatOAChannel:
    app_id = settings.secret("app_id")
    app_secret = settings.secret("app_secret")
    opts = settings.options
    mode = opts.get("mode", "template")
    if mode not in ("template", "mass", "article"):
        raise _option_error(
            settings, "mode", f"must be 'template', 'mass' or 'article', got {mode!r}"
        )
    template_id: str | None = None
    tag_id: int | None = None
    article: dict[str, Any] = {}
    fields = opts.get("fields", {"first": "subject"})
    if mode == "template":
        template_id = opts.get("template_id")
        if not template_id or not isinstance(template_id, str):
            raise _option_error(settings, "template_id", "required for wechat_oa template mode")
        if (
            not isinstance(fields, Mapping)
            or not fields
            or not all(isinstance(k, str) and k for k in fields)
            or not all(v in FIELD_SOURCES for v in fields.values())
        ):
            raise _option_error(
                settings, "fields", f"a mapping of template keys to one of {FIELD_SOURCES}"
            )
    elif mode == "mass" or opts.get("tag_id") is not None:
        raw = opts.get("tag_id")
        if isinstance(raw, bool) or raw is None or not str(raw).strip().isdigit():
            raise _option_error(settings, "tag_id", "an integer tag id, required for mass mode")
        tag_id = int(raw)
    if mode == "article":
        article = _article_options(settings)
    url = opts.get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise _option_error(settings, "url", "must be an http(s):// URL")
    return WeChatOAChannel(
        name=settings.name,
        app_id=app_id,
        app_secret=app_secret,
        session=session,
        clock=clock,
        base_url=settings.base_url or DEFAULT_BASE_URL,
        timeout_s=settings.timeout_s,
        mode=mode,
        template_id=template_id,
        fields=fields,
        url=url,
        tag_id=tag_id,
        **article,
    )


def _article_options(settings: ChannelSettings) -> dict[str, Any]:
    """Article mode's options, checked: thumb_media_id, author, title_limit, push."""
    opts = settings.options
    thumb = opts.get("thumb_media_id")
    if not isinstance(thumb, str) or not thumb.strip():
        raise _option_error(
            settings,
            "thumb_media_id",
            "required for wechat_oa article mode: the media_id of a permanent image material "
            "(the cover; upload it once with /cgi-bin/material/add_material?type=image)",
        )
    author = opts.get("author")
    if author is not None and (
        not isinstance(author, str) or not author.strip() or len(author) > AUTHOR_LIMIT
    ):
        raise _option_error(settings, "author", f"a name of at most {AUTHOR_LIMIT} characters")
    raw_limit = opts.get("title_limit", TITLE_LIMIT)
    if (
        isinstance(raw_limit, bool)
        or not isinstance(raw_limit, int)
        or not 1 <= raw_limit <= TITLE_LIMIT_MAX
    ):
        raise _option_error(settings, "title_limit", f"an integer from 1 to {TITLE_LIMIT_MAX}")
    push = opts.get("push", False)
    if not isinstance(push, bool):
        raise _option_error(settings, "push", "true or false")
    return {
        "thumb_media_id": thumb.strip(),
        "author": author.strip() if author else None,
        "title_limit": raw_limit,
        "push": push,
    }
