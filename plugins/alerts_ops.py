"""Airflow plugin: the alert pipeline's pages and operator API inside the Airflow api-server.

Two FastAPI apps:

* ``/alerts-ops`` (``app``): every route requires a logged-in Airflow user (a
  plugin app is public unless it says otherwise); the UI's JWT cookie
  authenticates the page when it is shown in the UI's iframe, a
  ``Authorization: Bearer`` token authenticates scripts. It serves the outbox
  view (预警发件箱) and the JSON operator API: subscribers (list, add,
  deactivate or delete, CSV import and export), the delivery ledger (rows and
  counts) and audited resends of a publication. Any logged-in user may use
  every route, writes included: restricting writes to the ``op`` / ``admin``
  roles is a later change.
* ``/alerts-public`` (``public``): no login. The published warnings (Atom
  index, CAP documents), read-only, and the WeChat Official Account server
  push (``/wechat/events``), which WeChat's servers call: they cannot log in to
  Airflow, so the request's WeChat signature is its authentication.

Routes stay thin: the logic lives in ``alerts`` (store, subscribers,
wechat_events); Airflow is imported here only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import jinja2
from airflow.api_fastapi.core_api.security import GetUserDep, get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from alerts.config import Settings
    from alerts.store import Store

log = logging.getLogger(__name__)

URL_PREFIX = "/alerts-ops"
PUBLIC_PREFIX = "/alerts-public"

app = FastAPI(
    title="alerts operations",
    description="Early-warning alert pipeline: operator endpoints",
    dependencies=[Depends(get_user)],
)

_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>预警发件箱 Outbox</title>
<style>
 body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:1.5rem;color:#1a202c}
 table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #e2e8f0;
 padding:.5rem;text-align:left;vertical-align:top} pre{white-space:pre-wrap;margin:0;
 font-family:inherit} .muted{color:#718096;font-size:.85rem}
</style></head><body>
<h1>预警发件箱 <span class="muted">Outbox</span></h1>
<p class="muted">本地发件箱渠道已送达的消息，最新在前（共 {{ messages|length }} 条）。
Messages delivered to the local outbox channel, newest first.</p>
{% if not messages %}<p>暂无消息 / No messages yet.</p>{% else %}
<table><thead><tr><th>送达时间 (UTC)<br><span class="muted">Delivered</span></th>
<th>预警 / 版本<br><span class="muted">Alert / version</span></th>
<th>接收方<br><span class="muted">Recipient</span></th>
<th>内容<br><span class="muted">Message</span></th></tr></thead><tbody>
{% for m in messages %}<tr><td>{{ m.delivered_at }}</td>
<td>{{ m.alert_id }}<br><span class="muted">v{{ m.version }}</span></td>
<td>{{ m.channel }} → {{ m.recipient }}</td><td><pre>{{ m.body }}</pre></td></tr>
{% endfor %}</tbody></table>{% endif %}
</body></html>"""
)


def _outbox(limit: int) -> list[dict[str, Any]]:
    from alerts.channels.outbox import outbox_records
    from alerts.config import load_settings
    from alerts.store import Store

    with Store(load_settings().resolved_store_url) as store:
        return outbox_records(store, limit=limit)


@app.get("/api/outbox")
def outbox_json(limit: int = Query(200, ge=1, le=5000)) -> list[dict[str, Any]]:
    """Messages delivered to the outbox, newest first."""
    return _outbox(limit)


@app.get("/outbox", response_class=HTMLResponse)
def outbox_page(limit: int = Query(200, ge=1, le=5000)) -> str:
    return _PAGE.render(messages=_outbox(limit))


# -- operator API (JSON; login required by the app's dependency) -------------------

MAX_CSV_BYTES = 20 * 1024 * 1024


@contextmanager
def _opened() -> Iterator[tuple[Settings, Store]]:
    from alerts.config import load_settings
    from alerts.store import Store

    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)  # the default SQLite store lives there
    with Store(settings.resolved_store_url) as store:
        yield settings, store


