"""Generic JSON webhook: one signed POST per message, for any receiver.

The URL is ``options.url``, else ``base_url`` (one of them is required). A
webhook is one endpoint, so ``send`` makes a single call per message with
every recipient's address in ``"recipients"``, and each recipient gets the
call's result.

Body (UTF-8 JSON): ``identifier``, ``alert_id``, ``version``, ``subject``,
``body``, ``language``, ``recipients`` (addresses) and ``sent_at`` (ISO 8601
UTC, from the injected clock).

Signature, so the receiver can tell the call is ours and fresh:
``X-Alerts-Timestamp: TS`` (Unix seconds) and ``X-Alerts-Signature:
sha256=HEX`` with ``HEX = hex(HMAC_SHA256(key=credentials.secret,
msg=f"{TS}.".encode() + raw_body))``. Receivers should recompute it over the
raw bytes (before any JSON parsing), compare in constant time and refuse a
timestamp more than a few minutes off.

Idempotency: unless ``options.idempotency_header`` is false, each call
carries ``Idempotency-Key`` (a SHA-256 of the recipients' delivery keys, so a
retry of the same delivery carries the same key) and the channel declares
itself ``idempotent``. Receivers should deduplicate on that header: a call
that timed out after it arrived is sent again with the same key.

2xx is success; 408, 425, 429, 5xx and transport failures are retryable; any
other status (4xx, or a 3xx: redirects are not followed, as a POST would
become a GET) is fatal, with the status as the error code.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from alerts.channels.base import Message, Recipient, SendResult
from alerts.channels.http import HTTP_RETRY, dumps_json, judge, post_json, results
from alerts.config import ChannelSettings, ConfigError

__all__ = ["RETRY_STATUSES", "WebhookChannel", "build", "idempotency_key", "signature"]

RETRY_STATUSES = HTTP_RETRY


def signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """The ``X-Alerts-Signature`` value for ``body`` sent at ``timestamp_s``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def idempotency_key(message: Message, recipients: Sequence[Recipient]) -> str:
    """The same key for the same delivery: a hash of the recipients' keys.

    Without recipients: the publication identifier, else alert id and version.
    """
    if recipients:
        joined = "\n".join(sorted(r.key for r in recipients))
        return hashlib.sha256(joined.encode("utf-8")).hexdigest()
    return message.identifier or f"{message.alert_id}:{message.version}"


class WebhookChannel:
    """A signed JSON webhook; see the module docstring for the wire contract."""

    rate: tuple[float, float] | None = None  # the receiver's limits are unknown
    max_batch = 1000  # one call carries every recipient of a message (see above)

    def __init__(
        self,
        *,
        name: str,
        url: str,
        secret: str,
        session: requests.Session,
        clock: Callable[[], datetime],
        timeout_s: float = 10.0,
        idempotency_header: bool = True,
    ) -> None:
        self.name = name
        self.url = url
        self.idempotent = idempotency_header
        self._secret = secret
        self._session = session
        self._clock = clock
        self._timeout = timeout_s

    def encode(self, message: Message, recipients: Sequence[Recipient], now: datetime) -> bytes:
        payload: dict[str, Any] = {
            "identifier": message.identifier,
            "alert_id": message.alert_id,
            "version": message.version,
            "subject": message.subject,
            "body": message.body,
            "language": message.language,
            "recipients": [r.address for r in recipients],
            "sent_at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }
        return dumps_json(payload)

    def preview(self, message: Message) -> tuple[str, int, int | None]:
        """The ``body`` field as sent (the JSON carries it whole); its characters; no limit."""
        return message.body, len(message.body), None

    def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        if not recipients:
            return []
        now = self._clock()
        body = self.encode(message, recipients, now)
        ts = int(now.timestamp())
        headers = {
            "X-Alerts-Timestamp": str(ts),
            "X-Alerts-Signature": signature(self._secret, ts, body),
        }
        if self.idempotent:
            headers["Idempotency-Key"] = idempotency_key(message, recipients)
        reply = post_json(self._session, self.url, body, timeout=self._timeout, headers=headers)
        # No vendor codes: the HTTP status decides (2xx ok, 408/425/429/5xx retry, else fatal).
        outcome, code, text = judge(reply, code_of=None, status_code="{}")
        found = reply.body.get("id") if isinstance(reply.body, dict) else None
        provider_id = str(found) if outcome == "ok" and found is not None else None
        return results(recipients, outcome, code=code, text=text, provider_id=provider_id)


def build(
    settings: ChannelSettings, *, session: requests.Session, clock: Callable[[], datetime]
) -> WebhookChannel:
    """A webhook channel from its settings; ConfigError names a missing or bad key."""
    url = settings.options.get("url") or settings.base_url
    if not url:
        raise ConfigError(
            f"channels.{settings.name}.options.url: required for webhook "
            f"(or channels.{settings.name}.base_url)"
        )
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"channels.{settings.name}.options.url: must be an http(s):// URL")
    secret = settings.secret("secret")
    return WebhookChannel(
        name=settings.name,
        url=url,
        secret=secret,
        session=session,
        clock=clock,
        timeout_s=settings.timeout_s,
        idempotency_header=bool(settings.options.get("idempotency_header", True)),
    )
