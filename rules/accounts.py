"""Accounts: customers (zone, currency, tax jurisdiction, billing cycle) and the
subscriptions that put subscribers on plans (``--accounts FILE``: YAML, CSV or Parquet).

YAML::

    customers:
      - id: acme
        timezone: Europe/Copenhagen        # billing cycles are read here
        currency: EUR                      # must be the currency of its plans
        tax_jurisdiction: DK
        tax_exempt: []                     # names of taxes that do not apply
        cycle: {interval: monthly, anchor: calendar}   # or anchor: "2021-07-01T15:00"
    subscriptions:
      - {subscriber: s1, customer: acme, plan: basic, start: 2021-07-01T15:00:00Z,
         end: 2021-09-10T00:00:00Z, trial_months: 1}
      - {subscriber: s1, customer: acme, plan: premium, start: 2021-09-10T00:00:00Z,
         change: restart}

CSV or Parquet: one row per subscription, columns ``subscriber_id, plan_id`` and
optionally ``customer_id, timezone, currency, tax_jurisdiction, cycle, anchor, start,
end, discounts, trial_months, trial_days, change`` (ids separated by ``;``; a customer's
columns must agree on all its rows). A subscriber without a
subscription in force holds the catalog's default plan, billed monthly in the plan's zone.
Every problem is listed with its file and line or path.

**Trials.** ``trial_months: n`` (or ``trial_days: n``) on a subscription with a start: no
recurring fee before ``start + n`` months, counted on the customer's wall clock with the
day clamped to the target month's end (2022-01-31 + 3 months ends 2022-04-30); the fee is
prorated from the trial's end like any activation. Usage is rated as usual in a trial.

**Plan changes.** A change is one subscription of a subscriber ending at the very instant
another of the same subscriber starts; the new one declares what happens to recurring
fees billed in advance with ``change``:

- ``prorate`` (the default): the period goes on. Its bill keeps the old plan's fee as
  charged at the period's start, gets a ``recurring_credit`` line for the old plan's unused
  part, and the new plan's fee for the rest of the period.
- ``restart``: the customer's billing cycle restarts at the change (rules/cycles.py): the
  period holding it ends there, and a new one, anchored on the change's local time,
  begins. The new period's bill carries a ``recurring_credit`` line for the unused part of
  the plan held, computed from that plan's full price (never from what was last paid), and
  the new plan's fee for the whole new period.

Fees billed in arrears are charged for the time used and get no credit. ``change`` on a
subscription that does not follow another one without a gap is refused.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import polars as pl
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .catalog import Catalog, currency_code, zone_name
from .cycles import INTERVALS, Cycle, add_months, to_utc
from .errors import AccountsError, Problem

CALENDAR = "calendar"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CycleSpec(_Strict):
    interval: Literal["weekly", "monthly", "quarterly", "yearly"] = "monthly"
    every: int = Field(1, ge=1)
    anchor: datetime | Literal["calendar"] = CALENDAR
    # instants where a plan change with the `restart` policy restarts the cycle; derived
    # from the subscriptions by load_accounts, never written by hand
    _restarts: tuple[datetime, ...] = PrivateAttr(default=())

    @field_validator("anchor")
    @classmethod
    def _local(cls, v):
        if isinstance(v, datetime) and v.tzinfo is not None:
            raise ValueError("the anchor is a local date and time in the customer's zone; "
                             "write it without an offset, e.g. 2021-07-01T15:00")
        return v

    def cycle(self) -> Cycle:
        return Cycle(self.interval, self.every, None if self.anchor == CALENDAR else self.anchor,
                     self._restarts)


MONTHLY_CALENDAR = CycleSpec()


class CustomerDiscount(_Strict):
    """A catalog discount held by a customer, counted in billing periods from ``from``."""

    id: str
    from_: datetime | None = Field(None, alias="from")

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, v):
        return {"id": v} if isinstance(v, str) else v


class Customer(_Strict):
    id: str = Field(min_length=1)
    timezone: str | None = None
    currency: str | None = None
    tax_jurisdiction: str | None = None
    tax_exempt: list[str] = Field(default_factory=list)  # a `[]` default is deep-copied
    # one shared default (frozen; a restart copies it first): pydantic would deep-copy an
    # instance default for each of a few hundred thousand customers
    cycle: CycleSpec = Field(default_factory=lambda: MONTHLY_CALENDAR)
    discounts: list[CustomerDiscount] = Field(default_factory=list)

    _tz = field_validator("timezone")(lambda v: v if v is None else zone_name(v))
    _cur = field_validator("currency")(lambda v: v if v is None else currency_code(v))


class Subscription(_Strict):
    subscriber: str = Field(min_length=1)
    customer: str | None = None  # default: a customer of the same id as the subscriber
    plan: str = Field(min_length=1)
    start: datetime | None = None
    end: datetime | None = None
    trial_months: int | None = Field(None, ge=1)
    trial_days: int | None = Field(None, ge=1)
    change: Literal["prorate", "restart"] | None = None  # None: prorate, when it is a change

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, v):
        if v is not None and v.tzinfo is None:
            raise ValueError("give an instant with a UTC offset, e.g. 2021-07-01T15:00:00Z")
        return v

    @model_validator(mode="after")
    def _trial(self):
        if self.trial_months and self.trial_days:
            raise ValueError("give trial_months or trial_days, not both")
        if (self.trial_months or self.trial_days) and self.start is None:
            raise ValueError("a trial needs the subscription's start")
        if self.change and self.start is None:
            raise ValueError("change needs the subscription's start (the change's instant)")
        return self

    def trial_end(self, zone: str) -> datetime | None:
        """The first instant that pays the recurring fee, on the zone's wall clock."""
        if self.start is None or not (self.trial_months or self.trial_days):
            return None
        local = self.start.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        local = (add_months(local, self.trial_months) if self.trial_months
                 else local + timedelta(days=self.trial_days))
        return to_utc(local, zone)


