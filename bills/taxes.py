"""Taxes on a bill: several per line, by jurisdiction, exclusive or inclusive, compound in
order, exemptions per customer, always on the discounted amount, rounded once per bill
(`invoice` scope) or once per line (`line` scope) by the declared method.

Amounts here are counted in the bill currency's minor units (cents, yen, fils), so
rounding to the currency is rounding to an integer. Lines with the same taxes form a
*case*; within a case every line is taxed by the same formula. In `invoice` scope nothing
is rounded before the bill's total of each tax, so the taxes of a bill depend only on the
sum of its taxable amounts per case: the caller may pass those sums instead of the lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from rules.catalog import Tax
from rules.money import round_decimal

_TO_DECIMAL = np.frompyfunc(Decimal, 1, 1)


def applicable(plan_taxes: list[Tax], catalog_taxes: list[Tax], jurisdiction: str | None,
               exempt: list[str], service: str) -> list[Tax]:
    taxes = list(plan_taxes) + [t for t in catalog_taxes
                                if not t.jurisdictions or jurisdiction in t.jurisdictions]
    return sorted((t for t in taxes if t.name not in exempt
                   and (not t.services or service in t.services)),
                  key=lambda t: t.order)


@dataclass(frozen=True)
class TaxParts:
    """One tax of one case on each of its rows: ``base`` and ``part`` are object arrays of
    Decimals in minor units (exact, or integral when rounded per line)."""

    tax: Tax
    rows: np.ndarray
    base: np.ndarray
    part: np.ndarray


def rounder(method: str):
    """Elementwise rounding of Decimals to integers (minor units) by ``method``."""
    return np.frompyfunc(lambda v: round_decimal(v, 0, method), 1, 1)


def case_taxes(taxable: np.ndarray, rows: np.ndarray, taxes: list[Tax], method: str,
               per_line: bool) -> tuple[np.ndarray, list[TaxParts]]:
    """Tax rows of one case. ``taxable``: integers (minor units, after discounts) of the
    rows ``rows``. Returns the exclusive tax of each row (Decimals; meaningful when
    ``per_line``) and each tax's base and part per row. Inclusive taxes come out of the
    price first; exclusive ones go on top in order, compound ones also on the taxes before
    them. With ``per_line`` every part is rounded where it arises (the net then keeps what
    the rounded inclusive parts leave of the price)."""
    rnd = rounder(method)
    gross = _TO_DECIMAL(taxable.astype(object))
    net = gross
    parts = []
    inclusive = [t for t in taxes if t.inclusive]
    # A price holds its inclusive taxes as they would have been added to the net amount
    # (side by side, or compound on the ones before): tax i is c_i per unit of net, so the
    # price is net * (1 + sum c) and tax i is price * c_i / (1 + sum c).
    per_net, earlier = [], Decimal(0)
    for tax in inclusive:
        c = (1 + earlier if tax.compound else Decimal(1)) * Decimal(tax.rate)
        per_net.append(c)
        earlier += c
    for tax, c in zip(inclusive, per_net, strict=True):
        part = gross * c / (1 + earlier)
        part = rnd(part) if per_line else part
        net = net - part
        parts.append(TaxParts(tax, rows, gross, part))
    earlier = np.full(len(rows), Decimal(0), dtype=object)
    for tax in (t for t in taxes if not t.inclusive):
        base = net + earlier if tax.compound else net
        part = base * Decimal(tax.rate)
        part = rnd(part) if per_line else part
        earlier = earlier + part
        parts.append(TaxParts(tax, rows, base, part))
    return earlier, parts
