"""Recurring fees of plans, per subscription and billing period, prorated by day count.

A subscription with a start is charged for every billing period of its customer that it
overlaps up to the run's as-of instant; one without a start (a subscriber on the default
plan, or an account without dates) for each period in which it has usage. The fee of a
period is exact (9 places); the bill line rounds it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rules import Accounts, Catalog
from rules.catalog import Recurring
from rules.cycles import Cycle, Period, periods

_UNIT = {"week": Cycle("weekly"), "month": Cycle("monthly"), "quarter": Cycle("quarterly"),
         "year": Cycle("yearly")}
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class Coverage:
    """A subscription's part of one billing period: [start, end) within ``period``."""

    customer_id: str
    subscriber_id: str
    plan_id: str
    period: Period
    start: datetime
    end: datetime
    zone: str


def _days(start: datetime, end: datetime, zone: ZoneInfo) -> int:
    """Local calendar days touched by [start, end): a day counts when any of it is used."""
    if end <= start:
        return 0
    return ((end - _MICRO).astimezone(zone).date() - start.astimezone(zone).date()).days + 1


def fee(recurring: Recurring, cover: Coverage) -> Decimal:
    """The exact fee for one coverage, by the recurring charge's proration rule."""
    price = Decimal(recurring.price)
    zone = ZoneInfo(cover.zone)
    period = cover.period
    if recurring.per == "period" or recurring.proration == "period_days":
        if recurring.proration == "seconds":
            return price * Decimal((cover.end - cover.start).total_seconds()) / Decimal(
                (period.end - period.start).total_seconds())
        return price * _days(cover.start, cover.end, zone) / _days(period.start, period.end,
                                                                     zone)
    total = Decimal(0)
    for unit in periods(_UNIT[recurring.per], zone, cover.start, cover.end):
        lo, hi = max(unit.start, cover.start), min(unit.end, cover.end)
        if recurring.proration == "seconds":
            used = Decimal((hi - lo).total_seconds()) / Decimal(
                (unit.end - unit.start).total_seconds())
        else:
            used = Decimal(_days(lo, hi, zone)) / _days(unit.start, unit.end, zone)
        total += price * used
    return total


def coverages(catalog: Catalog, accounts: Accounts | None, usage_periods: list[tuple],
              as_of: datetime) -> list[Coverage]:
    """Who owes which recurring fees: ``usage_periods`` are (customer, subscriber, plan,
    period start, period end) seen in the rated usage."""
    plans = {p.id: p for p in catalog.model.plans}
    out: list[Coverage] = []
    dated: set[str] = set()
    if accounts is not None:
        for sub in accounts.subscriptions.iter_rows(named=True):
            if sub["start"] is None or not plans[sub["plan_id"]].recurring:
                continue
            dated.add(sub["subscriber_id"])
            customer = accounts.customer(sub["customer_id"])
            zone = customer.timezone or catalog.plan_zone(plans[sub["plan_id"]])
            end = min(sub["end"] or as_of, as_of)
            for period in periods(customer.cycle.cycle(), zone, sub["start"], end):
                lo, hi = max(period.start, sub["start"]), min(period.end, sub["end"] or
                                                              period.end)
                if hi > lo:
                    out.append(Coverage(sub["customer_id"], sub["subscriber_id"],
                                        sub["plan_id"], period, lo, hi, zone))
    for customer_id, subscriber, plan_id, start, end in usage_periods:
        if subscriber in dated or plan_id not in plans or not plans[plan_id].recurring:
            continue
        customer = accounts.customer(customer_id) if accounts else None
        zone = (customer and customer.timezone) or catalog.plan_zone(plans[plan_id])
        period = Period(start.astimezone(UTC), end.astimezone(UTC))
        out.append(Coverage(customer_id, subscriber, plan_id, period, period.start,
                            period.end, zone))
    return out
