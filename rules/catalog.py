"""The tariff catalog: YAML validated with pydantic, decks loaded from referenced files.

A catalog looks like this (paths of deck files are relative to the catalog file)::

    catalog: 1
    currency: EUR
    timezone: UTC
    decks:
      intl: {file: intl.deck.csv}
    plans:
      - id: default
        default: true              # held by every subscriber without an account
        taxes: [{name: VAT, rate: "0.20"}]
        charges:
          - {service: voice, deck: intl, per: minute, increments: 60/60}
          - {service: sms, rate: "0.05", per: message}
          - {service: data, rate: "0.01", per: MB, increments: 1/1}

`load_catalog` returns a `Catalog` with every deck read, or raises `CatalogError`
listing every problem with its catalog path (``plans[0].charges[1].per``) or file:row.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from .deck import load_deck
from .errors import CatalogError, Problem
from .money import MINOR_UNITS, MoneyError, to_nanos
from .units import RATE_UNITS, parse_increments

Money = Annotated[str, Field(description="a decimal amount written as text, e.g. '0.0121'")]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name like Europe/Paris") \
            from None
    return value


def _money(value: str | int) -> str:
    if isinstance(value, float):
        raise ValueError("write amounts as quoted text ('0.10'), not as a YAML float")
    nanos = to_nanos(str(value))  # MoneyError is a ValueError: pydantic reports it
    if nanos < 0:
        raise ValueError(f"{value!r} is negative")
    return str(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Charge(_Strict):
    service: str = Field(min_length=1)
    per: str
    increments: str = "1/1"
    min_billed: int = Field(0, ge=0, description="shorter usage is billed as this long")
    connect_fee: Money = "0"

    @field_validator("per")
    @classmethod
    def _per(cls, v: str) -> str:
        if v not in RATE_UNITS:
            hint = difflib.get_close_matches(v, RATE_UNITS, n=1)
            raise ValueError(f"unknown unit {v!r}" + (f"; did you mean {hint[0]!r}?" if hint
                                                      else f"; use one of {list(RATE_UNITS)}"))
        return v

    @field_validator("increments")
    @classmethod
    def _increments(cls, v: str) -> str:
        parse_increments(v)
        return str(v)

    _fee = field_validator("connect_fee", mode="before")(lambda v: _money(v))

    @property
    def unit_size(self) -> int:
        return RATE_UNITS[self.per][1]


class DeckCharge(_Charge):
    """Price by longest prefix of the destination, from a deck."""

    deck: str


class FlatCharge(_Charge):
    """One price for every destination of the service."""

    rate: Money
    destination: str = Field("", description="the name shown on bill lines")

    _rate = field_validator("rate", mode="before")(lambda v: _money(v))


def _charge_kind(value) -> str:
    if isinstance(value, dict):
        return "deck" if "deck" in value else "flat"
    return "deck" if isinstance(value, DeckCharge) else "flat"


Charge = Annotated[
    Annotated[DeckCharge, Tag("deck")] | Annotated[FlatCharge, Tag("flat")],
    Discriminator(_charge_kind),
]


class Tax(_Strict):
    name: str = Field(min_length=1)
    rate: Money

    _rate = field_validator("rate", mode="before")(lambda v: _money(v))


class Plan(_Strict):
    id: str = Field(min_length=1)
    default: bool = False
    timezone: str | None = None
    taxes: list[Tax] = []
    charges: list[Charge] = Field(min_length=1)

    _tz = field_validator("timezone")(lambda v: v if v is None else _zone(v))


class DeckRef(_Strict):
    file: str


class Rounding(_Strict):
    line: Literal["half_up", "half_even", "up", "down"] = "half_up"
    tax: Literal["half_up", "half_even", "up", "down"] = "half_up"


class CatalogModel(_Strict):
    catalog: Literal[1] = 1
    name: str = ""
    currency: str
    timezone: str = "UTC"
    rounding: Rounding = Rounding()
    decks: dict[str, DeckRef] = {}
    plans: list[Plan] = Field(min_length=1)

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if v not in MINOR_UNITS:
            hint = difflib.get_close_matches(v.upper(), MINOR_UNITS, n=1)
            raise ValueError(f"unknown currency {v!r}" + (f"; did you mean {hint[0]!r}?"
                                                           if hint else ""))
        return v

    _tz = field_validator("timezone")(lambda v: _zone(v))


@dataclass(frozen=True)
class Catalog:
    """A validated catalog with its decks loaded; `digest` identifies this exact version."""

    model: CatalogModel
    decks: dict[str, pl.DataFrame]
    path: Path
    digest: str

    @property
    def currency(self) -> str:
        return self.model.currency

    def plan(self, plan_id: str) -> Plan:
        return next(p for p in self.model.plans if p.id == plan_id)

    @property
    def default_plan(self) -> Plan | None:
        return next((p for p in self.model.plans if p.default), None)

    def plan_zone(self, plan: Plan) -> str:
        return plan.timezone or self.model.timezone


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("deck", "flat") and out.endswith("]"):
            continue  # the union's tag is not part of the user's path
        else:
            out += ("." if out else "") + str(part)
    return out or "(top)"


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _semantic_problems(raw: dict) -> list[Problem]:
    """Cross-field checks, on the raw mapping so that they run even when some fields fail
    validation (those are reported by pydantic; here malformed parts are skipped)."""
    problems = []
    decks = raw.get("decks") if isinstance(raw.get("decks"), dict) else {}
    plans = [p if isinstance(p, dict) else {} for p in _list(raw.get("plans"))]
    defaults = [i for i, p in enumerate(plans) if p.get("default") is True]
    if len(defaults) > 1:
        problems.append(Problem("plans", f"{len(defaults)} plans say default: true "
                                f"({', '.join(f'plans[{i}]' for i in defaults)}); keep one"))
    seen: dict[str, int] = {}
    for i, plan in enumerate(plans):
        plan_id = plan.get("id")
        if isinstance(plan_id, str):
            if plan_id in seen:
                problems.append(
                    Problem(f"plans[{i}].id", f"{plan_id!r} is also plans[{seen[plan_id]}]")
                )
            seen.setdefault(plan_id, i)
        services: dict[str, int] = {}
        for j, charge in enumerate(_list(plan.get("charges"))):
            if not isinstance(charge, dict):
                continue
            where = f"plans[{i}].charges[{j}]"
            service = charge.get("service")
            if isinstance(service, str):
                if service in services:
                    problems.append(Problem(f"{where}.service", f"{service!r} is already "
                                            f"priced by charges[{services[service]}]"))
                services.setdefault(service, j)
            kind = RATE_UNITS.get(charge.get("per"), ("any",))[0]
            if kind not in ("any", service) and service in ("voice", "sms", "data"):
                problems.append(Problem(f"{where}.per", f"{charge['per']!r} measures {kind}, "
                                        f"not {service}"))
            deck = charge.get("deck")
            if isinstance(deck, str) and deck not in decks:
                hint = difflib.get_close_matches(deck, list(decks), n=1)
                problems.append(Problem(f"{where}.deck", f"no deck {deck!r} in `decks`"
                                        + (f"; did you mean {hint[0]!r}?" if hint else "")))
    return problems


def load_catalog(path: str | Path) -> Catalog:
    """Read, validate and load a catalog; raise CatalogError listing every problem."""
    path = Path(path)
    try:
        raw_text = path.read_bytes()
        raw = yaml.safe_load(raw_text)
    except OSError as exc:
        raise CatalogError(str(path), [Problem(str(path), f"cannot read: {exc.strerror}")]) \
            from None
    except yaml.YAMLError as exc:
        raise CatalogError(str(path), [Problem(str(path), f"not valid YAML: {exc}")]) from None
    if not isinstance(raw, dict):
        raise CatalogError(str(path), [Problem("(top)", "a catalog is a YAML mapping")])
    problems: list[Problem] = []
    model = None
    try:
        model = CatalogModel.model_validate(raw)
    except ValidationError as exc:
        problems += [Problem(_loc(e["loc"]), e["msg"].removeprefix("Value error, "))
                     for e in exc.errors()]
    problems += _semantic_problems(raw)
    digest = hashlib.sha256(raw_text)
    decks = {}
    raw_decks = raw.get("decks") if isinstance(raw.get("decks"), dict) else {}
    for name, ref in raw_decks.items():
        if not (isinstance(ref, dict) and isinstance(ref.get("file"), str)):
            continue  # reported by validation
        deck_path = path.parent / ref["file"]
        if not deck_path.is_file():
            problems.append(Problem(f"decks.{name}.file", f"no such file {deck_path}"))
            continue
        decks[name] = load_deck(deck_path, f"decks.{name}.file", problems)
        digest.update(deck_path.read_bytes())
    if problems or model is None:
        raise CatalogError(str(path), problems)
    return Catalog(model=model, decks=decks, path=path, digest=digest.hexdigest()[:16])


__all__ = ["Catalog", "CatalogModel", "DeckCharge", "FlatCharge", "MoneyError", "Plan", "Tax",
           "load_catalog"]
