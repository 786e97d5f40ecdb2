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
- every plan pricing alike, except for one optional voice bundle per plan: ``allowance``
  seconds per subscriber and billing period, drawn by the subscriber's rated calls in
  event order (start, then event id), in billed seconds; a partly covered call is
  covered from its start (the first block first), every part paying for its seconds
  after the covered ones; a ``waived`` connect fee is dropped when the call is covered
  whole;
- graduated ``tiers`` on a flat charge: each event costs G(before + q) - G(before), q its
  billed units and ``before`` the billed units of the subscriber's earlier events of the
  charge in the billing period, G the exact tiered price rounded half up once to 9 places;
- billing periods: calendar months in the catalog's zone (no customer zone, cycle or
  anchor in the accounts, no collection window, so no late usage);
- the explanation columns of rated usage: no named rates (``rate_id`` null), no maximum
  cost (``flags`` null), one currency, deck rows without versions (a span's ``version``
  null); a flat charge is priced in one span of the band ``all``;
- bills (``oracle_bills``): a line per subscriber, plan, service and destination name,
  its sum rounded half up to cents; percentage discounts held in the accounts, each line
  rounded; exclusive plan taxes rounded once per bill.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
import yaml

UNITS = {"second": 1, "minute": 60, "hour": 3600, "message": 1, "byte": 1, "unit": 1,
         "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
MINOR_UNITS = {"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "JPY": 0, "BHD": 3}
WEEKDAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}

MONEY = pl.Decimal(38, 9)
SPAN = pl.Struct({"band": pl.String, "slot": pl.Int32, "version": pl.Datetime("us", "UTC"),
                  "billed_quantity": pl.Int64, "cost": MONEY})
BUNDLE_DRAW = pl.Struct({"bundle": pl.String, "quantity": pl.Int64})

# The rated columns the oracles write after event_id (and after the usage columns with
# ``keep_usage``), named, typed and ordered as in ratecycle's rated usage (DESIGN.md,
# "Rated usage"); written down here, not imported, so a change there is a mismatch here.
OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "status": pl.String(),
    "reason": pl.String(),
    "plan_id": pl.String(),
    "tariff": pl.String(),
    "deck": pl.String(),
    "matched_prefix": pl.String(),
    "destination_name": pl.String(),
    "rate_id": pl.String(),
    "rate": MONEY,
    "rate_unit": pl.String(),
    "connect_fee": MONEY,
    "increments": pl.String(),
    "billed_quantity": pl.Int64(),
    "bundle_quantity": pl.Int64(),
    "bundles": pl.List(BUNDLE_DRAW),
    "tier": pl.Int32(),
    "amount": MONEY,
    "flags": pl.String(),
    "currency": pl.String(),
    "customer_id": pl.String(),
    "period_start": pl.Datetime("us", "UTC"),
    "period_end": pl.Datetime("us", "UTC"),
    "cycle_start": pl.Date(),
    "cycle_end": pl.Date(),
    "late": pl.Boolean(),
    "usage_period_start": pl.Datetime("us", "UTC"),
    "spans": pl.List(SPAN),
    "run_id": pl.String(),
}
FLAT_BAND = "all"  # the band a span of an unbanded (flat) charge names
RATED, UNRATED = "rated", "unrated"
NO_RATE, NO_TARIFF, NO_SUBSCRIPTION = "no_rate", "no_tariff", "no_subscription"


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
    rate: int  # nanos per unit (0 with tiers)
    unit: int  # quantity units per rate unit
    per: str  # the rate unit's name (``per`` in the catalog)
    increment: int
    connect: int
    destination: str
    # graduated: (upper bound in quantity units, inclusive, or None; nanos per unit)
    tiers: tuple[tuple[int | None, int], ...] = ()


@dataclass(frozen=True)
class VoiceBundle:
    name: str
    allowance: int  # seconds
    waive_connect: bool


@dataclass(frozen=True)
class Billing:
    """What bills need: the currency's minor units, percentage discounts by id (numerator,
    denominator) and each plan's exclusive taxes (name, numerator, denominator)."""
    minor_units: int
    discounts: dict[str, tuple[int, int]]
    taxes: dict[str, tuple[tuple[str, int, int], ...]]


