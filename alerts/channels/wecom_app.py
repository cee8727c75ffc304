"""WeCom application message (企业微信应用消息): a self-built app messages members,
departments and tags.

Credentials ``corp_id``, ``corp_secret`` (the app's secret) and ``agent_id``.
An access token from ``GET /cgi-bin/gettoken?corpid=&corpsecret=`` (valid
``expires_in`` = 7200 s) is cached in the channel until 5 minutes before it
expires, by the injected clock. ``POST /cgi-bin/message/send?access_token=``
takes its targets, each list joined by ``|``, from the recipients' addresses:

- a WeCom userid, or ``@all`` (everyone the app can see, sent on its own):
  ``touser``, at most 1000 per call;
- ``party:ID``, a department id: ``toparty``, at most 100 per call;
- ``tag:ID``, a tag id: ``totag``, at most 100 per call.

Each call carries one kind of target only, so WeCom's answer maps back to the
recipients without guessing; a send with several kinds (or more than one
call's worth of one kind) makes several calls. An address ``party:`` or
``tag:`` whose id is not a positive whole number fails fatal
``invalid-address`` without a call.

Answers: errcode 0 is success, except for the targets the answer lists in
``invaliduser`` (``"a|b"``: unknown or outside the app's visible range),
``unlicenseduser``, ``invalidparty`` or ``invalidtag``, which get fatal
results coded with that field; 42001 / 40014 (token expired / invalid) drop
the token, fetch a new one and retry that call once; 45009, -1, HTTP 5xx and
transport errors are retryable; 40001 (bad secret), 48001 (API not
authorised), 60020 (IP not allowed), 81013 (every target of the call
invalid), 40013 (bad corpid) and 40056 (bad agentid) are fatal; an unknown
errcode is retryable. A failed token fetch is classified the same way and
fails the calls that needed the token.

Idempotent: every call sets ``enable_duplicate_check`` 1 with
``duplicate_check_interval`` 1800, so WeCom drops a repeat of the same content
to the same targets within 30 minutes. A worker that dies mid-send leaves its
rows to be claimed again after the dispatcher's lease (300 s), well inside that
window, and the resend (same rendered body, same recipients of the same
publication) is deduplicated by WeCom instead of reaching people twice.

Content is at most 2048 UTF-8 bytes (text and markdown) and is cut like the
robot's (:func:`alerts.channels.wecom_bot.fit`), or fails fatal ``too-long``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from alerts.channels.base import Message, Recipient, SendResult
from alerts.channels.fit import utf8_bytes
from alerts.channels.http import post_json, request, results
from alerts.channels.wecom_bot import DEFAULT_BASE_URL, body_of, fit, interpret, too_long
from alerts.config import ChannelSettings, ConfigError

__all__ = ["WeComAppChannel", "build"]

LIMIT = 2048  # bytes of content, text and markdown alike
MSGTYPES = ("text", "markdown")
BATCH = 1000  # userids per call; also the most recipients one send() is handed
GROUP_BATCH = 100  # department or tag ids per call
# Address kind -> (the message/send field, ids per call, the answer's invalid-list fields).
KINDS: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "user": ("touser", BATCH, ("unlicenseduser", "invaliduser")),
    "party": ("toparty", GROUP_BATCH, ("invalidparty",)),
    "tag": ("totag", GROUP_BATCH, ("invalidtag",)),
}
PREFIXES = {"party:": "party", "tag:": "tag"}
_ID = re.compile(r"[0-9]{1,10}")
RETRY = (45009, -1)
FATAL = (40001, 48001, 60020, 81013, 40013, 40056)
TOKEN_CODES = ("42001", "40014")  # expired / invalid access token: fetch a new one, once
TOKEN_MARGIN = timedelta(minutes=5)
DUPLICATE_CHECK_INTERVAL_S = 1800


@dataclass(frozen=True)
class _Failure:
    outcome: str
    code: str | None
    text: str | None
    no_token: bool = False  # the token fetch failed


@dataclass(frozen=True)
class _Target:
    kind: str  # user | party | tag (see KINDS)
    id: str  # the userid (or @all), or the department / tag id as digits


ALL = _Target("user", "@all")


class WeComAppChannel:
    type = "wecom_app"
    # WeCom deduplicates a repeat within duplicate_check_interval (see the module doc).
    idempotent = True
    max_batch = BATCH
    rate: tuple[float, float] | None = None  # no documented per-app call limit

    def __init__(
        self,
        *,
        name: str,
        corp_id: str,
        corp_secret: str,
        agent_id: int,
        session: requests.Session,
        clock: Callable[[], datetime],
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 10.0,
        msgtype: str = "text",
    ) -> None:
        if msgtype not in MSGTYPES:
            raise ConfigError(
                f"channels.{name}.options.msgtype: {msgtype!r} is not one of text, markdown"
            )
        self.name = name
        self.msgtype = msgtype
        self._corp_id = corp_id
        self._corp_secret = corp_secret
        self._agent_id = agent_id
        self._session = session
        self._clock = clock
        self._base = base_url.rstrip("/")
        self._timeout = timeout_s
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_good_until: datetime | None = None

    # -- token ---------------------------------------------------------------

    def _secrets(self, *extra: str | None) -> list[str]:
        return [self._corp_secret, *(s for s in extra if s)]

    def _access_token(self) -> str | _Failure:
        """The cached token while fresh, else a new one (or why none could be had)."""
        with self._lock:
            if (
                self._token is not None
                and self._token_good_until is not None
                and self._clock() < self._token_good_until
            ):
                return self._token
            reply = request(
                self._session,
                "GET",
                f"{self._base}/cgi-bin/gettoken",
                timeout=self._timeout,
                params={"corpid": self._corp_id, "corpsecret": self._corp_secret},
            )
            outcome, code, text = interpret(
                reply, retry=RETRY, fatal=FATAL, secrets=self._secrets()
            )
            if outcome != "ok":
                return _Failure(outcome, code, f"gettoken: {text}", no_token=True)
            token = reply.body.get("access_token")
            if not isinstance(token, str) or not token:
                return _Failure(
                    "retry", "no-token", "gettoken: errcode 0 without access_token", no_token=True
                )
            try:
                expires_in = float(reply.body.get("expires_in", 7200))
            except (TypeError, ValueError):
                expires_in = 7200.0
            self._token = token
            self._token_good_until = self._clock() + timedelta(seconds=expires_in) - TOKEN_MARGIN
            return token

    def _drop_token(self, token: str) -> None:
        with self._lock:
            if self._token == token:  # another thread may already have a newer one
                self._token = None
                self._token_good_until = None

    # -- sending -------------------------------------------------------------

    def payload(self, targets: str, content: str, *, field: str = "touser") -> dict[str, Any]:
        """The message/send body of one call: ``field`` (touser, toparty or totag) = ``targets``."""
        return {
            field: targets,
            "msgtype": self.msgtype,
            "agentid": self._agent_id,
            self.msgtype: {"content": content},
            "enable_duplicate_check": 1,
            "duplicate_check_interval": DUPLICATE_CHECK_INTERVAL_S,
        }

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """The content :meth:`send` would post, its UTF-8 bytes and the limit.

        A body that cannot be cut to fit comes back whole (over the limit).
        """
        body = body_of(message)
        content = fit(body, LIMIT)
        text = body if content is None else content
        return text, utf8_bytes(text), LIMIT

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        if not recipients:
            return []
        out: dict[str, SendResult] = {}
        by_target: dict[_Target, list[Recipient]] = {}
        for r in recipients:
            target = _target(r.address)
            if isinstance(target, str):
                out[r.key] = SendResult(
                    r.key,
                    ok=False,
                    retryable=False,
                    error_code="invalid-address",
                    error_text=target,
                )
            else:
                by_target.setdefault(target, []).append(r)
        if not by_target:
            return [out[r.key] for r in recipients]
        body = body_of(message)
        content = fit(body, LIMIT)
        if content is None:
            sendable = [r for rs in by_target.values() for r in rs]
            for res in too_long(sendable, self.msgtype, body, LIMIT):
                out[res.key] = res
            return [out[r.key] for r in recipients]

        targets = list(by_target)
        batches: list[list[_Target]] = [[t] for t in targets if t == ALL]
        for kind, (_, most, _) in KINDS.items():
            ids = [t for t in targets if t.kind == kind and t != ALL]
            batches += [ids[i : i + most] for i in range(0, len(ids), most)]

        no_token: _Failure | None = None
        for batch in batches:
            # Without a token, later batches fail alike: do not ask again for each.
            answer = no_token or self._send_batch(batch, content)
            if isinstance(answer, _Failure):
                if answer.no_token:
                    no_token = answer
                batch_recipients = [r for t in batch for r in by_target[t]]
                for res in results(
                    batch_recipients, answer.outcome, code=answer.code, text=answer.text
                ):
                    out[res.key] = res
            else:
                for res in self._split(batch, by_target, answer):
                    out[res.key] = res
        return [out[r.key] for r in recipients]

    def _send_batch(self, batch: list[_Target], content: str) -> dict[str, Any] | _Failure:
        """The success body of one call (targets of one kind), or why it failed."""
        field = KINDS[batch[0].kind][0]
        payload = self.payload("|".join(t.id for t in batch), content, field=field)
        retried = False
        while True:
            token = self._access_token()
            if isinstance(token, _Failure):
                return token
            reply = post_json(
                self._session,
                f"{self._base}/cgi-bin/message/send",
                payload,
                timeout=self._timeout,
                params={"access_token": token},
            )
            outcome, code, text = interpret(
                reply, retry=RETRY, fatal=FATAL, secrets=self._secrets(token)
            )
            if outcome == "ok":
                body: dict[str, Any] = reply.body
                return body
            if code in TOKEN_CODES or code == "40001":
                self._drop_token(token)
                if code in TOKEN_CODES and not retried:
                    retried = True
                    continue  # a fresh token, once
            return _Failure(outcome, code, text)

    def _split(
        self,
        batch: list[_Target],
        by_target: dict[_Target, list[Recipient]],
        body: dict[str, Any],
    ) -> list[SendResult]:
        """Per-recipient results of an accepted call: listed invalid targets fail, the rest ok."""
        msgid = body.get("msgid")
        provider_id = str(msgid) if msgid else None
        kind = batch[0].kind
        rejected: dict[str, str] = {}
        for field in KINDS[kind][2]:
            for listed in _listed(body.get(field)):
                rejected[_id_key(kind, listed)] = field
        out: list[SendResult] = []
        for target in batch:
            reason = rejected.get(_id_key(kind, target.id))
            for r in by_target[target]:
                if reason is None:
                    out.append(SendResult(r.key, ok=True, provider_message_id=provider_id))
                else:
                    out.append(
                        SendResult(
                            r.key,
                            ok=False,
                            retryable=False,
                            provider_message_id=provider_id,
                            error_code=reason,
                            error_text=f"WeCom listed {r.address.strip()!r} in {_why(reason)}",
                        )
                    )
        return out


def _target(address: str) -> _Target | str:
    """The target an address names, or why it names none."""
    text = address.strip()
    for prefix, kind in PREFIXES.items():
        if text[: len(prefix)].lower() == prefix:
            raw = text[len(prefix) :].strip()
            if not _ID.fullmatch(raw) or int(raw) == 0:
                what = "department" if kind == "party" else kind
                return (
                    f"{text!r} is not a WeCom {what} address: write {prefix}ID, "
                    f"ID being the {what} id (a positive whole number)"
                )
            return _Target(kind, str(int(raw)))
    return _Target("user", text)


def _listed(value: Any) -> list[str]:
    """The entries of an answer's invalid list: ``"a|b"`` (or a JSON list)."""
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else str(value).split("|")
    return [str(v).strip() for v in items if str(v).strip()]