class AccountsModel(_Strict):
    customers: list[Customer] = []
    subscriptions: list[Subscription] = []


SUBSCRIPTION_SCHEMA = {
    "subscriber_id": pl.String, "customer_id": pl.String, "plan_id": pl.String,
    "start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC"),
    # the recurring fee is due from here (after a trial; else the start)
    "trial_end": pl.Datetime("us", "UTC"),
    # set on a subscription that replaces another at its start: prorate or restart
    "change": pl.String,
}


@dataclass(frozen=True)
class Accounts:
    """Validated accounts. ``subscriptions``: one row per (subscriber, plan, [start, end)),
    with the end of its trial and, when it replaces another, the change policy."""

    subscriptions: pl.DataFrame
    customers: dict[str, Customer]
    digest: str

    @property
    def plans(self) -> pl.DataFrame:
        """subscriber_id, plan_id of every subscription."""
        return self.subscriptions.select("subscriber_id", "plan_id")

    def customer(self, customer_id: str) -> Customer:
        return self.customers.get(customer_id) or Customer(id=customer_id)

    def subscriptions_of(self, subscribers: Iterable[str]) -> pl.DataFrame:
        """The subscriptions of ``subscribers`` (a bucket's), in table order per subscriber:
        looked up by id, so a bucket costs what it holds, not what all accounts hold."""
        rows = self._rows_by_subscriber
        return self.subscriptions[[i for s in subscribers for i in rows.get(s, ())]]

    @cached_property
    def zones_and_cycles(self) -> frozenset[tuple[str | None, Cycle]]:
        """Every distinct (zone, billing cycle) of the customers; zone None where a customer
        names none (its plan's applies). Customers mostly share one cycle object, so each
        object's cycle is built once."""
        specs: dict[tuple[str | None, int], CycleSpec] = {}
        for c in self.customers.values():
            specs.setdefault((c.timezone, id(c.cycle)), c.cycle)
        return frozenset((zone, spec.cycle()) for (zone, _), spec in specs.items())

    @cached_property
    def _rows_by_subscriber(self) -> dict[str, list[int]]:
        rows: dict[str, list[int]] = {}
        for i, subscriber in enumerate(self.subscriptions["subscriber_id"].to_list()):
            rows.setdefault(subscriber, []).append(i)
        return rows


_CSV_COLUMNS = ("subscriber_id", "plan_id", "customer_id", "timezone", "currency",
                "tax_jurisdiction", "cycle", "anchor", "start", "end", "discounts",
                "trial_months", "trial_days", "change")


def _customer(customer_id: str, row: dict) -> dict:
    """The customer a table row describes, in the models' shape."""
    customer = {"id": customer_id}
    for key in ("timezone", "currency", "tax_jurisdiction"):
        if row.get(key):
            customer[key] = row[key]
    if row.get("discounts"):  # catalog discount ids separated by ';', held forever
        customer["discounts"] = [d.strip() for d in row["discounts"].split(";") if d]
    if row.get("cycle") or row.get("anchor"):
        customer["cycle"] = {"interval": row.get("cycle") or "monthly",
                             "anchor": row.get("anchor") or CALENDAR}
    return customer


