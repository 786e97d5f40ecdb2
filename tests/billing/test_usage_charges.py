"""Billing faults B11, B13, B14, B16 and B38 of ../shared/cases/billing_fault_cases.json
through the nightly job: bundles, daily rounding, graduated and volume tiers, late usage.

Each test builds a catalog and usage from the case's own `input`, runs `ratecycle run` in
process and reads bills.duckdb (bills, bill lines, bundle balances, rated usage) with
`ratecycle sql`, asserting the case's `expected` values exactly.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.billing.test_fault_cases import (
    CASES_FILE,
    bills,
    instant,
    lines,
    run_job,
    sql_rows,
)

pytestmark = pytest.mark.skipif(
    not CASES_FILE.is_file(), reason=f"{CASES_FILE} is absent (only in the shared checkout)")


@pytest.fixture(scope="module")
def cases() -> dict[str, dict]:
    import json

    return {c["id"]: c for c in json.loads(CASES_FILE.read_text())["cases"]}


def test_b11_calls_under_the_minimum_use_no_free_minutes(cases, tmp_path):
    case = cases["B11"]
    given, expected = case["input"], case["expected"]
    first = given["initial_block_s"]
    catalog = {"currency": "EUR", "plans": [{
        "id": "minutes", "default": True,
        "bundles": [{"name": "package", "service": "voice",
                     "allowance": given["free_package_s"], "per": "second"}],
        "charges": [{"service": "voice", "rate": "0.10", "per": "minute",
                     "increments": f"{first}/{given['subsequent_block_s']}",
                     "free_below": given["min_billable_duration_s"]}]}]}
    events = [{"event_id": f"call_{d}s", "subscriber_id": "sub", "service": "voice",
               "at": f"2024-05-10T10:0{i}:00Z", "quantity": d, "destination": "4930123"}
              for i, d in enumerate(given["calls_duration_s"])]
    db = run_job(tmp_path, catalog, events=events, as_of="2024-06-01T06:00:00Z")
    rated = {r["event_id"]: r for r in sql_rows(db, """
        SELECT event_id, amount, billed_quantity, bundle_quantity FROM rated_usage""")}
    assert Decimal(rated["call_10s"]["amount"]) == Decimal(expected["call_10s"]["money"])
    assert int(rated["call_10s"]["bundle_quantity"]) == expected["call_10s"]["package_used_s"]
    assert int(rated["call_20s"]["bundle_quantity"]) == expected["call_20s"]["package_used_s"]
    assert Decimal(rated["call_20s"]["amount"]) == 0  # wholly covered by the package
    (balance,) = sql_rows(db, "SELECT bundle, allowance, used, \"left\" FROM bundle_balances")
    assert balance["bundle"] == "package"
    assert int(balance["left"]) == expected["package_left_s"]
    assert int(balance["used"]) + int(balance["left"]) == given["free_package_s"]


def test_bundle_use_continues_across_nightly_batches(tmp_path):
    """A second night's calls draw on what the first night left, not a fresh allowance."""
    catalog = {"currency": "EUR", "plans": [{
        "id": "p", "default": True,
        "bundles": [{"name": "hour", "service": "voice", "allowance": 60, "per": "minute",
                     "connect_fee": "waived"}],
        "charges": [{"service": "voice", "rate": "0.60", "per": "minute",
                     "increments": "60/60", "connect_fee": "0.05"}]}]}
    out = tmp_path / "out"

    def night(day: int, minutes: int) -> None:
        events = [{"event_id": f"d{day}", "subscriber_id": "s", "service": "voice",
                   "at": f"2024-05-{day:02d}T10:00:00Z", "quantity": minutes * 60,
                   "destination": "4930"}]
        run_job(tmp_path / f"night{day}", catalog, events=events, out=out,
                as_of=f"2024-05-{day + 1:02d}T02:00:00Z")

    night(1, 50)
    night(2, 20)  # 10 minutes left: 10 charged at 0.60 plus the connect fee
    rated = {r["event_id"]: r for r in sql_rows(out / "bills.duckdb", """
        SELECT event_id, amount, bundle_quantity FROM rated_usage""")}
    assert (Decimal(rated["d1"]["amount"]), int(rated["d1"]["bundle_quantity"])) == (0, 3000)
    assert (Decimal(rated["d2"]["amount"]), int(rated["d2"]["bundle_quantity"])) == (
        Decimal("6.05"), 600)
    (balance,) = sql_rows(out / "bills.duckdb", 'SELECT used, "left" FROM bundle_balances')
    assert (int(balance["used"]), int(balance["left"])) == (3600, 0)


