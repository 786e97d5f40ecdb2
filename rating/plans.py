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


def subscription_of(usage: pl.DataFrame, accounts: Accounts,
                    plans: list[str] | None = None) -> pl.DataFrame:
    """Per event (in order): the plan and customer of the subscription in force at its
    start, null where none is; with ``plans`` (the catalog's plan ids), also ``plan``, the
    plan's place in them (-1: none), found on the bucket's few subscriptions rather than on
    every event. Subscribers with one subscription take it by a plain join; the others by
    an as-of join on the instant."""
    subs = accounts.subscriptions_of(usage["subscriber_id"].unique().drop_nulls()).select(
        "subscriber_id", "plan_id", "customer_id", pl.col("start").fill_null(EARLIEST), "end")
    carried = ["plan_id", "customer_id", "start", "end"]
    if plans is not None:
        subs = subs.with_columns(plan=pl.col("plan_id").replace_strict(
            plans, range(len(plans)), default=-1, return_dtype=pl.Int64))
        carried.append("plan")
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
        joined = joined.with_columns(joined[c].scatter(at, found[c]) for c in carried)
    live = pl.col("plan_id").is_not_null() & (pl.col("started_at") >= pl.col("start")) & (
        pl.col("end").is_null() | (pl.col("started_at") < pl.col("end")))
    return joined.select(
        plan_id=pl.when(live).then(pl.col("plan_id")),
        customer_id=pl.when(live).then(pl.col("customer_id")),
        **({"plan": pl.when(live).then(pl.col("plan")).fill_null(-1)} if plans else {}),
    )


def plan_candidates(usage: pl.DataFrame, catalog: Catalog, accounts: Accounts | None,
                    held: pl.DataFrame | None = None) -> list[np.ndarray]:
    """K arrays of plan codes (places in the catalog's plans; -1 where a row has fewer
    candidates), tried in order. ``held``: :func:`subscription_of` the usage with the
    catalog's plans, when the caller has it already."""
    n = len(usage)
    ids = [p.id for p in catalog.model.plans]
    default = ids.index(catalog.default_plan.id) if catalog.default_plan else -1
    if accounts is not None and held is None:
        held = subscription_of(usage, accounts, ids)
    profiles = list(catalog.model.profiles)
    if not profiles:  # the common case, vectorised: the account's plan, else the default
        if held is None:
            return [np.full(n, default, dtype=np.int64)]
        plan = held["plan"].to_numpy()
        return [np.where(plan >= 0, plan, default)]
    chains: list[list[str]] = [[] for _ in range(n)]
    keyed = usage.select("tenant", "category", "subscriber_id",
                         at=pl.col("started_at").dt.epoch("us")).with_row_index("row")
    if held is not None:
        keyed = keyed.filter(held["plan"] < 0)
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
    code = {plan_id: k for k, plan_id in enumerate(ids)}
    codes = [[code[p] for p in c] for c in chains]
    accounts_plan = held["plan"].to_list() if held is not None else [-1] * n
    for row, plan in enumerate(accounts_plan):
        if plan >= 0:
            codes[row] = [plan]
        elif default >= 0 and default not in codes[row]:
            codes[row] = [*codes[row], default]
    depth = max((len(c) for c in codes), default=0)
    return [np.array([c[k] if k < len(c) else -1 for c in codes], dtype=np.int64)
            for k in range(max(depth, 1))]
