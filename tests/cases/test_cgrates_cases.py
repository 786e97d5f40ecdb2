"""CGRateS tariff plans rated to the same cost as CGRateS, through the stable commands.

Every folder of ../shared/cases/cgrates/ is one case: `catalog import-cgrates` of its `tp/`
with the case's global rounding decimals G, then `ratecycle rate` of its `usage.csv`; the
event's `amount` must equal `expected_cost` exactly. Where the story of a case
(../shared/cases/cgrates_rating_cases.json) says how CGRateS got there (which band, which
slot, whose connect fee, a cap that does not cap), the rated output must show it too.

The last tests import the real CGRateS tutorial tariff plan
(../shared/data/real/cgrates_oldtutorial/) and rate calls whose costs are worked out by
hand from its CSVs (derivations next to each number).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from ratecycle.cli import main

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CASES = SHARED / "cases" / "cgrates"
STORY = SHARED / "cases" / "cgrates_rating_cases.json"
TUTORIAL = SHARED / "data" / "real" / "cgrates_oldtutorial"

CASE_IDS = sorted(p.name for p in CASES.iterdir() if p.is_dir()) if CASES.is_dir() else []

needs_cases = pytest.mark.skipif(
    not CASES.is_dir(), reason=f"case folder {CASES} is absent (only in the shared checkout)")
needs_tutorial = pytest.mark.skipif(
    not TUTORIAL.is_dir(), reason=f"{TUTORIAL} is absent (only in the shared checkout)")

USAGE_HEADER = ["event_id", "subscriber_id", "service", "started_at", "quantity", "destination",
                "tenant", "category"]


# --- helpers --------------------------------------------------------------------------------

def import_cgrates(tp: Path, out_dir: Path, rounding_decimals: int) -> Path:
    catalog = out_dir / "catalog.yaml"
    code = main(["catalog", "import-cgrates", str(tp), "--currency", "EUR",
                 "--rounding-decimals", str(rounding_decimals), "--out", str(catalog)])
    assert code == 0
    return catalog


def rate(catalog: Path, usage: Path, out_dir: Path) -> dict[str, dict]:
    """`ratecycle rate` of a usage CSV; the rated rows by event_id."""
    out = out_dir / "rated.parquet"
    assert main(["rate", "--catalog", str(catalog), "--usage", str(usage),
                 "--out", str(out)]) == 0
    rated = pl.read_parquet(out)
    assert rated.schema["amount"] == pl.Decimal(38, 9)
    rows = {r["event_id"]: r for r in rated.iter_rows(named=True)}
    assert len(rows) == len(rated)
    return rows


def spans(row: dict) -> list[tuple[str, int, int, Decimal]]:
    """The event's parts as (band, slot, billed seconds/units, cost)."""
    return [(s["band"], s["slot"], s["billed_quantity"], s["cost"]) for s in row["spans"]]


def span_total(row: dict) -> Decimal:
    return sum((s["cost"] for s in row["spans"]), Decimal(0))


# --- what each case's story says, as seen in the rated output --------------------------------
# Each check receives the rated row. Costs of a part are the rounded increment costs summed
# (the cgrates profile); the event's amount adds the connect fee of the FIRST part's rate and
# applies the destination rate's total rounding.

def _cgr_01(row):
    # 17:30-18:00 WORKDAYS_00 (R4, 1/s): 1800; 18:00-18:30 WORKDAYS_18 (R5, 0.5/s): 900;
    # connect fee 1 comes from R4, the first span's rate: 2701 = 1800 + 900 + 1.
    assert spans(row) == [("WORKDAYS_00", 0, 1800, Decimal(1800)),
                          ("WORKDAYS_18", 0, 1800, Decimal(900))]
    assert row["connect_fee"] == Decimal(1)
    assert row["amount"] - span_total(row) == Decimal(1)


def _cgr_04(row):
    # Tue 23:50-24:00 WORKDAYS_18 (R5, CF 0): 300; Wed 00:00-00:30 WORKDAYS_00 (R4): 1800.
    # The connect fee is the first span's (R5: 0); R4's fee of 1 is NOT charged.
    assert spans(row) == [("WORKDAYS_18", 0, 600, Decimal(300)),
                          ("WORKDAYS_00", 0, 1800, Decimal(1800))]
    assert row["connect_fee"] == Decimal(0)
    assert span_total(row) == row["amount"]


def _cgr_07(row):
    # slot GIS 0: one 60 s increment = 60; slot GIS 60s: 25 x 1 = 25; two timespans.
    assert spans(row) == [("WORKDAYS_00", 0, 60, Decimal(60)), ("WORKDAYS_00", 1, 25, Decimal(25))]


