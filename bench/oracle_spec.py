"""The benchmark tariff as plain values, read from the generated catalog YAML by the oracles.

The two oracles (``oracle_duckdb``, ``oracle_polars``) rate independently of ratecycle: they
do not use its catalog models, compiled tariff or rating code. This module only reads the
YAML with PyYAML and refuses anything the oracles do not implement, so an oracle never
silently prices a tariff it does not understand. It decides no price itself.

What the oracles implement (the shape ``bench/generate.py`` writes):

- bands with ``weekdays``, ``from``, ``to`` and ``weight`` in the catalog's zone;
- voice priced by a deck (longest prefix; a row per band with ``rate``, ``connect_fee``
  and ``increments`` F/1: the first F seconds as one block, then per second, each second
  priced in the band in force when it starts, the first block and the connect fee in the
  band at the call's start);
- other services at a flat ``rate`` per unit with F/F increments, priced at their start;
- every plan pricing alike (plan selection does not change a price).
BUNDLE / GRADUATED: bundles and graduated tiers are not in the catalog yet; when
generate.py adds them, read them here and price them in both oracles.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
import yaml

UNITS = {"second": 1, "minute": 60, "hour": 3600, "message": 1, "byte": 1, "unit": 1,
         "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}

# The rated columns the oracles write, named and typed as in ratecycle's rated usage.
OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "status": pl.String(),
    "reason": pl.String(),
    "matched_prefix": pl.String(),
    "billed_quantity": pl.Int64(),
    "amount": pl.Decimal(38, 9),
}
RATED, UNRATED = "rated", "unrated"
NO_RATE, NO_TARIFF = "no_rate", "no_tariff"


class UnsupportedTariff(ValueError):
    """The catalog uses something the oracles do not implement."""


def nanos(text) -> int:
    """Decimal text -> integer nanos, refusing more than 9 places (no float involved)."""
    if isinstance(text, float):
        raise UnsupportedTariff(f"amount {text!r} is a float")
    value = Decimal(str(text)) * 10**9
    if value != value.to_integral_value():
        raise UnsupportedTariff(f"amount {text!r} has more than 9 decimal places")
    return int(value)


def _clock(value) -> int:
    if isinstance(value, int):  # YAML 1.1 reads 08:00 as sexagesimal minutes
        return value * 60
    h, m = str(value).split(":")[:2]
    return int(h) * 3600 + int(m) * 60


@dataclass(frozen=True)
class Band:
    name: str
    weekdays: frozenset[int]  # ISO weekdays; all seven when the band names none
    start_s: int  # [start_s, end_s) seconds of the local day
    end_s: int
    weight: int


@dataclass(frozen=True)
class Flat:
    service: str
    rate: int  # nanos per unit
    unit: int  # quantity units per rate unit
    increment: int
    connect: int
    destination: str


@dataclass(frozen=True)
class Spec:
    zone: str
    bands: tuple[Band, ...]  # in order of preference: weight, then later start, then name
    deck: Path
    voice_unit: int
    first_block: int  # F of the voice increments F/1
    flats: dict[str, Flat]

    @property
    def band_edges(self) -> list[int]:
        """Seconds of the local day where some band starts or ends."""
        return sorted({0} | {b.start_s for b in self.bands} | {b.end_s for b in self.bands
                                                                if b.end_s < 86400})


def _increments(text) -> tuple[int, int]:
    first, _, nxt = str(text).partition("/")
    return int(first), int(nxt or first)


def read_spec(catalog_path: str | Path) -> Spec:
    path = Path(catalog_path)
    raw = yaml.safe_load(path.read_text())
    if raw.get("holidays") or raw.get("profiles") or raw.get("rates"):
        raise UnsupportedTariff("holidays, profiles and named rates are not implemented")
    if raw.get("rounding", {}).get("profile", "native") != "native":
        raise UnsupportedTariff("only the native rounding profile is implemented")
    bands = []
    for name, band in (raw.get("bands") or {}).items():
        unknown = set(band) - {"weekdays", "from", "to", "weight"}
        if unknown:
            raise UnsupportedTariff(f"band {name}: {sorted(unknown)} not implemented")
        days = band.get("weekdays")
        bands.append(Band(
            name=name,
            weekdays=frozenset(WEEKDAYS[d[:3].lower()] if isinstance(d, str) else (d or 7)
                               for d in days) if days else frozenset(range(1, 8)),
            start_s=_clock(band.get("from", "00:00")),
            end_s=_clock(band.get("to", "24:00")),
            weight=int(band.get("weight", 0)),
        ))
    bands.sort(key=lambda b: (-b.weight, -b.start_s, b.name))
    plans = raw["plans"]
    charges = [tuple(sorted((c["service"], repr(sorted(c.items()))) for c in p["charges"]))
               for p in plans]
    if len(set(charges)) != 1:
        # BUNDLE / GRADUATED: plans differ once voice300 has its bundle; then the oracles
        # need the accounts (subscriber -> plan) and this check goes.
        raise UnsupportedTariff("plans price differently; plan selection is not implemented")
    flats, voice = {}, None
    for c in plans[0]["charges"]:
        known = {"service", "deck", "rate", "per", "increments", "connect_fee", "destination"}
        if set(c) - known:
            raise UnsupportedTariff(f"charge {c['service']}: {sorted(set(c) - known)}")
        if "deck" in c:
            if c["service"] != "voice":
                raise UnsupportedTariff("only voice is priced by a deck")
            voice = c
            continue
        first, nxt = _increments(c.get("increments", "1/1"))
        if first != nxt:
            raise UnsupportedTariff(f"{c['service']}: increments {first}/{nxt}")
        flats[c["service"]] = Flat(c["service"], nanos(c["rate"]), UNITS[c.get("per", "unit")],
                                   first, nanos(c.get("connect_fee", "0")),
                                   c.get("destination") or c["service"])
    if voice is None:
        raise UnsupportedTariff("no voice deck charge")
    deck = path.parent / raw["decks"][voice["deck"]]["file"]
    rows = pl.read_csv(deck, columns=["prefix", "band", "increments"], infer_schema=False)
    parsed = {_increments(text) for text in rows["increments"].unique().to_list()}
    per_prefix = rows.group_by("prefix").agg(pl.col("band").n_unique())["band"]
    if rows["band"].null_count() or not (per_prefix == len(bands)).all():
        raise UnsupportedTariff("every deck prefix needs one row per band")
    if len(parsed) != 1 or next(iter(parsed))[1] != 1:
        raise UnsupportedTariff(f"deck increments {sorted(parsed)}: one F/1 is implemented")
    return Spec(zone=raw.get("timezone", "UTC"), bands=tuple(bands), deck=deck,
                voice_unit=UNITS[voice.get("per", "minute")],
                first_block=next(iter(parsed))[0], flats=flats)
