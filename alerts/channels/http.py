"""What every HTTP channel shares: one request helper and one way to classify answers.

Vendors report failure inside an HTTP 200 (``errcode``, ``code``, ``Code``):
a channel reads the vendor's own code, never just the status. Transport
failures (timeouts, refused connections, 5xx) are retryable; a vendor code
the channel does not know is treated as retryable too, so a new code costs
some retries before the dead letter, never a silent loss.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from alerts.channels.base import Recipient, SendResult

__all__ = ["Reply", "classify", "request", "results"]


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


def classify(code: Any, *, ok: Iterable[Any], retry: Iterable[Any], fatal: Iterable[Any]) -> str:
    """``ok`` / ``retry`` / ``fatal`` for a vendor code; unknown codes are ``retry``."""
    if code in set(ok):
        return "ok"
    if code in set(fatal):
        return "fatal"
    return "retry"


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
