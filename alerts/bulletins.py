"""Bulletins: the daily risk outlook and publicity campaigns, published like warnings.

A bulletin is a publication of kind ``outlook`` or ``campaign`` (see
:class:`~alerts.store.models.Publication`): no alert versions, its rendering
context kept as JSON in ``content`` (the outlook of its scope, or the
campaign's context with the forecast at its places). It goes through the
same machinery as a warning:

* it is stored once under an identifier that names it for good
  (``OUTLOOK-51-20260720``: one per scope and local day;
  ``CAMPAIGN-<id>-202610010900``: one per campaign send), so a rerun creates
  nothing;
* it waits for the duty officer (``approval.bulletins``) and, when nobody
  answers within ``approval.bulletin_timeout_min``, is published as it is
  (``bulletin_on_timeout``);
* fan-out renders it once per (channel, language) from ``content`` and writes
  one ledger row per recipient with a unique key, so every recipient gets it
  once, whatever is rerun.

Who gets it: the static recipients of its channels (public channels; an
exercise only internal ones; never the responders' channels), and the
subscribers on those channels that :func:`alerts.subscribers.match_bulletin`
selects (every level wanted, hazards, audiences, areas, quiet hours).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd

from alerts.config import ChannelSettings
from alerts.render import Rendered, Renderer, family_for, normalize_language
from alerts.store import NewMessage
from alerts.store.models import Publication
from alerts.subscribers import NATIONAL, ROW_COLUMNS, match_bulletin, recipient_rows

if TYPE_CHECKING:
    from alerts.pipeline import Runtime
    from alerts.regions import Regions

__all__ = [
    "KINDS",
    "bulletin_channels",
    "bulletin_page",
    "bulletin_rows",
    "campaign_identifier",
    "inline_images",
    "make_campaigns",
    "make_outlooks",
    "outlook_identifier",
    "render_bulletin",
    "scope_codes",
]

log = logging.getLogger(__name__)

KINDS = ("outlook", "campaign")


# -- identifiers ------------------------------------------------------------------------


def outlook_identifier(scope: str | None, when: datetime, timezone: str) -> str:
    """One outlook per scope (an adcode prefix, or national) and local day."""
    day = when.astimezone(ZoneInfo(timezone))
    return f"OUTLOOK-{scope or 'CN'}-{day:%Y%m%d}"


def campaign_identifier(campaign_id: str, send_at: datetime, timezone: str) -> str:
    """One bulletin per campaign send (its local send time); at most 64 characters."""
    stamp = send_at.astimezone(ZoneInfo(timezone)).strftime("%Y%m%d%H%M")
    return f"CAMPAIGN-{campaign_id[: 64 - len('CAMPAIGN--') - len(stamp)]}-{stamp}"


# -- making bulletins -------------------------------------------------------------------


def make_outlooks(rt: Runtime, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Store today's outlook bulletin of every configured scope (each once).

    Scopes: the national outlook (``outlook.national``) and each prefix of
    ``outlook.regions``. The forecast is graded once, only when some scope's
    bulletin of the day does not exist yet. Returns, per scope, the
    identifier, whether it was created now, its approval state and level.
    """
    from alerts.outlook import compute

    now = now or rt.clock()
    cfg = rt.settings.outlook
    scopes: list[str | None] = ([None] if cfg.national else []) + list(cfg.regions)
    if not scopes:
        raise ValueError("outlook: no scope (outlook.national is false and outlook.regions empty)")
    idents = {s: outlook_identifier(s, now, rt.settings.timezone) for s in scopes}
    stored = {s: rt.store.publication(ident) for s, ident in idents.items()}
    outlook = compute(rt, now) if any(pub is None for pub in stored.values()) else None
    out = []
    for scope in scopes:
        done = stored[scope]
        if done is not None or outlook is None:
            assert done is not None
            out.append(_summary(done, created=False))
            continue
        data = (outlook.scoped(scope) if scope else outlook).to_json()
        subject = render_bulletin(rt.renderer, "outlook", data, family="text").subject
        pub, created = rt.store.create_bulletin(
            kind="outlook",
            identifier=idents[scope],
            sender=rt.settings.cap.sender,
            subject=subject,
            level=int(data.get("level") or 0),
            content={**data, "channels": list(cfg.channels)},
            now=now,
            expires=now + timedelta(hours=float(data.get("hours") or 72)),
            approval=rt.settings.approval.bulletins,
        )
        out.append(_summary(pub, created=created))
    return out


