"""The daily outlook bulletin: the 72-hour risk outlook rendered for every channel family.

:func:`render_outlook` takes an outlook as JSON (the contract of
:meth:`alerts.outlook.Outlook.to_json`, as stored with the bulletin's
publication) and renders it with the packaged templates in
``alerts/templates/outlook/`` (an operator's ``templates_dir`` overrides any
of them, as for warnings):

- ``short`` (SMS, Weibo): one sentence naming the most severe risks, and the link;
- ``markdown`` (WeCom, DingTalk, Feishu) and ``text``: a compact list;
- ``long`` (e-mail, the WeChat Official Account article): a subject, a plain-text
  body (the text/plain part and the archive) and a complete HTML document
  (``bulletin.<lang>.html.j2``, autoescaped, inline styles only since WeChat
  drops ``<style>``, no scripts or external resources) that shows the 72-hour
  chart (:mod:`alerts.chart`) as ``cid:outlook-72h``; the PNG travels in
  :attr:`Rendered.images`.

The templates get a digest of the outlook (see :func:`outlook_view` and
docs/messages.md "Bulletin rendering") besides the raw ``outlook`` dict.
"""

from __future__ import annotations

import logging
import re
from html import escape as html_escape
from typing import Any
from urllib.parse import quote

from alerts.chart import chart_prefectures, outlook_chart
from alerts.guidance import guidance
from alerts.model import Hazard, Level
from alerts.render import (
    FAMILIES,
    GUIDANCE_LIMIT,
    HAZARD_EN,
    SHORT_BUDGET,
    Rendered,
    Renderer,
    exercise_tag,
    feed_text,
    normalize_language,
)

__all__ = ["CHART_CID", "ROW_LIMIT", "outlook_view", "render_outlook"]

log = logging.getLogger(__name__)

CHART_CID = "outlook-72h"
CHART_WIDTH_PX = 640
ROW_LIMIT = 40  # prefectures listed in the long form's table; the rest are counted

