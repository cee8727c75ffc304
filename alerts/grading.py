"""Grading: observations in, warnings (each saying why) out.

One entry point per kind of observation; the engines and their rule models
live in :mod:`alerts.criteria`.
"""

from __future__ import annotations

from alerts.criteria.earthquake import NATIONAL_REGION, event_subject, grade_earthquakes

__all__ = ["NATIONAL_REGION", "event_subject", "grade_earthquakes"]
