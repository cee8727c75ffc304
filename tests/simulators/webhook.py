"""A generic webhook receiver: verifies the HMAC signature, deduplicates, records.

Recomputes ``X-Alerts-Signature`` independently of the channel over the raw
body (401 on a missing or wrong signature or a stale timestamp), deduplicates
on ``Idempotency-Key`` as the channel asks receivers to, and records each
accepted body in ``accepted`` (duplicates are answered 200 but not recorded).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

from tests.simulators.base import Answer, Request, Simulator

__all__ = ["WebhookSimulator"]


class WebhookSimulator(Simulator):
    def __init__(
        self,
        *,
        secret: str = "wh-secret",
        path: str = "/hook",
        tolerance_s: float = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.secret = secret
        self.path = path
        self.tolerance_s = tolerance_s
        self.clock = clock
        self.keys: dict[str, str] = {}  # Idempotency-Key -> event id

    @property
    def endpoint(self) -> str:
        return self.url + self.path

    def _expected(self, timestamp: str, body: bytes) -> str:
        signed = timestamp.encode("ascii") + b"." + body
        return "sha256=" + hmac.digest(self.secret.encode(), signed, hashlib.sha256).hex()

    def handle(self, request: Request) -> Answer:
        if request.method != "POST" or request.path != self.path:
            return Answer(status=404, body={"error": "not found"})
        ts = request.headers.get("x-alerts-timestamp", "")
        given = request.headers.get("x-alerts-signature", "")
        if not ts.isdigit() or abs(self.clock() - int(ts)) > self.tolerance_s:
            return Answer(status=401, body={"error": "stale or missing timestamp"})
        if not hmac.compare_digest(self._expected(ts, request.body), given):
            return Answer(status=401, body={"error": "bad signature"})
        try:
            payload = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return Answer(status=400, body={"error": "not JSON"})
        key = request.headers.get("idempotency-key")
        if key is not None and key in self.keys:
            return Answer(status=200, body={"id": self.keys[key], "duplicate": True})
        event_id = f"evt-{len(self.accepted) + 1}"
        if key is not None:
            self.keys[key] = event_id
        self.accepted.append(payload)
        return Answer(status=202, body={"id": event_id})