_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def render_outlook(
    renderer: Renderer,
    outlook: dict[str, Any],
    *,
    family: str,
    language: str = "zh-CN",
    status: str = "Actual",
    identifier: str | None = None,
    guidance_zh: str | None = None,
    fallback: bool = False,
    details_url: str | None = None,
) -> Rendered:
    """The outlook bulletin for a channel family and language.

    ``status`` other than Actual marks it as an exercise (【演练】/【测试】) like
    warnings; ``guidance_zh`` is a duty officer's advice shown instead of the
    packaged per-hazard advice (Chinese bulletins), neutralised like feed text.
    ``details_url`` defaults to the renderer's details page with
    ``?bulletin=<identifier>`` (the page itself without an identifier).
    With ``fallback``, a failing operator template is logged and the packaged
    one used, and a chart that cannot be drawn is logged and left out (delivery
    must not stop on either).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown template family {family!r} (one of {', '.join(FAMILIES)})")
    if outlook.get("kind", "outlook") != "outlook":
        raise ValueError(f"not an outlook: kind {outlook.get('kind')!r}")
    lang = normalize_language(language)
    zh = lang == "zh-CN"
    if details_url is None:
        details_url = renderer.details_url + (
            f"?bulletin={quote(identifier, safe=':,/')}" if identifier else ""
        )
    view = outlook_view(outlook, lang)
    tag = exercise_tag(status, lang)
    override = feed_text(guidance_zh, family, GUIDANCE_LIMIT) if guidance_zh and zh else ""
    context: dict[str, Any] = {
        **view,
        "outlook": outlook,
        "guidance": override,
        "advice": [] if override else view["advice"],
        "status": status,
        "exercise": status != "Actual",
        "exercise_tag": tag,
        "identifier": identifier,
        "issuer": renderer.issuer_zh if zh else renderer.issuer_en,
        "issuer_zh": renderer.issuer_zh,
        "issuer_en": renderer.issuer_en,
        "language": lang,
        "details_url": details_url,
        "tz_label": renderer.tz_label(lang),
        "short_budget": SHORT_BUDGET,
        "chart": None,
    }
    images: tuple[tuple[str, bytes], ...] = ()
    if family == "long":
        charted = chart_prefectures(outlook.get("prefectures") or [])
        if charted:
            try:
                png = outlook_chart(
                    charted,
                    timezone=outlook.get("timezone") or renderer.timezone,
                    width_px=CHART_WIDTH_PX,
                )
            except Exception:
                if not fallback:
                    raise
                log.exception("outlook chart failed: the bulletin goes without it")
            else:
                images = ((CHART_CID, png),)
                context["chart"] = {
                    "cid": CHART_CID,
                    "width": CHART_WIDTH_PX,
                    "prefectures": [
                        {"code": str(p.get("code")), "name": p.get("name") or str(p.get("code"))}
                        for p in charted
                    ],
                }

    module = _module(renderer, family, lang, f"{family}.{{lang}}.j2", context, fallback)
    subject = str(getattr(module, "subject", "")).strip()
    if not subject:
        raise ValueError(f"outlook template {family}.{lang} sets no subject")
    body = str(module).strip() + "\n"
    html = None
    if family == "long":
        html_module = _module(
            renderer,
            family,
            lang,
            "bulletin.{lang}.html.j2",
            {**context, "subject": subject},
            fallback,
        )
        html = str(html_module).strip() + "\n"
        if tag and tag.strip() not in html:
            # an operator's template without the mark: an exercise never looks real
            html = _mark_html(html, tag.strip())
        if images and html.count(f"cid:{CHART_CID}") != 1:
            raise ValueError(
                f"outlook bulletin HTML must show the chart once as cid:{CHART_CID} "
                f"(found {html.count(f'cid:{CHART_CID}')} times)"
            )
    if tag:
        subject, body = tag + subject, tag + body
    return Rendered(subject, body, html=html, images=images)


def _module(
    renderer: Renderer,
    family: str,
    lang: str,
    pattern: str,
    context: dict[str, Any],
    fallback: bool,
) -> Any:
    names = [f"outlook/{pattern.format(lang=lang)}"]
    if lang != "zh-CN":
        names.append(f"outlook/{pattern.format(lang='zh-CN')}")
    return renderer.template_module(family, names, context, fallback=fallback)


def _mark_html(html: str, tag: str) -> str:
    banner = (
        '<p style="margin:0;padding:8px 12px;background:#fff3cd;color:#7a4d00;'
        f'font-weight:bold;">{html_escape(tag)}</p>'
    )
    m = _BODY_OPEN.search(html)
    if m is None:
        return banner + html
    return html[: m.end()] + banner + html[m.end() :]


# -- the digest the templates read ------------------------------------------------------


def _level(value: Any) -> Level | None:
    return Level(int(value)) if value else None


def _hazard_name(hazard: Hazard, lang: str) -> str:
    return hazard.zh if lang == "zh-CN" else HAZARD_EN[hazard].lower()


def _risk(raw: dict[str, Any], lang: str) -> dict[str, Any]:
    hazard = Hazard(raw["hazard"])
    level = _level(raw.get("level"))
    return {
        **raw,
        "hazard": hazard,
        "name": _hazard_name(hazard, lang),
        "level": level,
        "near": level is None,
        "rank": (int(level) if level else 0, float(raw.get("ratio") or 0.0)),
    }


def outlook_view(outlook: dict[str, Any], language: str = "zh-CN") -> dict[str, Any]:
    """What the outlook templates read besides ``outlook``: the risks digested.

    - ``scope_name``: the scope's name (全国 / China for the national outlook);
    - ``level``: the highest level forecast (a Level) or None;
    - ``hazards``: one per hazard present, most severe first: ``hazard`` (Hazard),
      ``name`` (暴雨 / rainstorm), ``level`` (its worst: a Level, or None when it is
      near-threshold only), ``near`` (bool), ``prefectures`` ([{code, name}], worst
      first), ``groups`` (the prefectures per grade, most severe first: each
      ``hazard``, ``name``, ``level``, ``near``, ``prefectures``, ``peak_at``), and the
      worst prefecture's ``peak_at``, ``value``, ``threshold``, ``variable``,
      ``window_h``, ``ratio``;
    - ``risk_groups``: every hazard's groups in one list, most severe first (what the
      short form names while it fits);
    - ``provinces``: provinces with risks in the outlook's order, each ``code``,
      ``name``, ``level`` and ``prefectures`` (each ``code``, ``name``, ``level``,
      ``risks``: the contract's risks with ``hazard`` a Hazard, ``level`` a Level or
      None, ``name`` and ``near``), at most :data:`ROW_LIMIT` prefectures overall;
    - ``more_prefectures``: prefectures with risks left out of ``provinces``;
    - ``at_risk``: how many prefectures have a risk;
    - ``advice``: [{hazard, name, text}] packaged advice per hazard present;
    - ``seasonal``: [{id, name, advice}] in the language;
    - ``issued_at``, ``start``, ``end`` (ISO strings: format with ``local``), ``hours``.
    """
    lang = normalize_language(language)
    zh = lang == "zh-CN"
    prefectures: list[dict[str, Any]] = [
        {
            "code": str(p.get("code")),
            "name": p.get("name") or str(p.get("code")),
            "province": str(p.get("province") or str(p.get("code"))[:2] + "0000"),
            "province_name": p.get("province_name") or "",
            "level": _level(p.get("level")),
            "risks": sorted(
                (_risk(r, lang) for r in p.get("risks") or []),
                key=lambda r: r["rank"],
                reverse=True,
            ),
        }
        for p in outlook.get("prefectures") or []
    ]
    at_risk = [p for p in prefectures if p["risks"]]

    by_hazard: dict[Hazard, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for p in at_risk:
        for r in p["risks"]:
            by_hazard.setdefault(r["hazard"], []).append((p, r))
    hazards = []
    groups: list[dict[str, Any]] = []
    for hazard, pairs in by_hazard.items():
        pairs.sort(key=lambda pr: pr[1]["rank"], reverse=True)
        worst = pairs[0][1]
        own: dict[int, dict[str, Any]] = {}
        for p, r in pairs:
            grade = int(r["level"] or 0)
            if grade not in own:
                own[grade] = {
                    "hazard": hazard,
                    "name": r["name"],
                    "level": r["level"],
                    "near": r["level"] is None,
                    "prefectures": [],
                    "peak_at": r.get("peak_at"),
                    "rank": r["rank"],
                }
            own[grade]["prefectures"].append({"code": p["code"], "name": p["name"]})
        groups.extend(own.values())
        hazards.append(
            {
                "hazard": hazard,
                "name": worst["name"],
                "level": worst["level"],
                "near": worst["level"] is None,
                "prefectures": [{"code": p["code"], "name": p["name"]} for p, _ in pairs],
                "groups": list(own.values()),
                "peak_at": worst.get("peak_at"),
                "value": worst.get("value"),
                "threshold": worst.get("threshold"),
                "variable": worst.get("variable"),
                "window_h": worst.get("window_h"),
                "ratio": worst.get("ratio"),
                "rank": worst["rank"],
            }
        )
    hazards.sort(key=lambda h: h["rank"], reverse=True)
    groups.sort(key=lambda g: g["rank"], reverse=True)

    provinces: list[dict[str, Any]] = []
    index: dict[str, dict[str, Any]] = {}
    for raw in outlook.get("provinces") or []:
        entry: dict[str, Any] = {
            "code": str(raw.get("code")),
            "name": raw.get("name") or str(raw.get("code")),
            "level": _level(raw.get("level")),
            "prefectures": [],
        }
        index[entry["code"]] = entry
        provinces.append(entry)
    shown = 0
    for p in at_risk:
        if shown >= ROW_LIMIT:
            break
        found = index.get(p["province"])
        if found is None:  # an outlook without its province summary: still listed
            found = {
                "code": p["province"],
                "name": p["province_name"] or p["province"],
                "level": p["level"],
                "prefectures": [],
            }
            index[p["province"]] = found
            provinces.append(found)
        found["prefectures"].append(p)
        shown += 1
    provinces = [e for e in provinces if e["prefectures"]]

    scope = outlook.get("scope") or {}
    seasonal = [
        {
            "id": s.get("id"),
            "name": s.get("zh" if zh else "en") or s.get("zh") or s.get("id"),
            "advice": s.get("advice_zh" if zh else "advice_en") or s.get("advice_zh") or "",
        }
        for s in outlook.get("seasonal") or []
    ]
    return {
        "scope_name": scope.get("name") or ("全国" if zh else "China"),
        "scope_code": scope.get("code"),
        "level": _level(outlook.get("level")),
        "hazards": hazards,
        "risk_groups": groups,
        "provinces": provinces,
        "at_risk": len(at_risk),
        "more_prefectures": len(at_risk) - shown,
        "advice": [
            {
                "hazard": h["hazard"],
                "name": h["name"],
                "text": guidance(h["hazard"], h["level"] or Level.BLUE, lang),
            }
            for h in hazards
        ],
        "seasonal": seasonal,
        "issued_at": outlook["issued_at"],
        "start": outlook.get("start") or outlook["issued_at"],
        "end": outlook.get("end") or outlook["issued_at"],
        "hours": int(outlook.get("hours") or 72),
        "level_colours": _CHIP_STYLES,
    }


# Inline styles of the level chips (HTML): background and text colour per level, near.
_CHIP_STYLES: dict[str, str] = {
    "blue": "background:#1e6fd9;color:#ffffff;",
    "yellow": "background:#f5c400;color:#222222;",
    "orange": "background:#ff8a00;color:#222222;",
    "red": "background:#d81e06;color:#ffffff;",
    "near": "background:#ffffff;color:#555555;border:1px dashed #8a8a8a;",
}
