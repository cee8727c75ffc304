"""Pieces every rule file shares."""

from __future__ import annotations

from alerts.model import Level

__all__ = ["level_keys"]


def level_keys(data: object) -> object:
    """A ``model_validator(mode="before")``: ``levels`` keyed by any spelling of a level.

    Rule files say ``blue``, ``蓝色``, ``IV`` or ``1``; the models key by
    :class:`~alerts.model.Level`.
    """
    if isinstance(data, dict) and isinstance(data.get("levels"), dict):
        data = dict(data)
        data["levels"] = {Level.parse(k): v for k, v in data["levels"].items()}
    return data
