"""The demo month: deterministic, in the usage schema, inside its month, rateable, and
billed with every bill under a customer of the accounts."""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl
import pytest

from ratecycle.demo import run_demo
from ratecycle.demo_data import DemoInputs, generate_demo
from rules import load_accounts, load_catalog

SMALL = {"subscribers": 300, "events": 20_000, "month": "2026-11", "seed": 7}
USAGE_SCHEMA = {
    "event_id": pl.String(),
    "subscriber_id": pl.String(),
    "service": pl.String(),
    "started_at": pl.Datetime("us", "UTC"),
    "quantity": pl.Int64(),
    "origin": pl.String(),
    "destination": pl.String(),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoInputs:
    return generate_demo(tmp_path_factory.mktemp("demo"), **SMALL)


@pytest.fixture(scope="module")
def usage(demo) -> pl.DataFrame:
    return pl.read_parquet(demo.usage)


def test_same_arguments_give_the_same_files(demo, tmp_path):
    again = generate_demo(tmp_path, **SMALL)
    assert pl.read_parquet(again.usage).equals(pl.read_parquet(demo.usage))
    for name in ("usage", "catalog", "accounts", "deck"):
        assert getattr(again, name).read_bytes() == getattr(demo, name).read_bytes(), name


def test_another_seed_gives_other_usage(usage, tmp_path):
    other = generate_demo(tmp_path, **(SMALL | {"seed": 8}))
    assert not pl.read_parquet(other.usage).equals(usage)


def test_usage_has_the_schema_and_unique_ids(usage):
    assert dict(usage.schema) == USAGE_SCHEMA
    assert usage.height == SMALL["events"]
    assert usage["event_id"].is_unique().all()
    assert usage["event_id"][0] == "demo-000000001"
    assert usage.null_count().sum_horizontal().item() == 0


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Europe/London",
                                  "Pacific/Kiritimati", "Etc/GMT+12"])
def test_every_event_is_in_the_month_in_every_zone(usage, zone):
    local = usage["started_at"].dt.convert_time_zone(zone)
    assert (local.dt.strftime("%Y-%m") == SMALL["month"]).all()


def test_services_quantities_and_numbers_are_plausible(usage):
    share = dict(usage["service"].value_counts(normalize=True).iter_rows())
    assert set(share) == {"voice", "sms", "data"}
    assert 0.5 < share["voice"] < 0.7 and 0.2 < share["sms"] < 0.4 and share["data"] < 0.2
    by = {s: usage.filter(pl.col("service") == s)["quantity"] for s in share}
    assert (by["sms"] == 1).all()
    assert 30 <= by["voice"].median() <= 120 and by["voice"].max() <= 3600
    assert by["voice"].min() >= 1 and by["data"].min() > 0
    assert by["data"].max() > 1000 * by["data"].min()  # heavy tail: KB to hundreds of MB
    assert usage["origin"].str.contains(r"^(49|44)[0-9]+$").all()
    calls = usage.filter(pl.col("service") != "data")
    assert calls["destination"].str.contains(r"^[1-9][0-9]+$").all()
    assert usage.filter(pl.col("service") == "data")["destination"].is_in(
        ["internet", "mms"]).all()


def test_traffic_follows_the_day_and_the_week(usage):
    local = usage["started_at"].dt.convert_time_zone("Europe/Berlin")
    hours = local.dt.hour().value_counts().sort("started_at")["count"]
    assert hours[18] > 5 * hours[3] and hours[10] > 5 * hours[3]
    weekend = local.dt.weekday() >= 6
    # November 2026 has 8 weekend days out of 30
    assert weekend.mean() * 30 / 8 < (~weekend).mean() * 30 / 22


def test_the_catalog_prices_almost_every_destination(demo, usage):
    catalog = load_catalog(demo.catalog)
    assert {p.id for p in catalog.model.plans} == {"basic", "smart", "business", "uk-basic"}
    assert catalog.default_plan.id == "basic"
    # two currencies, two tax jurisdictions, a discount and recurring fees on every plan
    assert {catalog.plan_currency(p) for p in catalog.model.plans} == {"EUR", "GBP"}
    assert {j for t in catalog.model.taxes for j in t.jurisdictions} == {"DE", "GB"}
    assert set(catalog.model.discounts) == {"loyalty"}
    assert all(p.recurring for p in catalog.model.plans)
    deck = catalog.decks["retail"]
    assert deck["prefix"].is_unique().all() and len(deck) >= 40
    prefixes = deck["prefix"].to_list()
    calls = usage.filter(pl.col("service") != "data")["destination"].to_list()
    unpriced = sum(not any(d.startswith(p) for p in prefixes) for d in calls) / len(calls)
    assert 0.001 < unpriced < 0.02  # some calls end as no_rate, not many


def test_accounts_hold_catalog_plans_and_every_subscriber_with_usage(demo, usage):
    catalog = load_catalog(demo.catalog)
    loaded = load_accounts(demo.accounts, catalog)
    accounts = loaded.plans
    assert accounts.columns == ["subscriber_id", "plan_id"]
    assert set(accounts["plan_id"]) == {"basic", "smart", "business", "uk-basic"}
    # customers in two zones; the UK ones pay in GBP
    zones = {c.timezone for c in loaded.customers.values()}
    assert zones == {"Europe/Berlin", "Europe/London"}
    assert {c.currency for c in loaded.customers.values() if c.timezone == "Europe/London"} \
        == {"GBP"}
    assert any(c.discounts for c in loaded.customers.values())
    assert set(usage["subscriber_id"]) <= set(accounts["subscriber_id"])


def test_every_bill_of_a_demo_run_has_its_customer_and_tax(tmp_path):
    # A subscriber without an account row would be billed under no customer, so with no
    # tax jurisdiction and no VAT.
    run_demo(tmp_path, subscribers=SMALL["subscribers"], events=SMALL["events"], quiet=True)
    with duckdb.connect(str(tmp_path / "bills.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM bills").fetchall()[0][0] >= SMALL["subscribers"] // 2
        orphans = con.sql("""SELECT customer_id FROM bills
                             WHERE customer_id NOT IN (SELECT customer_id FROM customers)""")
        assert orphans.fetchall() == []
        untaxed = con.sql("""SELECT customer_id FROM bills JOIN customers USING (customer_id)
                             WHERE tax_jurisdiction IS NULL OR tax <= 0""")
        assert untaxed.fetchall() == []


def test_a_bad_month_is_refused(tmp_path):
    with pytest.raises(ValueError, match="2026-11"):
        generate_demo(tmp_path, month="November", events=10, subscribers=5)


def test_other_months_stay_inside_including_daylight_saving_changes(tmp_path):
    usage = pl.read_parquet(generate_demo(tmp_path, subscribers=50, events=5_000,
                                          month="2027-03").usage)
    assert usage["started_at"].min() > datetime.fromisoformat("2027-03-01T12:00:00+00:00")
    assert usage["started_at"].max() < datetime.fromisoformat("2027-03-31T12:00:00+00:00")