def _from_table(frame: pl.DataFrame, where) -> tuple[dict, list[Problem]]:
    """A flat table -> the YAML shape, customers merged (their columns must agree)."""
    problems = []
    customers: dict[str, dict] = {}
    described_at: dict[str, str] = {}  # the line that first describes each customer
    subscriptions = []
    for i, row in enumerate(frame.iter_rows(named=True)):
        row = {k: (v.strip() if isinstance(v, str) else v) or None for k, v in row.items()}
        subscriber, customer_id = row.get("subscriber_id"), row.get("customer_id")
        customer_id = customer_id or subscriber
        empty = [f"{name} is empty" for name in ("subscriber_id", "plan_id") if not row.get(name)]
        if empty:
            problems += [Problem(where(i), what) for what in empty]
            continue
        customer = _customer(customer_id, row)
        if customer_id in customers and customers[customer_id] != customer:
            problems.append(Problem(where(i), f"customer {customer_id!r} has other zone, "
                                    "currency, jurisdiction or cycle than on an earlier row"))
        customers.setdefault(customer_id, customer)
        described_at.setdefault(customer_id, where(i))
        subscriptions.append({"subscriber": subscriber, "customer": customer_id,
                              "plan": row["plan_id"], "start": row.get("start"),
                              "end": row.get("end"), "_where": where(i),
                              **{k: row[k] for k in ("trial_months", "trial_days", "change")
                                 if row.get(k)}})
    return {"customers": [{**c, "_where": described_at[cid]} for cid, c in customers.items()],
            "subscriptions": subscriptions}, problems


def _read(path: Path) -> tuple[dict, list[Problem]]:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
        if not isinstance(raw, dict):
            return {}, [Problem(str(path), "accounts YAML is a mapping with `customers` and "
                                "`subscriptions`")]
        for key in ("customers", "subscriptions"):
            for i, item in enumerate(raw.get(key) or []):
                if isinstance(item, dict):
                    item["_where"] = f"{key}[{i}]"
        return raw, []
    frame, first = _table(path)
    unknown = [c for c in frame.columns if c not in _CSV_COLUMNS]
    missing = [c for c in ("subscriber_id", "plan_id") if c not in frame.columns]
    if unknown or missing:
        return {}, [Problem(str(path), f"columns are {frame.columns}; need subscriber_id and "
                            f"plan_id, and may have {list(_CSV_COLUMNS[2:])}")]
    return _from_table(frame, lambda i: f"{path}:{i + first}")


def load_accounts(path: str | Path, catalog: Catalog) -> Accounts:
    """Read and validate accounts against the catalog's plans and currencies."""
    path = Path(path)
    return _plain_holdings(path, catalog) or _row_by_row(path, catalog)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _table(path: Path) -> tuple[pl.DataFrame, int]:
    """A CSV or Parquet accounts table as text columns, and the file line of its row 0."""
    if path.suffix.lower() == ".parquet":
        return pl.read_parquet(path).with_columns(pl.all().cast(pl.String)), 1
    return pl.read_csv(path, infer_schema=False), 2  # drops a UTF-8 byte order mark


_PLAIN = ("subscriber_id", "plan_id", "customer_id", "timezone", "currency",
          "tax_jurisdiction", "discounts", "cycle", "anchor")
_CUSTOMER = ("timezone", "currency", "tax_jurisdiction", "discounts", "cycle", "anchor")


