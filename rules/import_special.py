"""`ratecycle catalog import-special-numbers`: a carrier's special-number tariff sheet (the
Asterisell PT Prime layout) becomes a native catalog.

Columns: description, number or pattern (trailing ``x`` are wildcards), rate method code,
initial cost, peak cost (weekdays 09:00-21:00), off-peak cost (the rest of the week,
weekends and holidays), maximum cost (``-1``: none). Costs use decimal commas.

**What the initial cost means.** It is the price of the call's first block; after the
block, the peak or off-peak price applies as the method says. The block per method:

====  =====================================  ===========================================
code  method                                 first block (initial cost), then
====  =====================================  ===========================================
1     by second after the first minute       60 s, then per second at the minute price
2     by second after the first 30 seconds   30 s, then per second at the minute price
3     by call                                the whole call: initial cost only
4     by second after the first second       1 s, then per second at the minute price
6     by minute                              60 s, then per minute
8     by second after the first 10 seconds   10 s, then per second at the minute price
9     30 second cycles                       30 s, then each 30 s cycle at the price
====  =====================================  ===========================================

The first block is priced in the band where the call starts; the peak/off-peak price of
each later part follows the band it falls in. Note rows, and rows whose method points to a
price that is not in the sheet (``LocalPT``, ``not applied``, 5, 7), are skipped with a
warning naming the row.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml

from .catalog import Catalog, publish_catalog
from .errors import DeckImportError, Problem
from .money import MoneyError, parse_decimal

# method -> (first block in seconds, price unit of later parts in seconds, their increment)
METHODS = {
    "1": (60, 60, 1),
    "2": (30, 60, 1),
    "4": (1, 60, 1),
    "6": (60, 60, 60),
    "8": (10, 60, 1),
    "9": (30, 30, 30),
}
BY_CALL = "3"
BANDS = {
    "peak": {"weekdays": [1, 2, 3, 4, 5], "from": "09:00", "to": "21:00", "weight": 10},
    "offpeak": {"weight": 0},
    "holiday": {"holidays": True, "weight": 20},
}


def _amount(text: str) -> str:
    value = parse_decimal(text, decimal_comma=True)
    if value < 0:
        raise MoneyError(f"{text!r} is negative")
    return format(value.normalize(), "f")


def _rate(method: str, initial: str, price: str, max_cost: str | None) -> dict:
    if method == BY_CALL:
        rate = {"connect_fee": initial,
                "slots": [{"from": 0, "rate": "0", "per": "minute", "increment": 1}]}
    else:
        block, unit, increment = METHODS[method]
        rate = {"slots": [{"from": 0, "rate": initial, "per": block, "increment": block},
                          {"from": block, "rate": price, "per": unit, "increment": increment}]}
    if max_cost is not None:
        rate.update(max_cost=max_cost, max_cost_policy="cap")
    return rate


def import_special_numbers(sheet: str | Path, out: str | Path, *, currency: str,
                           timezone: str = "Europe/Lisbon", country: str | None = None
                           ) -> tuple[Catalog, list[Problem]]:
    """Write ``out`` and ``<stem>.deck.csv``; return the catalog and the skipped rows."""
    sheet, out = Path(sheet), Path(out)
    try:
        with sheet.open(newline="", encoding="utf-8", errors="replace") as handle:
            lines = list(csv.reader(handle))
    except OSError as exc:
        raise DeckImportError(str(sheet), [Problem(str(sheet), exc.strerror)]) from None
    problems, skipped = [], []
    rates: dict[str, dict] = {}
    deck: list[dict] = []
    for number, cells in enumerate(lines[1:], start=2):
        where = f"{sheet}:{number}"
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) < 7 or cells[0].strip().upper() == "RATE METHOD NOTE":
            skipped.append(Problem(where, "a note row, not a price; skipped"))
            continue
        name, pattern, method = (c.strip() for c in cells[:3])
        if method not in METHODS and method != BY_CALL:
            skipped.append(Problem(where, f"rate method {method!r} points to a price that is "
                                   "not in the sheet; skipped"))
            continue
        prefix = pattern.rstrip("xX")
        if not prefix.isdigit():
            problems.append(Problem(where, f"number or pattern {pattern!r} is not digits "
                                    "followed by x wildcards"))
            continue
        try:
            initial, peak, offpeak = (_amount(c) for c in cells[3:6])
            max_cost = None if cells[6].strip() in ("-1", "") else _amount(cells[6])
        except MoneyError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        full = (country or "") + prefix
        for band, price in (("peak", peak), ("offpeak", offpeak), ("holiday", offpeak)):
            rate_id = f"r{number}-{band}"
            rates[rate_id] = _rate(method, initial, price, max_cost)
            deck.append({"prefix": full, "destination": name, "rate_id": rate_id,
                         "band": band})
    seen: dict[tuple, int] = {}
    for k, row in enumerate(deck):
        key = (row["prefix"], row["band"])
        if key in seen:
            problems.append(Problem(f"{sheet}", f"number {row['prefix']!r} appears twice "
                                    f"({row['destination']!r})"))
        seen.setdefault(key, k)
    if problems:
        raise DeckImportError(str(sheet), problems)
    text = io.StringIO()
    writer = csv.DictWriter(text, ["prefix", "destination", "rate_id", "band"])
    writer.writeheader()
    writer.writerows(deck)
    deck_name = out.stem + ".deck.csv"
    doc = {
        "catalog": 1,
        "name": f"imported from {sheet.name}",
        "currency": currency,
        "timezone": timezone,
        "bands": BANDS,
        "rates": rates,
        "decks": {"special": {"file": deck_name}},
        "plans": [{"id": "default", "default": True,
                   "charges": [{"service": "voice", "deck": "special"}]}],
    }
    files = {deck_name: text.getvalue(),
             out.name: yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)}
    return publish_catalog(files, out), skipped