def _cgr_10(row):
    # MaxCost 10 with *disconnect: flagged for the switch, the cost is NOT capped.
    assert row["flags"] == "max_cost"
    assert row["amount"] == Decimal(1800) > Decimal(10)


def _cgr_13(row):
    # +4986517174963 matches +49 (GERMANY) only.
    assert row["destination_name"] == "GERMANY"
    assert row["matched_prefix"].removeprefix("+") == "49"


def _cgr_16(row):
    # A data session starting 00:59:50 under TM1 is not split at TM2's 01:00: one part.
    assert spans(row) == [("TM1", 0, 20, Decimal("0.004"))]


def _cgr_19(row):
    # 0.1 connect fee + 45 x 0.01.
    assert row["connect_fee"] == Decimal("0.1")
    assert spans(row) == [("*any", 0, 45, Decimal("0.45"))]


def _cgr_22(row):
    # Prefix 20 is both DST_20 (NEW_YEAR only: not in force on 11 March) and DST_2030
    # (*any, weight 10): the *any binding prices it with RT_120C.
    assert row["matched_prefix"] == "20"
    assert row["destination_name"] == "DST_2030"
    assert row["rate_id"] == "DR_DST_2030_RT_120C"
    assert [s["band"] for s in row["spans"]] == ["*any"]
    assert row["connect_fee"] == Decimal("0.2")


def _cgr_25(row):
    # SMS to 1002: 1002 (DST_1002) beats 10.
    assert (row["matched_prefix"], row["destination_name"]) == ("1002", "DST_1002")
    assert row["billed_quantity"] == 1


def _cgr_28(row):
    # First 60 s one increment: 0.2; then 70 x round5(0.1/60) = 70 x 0.00167 = 0.1169
    # (exact arithmetic would give 0.116666..); + CF 0.4.
    assert spans(row) == [("*any", 0, 60, Decimal("0.2")), ("*any", 1, 70, Decimal("0.1169"))]
    assert row["connect_fee"] == Decimal("0.4")


def _cgr_31(row):
    # 60 x round5(0.01/60 = 0.0001667) = 60 x 0.00017.
    assert span_total(row) == 60 * Decimal("0.00017")


def _cgr_34(row):
    # 640113 units -> 64012 increments of 10 = 640120 units.
    assert row["billed_quantity"] == 640120


def _cgr_37(row):
    # The increments sum to 0.33; the destination rate's *down 1 makes the total 0.3.
    assert span_total(row) == Decimal("0.33")


def _cgr_40(row):
    # CF 0.8 + [0,60) 2 x 30 s = 0.4 + [60,85) billed 30 s as 3 x round5(0.0333..) = 0.09999;
    # 1.29999 -> *up 4 -> 1.3. Longest prefix 1003 over 10.
    assert (row["matched_prefix"], row["destination_name"]) == ("1003", "DST_1003")
    assert spans(row) == [("PEAK", 0, 60, Decimal("0.4")), ("PEAK", 1, 30, Decimal("0.09999"))]
    assert row["billed_quantity"] == 90


def _cgr_43(row):
    # 19:00 Wednesday: OFFPEAK_EVENING via prefix 10 (RT_10CNT).
    assert row["matched_prefix"] == "10"
    assert spans(row) == [("OFFPEAK_EVENING", 0, 60, Decimal("0.1")),
                          ("OFFPEAK_EVENING", 1, 30, Decimal("0.0249"))]


def _cgr_46(row):
    # 30 s block 0.003 + 2 s -> one 6 s block 0.0006.
    assert spans(row) == [("*any", 0, 30, Decimal("0.003")), ("*any", 1, 6, Decimal("0.0006"))]


def _cgr_d1(row):
    # 18:59:30: the first 60 s block starts in PEAK and is priced there (RT_20CNT, 0.2, CF 0.4);
    # 19:00:30-19:01:00 is OFFPEAK_EVENING RT_10CNT slot GIS 60: 30 x 0.00083 = 0.0249.
    assert spans(row) == [("PEAK", 0, 60, Decimal("0.2")),
                          ("OFFPEAK_EVENING", 1, 30, Decimal("0.0249"))]
    assert row["connect_fee"] == Decimal("0.4")