def make_campaigns(
    rt: Runtime, *, now: datetime | None = None, lookback: timedelta = timedelta(days=1)
) -> list[dict[str, Any]]:
    """Store a bulletin for every campaign send due in ``(now - lookback, now]`` (each once).

    The forecast feeds the campaigns' content (rain at their places); if it
    cannot be had, the campaigns still go, without forecast lines, and the
    failure is logged.
    """
    from alerts.campaigns import campaign_context, due_sends, load_catalog, region_prefixes

    now = now or rt.clock()
    catalog = load_catalog(rt.settings.campaigns_file)
    sends = [
        (c, at, campaign_identifier(c.id, at, rt.settings.timezone))
        for c, at in due_sends(catalog, when=now, lookback=lookback)
    ]
    stored = {ident: rt.store.publication(ident) for _, _, ident in sends}
    outlook: dict[str, Any] | None = None
    if any(pub is None for pub in stored.values()):
        try:
            from alerts.outlook import compute

            outlook = compute(rt, now).to_json()
        except Exception:
            log.exception("campaigns: no forecast for their content; sending without it")
    out = []
    for campaign, at, ident in sends:
        done = stored[ident]
        if done is not None:
            out.append(_summary(done, created=False))
            continue
        context = campaign_context(catalog, campaign, when=now, outlook=outlook)
        content = {
            "kind": "campaign",
            "campaign": campaign.id,
            "send_at": at.isoformat(),
            "context": context,
            "regions": region_prefixes(catalog, campaign),
            "audiences": list(campaign.audiences),
            "hazards": [h.value for h in campaign.hazards],
            "channels": list(campaign.channels),
        }
        subject = render_bulletin(rt.renderer, "campaign", content, family="text").subject
        pub, created = rt.store.create_bulletin(
            kind="campaign",
            identifier=ident,
            sender=rt.settings.cap.sender,
            subject=subject,
            level=_campaign_level(context),
            content=content,
            now=now,
            expires=None,
            approval=rt.settings.approval.bulletins,
        )
        out.append(_summary(pub, created=created))
    return out


def _campaign_level(context: Mapping[str, Any]) -> int:
    """The highest level forecast at the campaign's places (0: none), for ordering."""
    levels = [
        int(r.get("level") or 0)
        for place in context.get("places") or ()
        for r in place.get("risks") or ()
    ]
    return max(levels, default=0)


def _summary(pub: Publication, *, created: bool) -> dict[str, Any]:
    return {
        "identifier": pub.identifier,
        "kind": pub.kind,
        "created": created,
        "approval": pub.approval,
        "level": pub.level,
        "subject": pub.subject,
    }


# -- rendering -------------------------------------------------------------------------------


def render_bulletin(
    renderer: Renderer,
    kind: str,
    content: Mapping[str, Any],
    *,
    family: str,
    language: str = "zh-CN",
    status: str = "Actual",
    identifier: str | None = None,
    guidance_zh: str | None = None,
    fallback: bool = False,
) -> Rendered:
    """A bulletin's message for a channel family and language, from its stored content."""
    if kind == "outlook":
        from alerts.bulletin import render_outlook

        return render_outlook(
            renderer,
            dict(content),
            family=family,
            language=language,
            status=status,
            identifier=identifier,
            guidance_zh=guidance_zh,
            fallback=fallback,
        )
    if kind == "campaign":
        from alerts.campaigns import render_campaign

        return render_campaign(
            renderer,
            dict(content["context"]),
            family=family,
            language=language,
            status=status,
            identifier=identifier,
            fallback=fallback,
        )
    raise ValueError(f"not a bulletin kind: {kind!r} (one of {', '.join(KINDS)})")


def render_publication_bulletin(
    renderer: Renderer, pub: Publication, *, family: str, language: str, fallback: bool = False
) -> Rendered:
    return render_bulletin(
        renderer,
        pub.kind,
        pub.content or {},
        family=family,
        language=language,
        status=pub.status,
        identifier=pub.identifier,
        guidance_zh=pub.guidance_override,
        fallback=fallback,
    )


def inline_images(html: str, images: tuple[tuple[str, bytes], ...]) -> str:
    """The HTML with each ``cid:NAME`` replaced by a ``data:`` URI of its PNG (a web page)."""
    for name, png in images:
        uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        html = html.replace(f"cid:{name}", uri)
    return html


def bulletin_page(renderer: Renderer, pub: Publication, *, language: str = "zh-CN") -> str:
    """A published bulletin as one self-contained web page (the long form, images inline).

    What the details link of a bulletin can show: the e-mail / WeChat article
    HTML, or the long text as HTML where the bulletin has no HTML of its own.
    """
    got = render_publication_bulletin(renderer, pub, family="long", language=language)
    if got.html:
        return inline_images(got.html, got.images)
    from alerts.channels.email import render_html

    return render_html(got.body, normalize_language(language))


