"""The shared fitter (alerts.channels.fit): one way to cut a message to a channel's limit."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.channels.fit import (
    ELLIPSIS,
    clause_cut,
    fit_text,
    hard_cut,
    is_boundary,
    sentence_cut,
    sentence_ends,
    utf8_bytes,
    weibo_length,
)

Measure = Callable[[str], int]

HEAD = "【暴雨红色预警】北京市"
LINK = "详情：https://alerts.example.cn/a/1"
MIDDLE = ["第一句。第二句！第三句？", "防御指南：注意防范。", "最后一行没有句号"]
BODY = "\n".join([HEAD, *MIDDLE, LINK])

MEASURES: dict[str, Measure] = {"bytes": utf8_bytes, "chars": len, "weibo": weibo_length}


def json_bytes(text: str) -> int:
    """A caller's measure: the size of the JSON body carrying the text."""
    return len(json.dumps({"msgtype": "text", "text": {"content": text}}).encode())


# -- measures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "nbytes", "nchars", "weibo"),
    [
        ("", 0, 0, 0),
        ("a", 1, 1, 1),
        ("ab", 2, 2, 1),
        ("暴雨", 6, 2, 2),
        ("暴雨a", 7, 3, 3),
        ("é", 2, 1, 1),
        ("e\u0301", 3, 2, 2),  # e + combining acute: the combining mark is not ASCII
        ("😀", 4, 1, 2),  # outside the BMP: two UTF-16 units on Weibo
        ("👨\u200d👩", 11, 3, 5),
    ],
)
def test_measures(text: str, nbytes: int, nchars: int, weibo: int) -> None:
    assert (utf8_bytes(text), len(text), weibo_length(text)) == (nbytes, nchars, weibo)


# -- at, under and over the limit --------------------------------------------------------------


@pytest.mark.parametrize("name", MEASURES)
@pytest.mark.parametrize("mark", [None, "…", "……"])
@pytest.mark.parametrize("delta", [0, 1, 100])
def test_text_at_or_under_the_limit_is_returned_unchanged(
    name: str, mark: str | None, delta: int
) -> None:
    measure = MEASURES[name]
    assert fit_text(BODY, measure(BODY) + delta, measure, mark=mark) == BODY


@pytest.mark.parametrize("name", MEASURES)
@pytest.mark.parametrize("mark", [None, "…", "……"])
@pytest.mark.parametrize("over", [1, 3, 8, 20])
def test_text_over_the_limit_is_cut_keeping_first_and_last_line(
    name: str, mark: str | None, over: int
) -> None:
    measure = MEASURES[name]
    limit = measure(BODY) - over
    out = fit_text(BODY, limit, measure, mark=mark)
    assert out is not None and out != BODY
    assert measure(out) <= limit
    lines = out.split("\n")
    assert lines[0] == HEAD and lines[-1] == LINK
    for line in lines[1:-1]:  # whole lines, a sentence start of one, or the mark
        assert line == mark or any(m.startswith(line) for m in MIDDLE)
        assert line == mark or line in MIDDLE or line.endswith(("。", "！", "？"))


def test_as_many_whole_lines_as_fit_from_the_top_then_the_mark() -> None:
    body = "\n".join([HEAD, *[f"第{i}行。" for i in range(50)], LINK])
    limit = 300
    out = fit_text(body, limit, utf8_bytes, mark="……")
    assert out is not None
    lines = out.split("\n")
    assert lines[-2] == "……"
    kept = lines[1:-2]
    assert kept == [f"第{i}行。" for i in range(len(kept))]
    one_more = "\n".join([HEAD, *kept, f"第{len(kept)}行。", "……", LINK])
    assert utf8_bytes(one_more) > limit


def test_the_mark_is_left_out_when_only_first_and_last_line_fit() -> None:
    limit = utf8_bytes(f"{HEAD}\n{LINK}")
    assert fit_text(BODY, limit, utf8_bytes, mark="……") == f"{HEAD}\n{LINK}"


def test_a_callers_measure_the_json_body() -> None:
    body = "\n".join([HEAD, *["“引号”与\\反斜杠。" * 3] * 40, LINK])
    out = fit_text(body, 1500, json_bytes, mark="…")
    assert out is not None and json_bytes(out) <= 1500 < json_bytes(body)
    assert out.startswith(HEAD + "\n") and out.endswith("\n…\n" + LINK)


def test_leading_and_trailing_newlines_go_only_when_cutting() -> None:
    assert fit_text(f"\n{BODY}\n\n", 1000, len) == f"\n{BODY}\n\n"
    assert fit_text(f"\n{BODY}\n\n", len(BODY), len) == BODY