STORY_CHECKS: dict[str, Callable[[dict], None]] = {
    "CGR-01": _cgr_01, "CGR-04": _cgr_04, "CGR-07": _cgr_07, "CGR-10": _cgr_10,
    "CGR-13": _cgr_13, "CGR-16": _cgr_16, "CGR-19": _cgr_19, "CGR-22": _cgr_22,
    "CGR-25": _cgr_25, "CGR-28": _cgr_28, "CGR-31": _cgr_31, "CGR-34": _cgr_34,
    "CGR-37": _cgr_37, "CGR-40": _cgr_40, "CGR-43": _cgr_43, "CGR-46": _cgr_46,
    "CGR-D1": _cgr_d1,
}


# --- every case folder ----------------------------------------------------------------------

@needs_cases
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_case_rates_to_the_expected_cost(case_id, tmp_path):
    folder = CASES / case_id
    expected = json.loads((folder / "expected.json").read_text())
    catalog = import_cgrates(folder / "tp", tmp_path, expected["rounding_decimals_G"])
    rows = rate(catalog, folder / "usage.csv", tmp_path)
    with (folder / "usage.csv").open(newline="") as handle:
        event_ids = [r["event_id"] for r in csv.DictReader(handle)]
    assert sorted(rows) == sorted(event_ids)
    row = rows[event_ids[0]]
    assert (row["status"], row["reason"]) == ("rated", None)
    assert row["amount"] == Decimal(expected["expected_cost"])
    if case_id in STORY_CHECKS:
        STORY_CHECKS[case_id](row)


@needs_cases
def test_every_case_folder_is_told_in_the_story_with_the_same_cost():
    story = {c["id"]: c for c in json.loads(STORY.read_text())["cases"]}
    assert CASE_IDS
    for case_id in CASE_IDS:
        expected = json.loads((CASES / case_id / "expected.json").read_text())
        assert Decimal(str(story[case_id]["expected_cost"])) == Decimal(
            expected["expected_cost"]), case_id
    assert set(STORY_CHECKS) <= set(CASE_IDS)


# --- the real tutorial tariff plan ----------------------------------------------------------
# data/tariffplans/oldtutorial of cgrates/cgrates. What the calls below use, from its CSVs:
#   Timings (weight 10 everywhere; a timing runs from its start to the end of the day, the
#   latest start wins): PEAK Mon-Fri 08:00, OFFPEAK_MORNING Mon-Fri 00:00,
#   OFFPEAK_EVENING Mon-Fri 19:00, OFFPEAK_WEEKEND Sat-Sun 00:00.
#   Rates: RT_20CNT CF 0.4, 0.2/60s in 60s blocks, from 60s 0.1/60s per 1s;
#          RT_10CNT CF 0.2, 0.1/60s in 60s blocks, from 60s 0.05/60s per 1s;
#          RT_40CNT CF 0.8, 0.4/60s in 30s blocks, from 60s 0.2/60s per 10s;
#          RT_1CNT_PER_SEC 0.01/1s per 1s; RT_GENERIC_1 1 per 1 unit.
#   DestinationRates: all *up 4; DR_1007_MAXCOST_DISC MaxCost 0.62 *disconnect,
#          DR_1007_MAXCOST_FREE MaxCost 0.62 *free.
#   Profiles (cgrates.org): call/*any -> RP_RETAIL1; call/1001 -> RP_RETAIL2;
#          data/*any -> RP_GENERIC.
#   RP_RETAIL2 binds 1002 (RT_20CNT peak, RT_10CNT off-peak), 1003, 10 and 1007 (*free);
#   RP_RETAIL1 binds only 10 (RT_40CNT peak, RT_10CNT off-peak) and 1007 (*disconnect).
# G = 5 (a running CGRateS). 2014-08-04 is a Monday.

TUTORIAL_CALLS = [
    # (event, subscriber, service, start, quantity, destination, category)
    ("peak-1002", "1001", "voice", "2014-08-04T10:00:00+00:00", 90, "1002", "call"),
    ("evening-1002", "1001", "voice", "2014-08-04T20:00:00+00:00", 90, "1002", "call"),
    ("morning-1002", "1001", "voice", "2014-08-04T07:00:00+00:00", 90, "1002", "call"),
    ("weekend-1002", "1001", "voice", "2014-08-09T10:00:00+00:00", 90, "1002", "call"),
    ("cross-0800", "1001", "voice", "2014-08-04T07:59:30+00:00", 90, "1002", "call"),
    ("any-1003-peak", "1006", "voice", "2014-08-04T13:00:00+00:00", 85, "1003", "call"),
    ("disc-1007", "1006", "voice", "2014-08-04T10:00:00+00:00", 100, "1007", "call"),
    ("free-1007", "1001", "voice", "2014-08-04T10:00:00+00:00", 100, "1007", "call"),
    ("free-1007-short", "1001", "voice", "2014-08-04T10:00:00+00:00", 50, "1007", "call"),
    ("data-generic", "1006", "data", "2014-08-04T10:00:00+00:00", 1000, "", "data"),
]


