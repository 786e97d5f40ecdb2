"""Credit balances: a bill whose credits exceed its charges is never silently negative.

After discounts and taxes, each customer's bills in one currency are taken in period
order. A bill whose total is below zero gets a ``credit_carried`` line of the missing
amount (positive: the bill then totals exactly 0), and that amount becomes the customer's
credit balance. A later bill with a positive total gets a ``credit_applied`` line (negative)
taking as much of the balance as its total allows, never below 0. What is left after the
last bill is the ``balances`` table (customer, currency, carried, applied, balance).

Balance lines are after tax (a carried credit already holds the tax it reversed), so they
get no discount and no tax; a bill's total stays exactly its lines less their discounts
plus its exclusive taxes. Their service is ``credit``; subscriber and plan are empty.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from .schema import BILL_KEYS

CARRIED = "credit_carried"
APPLIED = "credit_applied"
BALANCE_SCHEMA = {"customer_id": pl.String, "currency": pl.String,
                  "carried": pl.Decimal(38, 9), "applied": pl.Decimal(38, 9),
                  "balance": pl.Decimal(38, 9)}


def carry_credits(lines: pl.DataFrame,
                  bills: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(lines, bills, balances) with negative totals carried to the customer's next bills."""
    if bills.is_empty() or bills["total"].min() >= 0:
        return lines, bills, pl.DataFrame(schema=BALANCE_SCHEMA)
    last_line = {tuple(r[:-1]): r[-1] for r in
                 lines.group_by(BILL_KEYS).agg(pl.col("line_no").max()).rows()}
    extra, out, balances = [], [], {}
    for bill in bills.to_dicts():  # in BILL_KEYS order: each customer's periods in order
        account = (bill["customer_id"], bill["currency"])
        state = balances.get(account)
        total = bill["total"]
        if total < 0:
            amount = -total
            state = balances.setdefault(account, [Decimal(0), Decimal(0)])
            state[0] += amount
        elif total > 0 and state and state[0] - state[1] > 0:
            amount = -min(state[0] - state[1], total)
            state[1] -= amount
        else:
            out.append(bill)
            continue
        key = {k: bill[k] for k in BILL_KEYS}
        no = last_line[tuple(key.values())] + 1
        extra.append({**key, "subscriber_id": None, "plan_id": None, "service": "credit",
                      "destination_name": ("credit carried to the next bill" if amount > 0
                                           else "credit from an earlier bill"),
                      "events": 0, "quantity": 0, "billed_quantity": 0,
                      "amount_exact": amount, "amount": amount, "discount": Decimal(0),
                      "tax": Decimal(0), "line_no": no,
                      "line_type": CARRIED if amount > 0 else APPLIED})
        out.append({**bill, "lines": bill["lines"] + 1, "subtotal": bill["subtotal"] + amount,
                    "total": total + amount})
    added = pl.DataFrame(extra, schema={k: lines.schema[k] for k in extra[0]})
    lines = pl.concat([lines, added], how="diagonal_relaxed").sort(*BILL_KEYS, "line_no")
    bills = pl.DataFrame(out, schema=bills.schema)
    balance_rows = [{"customer_id": c, "currency": cur, "carried": carried,
                     "applied": applied, "balance": carried - applied}
                    for (c, cur), (carried, applied) in sorted(balances.items())]
    return lines, bills, pl.DataFrame(balance_rows, schema=BALANCE_SCHEMA)
