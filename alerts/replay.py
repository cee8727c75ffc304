"""Offline replay: serve recorded feed payloads on loopback as if they were live.

Every file in a folder is served at ``/<file name>`` with its timestamps
shifted once, at start, so that its newest event happened "now"; the bodies
then stay stable, so ETags and 304s behave like the real CDNs. Formats are
recognised by content: USGS GeoJSON, CENC (both shapes), Open-Meteo, CAP 1.2,
Atom and GDACS RSS. Open-Meteo forecasts are shifted by whole hours so that
their first hour is the start of the previous day (``past_days=1``). A file
of no known format is served as recorded (an error reply is worth replaying).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["ReplayServer", "Replayed", "detect", "shift_payload"]

_CN = timedelta(hours=8)
_BJ_FORMAT = "%Y-%m-%d %H:%M:%S"
_XML_TIME = re.compile(
    rb"(<(?:[\w-]+:)?(sent|onset|effective|expires|updated|published)>)\s*"
    rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?)\s*(<)"
)
_RSS_TIME = re.compile(
    rb"(<(pubDate|lastBuildDate|gdacs:fromdate|gdacs:todate|gdacs:datemodified)>)"
    rb"([^<]+)(<)"
)
_JSONP = re.compile(rb"^(\s*(?:[A-Za-z_$][\w$.]*)?\s*\()(.*)(\)\s*;?\s*)$", re.S)


@dataclass(frozen=True)
class Replayed:
    name: str
    kind: str
    body: bytes
    shift: timedelta

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'


def detect(body: bytes) -> str:
    """The format of a payload: usgs, cenc, open-meteo, cap, atom, gdacs (or ValueError)."""
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:4096]
    if head.startswith(b"<"):
        if re.search(rb"<(\w+:)?alert[\s>]", head):
            return "cap"
        if re.search(rb"<feed[\s>]", head):
            return "atom"
        if re.search(rb"<rss[\s>]", head):
            return "gdacs"
        raise ValueError("an XML document that is neither CAP, Atom nor RSS")
    doc = _json(body)
    if isinstance(doc, dict) and ("shuju" in doc or ("code" in doc and "data" in doc)):
        return "cenc"
    if isinstance(doc, dict) and ("features" in doc or doc.get("type") == "Feature"):
        return "usgs"
    first = doc[0] if isinstance(doc, list) and doc else doc
    if isinstance(first, dict) and "hourly" in first:
        return "open-meteo"
    raise ValueError("a JSON document of no known feed format")


def shift_payload(body: bytes, now: datetime) -> tuple[bytes, timedelta, str]:
    """Shift a payload's timestamps so its newest event is ``now``; return body, shift, kind."""
    kind = detect(body)
    shifted, shift = _SHIFTERS[kind](body, now.astimezone(UTC))
    return shifted, shift, kind


def _json(body: bytes) -> Any:
    text = body.lstrip(b"\xef\xbb\xbf")
    match = _JSONP.match(text)
    if match and not text.lstrip().startswith((b"{", b"[")):
        text = match.group(2)
    return json.loads(text)


def _usgs(body: bytes, now: datetime) -> tuple[bytes, timedelta]:
    doc = json.loads(body.lstrip(b"\xef\xbb\xbf"))
    features = doc["features"] if "features" in doc else [doc]
    times = [f["properties"]["time"] for f in features if f["properties"].get("time")]
    if not times:
        return body, timedelta(0)
    shift_ms = int(now.timestamp() * 1000) - max(times)
    for f in features:
        for key in ("time", "updated"):
            if isinstance(f["properties"].get(key), int):
                f["properties"][key] += shift_ms
    if isinstance(doc.get("metadata", {}).get("generated"), int):
        doc["metadata"]["generated"] += shift_ms
    return json.dumps(doc, ensure_ascii=False).encode(), timedelta(milliseconds=shift_ms)


def _cenc(body: bytes, now: datetime) -> tuple[bytes, timedelta]:
    text = body.lstrip(b"\xef\xbb\xbf")
    match = _JSONP.match(text)
    wrapped = bool(match) and not text.lstrip().startswith(b"{")
    doc = json.loads(match.group(2) if wrapped and match else text)
    records = doc.get("shuju") if "shuju" in doc else doc.get("data")
    keys = ("O_TIME", "SAVE_TIME", "SYNC_TIME", "oriTime", "updateTime", "saveTime")
    origins = [
        datetime.strptime(str(r.get("O_TIME") or r.get("oriTime")), _BJ_FORMAT)
        for r in records or []
        if isinstance(r, dict) and (r.get("O_TIME") or r.get("oriTime"))
    ]
    if not origins:
        return body, timedelta(0)
    shift = (now + _CN).replace(tzinfo=None, microsecond=0) - max(origins)
    for r in records:
        for key in keys:
            if isinstance(r, dict) and isinstance(r.get(key), str) and r[key]:
                r[key] = (datetime.strptime(r[key], _BJ_FORMAT) + shift).strftime(_BJ_FORMAT)
    out = json.dumps(doc, ensure_ascii=False).encode()
    if wrapped and match:
        out = match.group(1) + out + match.group(3)
    return out, shift


