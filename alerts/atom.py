"""An Atom index of published warnings, each entry linking to its CAP 1.2 document."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from alerts.model import Hazard, Level
from alerts.store.models import Publication
from alerts.store.publishing import cap_time

__all__ = ["atom_index"]

ATOM = "http://www.w3.org/2005/Atom"


def atom_index(
    publications: Sequence[Publication], *, base_url: str, title: str, feed_id: str
) -> bytes:
    """Atom 1.0: newest first; each entry's link has type application/cap+xml."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}id").text = feed_id
    ET.SubElement(feed, f"{{{ATOM}}}title").text = title
    updated = max((p.sent for p in publications), default=None)
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = (
        cap_time(updated) if updated else "1970-01-01T08:00:00+08:00"
    )
    ET.SubElement(
        feed,
        f"{{{ATOM}}}link",
        href=f"{base_url}/atom.xml",
        rel="self",
        type="application/atom+xml",
    )
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = title
    for p in publications:
        hazard, level = Hazard(p.hazard), Level(p.level)
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}id").text = f"urn:cap:{p.identifier}"
        ET.SubElement(entry, f"{{{ATOM}}}title").text = (
            f"{'【演练】' if p.status != 'Actual' else ''}{hazard.zh}{level.zh}预警 "
            f"{p.msg_type} / {hazard.value} {level.colour}"
        )
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = cap_time(p.sent)
        ET.SubElement(
            entry,
            f"{{{ATOM}}}link",
            href=f"{base_url}/cap/{p.identifier}.xml",
            rel="alternate",
            type="application/cap+xml",
        )
        ET.SubElement(entry, f"{{{ATOM}}}summary").text = (
            f"{p.action} · {hazard.value} · {level.colour} · expires "
            f"{cap_time(p.expires) if p.expires else '-'}"
        )
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
