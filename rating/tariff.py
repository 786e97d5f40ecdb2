"""A catalog compiled for rating: per (plan, service) a trie of destinations; flat arrays of
entries (one prefix version), bindings (band -> rate), rates and rate slots."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property

import numpy as np
import polars as pl

from rules import Catalog, DeckCharge
from rules.catalog import Band, Rate
from rules.money import INT64_MAX, ROUNDING_METHODS, minor_units, nanos_to_arrow, to_nanos
from rules.units import RATE_UNITS, parse_increments

from .calendar import ALWAYS, build_calendar, from_micros, micros
from .errors import RatingError
from .kernels.prefix import ALWAYS as SINCE_EVER
from .kernels.prefix import Trie
from .kernels.price import NO_LIMIT

NEVER = int(np.iinfo(np.int64).max)


@dataclass(frozen=True)
class RateParams:
    """A rate reduced to integers: what the span kernel and the pricing need."""

    name: str
    connect: int
    slots: tuple[tuple[int, int, int, int, str], ...]  # (from, rate nanos, unit, increment, per)
    min_billed: int = 0
    free_below: int = 0
    max_cost: int = NO_LIMIT
    flag_max_cost: bool = False
    round_method: int = NO_LIMIT  # index into ROUNDING_METHODS
    round_decimals: int = 9


def _per_text(per) -> str:
    return per if isinstance(per, str) else f"{per} units"


def _unit(per) -> int:
    return per if isinstance(per, int) else RATE_UNITS[per][1]


def named_rate(name: str, rate: Rate) -> RateParams:
    rounding = rate.total_rounding
    return RateParams(
        name=name,
        connect=to_nanos(rate.connect_fee),
        slots=tuple((s.from_, to_nanos(s.rate), _unit(s.per), s.increment, _per_text(s.per))
                    for s in rate.slots),
        min_billed=rate.min_billed,
        free_below=rate.free_below,
        max_cost=NO_LIMIT if rate.max_cost is None else to_nanos(rate.max_cost),
        flag_max_cost=rate.max_cost_policy == "flag",
        round_method=NO_LIMIT if rounding is None else ROUNDING_METHODS.index(rounding.method),
        round_decimals=9 if rounding is None else rounding.decimals,
    )


def inline_rate(charge, rate_nanos: int, connect: int | None, first: int | None,
                nxt: int | None, min_billed: int | None) -> RateParams:
    """A deck row's or flat price's rate: the first block, then next blocks, at one price,
    with the charge's defaults where the row gives none."""
    if first is None:
        first, nxt = parse_increments(charge.increments)
    unit, per = _unit(charge.per), _per_text(charge.per)
    slots = [(0, rate_nanos, unit, first or nxt, per)]
    if first and first != nxt:
        slots.append((first, rate_nanos, unit, nxt, per))
    return RateParams(
        name="",
        connect=to_nanos(charge.connect_fee) if connect is None else connect,
        slots=tuple(slots),
        min_billed=charge.min_billed if min_billed is None else min_billed,
        free_below=charge.free_below,
        max_cost=NO_LIMIT if charge.max_cost is None else to_nanos(charge.max_cost),
        flag_max_cost=charge.max_cost_policy == "flag",
    )


@dataclass
class _Builder:
    rates: dict[RateParams, int] = field(default_factory=dict)
    bindings: list[tuple[int, int, int, int, str]] = field(default_factory=list)

    def rate(self, params: RateParams) -> int:
        return self.rates.setdefault(params, len(self.rates))


