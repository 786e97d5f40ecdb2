"""Amounts are exact: increments, the per-event rounding to nanos, and rate_batch's output."""

from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
import polars as pl
import pytest

from ingest.schema import USAGE_SCHEMA
from rating import compile_catalog, rate_batch
from rules import load_catalog
from rules.money import round_nanos, to_nanos

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

CATALOG = """\
catalog: 1
currency: EUR
decks:
  intl: {file: intl.csv}
plans:
  - id: basic
    default: true
    charges:
      - {service: voice, deck: intl, per: minute, increments: 1/1}
      - {service: sms, rate: "0.05", per: message}
"""
DECK = """\
prefix,destination,rate,connect_fee,increments
44,UK,0.50,,
447,UK mobile,0.50,0.10,60/60
"""


def usage(*rows: dict) -> pl.DataFrame:
    """Usage frames as ingest writes them; unspecified columns are null."""
    base = {"subscriber_id": "S1", "service": "voice", "started_at": T0}
    full = [{**base, **r} for r in rows]
    return pl.DataFrame(
        {k: [r.get(k) for r in full] for k in USAGE_SCHEMA}, schema=USAGE_SCHEMA
    )


@pytest.fixture
def catalog(tmp_path):
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "intl.csv").write_text(DECK)
    return load_catalog(tmp_path / "catalog.yaml")


def rate(catalog, frame: pl.DataFrame) -> pl.DataFrame:
    return rate_batch(frame, catalog, compile_catalog(catalog), None, "run-1")


# --- the arithmetic rating uses, step by step ----------------------------------------------

def rate_one_call(tmp_path, quantity: int, increments: str, min_billed: int = 0) -> dict:
    """Rate one UK call of `quantity` seconds at 0.50/min with the given increments."""
    (tmp_path / "c.yaml").write_text(
        "catalog: 1\ncurrency: EUR\nplans:\n  - id: p\n    default: true\n    charges:\n"
        f"      - {{service: voice, rate: \"0.50\", per: minute, increments: {increments}, "
        f"min_billed: {min_billed}}}\n")
    catalog = load_catalog(tmp_path / "c.yaml")
    return rate(catalog, usage({"event_id": "e", "quantity": quantity,
                                "destination": "441632960000"})).row(0, named=True)


@pytest.mark.parametrize(
    ("quantity", "min_billed", "increments", "billed"),
    [
        (60, 0, "1/1", 60),
        (61, 0, "60/60", 120),
        (60, 0, "60/60", 60),
        (1, 0, "60/60", 60),
        (31, 0, "30/6", 36),
        (30, 0, "30/6", 30),
        (5, 10, "1/1", 10),  # minimum billable duration
        (0, 10, "60/60", 0),  # zero stays zero
    ],
)
def test_billed_quantity(tmp_path, quantity, min_billed, increments, billed):
    assert rate_one_call(tmp_path, quantity, increments, min_billed)["billed_quantity"] == billed


def test_per_minute_rate_billed_per_second_for_60s_costs_exactly_the_rate(tmp_path):
    assert rate_one_call(tmp_path, 60, "1/1")["amount"] == Decimal("0.50")
    cost = round_nanos(np.array([to_nanos("0.50") * 60]), 60)
    assert cost.tolist() == [to_nanos("0.50")]


def test_per_second_share_of_a_minute_rate_is_rounded_once_to_nanos(tmp_path):
    # 0.50 * 61 / 60 = 0.5083333...; 0.50 / 60 = 0.0083333...
    assert rate_one_call(tmp_path, 61, "1/1")["amount"] == Decimal("0.508333333")
    assert rate_one_call(tmp_path, 1, "1/1")["amount"] == Decimal("0.008333333")


# --- through rate_batch ----------------------------------------------------------------------

