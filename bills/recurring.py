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
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rules import Accounts, Catalog
from rules.catalog import Recurring
from rules.cycles import Cycle, Period, period_of, periods, uncut_period_of

_UNIT = {"week": Cycle("weekly"), "month": Cycle("monthly"), "quarter": Cycle("quarterly"),
         "year": Cycle("yearly")}
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


def _days(start: datetime, end: datetime, zone: ZoneInfo) -> int:
    """Local calendar days touched by [start, end): a day counts when any of it is used."""
    if end <= start:
        return 0
    return ((end - _MICRO).astimezone(zone).date() - start.astimezone(zone).date()).days + 1


@functools.lru_cache(maxsize=4096)  # customers on one cycle share their periods' fees
def fee(recurring: Recurring, start: datetime, end: datetime, basis: Period,
        zone: str) -> Decimal:
    """The exact fee for [start, end) within the billing period ``basis``, by the recurring
    charge's proration rule."""
    price = Decimal(recurring.price)
    tz = ZoneInfo(zone)
    if recurring.per == "period" or recurring.proration == "period_days":
        if recurring.proration == "seconds":
            return price * Decimal((end - start).total_seconds()) / Decimal(
                (basis.end - basis.start).total_seconds())
        return price * _days(start, end, tz) / _days(basis.start, basis.end, tz)
    total = Decimal(0)
    for unit in periods(_UNIT[recurring.per], tz, start, end):
        lo, hi = max(unit.start, start), min(unit.end, end)
        if recurring.proration == "seconds":
            used = Decimal((hi - lo).total_seconds()) / Decimal(
                (unit.end - unit.start).total_seconds())
        else:
            used = Decimal(_days(lo, hi, tz)) / _days(unit.start, unit.end, tz)
        total += price * used
    return total


def recurring_items(catalog: Catalog, accounts: Accounts | None, usage_periods: list[tuple],
                    as_of: datetime) -> list[Item]:
    """Every recurring fee and credit due: ``usage_periods`` are (customer, subscriber,
    plan, period start, period end) seen in the rated usage."""
    plans = {p.id: p for p in catalog.model.plans}
    out: list[Item] = []
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
                charged = fee(charge, lo, basis.end if changed else hi, basis, zone)
                out.append(Item(sub["customer_id"], sub["subscriber_id"], sub["plan_id"],
                                period, zone, charge, charged, kind))
                if changed and end <= as_of:
                    where = period if change == "prorate" else period_of(cycle, zone, end)
                    out.append(Item(sub["customer_id"], sub["subscriber_id"], sub["plan_id"],
                                    where, zone, charge,
                                    -fee(charge, end, basis.end, basis, zone), CREDIT))
    for customer_id, subscriber, plan_id, start, end in usage_periods:
        if subscriber in dated or plan_id not in plans or not plans[plan_id].recurring:
            continue
        customer = accounts.customer(customer_id) if accounts else None
        zone = (customer and customer.timezone) or catalog.plan_zone(plans[plan_id])
        period = Period(start.astimezone(UTC), end.astimezone(UTC))
        for charge in plans[plan_id].recurring:
            out.append(Item(customer_id, subscriber, plan_id, period, zone, charge,
                            fee(charge, period.start, period.end, period, zone),
                            f"recurring_{charge.billed}"))
    return out
