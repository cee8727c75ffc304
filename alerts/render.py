"""Message rendering: jinja2 templates per hazard, channel family and language.

Templates live in ``alerts/templates/<hazard>/<family>.<language>.j2`` (a
hazard without its own falls back to ``default/``); a configured
``templates_dir`` with the same layout is searched first, so an operator can
override any one file. Families (see :data:`CHANNEL_FAMILIES`):

- ``text``: plain text for the outbox and webhooks (the original messages);
- ``short``: one SMS-sized headline sentence and the link (SMS, Weibo, WeChat);
- ``markdown``: WeCom, DingTalk and Feishu robots and apps;
- ``long``: the e-mail text (the e-mail channel builds its HTML part from it)
  and a CAP ``description`` / ``instruction``.

Every template runs in a sandbox (:class:`jinja2.sandbox.ImmutableSandboxedEnvironment`):
no Python internals, no mutation. A missing variable is an error
(StrictUndefined), never an empty string. Text that comes from feeds goes
through the ``feed_text`` filter, which neutralises it for the template's
family (mentions, links, markup, length; see :func:`feed_text`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from alerts.channels.fit import ELLIPSIS, is_boundary
from alerts.guidance import guidance
from alerts.model import Action, Hazard, Level
from alerts.store.models import Alert, AlertVersion, Publication

__all__ = [
    "CHANNEL_FAMILIES",
    "FAMILIES",
    "FEED_TEXT_LIMIT",
    "HAZARD_EN",
    "LANGUAGES",
    "SHORT_BUDGET",
    "TIP_LIMITS",
    "exercise_tag",
    "Rendered",
    "Renderer",
    "family_for",
    "feed_text",
    "normalize_language",
    "render_publication",
]

log = logging.getLogger(__name__)

FAMILIES = ("text", "short", "markdown", "long")
LANGUAGES = ("zh-CN", "en")

# The family each channel type gets (``options.family`` on a channel overrides it).
CHANNEL_FAMILIES: dict[str, str] = {
    "sms": "short",
    "weibo": "short",
    "wechat_oa": "short",
    "wecom_bot": "markdown",
    "wecom_app": "markdown",
    "dingtalk": "markdown",
    "feishu": "markdown",
    "email": "long",
    "webhook": "text",
    "outbox": "text",
}

# At most this many publicity tips per family; a short message shows its one
# tip only when the message stays within SHORT_BUDGET characters.
TIP_LIMITS = {"text": 2, "short": 1, "markdown": 2, "long": 2}
SHORT_BUDGET = 140
FEED_TEXT_LIMIT = 200  # characters of one feed-provided text, before it is rendered

HAZARD_EN: dict[Hazard, str] = {
    Hazard.EARTHQUAKE: "Earthquake",
    Hazard.RAINSTORM: "Rainstorm",
    Hazard.BLIZZARD: "Snowstorm",
    Hazard.GALE: "Gale",
    Hazard.TYPHOON: "Typhoon",
    Hazard.COLD_WAVE: "Cold wave",
    Hazard.HEAT: "Heat",
    Hazard.FOG: "Fog",
    Hazard.HAZE: "Haze",
    Hazard.FROST: "Frost",
    Hazard.ROAD_ICING: "Road icing",
    Hazard.SANDSTORM: "Sandstorm",
    Hazard.LIGHTNING: "Lightning",
    Hazard.HAIL: "Hail",
    Hazard.DROUGHT: "Drought",
    Hazard.TSUNAMI: "Tsunami",
    Hazard.FLOOD: "Flood",
}

_EXERCISE_TAGS = {
    "zh-CN": {"Exercise": "【演练】", "Test": "【测试】"},
    "en": {"Exercise": "[EXERCISE] ", "Test": "[TEST] "},
}
_TZ_LABELS = {"Asia/Shanghai": {"zh-CN": "北京时间", "en": "Beijing time"}}


def exercise_tag(status: str, language: str) -> str:
    """The mark an exercise or test message starts with (【演练】, [TEST] ...); "" when Actual.

    Every message (warnings, response procedures, bulletins) is marked the same way.
    """
    if status == "Actual":
        return ""
    tags = _EXERCISE_TAGS.get(normalize_language(language), _EXERCISE_TAGS["zh-CN"])
    return tags.get(status, tags["Test"])


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    # Set by templates that export them (the ``long`` family): CAP description / instruction.
    description: str | None = None
    instruction: str | None = None
    # Long-form bulletins (alerts.bulletin): an HTML document for e-mail and the WeChat
    # Official Account article, and the images it shows as ``cid:NAME`` (name, PNG bytes).
    html: str | None = None
    images: tuple[tuple[str, bytes], ...] = ()


def normalize_language(language: str | None) -> str:
    """``zh-CN`` for any Chinese tag, ``en`` for any English one, else the tag as given."""
    lang = (language or "zh-CN").strip()
    low = lang.lower()
    if low.startswith("zh"):
        return "zh-CN"
    if low == "en" or low.startswith("en-") or low.startswith("en_"):
        return "en"
    return lang


# Where a markdown channel sends plain text instead: (option, its default) per type.
_PLAIN_TEXT_OPTION = {
    "wecom_bot": ("msgtype", "markdown"),
    "wecom_app": ("msgtype", "text"),
    "dingtalk": ("msgtype", "markdown"),
    "feishu": ("msg_type", "post"),
}


def family_for(channel: Any) -> str:
    """The template family of a channel (a :class:`~alerts.config.ChannelSettings` or a type).

    ``options.family`` when set; else :data:`CHANNEL_FAMILIES` by type, except
    that a markdown channel configured to send plain text (``msgtype: text``,
    also wecom_app's default; Feishu ``msg_type: text``) gets ``text``, since
    its client would show markdown literally.
    """
    if isinstance(channel, str):
        kind, options = channel, {}
    else:
        kind, options = channel.type, dict(channel.options or {})
    chosen = options.get("family")
    if chosen is not None:
        if chosen not in FAMILIES:
            raise ValueError(
                f"channels.{channel.name}.options.family: one of {', '.join(FAMILIES)}, "
                f"got {chosen!r}"
            )
        return str(chosen)
    try:
        family = CHANNEL_FAMILIES[kind]
    except KeyError:
        raise ValueError(f"no template family for channel type {kind!r}") from None
    if kind in _PLAIN_TEXT_OPTION and not isinstance(channel, str):
        option, default = _PLAIN_TEXT_OPTION[kind]
        if str(options.get(option, default)) == "text":
            return "text"
    return family


# -- feed text ---------------------------------------------------------------------------

# Invisible and direction-changing characters (they can hide or reorder text).
_INVISIBLE = re.compile(
    "[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u061c\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]"
)
# A URL with a scheme (any scheme), or one starting "www.". Boundaries are ASCII ones:
# "见http://x" and "网址x.cn的" must match too (CJK characters are word characters).
_URL = re.compile(r"(?i)(?<![a-z0-9+.\-])(?:[a-z][a-z0-9+.\-]*:/+|www\.)\S*")
# A bare host name clients may turn into a link ("evil.example", "t.cn").
_HOST = re.compile(
    r"(?i)(?<![a-z0-9\-.])(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z]{2,24}(?![a-z0-9\-])"
)
_ALL_FAMILIES = str.maketrans({"@": "＠", "【": "〔", "】": "〕"})
_FAMILY_ESCAPES = {
    # Markdown (WeCom, DingTalk, Feishu): control characters become look-alikes, since
    # these dialects do not all honour backslash escapes.
    "markdown": str.maketrans(
        {
            "\\": "＼",
            "*": "＊",
            "_": "＿",
            "~": "～",
            "`": "｀",
            "[": "［",
            "]": "］",
            "<": "＜",
            ">": "＞",
            "#": "＃",
            "|": "｜",
        }
    ),
    # Weibo turns #topic# into a link.
    "short": str.maketrans({"#": "＃"}),
}


def _defang(match: re.Match[str]) -> str:
    return match.group(0).replace("://", "[:]//").replace(".", "[.]")


GUIDANCE_LIMIT = 300  # characters of a duty officer's advice


def feed_text(value: Any, family: str = "text", limit: int = FEED_TEXT_LIMIT) -> str:
    """Text from a feed, made harmless for a message of ``family``.

    None becomes "". Whitespace runs (newlines too) become one space, invisible
    and direction-changing characters are dropped; "@" becomes "＠" (no
    ``@all`` / ``@所有人`` / ``@user`` mention); URLs and host names are broken
    ("http[:]//evil[.]example") so no client links them; 【】 become 〔〕 (no
    fake headline); in the markdown family, markdown and HTML control
    characters become full-width look-alikes (no link, emphasis or ``<font>``),
    in the short family "#" does (no Weibo topic). The result is cut to
    ``limit`` characters, ending in "…". Template syntax in the text stays
    literal: it is never evaluated.
    """
    if value is None:
        return ""
    if isinstance(value, jinja2.Undefined):
        str(value)  # a StrictUndefined raises here: a missing fact is an error
    text = str(value)[: limit * 4 + 64]  # bound the work on a hostile 10 MB string
    text = _INVISIBLE.sub("", text)
    text = " ".join(text.split())
    text = _URL.sub(_defang, text)
    text = _HOST.sub(_defang, text)
    text = text.translate(_ALL_FAMILIES)
    table = _FAMILY_ESCAPES.get(family)
    if table is not None:
        text = text.translate(table)
    if len(text) > limit:
        cut = max(limit - len(ELLIPSIS), 0)
        while cut > 0 and not is_boundary(text, cut):
            cut -= 1
        text = text[:cut].rstrip() + ELLIPSIS
    return text


# -- rendering ---------------------------------------------------------------------------


TipsSource = Callable[..., Sequence[str]]


class Renderer:
    """Renders messages; one sandboxed environment per family (its escaping filters)."""

    def __init__(
        self,
        *,
        timezone: str,
        issuer_zh: str,
        details_url: str,
        issuer_en: str = "Emergency Warning Release Centre",
        templates_dir: Path | str | None = None,
        tips: TipsSource | None = None,
        responders_file: Path | str | None = None,
    ) -> None:
        self.tz = ZoneInfo(timezone)
        self.timezone = timezone
        self.issuer_zh = issuer_zh
        self.issuer_en = issuer_en
        self.details_url = details_url.rstrip("/") + "/"
        self.templates_dir = Path(templates_dir) if templates_dir else None
        if self.templates_dir is not None and not self.templates_dir.is_dir():
            raise ValueError(f"templates_dir {self.templates_dir} is not a folder")
        self._tips_source = tips
        # the response procedures responders channels carry (alerts.responders); None: packaged
        self.responders_file = Path(responders_file) if responders_file else None
        self._calendar: Any = None
        self._envs: dict[tuple[str, bool], jinja2.Environment] = {}

    @property
    def env(self) -> jinja2.Environment:
        """The text family's environment (operator templates included)."""
        return self.environment("text")

    def environment(self, family: str, *, packaged_only: bool = False) -> jinja2.Environment:
        """The sandboxed environment of ``family``: its filters escape for that family."""
        key = (family, packaged_only)
        if key not in self._envs:
            self._envs[key] = self._make_environment(family, packaged_only)
        return self._envs[key]

    def _make_environment(self, family: str, packaged_only: bool) -> jinja2.Environment:
        loaders: list[jinja2.BaseLoader] = []
        if self.templates_dir is not None and not packaged_only:
            loaders.append(jinja2.FileSystemLoader(str(self.templates_dir)))
        loaders.append(jinja2.PackageLoader("alerts", "templates"))
        env = ImmutableSandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
                default_for_string=False,
                default=False,
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters["local"] = self._local

        def feed(value: Any, limit: int = FEED_TEXT_LIMIT) -> str:
            return feed_text(value, family, limit)

        env.filters["feed_text"] = feed
        env.globals["family"] = family
        return env

    def render(
        self,
        *,
        alert_id: str,
        version: int,
        action: str,
        hazard: str,
        level: int,
        facts: dict[str, Any],
        sent: datetime,
        expires: datetime | None,
        family: str = "text",
        language: str = "zh-CN",
        regions: list[dict[str, Any]] | None = None,
        status: str = "Actual",
        identifier: str | None = None,
        fallback: bool = False,
        guidance_zh: str | None = None,
    ) -> Rendered:
        """Render one message for a channel family and language.

        ``regions`` lists every region the message covers (each with code,
        name, level and its own facts); by default the one region of ``facts``.
        A status other than Actual marks the message as an exercise (演练).
        ``guidance_zh``: the duty officer's advice, instead of the packaged one.
        With ``fallback``, an operator template that fails is logged and the
        packaged one used instead (delivery must not stop on a template typo).
        """
        if family not in FAMILIES:
            raise ValueError(f"unknown template family {family!r} (one of {', '.join(FAMILIES)})")
        lang = normalize_language(language)
        hz, lv, act = Hazard(hazard), Level(level), Action(action)
        regions = regions or [{"code": None, "name": None, "level": lv, "facts": facts}]
        zh = lang == "zh-CN"
        context = {
            "regions": regions,
            "exercise": status != "Actual",
            "status": status,
            "identifier": identifier,
            "alert_id": alert_id,
            "version": version,
            "action": act,
            "hazard": hz,
            "hazard_en": HAZARD_EN[hz],
            "level": lv,
            "facts": facts,
            "sent": sent,
            "expires": expires,
            "issuer": self.issuer_zh if zh else self.issuer_en,
            "issuer_zh": self.issuer_zh,
            "issuer_en": self.issuer_en,
            "language": lang,
            # a duty officer's wording replaces the packaged advice (Chinese messages),
            # neutralised like feed text: an edit cannot add links, mentions or markup
            "guidance": feed_text(guidance_zh, family, GUIDANCE_LIMIT)
            if guidance_zh and zh
            else guidance(hz, lv, lang),
            "tips": self._tips(hz, lv, sent, _region_codes(regions, facts), lang, family),
            "details_url": f"{self.details_url}?alert={quote(alert_id, safe=':,/')}",
            "tz_label": self.tz_label(lang),
            "short_budget": SHORT_BUDGET,
        }
        names = [f"{hz.value}/{family}.{lang}.j2", f"default/{family}.{lang}.j2"]
        if lang != "zh-CN":
            names += [f"{hz.value}/{family}.zh-CN.j2", f"default/{family}.zh-CN.j2"]
        module = self.template_module(family, names, context, fallback=fallback)
        subject = str(getattr(module, "subject", "")).strip()
        body = str(module).strip() + "\n"
        description = _exported(module, "description")
        instruction = _exported(module, "instruction")
        tag = exercise_tag(status, lang)
        if tag:
            subject, body = tag + subject, f"{tag}{body}"
            description = tag + description if description else description
        if not subject:
            raise ValueError(f"template for {hz.value}/{family}.{lang} sets no subject")
        return Rendered(subject, body, description, instruction)

    def _tips(
        self,
        hazard: Hazard,
        level: Level,
        when: datetime,
        codes: list[str],
        language: str,
        family: str,
    ) -> list[str]:
        """Publicity tips for this warning (alerts.publicity), at most the family's share."""
        limit = TIP_LIMITS.get(family, 0)
        if limit <= 0:
            return []
        source = self._tips_source
        calendar = None
        if source is None:
            try:
                from alerts import publicity  # written separately; optional until it exists
            except ModuleNotFoundError as exc:
                if exc.name in ("alerts.publicity", "alerts"):
                    return []
                raise
            source = publicity.tips_for
            try:
                if self._calendar is None:
                    self._calendar = publicity.load_calendar()
            except Exception:  # a broken calendar costs the tips, never the warning
                log.exception("publicity calendar could not be loaded: no tips")
                return []
            calendar = self._calendar
        try:
            kwargs: dict[str, Any] = {
                "hazard": hazard,
                "level": level,
                "when": when,
                "region_codes": codes,
                "language": language,
                "limit": limit,
            }
            if calendar is not None:
                kwargs["calendar"] = calendar
            tips = source(**kwargs)
        except Exception:
            log.exception("publicity tips failed for %s %s: no tips", hazard.value, level.colour)
            return []
        return [str(t).strip() for t in tips if t and str(t).strip()][:limit]

    def template_module(
        self, family: str, names: Sequence[str], context: dict[str, Any], *, fallback: bool
    ) -> Any:
        """The first of ``names`` found, rendered as a module (``subject`` and the body).

        Operator templates come first. With ``fallback``, an operator template
        that fails is logged and the packaged one used instead: delivery must
        not stop on a template typo (warnings, procedures and bulletins alike).
        """
        try:
            return self.environment(family).select_template(names).make_module(context)
        except Exception:
            if not (fallback and self.templates_dir is not None):
                raise
            log.exception(
                "operator template %s (%s) failed; using the packaged one", names[0], family
            )
            env = self.environment(family, packaged_only=True)
            return env.select_template(names).make_module(context)

    def tz_label(self, language: str) -> str:
        """How messages name the time zone: 北京时间 / Beijing time, else the zone's name."""
        return _TZ_LABELS.get(self.timezone, {}).get(normalize_language(language), self.timezone)

    def _local(self, value: datetime | str, fmt: str = "%Y年%m月%d日%H时%M分") -> str:
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        return when.astimezone(self.tz).strftime(fmt)


def _exported(module: Any, name: str) -> str | None:
    value = getattr(module, name, None)
    if value is None or isinstance(value, jinja2.Undefined):
        return None
    return str(value).strip() or None


def _region_codes(regions: Sequence[dict[str, Any]], facts: dict[str, Any]) -> list[str]:
    """Admin codes this message is about: its regions, warned regions, the epicentre's."""
    found: list[str] = []
    for r in regions:
        found.append(str(r.get("code") or ""))
        rf = r.get("facts") or {}
        found.append(str(rf.get("warned_region_code") or ""))
    for key in ("warned_region_code", "region_adcode", "location_id"):
        found.append(str(facts.get(key) or ""))
    return [c for c in dict.fromkeys(found) if c]


def render_publication(
    renderer: Renderer,
    pub: Publication,
    members: Sequence[tuple[AlertVersion, Alert]],
    *,
    language: str = "zh-CN",
    family: str = "text",
    fallback: bool = False,
) -> Rendered:
    """A publication's message: every region it covers, the lead version's facts."""
    regions = [
        {"code": a.region_code, "name": a.region_name, "level": Level(v.level), "facts": v.facts}
        for v, a in members
    ]
    return renderer.render(
        alert_id=pub.lead_alert_id,
        version=pub.lead_version,
        action=pub.action,
        hazard=pub.hazard,
        level=pub.level,
        facts=members[0][0].facts,
        sent=pub.sent,
        expires=pub.expires,
        family=family,
        language=language,
        regions=regions,
        status=pub.status,
        identifier=pub.identifier,
        fallback=fallback,
        guidance_zh=pub.guidance_override,
    )
