"""Billing faults B01, B03, B05, B07 and B09 of ../shared/cases/billing_fault_cases.json
through `ratecycle rate`.

Each case's tariff is written as a native catalog (and a deck where the case has prefixes
or bands) built from the case's own `input`; its calls are a usage CSV; the rated Parquet
must hold the case's `expected` values exactly, and none of the wrong values the fault
produced (`alt_*` / `wrong_*` keys, or the ones its description and arithmetic quote).
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import yaml

from ratecycle.cli import main

CASES_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "cases" / \
    "billing_fault_cases.json"

pytestmark = pytest.mark.skipif(
    not CASES_FILE.is_file(), reason=f"{CASES_FILE} is absent (only in the shared checkout)")

USAGE_HEADER = ["event_id", "subscriber_id", "service", "started_at", "quantity", "destination"]
PER = {1: "second", 60: "minute", 3600: "hour"}  # a rate unit in seconds -> the catalog's name
START = "2016-03-14T10:00:00+00:00"  # a Monday; the cases without a start do not depend on it
NUMBER = "441632960000"


@pytest.fixture(scope="module")
def cases() -> dict[str, dict]:
    return {c["id"]: c for c in json.loads(CASES_FILE.read_text())["cases"]}


# --- helpers --------------------------------------------------------------------------------

def write_catalog(folder: Path, doc: dict, deck_rows: list[dict] | None = None) -> Path:
    if deck_rows:
        with (folder / "deck.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, list(deck_rows[0]))
            writer.writeheader()
            writer.writerows(deck_rows)
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump({"catalog": 1, "currency": "EUR", **doc}, sort_keys=False))
    assert main(["catalog", "check", str(path)]) == 0
    return path


def rate(folder: Path, catalog: Path, calls: list[dict]) -> dict[str, dict]:
    """`ratecycle rate` of the calls (event_id, quantity, [destination, started_at]); the
    rated rows by event_id, every one rated."""
    usage = folder / "usage.csv"
    with usage.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, USAGE_HEADER)
        writer.writeheader()
        for call in calls:
            writer.writerow({"subscriber_id": "sub-1", "service": "voice", "started_at": START,
                             "destination": NUMBER, **call})
    out = folder / "rated.parquet"
    assert main(["rate", "--catalog", str(catalog), "--usage", str(usage),
                 "--out", str(out)]) == 0
    rated = pl.read_parquet(out)
    assert rated.schema["amount"] == pl.Decimal(38, 9)
    rows = {r["event_id"]: r for r in rated.iter_rows(named=True)}
    assert sorted(rows) == sorted(c["event_id"] for c in calls)
    assert {(r["status"], r["reason"]) for r in rows.values()} == {("rated", None)}
    return rows


def one_plan(*charges: dict, **extra) -> dict:
    return {**extra, "plans": [{"id": "p", "default": True, "charges": list(charges)}]}


def wrong_values(expected: dict) -> dict[str, str]:
    return {k: v for k, v in expected.items() if k.startswith(("alt_", "wrong_"))}


# --- B01: two-stage increments, 30 s then 6 s ------------------------------------------------

def _b01_named_rate(tariff: dict) -> dict:
    per = PER[tariff["rate_unit_s"]]
    slots = [{"from": g["from_s"], "rate": tariff["rate"], "per": per,
              "increment": g["increment_s"]} for g in tariff["rate_groups"]]
    return one_plan({"service": "voice", "rate_id": "b01"},
                    rates={"b01": {"connect_fee": tariff["connect_fee"], "slots": slots}})


def _b01_increments(tariff: dict) -> dict:
    first, second = tariff["rate_groups"]
    # `increments: 30/6` is the same tariff when the second group starts where the first
    # block ends
    assert (first["from_s"], second["from_s"]) == (0, first["increment_s"])
    return one_plan({"service": "voice", "rate": tariff["rate"],
                     "per": PER[tariff["rate_unit_s"]], "connect_fee": tariff["connect_fee"],
                     "increments": f"{first['increment_s']}/{second['increment_s']}"})


@pytest.mark.parametrize("form", [_b01_named_rate, _b01_increments],
                         ids=["named-rate-two-slots", "charge-increments-30-6"])
def test_b01_two_stage_increments(cases, tmp_path, form):
    case = cases["B01"]
    durations = case["input"]["calls_duration_s"]
    catalog = write_catalog(tmp_path, form(case["input"]["tariff"]))
    rows = rate(tmp_path, catalog, [{"event_id": f"c{d}", "quantity": d} for d in durations])
    got = {f"cost_{d}s": rows[f"c{d}"]["amount"] for d in durations}
    assert got == {k: Decimal(v) for k, v in case["expected"].items()}
    # price per second 0.0001: 32 s bills 30 + 6; 57 s bills 30 + 30; 75 s bills 30 + 48
    assert [rows[f"c{d}"]["billed_quantity"] for d in durations] == [36, 60, 78]
    # The fault (description): 57 s costed as 30 s (0.0030), 75 s as one minute (0.0060).
    assert got["cost_57s"] != Decimal("0.0030")
    assert got["cost_75s"] != Decimal("0.0060")
    assert not wrong_values(case["expected"])


# --- B03: a per-minute price billed per second, 60 s -----------------------------------------

def test_b03_sixty_seconds_at_a_per_minute_price_cost_exactly_the_price(cases, tmp_path):
    case = cases["B03"]
    tariff = case["input"]["tariff"]
    catalog = write_catalog(tmp_path, one_plan({
        "service": "voice", "rate": tariff["rate"], "per": PER[tariff["rate_unit_s"]],
        "connect_fee": tariff["connect_fee"],
        "increments": f"{tariff['increment_s']}/{tariff['increment_s']}"}))
    duration = case["input"]["call_duration_s"]
    row = rate(tmp_path, catalog, [{"event_id": "call", "quantity": duration}])["call"]
    assert row["amount"] == Decimal(case["expected"]["call_cost"])
    assert row["billed_quantity"] == duration
    # The fault (arithmetic): the per-second cost rounded to 4 places first, then x 60:
    # 0.0083 x 60 = 0.4980, or rounded up 0.0084 x 60 = 0.5040.
    assert row["amount"] not in (Decimal("0.4980"), Decimal("0.5040"))


# --- B05: 60/60 per call, not prorated over the summed seconds -------------------------------

def test_b05_each_call_is_rounded_up_to_whole_minutes(cases, tmp_path):
    case = cases["B05"]
    mode = case["input"]["billing_mode"]
    catalog = write_catalog(tmp_path, one_plan({
        "service": "voice", "rate": case["input"]["price_per_min"], "per": "minute",
        "connect_fee": case["input"]["connect_fee"],
        "increments": f"{mode['initial_block_s']}/{mode['subsequent_block_s']}"}))
    durations = case["input"]["calls_duration_s"]
    rows = rate(tmp_path, catalog, [{"event_id": f"c{i}", "quantity": d}
                                    for i, d in enumerate(durations)])
    billed_seconds = sum(r["billed_quantity"] for r in rows.values())
    assert billed_seconds % 60 == 0
    assert billed_seconds // 60 == case["expected"]["billed_minutes"]
    # five calls under a minute bill one minute each; 126 s bills three
    assert [rows[f"c{i}"]["billed_quantity"] for i in range(len(durations))] == \
        [60, 60, 60, 60, 60, 180]
    total = sum((r["amount"] for r in rows.values()), Decimal(0))
    assert total == Decimal(case["expected"]["total_cost"])  # exact, before any rounding
    assert total.quantize(Decimal("0.01")) == Decimal(case["expected"]["total_cost"])
    # The fault (arithmetic): 373 s / 60 x 0.03 = 0.1865 -> 0.19.
    assert total not in (Decimal("0.19"), Decimal("0.1865"))
    assert not wrong_values(case["expected"])


# --- B07: the longest prefix's rate ----------------------------------------------------------

def test_b07_longest_prefix_prices_the_call(cases, tmp_path):
    case = cases["B07"]
    given = case["input"]
    increments = f"{given['increment_s']}/{given['increment_s']}"
    catalog = write_catalog(
        tmp_path,
        one_plan({"service": "voice", "deck": "carrier", "per": "minute",
                  "increments": increments}, decks={"carrier": {"file": "deck.csv"}}),
        [{"prefix": d["prefix"], "destination": d["name"], "rate": d["rate_per_min"]}
         for d in given["destinations"]],
    )
    call = given["call"]
    row = rate(tmp_path, catalog, [{
        "event_id": "call", "quantity": call["duration_s"], "destination": call["destination"],
        "started_at": call["start"].replace("Z", "+00:00")}])["call"]
    assert row["destination_name"] == case["expected"]["matched_destination"]
    assert row["amount"] == Decimal(case["expected"]["call_cost"])
    longest = max(given["destinations"], key=lambda d: len(d["prefix"]))
    assert row["matched_prefix"] == longest["prefix"]
    # The fault: the specific destination reported, the generic (shorter) prefix's rate used.
    for other in given["destinations"]:
        if other is not longest:
            assert row["destination_name"] != other["name"]
            assert row["amount"] != Decimal(other["rate_per_min"])


# --- B09: a call split at the off-peak -> peak boundary --------------------------------------

_DAYS = {"Mon-Fri": ["mon", "tue", "wed", "thu", "fri"]}


def test_b09_call_is_split_at_the_band_boundary(cases, tmp_path):
    case = cases["B09"]
    given = case["input"]
    assert given["split_at_band_boundary"] is True
    bands = {b["name"]: {"weekdays": _DAYS[b["days"]], "from": b["from"], "to": b["to"]}
             for b in given["bands"]}
    increments = f"{given['increment_s']}/{given['increment_s']}"
    catalog = write_catalog(
        tmp_path,
        one_plan({"service": "voice", "deck": "bands", "per": "minute", "increments": increments},
                 timezone=given["timezone"], bands=bands, decks={"bands": {"file": "deck.csv"}}),
        [{"prefix": "44", "destination": "UK", "rate": b["rate_per_min"], "band": b["name"]}
         for b in given["bands"]],
    )
    call = given["call"]
    start = datetime.fromisoformat(call["start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(call["end"].replace("Z", "+00:00"))
    assert end - start == timedelta(seconds=call["duration_s"])
    row = rate(tmp_path, catalog, [{"event_id": "call", "quantity": call["duration_s"],
                                    "started_at": start.isoformat()}])["call"]
    seconds: dict[str, int] = {}
    cost: dict[str, Decimal] = {}
    for span in row["spans"]:
        seconds[span["band"]] = seconds.get(span["band"], 0) + span["billed_quantity"]
        cost[span["band"]] = cost.get(span["band"], Decimal(0)) + span["cost"]
    expected = case["expected"]
    assert seconds == {"OFFPEAK": expected["offpeak_s"], "PEAK": expected["peak_s"]}
    # 07:58-08:00 two minutes at 0.10; 08:00-08:02 two minutes at 1.00
    assert cost == {"OFFPEAK": Decimal("0.20"), "PEAK": Decimal("2.00")}
    assert [s["band"] for s in row["spans"]][0] == "OFFPEAK"  # in time order
    assert row["amount"] == Decimal(expected["call_cost"])
    assert row["billed_quantity"] == call["duration_s"]
    for key, wrong in wrong_values(expected).items():
        assert row["amount"] != Decimal(wrong), key