@dataclass(frozen=True)
class Spec:
    zone: str
    currency: str
    bands: tuple[Band, ...]  # in order of preference: weight, then later start, then name
    deck_name: str  # the catalog's name of the voice deck
    deck: Path
    voice_unit: int
    voice_per: str  # the voice rate unit's name
    first_block: int  # F of the voice increments F/1
    flats: dict[str, Flat]
    default_plan: str | None
    bundles: dict[str, VoiceBundle]  # plan id -> its voice bundle (plans without: absent)
    billing: Billing

    @property
    def voice_increments(self) -> str:
        return f"{self.first_block}/1"

    @property
    def band_edges(self) -> list[int]:
        """Seconds of the local day where some band starts or ends."""
        return sorted({0} | {b.start_s for b in self.bands} | {b.end_s for b in self.bands
                                                                if b.end_s < 86400})


DECK_COLUMNS = {"prefix", "destination", "rate", "band", "connect_fee", "increments"}


def fraction(text) -> tuple[int, int]:
    """Decimal text -> (numerator, denominator), exactly."""
    sign, digits, exponent = Decimal(str(text)).as_tuple()
    num = int("".join(map(str, digits))) * (-1 if sign else 1)
    return (num * 10**exponent, 1) if exponent >= 0 else (num, 10**-exponent)


def _increments(text) -> tuple[int, int]:
    first, _, nxt = str(text).partition("/")
    return int(first), int(nxt or first)


def read_spec(catalog_path: str | Path) -> Spec:
    path = Path(catalog_path)
    raw = yaml.safe_load(path.read_text())
    if raw.get("holidays") or raw.get("profiles") or raw.get("rates"):
        raise UnsupportedTariff("holidays, profiles and named rates are not implemented")
    rounding = raw.get("rounding") or {}
    if rounding.get("profile", "native") != "native":
        raise UnsupportedTariff("only the native rounding profile is implemented")
    if (rounding.get("line", "half_up"), rounding.get("tax", "half_up"),
            rounding.get("tax_scope", "invoice")) != ("half_up", "half_up", "invoice"):
        raise UnsupportedTariff("bills: only half_up lines and taxes, rounded per invoice")
    if raw.get("collection_window_hours") is not None or raw.get("taxes"):
        raise UnsupportedTariff("collection windows and catalog-level taxes not implemented")
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
        raise UnsupportedTariff("plans price differently; only bundles may differ")
    bundles, taxes = {}, {}
    for p in plans:
        if set(p) - {"id", "default", "taxes", "charges", "bundles"}:
            raise UnsupportedTariff(f"plan {p['id']}: {sorted(set(p) - {'id'})}")
        found = p.get("bundles") or []
        if len(found) > 1 or any(b["service"] != "voice" or b.get("destinations")
                                 or b.get("bands") for b in found):
            raise UnsupportedTariff(f"plan {p['id']}: one voice bundle for every "
                                    "destination and band is implemented")
        for b in found:
            bundles[p["id"]] = VoiceBundle(b["name"],
                                           int(b["allowance"]) * UNITS[b.get("per", "unit")],
                                           b.get("connect_fee", "charged") == "waived")
        for t in p.get("taxes") or []:
            if set(t) - {"name", "rate"}:
                raise UnsupportedTariff(f"plan {p['id']}: tax {t['name']}: only exclusive "
                                        "taxes for every customer and service")
        taxes[p["id"]] = tuple((t["name"], *fraction(t["rate"])) for t in p.get("taxes") or [])
    discounts = {}
    for name, d in (raw.get("discounts") or {}).items():
        if d.get("kind") != "percentage" or set(d) - {"kind", "value"}:
            raise UnsupportedTariff(f"discount {name}: only unrestricted percentages")
        discounts[name] = fraction(d["value"])
    default = next((p["id"] for p in plans if p.get("default")), None)
    flats, voice = {}, None
    for c in plans[0]["charges"]:
        known = {"service", "deck", "rate", "per", "increments", "connect_fee", "destination",
                 "tiers"}
        if set(c) - known:
            raise UnsupportedTariff(f"charge {c['service']}: {sorted(set(c) - known)}")
        if "deck" in c:
            if c["service"] != "voice":
                raise UnsupportedTariff("only voice is priced by a deck")
            if "connect_fee" in c:
                raise UnsupportedTariff("voice: connect fees come from the deck's rows")
            voice = c
            continue
        first, nxt = _increments(c.get("increments", "1/1"))
        if first != nxt:
            raise UnsupportedTariff(f"{c['service']}: increments {first}/{nxt}")
        per = c.get("per", "unit")
        unit = UNITS[per]
        tiers = ()
        if "tiers" in c:
            if c["tiers"].get("model") != "graduated" or "rate" in c or any(
                    set(t) - {"up_to", "rate"} for t in c["tiers"]["tiers"]):
                raise UnsupportedTariff(f"{c['service']}: only graduated tiers, no flat fees")
            tiers = tuple((None if t.get("up_to") is None else int(t["up_to"]) * unit,
                           nanos(t["rate"])) for t in c["tiers"]["tiers"])
        flats[c["service"]] = Flat(c["service"], 0 if tiers else nanos(c["rate"]), unit, per,
                                   first, nanos(c.get("connect_fee", "0")),
                                   c.get("destination") or c["service"], tiers)
    if voice is None:
        raise UnsupportedTariff("no voice deck charge")
    deck = path.parent / raw["decks"][voice["deck"]]["file"]
    header = pl.read_csv(deck, n_rows=0, infer_schema=False).columns
    if set(header) - DECK_COLUMNS:
        raise UnsupportedTariff(f"deck columns {sorted(set(header) - DECK_COLUMNS)} "
                                "(named rates, weights, versions, minimums) not implemented")
    rows = pl.read_csv(deck, columns=["prefix", "band", "increments"], infer_schema=False)
    parsed = {_increments(text) for text in rows["increments"].unique().to_list()}
    per_prefix = rows.group_by("prefix").agg(pl.col("band").n_unique())["band"]
    if rows["band"].null_count() or not (per_prefix == len(bands)).all():
        raise UnsupportedTariff("every deck prefix needs one row per band")
    if len(parsed) != 1 or next(iter(parsed))[1] != 1:
        raise UnsupportedTariff(f"deck increments {sorted(parsed)}: one F/1 is implemented")
    return Spec(zone=raw.get("timezone", "UTC"), currency=raw["currency"],
                bands=tuple(bands), deck_name=voice["deck"], deck=deck,
                voice_unit=UNITS[voice.get("per", "unit")], voice_per=voice.get("per", "unit"),
                first_block=next(iter(parsed))[0], flats=flats, default_plan=default,
                bundles=bundles,
                billing=Billing(MINOR_UNITS[raw["currency"]], discounts, taxes))


