"""Airflow plugin: the alert pipeline's pages and operator API inside the Airflow api-server.

Two FastAPI apps:

* ``/alerts-ops`` (``app``): every route requires a logged-in Airflow user (a
  plugin app is public unless it says otherwise); the UI's JWT cookie
  authenticates the page when it is shown in the UI's iframe, a
  ``Authorization: Bearer`` token authenticates scripts. It serves the duty
  officer's page (预警值班 Duty desk, ``/``), the outbox view (预警发件箱) and the
  JSON operator API: the overview, a region's alerts, subscribers (list, add,
  deactivate or delete, CSV import and export), the delivery ledger (rows and
  counts), resends, and the duty desk's actions, which trigger Airflow DAG runs
  (``resend_alert``, ``cancel_alert``, ``exercise_message``) so each is audited
  by Airflow and by the alert store.

  Reading is open to every logged-in user (the ``viewer`` role included).
  Acting (every route that changes something) needs the auth manager's
  permission to trigger runs of the DAG concerned (``is_authorized_dag``,
  method POST, entity RUN; the simple auth manager's ``user``, ``op`` and
  ``admin`` roles); it is refused with 403 otherwise. Acting is also guarded
  against cross-site requests: a request whose ``Origin`` (or ``Referer``)
  names another host is refused, and a request authenticated by the UI's
  session cookie must carry the header ``X-Alerts-CSRF`` (an HMAC of the user's
  id under the server's secret, embedded in the page). A request with an
  explicit ``Authorization: Bearer`` token is not a cross-site risk (browsers do
  not add that header on their own) and needs no CSRF header.
* ``/alerts-public`` (``public``): no login. The published warnings (Atom
  index, CAP documents), read-only, and the WeChat Official Account server
  push (``/wechat/events``), which WeChat's servers call: they cannot log in to
  Airflow, so the request's WeChat signature is its authentication.

Routes stay thin: the logic lives in ``alerts`` (store, subscribers, opsview,
mapsvg, wechat_events); Airflow is imported here only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import jinja2
from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.core_api.security import GetUserDep, get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from markupsafe import Markup
from pydantic import BaseModel, Field
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

# -- who may act, and cross-site request forgery ---------------------------------------

CSRF_HEADER = "X-Alerts-CSRF"
RESEND_DAG = "resend_alert"
CANCEL_DAG = "cancel_alert"
EXERCISE_DAG = "exercise_message"
APPROVAL_DAG = "publish_alerts"
# Subscribers decide who publish_alerts delivers to: editing them takes the right to run it.
SUBSCRIBERS_DAG = APPROVAL_DAG
ACTION_DAGS = (RESEND_DAG, CANCEL_DAG, EXERCISE_DAG)

NOT_ALLOWED = (
    "无权操作：需要触发 {dag_id} 运行的权限（如 op、admin 角色）/ "
    "not allowed: acting needs permission to trigger runs of {dag_id} (e.g. role op or admin)"
)
BAD_CSRF = (
    f"缺少或错误的 {CSRF_HEADER} 令牌，请刷新页面后重试 / "
    f"missing or wrong {CSRF_HEADER} header: reload the page and try again"
)
CROSS_SITE = "拒绝跨站请求 / cross-site request refused: {source} is not this server"
NO_SECRET = (
    "服务器未配置密钥（[api_auth] jwt_secret 或 [api] secret_key）/ "
    "no server secret configured ([api_auth] jwt_secret or [api] secret_key)"
)


def _auth_manager() -> Any:
    """The api-server's auth manager (created on first use when the app runs elsewhere: tests)."""
    from airflow.api_fastapi.app import create_auth_manager, get_auth_manager

    try:
        return get_auth_manager()
    except RuntimeError:  # not initialised: the same class, the same rules
        return create_auth_manager()


def may_run(user: BaseUser, dag_id: str, method: Literal["GET", "POST"] = "POST") -> bool:
    """Whether the auth manager lets ``user`` trigger (POST) or read (GET) runs of ``dag_id``."""
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )
    from airflow.configuration import conf

    team = None
    if conf.getboolean("core", "multi_team", fallback=False):
        from airflow.models.dag import DagModel

        team = DagModel.get_team_name(dag_id)
    return bool(
        _auth_manager().is_authorized_dag(
            method=method,
            access_entity=DagAccessEntity.RUN,
            details=DagDetails(id=dag_id, team_name=team),
            user=user,
        )
    )


def _server_secret() -> bytes:
    from airflow.configuration import conf

    for section, key in (("api_auth", "jwt_secret"), ("api", "secret_key")):
        value = conf.get(section, key, fallback="") or ""
        if value:
            return value.encode()
    raise HTTPException(503, NO_SECRET)


def csrf_token(user: BaseUser) -> str:
    """The user's CSRF token: an HMAC-SHA256 of the user's id under the server's secret.

    The same on every api-server process that shares the secret (as they must),
    stable across the user's sessions, and unguessable without the secret.
    """
    message = f"alerts-ops-csrf\x00{user.get_id()}".encode()
    return hmac.new(_server_secret(), message, hashlib.sha256).hexdigest()


def _own_hosts(request: Request) -> set[str]:
    """This server's host names as a browser may see them (Host, a proxy's, [api] base_url)."""
    from airflow.configuration import conf

    hosts = {request.headers.get("host", "")}
    forwarded = request.headers.get("x-forwarded-host", "")
    hosts.add(forwarded.split(",")[0].strip())
    base = conf.get("api", "base_url", fallback="") or ""
    hosts.add(urlsplit(base).netloc)
    return {h.lower() for h in hosts if h}