def _openmeteo(body: bytes, now: datetime) -> tuple[bytes, timedelta]:
    doc = json.loads(body)
    blocks = doc if isinstance(doc, list) else [doc]
    firsts = [
        datetime.fromisoformat(b["hourly"]["time"][0])
        for b in blocks
        if isinstance(b, dict) and b.get("hourly", {}).get("time")
    ]
    if not firsts:
        return body, timedelta(0)
    offset = timedelta(seconds=blocks[0].get("utc_offset_seconds") or 0)
    start = (now + offset).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    shift = (start - timedelta(days=1)) - min(firsts)
    for b in blocks:
        times = b.get("hourly", {}).get("time") or []
        b["hourly"]["time"] = [
            (datetime.fromisoformat(t) + shift).strftime("%Y-%m-%dT%H:%M") for t in times
        ]
    return json.dumps(doc, ensure_ascii=False).encode(), shift


def _iso(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode().replace("Z", "+00:00"))


def _xml(body: bytes, now: datetime) -> tuple[bytes, timedelta]:
    found = [(m.group(2), _iso(m.group(3))) for m in _XML_TIME.finditer(body)]
    stamps = [t for tag, t in found if tag in (b"sent", b"updated")] or [t for _, t in found]
    if not stamps:
        return body, timedelta(0)
    shift = now - max(t if t.tzinfo else t.replace(tzinfo=UTC) for t in stamps)
    shift = timedelta(seconds=round(shift.total_seconds()))

    def repl(m: re.Match[bytes]) -> bytes:
        raw = m.group(3).decode()
        when = _iso(m.group(3)) + shift
        text = when.isoformat(timespec="seconds")
        if raw.endswith("-00:00"):  # CAP's recommended spelling of UTC
            text = text.replace("+00:00", "-00:00")
        elif raw.endswith("Z"):
            text = text.replace("+00:00", "Z")
        return m.group(1) + text.encode() + m.group(4)

    return _XML_TIME.sub(repl, body), shift


def _rss(body: bytes, now: datetime) -> tuple[bytes, timedelta]:
    items = re.findall(rb"<item>.*?</item>", body, re.S)
    stamps = [
        email.utils.parsedate_to_datetime(m.group(3).decode().strip())
        for item in items
        for m in _RSS_TIME.finditer(item)
        if m.group(2) == b"pubDate"
    ]
    if not stamps:
        return body, timedelta(0)
    shift = now - max(stamps)
    shift = timedelta(seconds=round(shift.total_seconds()))

    def repl(m: re.Match[bytes]) -> bytes:
        when = email.utils.parsedate_to_datetime(m.group(3).decode().strip()) + shift
        return m.group(1) + email.utils.format_datetime(when, usegmt=True).encode() + m.group(4)

    return _RSS_TIME.sub(repl, body), shift


_SHIFTERS: dict[str, Callable[[bytes, datetime], tuple[bytes, timedelta]]] = {
    "usgs": _usgs,
    "cenc": _cenc,
    "open-meteo": _openmeteo,
    "cap": _xml,
    "atom": _xml,
    "gdacs": _rss,
}


class ReplayServer:
    """A loopback HTTP server for a folder of recorded payloads."""

    def __init__(
        self, folder: Path, *, host: str = "127.0.0.1", port: int = 0, now: datetime | None = None
    ) -> None:
        now = now or datetime.now(UTC)
        self.files: dict[str, Replayed] = {}
        self.skipped: dict[str, str] = {}
        for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
            raw = path.read_bytes()
            try:
                body, shift, kind = shift_payload(raw, now)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                # served as recorded (error replies are worth replaying too)
                self.skipped[path.name] = str(exc)
                body, shift, kind = raw, timedelta(0), "other"
            self.files[path.name] = Replayed(path.name, kind, body, shift)
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                name = self.path.split("?", 1)[0].lstrip("/")
                item = files.get(name)
                if item is None:
                    self.send_error(404, "no such recorded payload")
                    return
                if self.headers.get("If-None-Match") == item.etag:
                    self.send_response(304)
                    self.send_header("ETag", item.etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", _CONTENT_TYPES[item.kind])
                self.send_header("Content-Length", str(len(item.body)))
                self.send_header("ETag", item.etag)
                self.end_headers()
                self.wfile.write(item.body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> ReplayServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.5)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


_CONTENT_TYPES = {
    "usgs": "application/geo+json",
    "cenc": "application/json; charset=utf-8",
    "open-meteo": "application/json",
    "cap": "application/cap+xml",
    "atom": "application/atom+xml",
    "gdacs": "application/rss+xml",
    "other": "application/octet-stream",
}
