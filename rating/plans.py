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


def subscription_of(usage: pl.DataFrame, accounts: Accounts, plans: list[str] | None = None,
                    subscriber: np.ndarray | None = None) -> pl.DataFrame:
    """Per event (in order): the plan and customer of the subscription in force at its
    start, null where none is; with ``plans`` (the catalog's plan ids), also ``plan``, the
    plan's place in them (-1: none). ``subscriber``: each event's subscriber as a code
    dense in the usage (:func:`subscriber_codes`), when the caller has it.

    The bucket's few subscriptions are found by subscriber id, and each event takes its
    subscription's row by its subscriber's code: the one row of a subscriber that has one,
    the row in force at its start (an as-of join) for the others."""
    code = subscriber if subscriber is not None else subscriber_codes(usage["subscriber_id"])
    first = np.zeros(int(code.max(initial=0)) + 1, dtype=np.int64)
    first[code[::-1]] = np.arange(len(code))[::-1]  # each code's first event
    held = usage["subscriber_id"].gather(first[1:])  # code k: held[k - 1]
    subs = accounts.subscriptions_of(held).join(
        pl.DataFrame({"subscriber_id": held, "code": np.arange(1, len(held) + 1)}),
        on="subscriber_id", maintain_order="left").with_row_index("sub")
    per_code = np.bincount(subs["code"].to_numpy(), minlength=len(held) + 1)
    row_of = np.full(len(held) + 1, -1, dtype=np.int64)  # per code: its only subscription
    single = subs.filter(pl.Series(per_code[subs["code"].to_numpy()] == 1))
    row_of[single["code"].to_numpy()] = single["sub"].to_numpy()
    row = row_of[code]
    several = per_code[code] > 1
    if several.any():
        rows = np.flatnonzero(several)
        events = pl.DataFrame({"_row": rows, "subscriber_id": usage["subscriber_id"].gather(
            rows), "started_at": usage["started_at"].gather(rows)})
        found = events.sort("started_at").join_asof(
            subs.filter(pl.Series(per_code[subs["code"].to_numpy()] > 1)).select(
                "subscriber_id", "sub", pl.col("start").fill_null(EARLIEST)).sort("start"),
            left_on="started_at", right_on="start", by="subscriber_id", strategy="backward",
            check_sortedness=False,  # both sides are sorted on the instants just above
        )
        row[found["_row"].to_numpy()] = found["sub"].fill_null(-1).to_numpy()
    at = usage["started_at"].dt.epoch("us").fill_null(0).to_numpy()
    start = subs["start"].dt.epoch("us").fill_null(np.iinfo(np.int64).min).to_numpy()
    end = subs["end"].dt.epoch("us").fill_null(np.iinfo(np.int64).max).to_numpy()
    some = np.maximum(row, 0)
    live = (row >= 0) & usage["started_at"].is_not_null().to_numpy()
    if len(subs):
        live &= (start[some] <= at) & (at < end[some])
    index = pl.Series(some, dtype=pl.Int64).set(pl.Series(~live), None)
    out = subs.select(pl.col("plan_id", "customer_id").gather(index))
    if plans is not None:
        code_of = subs["plan_id"].replace_strict(plans, range(len(plans)), default=-1,
                                                 return_dtype=pl.Int64).to_numpy()
        plan = np.where(live, code_of[some], -1) if len(subs) else np.full(len(row), -1)
        out = out.with_columns(plan=pl.Series(plan, dtype=pl.Int64))
    return out


def subscriber_codes(subscriber_id: pl.Series) -> np.ndarray:
    """Each event's subscriber as a code dense in the batch, in the subscribers' sorted
    order from 1 (0: no subscriber)."""
    return subscriber_id.rank("dense").fill_null(0).to_numpy().astype(np.int64)


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
