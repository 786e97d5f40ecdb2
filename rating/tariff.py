"""A catalog compiled for rating: one trie per (plan, service) and flat entry arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from rules import Catalog, DeckCharge
from rules.money import to_nanos
from rules.units import parse_increments

from .kernels.prefix import ALWAYS, Trie


@dataclass(frozen=True)
class CompiledTariff:
    """Entry i is one priced prefix (one version) of one tariff, with every parameter
    resolved (deck row values override the charge's defaults)."""

    tariff_keys: dict[tuple[str, str], int]  # (plan_id, service) -> tariff index
    roots: np.ndarray            # int32[tariffs]
    trie: tuple                  # Trie.arrays()
    entries: pl.DataFrame        # per entry: explanation and parameters

    def tariff_index(self, plan: pl.Series, service: pl.Series) -> np.ndarray:
        keys = {f"{p}\x1f{s}": t for (p, s), t in self.tariff_keys.items()}
        joined = (plan.fill_null("") + "\x1f" + service.fill_null(""))
        return joined.replace_strict(keys, default=-1, return_dtype=pl.Int32).to_numpy()


def compile_catalog(catalog: Catalog) -> CompiledTariff:
    trie = Trie()
    keys: dict[tuple[str, str], int] = {}
    roots: list[int] = []
    parts: list[pl.DataFrame] = []
    count = 0
    for plan in catalog.model.plans:
        for charge in plan.charges:
            first, nxt = parse_increments(charge.increments)
            if isinstance(charge, DeckCharge):
                rows = catalog.decks[charge.deck]
            else:
                rows = pl.DataFrame({
                    "prefix": [""], "destination": [charge.destination or charge.service],
                    "rate_nanos": [to_nanos(charge.rate)],
                }).with_columns(
                    connect_nanos=pl.lit(None, pl.Int64), first_increment=pl.lit(None, pl.Int64),
                    next_increment=pl.lit(None, pl.Int64), min_billed=pl.lit(None, pl.Int64),
                    effective_from=pl.lit(None, pl.Datetime("us", "UTC")),
                )
            root = trie.new_root()
            keys[(plan.id, charge.service)] = len(roots)
            roots.append(root)
            table = rows.select(
                pl.lit(f"{plan.id}/{charge.service}").alias("tariff"),
                pl.lit(charge.deck if isinstance(charge, DeckCharge) else None,
                       pl.String).alias("deck"),
                pl.col("prefix").alias("matched_prefix"),
                pl.col("destination").alias("destination_name"),
                pl.col("rate_nanos"),
                pl.lit(charge.per).alias("rate_unit"),
                pl.lit(charge.unit_size, pl.Int64).alias("unit_size"),
                pl.col("connect_nanos").fill_null(to_nanos(charge.connect_fee)),
                pl.col("first_increment").fill_null(first),
                pl.col("next_increment").fill_null(nxt),
                pl.col("min_billed").fill_null(charge.min_billed),
                pl.col("effective_from"),
            )
            froms = table["effective_from"].dt.epoch("us").fill_null(ALWAYS).to_list()
            for offset, (prefix, eff) in enumerate(zip(table["matched_prefix"].to_list(), froms,
                                                       strict=True)):
                trie.insert(root, prefix, count + offset, eff)
            count += len(table)
            parts.append(table)
    entries = pl.concat(parts).with_columns(
        pl.format("{}/{}", "first_increment", "next_increment").alias("increments")
    )
    return CompiledTariff(tariff_keys=keys, roots=np.array(roots, dtype=np.int32),
                          trie=trie.arrays(), entries=entries)


__all__ = ["CompiledTariff", "compile_catalog"]