def bulletin_family(channel: ChannelSettings) -> str:
    """E-mail and WeChat articles get the long form (HTML and chart); others their family."""
    if channel.type == "wechat_oa" and str((channel.options or {}).get("mode")) == "article":
        return "long"
    return family_for(channel)


# -- fan-out ------------------------------------------------------------------------------------


def bulletin_channels(
    pub: Publication, channels: Iterable[ChannelSettings]
) -> dict[str, ChannelSettings]:
    """The enabled channels a bulletin goes to.

    Public channels (an exercise: internal ones), limited to the bulletin's
    own list when it names channels; responders' channels never (they carry
    response procedures, not publicity).
    """
    wanted = set((pub.content or {}).get("channels") or ())
    audience = "public" if pub.status == "Actual" else "internal"
    chosen = {
        c.name: c
        for c in channels
        if c.enabled and c.audience == audience and (not wanted or c.name in wanted)
    }
    unknown = wanted - {c.name for c in channels}
    if unknown:
        log.warning("bulletin %s names unknown channels %s", pub.identifier, sorted(unknown))
    return chosen


def scope_codes(prefixes: Iterable[str], regions: Regions | None) -> set[str]:
    """Region codes a subscriber's areas are matched against, for adcode prefixes.

    A prefix stands for every prefecture under it (a subscriber of "5101"
    gets a Sichuan-wide bulletin); a county adcode also stands for its
    prefecture. No prefix: national.
    """
    wanted = [str(p) for p in prefixes if str(p)]
    if not wanted:
        return {NATIONAL}
    from alerts.regions import load_regions

    adcodes = (regions or load_regions()).frame["adcode"].astype(str)
    codes: set[str] = set()
    for p in wanted:
        codes.update(adcodes[adcodes.str.startswith(p[:4] if len(p) == 6 else p)].tolist())
        if len(p) == 6:
            codes.add(p)
    return codes or set(wanted)


def _bulletin_regions(pub: Publication) -> list[str]:
    content = pub.content or {}
    if pub.kind == "outlook":
        scope = content.get("scope") or {}
        return [str(scope["code"])] if scope.get("code") else []
    return [str(r) for r in content.get("regions") or ()]


def _bulletin_hazards(pub: Publication) -> list[str]:
    content = pub.content or {}
    if pub.kind == "outlook":
        found = {
            str(r["hazard"]) for p in content.get("prefectures") or () for r in p.get("risks") or ()
        }
        found |= {str(h) for s in content.get("seasonal") or () for h in s.get("hazards") or ()}
        return sorted(found)
    return [str(h) for h in content.get("hazards") or ()]


def bulletin_rows(
    pub: Publication,
    renderer: Renderer,
    channels: Iterable[ChannelSettings],
    subscribers: pd.DataFrame,
    *,
    now: datetime,
    regions: Regions | None = None,
) -> tuple[list[NewMessage], pd.DataFrame]:
    """The rendered messages and the ledger rows (with keys) of one bulletin."""
    allowed = bulletin_channels(pub, channels)
    frames = [
        pd.DataFrame(
            [(n, r, c.language, None, "channel") for n, c in allowed.items() for r in c.recipients],
            columns=ROW_COLUMNS,
        )
    ]
    if not subscribers.empty and allowed:
        hit = match_bulletin(
            subscribers[subscribers["channel"].isin(list(allowed))],
            hazards=_bulletin_hazards(pub),
            audiences=(pub.content or {}).get("audiences") or (),
            region_codes=scope_codes(_bulletin_regions(pub), regions),
            when=now,
            regions=regions,
        )
        frames.append(recipient_rows(hit))
    rows = pd.concat([f for f in frames if not f.empty] or frames, ignore_index=True)
    rows = rows.drop_duplicates(["channel", "recipient"], keep="first")
    cache: dict[tuple[str, str], Rendered] = {}
    messages = []
    for channel, language in (
        rows[["channel", "language"]].drop_duplicates().itertuples(index=False)
    ):
        family = bulletin_family(allowed[channel])
        if (family, language) not in cache:
            cache[(family, language)] = render_publication_bulletin(
                renderer, pub, family=family, language=language, fallback=True
            )
        got = cache[(family, language)]
        messages.append(NewMessage(channel, language, got.subject, got.body, got.html, got.images))
    rows = rows.assign(
        key=pub.identifier + "/" + rows["channel"].astype(str) + "/" + rows["recipient"].astype(str)
    )
    return messages, rows
