"""Which billing period holds each event: each customer's own zone and cycle, whether a batch
holds one (zone, cycle) case or several, checked against rules.cycles.period_of."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from rating.periods import billing_periods
from rules import load_accounts, load_catalog
from rules.cycles import Cycle, period_of

CATALOG = """\
catalog: 1
currency: EUR
timezone: Europe/Berlin
plans:
  - id: basic
    default: true
    charges: [{service: sms, rate: "0.05", per: message}]
"""
ACCOUNTS = """\
subscriber_id,plan_id,customer_id,timezone,cycle,anchor
A,basic,,,,
B,basic,,America/New_York,,
C,basic,,,monthly,2026-01-15T00:00
"""
CYCLES = {"A": (Cycle("monthly"), "Europe/Berlin"),
          "B": (Cycle("monthly"), "America/New_York"),
          "C": (Cycle("monthly", anchor=datetime(2026, 1, 15)), "Europe/Berlin"),
          "Z": (Cycle("monthly"), "Europe/Berlin")}  # Z is in no accounts: the catalog's
INSTANTS = [datetime(2026, 2, 28, 22, 59, tzinfo=UTC),  # Berlin still February
            datetime(2026, 2, 28, 23, 0, tzinfo=UTC),  # Berlin 1 March 00:00
            datetime(2026, 3, 1, 4, 59, tzinfo=UTC),  # New York still February
            datetime(2026, 3, 1, 5, 0, tzinfo=UTC),  # New York 1 March 00:00
            datetime(2026, 3, 14, 22, 59, tzinfo=UTC),  # C's period turns at 23:00 UTC
            datetime(2026, 3, 14, 23, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]  # Berlin's summer time began at 01:00


@pytest.fixture
def setting(tmp_path):
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "accounts.csv").write_text(ACCOUNTS)
    catalog = load_catalog(tmp_path / "catalog.yaml")
    return catalog, load_accounts(tmp_path / "accounts.csv", catalog)


def _usage(subscribers: str) -> pl.DataFrame:
    rows = [(s, at) for s in subscribers for at in INSTANTS]
    return pl.DataFrame({
        "subscriber_id": [s for s, _ in rows],
        "started_at": pl.Series([at for _, at in rows], dtype=pl.Datetime("us", "UTC")),
        "ingested_at": pl.Series([at for _, at in rows], dtype=pl.Datetime("us", "UTC")),
    })


@pytest.mark.parametrize("subscribers", ["A", "AZ", "B", "ABCZ", "CBA"])
def test_each_event_falls_in_its_customers_period(setting, subscribers):
    catalog, accounts = setting
    usage = _usage(subscribers)
    got = billing_periods(usage, pl.Series(["basic"] * len(usage)), catalog, accounts)
    for row, (subscriber, at) in enumerate(zip(usage["subscriber_id"], usage["started_at"],
                                               strict=True)):
        cycle, zone = CYCLES[subscriber]
        want = period_of(cycle, zone, at)
        assert got["customer_id"][row] == subscriber
        assert (got["period_start"][row], got["period_end"][row]) == (want.start, want.end)
        local = ZoneInfo(zone)
        assert got["cycle_start"][row] == want.start.astimezone(local).date()
        assert got["cycle_end"][row] == want.end.astimezone(local).date()
        assert got["usage_period_start"][row] == want.start
    assert not got["late"].any()


def test_one_case_for_accounts_that_all_bill_alike(tmp_path):
    """Customers in the catalog's zone on calendar months, and one the accounts do not
    list: one case, whose periods are the calendar months in Berlin."""
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    (tmp_path / "accounts.csv").write_text("subscriber_id,plan_id\nA,basic\nB,basic\n")
    catalog = load_catalog(tmp_path / "catalog.yaml")
    accounts = load_accounts(tmp_path / "accounts.csv", catalog)
    assert accounts.zones_and_cycles == {(None, Cycle("monthly"))}
    usage = _usage("ABZ")
    got = billing_periods(usage, pl.Series(["basic"] * len(usage)), catalog, accounts)
    berlin = ZoneInfo("Europe/Berlin")
    want = [period_of(Cycle("monthly"), berlin, at).start for at in usage["started_at"]]
    assert got["period_start"].to_list() == want
