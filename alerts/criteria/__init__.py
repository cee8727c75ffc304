"""Graded warning criteria: rule files (YAML) validated on load, and the engines.

Rule files live in ``rules/`` beside this module (``earthquake.yaml`` ...);
an operator may copy the folder, change numbers, and point
``ALERTS_RULES_DIR`` at the copy. A bad rule file fails with
:class:`RuleFileError` naming the file, the rule and the field.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from alerts.criteria.earthquake import EarthquakeRules, NationalResponseRule

__all__ = [
    "EarthquakeRules",
    "NationalResponseRule",
    "RuleFileError",
    "load_earthquake_rules",
    "load_rule_file",
    "packaged_rules_dir",
]

M = TypeVar("M", bound=BaseModel)


class RuleFileError(ValueError):
    """A rule file is unreadable or invalid."""


def packaged_rules_dir() -> Path:
    return Path(str(resources.files("alerts.criteria") / "rules"))


def load_rule_file(path: str | Path, model: type[M]) -> M:
    """Read a YAML rule file and validate it, naming the file and the field on failure."""
    file = Path(path)
    try:
        data: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleFileError(f"rule file {file}: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            (f"{'.'.join(str(p) for p in err['loc'])}: " if err["loc"] else "")
            + str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise RuleFileError(f"rule file {file}: {problems}") from None


def load_earthquake_rules(path: str | Path | None = None) -> EarthquakeRules:
    """Load and validate the earthquake rule file (the packaged one by default)."""
    return load_rule_file(path or packaged_rules_dir() / "earthquake.yaml", EarthquakeRules)
