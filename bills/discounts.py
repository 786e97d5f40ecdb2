"""Discounts on a bill's lines, before tax, in the catalog's stacking order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from rules import Accounts, Catalog
from rules.cycles import periods
from rules.money import round_decimal


def in_force(catalog: Catalog, accounts: Accounts | None, customer_id: str, zone: str,
             period_start: datetime, period_end: datetime) -> list:
    """The customer's discounts that apply to the period [period_start, period_end): those
    held from before its end and, for N cycles, within N periods of the one holding
    ``from``; in stacking order."""
    customer = accounts.customers.get(customer_id) if accounts is not None else None
    if customer is None:
        return []
    found = []
    for held in customer.discounts:
        discount = catalog.model.discounts[held.id]
        if not discount.runs_in(period_start):
            continue
        if held.from_ is not None:
            if period_end <= held.from_:
                continue
            earlier = periods(customer.cycle.cycle(), zone, held.from_, period_start)
            if discount.cycles is not None and len(earlier) >= discount.cycles:
                continue
        found.append((held.id, discount))
    return sorted(found, key=lambda d: (d[1].order, d[0]))


def apply(lines: list[dict], discounts: list, places: int, method: str) -> list[tuple]:
    """Reduce ``lines[i]['taxable']`` in place; return (discount id, line index, amount)."""
    applied = []
    for name, discount in discounts:
        eligible = [i for i, line in enumerate(lines)
                    if (not discount.services or line["service"] in discount.services)
                    and (not discount.plans or line["plan_id"] in discount.plans)
                    and (not discount.destinations
                         or line["destination_name"] in discount.destinations)]
        # a fixed amount finer than the bill's minor unit (2.50 off a yen bill) gives
        # what the currency can carry, never more than declared
        left = round_decimal(Decimal(discount.value), places, "down")
        for i in eligible:
            base = lines[i]["taxable"]
            if base <= 0:
                continue
            if discount.kind == "percentage":
                amount = round_decimal(base * Decimal(discount.value), places, method)
            else:
                amount = min(base, left)
                left -= amount
            if amount:
                lines[i]["taxable"] = base - amount
                applied.append((name, i, amount))
    return applied