# -- sentence boundaries -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ends", "expected"),
    [
        ("第一句。第二句！第三句？", None, [4, 8, 12]),
        ("他说：“走。”然后", None, [7]),  # a closing quote stays with its sentence
        ("真的吗？！好", None, [5]),  # a run of marks is one end
        ("降雨量120.0毫米。", None, [11]),  # no "." end without ends=".": and never in 120.0
        ("Stay indoors. Now!", "!?.", [13, 18]),
        ("v1.2 is out", "!?.", []),  # an ASCII mark only before a space or the end
        ("https://x.cn/?a=1 ok", None, []),
        ("好!下一句", None, [2]),  # ... or before a non-ASCII character
        ("一行\n两行。\n", None, [2, 6]),  # a line end is an end too (before the newline)
    ],
)
def test_sentence_ends(text: str, ends: str | None, expected: list[int]) -> None:
    got = sentence_ends(text) if ends is None else sentence_ends(text, ends)
    assert got == expected


def test_sentence_boundaries_are_preferred_inside_a_line() -> None:
    body = f"{HEAD}\n第一句话。第二句话！第三句话？第四句没有结尾\n{LINK}"
    want = f"{HEAD}\n第一句话。第二句话！\n……\n{LINK}"
    assert fit_text(body, utf8_bytes(want) + 5, utf8_bytes, mark="……") == want
    assert sentence_cut("第一句。第二句没有结尾", 6) == "第一句。"
    assert sentence_cut("没有结尾的一句", 5) == ""
    assert sentence_cut("短。", 5) == "短。"


def test_clauses_when_not_even_one_sentence_fits() -> None:
    body = f"{HEAD}\n预警：预计今天下午，北京市降雨量可达100毫米。\n{LINK}"
    limit = len(f"{HEAD}\n预警：预计今天下午…\n{LINK}")
    assert fit_text(body, limit, len, clauses=True) == f"{HEAD}\n预警：预计今天下午…\n{LINK}"
    assert fit_text(body, limit, len) == f"{HEAD}\n{LINK}"  # without clauses: dropped
    assert clause_cut("甲，乙，丙", 3) == "甲…"
    assert clause_cut("没有逗号", 3) == ""
    assert clause_cut("see https://x.cn/a", 10) == ""  # an ASCII ":" only before a space


# -- never inside a character -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("短文本", 20, "短文本"),
        ("一二三四五六七八九十" * 2 + "多", 20, "一二三四五六七八九十一二三四五六七八九…"),
        ("a" * 18 + "e\u0301" + "zz", 20, "a" * 18 + "…"),  # é stays with its accent
        ("a" * 17 + "👨\u200d👩" + "zz", 20, "a" * 17 + "…"),  # a ZWJ sequence is one
        ("a" * 18 + "👍🏽" + "zz", 20, "a" * 18 + "…"),  # a skin tone stays
        ("a" * 18 + "❤️" + "zz", 20, "a" * 18 + "…"),  # so does a variation selector
        ("a" * 17 + "🇨🇳🇯🇵", 20, "a" * 17 + "🇨🇳…"),  # flags are pairs
        ("a" * 18 + "1\ufe0f\u20e3" + "z", 20, "a" * 18 + "…"),  # a keycap
        ("ab   cd", 4, "ab…"),  # no trailing space before the ellipsis
        ("一二三", 1, ""),  # not even one character and "…": nothing
    ],
)
def test_hard_cut_is_grapheme_safe(text: str, limit: int, expected: str) -> None:
    assert hard_cut(text, limit) == expected


@pytest.mark.parametrize(
    ("cluster", "units"),
    [("暴", 3), ("e\u0301", 3), ("👨\u200d👩\u200d👧", 18), ("🇨🇳", 8), ("👍🏽", 8)],
)
@pytest.mark.parametrize("limit", range(1, 40))
def test_hard_cut_by_bytes_never_splits_a_cluster(cluster: str, units: int, limit: int) -> None:
    assert utf8_bytes(cluster) == units
    out = hard_cut(cluster * 5, limit, utf8_bytes)
    assert utf8_bytes(out) <= limit
    whole = out.removesuffix("…")
    assert out in ("", cluster * 5) or whole == cluster * (len(whole) // len(cluster))


def test_is_boundary() -> None:
    text = "ae\u0301👨\u200d👩🇨🇳🇯🇵\r\nz"
    cuts = [i for i in range(len(text) + 1) if is_boundary(text, i)]
    assert [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)] == [
        "a",
        "e\u0301",
        "👨\u200d👩",
        "🇨🇳",
        "🇯🇵",
        "\r\n",
        "z",
    ]


