"""Responder instructions: the response procedure of each warning, for the departments.

For each hazard and level, what the departments do: the emergency response
the warning starts (IV ... I级应急响应, or none), who is on duty, and each
department's tasks in three lists (what to inspect, what to close or stop,
what else to do). The procedures are data: ``alerts/data/responders.yaml``,
documented there (an operator's copy: the ``responders_file`` setting). The
file is validated on load; a mistake raises
:class:`~alerts.criteria.RuleFileError` naming the file and the entry.

A level inherits the tasks of the nearest lower level given for the same
hazard and adds its own (``replace`` per department and ``inherit: false``
per level say otherwise); a hazard without a procedure at a level falls back
to the ``any`` entry (:func:`procedure_for`).

Channels with ``audience: responders`` get :func:`render_instructions`
(templates ``alerts/templates/responders/<family>.<language>.j2``) instead of
the public message; the duty desk shows :func:`procedure_json` under each
warning.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from alerts.criteria import RuleFileError, load_rule_file
from alerts.model import Action, Hazard, Level
from alerts.render import (
    FAMILIES,
    HAZARD_EN,
    Rendered,
    Renderer,
    exercise_tag,
    normalize_language,
)
from alerts.store.models import Alert, AlertVersion, Publication

__all__ = [
    "ANY",
    "DepartmentTasks",
    "Procedure",
    "Procedures",
    "Text",
    "load_procedures",
    "packaged_procedures_path",
    "procedure_for",
    "procedure_json",
    "procedures_or_packaged",
    "render_instructions",
]

log = logging.getLogger(__name__)

ANY = "any"
RESPONSES = ("IV", "III", "II", "I")  # least to most severe
TASK_LISTS = ("inspect", "close", "do")
_ID = r"^[a-z][a-z0-9_]*$"
_SEPARATOR = " | "
_LEVEL_KEYS = {
    **{lv.colour: lv for lv in Level},
    **{lv.zh: lv for lv in Level},
    **{lv.zh.rstrip("色"): lv for lv in Level},
}
_RESPONSE_TEXT: dict[str | None, tuple[str, str]] = {
    None: ("不启动应急响应（加强值守）", "No emergency response (heightened duty)"),
    **{r: (f"{r}级应急响应", f"Level {r} emergency response") for r in RESPONSES},
}


# -- the file ------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Frozen):
    """A text in Chinese and English: ``"中文 | English"`` or ``{zh: ..., en: ...}``."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            zh, sep, en = value.partition(_SEPARATOR)
            if not sep or _SEPARATOR in en or not zh.strip() or not en.strip():
                raise ValueError(
                    f"write '中文 | English' (one ' | ' between two texts) or "
                    f"{{zh: ..., en: ...}}, got {value!r}"
                )
            return {"zh": zh.strip(), "en": en.strip()}
        if isinstance(value, dict):
            return {k: v.strip() if isinstance(v, str) else v for k, v in value.items()}
        return value

    def text(self, language: str = "zh-CN") -> str:
        return self.zh if language.lower().startswith("zh") else self.en


class Tasks(_Frozen):
    """One department's tasks at one level (added to the lower level's unless ``replace``)."""

    inspect: tuple[Text, ...] = ()
    close: tuple[Text, ...] = ()
    do: tuple[Text, ...] = ()
    replace: bool = False

    @field_validator("inspect", "close", "do", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str | dict):
            raise ValueError("a list of texts (one '- 中文 | English' line each)")
        return value


