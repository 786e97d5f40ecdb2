"""Recurring fees of plans, per subscription and billing period, prorated by day count.

A subscription with a start is charged for every billing period of its customer that it
overlaps up to the run's as-of instant, from the end of its trial (rules/accounts.py); one
without a start (a subscriber on the default plan, or an account without dates) for each
period in which it has usage. The fee of a period is exact (9 places); the bill line
rounds it once. A period cut short by a restart is prorated against the period as it was
before the cut (``uncut_period_of``).

Plan changes (rules/accounts.py, "Plan changes"): a fee billed in advance is charged for
the old plan as it stood when its period began, up to that period's end, and the unused
part after the change comes back as a ``recurring_credit`` item (a negative amount, from
the plan's full price): on the same bill with ``prorate``, on the bill of the period that
the change starts with ``restart``. A credit appears once the change has happened (at or
before the as-of instant). Fees billed in arrears are charged for the time used only.
A subscription that simply ends is charged for the time it covers (no credit line).

A fee priced per calendar ``per`` unit shorter than the billing period and prorated by
``calendar_days`` (a monthly price billed quarterly, B25) is shown as one item per unit
the period touches, each with its own share, so every month's part is visible; the parts
of one fee share a ``fee`` number and are rounded together (bills/build.py), so the bill
total is the fee rounded once, as before the split. ``period_days`` prorates against the
whole period (there is no month's part to show) and ``seconds`` by elapsed time: their fee
stays one item.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from rules import Accounts, Catalog
from rules.catalog import Recurring
from rules.cycles import Cycle, Period, period_of, periods, uncut_period_of

_UNIT = {"week": Cycle("weekly"), "month": Cycle("monthly"), "quarter": Cycle("quarterly"),
         "year": Cycle("yearly")}
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_CYCLE_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
# nominal lengths in days, only to tell whether a `per` unit is shorter than a period
_NOMINAL_DAYS = {"weekly": 7, "monthly": 30, "quarterly": 91, "yearly": 365}
_MICRO = timedelta(microseconds=1)
CREDIT = "recurring_credit"


@dataclass(frozen=True)
class Item:
    """One recurring amount on one bill: a fee (``recurring_advance`` or
    ``recurring_arrears``) or the credit for the unused part of a fee (``recurring_credit``,
    a negative amount)."""

    customer_id: str
    subscriber_id: str
    plan_id: str
    period: Period  # the bill's period
    zone: str
    charge: Recurring
    amount: Decimal
    line_type: str
    start: datetime  # the part of time this amount charges (or credits), [start, end)
    end: datetime
    fee: int  # items with the same number are the parts of one fee (rounded together)


class Part(NamedTuple):
    """The share of a fee for [start, end)."""

    start: datetime
    end: datetime
    amount: Decimal


def _days(start: datetime, end: datetime, zone: ZoneInfo) -> int:
    """Local calendar days touched by [start, end): a day counts when any of it is used."""
    if end <= start:
        return 0
    return ((end - _MICRO).astimezone(zone).date() - start.astimezone(zone).date()).days + 1


def _units_per_period(recurring: Recurring, cycle: Cycle, basis: Period,
                      tz: ZoneInfo) -> Decimal:
    """How many ``per`` units one whole billing period holds: 3 months in a quarter, 1/12
    of a year in a month; a week priced against months (or back) counts the share of each
    unit the period's days cover."""
    if recurring.per == "period":
        return Decimal(1)
    if recurring.per == "week" and cycle.interval == "weekly":
        return Decimal(cycle.every)
    if recurring.per in _MONTHS and cycle.interval in _CYCLE_MONTHS:
        return Decimal(_CYCLE_MONTHS[cycle.interval] * cycle.every) / _MONTHS[recurring.per]
    return sum((Decimal(_days(max(u.start, basis.start), min(u.end, basis.end), tz))
                / _days(u.start, u.end, tz)
                for u in periods(_UNIT[recurring.per], tz, basis.start, basis.end)),
               Decimal(0))