def test_b13_data_rounded_up_to_whole_mb_per_day(cases, tmp_path):
    case = cases["B13"]
    given, expected = case["input"], case["expected"]
    catalog = {"currency": "EUR", "plans": [{
        "id": "data", "default": True,
        "charges": [{"service": "data", "rate": given["price_per_MB"], "per": "MB",
                     "daily_increment": 1_000_000}]}]}
    events = []
    for day, mb in given["daily_usage_MB"].items():
        total = int(Decimal(mb) * 1_000_000)
        # each day's usage in two sessions, so the rounding is of the day, not the session
        for k, part in enumerate((total // 3, total - total // 3)):
            if part:
                events.append({"event_id": f"{day}-{k}", "subscriber_id": "s",
                               "service": "data", "at": f"{day}T{8 + 10 * k:02d}:00:00Z",
                               "quantity": part, "destination": "internet"})
    db = run_job(tmp_path, catalog, events=events, as_of="2016-06-01T06:00:00Z")
    billed = sum(ln["billed_quantity"] for ln in lines(db))
    assert billed == expected["billed_MB"] * 1_000_000
    assert billed != expected["wrong_if_rounded_monthly_MB"] * 1_000_000
    (bill,) = bills(db)
    assert bill["total"] == Decimal(expected["cost"])


def _tiered(tmp_path, tiers: dict, units: int, name: str) -> dict:
    """One bill of ``units`` units (in three events) under a tiered charge."""
    catalog = {"currency": "EUR", "plans": [{
        "id": "metered", "default": True,
        "charges": [{"service": "api_calls", "per": "unit", "tiers": tiers}]}]}
    parts = [units // 3, units // 3, units - 2 * (units // 3)]
    events = [{"event_id": f"e{k}", "subscriber_id": "s", "service": "api_calls",
               "at": f"2024-05-{10 + k}T10:00:00Z", "quantity": q}
              for k, q in enumerate(parts) if q]
    db = run_job(tmp_path / name, catalog, events=events, as_of="2024-06-01T06:00:00Z")
    (bill,) = bills(db)
    return bill | {"db": db}


@pytest.mark.parametrize("units", [250, 251, 300])
def test_b14_graduated_tier_bound_is_inclusive(cases, tmp_path, units):
    case = cases["B14"]
    tiers = {"model": "graduated", "tiers": [
        {"up_to": t["up_to"], "rate": t["unit_price"]} if t["up_to"] is not None
        else {"rate": t["unit_price"]} for t in case["input"]["tiers"]]}
    bill = _tiered(tmp_path, tiers, units, "graduated")
    assert bill["total"] == Decimal(case["expected"][f"cost_{units}"])
    # graduated tiers are allocated to events in time order: the events sum to the bill
    events = sql_rows(bill["db"], "SELECT sum(amount) AS s FROM rated_usage")
    assert Decimal(events[0]["s"]) == bill["total"]


@pytest.mark.parametrize("policy, model", [("ALL_TIERS", "graduated"), ("TOP_TIER", "volume")])
def test_b16_all_tiers_and_top_tier_are_distinct_policies(cases, tmp_path, policy, model):
    case = cases["B16"]
    steps = case["input"]["tiers"]
    # The case's tiers as given, each with its `max`. The catalog requires an open-ended
    # last tier (it has no rule for usage above every bound), so one is appended at the top
    # tier's price; the tier reached, asserted below, shows the usage never gets there.
    tiers = {"model": model, "tiers": [{"up_to": t["max"], "rate": t["unit_price"]}
                                       for t in steps] + [{"rate": steps[-1]["unit_price"]}]}
    bill = _tiered(tmp_path, tiers, case["input"]["usage_units"], model)
    assert bill["total"] == Decimal(case["expected"][policy])
    other = "TOP_TIER" if policy == "ALL_TIERS" else "ALL_TIERS"
    assert bill["total"] != Decimal(case["expected"][other])
    # 10500 units end in the case's second tier (10000 < 10500 <= 50000)
    if model == "graduated":
        (reached,) = sql_rows(bill["db"], "SELECT max(tier) AS tier FROM rated_usage")
        assert int(reached["tier"]) == 2
    else:
        (line,) = sql_rows(bill["db"], "SELECT line_type, destination_name FROM bill_lines")
        assert line == {"line_type": "cycle_usage", "destination_name": "api_calls: volume tier 2"}


@pytest.mark.parametrize("stored, january, late_line", [
    ("case_A_stored_at", "case_A_january_amount", None),
    ("case_B_stored_at", "case_B_january_amount", Decimal("2.50")),
])
def test_b38_late_usage_inside_and_outside_the_collection_window(cases, tmp_path, stored,
                                                                 january, late_line):
    case = cases["B38"]
    given, expected = case["input"], case["expected"]
    window = iso_duration(given["collection_interval"])
    catalog = {"currency": "EUR", "collection_window_hours": whole_hours(window), "plans": [{
        "id": "p", "default": True,
        "charges": [{"service": "units", "rate": given["unit_price"], "per": "unit"}]}]}
    start, end = (instant(t) for t in given["period"])
    out = tmp_path / "out"
    on_time = [{"event_id": "on-time", "subscriber_id": "s", "service": "units",
                "at": (start + timedelta(days=9)).isoformat(),
                "quantity": given["on_time_units"]}]
    run_job(tmp_path / "night1", catalog, events=on_time, out=out,
            as_of="2026-01-31T02:00:00Z")
    late = [{"event_id": "late", "subscriber_id": "s", "service": "units",
             "at": given["late_event"]["event_time"], "quantity": given["late_event"]["units"]}]
    db = run_job(tmp_path / "night2", catalog, events=late, out=out, as_of=given[stored])
    by_month = {b["period_start"]: b for b in bills(db)}
    jan = by_month[start]
    assert (jan["period_start"], jan["period_end"]) == (start, end)
    assert jan["closes_at"] == instant(expected["cutoff"])
    assert jan["total"] == Decimal(expected[january])
    # the case's two sides of the cutoff: stored before it, or after
    assert (instant(given[stored]) < jan["closes_at"]) == (late_line is None)
    feb = [ln for ln in lines(db) if ln["line_type"] == "late_usage"]
    if late_line is None:
        assert not feb and len(by_month) == 1
    else:
        (line,) = feb
        assert line["amount"] == late_line
        assert line["period_start"] == end


def iso_duration(text: str) -> timedelta:
    """An ISO-8601 duration of days and time ('P2D', 'PT36H', 'P1DT12H'); years and months
    have no fixed length, so they are refused."""
    found = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text)
    if not found or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"not an ISO-8601 duration of days and time: {text!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def whole_hours(window: timedelta) -> int:
    """The catalog's `collection_window_hours` for a window of whole hours."""
    hours, rest = divmod(window, timedelta(hours=1))
    assert not rest, f"the catalog's collection window is whole hours, not {window}"
    return hours


def test_iso_duration():
    assert iso_duration("P2D") == timedelta(hours=48)
    assert iso_duration("PT36H") == timedelta(hours=36)
    assert iso_duration("P1DT12H") == timedelta(hours=36)
    for bad in ("P", "PT", "P1M", "2D", "P1DT"):
        with pytest.raises(ValueError):
            iso_duration(bad)


def test_a_percentage_charge_takes_a_share_of_each_events_value(tmp_path):
    """Card payments at 2.9 % + 0.30 each, capped at 5.00: the quantity is the value in
    cents (12.34 EUR is 1234)."""
    catalog = {"currency": "EUR", "plans": [{
        "id": "payments", "default": True,
        "charges": [{"service": "payments", "max_cost": "5.00",
                     "percentage": {"rate": "0.029", "fixed_fee": "0.30"}}]}]}
    events = [{"event_id": f"p{v}", "subscriber_id": "m", "service": "payments",
               "at": "2024-05-10T10:00:00Z", "quantity": v} for v in (1234, 100, 1_000_000)]
    db = run_job(tmp_path, catalog, events=events, as_of="2024-06-01T06:00:00Z")
    amounts = {r["event_id"]: Decimal(r["amount"]) for r in sql_rows(
        db, "SELECT event_id, amount FROM rated_usage")}
    assert amounts == {"p1234": Decimal("0.65786"), "p100": Decimal("0.329"),
                       "p1000000": Decimal("5.00")}
    (bill,) = bills(db)
    assert bill["total"] == Decimal("5.99")  # 0.65786 + 0.329 + 5.00 = 5.98686


def test_a_percentage_finer_than_nanos_of_a_minor_unit_is_refused(tmp_path, capsys):
    from ratecycle.cli import main

    path = tmp_path / "catalog.yaml"
    path.write_text('catalog: 1\ncurrency: EUR\nplans:\n  - id: p\n    default: true\n'
                    '    charges:\n'
                    '      - {service: payments, percentage: {rate: "0.123456789"}}\n')
    assert main(["catalog", "check", str(path)]) == 1
    assert "plans[0].charges[0].percentage" in capsys.readouterr().err


@pytest.mark.parametrize("minutes, total, kind", [
    (3, Decimal("5.00"), "period_minimum"),   # 0.30 topped up to the 5.00 minimum
    (80, Decimal("8.00"), None),              # within the limits
    (200, Decimal("12.00"), "period_cap"),    # 20.00 capped at 12.00
])
def test_minimum_and_maximum_per_period(tmp_path, minutes, total, kind):
    catalog = {"currency": "EUR", "plans": [{
        "id": "p", "default": True,
        "charges": [{"service": "voice", "rate": "0.10", "per": "minute",
                     "min_per_period": "5.00", "max_per_period": "12.00"}]}]}
    events = [{"event_id": f"c{k}", "subscriber_id": "s", "service": "voice",
               "at": f"2024-05-{1 + k % 28:02d}T10:00:00Z", "quantity": 60}
              for k in range(minutes)]
    db = run_job(tmp_path, catalog, events=events, as_of="2024-06-01T06:00:00Z")
    (bill,) = bills(db)
    assert bill["total"] == total
    assert [ln["line_type"] for ln in lines(db) if ln["line_type"] != "usage"] == (
        [kind] if kind else [])