class LevelEntry(_Frozen):
    """The procedure given for one hazard at one level, before inheritance."""

    response: str | None
    on_duty: Text | None = None
    inherit: bool = True
    departments: dict[str, Tasks] = Field(default_factory=dict)

    @field_validator("response", mode="before")
    @classmethod
    def _response(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return None
        text = str(value).strip().upper().removesuffix("级")
        if text not in RESPONSES:
            raise ValueError(f"response {value!r}: one of IV, III, II, I or none")
        return text

    @field_validator("departments", mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return {} if value is None else value


@dataclass(frozen=True)
class DepartmentTasks:
    """One department's tasks in a resolved procedure."""

    id: str
    name: Text
    inspect: tuple[Text, ...]
    close: tuple[Text, ...]
    do: tuple[Text, ...]


@dataclass(frozen=True)
class Procedure:
    """What the departments do for a warning of ``hazard`` at ``level`` (inheritance applied).

    ``entry`` is where it came from: the hazard's own procedures or ``any``.
    ``response`` is ``"IV"`` ... ``"I"``, or None (no emergency response).
    """

    hazard: str
    entry: str
    level: Level
    response: str | None
    on_duty: Text
    departments: tuple[DepartmentTasks, ...]
    version: str


class Procedures(_Frozen):
    """The validated responders file: departments and procedures (hazard -> level -> entry)."""

    version: str = Field(min_length=1)
    departments: dict[str, Text]
    procedures: dict[str, dict[str, LevelEntry]]
    _resolved: dict[tuple[str, Level], Procedure] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_and_resolve(self) -> Procedures:
        problems: list[str] = []
        for dept in self.departments:
            if not re.fullmatch(_ID, str(dept)) or dept == ANY:
                problems.append(f"departments.{dept}: bad id, lower case [a-z0-9_]")
        hazards = {h.value for h in Hazard}
        resolved: dict[tuple[str, Level], Procedure] = {}
        for key, levels in self.procedures.items():
            if key != ANY and key not in hazards:
                problems.append(
                    f"procedures.{key}: unknown hazard {key!r} "
                    f"(known: {', '.join(sorted(hazards))}, or any)"
                )
                continue
            parsed: dict[Level, tuple[str, LevelEntry]] = {}
            for name, entry in levels.items():
                level = _LEVEL_KEYS.get(str(name).strip().lower(), _LEVEL_KEYS.get(str(name)))
                if level is None:
                    problems.append(
                        f"procedures.{key}.{name}: unknown level {name!r} "
                        "(blue, yellow, orange, red)"
                    )
                    continue
                if level in parsed:
                    problems.append(
                        f"procedures.{key}.{name}: level {level.colour} given twice "
                        f"(also as {parsed[level][0]!r})"
                    )
                    continue
                parsed[level] = (str(name), entry)
                for dept in entry.departments:
                    if dept not in self.departments:
                        problems.append(
                            f"procedures.{key}.{name}.departments.{dept}: unknown department "
                            f"{dept!r} (known: {', '.join(self.departments)}; add it under "
                            "departments first)"
                        )
            resolved.update(self._resolve(key, parsed, problems))
        if problems:
            raise ValueError("; ".join(problems))
        self._resolved = resolved
        return self

    def _resolve(
        self, key: str, parsed: dict[Level, tuple[str, LevelEntry]], problems: list[str]
    ) -> dict[tuple[str, Level], Procedure]:
        """Each level of one hazard with the lower levels' tasks added (see the module doc)."""
        out: dict[tuple[str, Level], Procedure] = {}
        below: Procedure | None = None
        for level in sorted(parsed):
            name, entry = parsed[level]
            base = below if entry.inherit else None
            on_duty = entry.on_duty or (base.on_duty if base else None)
            if on_duty is None:
                problems.append(
                    f"procedures.{key}.{name}.on_duty: required (no lower level to inherit from)"
                )
                below = None
                continue
            lists: dict[str, dict[str, list[Text]]] = {}
            for d in base.departments if base else ():
                lists[d.id] = {n: list(getattr(d, n)) for n in TASK_LISTS}
            for dept, tasks in entry.departments.items():
                if dept not in self.departments:
                    continue  # reported above
                if tasks.replace or dept not in lists:
                    lists[dept] = {n: [] for n in TASK_LISTS}
                for n in TASK_LISTS:
                    seen = {t.zh for t in lists[dept][n]}
                    for t in getattr(tasks, n):
                        if t.zh not in seen:
                            lists[dept][n].append(t)
                            seen.add(t.zh)
            departments = tuple(
                DepartmentTasks(dept, self.departments[dept], *(tuple(got[n]) for n in TASK_LISTS))
                for dept, got in lists.items()
                if any(got[n] for n in TASK_LISTS)
            )
            below = Procedure(
                hazard=key,
                entry=key,
                level=level,
                response=entry.response,
                on_duty=on_duty,
                departments=departments,
                version=self.version,
            )
            out[(key, level)] = below
        return out

    def resolved(self) -> dict[tuple[str, Level], Procedure]:
        """Every (entry, level) given in the file, inheritance applied."""
        return dict(self._resolved)


def packaged_procedures_path() -> Path:
    return Path(str(resources.files("alerts") / "data" / "responders.yaml"))


@lru_cache(maxsize=1)
def _packaged() -> Procedures:
    return load_rule_file(packaged_procedures_path(), Procedures)


_LOADED: dict[Path, tuple[tuple[int, int], Procedures]] = {}


def load_procedures(path: str | Path | None = None) -> Procedures:
    """Load and validate a responders file (the packaged one, cached, by default).

    An operator's file is read again when it changes (its modification time or
    size), so an edit applies without a restart. Raises
    :class:`~alerts.criteria.RuleFileError` naming the file and the entry.
    """
    if path is None:
        return _packaged()
    file = Path(path).resolve()
    try:
        st = file.stat()
    except OSError as exc:
        raise RuleFileError(f"rule file {file}: {exc}") from None
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _LOADED.get(file)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    procedures = load_rule_file(file, Procedures)
    if len(_LOADED) >= 8:
        _LOADED.clear()
    _LOADED[file] = (stamp, procedures)
    return procedures


def procedures_or_packaged(path: str | Path | None = None) -> Procedures:
    """The operator's procedures, or the packaged ones (logged) when that file is broken.

    Delivery and the duty desk use this: a typo in the operator's file must not
    stop a warning from going out.
    """
    if path is None:
        return _packaged()
    try:
        return load_procedures(path)
    except RuleFileError as exc:
        log.error("responders file is invalid, using the packaged procedures: %s", exc)
        return _packaged()


# -- choosing -------------------------------------------------------------------------------


def procedure_for(
    procedures: Procedures, hazard: Hazard | str, level: Level | int
) -> Procedure | None:
    """The procedure for a warning: the hazard's own at that level, else ``any``'s, else None."""
    name = ANY if str(hazard) == ANY else Hazard(hazard).value
    lv = Level.parse(level)
    table = procedures._resolved
    for key in (name, ANY):
        found = table.get((key, lv))
        if found is not None:
            return dataclasses.replace(found, hazard=name)
    return None


def only_departments(procedure: Procedure, departments: Iterable[str]) -> Procedure:
    """``procedure`` with the tasks of ``departments`` only (a channel for some departments)."""
    wanted = set(departments)
    return dataclasses.replace(
        procedure, departments=tuple(d for d in procedure.departments if d.id in wanted)
    )


def _text(t: Text) -> dict[str, str]:
    return {"zh": t.zh, "en": t.en}


def procedure_json(procedure: Procedure) -> dict[str, Any]:
    """A procedure as JSON (the duty desk, the CLI and the message templates).

    ``{"hazard", "entry" (the hazard or "any"), "level", "colour", "response"
    ("IV".."I" or null), "response_zh", "response_en", "on_duty": {"zh", "en"},
    "departments": [{"id", "zh", "en", "inspect": [{"zh", "en"}], "close": [...],
    "do": [...]}], "version"}``.
    """
    zh, en = _RESPONSE_TEXT[procedure.response]
    return {
        "hazard": procedure.hazard,
        "entry": procedure.entry,
        "level": int(procedure.level),
        "colour": procedure.level.colour,
        "response": procedure.response,
        "response_zh": zh,
        "response_en": en,
        "on_duty": _text(procedure.on_duty),
        "departments": [
            {
                "id": d.id,
                "zh": d.name.zh,
                "en": d.name.en,
                **{n: [_text(t) for t in getattr(d, n)] for n in TASK_LISTS},
            }
            for d in procedure.departments
        ],
        "version": procedure.version,
    }


# -- the message ----------------------------------------------------------------------------


def render_instructions(
    renderer: Renderer,
    pub: Publication,
    members: Sequence[tuple[AlertVersion, Alert]],
    *,
    language: str = "zh-CN",
    family: str = "markdown",
    fallback: bool = False,
    departments: Sequence[str] | None = None,
    procedures: Procedures | None = None,
) -> Rendered:
    """The responders' message for a publication: the warning, the response, the tasks.

    Templates ``responders/<family>.<language>.j2`` (the ``short`` and ``long``
    families use the ``text`` one); an operator's ``templates_dir`` may
    override them. ``departments``: only these departments' tasks (a channel's
    ``options.departments``). ``procedures``: default the renderer's
    ``responders_file``, else the packaged one. With
    ``fallback``, a broken operator file or template is logged and the
    packaged one used instead (delivery must not stop on a typo). A
    cancellation or expiry tells the departments the response ends (终止响应).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown template family {family!r} (one of {', '.join(FAMILIES)})")
    if procedures is None:
        own = renderer.responders_file
        procedures = procedures_or_packaged(own) if fallback else load_procedures(own)
    lang = normalize_language(language)
    hz, lv, act = Hazard(pub.hazard), Level(pub.level), Action(pub.action)
    procedure = procedure_for(procedures, hz, lv)
    if procedure is not None and departments is not None:
        unknown = [d for d in departments if d not in procedures.departments]
        if unknown:
            log.error("options.departments names unknown departments %s", ", ".join(unknown))
        procedure = only_departments(procedure, departments)
    facts = dict(members[0][0].facts or {}) if members else {}
    zh = lang == "zh-CN"
    context = {
        "regions": [
            {
                "code": a.region_code,
                "name": a.region_name,
                "level": Level(v.level),
                "facts": v.facts,
            }
            for v, a in members
        ],
        "exercise": pub.status != "Actual",
        "status": pub.status,
        "identifier": pub.identifier,
        "alert_id": pub.lead_alert_id,
        "action": act,
        "over": act in (Action.CANCEL, Action.EXPIRE),
        "hazard": hz,
        "hazard_en": HAZARD_EN[hz],
        "level": lv,
        "facts": facts,
        "sent": pub.sent,
        "expires": pub.expires,
        "issuer": renderer.issuer_zh if zh else renderer.issuer_en,
        "language": lang,
        "procedure": procedure_json(procedure) if procedure is not None else None,
        "some_departments": departments is not None,
        "details_url": f"{renderer.details_url}?alert={quote(pub.lead_alert_id, safe=':,/')}",
        "tz_label": renderer.tz_label(lang),
    }
    base = family if family in ("text", "markdown") else "text"
    names = [f"responders/{base}.{lang}.j2"]
    if lang != "zh-CN":
        names.append(f"responders/{base}.zh-CN.j2")
    module = renderer.template_module(family, names, context, fallback=fallback)
    subject = str(getattr(module, "subject", "")).strip()
    body = str(module).strip() + "\n"
    if not subject:
        raise ValueError(f"responders template {names[0]} sets no subject")
    tag = exercise_tag(pub.status, lang)
    if tag:
        subject, body = tag + subject, tag + body
    return Rendered(subject, body)