@functools.lru_cache(maxsize=4096)  # customers on one cycle share their periods' fees
def fee_parts(recurring: Recurring, start: datetime, end: datetime, basis: Period,
              zone: str, cycle: Cycle) -> tuple[Part, ...]:
    """The exact fee for [start, end) within the billing period ``basis``, by the recurring
    charge's proration rule: one part per calendar ``per`` unit the span touches when the
    fee is priced per unit, else one part. ``period_days`` prorates the price of the whole
    period (a monthly price times the months of the cycle) by its days."""
    price = Decimal(recurring.price)
    tz = ZoneInfo(zone)
    if recurring.per == "period" or recurring.proration == "period_days":
        price *= _units_per_period(recurring, cycle, basis, tz)
        if recurring.proration == "seconds":
            return (Part(start, end, price * Decimal((end - start).total_seconds()) / Decimal(
                (basis.end - basis.start).total_seconds())),)
        return (Part(start, end,
                     price * _days(start, end, tz) / _days(basis.start, basis.end, tz)),)
    parts = []
    for unit in periods(_UNIT[recurring.per], tz, start, end):
        lo, hi = max(unit.start, start), min(unit.end, end)
        if recurring.proration == "seconds":
            used = Decimal((hi - lo).total_seconds()) / Decimal(
                (unit.end - unit.start).total_seconds())
        else:
            used = Decimal(_days(lo, hi, tz)) / _days(unit.start, unit.end, tz)
        parts.append(Part(lo, hi, price * used))
    return tuple(parts)


def shown_by_unit(recurring: Recurring, cycle: Cycle) -> bool:
    """Whether the fee is shown one item per calendar ``per`` unit: priced per unit by
    calendar days, with the unit shorter than the customer's billing period."""
    return (recurring.per != "period" and recurring.proration == "calendar_days"
            and _NOMINAL_DAYS[_UNIT[recurring.per].interval]
            < _NOMINAL_DAYS[cycle.interval] * cycle.every)


def recurring_items(catalog: Catalog, accounts: Accounts | None, usage_periods: list[tuple],
                    as_of: datetime) -> list[Item]:
    """Every recurring fee and credit due: ``usage_periods`` are (customer, subscriber,
    plan, period start, period end) seen in the rated usage."""
    plans = {p.id: p for p in catalog.model.plans}
    out: list[Item] = []

    def add(customer_id: str, subscriber: str, plan_id: str, period: Period, zone: str,
            charge: Recurring, cycle: Cycle, start: datetime, end: datetime, basis: Period,
            line_type: str, sign: int = 1) -> None:
        parts = fee_parts(charge, start, end, basis, zone, cycle)
        if not shown_by_unit(charge, cycle):
            parts = (Part(start, end, sum((p.amount for p in parts), Decimal(0))),)
        number = len(out)
        out.extend(Item(customer_id, subscriber, plan_id, period, zone, charge,
                        sign * part.amount, line_type, part.start, part.end, number)
                   for part in parts)

    dated: set[str] = set()
    rows = accounts.subscriptions.to_dicts() if accounts is not None else []
    # (subscriber, instant) -> the policy of the change that happens there
    policy = {(r["subscriber_id"], r["start"]): r["change"] for r in rows if r["change"]}
    for sub in rows:
        plan = plans[sub["plan_id"]]
        if sub["start"] is None or not plan.recurring:
            continue
        dated.add(sub["subscriber_id"])
        customer = accounts.customer(sub["customer_id"])
        zone = customer.timezone or catalog.plan_zone(plan)
        cycle = customer.cycle.cycle()
        due, end = sub["trial_end"] or sub["start"], sub["end"]
        change = policy.get((sub["subscriber_id"], end)) if end is not None else None
        held = (sub["customer_id"], sub["subscriber_id"], sub["plan_id"])
        for period in periods(cycle, zone, due, min(end or as_of, as_of)):
            basis = uncut_period_of(cycle, zone, period.start)
            lo, hi = max(period.start, due), min(period.end, end or period.end)
            if hi <= lo:
                continue
            for charge in plan.recurring:
                kind = f"recurring_{charge.billed}"
                changed = (charge.billed == "advance" and change is not None
                           and hi == end < basis.end)
                # in advance, a changed plan is charged as it stood when the period began
                add(*held, period, zone, charge, cycle, lo, basis.end if changed else hi,
                    basis, kind)
                if changed and end <= as_of:
                    where = period if change == "prorate" else period_of(cycle, zone, end)
                    add(*held, where, zone, charge, cycle, end, basis.end, basis, CREDIT,
                        sign=-1)
    for customer_id, subscriber, plan_id, start, end in usage_periods:
        if subscriber in dated or plan_id not in plans or not plans[plan_id].recurring:
            continue
        customer = accounts.customer(customer_id) if accounts else None
        zone = (customer and customer.timezone) or catalog.plan_zone(plans[plan_id])
        cycle = customer.cycle.cycle() if customer else Cycle("monthly")
        period = Period(start.astimezone(UTC), end.astimezone(UTC))
        for charge in plans[plan_id].recurring:
            add(customer_id, subscriber, plan_id, period, zone, charge, cycle, period.start,
                period.end, period, f"recurring_{charge.billed}")
    return out
