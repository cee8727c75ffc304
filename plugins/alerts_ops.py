"""Airflow plugin: the alert pipeline's pages inside the Airflow UI.

For now one read-only view, the outbox (预警发件箱): what the local outbox
channel delivered, newest first. Every route requires a logged-in Airflow user
(a plugin app is public unless it says otherwise); the UI's JWT cookie
authenticates the page when it is shown in the UI's iframe.
"""

from __future__ import annotations

from typing import Any

import jinja2
from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

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
