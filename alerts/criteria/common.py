"""Pieces every rule file shares."""

from __future__ import annotations

from alerts.model import Level

__all__ = ["keyed_by_id", "level_keys"]


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
