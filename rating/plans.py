"""Which plans an event may be rated with, in the order they are tried.

An account's plan wins. Otherwise the catalog's profiles select by tenant, category and
subject (the subscriber), the latest activation at the event's start winning; when that
plan prices no destination of the event, the profile's fallback subjects are tried, then
the `*any` subject's profile, then the catalog's default plan.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from rules import Accounts, Catalog
from rules.catalog import Profile

from .calendar import micros

ANY = "*any"


def _applies(p: Profile, tenant: str | None, category: str | None) -> bool:
    return p.tenant in (ANY, tenant) and p.category in (ANY, category)


def _chain_at(profiles: list[Profile], tenant, category, subject, at_us: int) -> list[str]:
    def best(subj: str) -> Profile | None:
        live = [p for p in profiles if p.subject == subj and _applies(p, tenant, category)
                and micros(p.from_) <= at_us]
        return max(live, key=lambda p: micros(p.from_), default=None)

    chain: list[str] = []
    own = best(subject)
    if own is not None:
        chain.append(own.plan)
        chain += [fb.plan for fb in map(best, own.fallback) if fb is not None]
    anyone = best(ANY)
    if anyone is not None:
        chain.append(anyone.plan)
    return list(dict.fromkeys(chain))  # keep the first occurrence of each plan


EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


def subscription_of(usage: pl.DataFrame, accounts: Accounts) -> pl.DataFrame:
    """Per event (in order): the plan and customer of the subscription in force at its
    start, null where none is. Subscribers with one subscription take it by a plain join;
    the others by an as-of join on the instant."""
    subs = accounts.subscriptions_of(usage["subscriber_id"].unique().drop_nulls()).select(
        "subscriber_id", "plan_id", "customer_id", pl.col("start").fill_null(EARLIEST), "end")
    events = usage.select("subscriber_id", "started_at")
    several = subs.group_by("subscriber_id").len().filter(pl.col("len") > 1)["subscriber_id"]
    joined = events.join(subs.filter(~pl.col("subscriber_id").is_in(several.implode())),
                         on="subscriber_id", how="left", maintain_order="left")
    if len(several):
        rows = events.with_row_index("_row").filter(
            pl.col("subscriber_id").is_in(several.implode()))
        found = rows.sort("started_at").join_asof(
            subs.filter(pl.col("subscriber_id").is_in(several.implode())).sort("start"),
            left_on="started_at", right_on="start", by="subscriber_id", strategy="backward",
            check_sortedness=False,  # both sides are sorted on the instants just above
        ).sort("_row")
        at = found["_row"].to_numpy()
        joined = joined.with_columns(joined[c].scatter(at, found[c])
                                     for c in ("plan_id", "customer_id", "start", "end"))
    live = pl.col("plan_id").is_not_null() & (pl.col("started_at") >= pl.col("start")) & (
        pl.col("end").is_null() | (pl.col("started_at") < pl.col("end")))
    return joined.select(
        plan_id=pl.when(live).then(pl.col("plan_id")),
        customer_id=pl.when(live).then(pl.col("customer_id")),
    )


def plan_candidates(usage: pl.DataFrame, catalog: Catalog, accounts: Accounts | None,
                    held: pl.DataFrame | None = None) -> list[pl.Series]:
    """K series of plan ids (null where a row has fewer candidates), tried in order.
    ``held``: :func:`subscription_of` the usage, when the caller has it already."""
    n = len(usage)
    default = catalog.default_plan.id if catalog.default_plan else None
    if accounts is not None:
        held = (held if held is not None else subscription_of(usage, accounts))["plan_id"]
    profiles = list(catalog.model.profiles)
    if not profiles:  # the common case, vectorised: the account's plan, else the default
        plan = pl.repeat(default, n, dtype=pl.String, eager=True).alias("plan_0")
        if held is None:
            return [plan]
        return [held.fill_null(default).alias("plan_0") if default else held.alias("plan_0")]
    chains: list[list[str]] = [[] for _ in range(n)]
    keyed = usage.select("tenant", "category", "subscriber_id",
                         at=pl.col("started_at").dt.epoch("us")).with_row_index("row")
    if held is not None:
        keyed = keyed.filter(held.is_null())
    for (tenant, category, subject), group in keyed.group_by(
            ["tenant", "category", "subscriber_id"]):
        instants = sorted({micros(p.from_) for p in profiles})
        at = group["at"].to_numpy()
        slot = np.searchsorted(np.array(instants, dtype=np.int64), at, side="right")
        cache: dict[int, list[str]] = {}
        for row, k, when in zip(group["row"].to_list(), slot.tolist(), at.tolist(),
                                strict=True):
            if k not in cache:
                cache[k] = _chain_at(profiles, tenant, category, subject, when)
            chains[row] = cache[k]
    accounts_plan = held.to_list() if held is not None else [None] * n
    for row, plan in enumerate(accounts_plan):
        if plan is not None:
            chains[row] = [plan]
        elif default is not None and default not in chains[row]:
            chains[row] = [*chains[row], default]
    depth = max((len(c) for c in chains), default=0)
    return [pl.Series(f"plan_{k}", [c[k] if k < len(c) else None for c in chains],
                      dtype=pl.String) for k in range(max(depth, 1))]
