"""Feed sources: one module per source, each with a pure ``parse(bytes)``.

Parsers never touch the network; :mod:`alerts.feeds.fetch` does, for all of
them. Each parser returns a :class:`~alerts.feeds.base.ParseResult`: a frame in
its kind's documented schema (``EARTHQUAKE_COLUMNS``, ``WEATHER_COLUMNS`` or
``OFFICIAL_COLUMNS`` in :mod:`alerts.feeds.base`) plus the records it
quarantined, or raises :class:`FeedFormatError` when the whole document is
unusable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from alerts.feeds import cap, cenc, gdacs, openmeteo, usgs
from alerts.feeds.base import FeedFormatError, ParseResult, Quarantined
from alerts.feeds.cenc import SameEvent

__all__ = [
    "SOURCES",
    "FeedFormatError",
    "ParseResult",
    "Quarantined",
    "Source",
    "parser_for",
    "source",
]


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # earthquake / weather / official
    parse: Callable[[bytes], ParseResult]
    same_event: SameEvent | None = None  # for sources that re-number solutions


SOURCES: dict[str, Source] = {
    "usgs": Source("usgs", "earthquake", usgs.parse),
    "cenc": Source("cenc", "earthquake", cenc.parse, cenc.SAME_EVENT),
    "cap": Source("cap", "official", cap.parse),
    "gdacs": Source("gdacs", "official", gdacs.parse),
    "open-meteo": Source("open-meteo", "weather", openmeteo.parse),
}


def source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r}; known: {', '.join(sorted(SOURCES))}") from None


def parser_for(name: str) -> Callable[[bytes], ParseResult]:
    return source(name).parse
