"""`ratecycle catalog import-deck`: a carrier rate deck becomes a one-plan catalog."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

import yaml

from .catalog import Catalog, currency_code, load_catalog, tax_rate, zone_name
from .deck import import_carrier_deck, write_deck
from .errors import CatalogError, DeckImportError, Problem
from .units import parse_increments


def import_deck(deck_csv: str | Path, out: str | Path, *, currency: str, increments: str = "60/60",
                tax: str | None = None, timezone: str = "UTC", per: str = "minute") -> Catalog:
    """Write ``out`` (catalog YAML) and ``<out stem>.deck.csv`` beside it; return the catalog
    as loaded back, so whatever was written has passed the same validation as any catalog.
    Nothing is written unless everything is valid."""
    deck_csv, out = Path(deck_csv), Path(out)
    problems = []
    for name, check, value in (("currency", currency_code, currency),
                               ("increments", parse_increments, increments),
                               ("tax", tax_rate, tax), ("timezone", zone_name, timezone)):
        try:
            if value is not None:
                check(value)
        except ValueError as exc:
            problems.append(Problem(name, str(exc)))
    if problems:
        raise DeckImportError(str(deck_csv), problems)
    table = import_carrier_deck(deck_csv, zone=timezone)
    deck_file = out.with_name(out.stem + ".deck.csv")
    plan = {
        "id": "default",
        "default": True,
        "timezone": timezone,
        "charges": [{"service": "voice", "deck": "carrier", "per": per, "increments": increments}],
    }
    if tax is not None:
        plan["taxes"] = [{"name": "tax", "rate": str(tax)}]
    doc = {
        "catalog": 1,
        "name": f"imported from {deck_csv.name}",
        "currency": currency,
        "timezone": timezone,
        "decks": {"carrier": {"file": deck_file.name}},
        "plans": [plan],
    }
    # Written and validated in a staging folder, then renamed into place: a refused import
    # leaves no half-written catalog behind.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        write_deck(table, staging / deck_file.name)
        (staging / out.name).write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        try:
            catalog = load_catalog(staging / out.name)
        except CatalogError as exc:  # name the files as they would have been written
            raise CatalogError(str(out), [
                Problem(p.where.replace(str(staging), str(out.parent)), p.what)
                for p in exc.problems]) from None
        os.replace(staging / deck_file.name, deck_file)
        os.replace(staging / out.name, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dataclasses.replace(catalog, path=out)
