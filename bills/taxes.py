"""Taxes on a bill: several per line, by jurisdiction, exclusive or inclusive, compound in
order, exemptions per customer, always on the discounted amount, rounded once per bill
(`invoice` scope) or once per line (`line` scope) by the declared method."""

from __future__ import annotations

from decimal import Decimal

from rules.catalog import Tax
from rules.money import round_decimal


def applicable(plan_taxes: list[Tax], catalog_taxes: list[Tax], jurisdiction: str | None,
               exempt: list[str], service: str) -> list[Tax]:
    taxes = list(plan_taxes) + [t for t in catalog_taxes
                                if not t.jurisdictions or jurisdiction in t.jurisdictions]
    return sorted((t for t in taxes if t.name not in exempt
                   and (not t.services or service in t.services)),
                  key=lambda t: t.order)


def compute(lines: list[dict], places: int, method: str, scope: str) -> list[dict]:
    """``lines``: dicts with ``taxable`` (Decimal, after discounts) and ``taxes`` (ordered
    Tax list). Returns one dict per tax name: base, rate, tax, inclusive; sets
    ``line['tax']`` (exclusive tax of the line when the scope is `line`)."""
    totals: dict[str, dict] = {}
    for line in lines:
        line["tax"] = Decimal(0)
        line["net"] = line["taxable"]
    # Inclusive taxes come out of the price first; exclusive ones go on top, in order.
    for line in lines:
        for tax in (t for t in line["taxes"] if t.inclusive):
            rate = Decimal(tax.rate)
            exact = line["net"] * rate / (1 + rate)
            part = round_decimal(exact, places, method) if scope == "line" else exact
            line["net"] -= part
            _add(totals, tax, line["taxable"], part)
    for line in lines:
        earlier = Decimal(0)
        for tax in (t for t in line["taxes"] if not t.inclusive):
            base = line["net"] + (earlier if tax.compound else 0)
            exact = base * Decimal(tax.rate)
            part = round_decimal(exact, places, method) if scope == "line" else exact
            earlier += part
            line["tax"] += part
            _add(totals, tax, base, part)
    for entry in totals.values():
        entry["tax"] = round_decimal(entry["tax"], places, method)
        if entry["inclusive"]:
            entry["base"] = round_decimal(entry["base"], places, method)
    if scope != "line":
        for line in lines:
            line["net"] = round_decimal(line["net"], places, method)
    return list(totals.values())


def _add(totals: dict, tax: Tax, base: Decimal, part: Decimal) -> None:
    entry = totals.setdefault(tax.name, {"tax_name": tax.name, "tax_rate": Decimal(tax.rate),
                                         "base": Decimal(0), "tax": Decimal(0),
                                         "inclusive": tax.inclusive})
    entry["base"] += base
    entry["tax"] += part
