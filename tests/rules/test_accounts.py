"""Accounts: which plan each subscriber holds; every problem named by file:line."""

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest

from ingest.schema import USAGE_SCHEMA
from rating import compile_catalog, rate_batch
from rules import AccountsError, load_accounts


def test_every_problem_is_named_by_file_and_line(tmp_path, catalog):
    path = tmp_path / "accounts.csv"
    path.write_text("subscriber_id,plan_id\nS1,pro\n,basic\nS3,gold\nS1,basic\n")
    with pytest.raises(AccountsError) as info:
        load_accounts(path, catalog)
    problems = {p.where: p.what for p in info.value.problems}
    assert set(problems) == {f"{path}:{n}" for n in (3, 4, 5)}
    assert problems[f"{path}:3"] == "subscriber_id is empty"
    assert "plan 'gold' is not in the catalog" in problems[f"{path}:4"]
    # S1 holds two plans at once: subscriptions of one subscriber must not overlap
    assert f"'S1' already holds a plan then ({path}:2)" in problems[f"{path}:5"]


def test_customer_problems_are_named_by_the_line_that_describes_the_customer(tmp_path,
                                                                           catalog):
    path = tmp_path / "accounts.csv"
    path.write_text("subscriber_id,plan_id,customer_id,timezone,currency,discounts\n"
                    "S1,basic,ACME,Europe/Nowhere,EUR,\n"
                    "S2,basic,ACME,Europe/Nowhere,EUR,\n"
                    "S3,basic,,Europe/Berlin,XXX,\n")
    with pytest.raises(AccountsError) as info:
        load_accounts(path, catalog)
    problems = {p.where: p.what for p in info.value.problems}
    assert set(problems) == {f"{path}:{n}" for n in (2, 4)}
    assert problems[f"{path}:2"].startswith("timezone: unknown time zone 'Europe/Nowhere'")
    assert problems[f"{path}:4"] == "currency: unknown currency 'XXX'"
    # checked against the catalog once the table itself is well formed
    path.write_text("subscriber_id,plan_id,discounts\nS1,basic,\nS2,basic,gold\n")
    with pytest.raises(AccountsError) as info:
        load_accounts(path, catalog)
    assert [(p.where, p.what) for p in info.value.problems] == [
        (f"{path}:3", "discounts: no discount 'gold' in the catalog's `discounts`")]


def test_customer_problems_in_yaml_are_named_by_their_place(tmp_path, catalog):
    path = tmp_path / "accounts.yaml"
    path.write_text("customers:\n  - {id: ACME, timezone: Mars/Base}\n"
                    "subscriptions:\n  - {subscriber: S1, customer: ACME, plan: basic}\n")
    with pytest.raises(AccountsError) as info:
        load_accounts(path, catalog)
    assert [(p.where, p.what.split(";")[0]) for p in info.value.problems] == [
        ("customers[0]", "timezone: unknown time zone 'Mars/Base'")]


def test_wrong_columns_are_refused(tmp_path, catalog):
    path = tmp_path / "accounts.csv"
    path.write_text("subscriber_id,plan\nS1,pro\n")
    with pytest.raises(AccountsError, match=r"need subscriber_id and plan_id"):
        load_accounts(path, catalog)


def test_subscribers_without_a_row_hold_the_default_plan(tmp_path, catalog):
    path = tmp_path / "accounts.parquet"
    pl.DataFrame({"subscriber_id": ["S1"], "plan_id": ["pro"]}).write_parquet(path)
    accounts = load_accounts(path, catalog)
    t = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [("e1", "S1"), ("e2", "S2")]
    usage = pl.DataFrame({
        "event_id": [e for e, _ in rows], "subscriber_id": [s for _, s in rows],
        "service": ["sms", "sms"], "started_at": [t, t], "quantity": [1, 1],
        "destination": ["D", "D"],
    }).with_columns(pl.lit(None).cast(d).alias(c) for c, d in USAGE_SCHEMA.items()
                    if c not in ("event_id", "subscriber_id", "service", "started_at",
                                 "quantity", "destination")).select(list(USAGE_SCHEMA))
    out = rate_batch(usage, catalog, compile_catalog(catalog), accounts, "r")
    assert out.select("event_id", "plan_id", "amount").rows() == [
        ("e1", "pro", Decimal("0.01")), ("e2", "basic", Decimal("0.05"))]


