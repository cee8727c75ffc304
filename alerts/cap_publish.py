"""Our publications as CAP 1.2 documents: Chinese and English, areas with boundaries.

Each publication (one message of a cycle) becomes one document: its own
GB/T 35965.1 identifier, ``references`` to the documents it updates or
cancels, an ``info`` per language whose severity follows the level, the
defence guidance as ``instruction``, the decision as parameters, and one
``area`` per region (name, adcode geocode, boundary polygon of at most 100
points; a circle around the epicentre for the national earthquake alert).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts.cap_out import CapArea, CapDocument, CapInfo, circle_area, region_polygon, to_xml
from alerts.guidance import guidance
from alerts.model import Action, Hazard, Level
from alerts.regions import Regions
from alerts.render import Renderer, render_publication
from alerts.store.models import Alert, AlertVersion, Publication

__all__ = ["EVENT_CODES", "publication_document", "publication_xml"]

# GB/T 35965.1-2018 event codes (the Chinese CAP profile).
EVENT_CODES: dict[Hazard, str] = {
    Hazard.TYPHOON: "11B01",
    Hazard.RAINSTORM: "11B03",
    Hazard.BLIZZARD: "11B04",
    Hazard.COLD_WAVE: "11B05",
    Hazard.GALE: "11B06",
    Hazard.SANDSTORM: "11B07",
    Hazard.HEAT: "11B09",
    Hazard.LIGHTNING: "11B14",
    Hazard.HAIL: "11B15",
    Hazard.FROST: "11B16",
    Hazard.FOG: "11B17",
    Hazard.HAZE: "11B19",
    Hazard.ROAD_ICING: "11B21",
    Hazard.DROUGHT: "11B22",
}
_HAZARD_EN = {h: h.value.replace("_", " ") for h in Hazard}
_NATIONAL_RADIUS_KM = 300.0


def publication_xml(
    pub: Publication,
    members: Sequence[tuple[AlertVersion, Alert]],
    *,
    regions: Regions,
    renderer: Renderer,
    sender_name_zh: str,
    sender_name_en: str,
) -> bytes:
    doc = publication_document(
        pub,
        members,
        regions=regions,
        renderer=renderer,
        sender_name_zh=sender_name_zh,
        sender_name_en=sender_name_en,
    )
    return to_xml(doc)


def publication_document(
    pub: Publication,
    members: Sequence[tuple[AlertVersion, Alert]],
    *,
    regions: Regions,
    renderer: Renderer,
    sender_name_zh: str,
    sender_name_en: str,
) -> CapDocument:
    hazard, level, action = Hazard(pub.hazard), Level(pub.level), Action(pub.action)
    lead = members[0][0]
    areas = [_area(v, a, regions) for v, a in members]
    zh = render_publication(renderer, pub, members)
    params = _parameters(lead, level)
    codes = [("GB/T 35965.1", EVENT_CODES[hazard])] if hazard in EVENT_CODES else []
    over = action in (Action.CANCEL, Action.EXPIRE)
    common: dict[str, Any] = {
        "category": hazard.cap_category,
        "urgency": "Past" if over else ("Immediate" if _soon(pub) else "Expected"),
        "severity": level.cap_severity,
        "certainty": "Observed" if hazard is Hazard.EARTHQUAKE or over else "Likely",
        "onset": pub.onset,
        "expires": pub.expires,
        "event_codes": codes,
        "parameters": params,
        "areas": areas,
    }
    names = "、".join(a.region_name for _, a in members[:8])
    en_names = ", ".join(a.region_code for _, a in members[:8])
    en_action = {Action.ISSUE: "issued", Action.CANCEL: "lifted", Action.EXPIRE: "expired"}.get(
        action, f"{action.value}d"
    )
    infos = [
        CapInfo(
            language="zh-CN",
            event=f"{hazard.zh}{level.zh}预警",
            sender_name=sender_name_zh,
            headline=zh.subject,
            description=zh.body,
            instruction=None if over else guidance(hazard, level, "zh-CN"),
            web=None,
            **common,
        ),
        CapInfo(
            language="en-US",
            event=f"{_HAZARD_EN[hazard].capitalize()} {level.colour} warning",
            sender_name=sender_name_en,
            headline=f"{_HAZARD_EN[hazard].capitalize()} {level.colour} warning (level "
            f"{level.roman}) {en_action}: {en_names}",
            description=f"{level.colour.capitalize()} (level {level.roman}) "
            f"{_HAZARD_EN[hazard]} warning {en_action} for {len(members)} region(s): "
            f"{en_names}. {lead.reason}. Chinese: {names}",
            instruction=None if over else guidance(hazard, level, "en-US"),
            web=None,
            **common,
        ),
    ]
    references = pub.references.split()
    source_ref = lead.facts.get("source_reference")
    if isinstance(source_ref, str) and source_ref not in references:
        references.append(source_ref)  # an imported CAP document this alert came from
    return CapDocument(
        identifier=pub.identifier,
        sender=pub.sender,
        sent=pub.sent,
        status=pub.status,
        msg_type=pub.msg_type,
        references=references,
        note="演练 Exercise" if pub.status == "Exercise" else None,
        infos=infos,
    )


def _soon(pub: Publication) -> bool:
    return pub.onset is None or (pub.onset - pub.sent).total_seconds() <= 3600


def _parameters(v: AlertVersion, level: Level) -> list[tuple[str, str]]:
    params = [("level", level.colour), ("level_zh", level.zh), ("grade", level.roman)]
    if v.rule_id:
        params.append(("rule", v.rule_id))
    if v.rule_set_version:
        params.append(("ruleset_version", v.rule_set_version))
    for key in ("value", "threshold", "window_h", "magnitude", "intensity"):
        value = v.facts.get(key)
        if value is not None:
            params.append((key, f"{value:g}" if isinstance(value, float) else str(value)))
    return params


def _area(v: AlertVersion, a: Alert, regions: Regions) -> CapArea:
    facts = v.facts
    if "source_reference" in facts:  # an imported document: keep its area as it was
        return CapArea(
            desc=a.region_name,
            geocodes=dict(facts.get("area_geocodes") or {}),
            polygons=[
                [(float(p[0]), float(p[1])) for p in poly]
                for poly in facts.get("area_polygons") or []
            ],
            circles=[
                (float(c[0]), float(c[1]), float(c[2])) for c in facts.get("area_circles") or []
            ],
        )
    if a.region_code == "CN" and "latitude" in facts:  # the national earthquake response
        return CapArea(
            desc=f"{a.region_name}（震中{facts.get('region_name', '')}）",
            circles=[
                circle_area(
                    float(facts["latitude"]), float(facts["longitude"]), _NATIONAL_RADIUS_KM
                )
            ],
        )
    match = regions.frame.index[regions.frame["adcode"] == a.region_code]
    if len(match):
        geom = regions.geoms[int(match[0])]
        return CapArea(
            desc=a.region_name, geocodes={"adcode": [a.region_code]}, polygons=region_polygon(geom)
        )
    lat, lon = facts.get("location_latitude"), facts.get("location_longitude")
    if lat is not None and lon is not None:
        return CapArea(desc=a.region_name, circles=[circle_area(float(lat), float(lon), 10.0)])
    return CapArea(desc=a.region_name)
