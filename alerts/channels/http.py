"""What every HTTP channel shares: one request helper and one way to judge answers.

Vendors report failure inside an HTTP 200 (``errcode``, ``code``, ``Code``):
a channel reads the vendor's own code, never just the status. Transport
failures (timeouts, refused connections, 5xx) are retryable; a vendor code
the channel does not know is treated as retryable too, so a new code costs
some retries before the dead letter, never a silent loss. :func:`judge` is
that rule, parameterized by where the vendor keeps its code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import requests

from alerts.channels.base import Recipient, SendResult

__all__ = [
    "HTTP_RETRY",
    "JSON_HEADERS",
    "Reply",
    "Verdict",
    "classify",
    "dumps_json",
    "int_code",
    "judge",
    "post_json",
    "redact",
    "request",
    "results",
]

HTTP_RETRY = (408, 425, 429)  # statuses that say "later" (besides 5xx)
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
TEXT_MAX = 500  # characters of an error text kept


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, or the transport error that replaced it."""

    status: int | None
    body: Any  # parsed JSON, or None
    text: str
    error: str | None = None  # set when no HTTP answer came (timeout, connection)

    @property
    def transport_failed(self) -> bool:
        return self.error is not None or (self.status is not None and self.status >= 500)


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    **kwargs: Any,
) -> Reply:
    """One HTTP call; never raises for network trouble (it is returned in ``error``)."""
    try:
        resp = session.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        return Reply(None, None, "", f"{type(exc).__name__}: {exc}")
    text = resp.text[:4000]
    try:
        body = resp.json()
    except (ValueError, json.JSONDecodeError):
        body = None
    return Reply(resp.status_code, body, text)


def dumps_json(payload: Any) -> bytes:
    """Compact UTF-8 JSON, non-ASCII as is (some vendors show ``\\u`` escapes literally)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def post_json(
    session: requests.Session,
    url: str,
    body: bytes | Mapping[str, Any],
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Reply:
    """POST a JSON body (a mapping, or bytes already encoded); redirects are not followed.

    A POST redirected becomes a GET and loses its body, so a 3xx is returned
    as the answer (and judged fatal).
    """
    data = body if isinstance(body, bytes) else dumps_json(body)
    return request(
        session,
        "POST",
        url,
        timeout=timeout,
        data=data,
        headers={**JSON_HEADERS, **(headers or {})},
        allow_redirects=False,
        **kwargs,
    )


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every (non-empty) secret replaced by ``***``.

    Transport errors quote the URL, and with it a token in its path or query.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def int_code(value: Any) -> Any:
    """A vendor code as an int when it is one (``"45009"`` -> 45009), else as it came."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value


def classify(code: Any, *, ok: Iterable[Any], retry: Iterable[Any], fatal: Iterable[Any]) -> str:
    """``ok`` / ``retry`` / ``fatal`` for a vendor code; unknown codes are ``retry``."""
    if code in set(ok):
        return "ok"
    if code in set(fatal):
        return "fatal"
    return "retry"


class Verdict(NamedTuple):
    """What one answer means: ``ok`` / ``retry`` / ``fatal``, with the error code and text."""

    outcome: str
    code: str | None = None
    text: str | None = None


def _no_text(body: dict[str, Any]) -> str:
    return ""


def judge(
    reply: Reply,
    *,
    code_of: Callable[[dict[str, Any]], Any] | None,
    text_of: Callable[[dict[str, Any]], str] = _no_text,
    ok: Collection[Any] = (),
    retry: Collection[Any] = (),
    fatal: Collection[Any] = (),
    http_retry: Collection[int] = HTTP_RETRY,
    status_code: str = "http-{}",
    timeout_code: str = "transport",
    code_in_5xx: bool = False,
    secrets: Iterable[str | None] = (),
) -> Verdict:
    """The :class:`Verdict` on one reply, in this order.

    1. No HTTP answer (timeout, refused, reset): retry, code ``"transport"``
       (``timeout_code`` instead for a timeout), the exception as text.
    2. HTTP 5xx: retry, code ``status_code.format(status)`` (e.g. ``http-502``),
       whatever the body says; with ``code_in_5xx`` a vendor error code in
       the body is reported instead (still retry).
    3. A vendor code (``code_of(body)`` is not None for a JSON object body):
       :func:`classify` with ``ok`` / ``retry`` / ``fatal``; the text is
       ``text_of(body)``.
    4. Otherwise the HTTP status decides. Without ``code_of`` (a plain HTTP
       receiver) 2xx is ok. With it, a 2xx without the vendor's code is an
       answer we cannot read (a proxy's page): retry. ``http_retry``
       (408, 425, 429) retry; anything else (3xx, 4xx) is fatal.

    Every text is cut to 500 characters with ``secrets`` masked.
    """

    def verdict(outcome: str, code: Any, text: str) -> Verdict:
        if outcome == "ok":
            return Verdict("ok")
        return Verdict(outcome, str(code), redact(text, secrets)[:TEXT_MAX])

    if reply.error is not None:
        code = timeout_code if "Timeout" in reply.error else "transport"
        return verdict("retry", code, reply.error)
    status = reply.status or 0
    body = reply.body if isinstance(reply.body, dict) else None
    vendor = code_of(body) if code_of is not None and body is not None else None
    if vendor is not None and body is not None:
        outcome = classify(vendor, ok=ok, retry=retry, fatal=fatal)
        if status < 500:
            return verdict(outcome, vendor, text_of(body))
        if code_in_5xx and outcome != "ok":
            return verdict("retry", vendor, text_of(body))
    text = reply.text or f"HTTP {status}"
    if 200 <= status < 300:
        return verdict("ok" if code_of is None else "retry", status_code.format(status), text)
    outcome = "retry" if status >= 500 or status in http_retry else "fatal"
    return verdict(outcome, status_code.format(status), text)


def results(
    recipients: Sequence[Recipient],
    outcome: str,
    *,
    code: Any = None,
    text: str | None = None,
    provider_id: str | None = None,
) -> list[SendResult]:
    """The same outcome for every recipient of one call."""
    return [
        SendResult(
            r.key,
            ok=outcome == "ok",
            retryable=outcome == "retry",
            provider_message_id=provider_id,
            error_code=None if outcome == "ok" or code is None else str(code),
            error_text=None if outcome == "ok" else text,
        )
        for r in recipients
    ]
