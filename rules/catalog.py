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
import functools
import hashlib
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from ingest.schema import SERVICES

from .deck import load_deck
from .errors import CatalogError, Problem
from .money import MINOR_UNITS, NANOS, MoneyError, minor_units, to_nanos
from .units import RATE_UNITS, parse_increments

Money = Annotated[str, Field(description="a decimal amount written as text, e.g. '0.0121'")]


def zone_name(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name like Europe/Paris") \
            from None
    return value


def currency_code(value: str) -> str:
    """An ISO 4217 code ratecycle knows (it must know the currency's minor unit)."""
    if value not in MINOR_UNITS:
        hint = difflib.get_close_matches(str(value).upper(), MINOR_UNITS, n=1)
        raise ValueError(f"unknown currency {value!r}" + (f"; did you mean {hint[0]!r}?"
                                                           if hint else ""))
    return value


def _money(value: str | int) -> str:
    if isinstance(value, float):
        raise ValueError(f"write amounts as quoted text ('{value!r}'), not as a YAML float")
    nanos = to_nanos(str(value))  # MoneyError is a ValueError: pydantic reports it
    if nanos < 0:
        raise ValueError(f"{value!r} is negative")
    return str(value)


def tax_rate(value: str | int) -> str:
    """A tax rate: a decimal fraction 0 <= rate < 1 written as text, '0.20' for 20%."""
    hint = "a tax rate is a fraction: write 0.20 for 20%"
    if isinstance(value, float):
        raise ValueError(f"write the tax rate as quoted text ('{value!r}'), not as a YAML "
                         f"float; {hint}")
    try:
        nanos = to_nanos(value if isinstance(value, int) else str(value))
    except MoneyError:
        raise ValueError(f"tax rate {value!r} is not a decimal number; {hint}") from None
    if not 0 <= nanos < NANOS:
        raise ValueError(f"tax rate {value!r} is not between 0 and 1; {hint}")
    return str(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _unit_size(per: str | int) -> int:
    return per if isinstance(per, int) else RATE_UNITS[per][1]


def _per(value: str | int) -> str | int:
    """A rate unit: a name from RATE_UNITS, or a positive count of quantity units."""
    if isinstance(value, bool):
        raise ValueError(f"unknown unit {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"a unit of {value} quantity units must be at least 1")
        return value
    if value not in RATE_UNITS:
        hint = difflib.get_close_matches(value, RATE_UNITS, n=1)
        raise ValueError(f"unknown unit {value!r}" + (f"; did you mean {hint[0]!r}?" if hint
                                                      else f"; use one of {list(RATE_UNITS)}"))
    return value


Per = Annotated[str | int, AfterValidator(_per)]
MoneyText = Annotated[Money, BeforeValidator(_money)]
Method = Literal["half_up", "half_even", "up", "down"]


class TotalRounding(_Strict):
    """Rounding of an event's total (CGRateS: the destination rate's method and decimals)."""

    method: Method
    decimals: int = Field(ge=0, le=9)


class Slot(_Strict):
    """From offset `from` (quantity units into the event) on: `rate` per `per`, billed in
    blocks of `increment` units."""

    from_: int = Field(0, alias="from", ge=0)
    rate: MoneyText
    per: Per
    increment: int = Field(1, ge=1)

    @property
    def unit_size(self) -> int:
        return _unit_size(self.per)


class Rate(_Strict):
    """A named rate: slots within one event, connect fee, minimum, free threshold, cap."""

    connect_fee: MoneyText = "0"
    slots: list[Slot] = Field(min_length=1)
    min_billed: int = Field(0, ge=0, description="shorter usage is billed as this long")
    free_below: int = Field(0, ge=0, description="shorter usage costs nothing")
    max_cost: MoneyText | None = None
    max_cost_policy: Literal["cap", "flag"] = "cap"
    total_rounding: TotalRounding | None = None

    @model_validator(mode="after")
    def _slots_in_order(self):
        starts = [s.from_ for s in self.slots]
        if starts[0] != 0:
            raise ValueError("the first slot must start at from: 0")
        for a, b in zip(starts, starts[1:], strict=False):
            if b <= a:
                raise ValueError(f"slots overlap: a slot starting at {b} follows one starting "
                                 f"at {a}; give each slot a larger `from` than the one before")
        return self


_WEEKDAY_NAMES = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}


def _weekday(value) -> int:
    if isinstance(value, str) and value[:3].lower() in _WEEKDAY_NAMES:
        return _WEEKDAY_NAMES[value[:3].lower()]
    if isinstance(value, int) and 0 <= value <= 7:
        return value or 7  # 0 is Sunday too, as in cron and CGRateS
    raise ValueError(f"weekday {value!r}: use 1-7 (Monday=1) or mon..sun")


def _clock(value) -> int:
    """'HH:MM[:SS]' -> seconds of the day; '24:00' is the end of the day."""
    if isinstance(value, int):  # YAML reads 08:00 as sexagesimal minutes
        value = f"{value // 60:02d}:{value % 60:02d}"
    parts = str(value).split(":")
    try:
        h, m, s = (int(p) for p in (parts + ["0", "0"])[:3])
    except ValueError:
        raise ValueError(f"time {value!r} must look like 08:00 or 08:00:00") from None
    seconds = h * 3600 + m * 60 + s
    if len(parts) > 3 or not (0 <= m < 60 and 0 <= s < 60 and 0 <= seconds <= 86400):
        raise ValueError(f"time {value!r} must be between 00:00 and 24:00")
    return seconds


class Band(_Strict):
    """When a band is in force, in the tariff's zone: every listed condition holds, and the
    local time of day is in [from, to). Unlisted conditions hold always."""

    weekdays: list[Annotated[int, BeforeValidator(_weekday)]] | None = None
    months: list[Annotated[int, Field(ge=1, le=12)]] | None = None
    month_days: list[Annotated[int, Field(ge=1, le=31)]] | None = None
    years: list[int] | None = None
    dates: list[date] | None = None
    holidays: bool = False
    from_: Annotated[int, BeforeValidator(_clock)] = Field(0, alias="from")
    to: Annotated[int, BeforeValidator(_clock)] = 86400
    weight: int = 0

    @model_validator(mode="after")
    def _interval(self):
        if self.to <= self.from_:
            raise ValueError("`to` must be later than `from` (a band is [from, to) within a day; "
                             "split a band that crosses midnight in two)")
        return self


class _Charge(_Strict):
    service: str = Field(min_length=1)
    per: Per = "unit"
    increments: str = "1/1"
    min_billed: int = Field(0, ge=0, description="shorter usage is billed as this long")
    free_below: int = Field(0, ge=0, description="shorter usage costs nothing, uses no bundle")
    connect_fee: MoneyText = "0"
    max_cost: MoneyText | None = None
    max_cost_policy: Literal["cap", "flag"] = "cap"
    min_per_period: MoneyText | None = Field(
        None, description="a subscriber's usage of this charge in a billing period costs at "
        "least this much (a `period_minimum` line tops it up)")
    max_per_period: MoneyText | None = Field(
        None, description="... and at most this much (a `period_cap` line takes off the "
        "rest)")
    split: bool | None = Field(None, description="split at band and version changes "
                               "(default: voice yes, other services priced at their start)")

    @field_validator("service")
    @classmethod
    def _service(cls, v: str) -> str:
        # Usage services are lower case; 'SMS' would be a named service no event has.
        if v != v.lower() and v.lower() in SERVICES:
            raise ValueError(f"unknown service {v!r}; did you mean {v.lower()!r}?")
        return v

    @field_validator("increments", mode="before")
    @classmethod
    def _increments(cls, v) -> str:
        # `increments: 60` (a YAML integer) means 60/60, as `--increments 60` does
        parse_increments(str(v))
        return str(v)

    @property
    def unit_size(self) -> int:
        return _unit_size(self.per)

    @property
    def splits(self) -> bool:
        return self.service == "voice" if self.split is None else self.split


class DeckCharge(_Charge):
    """Price by longest prefix of the destination, from a deck (rows give a `rate`, or a
    `rate_id` of the catalog's `rates`, and optionally a `band`)."""

    deck: str


class Tier(_Strict):
    """A tier of a tiered charge: usage up to ``up_to`` units of the charge's ``per``
    (inclusive: with ``up_to: 250`` the 250th unit is in this tier and the 251st in the
    next; none on the last tier) at ``rate`` per unit; ``flat_fee`` is added once when a
    volume-priced cycle total falls in this tier."""

    up_to: int | None = Field(None, ge=1)
    rate: MoneyText
    flat_fee: MoneyText = "0"


class Tiers(_Strict):
    """``graduated``: each unit at the price of the tier it falls in, allocated to events in
    time order; ``volume``: every unit of the cycle at the price of the tier its total
    reaches, priced on the bill line."""

    model: Literal["graduated", "volume"]
    tiers: list[Tier] = Field(min_length=1)

    @model_validator(mode="after")
    def _ascending(self):
        bounds = [t.up_to for t in self.tiers]
        if bounds[-1] is not None:
            raise ValueError("the last tier needs no `up_to` (it has no upper bound)")
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last tier may leave out `up_to`")
        if any(b <= a for a, b in zip(bounds[:-2], bounds[1:-1], strict=False)):
            raise ValueError(f"tier bounds {bounds[:-1]} must increase")
        return self


class Package(_Strict):
    """Cycle usage sold in packages: ``price`` per started package of ``size`` units of the
    charge's ``per``, after ``free`` units; priced on the bill line."""

    size: int = Field(ge=1)
    price: MoneyText
    free: int = Field(0, ge=0)


class Percentage(_Strict):
    """A share of each event's value: the event's ``quantity`` is its value in the minor
    units of the plan's currency (cents), charged at ``rate`` (0.029 for 2.9 %) plus
    ``fixed_fee`` per event; the charge's ``max_cost`` caps an event."""

    rate: Annotated[str, BeforeValidator(tax_rate)]
    fixed_fee: MoneyText = "0"

    def nanos_per_minor_unit(self, minor: int) -> int:
        """The rate as an exact price per minor unit (ValueError when it has no such)."""
        nanos = to_nanos(self.rate)
        if nanos % 10**minor:
            raise ValueError(f"rate {self.rate} of a value in 1/{10**minor} units needs more "
                             "than 9 decimals")
        return nanos // 10**minor


class FlatCharge(_Charge):
    """One price for every destination of the service: `rate` (with this charge's unit and
    increments), `rate_id` (a named rate), `tiers` or a `package`.

    ``daily_increment`` (quantity units, with a `rate`) rounds each subscriber's usage of the
    charge up per day in the customer's zone: with ``per: MB`` and ``daily_increment:
    1000000`` a day of 3.25 MB bills 4 MB (on a `daily_rounding` bill line)."""

    rate: MoneyText | None = None
    rate_id: str | None = None
    tiers: Tiers | None = None
    package: Package | None = None
    percentage: Percentage | None = None
    daily_increment: int | None = Field(None, ge=1)
    destination: str = Field("", description="the name shown on bill lines")

    @model_validator(mode="after")
    def _one_price(self):
        given = [k for k in ("rate", "rate_id", "tiers", "package", "percentage")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `rate`, `rate_id`, `tiers`, `package` or "
                             "`percentage`"
                             + (f" (got {', '.join(given)})" if given else ""))
        if (self.tiers or self.package) and self.split:
            raise ValueError("a tiered or package charge prices whole events; leave out "
                             "`split: true`")
        if self.daily_increment is not None and self.rate is None:
            raise ValueError("`daily_increment` needs a `rate`")
        if self.percentage is not None and (self.per != "unit" or self.increments != "1/1"):
            raise ValueError("a percentage charge prices each event's value in minor units: "
                             "leave `per` and `increments` at their defaults")
        return self

    @property
    def cycle_priced(self) -> bool:
        """Priced on the bill line from the cycle's total, not per event."""
        return self.package is not None or (self.tiers is not None
                                             and self.tiers.model == "volume")


def _charge_kind(value) -> str:
    if isinstance(value, dict):
        return "deck" if "deck" in value else "flat"
    return "deck" if isinstance(value, DeckCharge) else "flat"


Charge = Annotated[
    Annotated[DeckCharge, Tag("deck")] | Annotated[FlatCharge, Tag("flat")],
    Discriminator(_charge_kind),
]


class Tax(_Strict):
    """A tax on bill lines, always on their discounted amount. ``jurisdictions``: the
    customers' tax jurisdictions it applies to (empty: all). ``inclusive``: prices already
    contain it. ``compound``: it is also charged on the taxes before it (by ``order``)."""

    name: str = Field(min_length=1)
    rate: Annotated[str, BeforeValidator(tax_rate)]
    jurisdictions: list[str] = []
    services: list[str] = []
    inclusive: bool = False
    compound: bool = False
    order: int = 0


class Recurring(_Strict):
    """A recurring fee of a plan: ``price`` per ``per`` (a calendar month, quarter or year,
    a week, or the customer's billing period), prorated by ``proration`` when the
    subscription covers part of a billing period: ``calendar_days`` (days used / days in
    each calendar month or ``per`` unit the period touches), ``period_days`` (days used /
    days in the period) or ``seconds``."""

    name: str = Field(min_length=1)
    price: MoneyText
    per: Literal["period", "week", "month", "quarter", "year"] = "month"
    billed: Literal["advance", "arrears"] = "advance"
    proration: Literal["calendar_days", "period_days", "seconds"] = "calendar_days"


class Discount(_Strict):
    """A discount on bill lines, before tax: ``percentage`` (``value`` 0.10 for 10%, at
    most 1) or ``fixed`` (``value`` an amount per bill, cut down to the bill currency's
    minor unit), for ``cycles`` billing periods from the customer's ``from`` (none:
    forever), limited to ``services``, ``plans`` and ``destinations`` (bill lines'
    destination names) when given, and to billing periods that begin within a promotional
    window [``starts``, ``ends``) when one is given. Several discounts apply in ``order``,
    each on what the previous ones left."""

    kind: Literal["percentage", "fixed"]
    value: MoneyText
    cycles: int | None = Field(None, ge=1)
    services: list[str] = []
    plans: list[str] = []
    destinations: list[str] = []
    starts: datetime | None = None
    ends: datetime | None = None
    order: int = 0

    @field_validator("starts", "ends")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("give the instant with a UTC offset, e.g. 2026-12-01T00:00:00Z")
        return v

    @model_validator(mode="after")
    def _fraction(self):
        if self.kind == "percentage" and to_nanos(self.value) > NANOS:
            raise ValueError(f"a percentage discount of {self.value} is more than the whole "
                             "line; write 0.10 for 10%")
        if self.starts and self.ends and self.ends <= self.starts:
            raise ValueError("`ends` must be later than `starts`")
        return self

    def runs_in(self, period_start: datetime) -> bool:
        """The promotional window, if any, holds the start of this billing period."""
        return ((self.starts is None or self.starts <= period_start)
                and (self.ends is None or period_start < self.ends))


class Bundle(_Strict):
    """Free usage per billing period: ``allowance`` units of ``per`` of one ``service``,
    optionally only for events to the named ``destinations`` (destination names of the
    deck or flat charge) or starting in the named ``bands``. Events draw on it in time
    order, in billed units (after increments and minimum; an event under the charge's
    ``free_below`` draws nothing). ``connect_fee``: ``charged`` on every event, or
    ``waived`` when the bundle covers the whole event."""

    name: str = Field(min_length=1)
    service: str = Field(min_length=1)
    allowance: int = Field(ge=0)
    per: Per = "unit"
    destinations: list[str] = []
    bands: list[str] = []
    connect_fee: Literal["charged", "waived"] = "charged"

    @property
    def quantity(self) -> int:
        """The allowance in the service's quantity units (seconds, messages, bytes)."""
        return self.allowance * _unit_size(self.per)


class Plan(_Strict):
    id: str = Field(min_length=1)
    default: bool = False
    timezone: str | None = None
    currency: str | None = Field(None, description="default: the catalog's currency")
    taxes: list[Tax] = []
    recurring: list[Recurring] = []
    bundles: list[Bundle] = Field([], max_length=64)
    charges: list[Charge] = Field(min_length=1)

    _tz = field_validator("timezone")(lambda v: v if v is None else zone_name(v))
    _cur = field_validator("currency")(lambda v: v if v is None else currency_code(v))


class Profile(_Strict):
    """Which plan usage of (tenant, category, subject) is rated with, from an instant on.
    The subject is the subscriber; `*any` matches every value. When the plan prices no
    destination of an event, the fallback subjects' profiles are tried in order."""

    tenant: str = "*any"
    category: str = "*any"
    subject: str = "*any"
    from_: datetime = Field(alias="from")
    plan: str
    fallback: list[str] = []

    @field_validator("from_")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("`from` needs a UTC offset, e.g. 2014-01-14T00:00:00Z")
        return v


class DeckRef(_Strict):
    file: str


class Rounding(_Strict):
    """`native`: amounts are exact, reaching 9 places once per part of an event.
    `cgrates`: each increment's cost is rounded half-up to `decimals` (CGRateS's global
    rounding decimals) and every increment of a part carries that cost."""

    profile: Literal["native", "cgrates"] = "native"
    decimals: int | None = Field(None, ge=0, le=9)
    line: Method = "half_up"
    tax: Method = "half_up"
    tax_scope: Literal["invoice", "line"] = Field(
        "invoice", description="round each tax once on the bill (invoice) or on every line")

    @model_validator(mode="after")
    def _decimals(self):
        if self.profile == "cgrates" and self.decimals is None:
            raise ValueError("the cgrates profile needs `decimals` (CGRateS's global rounding "
                             "decimals, usually 5)")
        return self


class CatalogModel(_Strict):
    catalog: Literal[1] = 1
    name: str = ""
    currency: str
    timezone: str = "UTC"
    rounding: Rounding = Rounding()
    holidays: list[date] = []
    bands: dict[str, Band] = {}
    rates: dict[str, Rate] = {}
    decks: dict[str, DeckRef] = {}
    plans: list[Plan] = Field(min_length=1)
    profiles: list[Profile] = []
    taxes: list[Tax] = Field([], description="taxes by jurisdiction, for every plan")
    discounts: dict[str, Discount] = {}
    collection_window_hours: int | None = Field(
        None, ge=0, description="a billing period closes this long after its end (judged on "
        "ingested_at); later usage goes on the next open bill as late usage. Unset: periods "
        "stay open, so a first run over old usage bills every period in full")

    _currency = field_validator("currency")(lambda v: currency_code(v))
    _tz = field_validator("timezone")(lambda v: zone_name(v))

    @model_validator(mode="after")
    def _percentages(self):
        for i, plan in enumerate(self.plans):
            minor = minor_units(plan.currency or self.currency)
            for j, charge in enumerate(plan.charges):
                if getattr(charge, "percentage", None) is not None:
                    try:
                        charge.percentage.nanos_per_minor_unit(minor)
                    except ValueError as exc:
                        raise ValueError(f"plans[{i}].charges[{j}].percentage: {exc}") from None
        return self


@dataclass(frozen=True)
class Catalog:
    """A validated catalog with its decks loaded; `digest` identifies this exact version."""

    model: CatalogModel
    decks: dict[str, pl.DataFrame]
    path: Path
    digest: str
    warnings: list[Problem] = ()

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

    def plan_currency(self, plan: Plan) -> str:
        return plan.currency or self.model.currency


@functools.cache
def _catalog_keys() -> tuple[str, ...]:
    """Every key a catalog mapping may hold, at any depth (names and aliases); found once
    per process, not once per misspelt key."""
    keys: set[str] = set()
    models = [_Strict]
    while models:
        model = models.pop()
        models += model.__subclasses__()
        keys.update(field.alias or name for name, field in model.model_fields.items())
    return tuple(sorted(keys))


def _message(error: dict) -> str:
    """A validation error's message; an unknown key gets the closest known one."""
    if error["type"] == "extra_forbidden" and isinstance(error["loc"][-1], str):
        hint = difflib.get_close_matches(error["loc"][-1], _catalog_keys(), n=1)
        return f"unknown key{f'; did you mean {hint[0]!r}?' if hint else ''}"
    return error["msg"].removeprefix("Value error, ")


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
    rates = raw.get("rates") if isinstance(raw.get("rates"), dict) else {}
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
            rate_id = charge.get("rate_id")
            if isinstance(rate_id, str) and rate_id not in rates:
                problems.append(Problem(f"{where}.rate_id", f"no rate {rate_id!r} in `rates`"))
            deck = charge.get("deck")
            if isinstance(deck, str) and deck not in decks:
                hint = difflib.get_close_matches(deck, list(decks), n=1)
                problems.append(Problem(f"{where}.deck", f"no deck {deck!r} in `decks`"
                                        + (f"; did you mean {hint[0]!r}?" if hint else "")))
        problems += _bundle_problems(plan, i, services, raw)
    plan_ids = {p.get("id") for p in plans}
    for i, profile in enumerate(_list(raw.get("profiles"))):
        if isinstance(profile, dict) and profile.get("plan") not in plan_ids:
            problems.append(Problem(f"profiles[{i}].plan",
                                    f"no plan {profile.get('plan')!r} in `plans`"))
    return problems


def _bundle_problems(plan: dict, i: int, services: dict, raw: dict) -> list[Problem]:
    """A bundle of a service its plan does not price, or naming an unknown band or a
    repeated name."""
    problems, names = [], set()
    bands = raw.get("bands") if isinstance(raw.get("bands"), dict) else {}
    for j, bundle in enumerate(_list(plan.get("bundles"))):
        if not isinstance(bundle, dict):
            continue
        where = f"plans[{i}].bundles[{j}]"
        if bundle.get("name") in names:
            problems.append(Problem(f"{where}.name", f"{bundle['name']!r} is used twice"))
        names.add(bundle.get("name"))
        service = bundle.get("service")
        if isinstance(service, str) and service not in services:
            problems.append(Problem(f"{where}.service", f"the plan prices no {service!r}; "
                                    "add a charge for it or fix the name"))
        for k, band in enumerate(_list(bundle.get("bands"))):
            if band not in bands:
                problems.append(Problem(f"{where}.bands[{k}]", f"no band {band!r} in `bands`"))
    return problems


def _deck_reference_problems(name: str, table: pl.DataFrame, path: Path, raw: dict):
    """Rows naming a rate or band the catalog does not define, by file and line."""
    rates = raw.get("rates") if isinstance(raw.get("rates"), dict) else {}
    bands = raw.get("bands") if isinstance(raw.get("bands"), dict) else {}
    for column, known, section in (("rate_id", rates, "rates"), ("band", bands, "bands")):
        for row in table.filter(pl.col(column).is_not_null()
                                & ~pl.col(column).is_in(list(known))).iter_rows(named=True):
            yield Problem(f"{path}:{row['deck_row']}",
                          f"{column} {row[column]!r} is not in the catalog's `{section}`")


def _profile_warnings(model: CatalogModel) -> list[Problem]:
    subjects = {p.subject for p in model.profiles}
    return [
        Problem(f"profiles[{i}].fallback", f"fallback subject {s!r} has no profile of its own; "
                "it is skipped")
        for i, p in enumerate(model.profiles) for s in p.fallback if s not in subjects
    ]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that notes a key repeated in one mapping, which YAML would silently
    resolve to its last value (`{rate: "0.09", rate: "0.00"}` is a price of 0)."""

    def __init__(self, stream, source: str) -> None:
        super().__init__(stream)
        self.source = source
        self.duplicates: list[tuple[int, Problem]] = []  # (line, problem)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` may be overridden by the keys beside it
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                try:
                    if key in first:
                        earlier = f" (first at line {first[key]})" if first[key] != line else ""
                        self.duplicates.append((line, Problem(
                            f"{self.source}:{line}", f"key {key!r} appears twice in one mapping"
                            f"{earlier}; YAML would keep only the last, so remove one")))
                    first.setdefault(key, line)
                except TypeError:
                    continue  # an unhashable key: the constructor reports it
        return super().construct_mapping(node, deep)


def _read_yaml(raw_text: bytes, source: str) -> tuple[object, list[Problem]]:
    """The YAML document and its repeated keys, in file order (yaml.YAMLError when it is
    not YAML)."""
    loader = _UniqueKeyLoader(raw_text, source)
    try:
        data = loader.get_single_data()
        return data, [problem for _, problem in sorted(loader.duplicates, key=lambda d: d[0])]
    finally:
        loader.dispose()


def load_catalog(path: str | Path) -> Catalog:
    """Read, validate and load a catalog; raise CatalogError listing every problem."""
    path = Path(path)
    try:
        raw_text = path.read_bytes()
        raw, problems = _read_yaml(raw_text, str(path))
    except OSError as exc:
        raise CatalogError(str(path), [Problem(str(path), f"cannot read: {exc.strerror}")]) \
            from None
    except yaml.YAMLError as exc:
        raise CatalogError(str(path), [Problem(str(path), f"not valid YAML: {exc}")]) from None
    if not isinstance(raw, dict):
        raise CatalogError(str(path), [Problem("(top)", "a catalog is a YAML mapping")])
    model = None
    try:
        model = CatalogModel.model_validate(raw)
    except ValidationError as exc:
        problems += [Problem(_loc(e["loc"]), _message(e)) for e in exc.errors()]
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
        problems += _deck_reference_problems(name, decks[name], deck_path, raw)
        digest.update(deck_path.read_bytes())
    if problems or model is None:
        raise CatalogError(str(path), problems)
    return Catalog(model=model, decks=decks, path=path, digest=digest.hexdigest()[:16],
                   warnings=_profile_warnings(model))


__all__ = ["Bundle", "Catalog", "CatalogModel", "DeckCharge", "FlatCharge", "MoneyError", "Plan",
           "Tax", "currency_code", "load_catalog", "tax_rate", "zone_name"]


def publish_catalog(files: dict[str, str], out: Path) -> Catalog:
    """Write an importer's catalog (``files``: name -> text, beside ``out``) only if it
    loads: it is validated in a temporary folder first, so a refused import leaves nothing
    behind and never overwrites a good catalog."""
    import shutil
    import tempfile

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=out.parent))
    try:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        load_catalog(staging / out.name)
        for name in files:
            os.replace(staging / name, out.parent / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_catalog(out)