def check_same_origin(request: Request) -> None:
    """403 when the request's Origin (or, without one, its Referer) names another host."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return  # not sent by a browser's cross-site form or script (those send Origin)
    if source == "null" or urlsplit(source).netloc.lower() not in _own_hosts(request):
        raise HTTPException(403, CROSS_SITE.format(source=source[:200]))


def check_csrf(request: Request, user: BaseUser) -> None:
    """403 unless a cookie-authenticated request carries the user's CSRF token.

    Only the session cookie is sent by a browser on its own; an explicit
    ``Authorization: Bearer`` header is the identity then (``get_user`` prefers
    it) and cannot be forged cross-site.
    """
    bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
    if bearer or COOKIE_NAME_JWT_TOKEN not in request.cookies:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent, csrf_token(user)):
        raise HTTPException(403, BAD_CSRF)


def acting(dag_id: str) -> Any:
    """Dependency of a state-changing route: same origin, CSRF token, permission for ``dag_id``."""

    def check(request: Request, user: GetUserDep) -> BaseUser:
        check_same_origin(request)
        check_csrf(request, user)
        if not may_run(user, dag_id):
            raise HTTPException(403, NOT_ALLOWED.format(dag_id=dag_id))
        return user

    return Depends(check)


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

    with _opened() as (_, store):
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
    from alerts.model import utc_iso

    return utc_iso(pd.Timestamp(value).to_pydatetime())


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


@app.post("/api/subscribers", status_code=201, dependencies=[acting(SUBSCRIBERS_DAG)])
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


@app.delete("/api/subscribers/{channel}/{address:path}", dependencies=[acting(SUBSCRIBERS_DAG)])
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


@app.post("/api/subscribers/import", dependencies=[acting(SUBSCRIBERS_DAG)])
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
    from alerts.delivery import delivery_record

    return [delivery_record(d) for d in rows]


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
def resend_publication(
    identifier: str, body: ResendIn, user: Annotated[BaseUser, acting(RESEND_DAG)]
) -> dict[str, Any]:
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


# -- the duty desk: overview, regions, actions as DAG runs ----------------------------------

ADCODE = re.compile(r"^(CN|[0-9]{2,12})$")


def _now() -> datetime:
    return datetime.now(UTC)


@app.get("/api/overview")
def overview_json() -> dict[str, Any]:
    """What the duty desk shows: active alerts, the national banner, map levels, approvals,
    feed health and counts (``alerts.opsview.overview``)."""
    from alerts.opsview import overview

    with _opened() as (settings, store):
        return overview(store, settings, now=_now(), regions=_regions(settings))


@app.get("/api/regions/{adcode}")
def region_json(
    adcode: Annotated[str, Path(description="a region code: 6-digit adcode, a prefix, or CN")],
) -> list[dict[str, Any]]:
    """The active alerts that cover one region (what a click on the map shows), each with
    its response procedure."""
    from alerts.opsview import region_alerts
    from alerts.responders import procedures_or_packaged

    if not ADCODE.match(adcode):
        raise HTTPException(422, f"地区代码无效 / not a region code: {adcode[:40]!r}")
    with _opened() as (settings, store):
        return region_alerts(
            store,
            adcode,
            regions=_regions(settings),
            procedures=procedures_or_packaged(settings.responders_file),
        )


def _regions(settings: Settings) -> Any:
    """The configured regions table (the packaged one by default), as the overview uses."""
    from alerts.regions import load_regions

    return load_regions(str(settings.regions_file) if settings.regions_file else None)


def _ui_root(request: Request) -> str:
    """The Airflow UI's root path as the browser sees it (this app is mounted under it)."""
    return str(request.scope.get("root_path", "")).removesuffix(URL_PREFIX)


def _run_status(dag_id: str, run_id: str, *, ui_root: str = "") -> dict[str, Any] | None:
    """A DAG run's state, times and its tasks' states, from Airflow's metadata database."""
    from urllib.parse import quote

    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def when(value: datetime | None) -> str | None:
        return _iso(value) if value is not None else None

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            return None
        tis = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(TaskInstance.task_id, TaskInstance.map_index)
        ).all()
        paused = session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == dag_id))
        state = str(run.state.value if hasattr(run.state, "value") else run.state)
        return {
            "dag_id": dag_id,
            "run_id": run_id,
            "state": state,
            "done": state in ("success", "failed"),
            "paused": bool(paused),
            "triggered_by_user": run.triggering_user_name,
            "queued_at": when(run.queued_at),
            "start_date": when(run.start_date),
            "end_date": when(run.end_date),
            "tasks": [
                {
                    "task_id": ti.task_id,
                    "map_index": ti.map_index,
                    "state": str(ti.state.value if hasattr(ti.state, "value") else ti.state)
                    if ti.state is not None
                    else None,
                    "try_number": ti.try_number,
                    "start_date": when(ti.start_date),
                    "end_date": when(ti.end_date),
                }
                for ti in tis
            ],
            "url": f"{ui_root}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}",
        }


