"""The domain vocabulary: hazards, warning levels, warnings and alert actions.

These are plain values shared by every stage of the pipeline. Stored shapes
(alerts, versions, deliveries) live in :mod:`alerts.store.models`; this module
holds what the pure functions exchange.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Action", "Hazard", "Level", "Warning", "utc_iso"]


class Level(enum.IntEnum):
    """The four national warning levels, ordered blue IV < yellow III < orange II < red I."""

    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def colour(self) -> str:
        return self.name.lower()

    @property
    def zh(self) -> str:
        """Chinese colour name as used in official signals (蓝色 ... 红色)."""
        return _LEVEL_ZH[self]

    @property
    def roman(self) -> str:
        """Response grade: red is grade I (the most severe), blue grade IV."""
        return _LEVEL_ROMAN[self]

    @property
    def cap_severity(self) -> str:
        """CAP 1.2 ``severity`` for this level."""
        return _LEVEL_CAP[self]

    @classmethod
    def parse(cls, value: str | int | Level) -> Level:
        """Accept a member, its number, its colour (en or zh) or its roman grade."""
        if isinstance(value, Level):
            return value
        if isinstance(value, int):
            return cls(value)
        text = str(value).strip()
        for level in cls:
            if text.lower() in {level.colour, level.roman.lower(), str(level.value)} or text in {
                level.zh,
                level.zh.rstrip("色"),
            }:
                return level
        raise ValueError(f"unknown warning level {value!r}: use blue/yellow/orange/red")


_LEVEL_ZH = {Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
_LEVEL_ROMAN = {Level.BLUE: "IV", Level.YELLOW: "III", Level.ORANGE: "II", Level.RED: "I"}
_LEVEL_CAP = {
    Level.BLUE: "Minor",
    Level.YELLOW: "Moderate",
    Level.ORANGE: "Severe",
    Level.RED: "Extreme",
}


class Hazard(enum.StrEnum):
    """Hazards the system warns for, with their Chinese names and CAP category."""

    EARTHQUAKE = "earthquake"
    RAINSTORM = "rainstorm"
    BLIZZARD = "blizzard"
    GALE = "gale"
    TYPHOON = "typhoon"
    COLD_WAVE = "cold_wave"
    HEAT = "heat"
    FOG = "fog"
    HAZE = "haze"
    FROST = "frost"
    ROAD_ICING = "road_icing"
    SANDSTORM = "sandstorm"
    LIGHTNING = "lightning"
    HAIL = "hail"
    DROUGHT = "drought"
    TSUNAMI = "tsunami"
    FLOOD = "flood"

    @property
    def zh(self) -> str:
        return _HAZARD_ZH[self]

    @property
    def cap_category(self) -> str:
        return "Geo" if self in (Hazard.EARTHQUAKE, Hazard.TSUNAMI) else "Met"


_HAZARD_ZH = {
    Hazard.EARTHQUAKE: "地震",
    Hazard.RAINSTORM: "暴雨",
    Hazard.BLIZZARD: "暴雪",
    Hazard.GALE: "大风",
    Hazard.TYPHOON: "台风",
    Hazard.COLD_WAVE: "寒潮",
    Hazard.HEAT: "高温",
    Hazard.FOG: "大雾",
    Hazard.HAZE: "霾",
    Hazard.FROST: "霜冻",
    Hazard.ROAD_ICING: "道路结冰",
    Hazard.SANDSTORM: "沙尘暴",
    Hazard.LIGHTNING: "雷电",
    Hazard.HAIL: "冰雹",
    Hazard.DROUGHT: "干旱",
    Hazard.TSUNAMI: "海啸",
    Hazard.FLOOD: "洪水",
}


class Action(enum.StrEnum):
    """What reconciliation decided for one alert; each maps to a CAP msgType."""

    ISSUE = "issue"
    UPDATE = "update"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    CANCEL = "cancel"
    EXPIRE = "expire"
    EXTEND = "extend"  # same level, later expiry: a quiet Update

    @property
    def notifies(self) -> bool:
        """Whether this action is pushed to people (expiry: only if configured)."""
        return self not in (Action.EXPIRE, Action.EXTEND)

    @property
    def msg_type(self) -> str:
        if self is Action.ISSUE:
            return "Alert"
        if self in (Action.CANCEL, Action.EXPIRE):
            return "Cancel"
        return "Update"

    @property
    def zh(self) -> str:
        return _ACTION_ZH[self]


_ACTION_ZH = {
    Action.ISSUE: "发布",
    Action.UPDATE: "更新",
    Action.UPGRADE: "升级",
    Action.DOWNGRADE: "降级",
    Action.CANCEL: "解除",
    Action.EXPIRE: "到期",
    Action.EXTEND: "延长",
}


@dataclass(frozen=True)
class Warning:  # noqa: A001 - the domain word; never used unqualified beside builtins
    """A graded finding: this hazard, at this level, for this region and subject, and why.

    ``subject`` identifies what is warned about: the event key for an
    earthquake, or the hazard episode for weather. ``facts`` carries the
    observed values the message templates need (magnitude, place, time ...).
    Every warning explains itself: ``rule_id``, ``rule_set_version``,
    ``window_h``, ``observed`` (observed or forecast value), ``threshold`` and
    ``reached_at``.
    """

    hazard: Hazard
    level: Level
    region_code: str
    region_name: str
    subject: str
    onset: datetime
    expires: datetime
    rule_id: str
    rule_set_version: str
    observed: float | None
    threshold: float | None
    reason: str
    facts: dict[str, Any] = field(default_factory=dict)
    window_h: float | None = None  # the rule's window; None for instantaneous rules
    reached_at: datetime | None = None  # the hour (UTC) the threshold is (first) reached
    source_ref: str | None = None  # event id, CAP identifier, or the forecast it came from


def utc_iso(when: datetime | None, timespec: str = "auto") -> str | None:
    """ISO 8601 in UTC with a ``Z`` (naive times are taken as UTC); None stays None."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
