"""Fitting a message into a channel's size limit: one implementation for every channel.

Every channel has a limit (WeCom 2048 / 4096 UTF-8 bytes of content, DingTalk
and Feishu 20 000 / 20 KiB of JSON body, SMS 500 characters, Weibo 140 Weibo
characters, a WeChat template field 20 characters) and the same idea of what
to keep when a message is longer: its first line (the headline) and its last
line (the link, "详情：https://..."), and as much of the lines between as
fits, from the top.

:func:`fit_text` does that for any *measure*: a function from text to a size
that never shrinks when text is added (:func:`utf8_bytes`, ``len`` for
characters, :func:`weibo_length`, or the caller's own such as "bytes of the
JSON body carrying this text"). The limit is in the measure's unit. Cuts
fall, in order of preference:

1. between lines (whole lines are kept from the top);
2. inside the first line that does not fit whole, after a sentence end
   (:data:`SENTENCE_ENDS`, see :func:`sentence_ends`);
3. optionally (``clauses``), when not even one sentence fits, after a clause
   mark (，、：；,:;) with the mark replaced by "…" (see :func:`clause_cut`);
4. optionally (``hard``), as a last resort, anywhere between two grapheme
   clusters, followed by "…" (see :func:`hard_cut`).

A cut never falls inside a character (texts are ``str``, so a UTF-8 sequence
is never split), nor between a character and its combining marks, inside an
emoji ZWJ sequence, before a variation selector or skin tone, or inside a
flag (:func:`is_boundary`).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence

__all__ = [
    "CLAUSE_MARKS",
    "ELLIPSIS",
    "SENTENCE_ENDS",
    "Measure",
    "clause_cut",
    "fit_text",
    "hard_cut",
    "is_boundary",
    "sentence_cut",
    "sentence_ends",
    "utf8_bytes",
    "weibo_length",
    "weibo_units",
]

Measure = Callable[[str], int]
"""The size of a text in the unit of a limit; adding text never makes it smaller."""

ELLIPSIS = "…"
SENTENCE_ENDS = "。！？!?"
CLAUSE_MARKS = "，、：；,:;"
CLOSERS = "”’」』）)"  # a closing quote or bracket right after a sentence end belongs to it

_ZWJ = "\u200d"


# -- measures -----------------------------------------------------------------------------


def utf8_bytes(text: str) -> int:
    """Bytes of ``text`` in UTF-8."""
    return len(text.encode("utf-8"))


def weibo_units(text: str) -> int:
    """Half Weibo characters: ASCII 1, other BMP characters 2, astral characters 4."""
    return sum(1 if ord(c) < 0x80 else 2 if ord(c) <= 0xFFFF else 4 for c in text)


def weibo_length(text: str) -> int:
    """The length Weibo checks against 140: CJK 1, ASCII 1/2, outside the BMP 2, rounded up."""
    return math.ceil(weibo_units(text) / 2)


# -- where a cut may fall ----------------------------------------------------------------------


def _extends(ch: str) -> bool:
    """True for a character that belongs to the one before it (never cut in front of it)."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")  # combining marks, incl. VS1-16
        or ch == _ZWJ
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors
        or 0xE0100 <= cp <= 0xE01EF  # variation selectors supplement
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin tones
        or 0xE0020 <= cp <= 0xE007F  # tags (subdivision flags)
    )


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def is_boundary(text: str, i: int) -> bool:
    """True when ``text[:i]`` ends between two grapheme clusters.

    Not inside CR LF, not before a combining mark, ZWJ, variation selector,
    skin tone or tag character, not after a ZWJ, and not between the two
    regional indicators of a flag. (A practical subset of UAX #29.)
    """
    if i <= 0 or i >= len(text):
        return True
    before, after = text[i - 1], text[i]
    if (before == "\r" and after == "\n") or before == _ZWJ or _extends(after):
        return False
    if _regional(before) and _regional(after):
        run = 0
        while i - run - 1 >= 0 and _regional(text[i - run - 1]):
            run += 1
        return run % 2 == 0
    return True


def _ascii_mark_ends(text: str, start: int, end: int) -> bool:
    """An ASCII mark ends something only before a space, the end, or a non-ASCII character.

    So "120.0", "v1.2", "a?b=1" and "https://" are not cut after their marks.
    """
    if not text[start:end].isascii():
        return True
    return end >= len(text) or text[end].isspace() or not text[end].isascii()


def sentence_ends(text: str, ends: str = SENTENCE_ENDS) -> list[int]:
    """Offsets ``i`` (ascending) where ``text[:i]`` ends a sentence or a line.

    A sentence ends after a run of ``ends`` marks and at most one closing
    quote or bracket (:data:`CLOSERS`); a run of ASCII marks only before
    whitespace, the end of the text or a non-ASCII character. A line ends
    before each newline (the newline is not kept).
    """
    out: list[int] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "\n":
            if i > 0 and (not out or out[-1] != i):
                out.append(i)
            i += 1
        elif text[i] in ends:
            j = i
            while j < n and text[j] in ends:
                j += 1
            if j < n and text[j] in CLOSERS:
                j += 1
            if _ascii_mark_ends(text, i, j) and is_boundary(text, j):
                out.append(j)
            i = j
        else:
            i += 1
    return out