def run_id(oracle: str, spec: Spec, catalog_path: str | Path,
           accounts_path: str | Path | None) -> str:
    """The oracle's own run id: its name and a digest of the catalog, deck and accounts it
    read (stable across runs; not ratecycle's run id, and not compared with it)."""
    digest = hashlib.sha256(oracle.encode())
    for path in (catalog_path, spec.deck, accounts_path):
        digest.update(b"\0" + (Path(path).read_bytes() if path is not None else b""))
    return f"{oracle}-{digest.hexdigest()[:16]}"


ACCOUNT_COLUMNS = {"subscriber_id", "plan_id", "customer_id", "discounts"}


def read_accounts(path: str | Path | None) -> pl.DataFrame:
    """subscriber_id, plan_id, customer_id, discounts (a list of ids) from an accounts
    Parquet file with one subscription per subscriber and nothing the oracles do not
    implement (zones, cycles, anchors, start and end, trials, jurisdictions)."""
    schema = {"subscriber_id": pl.String, "plan_id": pl.String, "customer_id": pl.String,
              "discounts": pl.List(pl.String)}
    if path is None:
        return pl.DataFrame(schema=schema)
    frame = pl.read_parquet(path)
    extra = [c for c in frame.columns
             if c not in ACCOUNT_COLUMNS and frame[c].null_count() < len(frame)]
    if extra or str(path).endswith((".yaml", ".yml", ".csv")):
        raise UnsupportedTariff(f"accounts: {extra} not implemented")
    if frame["subscriber_id"].is_duplicated().any():
        raise UnsupportedTariff("accounts: one subscription per subscriber is implemented")
    if "customer_id" not in frame.columns:
        frame = frame.with_columns(customer_id=pl.col("subscriber_id"))
    if "discounts" not in frame.columns:
        frame = frame.with_columns(discounts=pl.lit(None, pl.String))
    return frame.select(
        "subscriber_id", "plan_id",
        customer_id=pl.col("customer_id").fill_null(pl.col("subscriber_id")),
        discounts=pl.col("discounts").fill_null("").str.split(";")
        .list.eval(pl.element().filter(pl.element() != "")),
    )
