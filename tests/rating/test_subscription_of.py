"""Which subscription holds each event: the joins against a plain walk, on random accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.plans import subscription_of
from rules.accounts import SUBSCRIPTION_SCHEMA, Accounts

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def accounts_and_usage(draw):
    rows = []
    for sub in ("a", "b", "c"):
        edges = sorted(draw(st.lists(st.integers(0, 100), unique=True, max_size=4)))
        open_start = draw(st.booleans())
        open_end = draw(st.booleans())
        bounds = [None if open_start else e for e in edges[:1]] + edges[1:]
        for k, start in enumerate(bounds):
            end = edges[k + 1] if k + 1 < len(edges) else (None if open_end else 101)
            rows.append({"subscriber_id": sub, "customer_id": f"cust-{sub}",
                         "plan_id": f"{sub}{k}",
                         "start": None if start is None else T0 + timedelta(days=start),
                         "end": None if end is None else T0 + timedelta(days=end),
                         "trial_end": None, "change": None})
    events = draw(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(-5, 110)),
                           max_size=30))
    return rows, events


@settings(max_examples=150, deadline=None)
@given(accounts_and_usage())
def test_the_subscription_in_force_at_each_events_start(data):
    rows, events = data
    accounts = Accounts(subscriptions=pl.DataFrame(rows, schema=SUBSCRIPTION_SCHEMA),
                        customers={}, digest="test")
    usage = pl.DataFrame({"subscriber_id": [s for s, _ in events],
                          "started_at": [T0 + timedelta(days=d, hours=1) for _, d in events]},
                         schema={"subscriber_id": pl.String,
                                 "started_at": pl.Datetime("us", "UTC")})
    got = subscription_of(usage, accounts).rows()
    want = []
    for sub, day in events:
        at = T0 + timedelta(days=day, hours=1)
        held = [r for r in rows if r["subscriber_id"] == sub
                and (r["start"] is None or r["start"] <= at)
                and (r["end"] is None or at < r["end"])]
        want.append((held[-1]["plan_id"], held[-1]["customer_id"]) if held else (None, None))
    assert got == want


def test_plan_codes_and_events_no_subscription_holds():
    rows = [{"subscriber_id": "a", "customer_id": "ca", "plan_id": "gold", "start": None,
             "end": None, "trial_end": None, "change": None}]
    usage = pl.DataFrame({"subscriber_id": ["a", "x", None, "a"],
                          "started_at": [T0, T0, T0, None]},
                         schema={"subscriber_id": pl.String,
                                 "started_at": pl.Datetime("us", "UTC")})
    held = Accounts(subscriptions=pl.DataFrame(rows, schema=SUBSCRIPTION_SCHEMA),
                    customers={}, digest="test")
    got = subscription_of(usage, held, ["basic", "gold"]).rows()
    assert got == [("gold", "ca", 1), (None, None, -1), (None, None, -1), (None, None, -1)]
    nobody = Accounts(subscriptions=pl.DataFrame(schema=SUBSCRIPTION_SCHEMA), customers={},
                      digest="test")
    assert subscription_of(usage, nobody, ["gold"]).rows() == [(None, None, -1)] * 4
