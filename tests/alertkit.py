"""Warnings for tests: a forecast rainstorm at some level for one prefecture."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.model import Hazard, Level, Warning

CHENGDU = ("510100", "四川省成都市")
MIANYANG = ("510700", "四川省绵阳市")

# The forecast rain that reaches each level's threshold in its window (mm, hours).
_RAIN = {Level.BLUE: (50.0, 12), Level.YELLOW: (50.0, 6), Level.ORANGE: (100.0, 3)}


def rain(
    level: Level, now: datetime, region: tuple[str, str] = CHENGDU, *, hours: float = 12
) -> Warning:
    """A forecast rainstorm warning at ``level`` for ``region`` (code, name), from ``now``."""
    threshold, window = _RAIN.get(level, (250.0, 24))
    value = threshold * 1.04
    return Warning(
        hazard=Hazard.RAINSTORM,
        level=level,
        region_code=region[0],
        region_name=region[1],
        subject=f"rainstorm:{region[0]}",
        onset=now,
        expires=now + timedelta(hours=hours),
        rule_id="rainstorm-test",
        rule_set_version="test",
        observed=value,
        threshold=threshold,
        reason="test",
        facts={
            "location_name": region[1],
            "variable": "rain_mm",
            "value": value,
            "threshold": threshold,
            "window_h": window,
            "basis": "forecast",
            "reached_at": now.isoformat(),
        },
        window_h=window,
    )


def alert_id(w: Warning) -> str:
    """The id the lifecycle gives the alert of ``w``."""
    return f"{w.hazard.value}:{w.subject}:{w.region_code}"