@dataclass(frozen=True)
class CompiledTariff:
    """Everything rating needs, as arrays. Tariff t is one (plan, service)."""

    plan_ids: list[str]  # the catalog's plans in order: a plan's code is its place here
    tariff_keys: dict[tuple[str, str], int]
    tariff_zone: list[str]
    tariff_bands: list[list[Band | None]]  # bit k of a tariff's masks is band k
    tariff_split: np.ndarray
    tariff_charge: list  # the plan's charge each tariff compiles
    has_bundles: bool
    holidays: frozenset[date]
    roots: np.ndarray
    trie: tuple
    entries: pl.DataFrame  # tariff, deck, matched_prefix, destination_name, effective_from
    entry: dict[str, np.ndarray]  # mask, bind_lo, bind_hi, next, next_from
    binding: dict[str, np.ndarray]  # bit, weight, from, rate
    binding_band: list[str]
    rate: dict[str, np.ndarray]  # connect, slot_lo, slot_hi, min_billed, free_below, ...
    rate_params: list[RateParams]
    slot: dict[str, np.ndarray]  # from, rate, unit, increment, place, max_billed
    cgrates_decimals: int | None

    _calendars: dict = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def rate_explained(self) -> pl.DataFrame:
        """Per rate, the explanation columns: its catalog name, its first slot's price,
        the rate unit, the connect fee and the increments."""
        params = self.rate_params
        return pl.DataFrame({
            "rate_id": pl.Series([r.name or None for r in params], dtype=pl.String),
            "rate": pl.from_arrow(nanos_to_arrow(self.slot["rate"][self.rate["slot_lo"]])),
            "rate_unit": pl.Series([r.slots[0][4] for r in params], dtype=pl.String),
            "connect_fee": pl.from_arrow(nanos_to_arrow(self.rate["connect"])),
            "increments": pl.Series(
                ["/".join(str(sl[3]) for sl in r.slots) if len(r.slots) > 1
                 else f"{r.slots[0][3]}/{r.slots[0][3]}" for r in params], dtype=pl.String),
        })

    def calendar(self, t: int, lo_us: int, hi_us: int) -> tuple[np.ndarray, np.ndarray]:
        """Tariff t's band calendar covering [lo_us, hi_us], built for whole UTC months and
        kept: the buckets of a run (and tariffs with the same bands) share it."""
        latest = micros(datetime(9998, 12, 1, tzinfo=UTC))  # a calendar needs real dates
        lo, hi = from_micros(min(lo_us, latest)), from_micros(min(hi_us, latest))
        first = micros(datetime(lo.year, lo.month, 1, tzinfo=UTC))
        last = micros(datetime(hi.year + hi.month // 12, hi.month % 12 + 1, 1, tzinfo=UTC))
        bands = self.tariff_bands[t]
        same = (tuple(id(b) for b in bands), self.tariff_zone[t])
        # a snapshot: tasks on two threads may add calendars meanwhile
        for (key, lo_kept, hi_kept), kept in list(self._calendars.items()):
            if key == same and lo_kept <= first and last <= hi_kept:
                return kept
        if len(self._calendars) > 64:
            self._calendars.clear()
        kept = build_calendar(bands, self.tariff_zone[t], self.holidays, first, last)
        self._calendars[(same, first, last)] = kept
        return kept

    @property
    def cumulative(self) -> bool:
        """Some plan has bundles or graduated tiers, whose use runs over a whole period."""
        return self.has_bundles or any(
            getattr(c, "tiers", None) is not None and c.tiers.model == "graduated"
            for c in self.tariff_charge)

    @cached_property
    def _services(self) -> list[str]:
        return list(dict.fromkeys(s for _, s in self.tariff_keys))

    @cached_property
    def _tariff_of(self) -> np.ndarray:
        """tariff per (plan code, service code); the last row and column (code -1: no such
        plan or service) hold -1."""
        plans, services = self.plan_ids, self._services
        table = np.full((len(plans) + 1, len(services) + 1), -1, dtype=np.int64)
        for (p, s), t in self.tariff_keys.items():
            table[plans.index(p), services.index(s)] = t
        return table

    def service_codes(self, service: pl.Series) -> np.ndarray:
        """Each service's code (-1: one no tariff prices), by one comparison per service
        the catalog prices (a handful), cheaper than hashing every row."""
        code = pl.lit(-1, pl.Int64)
        for k, name in reversed(list(enumerate(self._services))):
            code = pl.when(pl.col("service") == name).then(k).otherwise(code)
        return service.alias("service").to_frame().select(code).to_series().to_numpy()

    def tariff_index(self, plan: np.ndarray, service: np.ndarray) -> np.ndarray:
        """The tariff of each (plan code, service code), -1 where none prices it."""
        return self._tariff_of[plan, service]


def _flat_table(charge, minor: int) -> pl.DataFrame:
    """A one-row deck for a flat charge (``minor``: the plan currency's minor units)."""
    connect = None
    if charge.rate is not None:
        rate_nanos = to_nanos(charge.rate)
    elif charge.percentage is not None:
        rate_nanos = charge.percentage.nanos_per_minor_unit(minor)
        connect = to_nanos(charge.percentage.fixed_fee)
    else:  # a tiered or package charge keeps its increments; the tiers give its price
        rate_nanos = None if charge.rate_id is not None else 0
    return pl.DataFrame({
        "prefix": [""], "destination": [charge.destination or charge.service],
        "rate_nanos": [rate_nanos], "rate_id": [charge.rate_id],
    }, schema_overrides={"rate_nanos": pl.Int64, "rate_id": pl.String}).with_columns(
        band=pl.lit(None, pl.String), weight=pl.lit(None, pl.Int64),
        connect_nanos=pl.lit(connect, pl.Int64), first_increment=pl.lit(None, pl.Int64),
        next_increment=pl.lit(None, pl.Int64), min_billed=pl.lit(None, pl.Int64),
        effective_from=pl.lit(None, pl.Datetime("us", "UTC")), deck_row=pl.lit(0, pl.Int64),
    )


def compile_catalog(catalog: Catalog) -> CompiledTariff:
    model = catalog.model
    named = {name: named_rate(name, rate) for name, rate in model.rates.items()}
    trie, build = Trie(), _Builder()
    keys, roots, zones, band_lists, splits, charges = {}, [], [], [], [], []
    entry_rows: list[dict] = []
    inline: dict[tuple, int] = {}  # (tariff, a deck row's price) -> its rate
    e_mask, e_lo, e_hi, e_next, e_next_from = [], [], [], [], []
    for plan in model.plans:
        for charge in plan.charges:
            is_deck = isinstance(charge, DeckCharge)
            table = catalog.decks[charge.deck] if is_deck else _flat_table(
                charge, minor_units(catalog.plan_currency(plan)))
            names = sorted(table["band"].unique().to_list(),
                           key=lambda b: (b is not None, b or ""))
            bands = [ALWAYS if n is None else model.bands[n] for n in names]
            if len(bands) > 64:
                raise RatingError(f"plan {plan.id!r} {charge.service}: more than 64 bands")
            bit_of = {name: k for k, name in enumerate(names)}
            t = len(roots)
            keys[(plan.id, charge.service)] = t
            root = trie.new_root()
            roots.append(root)
            zones.append(catalog.plan_zone(plan))
            band_lists.append(bands)
            splits.append(charge.splits)
            charges.append(charge)
            tariff = f"{plan.id}/{charge.service}"
            ordered = table.sort("prefix", "effective_from", "deck_row", nulls_last=False)
            groups = itertools.groupby(ordered.iter_rows(named=True),
                                       key=lambda r: (r["prefix"], r["effective_from"]))
            previous_prefix, previous_entry = None, -1
            for (prefix, effective), group in groups:
                rows = list(group)
                e = len(e_mask)
                mask = 0
                e_lo.append(len(build.bindings))
                for row in rows:
                    if row["rate_id"] is not None:
                        rate = build.rate(named[row["rate_id"]])
                    else:  # a deck's rows share few prices: each is made a rate once
                        price = (row["rate_nanos"], row["connect_nanos"],
                                 row["first_increment"], row["next_increment"],
                                 row["min_billed"])
                        rate = inline.get((t, price))
                        if rate is None:
                            rate = inline[(t, price)] = build.rate(inline_rate(charge, *price))
                    band = model.bands.get(row["band"]) if row["band"] else None
                    weight = row["weight"] if row["weight"] is not None else (
                        band.weight if band else 0)
                    bit = bit_of[row["band"]]
                    mask |= 1 << bit
                    build.bindings.append((1 << bit, weight, band.from_ if band else 0,
                                           rate, row["band"] or "all"))
                e_hi.append(len(build.bindings))
                e_mask.append(mask)
                eff_us = SINCE_EVER if effective is None else micros(effective)
                e_next.append(-1)
                e_next_from.append(NEVER)
                if prefix == previous_prefix:  # a later version of the same prefix
                    e_next[previous_entry] = e
                    e_next_from[previous_entry] = eff_us
                previous_prefix, previous_entry = prefix, e
                trie.insert(root, prefix, e, eff_us)
                entry_rows.append({
                    "tariff": tariff, "deck": charge.deck if is_deck else None,
                    "matched_prefix": prefix, "destination_name": rows[0]["destination"],
                    "effective_from": effective,
                })
    rate_params = list(build.rates)
    slot_rows = [s for r in rate_params for s in r.slots]
    slot_lo = np.cumsum([0] + [len(r.slots) for r in rate_params])[:-1]
    return CompiledTariff(
        plan_ids=[p.id for p in model.plans],
        tariff_keys=keys,
        tariff_zone=zones,
        tariff_bands=band_lists,
        tariff_split=np.array(splits, dtype=np.bool_),
        tariff_charge=charges,
        has_bundles=any(p.bundles for p in model.plans),
        holidays=frozenset(model.holidays),
        roots=np.array(roots, dtype=np.int32),
        trie=trie.arrays(),
        entries=pl.DataFrame(entry_rows, schema={
            "tariff": pl.String, "deck": pl.String, "matched_prefix": pl.String,
            "destination_name": pl.String, "effective_from": pl.Datetime("us", "UTC")}),
        entry={
            "mask": np.array(e_mask, dtype=np.uint64),
            "bind_lo": np.array(e_lo, dtype=np.int64),
            "bind_hi": np.array(e_hi, dtype=np.int64),
            "next": np.array(e_next, dtype=np.int64),
            "next_from": np.array(e_next_from, dtype=np.int64),
        },
        binding={
            "bit": np.array([b[0] for b in build.bindings], dtype=np.uint64),
            "weight": np.array([b[1] for b in build.bindings], dtype=np.int64),
            "from": np.array([b[2] for b in build.bindings], dtype=np.int64),
            "rate": np.array([b[3] for b in build.bindings], dtype=np.int64),
        },
        binding_band=[b[4] for b in build.bindings],
        rate={
            "connect": np.array([r.connect for r in rate_params], dtype=np.int64),
            "slot_lo": np.asarray(slot_lo, dtype=np.int64),
            "slot_hi": np.asarray(slot_lo + [len(r.slots) for r in rate_params], dtype=np.int64),
            "min_billed": np.array([r.min_billed for r in rate_params], dtype=np.int64),
            "free_below": np.array([r.free_below for r in rate_params], dtype=np.int64),
            "max_cost": np.array([r.max_cost for r in rate_params], dtype=np.int64),
            "flag_max_cost": np.array([r.flag_max_cost for r in rate_params], dtype=np.bool_),
            "round_method": np.array([r.round_method for r in rate_params], dtype=np.int64),
            "round_decimals": np.array([r.round_decimals for r in rate_params], dtype=np.int64),
        },
        rate_params=rate_params,
        slot={
            "from": np.array([s[0] for s in slot_rows], dtype=np.int64),
            "rate": np.array([s[1] for s in slot_rows], dtype=np.int64),
            "unit": np.array([s[2] for s in slot_rows], dtype=np.int64),
            "increment": np.array([s[3] for s in slot_rows], dtype=np.int64),
            # the slot's place among its rate's slots, as the spans column numbers it
            "place": np.array([k for r in rate_params for k in range(len(r.slots))],
                              dtype=np.int32),
            # the most units whose exact cost (rate x units) stays well inside 64 bits
            "max_billed": np.array([(INT64_MAX // 4) // max(s[1], 1) for s in slot_rows],
                                   dtype=np.int64),
        },
        cgrates_decimals=model.rounding.decimals if model.rounding.profile == "cgrates" else None,
    )