def _plain_holdings(path: Path, catalog: Catalog) -> Accounts | None:
    """The accounts of a table of plain holdings (one open-ended plan per subscriber: no
    start, end, trial or change), checked column by column and each distinct description
    of a customer validated once: hundreds of thousands of rows in seconds. None when
    the table is not such a table or anything in it is wrong: :func:`_row_by_row` then
    reads it and names every problem."""
    if path.suffix.lower() not in (".csv", ".parquet"):
        return None
    try:
        frame, _ = _table(path)
    except (OSError, pl.exceptions.PolarsError):
        return None
    frame = frame.with_columns(  # as _from_table cleans each value
        pl.when(pl.col(c).str.strip_chars() != "").then(pl.col(c).str.strip_chars())
        for c in frame.columns)
    used = [c for c in frame.columns if frame[c].null_count() < len(frame)]
    if not len(frame) or set(used) - set(_PLAIN) or {"subscriber_id", "plan_id"} - set(used):
        return None
    rows = frame.select(
        "subscriber_id", "plan_id",
        pl.coalesce(*[c for c in ("customer_id", "subscriber_id") if c in frame.columns])
        .alias("customer_id"),
        *[pl.col(c) if c in frame.columns else pl.lit(None, pl.String).alias(c)
          for c in _CUSTOMER])
    plans = {p.id: p for p in catalog.model.plans}
    if (rows["subscriber_id"].null_count() or rows["plan_id"].null_count()
            or not rows["subscriber_id"].is_unique().all()
            or not rows["plan_id"].is_in(list(plans)).all()):
        return None
    agree = rows.group_by("customer_id").agg(pl.col(c).n_unique() for c in _CUSTOMER)
    if len(agree) and agree.select(pl.max_horizontal(_CUSTOMER).max()).item() > 1:
        return None  # one customer's rows disagree
    # each distinct description of a customer validated once, then copied per customer
    # (the customers are frozen; a restart replaces a customer's cycle, never edits it)
    first = rows.unique("customer_id", keep="first", maintain_order=True)
    kinds = first.select(_CUSTOMER).unique(maintain_order=True).with_row_index("kind")
    try:
        described = [Customer.model_validate(_customer("-", dict(zip(_CUSTOMER, key,
                                                                    strict=True))))
                     for key in kinds.select(_CUSTOMER).iter_rows()]
    except ValidationError:
        return None
    if any(d.id not in catalog.model.discounts for c in described for d in c.discounts):
        return None
    bills_in = rows.select("currency", "plan_id").drop_nulls().unique()
    if any(catalog.plan_currency(plans[plan]) != code for code, plan in bills_in.iter_rows()):
        return None
    kind = first.join(kinds, on=_CUSTOMER, how="left", nulls_equal=True,
                      maintain_order="left")["kind"]
    naming = [_naming(customer) for customer in described]
    with _collector_paused():  # many objects at once, each of which it would walk again
        customers = {cid: naming[k](cid)
                     for cid, k in zip(first["customer_id"].to_list(), kind.to_list(),
                                       strict=True)}
    subscriptions = rows.select(
        "subscriber_id", "customer_id", "plan_id",
        *[pl.lit(None, SUBSCRIPTION_SCHEMA[c]).alias(c) for c in (
            "start", "end", "trial_end", "change")]).cast(SUBSCRIPTION_SCHEMA)
    return Accounts(subscriptions=subscriptions, customers=customers, digest=_digest(path))


