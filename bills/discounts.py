"""Discounts on a bill's lines, before tax, in the catalog's stacking order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import numpy as np
import polars as pl

from rules import Accounts, Catalog
from rules.cycles import periods
from rules.money import check_product_fits, round_decimal, round_nanos


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


def apply(lines: pl.DataFrame, bill: np.ndarray, start: np.ndarray, held: list[list[str]],
          taxable: np.ndarray, places: np.ndarray, catalog: Catalog,
          method: str) -> list[tuple]:
    """Reduce ``taxable`` (minor units per line, lines in bill order; ``bill``: each line's
    bill, ``start``: its bill's first line, ``held``: each bill's discounts in force) in
    place, one discount at a time in the stacking order, each on what the previous ones
    left. Returns (discount id, line indices, amounts) for the lines each discount
    reduced."""
    applied = []
    ids = sorted({name for names in held for name in names},
                 key=lambda name: (catalog.model.discounts[name].order, name))
    for name in ids:
        discount = catalog.model.discounts[name]
        holds = np.array([name in names for names in held], dtype=bool)
        eligible = holds[bill] & (taxable > 0)
        for column, values in (("service", discount.services), ("plan_id", discount.plans),
                               ("destination_name", discount.destinations)):
            if values:
                eligible &= lines[column].is_in(values).fill_null(False).to_numpy()
        base = np.where(eligible, taxable, 0)
        if discount.kind == "percentage":
            num, den = Decimal(discount.value).as_integer_ratio()
            check_product_fits(int(base.max(initial=0)), num, f"discount {name!r}")
            amount = round_nanos(base * num, den, method)
        else:
            # a fixed amount finer than the bill's minor unit (2.50 off a yen bill) gives
            # what the currency can carry, never more than declared; lines take it in order
            value = Decimal(discount.value)
            left = np.array([int(round_decimal(value.scaleb(p), 0, "down")) for p in
                             range(int(places.max(initial=0)) + 1)], dtype=np.int64)[places]
            before = np.cumsum(base) - base
            before -= before[start]
            amount = np.clip(left[bill] - before, 0, base)
        amount = np.where(eligible, amount, 0)
        taxable -= amount
        (rows,) = np.nonzero(amount)
        applied.append((name, rows, amount[rows]))
    return applied
