"""The real PT Prime special-number sheet imports and rates; values checked by hand."""

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from ratecycle.cli import main

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
SHEET = REAL / "asterisell_ptprime_special_numbers_rates_2012-09-06.csv"
pytestmark = pytest.mark.skipif(not SHEET.is_file(), reason="../shared is not beside the project")

# Lisbon is UTC+1 in September 2012; 2012-09-10 is a Monday.
USAGE = """\
event_id,subscriber_id,service,started_at,quantity,destination
peak-808,s,voice,2012-09-10T10:00:00+01:00,90,808200123
offpeak-808,s,voice,2012-09-10T22:00:00+01:00,90,808200123
weekend-808,s,voice,2012-09-15T10:00:00+01:00,61,808200123
by-call,s,voice,2012-09-10T10:00:00+01:00,90,760200123
cycles,s,voice,2012-09-10T10:00:00+01:00,95,16996
capped,s,voice,2012-09-10T10:00:00+01:00,3600,16209
local-pt,s,voice,2012-09-10T10:00:00+01:00,60,674170000
"""
EXPECTED = {
    # line 23, method 1: first minute at the initial 0.07, then 30 s at 0.0258/min
    "peak-808": "0.0829",
    # 22:00 is off-peak: 0.07 + 30 x 0.0084 / 60 = 0.07 + 0.0042
    "offpeak-808": "0.0742",
    # Saturday is off-peak all day: 0.07 + 1 x 0.0084 / 60 = 0.07014
    "weekend-808": "0.07014",
    # line 20, method 3 (by call): the initial cost alone, whatever the duration
    "by-call": "0.6",
    # line 111, method 9: 95 s is four 30 s cycles at 0.2439
    "cycles": "0.9756",
    # line 91, method 1: 0.1142 + 3540 x 0.1142 / 60 = 6.852, capped at the max cost 2.8921
    "capped": "2.8921",
}


@pytest.fixture(scope="module")
def rated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("special")
    assert main(["catalog", "import-special-numbers", str(SHEET), "--currency", "EUR",
                 "--out", str(folder / "catalog.yaml")]) == 0
    (folder / "usage.csv").write_text(USAGE)
    assert main(["rate", "--catalog", str(folder / "catalog.yaml"), "--usage",
                 str(folder / "usage.csv"), "--out", str(folder / "rated.parquet")]) == 0
    return {r["event_id"]: r for r in pl.read_parquet(folder / "rated.parquet").to_dicts()}


@pytest.mark.parametrize("event", sorted(EXPECTED))
def test_amounts_checked_by_hand(rated, event):
    assert rated[event]["amount"] == Decimal(EXPECTED[event])


def test_a_number_whose_price_is_not_in_the_sheet_is_not_rated(rated):
    # line 73 ('LocalPT': the price of a local landline, not in the sheet) was skipped
    assert (rated["local-pt"]["status"], rated["local-pt"]["reason"]) == ("unrated", "no_rate")


def test_skipped_rows_are_named_in_warnings(tmp_path, capsys):
    assert main(["catalog", "import-special-numbers", str(SHEET), "--currency", "EUR",
                 "--out", str(tmp_path / "c.yaml")]) == 0
    err = capsys.readouterr().err
    assert f"{SHEET}:73: rate method 'LocalPT' points to a price that is not in the sheet" in err
    assert f"{SHEET}:88: rate method 'not applied'" in err
    assert f"{SHEET}:2: a note row, not a price; skipped" in err
