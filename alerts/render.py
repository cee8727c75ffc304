"""Message rendering: one jinja2 environment, templates as package files.

Templates live in ``alerts/templates/<hazard>/<family>.<language>.j2``. A
missing variable is an error (StrictUndefined), never an empty string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from alerts.guidance import guidance
from alerts.model import Action, Hazard, Level
from alerts.store.models import Alert, AlertVersion, Publication

__all__ = ["Rendered", "Renderer", "render_publication"]


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class Renderer:
    def __init__(self, *, timezone: str, issuer_zh: str, details_url: str) -> None:
        self.tz = ZoneInfo(timezone)
        self.issuer_zh = issuer_zh
        self.details_url = details_url.rstrip("/") + "/"
        self.env = _environment()
        self.env.filters["local"] = self._local

    def render(
        self,
        *,
        alert_id: str,
        version: int,
        action: str,
        hazard: str,
        level: int,
        facts: dict[str, Any],
        sent: datetime,
        expires: datetime | None,
        family: str = "text",
        language: str = "zh-CN",
        regions: list[dict[str, Any]] | None = None,
        status: str = "Actual",
        identifier: str | None = None,
    ) -> Rendered:
        """Render one message for a channel family and language.

        ``regions`` lists every region the message covers (each with code,
        name, level and its own facts); by default the one region of ``facts``.
        A status other than Actual marks the message as an exercise (演练).
        """
        context = {
            "regions": regions
            or [{"code": None, "name": None, "level": Level(level), "facts": facts}],
            "exercise": status != "Actual",
            "status": status,
            "identifier": identifier,
            "alert_id": alert_id,
            "version": version,
            "action": Action(action),
            "hazard": Hazard(hazard),
            "level": Level(level),
            "facts": facts,
            "sent": sent,
            "expires": expires,
            "issuer": self.issuer_zh,
            "guidance": guidance(Hazard(hazard), Level(level), language),
            "details_url": f"{self.details_url}?alert={alert_id}",
        }
        template = self.env.select_template(
            [
                f"{hazard}/{family}.{language}.j2",
                f"{hazard}/{family}.zh-CN.j2",
                f"default/{family}.{language}.j2",
                f"default/{family}.zh-CN.j2",
            ]
        )
        module = template.make_module(context)
        subject = str(getattr(module, "subject", "")).strip()
        body = str(module).strip() + "\n"
        if status != "Actual":
            tag = "【演练】" if status == "Exercise" else "【测试】"
            subject, body = tag + subject, f"{tag}{body}"
        if not subject:
            raise ValueError(f"template {template.name} sets no subject")
        return Rendered(subject=subject, body=body)

    def _local(self, value: datetime | str, fmt: str = "%Y年%m月%d日%H时%M分") -> str:
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        return when.astimezone(self.tz).strftime(fmt)


def render_publication(
    renderer: Renderer,
    pub: Publication,
    members: Sequence[tuple[AlertVersion, Alert]],
    *,
    language: str = "zh-CN",
) -> Rendered:
    """A publication's message: every region it covers, the lead version's facts."""
    regions = [
        {"code": a.region_code, "name": a.region_name, "level": Level(v.level), "facts": v.facts}
        for v, a in members
    ]
    return renderer.render(
        alert_id=pub.lead_alert_id,
        version=pub.lead_version,
        action=pub.action,
        hazard=pub.hazard,
        level=pub.level,
        facts=members[0][0].facts,
        sent=pub.sent,
        expires=pub.expires,
        language=language,
        regions=regions,
        status=pub.status,
        identifier=pub.identifier,
    )


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("alerts", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