def write_usage(path: Path, calls) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(USAGE_HEADER)
        for event, subscriber, service, start, quantity, destination, category in calls:
            writer.writerow([event, subscriber, service, start, quantity, destination,
                             "cgrates.org", category])
    return path


@pytest.fixture(scope="module")
def tutorial_catalog(tmp_path_factory) -> Path:
    if not TUTORIAL.is_dir():
        pytest.skip(f"{TUTORIAL} is absent (only in the shared checkout)")
    catalog = import_cgrates(TUTORIAL, tmp_path_factory.mktemp("tutorial"), 5)
    assert main(["catalog", "check", str(catalog)]) == 0
    return catalog


@pytest.fixture(scope="module")
def tutorial(tutorial_catalog, tmp_path_factory) -> dict[str, dict]:
    """Each call rated on its own (`ratecycle rate` of a one-row usage file), so that one
    failure does not hide the others; the batch of all of them is rated further below."""
    rows = {}
    for call in TUTORIAL_CALLS:
        folder = tmp_path_factory.mktemp(call[0])
        rows.update(rate(tutorial_catalog, write_usage(folder / "usage.csv", [call]), folder))
    return rows


@needs_tutorial
def test_tutorial_imports_and_every_call_is_rated(tutorial):
    assert sorted(tutorial) == sorted(c[0] for c in TUTORIAL_CALLS)
    assert {(r["status"], r["reason"]) for r in tutorial.values()} == {("rated", None)}


@needs_tutorial
@pytest.mark.parametrize(("event", "cost"), [
    # 1001 -> RP_RETAIL2; Monday 10:00 is PEAK: RT_20CNT. 90 s:
    #   CF 0.4 + slot 0: one 60 s block = 0.2
    #   + slot 60s: 30 s, each 1 s increment round5(0.1/60 = 0.0016666..) = 0.00167 -> 0.0501
    #   = 0.6501; *up 4 -> 0.6501 (exact arithmetic would give 0.65).
    ("peak-1002", "0.6501"),
    # Monday 20:00 is OFFPEAK_EVENING (19:00 starts later than PEAK's 08:00): RT_10CNT.
    #   CF 0.2 + 0.1 + 30 x round5(0.05/60 = 0.00083333..) = 30 x 0.00083 = 0.0249 -> 0.3249.
    ("evening-1002", "0.3249"),
    # Monday 07:00: OFFPEAK_MORNING (PEAK not yet in force): the same RT_10CNT -> 0.3249.
    ("morning-1002", "0.3249"),
    # Saturday 10:00: OFFPEAK_WEEKEND -> RT_10CNT -> 0.3249.
    ("weekend-1002", "0.3249"),
    # 07:59:30 + 90 s: the first 60 s block starts in OFFPEAK_MORNING and is priced there
    #   (RT_10CNT slot 0: 0.1, and its CF 0.2 as the first span's rate); 08:00:30-08:01:00
    #   falls in PEAK, slot 60s of RT_20CNT: 30 x 0.00167 = 0.0501. 0.2 + 0.1 + 0.0501.
    #   (Mirror of case CGR-D1.)
    ("cross-0800", "0.3501"),
    # 1006 -> RP_RETAIL1 (*any subject), which binds no 1003: prefix 10 (DST_FS) at PEAK,
    #   RT_40CNT. 85 s: CF 0.8 + [0,60) 2 x 30 s blocks: round5(0.4/60 x 30 = 0.2) x 2 = 0.4
    #   + [60,85) 25 s -> 3 x 10 s blocks: round5(0.2/60 x 10 = 0.033333..) = 0.03333 x 3
    #   = 0.09999; 1.29999 -> *up 4 -> 1.3.
    ("any-1003-peak", "1.3"),
    # 1006 -> RP_RETAIL1 -> DR_1007_MAXCOST_DISC: 100 s x 0.01 = 1.00 > MaxCost 0.62, but
    #   *disconnect does not cap the cost: 1.00 (flagged below).
    ("disc-1007", "1.00"),
    # 1001 -> RP_RETAIL2 -> DR_1007_MAXCOST_FREE: 100 x 0.01 = 1.00, *free caps it at 0.62.
    ("free-1007", "0.62"),
    # 50 s under the same *free rate: 0.50 < 0.62, nothing to cap.
    ("free-1007-short", "0.50"),
    # data/*any -> RP_GENERIC, *any destination: RT_GENERIC_1, 1 per unit in 1-unit steps:
    #   1000 units -> 1000.
    ("data-generic", "1000"),
])
def test_tutorial_call_costs_what_the_csvs_say(tutorial, event, cost):
    assert tutorial[event]["amount"] == Decimal(cost)


