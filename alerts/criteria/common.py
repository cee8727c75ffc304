"""Pieces every rule file shares."""

from __future__ import annotations

from alerts.model import Hazard, Level

__all__ = ["hazard_names", "keyed_by_id", "level_keys"]


def level_keys(data: object) -> object:
    """A ``model_validator(mode="before")``: ``levels`` keyed by any spelling of a level.

    Rule files say ``blue``, ``蓝色``, ``IV`` or ``1``; the models key by
    :class:`~alerts.model.Level`.
    """
    if isinstance(data, dict) and isinstance(data.get("levels"), dict):
        data = dict(data)
        data["levels"] = {Level.parse(k): v for k, v in data["levels"].items()}
    return data


def keyed_by_id(value: object, what: str) -> object:
    """A ``field_validator(mode="before")`` body: a file's list of items keyed by their ``id``.

    Data files list items (tips, campaigns, places, seasonal risks); keyed by
    id, a validation error names the item (``campaigns.<id>.field``), and a
    repeated id is an error. An item without an id is keyed ``#N`` (its
    position), so the missing id is reported there.
    """
    if not isinstance(value, list):
        return value
    keyed: dict[str, object] = {}
    for i, item in enumerate(value):
        item_id = item.get("id") if isinstance(item, dict) else None
        key = str(item_id) if item_id is not None else f"#{i + 1}"
        if key in keyed:
            raise ValueError(f"duplicate {what} id {key!r}")
        keyed[key] = item
    return keyed


def hazard_names(value: object, *, also: str = "") -> object:
    """A ``field_validator(mode="before")`` body: one hazard name or a list, each known.

    An unknown name fails with every known one listed (and ``also``, e.g.
    ", or any"), which pydantic's enum error does not say.
    """
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        known = {h.value for h in Hazard}
        for item in value:
            if str(item) not in known:
                raise ValueError(
                    f"unknown hazard {item!r} (known: {', '.join(sorted(known))}{also})"
                )
    return value