def test_one_call_of_60s_at_050_per_minute_billed_per_second_costs_050(catalog):
    out = rate(catalog, usage({"event_id": "e1", "quantity": 60, "destination": "441632960000"}))
    row = out.row(0, named=True)
    assert row["status"] == "rated"
    assert row["reason"] is None
    assert row["matched_prefix"] == "44"
    assert row["destination_name"] == "UK"
    assert row["rate"] == Decimal("0.50")
    assert row["billed_quantity"] == 60
    assert row["amount"] == Decimal("0.50")
    assert row["currency"] == "EUR"
    assert row["increments"] == "1/1"
    assert row["rate_unit"] == "minute"
    assert row["spans"] == [{"band": "all", "slot": 0, "version": None, "billed_quantity": 60,
                             "cost": Decimal("0.50")}]


def test_deck_row_increments_and_connect_fee_override_the_charge(catalog):
    out = rate(catalog, usage({"event_id": "e1", "quantity": 61, "destination": "447700900001"}))
    row = out.row(0, named=True)
    assert row["matched_prefix"] == "447"
    assert row["billed_quantity"] == 120
    assert row["connect_fee"] == Decimal("0.10")
    assert row["amount"] == Decimal("1.10")  # two minutes at 0.50 plus the connect fee


def test_amount_column_is_decimal_38_9(catalog):
    out = rate(catalog, usage({"event_id": "e1", "quantity": 61, "destination": "441632960000"}))
    assert out.schema["amount"] == pl.Decimal(38, 9)
    assert out["amount"].to_list() == [Decimal("0.508333333")]


def test_flat_charge_prices_every_destination(catalog):
    out = rate(catalog, usage({"event_id": "t1", "service": "sms", "quantity": 2,
                               "destination": "D"}))
    row = out.row(0, named=True)
    assert (row["status"], row["matched_prefix"], row["destination_name"]) == ("rated", "", "sms")
    assert row["amount"] == Decimal("0.10")


def test_a_batch_of_rated_and_unrated_events_keeps_every_row_once(catalog):
    # A rated event first, then one of each unrated reason: every row comes out once.
    out = rate(catalog, usage(
        {"event_id": "ok", "quantity": 60, "destination": "441632960000"},
        {"event_id": "norate", "quantity": 60, "destination": "3312345678"},
        {"event_id": "notariff", "service": "data", "quantity": 1000, "destination": "apn"},
        {"event_id": "internal", "quantity": 60, "destination": "1234",
         "unrated_reason": "internal"},
    ))
    got = {r["event_id"]: (r["status"], r["reason"], r["amount"])
           for r in out.iter_rows(named=True)}
    assert got == {
        "ok": ("rated", None, Decimal("0.50")),
        "norate": ("unrated", "no_rate", None),
        "notariff": ("unrated", "no_tariff", None),
        "internal": ("unrated", "internal", None),
    }


def test_without_a_default_plan_or_account_the_event_has_no_subscription(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "catalog: 1\ncurrency: EUR\nplans:\n  - id: p\n"
        "    charges: [{service: sms, rate: '0.05', per: message}]\n"
    )
    catalog = load_catalog(tmp_path / "c.yaml")
    out = rate(catalog, usage({"event_id": "t1", "service": "sms", "quantity": 1,
                               "destination": "D"}))
    assert out.select("status", "reason").row(0) == ("unrated", "no_subscription")


def test_an_amount_beyond_exact_64_bit_money_leaves_only_its_event_unrated(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "catalog: 1\ncurrency: EUR\nplans:\n  - id: p\n    default: true\n    charges:\n"
        "      - {service: data, rate: \"1000\", per: byte}\n")
    catalog = load_catalog(tmp_path / "c.yaml")
    out = rate(catalog, usage(
        {"event_id": "huge", "service": "data", "quantity": 10**15, "destination": "apn"},
        {"event_id": "small", "service": "data", "quantity": 3, "destination": "apn"},
    ))
    rows = {r["event_id"]: r for r in out.to_dicts()}
    assert (rows["huge"]["status"], rows["huge"]["reason"]) == ("unrated", "overflow")
    assert rows["huge"]["amount"] is None
    assert (rows["small"]["status"], rows["small"]["amount"]) == ("rated", Decimal("3000"))
