"""Graded warning criteria: rule files (YAML) validated on load, and the engines.

Rule files live in ``rules/`` beside this module (``earthquake.yaml`` ...);
an operator may copy the folder, change numbers, and point
``ALERTS_RULES_DIR`` at the copy. A bad rule file fails with
:class:`RuleFileError` naming the file, the rule and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from alerts.criteria.earthquake import EarthquakeRules, NationalResponseRule
from alerts.criteria.official import OfficialRules
from alerts.criteria.weather import WeatherRules

__all__ = [
    "EarthquakeRules",
    "NationalResponseRule",
    "OfficialRules",
    "RuleFileError",
    "RuleSet",
    "WeatherRules",
    "load_rules",
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


@dataclass(frozen=True)
class RuleSet:
    """Every rule file, validated: what one grading cycle applies."""

    weather: WeatherRules
    earthquake: EarthquakeRules
    official: OfficialRules

    @property
    def versions(self) -> dict[str, str]:
        return {
            "weather": self.weather.version,
            "earthquake": self.earthquake.version,
            "official": self.official.version,
        }


def load_rules(rules_dir: str | Path | None = None) -> RuleSet:
    """Load the rule files from ``rules_dir``; a file missing there comes from the package."""

    def pick(name: str) -> Path:
        if rules_dir is not None:
            candidate = Path(rules_dir) / name
            if candidate.exists():
                return candidate
        return packaged_rules_dir() / name

    if rules_dir is not None and not Path(rules_dir).is_dir():
        raise RuleFileError(f"rules folder {rules_dir} does not exist")
    return RuleSet(
        weather=load_rule_file(pick("weather.yaml"), WeatherRules),
        earthquake=load_rule_file(pick("earthquake.yaml"), EarthquakeRules),
        official=load_rule_file(pick("official.yaml"), OfficialRules),
    )
