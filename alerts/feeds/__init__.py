"""Feed sources: one module per source, each with a pure ``parse(bytes)``.

Parsers never touch the network; :mod:`alerts.feeds.fetch` does, for all of
them. Each parser returns a :class:`~alerts.feeds.base.ParseResult`: a frame in
the source kind's documented schema plus the records it quarantined.
"""

from __future__ import annotations

from collections.abc import Callable

from alerts.feeds import usgs
from alerts.feeds.base import FeedFormatError, ParseResult, Quarantined

__all__ = ["PARSERS", "FeedFormatError", "ParseResult", "Quarantined", "parser_for"]

PARSERS: dict[str, Callable[[bytes], ParseResult]] = {
    "usgs": usgs.parse,
}


def parser_for(source: str) -> Callable[[bytes], ParseResult]:
    try:
        return PARSERS[source]
    except KeyError:
        raise ValueError(
            f"unknown source {source!r}; known: {', '.join(sorted(PARSERS))}"
        ) from None
