"""Graded warning criteria as data files, validated on load.

A bad rule file fails with :class:`RuleFileError` naming the file, the rule
and the field.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts.model import Level

__all__ = ["EarthquakeRules", "NationalResponseRule", "RuleFileError", "load_earthquake_rules"]


class RuleFileError(ValueError):
    """A rule file is unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NationalResponseRule(_Strict):
    id: str = Field(min_length=1)
    max_distance_km: float = Field(ge=0)
    valid_hours: float = Field(gt=0)
    levels: dict[Level, float]

    @model_validator(mode="before")
    @classmethod
    def _parse_levels(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("levels"), dict):
            data = dict(data)
            data["levels"] = {Level.parse(k): v for k, v in data["levels"].items()}
        return data

    @model_validator(mode="after")
    def _increasing(self) -> NationalResponseRule:
        ordered = [self.levels[lv] for lv in sorted(self.levels)]
        if not self.levels or ordered != sorted(ordered) or len(set(ordered)) != len(ordered):
            raise ValueError("levels: thresholds must rise strictly from blue to red")
        return self

    def level_for(self, magnitude: float) -> Level | None:
        fired = [lv for lv, threshold in self.levels.items() if magnitude >= threshold]
        return max(fired) if fired else None


class EarthquakeRules(_Strict):
    version: str = Field(min_length=1)
    national_response: NationalResponseRule


def packaged_rule_file(name: str) -> Path:
    return Path(str(resources.files("alerts.criteria") / name))


def load_earthquake_rules(path: str | Path | None = None) -> EarthquakeRules:
    """Load and validate the earthquake rule file (the packaged one by default)."""
    file = Path(path) if path else packaged_rule_file("earthquake.yaml")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RuleFileError(f"rule file {file}: {exc}") from None
    try:
        return EarthquakeRules.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise RuleFileError(f"rule file {file}: {problems}") from None
