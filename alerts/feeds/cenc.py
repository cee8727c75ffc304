"""China Earthquake Networks Center (中国地震台网中心) catalogue feeds.

Two shapes, both accepted:

- legacy ``speedsearch``: JSONP, ``({"shuju": [...], ...})`` or
  ``callback({...})``, records with string coordinates and magnitudes;
- current ``catalogs``: ``{"code": 0, "data": [...]}``; ``code != 0`` is an error.

Times are Beijing time (UTC+8) and leave here as UTC. A solution is
automatic (``AU`` id prefix, ``AUTO_FLAG`` A) or formal (``CC``, manual).
CENC gives the formal solution a new id, so "the same event" means close in
time and place: within a payload an automatic solution that a formal one
matches is dropped and its id kept as an alias of the formal one; across
payloads the store applies the same rule (:data:`SAME_EVENT`).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerts.feeds.base import (
    EARTHQUAKE_COLUMNS,
    FeedFormatError,
    ParseResult,
    Quarantined,
    drop_conflicting_duplicates,
    empty_earthquake_frame,
)
from alerts.regions import EARTH_RADIUS_KM

__all__ = ["SAME_EVENT", "SameEvent", "parse"]

SOURCE = "cenc"
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_JSONP = re.compile(rb"^\s*[A-Za-z_$][\w$.]*\s*\(|^\s*\(")


class SameEvent(BaseModel):
    """How close two solutions must be to be one event (automatic vs formal)."""

    model_config = ConfigDict(frozen=True)

    max_seconds: float = 60.0
    max_km: float = 100.0
    max_magnitude_diff: float = 1.0


SAME_EVENT = SameEvent()


def _beijing(value: str) -> str:
    text = value.strip()
    try:
        stamp = pd.Timestamp(pd.to_datetime(text, format=_TIME_FORMAT))
    except (ValueError, TypeError):
        raise ValueError(f"{value!r} is not a Beijing time 'YYYY-MM-DD HH:MM:SS'") from None
    if not 1900 <= stamp.year <= 2200:
        raise ValueError(f"year {stamp.year} outside 1900-2200")
    return text


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} is not a finite number")
    return number


class _Solution(BaseModel):
    """One catalogue solution in a shape-neutral form, validated."""

    event_id: str = Field(min_length=1)
    time: str
    updated: str | None = None
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    depth_km: float | None = Field(None, ge=-10, le=800)
    magnitude: float = Field(ge=-2, le=10)
    place: str | None = None
    status: str
    url: str | None = None

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        return _beijing(value)

    @field_validator("updated")
    @classmethod
    def _updated(cls, value: str | None) -> str | None:
        return _beijing(value) if value else None

    @field_validator("latitude", "longitude", "magnitude", "depth_km", mode="before")
    @classmethod
    def _numeric(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        return _number(value)


def parse(payload: bytes) -> ParseResult:
    """Parse either CENC shape into the earthquake frame."""
    doc = _load(payload)
    if isinstance(doc, dict) and "shuju" in doc:
        records, convert = doc["shuju"], _legacy
    elif isinstance(doc, dict) and "code" in doc:
        if doc.get("code") != 0:
            raise FeedFormatError(
                f"cenc: catalogue answered code {doc.get('code')!r}: {doc.get('msg') or doc}"
            )
        records, convert = doc.get("data"), _current
    else:
        raise FeedFormatError("cenc: neither a speedsearch ('shuju') nor a catalogs ('code') reply")
    if not isinstance(records, list):
        raise FeedFormatError("cenc: the record list is not a JSON array")

    rows: list[dict[str, Any]] = []
    quarantined: list[Quarantined] = []
    for index, raw in enumerate(records):
        try:
            if not isinstance(raw, dict):
                raise ValueError(f"record is a {type(raw).__name__}, not an object")
            solution = _Solution.model_validate(convert(raw))
        except (ValidationError, ValueError) as exc:
            key = raw.get("CATA_ID") or raw.get("uniEventId") if isinstance(raw, dict) else None
            quarantined.append(Quarantined(SOURCE, key, f"records[{index}]: {_why(exc)}", raw))
            continue
        rows.append(solution.model_dump())
    if not rows:
        return ParseResult(empty_earthquake_frame(), quarantined)
    frame, conflicting = drop_conflicting_duplicates(_frame(rows), SOURCE)
    return ParseResult(merge_same_events(frame), quarantined + conflicting)


def _load(payload: bytes) -> Any:
    body = payload.strip()
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    match = _JSONP.match(body)
    if match:
        body = body[match.end() :].rstrip().rstrip(b";").rstrip()
        if not body.endswith(b")"):
            raise FeedFormatError("cenc: JSONP reply is not closed by ')'")
        body = body[:-1]
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedFormatError(f"cenc: payload is not (JSONP-wrapped) UTF-8 JSON: {exc}") from None


def _status(event_id: str, auto_flag: Any = None, deleted: Any = None) -> str:
    if str(deleted or "").strip() in {"1", "true", "True", "Y"}:
        return "deleted"
    if str(auto_flag or "").upper() == "A" or event_id.upper().startswith("AU"):
        return "automatic"
    return "reviewed"


def _legacy(raw: dict[str, Any]) -> dict[str, Any]:
    event_id = str(raw.get("CATA_ID") or raw.get("id") or "").strip()
    did = str(raw.get("NEW_DID") or "").strip()
    return {
        "event_id": event_id,
        "time": raw.get("O_TIME"),
        "updated": raw.get("SYNC_TIME") or raw.get("SAVE_TIME") or None,
        "latitude": raw.get("EPI_LAT"),
        "longitude": raw.get("EPI_LON"),
        "depth_km": raw.get("EPI_DEPTH"),
        "magnitude": raw.get("M"),
        "place": raw.get("LOCATION_C"),
        "status": _status(event_id, raw.get("AUTO_FLAG"), raw.get("IS_DEL")),
        "url": f"https://news.ceic.ac.cn/{did}.html" if did else None,
    }


def _current(raw: dict[str, Any]) -> dict[str, Any]:
    event_id = str(raw.get("uniEventId") or "").strip()
    return {
        "event_id": event_id,
        "time": raw.get("oriTime"),
        "updated": raw.get("updateTime") or raw.get("saveTime") or None,
        "latitude": raw.get("epiLat"),
        "longitude": raw.get("epiLon"),
        "depth_km": raw.get("focDepth"),
        "magnitude": raw.get("magnitude"),
        "place": raw.get("locName"),
        "status": _status(event_id, raw.get("autoFlag"), raw.get("isDel")),
        "url": None,
    }


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows)
    frame["source"] = SOURCE
    frame["aliases"] = [[eid] for eid in frame["event_id"]]
    frame["magnitude_type"] = "M"
    frame["event_type"] = "earthquake"
    for col in ("time", "updated"):
        local = pd.to_datetime(frame[col], format=_TIME_FORMAT)
        frame[col] = local.dt.tz_localize("Asia/Shanghai").dt.tz_convert("UTC")
    for col in ("latitude", "longitude", "depth_km", "magnitude"):
        frame[col] = pd.to_numeric(frame[col]).astype("Float64")
    return frame[list(EARTHQUAKE_COLUMNS)]


def merge_same_events(frame: pd.DataFrame, rule: SameEvent = SAME_EVENT) -> pd.DataFrame:
    """Drop automatic solutions a formal one in the frame matches; keep their ids as aliases."""
    auto = np.flatnonzero((frame["status"] == "automatic").to_numpy())
    formal = np.flatnonzero((frame["status"] == "reviewed").to_numpy())
    if not len(auto) or not len(formal):
        return frame.reset_index(drop=True)
    t = frame["time"].astype("int64").to_numpy() / 1e9
    lat = np.radians(frame["latitude"].astype("float64").to_numpy())
    lon = np.radians(frame["longitude"].astype("float64").to_numpy())
    mag = frame["magnitude"].astype("float64").to_numpy()
    a, f = auto[:, None], formal[None, :]
    dt = np.abs(t[a] - t[f])
    km = _haversine_km(lat[a], lon[a], lat[f], lon[f])
    dm = np.abs(mag[a] - mag[f])
    close = (dt <= rule.max_seconds) & (km <= rule.max_km) & (dm <= rule.max_magnitude_diff)
    aliases = frame["aliases"].tolist()
    dropped = []
    for k, i in enumerate(auto):
        if close[k].any():
            best = formal[int(np.argmin(np.where(close[k], dt[k], np.inf)))]
            aliases[best] = [*aliases[best], *[x for x in aliases[i] if x not in aliases[best]]]
            dropped.append(i)
    out = frame.assign(aliases=aliases).drop(index=frame.index[dropped])
    return out.reset_index(drop=True)


def _haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    h = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
    return str(exc)