def _id_key(kind: str, value: str) -> str:
    """Userids compare without case (WeCom lists them in lower case); ids as numbers."""
    if kind == "user":
        return value.lower()
    return str(int(value)) if _ID.fullmatch(value) else value


def _why(field: str) -> str:
    return {
        "invaliduser": "invaliduser (unknown userid, or outside the app's visible range)",
        "unlicenseduser": "unlicenseduser (the member has no WeCom licence for this app)",
        "invalidparty": "invalidparty (unknown department id, or outside the app's visible range)",
        "invalidtag": "invalidtag (unknown tag id, or outside the app's visible range)",
    }.get(field, field)


def build(
    settings: ChannelSettings,
    *,
    session: requests.Session,
    clock: Callable[[], datetime],
) -> WeComAppChannel:
    corp_id = settings.secret("corp_id")
    corp_secret = settings.secret("corp_secret")
    raw_agent = settings.secret("agent_id").strip()
    try:
        agent_id = int(raw_agent)
    except ValueError:
        raise ConfigError(
            f"channels.{settings.name}.credentials.agent_id: must be a number, got {raw_agent!r}"
        ) from None
    return WeComAppChannel(
        name=settings.name,
        corp_id=corp_id,
        corp_secret=corp_secret,
        agent_id=agent_id,
        session=session,
        clock=clock,
        base_url=settings.base_url or DEFAULT_BASE_URL,
        timeout_s=settings.timeout_s,
        msgtype=str(settings.options.get("msgtype", "text")),
    )