@contextmanager
def _collector_paused():
    """Python's cyclic garbage collector paused while many objects are made at once."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _naming(described: Customer):
    """A function giving a validated customer description under another id: what
    ``model_copy(update={"id": ...})`` gives, made directly (a table of 500,000 customers
    took 6 s of model_copy). The description's values are shared, as a shallow copy shares
    them, and so is the set of fields given; customers are frozen."""
    values = described.__dict__
    given = described.__pydantic_fields_set__ | {"id"}

    def named(customer_id: str) -> Customer:
        customer = object.__new__(Customer)
        object.__setattr__(customer, "__dict__", {**values, "id": customer_id})
        object.__setattr__(customer, "__pydantic_fields_set__", given)
        object.__setattr__(customer, "__pydantic_extra__", None)
        object.__setattr__(customer, "__pydantic_private__", None)
        return customer

    return named


def _row_by_row(path: Path, catalog: Catalog) -> Accounts:
    """Accounts read a row at a time through the models, every problem collected."""
    try:
        raw, problems = _read(path)
    except (OSError, pl.exceptions.PolarsError, yaml.YAMLError) as exc:
        raise AccountsError(str(path), [Problem(str(path), f"cannot read: {exc}")]) from None
    # where each customer and subscription was written: file:line of a table, else its path
    places = {key: [item.pop("_where", f"{key}[{i}]") if isinstance(item, dict) else
                    f"{key}[{i}]" for i, item in enumerate(raw.get(key) or [])]
              for key in ("customers", "subscriptions")}
    model = None
    try:
        model = AccountsModel.model_validate(raw)
    except ValidationError as exc:
        for e in exc.errors():
            loc = e["loc"]
            listed = places.get(loc[0], []) if loc else []
            if len(loc) > 1 and isinstance(loc[1], int) and loc[1] < len(listed):
                where, field = listed[loc[1]], ".".join(map(str, loc[2:]))
            else:
                where, field = ".".join(map(str, loc)), ""
            problems.append(Problem(where, f"{field + ': ' if field else ''}"
                                    f"{e['msg'].removeprefix('Value error, ')}"))
    if model is not None:
        problems += _semantic(model, catalog, places["subscriptions"],
                              dict(zip((c.id for c in model.customers), places["customers"],
                                       strict=True)))
    if problems:
        raise AccountsError(str(path), sorted(problems, key=_in_file_order))
    customers = {c.id: c for c in model.customers}
    plans = {p.id: p for p in catalog.model.plans}
    rows, restarts, ends = [], {}, _ends(model.subscriptions)
    for s in model.subscriptions:
        customer_id = s.customer or s.subscriber
        customer = customers.get(customer_id)
        zone = (customer and customer.timezone) or catalog.plan_zone(plans[s.plan])
        change = _change_policy(s, ends)
        if change == "restart":
            restarts.setdefault(customer_id, set()).add(s.start)
        rows.append({"subscriber_id": s.subscriber, "customer_id": customer_id,
                     "plan_id": s.plan, "start": s.start, "end": s.end,
                     "trial_end": s.trial_end(zone), "change": change})
    for customer_id, instants in restarts.items():
        customer = customers.get(customer_id) or Customer(id=customer_id)
        cycle = customer.cycle.model_copy()
        cycle._restarts = tuple(sorted(instants))
        customers[customer_id] = customer.model_copy(update={"cycle": cycle})
    subscriptions = pl.DataFrame(rows, schema=SUBSCRIPTION_SCHEMA)
    return Accounts(subscriptions=subscriptions, customers=customers, digest=_digest(path))


def _change_policy(sub: Subscription, ends: set[tuple]) -> str | None:
    """prorate or restart when ``sub`` replaces another subscription of its subscriber
    (``ends`` holds every (subscriber, end); one ends where ``sub`` starts), else None."""
    follows = sub.start is not None and (sub.subscriber, sub.start) in ends
    return (sub.change or "prorate") if follows else None


def _ends(subscriptions: list[Subscription]) -> set[tuple]:
    return {(s.subscriber, s.end) for s in subscriptions if s.end is not None}


def _in_file_order(problem: Problem) -> tuple:
    place, _, line = problem.where.rpartition(":")
    return (place, int(line), 0) if line.isdigit() else (problem.where, 0, 1)


def _semantic(model: AccountsModel, catalog: Catalog, places: list[str],
              customer_places: dict[str, str]) -> list[Problem]:
    problems = []
    plans = {p.id: p for p in catalog.model.plans}
    customers = {c.id: c for c in model.customers}
    seen: dict[str, list[tuple]] = {}
    ends = _ends(model.subscriptions)
    for i, sub in enumerate(model.subscriptions):
        where = places[i]
        if sub.plan not in plans:
            problems.append(Problem(where, f"plan {sub.plan!r} is not in the catalog "
                                    f"(plans: {sorted(plans)})"))
            continue
        if sub.customer is not None and sub.customer not in customers:
            problems.append(Problem(where, f"customer {sub.customer!r} is not in `customers`"))
        customer = customers.get(sub.customer or sub.subscriber)
        plan_currency = catalog.plan_currency(plans[sub.plan])
        if customer and customer.currency and customer.currency != plan_currency:
            problems.append(Problem(where, f"plan {sub.plan!r} bills in {plan_currency}, but "
                                    f"customer {customer.id!r} in {customer.currency}"))
        if sub.start and sub.end and sub.end <= sub.start:
            problems.append(Problem(where, "end must be later than start"))
        if sub.change and _change_policy(sub, ends) is None:
            problems.append(Problem(where, f"change: {sub.change} needs another subscription "
                                    f"of {sub.subscriber!r} ending at this start "
                                    f"({sub.start.isoformat()}); none does. Set that "
                                    "subscription's end, or drop `change`"))
        for start, end, other in seen.get(sub.subscriber, []):
            if (sub.end is None or start is None or start < sub.end) and (
                    end is None or sub.start is None or sub.start < end):
                problems.append(Problem(where, f"subscriber {sub.subscriber!r} already holds a "
                                        f"plan then ({other}); subscriptions of one "
                                        "subscriber must not overlap"))
                break
        seen.setdefault(sub.subscriber, []).append((sub.start, sub.end, where))
    for c in model.customers:
        where = customer_places[c.id]
        if c.cycle.interval not in INTERVALS:
            problems.append(Problem(where, f"cycle: unknown interval {c.cycle.interval!r}"))
        for d in c.discounts:
            if d.id not in catalog.model.discounts:
                problems.append(Problem(where, f"discounts: no discount {d.id!r} in the "
                                        "catalog's `discounts`"))
    return problems
