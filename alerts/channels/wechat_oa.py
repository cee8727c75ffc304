"""WeChat Official Account (微信公众号): template messages to followers, or mass send by tag.

Credentials ``app_id`` and ``app_secret``; options:

- ``mode``: ``"template"`` (default) or ``"mass"``;
- ``template_id`` (template mode, required) and ``fields``: template data key
  -> one of ``subject``, ``level``, ``hazard``, ``area``, ``time``
  (default ``{"first": "subject"}``); ``url``: the link behind the message
  (default: the last http(s) URL in the message body);
- ``tag_id`` (mass mode, required): the follower tag the text goes to.

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

Failures come as ``errcode`` inside HTTP 200. -1, 45009 (quota: wait), 5xx
and transport failures retry; 43004 (not following) and 43101 (refused) are
fatal with the code kept, so the delivery layer can deactivate the
subscriber; 47003, 40037, 40003 and the credential errors are fatal; an
unknown code retries. Not idempotent: WeChat has no client-side dedup key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from alerts.channels.base import Message, Recipient, SendResult
from alerts.channels.fit import hard_cut
from alerts.channels.http import Reply, Verdict, int_code, judge, post_json, results
from alerts.config import ChannelSettings, ConfigError
from alerts.model import Hazard

__all__ = [
    "DEFAULT_BASE_URL",
    "FIELD_SOURCES",
    "FIELD_LIMIT",
    "WeChatOAChannel",
    "build",
    "cut",
    "template_data",
]

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
FIELD_LIMIT = 20
FIELD_SOURCES = ("subject", "level", "hazard", "area", "time")
TOKEN_MARGIN = timedelta(minutes=5)
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

OK = {0}
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid / expired access_token: refresh once
RETRY = {-1, 45009, 45011}  # busy; API quota (wait, do not hammer)
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
} | TOKEN_ERRORS  # still failing after the one refresh

_URL = re.compile(r"https?://[^\s<>\"'，。；、）】」]+")
_LEVEL = re.compile(r"(红|橙|黄|蓝)色")
_HAZARD_IN_SUBJECT = re.compile(r"【([^【】]{1,6}?)(?:红|橙|黄|蓝)色预警")
_GBT_STAMP = re.compile(r"_(\d{14})_\d+$")
_GOT_TOKEN = "access_token"  # the pseudo code of a stable_token answer that carries one


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
        # mass mode reaches the whole tag in one call, whatever the recipients
        self.max_batch = 10_000 if mode == "mass" else 1
        self._token: str | None = None
        self._refresh_at: datetime | None = None

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

    def _post_once(self, path: str, payload: dict[str, Any], token: str) -> _Outcome:
        # UTF-8 as is (post_json): WeChat shows \u escapes literally in some message types.
        reply = post_json(
            self._session,
            f"{self._base}{path}",
            payload,
            timeout=self._timeout,
            params={"access_token": token},
        )
        verdict = _judge(reply, code_of=_errcode, ok=OK, secrets=[token, self._app_secret])
        if verdict.outcome == "ok":
            msgid = reply.body.get("msgid", reply.body.get("msg_id"))
            return _Outcome("ok", provider_id=None if msgid is None else str(msgid))
        vendor = int_code(verdict.code)
        return _Outcome(
            verdict.outcome,
            verdict.code,
            verdict.text,
            vendor=vendor if isinstance(vendor, int) else None,
        )

    def _post(self, path: str, payload: dict[str, Any], state: dict[str, bool]) -> _Outcome:
        token = self._access_token()
        if isinstance(token, _Outcome):
            return token
        done = self._post_once(path, payload, token)
        if done.vendor in TOKEN_ERRORS:
            self._token = None  # never reuse a token the platform refused
            if not state["refreshed"]:
                state["refreshed"] = True
                token = self._fetch_token(force=True)
                if isinstance(token, _Outcome):
                    return token
                done = self._post_once(path, payload, token)
                if done.vendor in TOKEN_ERRORS:
                    self._token = None
        return done

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """What :meth:`send` would send, without a call.

        Template mode: one ``key: value`` line per template field and the
        ``url``, the longest field's characters, and the field limit (20).
        Mass mode: the text, its characters, no limit.
        """
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
    if mode not in ("template", "mass"):
        raise _option_error(settings, "mode", f"must be 'template' or 'mass', got {mode!r}")
    template_id: str | None = None
    tag_id: int | None = None
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
    else:
        raw = opts.get("tag_id")
        if isinstance(raw, bool) or raw is None or not str(raw).strip().isdigit():
            raise _option_error(settings, "tag_id", "an integer tag id, required for mass mode")
        tag_id = int(raw)
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
    )