def _last(n: int, fits: Callable[[int], bool]) -> int:
    """The largest ``i`` in ``0..n-1`` with ``fits(i)``, or -1.

    ``fits`` must hold for a prefix of ``0..n-1`` (a monotone measure makes it
    so); a binary search, since a measure may be expensive (a JSON body).
    """
    lo, hi = -1, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _longest(candidates: Sequence[str], limit: int, measure: Measure) -> str:
    """The last of ``candidates`` (ordered by length) that fits, or ""."""
    i = _last(len(candidates), lambda k: measure(candidates[k]) <= limit)
    return candidates[i] if i >= 0 else ""


# -- cuts of one run of text ---------------------------------------------------------------


def sentence_cut(
    text: str, limit: int, measure: Measure = len, *, ends: str = SENTENCE_ENDS
) -> str:
    """``text`` if it fits, else its longest start that ends a sentence or line and fits, or ""."""
    if measure(text) <= limit:
        return text
    return _longest([text[:i] for i in sentence_ends(text, ends)], limit, measure)


def clause_cut(text: str, limit: int, measure: Measure = len, *, marks: str = CLAUSE_MARKS) -> str:
    """``text`` if it fits, else its longest start ending at a clause mark, the mark shown as "…".

    "" when no such start fits (or ``text`` has no clause mark).
    """
    if measure(text) <= limit:
        return text
    starts = [
        text[:i].rstrip()
        for i, ch in enumerate(text)
        if ch in marks and _ascii_mark_ends(text, i, i + 1) and text[:i].strip()
    ]
    return _longest([s + ELLIPSIS for s in starts], limit, measure)


def hard_cut(text: str, limit: int, measure: Measure = len, *, ellipsis: str = ELLIPSIS) -> str:
    """``text`` if it fits, else its longest start that fits followed by ``ellipsis``.

    The start ends between grapheme clusters (:func:`is_boundary`) and loses
    its trailing whitespace; "" when not even one cluster fits.
    """
    if measure(text) <= limit:
        return text
    starts = [text[:i].rstrip() for i in range(1, len(text)) if is_boundary(text, i)]
    return _longest([s + ellipsis for s in starts if s], limit, measure)


# -- a whole message ---------------------------------------------------------------------


def fit_text(
    text: str,
    limit: int,
    measure: Measure = len,
    *,
    mark: str | None = None,
    ends: str = SENTENCE_ENDS,
    clauses: bool = False,
    hard: bool = False,
) -> str | None:
    """``text`` cut to ``measure(text) <= limit`` keeping its first and last line, or None.

    Text that fits is returned as is (leading and trailing newlines are
    dropped only when cutting). Otherwise the first line (the headline) and
    the last line (the link) are kept whole, then as many of the lines
    between as fit, from the top; inside the first line that does not fit,
    the longest start ending a sentence (``ends``, see :func:`sentence_ends`)
    is kept too. When not even one sentence of the lines between fits:
    with ``clauses`` its leading clauses, ending in "…" (:func:`clause_cut`);
    with ``hard`` a grapheme-safe cut ending in "…" (:func:`hard_cut`).

    ``mark`` (e.g. "……"), when given, is a line of its own before the last
    line where lines were dropped; it is left out when there is no room for it.

    Impossible fits: without ``hard``, None when the first and last line
    alone do not fit, or when the text is a single line. With ``hard`` the
    text is always shortened: a single line, or a first line too long to
    stand beside the last, is cut at a sentence end or else hard (the last
    line kept whole when it fits with a part of the first); None only when
    not even one grapheme cluster and "…" fit.

    ``measure`` must never shrink when text is added; it is called O(log n)
    times per cut, so an expensive one (a JSON body) is fine.
    """
    if measure(text) <= limit:
        return text
    lines = text.strip("\n").split("\n")
    stripped = "\n".join(lines)
    if measure(stripped) <= limit:
        return stripped

    def shorten(run: str, measure: Measure) -> str | None:
        return sentence_cut(run, limit, measure, ends=ends) or hard_cut(run, limit, measure) or None

    if len(lines) < 2:
        return shorten(stripped, measure) if hard else None
    head, middle, tail = lines[0], lines[1:-1], lines[-1]
    for cut_mark in [mark, None] if mark else [None]:

        def build(kept: int, part: str = "", cut_mark: str | None = cut_mark) -> str:
            extra = [part] if part else []
            dropped = [cut_mark] if cut_mark and kept < len(middle) else []
            return "\n".join([head, *middle[:kept], *extra, *dropped, tail])

        if measure(build(0)) > limit:
            continue
        kept = _last(len(middle) + 1, lambda k: measure(build(k)) <= limit)
        part = ""
        if kept < len(middle):
            line = middle[kept]

            def in_place(s: str, kept: int = kept) -> int:
                return measure(build(kept, s))

            part = sentence_cut(line, limit, in_place, ends=ends)
            if not part and kept == 0 and clauses:
                part = clause_cut(line, limit, in_place)
            if not part and kept == 0 and hard:
                part = hard_cut(line, limit, in_place)
        return build(kept, part)
    if not hard:
        return None
    first = shorten(head, lambda s: measure(f"{s}\n{tail}"))
    return f"{first}\n{tail}" if first else shorten(stripped, measure)
