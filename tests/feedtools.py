"""Helpers that replay recorded feeds as if they were live."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any


def usgs_features(path: Path) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["features"])


def usgs_feed(features: list[dict[str, Any]], *, newest: datetime, generated: int = 0) -> bytes:
    """A summary feed of these recorded features, replayed as recent events.

    Feature i's origin becomes ``newest`` minus i x 5 minutes; its update time
    keeps its recorded delay after the origin. Nothing else changes.
    """
    base = int(newest.timestamp() * 1000)
    out = []
    for i, f in enumerate(features):
        f = json.loads(json.dumps(f))
        props = f["properties"]
        shift = base - i * 300_000 - props["time"]
        props["time"] += shift
        if props.get("updated") is not None:
            props["updated"] += shift
        out.append(f)
    doc = {
        "type": "FeatureCollection",
        "metadata": {"generated": generated, "title": "replayed", "status": 200, "count": len(out)},
        "features": out,
    }
    return json.dumps(doc).encode()