@needs_tutorial
def test_tutorial_peak_and_off_peak_parts(tutorial):
    peak, evening = tutorial["peak-1002"], tutorial["evening-1002"]
    assert (peak["matched_prefix"], peak["destination_name"]) == ("1002", "DST_1002")
    assert peak["rate_id"] == "DR_1002_20CNT"
    assert peak["connect_fee"] == Decimal("0.4")
    assert spans(peak) == [("PEAK", 0, 60, Decimal("0.2")), ("PEAK", 1, 30, Decimal("0.0501"))]
    assert evening["rate_id"] == "DR_1002_10CNT"
    assert evening["connect_fee"] == Decimal("0.2")
    assert spans(evening) == [("OFFPEAK_EVENING", 0, 60, Decimal("0.1")),
                              ("OFFPEAK_EVENING", 1, 30, Decimal("0.0249"))]
    assert [s[0] for s in spans(tutorial["morning-1002"])] == ["OFFPEAK_MORNING"] * 2
    assert [s[0] for s in spans(tutorial["weekend-1002"])] == ["OFFPEAK_WEEKEND"] * 2
    cross = tutorial["cross-0800"]
    assert cross["connect_fee"] == Decimal("0.2")
    assert spans(cross) == [("OFFPEAK_MORNING", 0, 60, Decimal("0.1")),
                            ("PEAK", 1, 30, Decimal("0.0501"))]


@needs_tutorial
def test_tutorial_any_subject_falls_back_to_the_shorter_prefix(tutorial):
    row = tutorial["any-1003-peak"]
    assert (row["matched_prefix"], row["destination_name"]) == ("10", "DST_FS")
    assert row["rate_id"] == "DR_FS_40CNT"
    assert row["billed_quantity"] == 90


@needs_tutorial
def test_tutorial_max_cost_disconnect_flags_and_free_caps(tutorial):
    disconnect, free, short = (tutorial["disc-1007"], tutorial["free-1007"],
                               tutorial["free-1007-short"])
    assert disconnect["rate_id"] == "DR_1007_MAXCOST_DISC"
    assert disconnect["flags"] == "max_cost"
    assert free["rate_id"] == "DR_1007_MAXCOST_FREE"
    assert free["flags"] != "max_cost"  # capped, not left for a switch to disconnect
    assert short["flags"] is None
    assert disconnect["matched_prefix"] == free["matched_prefix"] == "1007"


@needs_tutorial
def test_tutorial_calls_rated_together_cost_what_they_cost_alone(tutorial_catalog, tutorial,
                                                                tmp_path):
    # One usage file: calls of several subscribers share buckets, flagged (max_cost) and
    # unflagged events together.
    together = rate(tutorial_catalog, write_usage(tmp_path / "usage.csv", TUTORIAL_CALLS),
                    tmp_path)
    assert {e: (r["status"], r["amount"], r["flags"]) for e, r in together.items()} == {
        e: (r["status"], r["amount"], r["flags"]) for e, r in tutorial.items()}


@needs_cases
def test_an_unflagged_event_before_a_flagged_one_in_a_bucket(tmp_path):
    # CGR-10's tariff (1 per second, MaxCost 10 *disconnect) and one subscriber, so both
    # calls are in one rating task: 5 s at 05:00 (5, under the cap) then 1800 s at 06:00
    # (1800, over it: flagged, not capped).
    folder = CASES / "CGR-10"
    catalog = import_cgrates(folder / "tp", tmp_path, 6)
    usage = write_usage(tmp_path / "usage.csv", [
        ("short", "max", "voice", "2015-03-23T05:00:00+00:00", 5, "0723123113", "call"),
        ("long", "max", "voice", "2015-03-23T06:00:00+00:00", 1800, "0723123113", "call"),
    ])
    rows = rate(catalog, usage, tmp_path)
    assert {e: (r["status"], r["amount"], r["flags"]) for e, r in rows.items()} == {
        "short": ("rated", Decimal(5), None),
        "long": ("rated", Decimal(1800), "max_cost"),
    }