# -- impossible fits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        ("警" * 100, 50),  # one line: nothing to keep around
        (f"{'警' * 100}\n{LINK}", 60),  # the headline alone is too long
        (f"{HEAD}\n中\n{'链' * 100}", 60),  # the last line alone is too long
    ],
    ids=["one-line", "huge-headline", "huge-last-line"],
)
def test_impossible_fits_are_none_unless_hard(body: str, limit: int) -> None:
    assert fit_text(body, limit, len, mark="…") is None
    hard = fit_text(body, limit, len, hard=True)
    assert hard is not None and 0 < len(hard) <= limit
    assert hard.startswith((HEAD, "警"))


def test_hard_keeps_the_link_and_cuts_the_headline_when_both_fit() -> None:
    body = f"{'警' * 100}\n{LINK}"
    out = fit_text(body, 60, len, hard=True)
    assert out is not None and out.endswith("…\n" + LINK) and len(out) <= 60


def test_hard_with_no_room_for_anything_is_none() -> None:
    assert fit_text("警" * 10, 0, len, hard=True) is None
    assert hard_cut("警" * 10, 1) == ""


# -- properties ------------------------------------------------------------------------------

CLUSTERS = [
    *"暴雨预警发布中心请注意防范山洪泥石流",
    *"abcXYZ019 -/",
    *"。！？!?，、：",
    "e\u0301",
    "👨\u200d👩\u200d👧",
    "👍🏽",
    "🇨🇳",
    "1\ufe0f\u20e3",
    "❤️",
    "😀",
]
NOT_FIRST = {" ", "。", "！", "？", "!", "?", "，", "、", "："}

cluster_lists = st.lists(st.sampled_from(CLUSTERS), max_size=25)
edge_lines = st.lists(st.sampled_from(CLUSTERS), min_size=1, max_size=25).filter(
    lambda cs: cs[0] not in NOT_FIRST and cs[-1] != " "
)


def boundaries(clusters: list[str]) -> list[int]:
    out, at = [0], 0
    for c in clusters:
        at += len(c)
        out.append(at)
    return out


def is_cut_of(line: str, clusters: list[str]) -> bool:
    """``line`` is a start of the joined clusters ending between two of them (maybe + "…")."""
    original = "".join(clusters)
    for b in boundaries(clusters):
        start = original[:b]
        if line in (start, start.rstrip(), start.rstrip() + ELLIPSIS):
            return True
    return False


@settings(max_examples=400, deadline=None)
@given(
    head=edge_lines,
    middle=st.lists(cluster_lists, max_size=6),
    tail=edge_lines,
    measure_name=st.sampled_from(sorted(MEASURES)),
    limit=st.integers(0, 250),
    mark=st.sampled_from([None, "…", "……"]),
    clauses=st.booleans(),
    hard=st.booleans(),
)
def test_fit_properties(
    head: list[str],
    middle: list[list[str]],
    tail: list[str],
    measure_name: str,
    limit: int,
    mark: str | None,
    clauses: bool,
    hard: bool,
) -> None:
    measure = MEASURES[measure_name]
    lines = [head, *middle, tail]
    first, last = "".join(head), "".join(tail)
    text = "\n".join("".join(cs) for cs in lines)
    out = fit_text(text, limit, measure, mark=mark, clauses=clauses, hard=hard)

    if measure(text) <= limit:
        assert out == text
        return
    possible = measure(f"{first}\n{last}") <= limit
    if possible or (hard and measure(head[0] + ELLIPSIS) <= limit):
        assert out is not None
    if out is None:
        assert not possible
        return
    assert measure(out) <= limit
    got = out.split("\n")
    # Every line is an original line or a start of one, cut between grapheme clusters.
    for line in got:
        assert line == mark or any(is_cut_of(line, cs) for cs in lines), line
    # The headline (or a cut of it) first; the link last whenever it fits beside a headline.
    assert is_cut_of(got[0], head)
    if possible:
        assert got[0] == first and got[-1] == last and len(got) >= 2
    elif hard and measure(head[0] + ELLIPSIS + "\n" + last) <= limit:
        assert got[-1] == last


@settings(max_examples=300, deadline=None)
@given(
    clusters=st.lists(st.sampled_from(CLUSTERS), max_size=40),
    measure_name=st.sampled_from(sorted(MEASURES)),
    limit=st.integers(0, 80),
)
def test_hard_and_sentence_cuts_fit_and_are_grapheme_safe(
    clusters: list[str], measure_name: str, limit: int
) -> None:
    measure = MEASURES[measure_name]
    text = "".join(clusters)
    for out in (hard_cut(text, limit, measure), sentence_cut(text, limit, measure)):
        assert out == "" or measure(out) <= limit
        assert is_cut_of(out, clusters)
    if measure(text) > limit and sentence_cut(text, limit, measure):
        assert sentence_cut(text, limit, measure).endswith(tuple("。！？!?"))