# --- trials and plan changes -----------------------------------------------------------------

def test_trials_and_changes_are_read_from_csv(tmp_path, catalog):
    path = tmp_path / "accounts.csv"
    path.write_text(
        "subscriber_id,plan_id,timezone,start,end,trial_months,trial_days,change\n"
        "S1,basic,Europe/Berlin,2022-01-30T23:00:00Z,2022-06-01T00:00:00Z,3,,\n"
        "S1,pro,Europe/Berlin,2022-06-01T00:00:00Z,,,,restart\n"
        "S2,basic,,2022-03-01T00:00:00Z,2022-03-05T00:00:00Z,,10,\n"
        "S2,pro,,2022-03-05T00:00:00Z,,,,\n")
    accounts = load_accounts(path, catalog)
    rows = accounts.subscriptions.select("subscriber_id", "trial_end", "change").rows()
    # 2022-01-31 00:00 in Berlin + 3 months is 2022-04-30 00:00 in Berlin (CEST, UTC+2)
    assert rows == [("S1", datetime(2022, 4, 29, 22, tzinfo=UTC), None),
                    ("S1", None, "restart"),
                    ("S2", datetime(2022, 3, 11, tzinfo=UTC), None),
                    ("S2", None, "prorate")]  # a change without a policy prorates
    # the restart re-anchors S1's billing cycle at the change
    assert accounts.customer("S1").cycle.cycle().restarts == (
        datetime(2022, 6, 1, tzinfo=UTC),)
    assert accounts.customer("S2").cycle.cycle().restarts == ()


def test_bad_trials_and_changes_are_named_by_file_and_line(tmp_path, catalog):
    path = tmp_path / "accounts.csv"
    path.write_text(
        "subscriber_id,plan_id,start,end,trial_months,trial_days,change\n"
        "S2,basic,,,3,,\n"
        "S3,basic,2022-01-01T00:00:00Z,,1,5,\n"
        "S4,basic,2022-01-01T00:00:00Z,,,,later\n")
    with pytest.raises(AccountsError) as info:
        load_accounts(path, catalog)
    problems = {p.where: p.what for p in info.value.problems}
    assert set(problems) == {f"{path}:{n}" for n in (2, 3, 4)}
    assert "a trial needs the subscription's start" in problems[f"{path}:2"]
    assert "trial_months or trial_days, not both" in problems[f"{path}:3"]
    assert "change" in problems[f"{path}:4"] and "restart" in problems[f"{path}:4"]


def test_a_change_must_follow_another_subscription_without_a_gap(tmp_path, catalog):
    path = tmp_path / "accounts.csv"
    path.write_text(
        "subscriber_id,plan_id,start,end,change\n"
        "S1,basic,2022-01-01T00:00:00Z,2022-02-01T00:00:00Z,\n"
        "S1,pro,2022-02-02T00:00:00Z,,restart\n")
    with pytest.raises(AccountsError) as info:
        load_accounts(path, catalog)
    (problem,) = info.value.problems
    assert problem.where == f"{path}:3"
    assert "needs another subscription of 'S1' ending at this start" in problem.what


def test_subscriptions_of_some_subscribers(tmp_path, catalog):
    path = tmp_path / "accounts.csv"
    path.write_text("subscriber_id,plan_id,start,end\n"
                    "S1,basic,,2026-03-01T00:00:00Z\nS2,pro,,\n"
                    "S1,pro,2026-03-01T00:00:00Z,\nS3,basic,,\n")
    accounts = load_accounts(path, catalog)
    got = accounts.subscriptions_of(["S1", "S9", "S3"])
    assert got.select("subscriber_id", "plan_id").rows() == [
        ("S1", "basic"), ("S1", "pro"), ("S3", "basic")]
    assert accounts.subscriptions_of([]).height == 0
