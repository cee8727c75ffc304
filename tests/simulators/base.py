"""A loopback HTTP server that plays a vendor API, with fault injection.

Subclasses implement ``handle(request) -> Answer``: check what the real API
checks (credentials, signatures, sizes, required fields) and answer with the
vendor's real success and error bodies. Tests can queue faults (an HTTP
status, a vendor error body, a delay beyond the client's timeout) that are
served before normal handling, and read ``accepted`` for what got through.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["Answer", "Request", "Simulator"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # dict -> JSON; bytes/str as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


class Simulator:
    """Base class: start(), stop(), url, inject(), accepted, requests."""

    def __init__(self) -> None:
        self.accepted: list[dict[str, Any]] = []
        self.requests: list[Request] = []
        self._faults: deque[Answer] = deque()
        self._lock = threading.Lock()
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                req = Request(
                    method=self.command,
                    path=parts.path,
                    query={k: v[0] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with sim._lock:
                    sim.requests.append(req)
                    fault = sim._faults.popleft() if sim._faults else None
                answer = fault or sim.handle(req)
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                body = answer.encoded()
                try:
                    self.send_response(answer.status)
                    self.send_header(
                        "Content-Type", answer.headers.get("Content-Type", "application/json")
                    )
                    for k, v in answer.headers.items():
                        if k != "Content-Type":
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            do_GET = do_POST = _serve  # noqa: N815 - http.server's naming

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> Simulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, *answers: Answer) -> None:
        """Serve these answers, in order, to the next requests (before normal handling)."""
        with self._lock:
            self._faults.extend(answers)

    def handle(self, request: Request) -> Answer:  # pragma: no cover - subclasses answer
        raise NotImplementedError
