"""Sina Weibo (微博): one public post per message on the account's timeline.

Credentials ``access_token`` (a user-delegated OAuth2 token: a person
authorises the account once; it expires, 21327). Options
``safe_domain_url`` (required): a link on the app's registered safe domain.
Every post must contain a URL of that domain; when the message body already
links to a page on it (host equal, or a subdomain), that link is used,
otherwise ``safe_domain_url`` is.

``POST /2/statuses/share.json`` with form fields ``access_token`` and
``status``. The status is at most 140 characters counted the Weibo way: a
character in U+0000-U+007F counts half, any other one (CJK, full-width
punctuation) one, a character outside the BMP two (the web client counts
UTF-16 units), rounded up; the link counts as written. The status is the
headline (the body's first line), as many whole sentences of the rest as fit
(cut at 。！？；, at !?;. before a space or a line end, never mid-sentence;
URLs and their "详情：" labels dropped), then the link and a unique suffix
(:func:`alerts.channels.fit.fit_text` by :func:`weibo_length`). Only when not
even the first sentence fits are its leading clauses kept (cut at ，、：),
ending in ``…``; a headline too long for the post is cut the same visible way.

Duplicate content is refused (20017 / 20019), so two messages with the same
text must differ: the suffix is ``(YYYYMMDDHHMMSS-N)``, the issue time and
serial of a GB/T 35965.1 identifier; a short identifier as is; else eight
hex digits of a SHA-1 of the identifier, or of ``alert_id#version`` when there
is no identifier. It is stable, so a retried post of one message stays the
same text.

One post per message: the recipients are the account's followers, and each
gets the post's result. Errors come as ``{"request", "error_code", "error"}``
(often with HTTP 400 / 403): 10022, 10023, 10024, 20016 (rate limits, about 30
posts an hour), 5xx and transport failures retry; 10017, 20012, 20017, 20019,
21327, 10014 and the other dead-token codes are fatal; an unknown code
retries. Not idempotent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from alerts.channels.base import Message, Recipient, SendResult
from alerts.channels.fit import fit_text, hard_cut, weibo_length, weibo_units
from alerts.channels.http import int_code, judge, request, results
from alerts.config import ChannelSettings, ConfigError

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_LENGTH",
    "WeiboChannel",
    "build",
    "compose_status",
    "unique_suffix",
    "weibo_length",
]

DEFAULT_BASE_URL = "https://api.weibo.com"
MAX_LENGTH = 140
MAX_LINK_LENGTH = 60  # a link longer than this (Weibo count) leaves too little room for text

RETRY = {10022, 10023, 10024, 20016}  # IP / user / API rate limits
FATAL = {
    10014,  # no permission for this API
    10017,  # parameter value invalid (no safe-domain URL)
    20012,  # text too long
    20017,  # similar content
    20019,  # repeated content
    21327,  # token expired
    21301,  # authorisation failed
    21314,  # token used
    21315,  # token expired
    21316,  # token revoked
    21317,  # token rejected
    21332,  # invalid access token
}

_URL = re.compile(r"https?://[^\s<>\"'，。；、）】」]+")
_LABEL = re.compile(r"(?:详情|链接|更多|查看|details?|more)?\s*[：:]\s*$", re.IGNORECASE)
# A sentence ends at 。！？；!?; or ". " (not "120.0"), see alerts.channels.fit.sentence_ends.
SENTENCE_ENDS = "。！？；!?;."
_GBT_TAIL = re.compile(r"_(\d{14})_(\d+)$")
_SHORT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,16}$")


def unique_suffix(message: Message) -> str:
    """A short token that differs between messages (see the module notes)."""
    ident = message.identifier or ""
    m = _GBT_TAIL.search(ident)
    if m:
        return f"{m.group(1)}-{m.group(2)}"
    if _SHORT_ID.match(ident):
        return ident
    seed = ident or f"{message.alert_id}#{message.version}"
    return hashlib.sha1(seed.encode("utf-8")).hexdigest()[:8]


def _on_domain(url: str, host: str) -> bool:
    got = (urlsplit(url).hostname or "").lower()
    return got == host or got.endswith("." + host)


def compose_status(message: Message, safe_domain_url: str) -> str:
    """The post: headline, whole sentences that fit, the safe-domain link, a unique suffix."""
    body = message.body.strip() or message.subject.strip()
    host = (urlsplit(safe_domain_url).hostname or "").lower()
    links = [u for u in _URL.findall(body) if _on_domain(u, host)]
    link = links[-1] if links and weibo_length(links[-1]) <= MAX_LINK_LENGTH else safe_domain_url
    tail = f"{link} ({unique_suffix(message)})"

    lines = body.splitlines()
    headline = " ".join(lines[0].split()) if lines else ""
    rest = []
    for line in lines[1:]:
        text = _URL.sub("", line)
        if text != line:  # a link line: drop what labelled the link
            text = _LABEL.sub("", text.rstrip())
        text = text.strip()
        if text:
            rest.append(text)

    # A headline too long for the post is cut visibly, leaving room for two line breaks.
    headline = hard_cut(headline, 2 * MAX_LENGTH - weibo_units(tail) - 2, weibo_units)
    lines = [line for line in (headline, *rest) if line]
    status = fit_text(
        "\n".join([*lines, tail]), MAX_LENGTH, weibo_length, ends=SENTENCE_ENDS, clauses=True
    )
    return status if status is not None else tail  # the link alone always fits


_POSTED = "posted"  # the pseudo code of an answer carrying the new post's id


def _code(body: dict[str, Any]) -> Any:
    if body.get("error_code") is not None:
        return int_code(body["error_code"])
    return _POSTED if body.get("idstr") or body.get("id") else None


class WeiboChannel:
    idempotent = False
    # Posting is limited to about 30 an hour per user and app (20016 beyond it).
    rate: tuple[float, float] | None = (30, 3600.0)

    def __init__(
        self,
        *,
        name: str,
        access_token: str,
        safe_domain_url: str,
        session: requests.Session,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self._token = access_token
        self._safe_url = safe_domain_url
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = timeout_s

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """The status :meth:`send` would post, its Weibo length, and the limit."""
        status = compose_status(message, self._safe_url)
        return status, weibo_length(status), MAX_LENGTH

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        if not recipients:
            return []
        status = compose_status(message, self._safe_url)
        reply = request(
            self._session,
            "POST",
            f"{self._base}/2/statuses/share.json",
            timeout=self._timeout,
            data={"access_token": self._token, "status": status},
        )
        # An answer we cannot read retries (a repeat is refused as duplicate content).
        outcome, code, text = judge(
            reply,
            code_of=_code,
            text_of=lambda body: str(body.get("error", "")),
            ok=(_POSTED,),
            retry=RETRY,
            fatal=FATAL,
            timeout_code="timeout",
            code_in_5xx=True,  # a 5xx is retried whatever it says, its error_code shown
        )
        if outcome == "ok":
            return results(
                recipients, "ok", provider_id=str(reply.body.get("idstr") or reply.body["id"])
            )
        return results(recipients, outcome, code=code, text=text)


def build(
    settings: ChannelSettings, *, session: requests.Session, clock: Callable[[], datetime]
) -> WeiboChannel:
    access_token = settings.secret("access_token")
    url = settings.options.get("safe_domain_url")
    where = f"channels.{settings.name}.options.safe_domain_url"
    if not url or not isinstance(url, str):
        raise ConfigError(f"{where}: required for weibo (a link on the app's safe domain)")
    if not url.startswith(("http://", "https://")) or not urlsplit(url).hostname:
        raise ConfigError(f"{where}: must be an http(s):// URL, got {url!r}")
    if any(c.isspace() for c in url) or weibo_length(url) > MAX_LINK_LENGTH:
        raise ConfigError(
            f"{where}: at most {MAX_LINK_LENGTH} Weibo characters without spaces, got {url!r}"
        )
    return WeiboChannel(
        name=settings.name,
        access_token=access_token,
        safe_domain_url=url,
        session=session,
        base_url=settings.base_url or DEFAULT_BASE_URL,
        timeout_s=settings.timeout_s,
    )