def _channel_types(settings: Settings) -> dict[str, str]:
    return {c.name: c.type for c in settings.channels}


def _iso(value: Any) -> str | None:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    when = pd.Timestamp(value).to_pydatetime()
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat().replace("+00:00", "Z")


def _subscriber(row: dict[str, Any]) -> dict[str, Any]:
    from alerts.model import Level

    def text(value: Any) -> str | None:
        return None if value is None or value != value else str(value)  # NaN: None

    return {
        "id": int(row["id"]),
        "name": row["name"],
        "channel": row["channel"],
        "address": row["address"],
        "language": row["language"],
        "areas": list(row["areas"]),
        "hazards": list(row["hazards"]),
        "min_level": Level(int(row["min_level"])).colour,
        "quiet_start": text(row["quiet_start"]),
        "quiet_end": text(row["quiet_end"]),
        "active": bool(row["active"]),
        "source": row["source"],
        "consent_at": _iso(row["consent_at"]),
        "deactivated_reason": text(row["deactivated_reason"]),
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


@app.get("/api/subscribers")
def list_subscribers(
    channel: str | None = Query(None, description="only this channel"),
    active: bool | None = Query(None, description="true: active only; false: deactivated only"),
    limit: int = Query(1000, ge=1, le=100_000),
) -> list[dict[str, Any]]:
    """Subscribers in id order, with their areas, hazards, level and state."""
    with _opened() as (_, store):
        frame = store.subscribers_frame(active_only=active is True)
    if channel is not None:
        frame = frame[frame["channel"] == channel]
    if active is False:
        frame = frame[~frame["active"].astype(bool)]
    return [_subscriber(row) for row in frame.head(limit).to_dict("records")]


@app.post("/api/subscribers", status_code=201)
def add_subscriber(body: dict[str, Any]) -> dict[str, Any]:
    """Add one subscriber (an operator's entry): 422 with the reason when invalid,
    409 when the channel and address are already subscribed (import to update)."""
    from alerts.subscribers import validate

    with _opened() as (settings, store):
        try:
            sub = validate({**body, "source": "operator"}, _channel_types(settings))
        except ValueError as exc:
            raise HTTPException(422, f"订阅者无效 / invalid subscriber: {exc}") from None
        try:
            sid = store.add_subscriber(sub.model_dump())
        except ValueError as exc:
            raise HTTPException(409, f"订阅者已存在 / already subscribed: {exc}") from None
    return {"id": sid, "channel": sub.channel, "address": sub.address}


@app.delete("/api/subscribers/{channel}/{address:path}")
def remove_subscriber(
    channel: str,
    address: str,
    reason: str = Query("removed by operator", min_length=1, description="kept with the row"),
    purge: bool = Query(False, description="delete the row (erasure) instead of deactivating"),
) -> dict[str, Any]:
    """Deactivate a subscriber, keeping the row and the reason (``?purge=true``: delete it)."""
    with _opened() as (_, store):
        if purge:
            done = store.remove_subscriber(channel, address)
        else:
            done = store.deactivate_subscriber(channel, address, reason)
    if not done:
        raise HTTPException(404, f"无此订阅者 / no subscriber {address!r} on channel {channel!r}")
    return {"channel": channel, "address": address, "removed" if purge else "deactivated": True}


@app.post("/api/subscribers/import")
async def import_subscribers(request: Request) -> dict[str, Any]:
    """Upsert subscribers from CSV (the body, UTF-8, in the import format).

    Answers ``{imported, updated, failed, errors: [{line, reason}]}``: a bad row is
    left out whole and reported with its line number; the good rows are imported.
    """
    raw = await request.body()
    if len(raw) > MAX_CSV_BYTES:
        raise HTTPException(413, f"CSV 过大 / CSV larger than {MAX_CSV_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, f"CSV 须为 UTF-8 / CSV is not UTF-8: {exc}") from None
    return await run_in_threadpool(_import, text)


def _import(text: str) -> dict[str, Any]:
    from alerts.subscribers import import_csv

    with _opened() as (settings, store):
        try:
            result = import_csv(store, text, _channel_types(settings))
        except ValueError as exc:  # the header
            raise HTTPException(422, f"CSV 无效 / invalid CSV: {exc}") from None
    return result.summary()


@app.get("/api/subscribers/export")
def export_subscribers() -> Response:
    """The active subscribers as CSV, in the import format."""
    from alerts.subscribers import export_csv

    with _opened() as (_, store):
        text = export_csv(store.subscribers_frame(active_only=True))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


def _publication_id(store: Store, identifier: str) -> int:
    pub = store.publication(identifier)
    if pub is None:
        raise HTTPException(404, f"无此发布 / no publication {identifier!r}")
    return pub.id


@app.get("/api/deliveries")
def list_deliveries(
    status: Annotated[
        list[str] | None,
        Query(
            description="pending, sending, sent, retry, dead, unknown (repeat or comma-separate)"
        ),
    ] = None,
    identifier: str | None = Query(None, description="one publication (its CAP identifier)"),
    limit: int = Query(1000, ge=1, le=100_000),
) -> list[dict[str, Any]]:
    """Rows of the delivery ledger, newest first."""
    wanted = [s.strip() for item in status or [] for s in item.split(",") if s.strip()]
    with _opened() as (_, store):
        pub_id = _publication_id(store, identifier) if identifier else None
        rows = store.deliveries(
            wanted or None, publication_id=pub_id, limit=limit, newest_first=True
        )
    return [
        {
            "id": d.id,
            "key": d.key,
            "channel": d.channel,
            "recipient": d.recipient,
            "status": d.status,
            "attempts": d.attempts,
            "error_code": d.error_code,
            "error_text": d.error_text,
            "updated_at": _iso(d.updated_at),
        }
        for d in rows
    ]


@app.get("/api/deliveries/summary")
def delivery_summary(
    identifier: str | None = Query(None, description="one publication (its CAP identifier)"),
) -> dict[str, Any]:
    """Ledger rows counted by channel and status: ``{by_channel, by_status, total}``."""
    with _opened() as (_, store):
        pub_id = _publication_id(store, identifier) if identifier else None
        counts = store.delivery_counts(pub_id)
    by_channel: dict[str, dict[str, int]] = {}
    by_status: dict[str, int] = {}
    for (channel, status), n in sorted(counts.items()):
        by_channel.setdefault(channel, {})[status] = n
        by_status[status] = by_status.get(status, 0) + n
    return {"by_channel": by_channel, "by_status": by_status, "total": sum(counts.values())}


class ResendIn(BaseModel):
    mode: Literal["all", "failed", "one"]
    reason: str
    channel: str | None = None
    recipient: str | None = None


@app.post("/api/publications/{identifier}/resend")
def resend_publication(identifier: str, body: ResendIn, user: GetUserDep) -> dict[str, Any]:
    """Send a publication again (new ledger rows, sent by the next dispatch), audited with
    the logged-in user's name and the reason. ``all``: everyone it was addressed to;
    ``failed``: whose latest row is dead or unknown; ``one``: ``channel`` + ``recipient``."""
    with _opened() as (_, store):
        pub_id = _publication_id(store, identifier)
        try:
            count = store.resend(
                pub_id,
                mode=body.mode,
                channel=body.channel,
                recipient=body.recipient,
                actor=user.get_name(),
                reason=body.reason,
                now=datetime.now(UTC),
            )
        except ValueError as exc:
            raise HTTPException(422, f"无法重发 / cannot resend: {exc}") from None
    return {"identifier": identifier, "mode": body.mode, "resent": count}


# Published warnings are public by nature: this app is read-only and needs no login.
public = FastAPI(
    title="alerts public feed",
    description="Published warnings: an Atom index of active alerts and each CAP 1.2 document",
)


@public.get("/atom.xml")
def atom(request: Request, all: bool = Query(False)) -> Response:  # noqa: A002 - query name
    """Atom index of the publications of active alerts (``?all=true``: every publication)."""
    from alerts.atom import atom_index
    from alerts.pipeline import runtime

    with runtime() as rt:
        pubs = rt.store.publications(active=not all, limit=500)
        body = atom_index(
            pubs,
            base_url=str(request.base_url).rstrip("/") + PUBLIC_PREFIX,
            title=f"{rt.settings.issuer_zh} {rt.settings.cap.sender_name_en}",
            feed_id=f"urn:alerts:{rt.settings.cap.sender}",
        )
    return Response(body, media_type="application/atom+xml")


@public.get("/cap/{identifier}.xml")
def cap_document(identifier: str) -> Response:
    """One CAP 1.2 document by its identifier."""
    from alerts.pipeline import runtime

    with runtime() as rt:
        if rt.store.publication(identifier) is None:
            raise HTTPException(status_code=404, detail=f"no CAP document {identifier}")
        body = rt.cap_document(identifier)
    return Response(body, media_type="application/cap+xml")


# -- WeChat Official Account server push (消息推送): follows become subscribers ---------
# WeChat's servers cannot log in to Airflow: the signature in the query string,
# made with the token set in the account's server configuration, is the check.


def _wechat_check(signature: str, timestamp: str, nonce: str) -> Settings:
    """The settings when configured and the request is signed and fresh; else 503 / 403."""
    from alerts.config import ConfigError, load_settings
    from alerts.wechat_events import is_fresh, push_settings, verify_signature

    try:
        settings = load_settings()
        push = push_settings(settings)
    except ConfigError as exc:
        log.error("WeChat server push is not configured: %s", exc)
        raise HTTPException(503, f"未配置微信关注 / WeChat follows not configured: {exc}") from None
    if not verify_signature(push.token, timestamp, nonce, signature):
        raise HTTPException(403, "签名无效 / bad signature")
    if not is_fresh(timestamp, datetime.now(UTC)):
        raise HTTPException(403, "时间戳过期，请检查服务器时钟 / stale timestamp (check the clock)")
    return settings


@public.get("/wechat/events", response_class=PlainTextResponse)
def wechat_verify(
    signature: str = "", timestamp: str = "", nonce: str = "", echostr: str = ""
) -> PlainTextResponse:
    """URL verification (服务器配置 → 提交): echo ``echostr`` when the signature is right."""
    _wechat_check(signature, timestamp, nonce)
    return PlainTextResponse(echostr)


@public.post("/wechat/events", response_class=PlainTextResponse)
async def wechat_event(
    request: Request, signature: str = "", timestamp: str = "", nonce: str = ""
) -> PlainTextResponse:
    """A pushed event or message: a follow subscribes, an unfollow deactivates; ``success``."""
    from alerts.wechat_events import MAX_BODY_BYTES

    settings = await run_in_threadpool(_wechat_check, signature, timestamp, nonce)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, "消息过大 / body too large")
    outcome = await run_in_threadpool(_wechat_apply, settings, body)
    log.info("WeChat push: %s", outcome)
    return PlainTextResponse("success")


def _wechat_apply(settings: Settings, body: bytes) -> str:
    from alerts.config import ConfigError
    from alerts.store import Store
    from alerts.wechat_events import MalformedEvent, handle_event

    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        with Store(settings.resolved_store_url) as store:
            return handle_event(store, settings, body, datetime.now(UTC))
    except MalformedEvent as exc:
        log.warning("WeChat push refused: %s", exc)
        raise HTTPException(400, f"消息无效 / malformed message: {exc}") from None
    except ConfigError as exc:
        raise HTTPException(503, f"未配置微信关注 / WeChat follows not configured: {exc}") from None


class AlertsOpsPlugin(AirflowPlugin):
    name = "alerts_ops"
    fastapi_apps = [
        {"app": app, "url_prefix": URL_PREFIX, "name": "alerts operations"},
        {"app": public, "url_prefix": PUBLIC_PREFIX, "name": "alerts public feed"},
    ]
    external_views = [
        {
            "name": "预警发件箱 Outbox",
            "href": f"{URL_PREFIX}/outbox",
            "url_route": "alerts-outbox",
            "destination": "nav",
            "category": "browse",
        }
    ]
