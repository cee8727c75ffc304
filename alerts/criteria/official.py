"""Official warnings graded: a hazard and a colour for each CAP ``<info>`` or GDACS item.

The colour a document states wins; else CAP severity maps to a colour. The
hazard comes from a GB/T 35965.1 event code, a GDACS event type, or words in
the event text. Tables live in ``rules/official.yaml``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.model import Hazard, Level, Warning

__all__ = ["OfficialRules", "grade_official", "hazard_of"]


class OfficialRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    severity_levels: dict[str, Level]
    valid_hours: float = Field(24, gt=0)
    event_codes: dict[str, Hazard]
    gdacs_event_types: dict[str, Hazard]
    event_words: list[tuple[Hazard, list[str]]]
    adcode_geocodes: list[str] = Field(default_factory=list)

    @field_validator("severity_levels", mode="before")
    @classmethod
    def _levels(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: Level.parse(v) for k, v in value.items()}
        return value


def hazard_of(row: dict[str, Any], rules: OfficialRules) -> Hazard | None:
    """Which hazard an official warning is about, or None when it is none of ours."""
    if row.get("source") == "gdacs":
        return rules.gdacs_event_types.get(str(row.get("event_type") or ""))
    for values in (row.get("event_codes") or {}).values():
        for code in values if isinstance(values, list) else [values]:
            if str(code) in rules.event_codes:
                return rules.event_codes[str(code)]
    text = " ".join(str(row.get(k) or "") for k in ("event", "headline")).lower()
    for hazard, words in rules.event_words:
        if any(w.lower() in text for w in words):
            return hazard
    return None


def level_of(row: dict[str, Any], rules: OfficialRules) -> Level | None:
    stated = row.get("level")
    if isinstance(stated, str) and stated:
        return Level.parse(stated)
    if row.get("source") == "gdacs":
        return None  # GDACS Green: no public warning
    return rules.severity_levels.get(str(row.get("severity") or ""))


def _areas(row: dict[str, Any], rules: OfficialRules) -> list[tuple[str, str]]:
    """(location id, name) per area: Chinese admin codes from geocodes, else the description."""
    names = {n.lower() for n in rules.adcode_geocodes}
    codes = [
        str(v)
        for name, values in (row.get("geocodes") or {}).items()
        if str(name).lower() in names
        for v in (values if isinstance(values, list) else [values])
        if re.fullmatch(r"\d{6}(\d{6})?", str(v))
    ]
    if codes:
        return [(c, c) for c in dict.fromkeys(codes)]
    desc = str(row.get("area_desc") or row.get("country") or "").strip()
    return [(desc or "unspecified", desc or "unspecified")]


def grade_official(frame: pd.DataFrame, rules: OfficialRules, now: datetime) -> list[Warning]:
    """One warning per (hazard, area, document) of each current official warning with a colour.

    A document's ``<info>`` blocks in several languages give one warning (the
    highest level, the first language on a tie).
    """
    warnings: dict[tuple[Hazard, str, str], Warning] = {}
    for row in frame.to_dict(orient="records"):
        row = {k: (None if _isna(v) else v) for k, v in row.items()}
        if row.get("status") not in (None, "Actual") or row.get("msg_type") in (
            "Cancel",
            "Ack",
            "Error",
        ):
            continue
        hazard, level = hazard_of(row, rules), level_of(row, rules)
        if hazard is None or level is None:
            continue
        sent = _when(row.get("sent")) or now
        onset = _when(row.get("onset")) or sent
        expires = _when(row.get("expires")) or sent + timedelta(hours=rules.valid_hours)
        if expires <= now or sent > now + timedelta(minutes=5):  # over, or not yet sent
            continue
        stated = "stated level" if row.get("level") else f"severity {row.get('severity')}"
        for location, name in _areas(row, rules):
            key = (hazard, location, str(row.get("identifier")))
            if key in warnings and warnings[key].level >= level:
                continue
            warnings[key] = Warning(
                hazard=hazard,
                level=level,
                region_code=location,
                region_name=name,
                subject=f"{row.get('source')}:{row.get('identifier')}",
                onset=onset,
                expires=expires,
                rule_id=f"official.{row.get('source')}",
                rule_set_version=rules.version,
                observed=None,
                threshold=None,
                reason=f"{row.get('sender')} {row.get('event')}: {stated} -> {level.colour}",
                facts={
                    "sender": row.get("sender"),
                    "event": row.get("event"),
                    "headline": row.get("headline"),
                    "severity": row.get("severity"),
                    "area_desc": row.get("area_desc"),
                    "language": row.get("language"),
                    "msg_type": row.get("msg_type"),
                    "references": row.get("references") or [],
                    "area_polygons": row.get("polygons") or [],
                    "area_circles": row.get("circles") or [],
                    "area_geocodes": row.get("geocodes") or {},
                    "source_reference": _triple(row, sent),
                },
                window_h=None,
                reached_at=onset,
                source_ref=str(row.get("identifier")),
            )
    return list(warnings.values())


def _triple(row: dict[str, Any], sent: datetime) -> str:
    """The imported document as a CAP reference: sender,identifier,sent."""
    when = pd.Timestamp(sent).tz_convert("Asia/Shanghai").isoformat()
    return f"{row.get('sender')},{row.get('identifier')},{when}"


def _isna(value: Any) -> bool:
    return not isinstance(value, (list, dict, str)) and value is not None and bool(pd.isna(value))


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    return pd.Timestamp(value).tz_convert("UTC").to_pydatetime()