def _trigger(request: Request, user: BaseUser, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
    """Trigger ``dag_id`` with ``conf`` as ``user`` (Airflow records who); the new run's status."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound
    from airflow.utils.types import DagRunTriggeredByType

    by = (
        DagRunTriggeredByType.UI
        if request.headers.get("referer")
        else DagRunTriggeredByType.REST_API
    )
    try:
        run = trigger_dag(dag_id, triggered_by=by, triggering_user_name=user.get_name(), conf=conf)
    except DagNotFound:
        raise HTTPException(
            503, f"DAG {dag_id} 尚未加载（dag-processor）/ DAG {dag_id} is not loaded yet"
        ) from None
    except ValueError as exc:  # the DAG's Params refused the form (ParamValidationError)
        raise HTTPException(422, f"参数无效 / invalid parameters: {exc}") from None
    if run is None:
        raise HTTPException(500, f"未能创建运行 / no run was created for {dag_id}")
    log.info("%s triggered %s run %s: %s", user.get_name(), dag_id, run.run_id, conf)
    status = _run_status(dag_id, run.run_id, ui_root=_ui_root(request))
    return status or {"dag_id": dag_id, "run_id": run.run_id}


def _reason(text: str) -> str:
    if not text.strip():
        raise HTTPException(422, "请填写理由 / a reason is required")
    return text.strip()


class ResendAction(BaseModel):
    identifier: str = Field(min_length=1, max_length=300)
    mode: Literal["all", "failed", "one"]
    reason: str = Field(max_length=500)
    channel: str | None = None
    recipient: str | None = None


class CancelAction(BaseModel):
    alert_id: str = Field(min_length=1, max_length=300)
    reason: str = Field(max_length=500)


class ExerciseAction(BaseModel):
    text: str = Field(min_length=1, max_length=500)
    reason: str = Field(max_length=500)


@app.post("/api/actions/resend", status_code=202)
def resend_action(
    request: Request, body: ResendAction, user: Annotated[BaseUser, acting(RESEND_DAG)]
) -> dict[str, Any]:
    """Trigger ``resend_alert`` for a publication (all, failed, or one recipient)."""
    reason = _reason(body.reason)
    if body.mode == "one" and not (body.channel and body.recipient):
        raise HTTPException(
            422, "补发单个接收方须填渠道和接收方 / mode one needs channel and recipient"
        )
    with _opened() as (_, store):
        _publication_id(store, body.identifier.strip())
    conf = {
        "identifier": body.identifier.strip(),
        "mode": body.mode,
        "channel": (body.channel or "").strip() if body.mode == "one" else "",
        "recipient": (body.recipient or "").strip() if body.mode == "one" else "",
        "reason": reason,
    }
    return _trigger(request, user, RESEND_DAG, conf)


@app.post("/api/actions/cancel", status_code=202)
def cancel_action(
    request: Request, body: CancelAction, user: Annotated[BaseUser, acting(CANCEL_DAG)]
) -> dict[str, Any]:
    """Trigger ``cancel_alert`` for an active alert (解除)."""
    reason = _reason(body.reason)
    alert_id = body.alert_id.strip()
    with _opened() as (_, store):
        if store.active_alert(alert_id) is None:
            raise HTTPException(404, f"无此有效预警 / no active alert {alert_id!r}")
    return _trigger(request, user, CANCEL_DAG, {"alert_id": alert_id, "reason": reason})


@app.post("/api/actions/exercise", status_code=202)
def exercise_action(
    request: Request, body: ExerciseAction, user: Annotated[BaseUser, acting(EXERCISE_DAG)]
) -> dict[str, Any]:
    """Trigger ``exercise_message``: an 演练 / exercise message to the duty groups."""
    reason = _reason(body.reason)
    if not body.text.strip():
        raise HTTPException(422, "请填写演练内容 / the exercise text is empty")
    return _trigger(request, user, EXERCISE_DAG, {"text": body.text.strip(), "reason": reason})


@app.get("/api/runs/{dag_id}/{run_id}")
def run_progress(request: Request, dag_id: str, run_id: str, user: GetUserDep) -> dict[str, Any]:
    """A duty-desk action's run: state, start and end, and its tasks' states."""
    if dag_id not in ACTION_DAGS:
        raise HTTPException(404, f"不是值班操作的 DAG / not an action DAG: {dag_id[:80]!r}")
    if not may_run(user, dag_id, "GET"):
        raise HTTPException(403, f"无权查看 / not allowed to read runs of {dag_id}")
    status = _run_status(dag_id, run_id, ui_root=_ui_root(request))
    if status is None:
        raise HTTPException(404, f"无此运行 / no run {run_id[:120]!r} of {dag_id}")
    return status


# -- the duty desk page ------------------------------------------------------------------------

_DESK_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def _local_time(value: str | None, tz: str = "Asia/Shanghai") -> str:
    """``2026-11-29T03:00:00Z`` as ``11-29 11:00`` in the configured time zone ('—' for None)."""
    from zoneinfo import ZoneInfo

    if not value:
        return "—"
    when = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(ZoneInfo(tz))
    return when.strftime("%m-%d %H:%M")


def _ink(level: int) -> str:
    """Text colour readable on a level's fill (dark on yellow, orange and no level)."""
    return "#1a202c" if level in (0, 2, 3) else "#ffffff"


_DESK_ENV.filters["local"] = _local_time
_DESK_ENV.filters["ink"] = _ink

_DESK = _DESK_ENV.from_string(
    """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="alerts-csrf" content="{{ csrf }}">
<meta name="alerts-base" content="{{ base }}">
<title>预警值班 Duty desk</title>
<style>
 body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:1rem 1.5rem;
  color:#1a202c;background:#fff}
 h1{margin:.2rem 0} h2{margin:1.6rem 0 .5rem;font-size:1.15rem;border-bottom:2px solid #e2e8f0}
 .en{color:#4a5568;font-weight:normal;font-size:.85em} .muted{color:#718096;font-size:.85rem}
 table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #e2e8f0;padding:.35rem .4rem;
  text-align:left;vertical-align:top;font-size:.9rem} th{background:#f7fafc}
 .chip{display:inline-block;border-radius:.25rem;padding:.05rem .45rem;font-size:.85rem;
  white-space:nowrap;border:1px solid #0002}
 .counts{display:flex;flex-wrap:wrap;gap:.5rem;margin:.6rem 0}
 .count{border:1px solid #e2e8f0;border-radius:.4rem;padding:.3rem .7rem;min-width:6.5rem}
 .count b{display:block;font-size:1.4rem} .count.bad{border-color:#d62828;background:#fff5f5}
 .banner{padding:.7rem 1rem;border-radius:.4rem;font-size:1.1rem;margin:.5rem 0}
 .banner.none{background:#f0fff4;border:1px solid #9ae6b4}
 .layout{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
 .mapbox{flex:3 1 520px;min-width:300px} .mapbox svg{max-width:100%;height:auto}
 .mapbox path.region{cursor:pointer} .mapbox path.region:hover,.mapbox path.region:focus{
  stroke:#000;stroke-width:20;outline:none} .mapbox path.region.selected{stroke:#000;stroke-width:28}
 .panel{flex:1 1 260px;border:1px solid #e2e8f0;border-radius:.4rem;padding:.6rem;min-height:8rem}
 details summary{cursor:pointer} .err{color:#9b2c2c} .ok{color:#276749}
 .stale{background:#fff5f5} form.action{border:1px solid #e2e8f0;border-radius:.4rem;padding:.7rem;
  margin:.5rem 0;flex:1 1 300px} form.action label{display:block;margin:.3rem 0 .1rem}
 form.action input,form.action select,form.action textarea{width:100%;box-sizing:border-box;
  padding:.3rem;font:inherit} button{font:inherit;padding:.3rem .8rem;cursor:pointer}
 .result{margin-top:.5rem;font-size:.9rem;white-space:pre-wrap}
 .readonly{background:#fffaf0;border:1px solid #f6ad55;padding:.4rem .7rem;border-radius:.4rem}
 tr.procedure>td{background:#f7fafc;border-bottom:2px solid #e2e8f0}
 .procedure table.tasks td,.procedure table.tasks th{font-size:.85rem}
 a{color:#2b6cb0}
</style></head><body>
<header>
<h1>预警值班 <span class="en">Duty desk</span></h1>
<div class="muted">更新于 Updated {{ ov.generated_at|local(tz) }}（{{ tz }}）·
 值班员 Officer: <b>{{ user }}</b> ·
 <a href="{{ base }}/outbox">预警发件箱 Outbox</a> ·
 <a href="{{ base }}/api/overview">JSON</a> ·
 <a href="" onclick="location.reload();return false">刷新 Refresh</a></div>
{% if not may_act %}<p class="readonly">您的角色只能查看：操作按钮会被服务器拒绝（403）。
<span class="en">Your role may read only: the server refuses actions (403).</span></p>{% endif %}
<div class="counts">
{% set c = ov.counts %}
<div class="count"><b>{{ c.active_alerts }}</b>有效预警 <span class="en">active alerts</span></div>
<div class="count"><b>{{ c.publications }}</b>发布 <span class="en">publications</span></div>
<div class="count{% if c.pending_approvals %} bad{% endif %}"><b>{{ c.pending_approvals }}</b>待审批
 <span class="en">awaiting approval</span></div>
<div class="count{% if c.dead_letters %} bad{% endif %}"><b>{{ c.dead_letters }}</b>死信
 <span class="en">dead letters</span></div>
<div class="count{% if c.unknown %} bad{% endif %}"><b>{{ c.unknown }}</b>状态未知
 <span class="en">unknown</span></div>
<div class="count{% if c.stale_feeds %} bad{% endif %}"><b>{{ c.stale_feeds }}</b>停更数据源
 <span class="en">stale feeds</span></div>
<div class="count{% if c.failing_feeds %} bad{% endif %}"><b>{{ c.failing_feeds }}</b>失败数据源
 <span class="en">failing feeds</span></div>
<div class="count"><b>{{ c.quarantined_24h }}</b>24小时隔离记录 <span class="en">quarantined (24 h)</span></div>
</div>
</header>

{% set n = ov.national %}
{% if n.active %}
<div class="banner" style="background:{{ n.fill }};color:{{ n.level|ink }}">
 <b>全国{{ n.hazard_zh }}{{ n.level_zh }}预警</b> National {{ n.hazard_en }} warning, {{ n.level_en }}
 {% if n.cap_url %}· <a style="color:inherit" href="{{ n.cap_url }}">CAP</a>{% endif %}
 · <code>{{ n.identifier }}</code>
 {% if n.alerts|length > 1 %}<span>（共 {{ n.alerts|length }} 条全国预警 / {{ n.alerts|length }} national)</span>{% endif %}
</div>
{% else %}
<div class="banner none">当前无全国性预警 <span class="en">No national warning in force</span></div>
{% endif %}

<h2>预警地图 <span class="en">Map: highest level by prefecture (click a region)</span></h2>
<div class="layout">
<div class="mapbox" id="map">{{ svg }}
</div></div>
<div class="panel" id="region-panel" aria-live="polite"><b>地区预警 <span class="en">Region</span></b>
<p class="muted">点击地图上的地市查看其有效预警。<br>Click a prefecture to list its active warnings.</p></div>
</div>

<h2>有效预警 <span class="en">Active warnings ({{ ov.alerts|length }} publications)</span></h2>
{% if not ov.alerts %}<p>当前无有效预警 <span class="en">No active warning.</span></p>{% else %}
<table><thead><tr>
<th>灾种 / 等级<br><span class="en">Hazard / level</span></th>
<th>地区<br><span class="en">Regions (alert id, version)</span></th>
<th>发布<br><span class="en">Publication</span></th>
<th>审批<br><span class="en">Approval</span></th>
<th>投递<br><span class="en">Deliveries by channel</span></th>
<th>操作<br><span class="en">Act</span></th></tr></thead><tbody>
{% for a in ov.alerts %}
<tr><td>{{ a.hazard_zh }} <span class="en">{{ a.hazard_en }}</span><br>
 <span class="chip" style="background:{{ a.fill }};color:{{ a.level|ink }}">{{ a.level_zh }} {{ a.level_en }}</span>
 <div class="muted">{{ a.action_zh }} {{ a.action }}{% if a.status != "Actual" %} · {{ a.status }}{% endif %}</div></td>
<td>{% for r in a.regions %}<div>{{ r.name }} <span class="muted">{{ r.code }}</span><br>
 <code class="muted">{{ r.alert_id }}</code> <span class="muted">v{{ r.version }}</span>
 {% if r.pending_level %}<span class="muted">· 待降级 pending {{ r.pending_level }}</span>{% endif %}</div>{% endfor %}</td>
<td><span class="muted">事件 Event</span> {{ a.subject }}<br><code class="muted">{{ a.identifier }}</code><br>
 <span class="muted">发布 sent {{ a.sent|local(tz) }} · 截止 expires {{ a.expires|local(tz) }}
 · 第 {{ a.versions.current }} 版 v{{ a.versions.current }}</span>
 {% if a.cap_url %}<br><a href="{{ a.cap_url }}">CAP 1.2</a>{% endif %}</td>
<td>{{ a.approval.state_zh }} <span class="en">{{ a.approval.state }}</span>
 {% if a.approval.actor %}<div class="muted">{{ a.approval.actor }}</div>{% endif %}</td>
<td>{% set d = a.deliveries %}
 {% if not d.total %}<span class="muted">{% if d.fanned_out_at %}无接收方 none{% else %}尚未分发 not fanned out{% endif %}</span>
 {% else %}<table>{% for ch, states in d.by_channel.items() %}<tr><td>{{ ch }}</td><td>
 {% for st, k in states.items() if k %}<span class="{% if st in ('dead', 'unknown') %}err{% elif st == 'sent' %}ok{% endif %}">{{ st }} {{ k }}</span> {% endfor %}
 </td></tr>{% endfor %}</table>{% endif %}
 {% if d.dead_letters %}<details><summary class="err">死信 {{ d.dead_letters_total }} 条 / dead letters
 {% if d.truncated %}（仅列最新 {{ d.dead_letters|length }} / newest {{ d.dead_letters|length }}）{% endif %}</summary>
 <table><tr><th>渠道 Channel</th><th>接收方 Recipient</th><th>状态 State</th><th>供应商错误 Vendor error</th><th>次数 Tries</th></tr>
 {% for x in d.dead_letters %}<tr><td>{{ x.channel }}</td><td>{{ x.recipient }}</td>
 <td>{{ x.status }}{% if x.resent %}<br><span class="muted">已补发 resent: {{ x.resent }}</span>{% endif %}</td>
 <td><code>{{ x.error_code or "" }}</code> {{ x.error_text or "" }}</td><td>{{ x.attempts }}</td></tr>{% endfor %}
 </table></details>{% endif %}</td>
<td>{% if a.publication_id %}<button type="button" data-fill="resend" data-identifier="{{ a.identifier }}" data-mode="{{ 'failed' if d.dead_letters_total else 'all' }}">补发 Resend…</button><br>{% endif %}
 {% for r in a.regions %}<button type="button" data-fill="cancel" data-alert-id="{{ r.alert_id }}">解除 Cancel {{ r.name }}…</button>{% endfor %}</td>
</tr>
{% set p = a.procedure %}
<tr class="procedure" id="procedure-{{ loop.index }}"><td colspan="6">{% if not p %}<span class="muted">未配置响应措施，按应急预案执行 / no response procedure configured: follow the emergency plan</span>
{% else %}<details{% if loop.first %} open{% endif %}><summary><b>部门响应 <span class="en">Responders</span></b>：
 {{ p.response_zh }} <span class="en">{{ p.response_en }}</span> ·
 值班 {{ p.on_duty.zh }} <span class="en">On duty: {{ p.on_duty.en }}</span>
 {% if p.entry == "any" %}<span class="muted">（通用措施 general procedure）</span>{% endif %}</summary>
 <table class="tasks"><thead><tr><th>部门 <span class="en">Department</span></th><th>检查 <span class="en">Inspect</span></th>
 <th>关停 <span class="en">Close or stop</span></th><th>落实 <span class="en">Do</span></th></tr></thead><tbody>
 {% for d in p.departments %}<tr><td>{{ d.zh }}<br><span class="en">{{ d.en }}</span></td>
 {% for items in (d.inspect, d.close, d.do) %}<td>{% for t in items %}<div>{{ t.zh }}<br><span class="en">{{ t.en }}</span></div>{% endfor %}</td>{% endfor %}</tr>
 {% endfor %}</tbody></table>
 <div class="muted">{{ p.version }}</div></details>{% endif %}</td></tr>
{% endfor %}</tbody></table>{% endif %}

<h2>待审批 <span class="en">Awaiting approval ({{ ov.approvals|length }})</span></h2>
{% if not ov.approvals %}<p class="muted">无待审批预警 / nothing awaits approval.</p>{% else %}
<p>在 Airflow 界面的 <a href="{{ ui_root }}/required_actions" target="_top">待办 Required Actions</a>
（或 <a href="{{ ui_root }}/dags/{{ approval_dag }}/required_actions" target="_top">{{ approval_dag }} → Required Actions</a>）中批准或驳回。
<span class="en">Approve or reject in the Airflow UI's Required Actions.</span></p>
<table><thead><tr><th>预警 <span class="en">Warning</span></th><th>等级 <span class="en">Level</span></th>
<th>已等待 <span class="en">Waiting</span></th><th>超时 <span class="en">On timeout</span></th><th></th></tr></thead><tbody>
{% for p in ov.approvals %}<tr><td>{{ p.subject }}<br><code class="muted">{{ p.identifier }}</code>
 <div class="muted">{% for r in p.regions %}{{ r.name }}{% if not loop.last %}、{% endif %}{% endfor %}</div></td>
<td><span class="chip" style="background:{{ p.fill }};color:{{ p.level|ink }}">{{ p.level_zh }} {{ p.level_en }}</span></td>
<td>{{ p.waiting_min }} 分钟 min</td><td>{{ p.on_timeout_text }}</td>
<td>{% if p.asked %}<a href="{{ ui_root }}/dags/{{ p.dag }}/required_actions" target="_top">去审批 Approve…</a>
 {% else %}<span class="muted">等待下一次 {{ p.dag }} 运行询问 / the next {{ p.dag }} run asks</span>{% endif %}
 {% if p.cap_url %}· <a href="{{ p.cap_url }}">CAP</a>{% endif %}</td></tr>{% endfor %}
</tbody></table>{% endif %}

<h2>公众信息 <span class="en">Bulletins, last two days ({{ ov.bulletins|length }})</span></h2>
{% if not ov.bulletins %}<p class="muted">近两天无每日风险展望或专项宣传 / no outlook or campaign in the last two days.</p>{% else %}
<table id="bulletins"><thead><tr><th>公众信息 <span class="en">Bulletin</span></th><th>最高等级 <span class="en">Highest level</span></th>
<th>审核 <span class="en">Review</span></th><th>投递 <span class="en">Deliveries</span></th></tr></thead><tbody>
{% for b in ov.bulletins %}<tr><td><b>{{ b.kind_zh }}</b> <span class="en">{{ b.kind_en }}</span> · {{ b.sent|local }}<br>{{ b.subject }}<br><code class="muted">{{ b.identifier }}</code></td>
<td><span class="chip" style="background:{{ b.fill }};color:{{ b.level|ink }}">{{ b.level_zh }}</span></td>
<td>{{ b.approval.state_zh }}{% if b.approval.actor %} · {{ b.approval.actor }}{% endif %}
 {% if b.approval.state == "pending" %}· <a href="{{ ui_root }}/dags/{{ b.dag }}/required_actions" target="_top">去审核 Review…</a>{% endif %}</td>
<td>{% if b.fanned_out %}{{ b.deliveries.by_status.sent }}/{{ b.deliveries.total }} 已送达 sent{% if b.deliveries.dead_letters_total %} · <b>{{ b.deliveries.dead_letters_total }} 失败 failed</b>{% endif %}{% else %}<span class="muted">未投递 not sent</span>{% endif %}</td></tr>{% endfor %}
</tbody></table>{% endif %}

<h2>数据源健康 <span class="en">Feed health</span></h2>
{% if not ov.feeds %}<p class="muted">尚无抓取记录 / no fetch recorded yet.</p>{% else %}
<table><thead><tr><th>数据源 <span class="en">Feed</span></th><th>最近成功 <span class="en">Last success</span></th>
<th>状态 <span class="en">State</span></th><th>连续失败 <span class="en">Failures</span></th>
<th>最近错误 <span class="en">Last error</span></th><th>隔离 <span class="en">Quarantined 24 h / all</span></th></tr></thead><tbody>
{% for f in ov.feeds %}<tr{% if f.stale %} class="stale"{% endif %}><td>{{ f.feed }}<div class="muted">{{ f.source }} · {{ f.kind }}</div></td>
<td>{{ f.last_success_at|local(tz) }}{% if f.age_s is not none %}<div class="muted">{{ (f.age_s / 60)|round(1) }} 分钟前 min ago</div>{% endif %}</td>
<td>{% if f.stale %}<b class="err">停更 STALE</b>{% if f.limit_s %}<div class="muted">限 limit {{ (f.limit_s / 60)|round(1) }} min</div>{% endif %}
 {% else %}<span class="ok">正常 OK</span>{% endif %}</td>
<td>{% if f.consecutive_failures %}<span class="err">{{ f.consecutive_failures }}</span>{% else %}0{% endif %}</td>
<td>{% if f.last_error %}<span class="muted">{{ f.last_failure_at|local(tz) }}</span> {{ f.last_error }}{% endif %}</td>
<td>{{ f.quarantined.last_24h }} / {{ f.quarantined.total }}</td></tr>{% endfor %}
</tbody></table>{% endif %}

<h2>操作 <span class="en">Actions (each is an audited Airflow DAG run)</span></h2>
<div class="layout">
<form class="action" id="form-resend" data-action="/api/actions/resend">
<b>补发 <span class="en">Resend ({{ dags.resend }})</span></b>
<label>发布标识 <span class="en">Publication</span></label>
<select name="identifier" required>{% for a in ov.alerts if a.publication_id %}
<option value="{{ a.identifier }}">{{ a.subject }} — {{ a.identifier }}</option>{% endfor %}</select>
<label>补发对象 <span class="en">Who</span></label>
<select name="mode"><option value="failed">失败的 failed (dead, unknown)</option>
<option value="all">全部 all</option><option value="one">单个接收方 one recipient</option></select>
<label>渠道 <span class="en">Channel (one)</span></label><input name="channel">
<label>接收方 <span class="en">Recipient (one)</span></label><input name="recipient">
<label>理由 <span class="en">Reason</span></label><input name="reason" required maxlength="500">
<p><button type="submit">补发 Resend</button></p><div class="result"></div></form>

<form class="action" id="form-cancel" data-action="/api/actions/cancel">
<b>解除 <span class="en">Cancel ({{ dags.cancel }})</span></b>
<label>预警 <span class="en">Alert</span></label>
<select name="alert_id" required>{% for a in ov.alerts %}{% for r in a.regions %}
<option value="{{ r.alert_id }}">{{ a.hazard_zh }}{{ a.level_zh }} {{ r.name }} — {{ r.alert_id }}</option>{% endfor %}{% endfor %}</select>
<label>理由 <span class="en">Reason</span></label><input name="reason" required maxlength="500">
<p class="muted">解除会向收到过该预警的所有人发送解除通知。A cancellation goes to everyone who got the warning.</p>
<p><button type="submit">解除 Cancel</button></p><div class="result"></div></form>

<form class="action" id="form-exercise" data-action="/api/actions/exercise">
<b>演练消息 <span class="en">Exercise message ({{ dags.exercise }})</span></b>
<label>内容 <span class="en">Text</span></label>
<textarea name="text" rows="3" required maxlength="500">值班通知链路演练，请回复“收到”。Duty notice drill: please reply “received”.</textarea>
<label>理由 <span class="en">Reason</span></label><input name="reason" required maxlength="500">
<p class="muted">只发给内部渠道（值班群）的固定接收人，不发给公众，不是预警发布。
Internal channels' recipients only (the duty groups): not the public, not a publication.</p>
<p><button type="submit">发送演练 Send exercise</button></p><div class="result"></div></form>
</div>

<script>
"use strict";
(function () {
  var csrf = document.querySelector('meta[name="alerts-csrf"]').content;
  var base = document.querySelector('meta[name="alerts-base"]').content;
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function detail(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) {
      return body.detail.map(function (d) { return (d.loc || []).join(".") + ": " + d.msg; }).join("; ");
    }
    return "HTTP " + status;
  }
  // -- the map: click a prefecture, list its warnings
  var panel = document.getElementById("region-panel");
  var selected = null;
  function showRegion(path) {
    var code = path.getAttribute("data-adcode"), name = path.getAttribute("data-name");
    if (selected) selected.classList.remove("selected");
    selected = path; path.classList.add("selected");
    panel.replaceChildren(el("b", name + "（" + code + "）"), el("p", "加载中… loading…", "muted"));
    fetch(base + "/api/regions/" + encodeURIComponent(code), {credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (b) { return [r, b]; }); })
      .then(function (rb) {
        var r = rb[0], items = rb[1];
        panel.replaceChildren(el("b", name + "（" + code + "）"));
        if (!r.ok) { panel.appendChild(el("p", detail(items, r.status), "err")); return; }
        if (!items.length) { panel.appendChild(el("p", "该地区无有效预警 / no active warning here", "muted")); return; }
        var ul = el("ul");
        items.forEach(function (a) {
          var li = el("li");
          var chip = el("span", a.level_zh + " " + a.level_en, "chip");
          chip.style.background = a.fill;
          chip.style.color = (a.level === 2 || a.level === 3) ? "#1a202c" : "#ffffff";
          li.appendChild(chip);
          li.appendChild(el("span", " " + a.hazard_zh + " " + a.hazard_en + (a.national ? "（全国 national）" : "")));
          li.appendChild(el("div", "事件 Event: " + a.subject, "muted"));
          li.appendChild(el("code", a.alert_id + " v" + a.version, "muted"));
          if (a.procedure) {
            li.appendChild(el("div", "部门响应 Responders: " + a.procedure.response_zh + " " + a.procedure.response_en, "procedure"));
            li.appendChild(el("div", "值班 On duty: " + a.procedure.on_duty.zh + " / " + a.procedure.on_duty.en, "muted"));
          }
          if (a.cap_url) {
            var link = el("a", " CAP"); link.href = a.cap_url; li.appendChild(link);
          }
          ul.appendChild(li);
        });
        panel.appendChild(ul);
      })
      .catch(function (e) { panel.appendChild(el("p", String(e), "err")); });
  }
  var map = document.getElementById("map");
  map.querySelectorAll("path.region").forEach(function (p) {
    p.setAttribute("tabindex", "0"); p.setAttribute("role", "button");
  });
  map.addEventListener("click", function (ev) {
    var path = ev.target.closest && ev.target.closest("path.region");
    if (path) showRegion(path);
  });
  map.addEventListener("keydown", function (ev) {
    var path = ev.target.closest && ev.target.closest("path.region");
    if (path && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); showRegion(path); }
  });
  // -- row buttons fill the action forms
  document.querySelectorAll("button[data-fill]").forEach(function (b) {
    b.addEventListener("click", function () {
      var form = document.getElementById("form-" + b.getAttribute("data-fill"));
      if (b.dataset.identifier) form.elements.identifier.value = b.dataset.identifier;
      if (b.dataset.mode) form.elements.mode.value = b.dataset.mode;
      if (b.dataset.alertId) form.elements.alert_id.value = b.dataset.alertId;
      form.scrollIntoView({behavior: "smooth"}); form.elements.reason.focus();
    });
  });
  // -- actions: POST with the CSRF header, then follow the DAG run until it ends
  var sleep = function (ms) { return new Promise(function (ok) { setTimeout(ok, ms); }); };
  function showRun(box, run) {
    box.replaceChildren();
    var head = el("div");
    head.appendChild(el("b", run.dag_id + " · " + run.state));
    head.appendChild(el("span", run.done ? (run.state === "success" ? " ✓ 完成 done" : " ✗ 失败 failed — 见任务日志 see the task log") : " … 进行中 in progress",
      run.done ? (run.state === "success" ? "ok" : "err") : "muted"));
    box.appendChild(head);
    if (run.paused) box.appendChild(el("div", "该 DAG 已暂停：运行将排队直到在 Airflow 中取消暂停。The DAG is paused: the run waits until it is unpaused.", "err"));
    (run.tasks || []).forEach(function (t) {
      box.appendChild(el("div", "  " + t.task_id + (t.map_index >= 0 ? "[" + t.map_index + "]" : "") + ": " + (t.state || "scheduled") + (t.try_number > 1 ? " (try " + t.try_number + ")" : ""), "muted"));
    });
    if (run.url) {
      var a = el("a", "在 Airflow 中查看运行 / open the run in Airflow"); a.href = run.url; a.target = "_top";
      box.appendChild(a);
    }
  }
  async function follow(box, run) {
    var path = base + "/api/runs/" + encodeURIComponent(run.dag_id) + "/" + encodeURIComponent(run.run_id);
    for (var i = 0; i < 600 && !run.done; i++) {
      await sleep(i < 10 ? 1000 : 3000);
      var r = await fetch(path, {credentials: "same-origin"});
      if (!r.ok) { box.appendChild(el("div", detail(await r.json().catch(function () { return null; }), r.status), "err")); return; }
      run = await r.json();
      showRun(box, run);
    }
  }
  document.querySelectorAll("form.action").forEach(function (form) {
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      var box = form.querySelector(".result"), button = form.querySelector("button[type=submit]");
      var body = {};
      Array.prototype.forEach.call(form.elements, function (f) { if (f.name) body[f.name] = f.value; });
      box.replaceChildren(el("span", "提交中… submitting…", "muted"));
      button.disabled = true;
      try {
        var r = await fetch(base + form.getAttribute("data-action"), {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json", "X-Alerts-CSRF": csrf},
          body: JSON.stringify(body)
        });
        var answer = await r.json().catch(function () { return null; });
        if (!r.ok) { box.replaceChildren(el("span", (r.status === 403 ? "⛔ " : "") + detail(answer, r.status), "err")); return; }
        showRun(box, answer);
        follow(box, answer).catch(function (e) { box.appendChild(el("div", String(e), "err")); });
      } catch (e) {
        box.replaceChildren(el("span", String(e), "err"));
      } finally {
        button.disabled = false;
      }
    });
  });
})();
</script>
</body></html>"""  # noqa: E501 - markup, CSS and script read better unwrapped
)


@app.get("/", response_class=HTMLResponse)
def duty_desk(request: Request, user: GetUserDep) -> str:
    """The duty officer's page: counts, the national banner, the map, active warnings,
    approvals, feed health and the action forms (login required; acting needs op or admin)."""
    from alerts.mapsvg import map_svg
    from alerts.opsview import overview

    with _opened() as (settings, store):
        table = _regions(settings)
        data = overview(store, settings, now=_now(), regions=table)
    svg = map_svg(data["map_levels"], regions=table)
    try:
        token = csrf_token(user)
    except HTTPException:  # no server secret: the page still reads; actions are refused
        token = ""
    return _DESK.render(
        ov=data,
        svg=Markup(svg),  # built by alerts.mapsvg, which escapes every name it writes
        csrf=token,
        user=user.get_name(),
        may_act=any(may_run(user, dag) for dag in ACTION_DAGS),
        base=str(request.scope.get("root_path", "")),
        ui_root=_ui_root(request),
        tz=settings.timezone,
        approval_dag=APPROVAL_DAG,
        dags={"resend": RESEND_DAG, "cancel": CANCEL_DAG, "exercise": EXERCISE_DAG},
    )


# Published warnings are public by nature: this app is read-only and needs no login.
public = FastAPI(
    title="alerts public feed",
    description="Published warnings: an Atom index of active alerts, each CAP 1.2 document, "
    "and each published bulletin (daily outlook, campaign) as a web page",
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
        pub = rt.store.publication(identifier)
        if pub is None or pub.kind != "alert":  # bulletins are no CAP documents
            raise HTTPException(status_code=404, detail=f"no CAP document {identifier}")
        body = rt.cap_document(identifier)
    return Response(body, media_type="application/cap+xml")


@public.get("/bulletins/{identifier}", response_class=HTMLResponse)
def bulletin(identifier: str, lang: str = Query("zh-CN", max_length=16)) -> HTMLResponse:
    """A published bulletin (daily outlook, campaign send) as one web page, chart inline.

    Only what went out: a bulletin waiting for the duty officer, rejected, or
    not yet fanned out is not found (nothing unreviewed is ever public).
    """
    from alerts.bulletins import bulletin_page
    from alerts.pipeline import runtime

    with runtime() as rt:
        pub = rt.store.publication(identifier)
        if (
            pub is None
            or pub.kind == "alert"
            or pub.approval in ("pending", "rejected")
            or pub.fanned_out_at is None
        ):
            raise HTTPException(status_code=404, detail=f"no published bulletin {identifier}")
        page = bulletin_page(rt.renderer, pub, language=lang)
    return HTMLResponse(page, headers={"Content-Security-Policy": _BULLETIN_CSP})


# The bulletin page is our own HTML with its images inline: nothing else may load or run.
_BULLETIN_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'"


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
        },
        {
            "name": "预警值班 Duty desk",
            "href": f"{URL_PREFIX}/",
            "url_route": "alerts-duty",
            "destination": "nav",
        },
    ]
