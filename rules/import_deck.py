"""`ratecycle catalog import-deck`: a carrier rate deck becomes a one-plan catalog."""

from __future__ import annotations

from pathlib import Path

import yaml

from .catalog import Catalog, load_catalog
from .deck import import_carrier_deck, write_deck
from .money import to_nanos
from .units import parse_increments


def import_deck(deck_csv: str | Path, out: str | Path, *, currency: str, increments: str = "60/60",
                tax: str | None = None, timezone: str = "UTC", per: str = "minute") -> Catalog:
    """Write ``out`` (catalog YAML) and ``<out stem>.deck.csv`` beside it; return the catalog
    as loaded back, so whatever was written has passed the same validation as any catalog."""
    deck_csv, out = Path(deck_csv), Path(out)
    parse_increments(increments)
    table = import_carrier_deck(deck_csv, zone=timezone)
    deck_file = out.with_name(out.stem + ".deck.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_deck(table, deck_file)
    plan = {
        "id": "default",
        "default": True,
        "timezone": timezone,
        "charges": [{"service": "voice", "deck": "carrier", "per": per, "increments": increments}],
    }
    if tax is not None:
        to_nanos(tax)
        plan["taxes"] = [{"name": "tax", "rate": str(tax)}]
    doc = {
        "catalog": 1,
        "name": f"imported from {deck_csv.name}",
        "currency": currency,
        "timezone": timezone,
        "decks": {"carrier": {"file": deck_file.name}},
        "plans": [plan],
    }
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return load_catalog(out)
