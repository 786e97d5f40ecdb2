"""The column map that lets any CSV become usage (``--column-map MAP.yaml``).

Example, for a mobile metadata export where only outgoing calls and texts are billed::

    has_header: true
    columns:                 # usage field: source column
      started_at: datetime
      destination: correspondent_id
      quantity: call_duration
    started_at_format: "%Y-%m-%d %H:%M:%S"
    service:
      column: interaction
      values: {call: voice, text: sms}
    quantity_default: {sms: 1}
    billable:                # every condition must hold, otherwise unrated `not_billable`
      - {column: direction, in: [out]}
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import OptionsError


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    column: str
    in_: list[str] = Field(alias="in", min_length=1)


class ServiceRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str | None = None
    values: dict[str, str] = {}
    constant: str | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.column is None) == (self.constant is None):
            raise ValueError("give either `column` (with `values`) or `constant`")
        return self


class ColumnMap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    has_header: bool = True
    delimiter: str = Field(",", min_length=1, max_length=1)
    names: list[str] | None = None  # column names when the file has no header
    columns: dict[str, str]
    started_at_format: str | None = None
    timezone: str | None = None
    service: ServiceRule = ServiceRule(constant="voice")
    quantity_default: dict[str, int] = {}
    billable: list[Condition] = []

    @model_validator(mode="after")
    def _fields(self):
        known = {"started_at", "destination", "origin", "quantity", "subscriber_id", "event_id",
                 "tenant", "category"}
        unknown = set(self.columns) - known
        if unknown:
            raise ValueError(f"unknown usage fields {sorted(unknown)}; known: {sorted(known)}")
        if "started_at" not in self.columns:
            raise ValueError("`columns.started_at` is required")
        if not self.has_header and not self.names:
            raise ValueError("a file without header needs `names`, the column names in order")
        return self


def load_column_map(path: str | Path) -> ColumnMap:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise OptionsError(f"{path}: cannot read the column map: {exc}") from None
    try:
        return ColumnMap.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise OptionsError(f"{path}: {problems}") from None
