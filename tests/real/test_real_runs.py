"""Acceptance tests: `ratecycle run` on the real third-party files in ../shared/data/real.

Every expected number below was worked out by hand from the raw files (a scratch script
using only the csv module, zoneinfo and Decimal; never ratecycle's own output), and the
derivation is written next to it so a reviewer can re-check it against the files.

Raw-file line numbers are 1-based physical lines, which is what `source_row` holds
(csv.reader's line_num; the bandicoot file has a header on line 1, so its data starts at 2).

The deck is asterisell_international_call_rates_example.csv: 11,894 rows, no duplicate
prefix, no bare "1" prefix; North American destinations are 4-digit `1NPA` prefixes.
The prefixes used by the Asterisk calls (deck line numbers, header = line 1):
    11529 "United States",1313,"0,0121"
    11560 "United States",1404,"0,0121"
    11685 "United States",1810,"0,0121"
    11775 "United States",1248,"0,0121"
and no longer prefix starting with 1313, 1404, 1810 or 1248 exists in the deck.
Note 11773 "United States",1234,"0,0121": the extension 1234 would be priced as a US
number if it were not recognised as internal.
"""

from __future__ import annotations

import csv
import itertools
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from ratecycle.cli import main

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"

pytestmark = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real data folder {REAL} is absent (only in the shared checkout)"
)

DECK = REAL / "asterisell_international_call_rates_example.csv"
ASTERISK = REAL / "asterisk_cdr_csv_master.csv"
FREESWITCH = REAL / "freeswitch_cdr_csv_master.csv"
BANDICOOT = REAL / "bandicoot_mobile_ego.csv"

AS_OF = "2016-12-01T00:00:00Z"
ASTERISK_OPTIONS = [
    "--tz", "America/Detroit", "--country", "1", "--dial-prefix", "8",
    "--internal-max-digits", "5", "--subscriber-from", "const:pbx-1", "--as-of", AS_OF,
]

_query_numbers = itertools.count()


# --- helpers --------------------------------------------------------------------------------

def sql(db: Path, query: str) -> list[dict[str, str]]:
    """Run `ratecycle sql --format csv` and read the rows back as text (exact decimals)."""
    out = db.parent / f"query-{next(_query_numbers)}.csv"
    assert main(["sql", "--db", str(db), query, "--format", "csv", "--output", str(out)]) == 0
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


def scalar(db: Path, query: str) -> str:
    rows = sql(db, query)
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return next(iter(rows[0].values()))


def run(fmt: str, source: Path, catalog: Path, out: Path, *options: str) -> Path:
    code = main(["run", "--format", fmt, str(source), "--catalog", str(catalog),
                 "--out", str(out), *options])
    assert code == 0
    return out


def accounting_of(out: Path) -> dict:
    """The row accounting three ways: run.json, accounting.json and the row_accounting table
    must agree; returned as {"read", "rated", "unrated": {...}, "quarantined": {...}}."""
    from_run = json.loads((out / "run.json").read_text())["accounting"]
    table = sql(out / "bills.duckdb", "SELECT outcome, reason, rows FROM row_accounting")
    from_table = {"read": 0, "rated": 0, "unrated": {}, "quarantined": {}}
    for row in table:
        if row["outcome"] in ("read", "rated"):
            from_table[row["outcome"]] = int(row["rows"])
        else:
            from_table[row["outcome"]][row["reason"]] = int(row["rows"])
    assert {k: from_run[k] for k in from_table} == from_table
    assert (out / "accounting.json").is_file()
    return from_table


def unrated_by_reason_in_rated_usage(db: Path) -> dict[str, int]:
    rows = sql(db, "SELECT reason, count(*) AS n FROM rated_usage WHERE status = 'unrated' "
                   "GROUP BY reason ORDER BY reason")
    return {r["reason"]: int(r["n"]) for r in rows}


def revenue(db: Path) -> Decimal:
    return Decimal(scalar(db, "SELECT coalesce(sum(total), 0) AS revenue FROM bills"))


def dump_tables(db: Path) -> dict[str, list[dict[str, str]]]:
    return {
        "bills": sql(db, "SELECT * FROM bills ORDER BY ALL"),
        "bill_lines": sql(db, "SELECT * FROM bill_lines ORDER BY ALL"),
        "bill_taxes": sql(db, "SELECT * FROM bill_taxes ORDER BY ALL"),
        "row_accounting": sql(db, "SELECT * FROM row_accounting ORDER BY ALL"),
        "rated_usage": sql(db, "SELECT * EXCLUDE (spans) FROM rated_usage ORDER BY event_id"),
        "runs": sql(db, "SELECT run_id, as_of, catalog_digest FROM runs ORDER BY ALL"),
    }


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    assert main(["catalog", "import-deck", str(DECK), "--currency", "EUR",
                 "--increments", "60/60", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def catalog_with_sms(catalog) -> Path:
    """The imported catalog plus an SMS charge on the same deck (per message), so that an
    outgoing text is priced by destination prefix like a call: used for the bandicoot file,
    whose correspondents are letters and must end as `no_rate` for calls and texts alike."""
    doc = yaml.safe_load(catalog.read_text())
    doc["plans"][0]["charges"].append({"service": "sms", "deck": "carrier", "per": "message"})
    out = catalog.with_name("catalog_sms.yaml")
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return out


@pytest.fixture(scope="module")
def asterisk_run(catalog, tmp_path_factory) -> Path:
    return run("asterisk-csv", ASTERISK, catalog, tmp_path_factory.mktemp("asterisk") / "run",
               *ASTERISK_OPTIONS)


@pytest.fixture(scope="module")
def freeswitch_run(catalog, tmp_path_factory) -> Path:
    return run("freeswitch-csv", FREESWITCH, catalog,
               tmp_path_factory.mktemp("freeswitch") / "run",
               "--subscriber-from", "caller_id_number", "--country", "1", "--dial-prefix", "9",
               "--as-of", "2016-03-01T00:00:00Z")


@pytest.fixture(scope="module")
def freeswitch_accountcode_run(catalog, tmp_path_factory) -> Path:
    # default subscriber column: accountcode
    return run("freeswitch-csv", FREESWITCH, catalog,
               tmp_path_factory.mktemp("freeswitch-acc") / "run",
               "--country", "1", "--dial-prefix", "9", "--as-of", "2016-03-01T00:00:00Z")


BANDICOOT_MAP = {
    "has_header": True,
    "columns": {"started_at": "datetime", "destination": "correspondent_id",
                "quantity": "call_duration"},
    "started_at_format": "%Y-%m-%d %H:%M:%S",
    "service": {"column": "interaction", "values": {"call": "voice", "text": "sms"}},
    "quantity_default": {"sms": 1},
    "billable": [{"column": "direction", "in": ["out"]}],
}


@pytest.fixture(scope="module")
def bandicoot_map(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bandicoot-map") / "ego.map.yaml"
    path.write_text(yaml.safe_dump(BANDICOOT_MAP, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def bandicoot_run(catalog_with_sms, bandicoot_map, tmp_path_factory) -> Path:
    return run("csv", BANDICOOT, catalog_with_sms, tmp_path_factory.mktemp("bandicoot") / "run",
               "--column-map", str(bandicoot_map), "--subscriber-from", "const:ego",
               "--as-of", "2014-05-01T00:00:00Z")


@pytest.fixture(scope="module")
def bandicoot_voice_only_run(catalog, bandicoot_map, tmp_path_factory) -> Path:
    return run("csv", BANDICOOT, catalog, tmp_path_factory.mktemp("bandicoot-voice") / "run",
               "--column-map", str(bandicoot_map), "--subscriber-from", "const:ego",
               "--as-of", "2014-05-01T00:00:00Z")


# --- Asterisk -------------------------------------------------------------------------------
#
# asterisk_cdr_csv_master.csv: 269 lines, every one 18 columns, accountcode always empty
# (irrelevant: subscriber is const:pbx-1). No two lines are byte-identical (Counter over the
# full 18-field tuples: every count 1), so nothing is a duplicate.
#
# lastapp counts: Dial 142, Hangup 59, Wait 40, AppDial2 10, BackGround 9, VoiceMail 3,
# Playback 3, Congestion 2, Answer 1  ->  not_a_call = 269 - 142 = 127.
# Dial rows by (disposition, billsec > 0): (ANSWERED, >0) 106, (ANSWERED, 0) 12,
# (NO ANSWER, 0) 15, (NO ANSWER, >0) 1, (BUSY, >0) 4, (BUSY, 0) 4
#   ->  not_answered = 12 + 15 + 1 + 4 + 4 = 36; answered calls = 106.
# dst of the 106 answered calls: 13135725126 x86, 12485163351 x6, 812481191255 x3,
# 818100248068 x2, 1236 x2, s x2, 500 x1, 1234 x1, 18109635154 x1, 14049918330 x1,
# 12484422057 x1.
#   internal (digits only, <= 5 digits): 1236 (lines 12, 19), 500 (line 22),
#     1234 (line 34)                                                        -> 4
#   no_rate: "s" (lines 14, 20)                                             -> 2
#   rated: 106 - 4 - 2                                                      -> 100
#     longest prefix: 1313 x86 (13135725126), 1248 x10 (12485163351 x6, 12484422057 x1,
#     812481191255 -> 12481191255 x3), 1810 x3 (818100248068 -> 18100248068 x2,
#     18109635154 x1), 1404 x1 (14049918330); all "United States" at 0,0121 EUR/min.
# Every answered call has 1 <= billsec <= 60 (max billsec 60, three times: lines 54, 203,
# 269), so at 60/60 every rated call bills exactly 60 s = 1 min and costs 0.0121 EUR.
#
# Cycles (calendar month, UTC: the imported deck's zone), from `start` in America/Detroit
# (EDT -4 until 2016-11-06, EST -5 after). No rated call is within 5 h of a month end
# (none on 09-30, 10-01, 10-31 or 11-01 local), so local and UTC months agree:
#   2016-09: 84 calls (1313 x70, 1248 x10, 1810 x3, 1404 x1), billsec sum 2500,
#            billed 84 x 60 = 5040 s, exact 84 x 0.0121 = 1.0164 -> line 1.02 (half-up)
#   2016-10:  8 calls (1313), billsec sum 440, billed 480 s, exact 8 x 0.0121 = 0.0968 -> 0.10
#   2016-11:  8 calls (1313), billsec sum 336, billed 480 s, exact 0.0968 -> 0.10
# One bill line per (pbx-1, month, voice, "United States"); no tax -> bill total = line.
# Revenue = 1.02 + 0.10 + 0.10 = 1.22 EUR (rounding once per line; note the unrounded
# sum 1.21 would round to 1.21: the lines must be rounded first, then added).

ASTERISK_UNRATED = {"not_a_call": 127, "not_answered": 36, "internal": 4, "no_rate": 2}
ASTERISK_READ = 269
ASTERISK_RATED = 100


def test_asterisk_row_accounting(asterisk_run):
    acc = accounting_of(asterisk_run)
    assert acc["read"] == ASTERISK_READ
    assert acc["rated"] == ASTERISK_RATED
    assert acc["unrated"] == ASTERISK_UNRATED
    assert acc["quarantined"] == {}  # no byte-identical lines -> no duplicate
    # 269 = 100 + (127 + 36 + 4 + 2) + 0
    assert acc["read"] == acc["rated"] + sum(acc["unrated"].values()) + sum(
        acc["quarantined"].values())


def test_asterisk_rated_usage_holds_every_row(asterisk_run):
    db = asterisk_run / "bills.duckdb"
    assert int(scalar(db, "SELECT count(*) FROM rated_usage")) == 269
    assert int(scalar(db, "SELECT count(*) FROM rated_usage WHERE status = 'rated'")) == 100
    assert unrated_by_reason_in_rated_usage(db) == ASTERISK_UNRATED
    assert int(scalar(db, "SELECT count(DISTINCT source_row) FROM rated_usage")) == 269
    assert int(scalar(db, "SELECT count(*) FROM quarantine")) == 0


def test_asterisk_revenue_and_cycles(asterisk_run):
    db = asterisk_run / "bills.duckdb"
    # 1.02 + 0.10 + 0.10 (see the derivation above)
    assert revenue(db) == Decimal("1.22")
    bills = sql(db, "SELECT customer_id AS subscriber_id, cycle_start, cycle_end, currency, "
                "subtotal, tax, "
                    "total FROM bills ORDER BY cycle_start")
    assert [(b["subscriber_id"], b["cycle_start"], b["cycle_end"], b["currency"],
             Decimal(b["subtotal"]), Decimal(b["tax"]), Decimal(b["total"])) for b in bills] == [
        ("pbx-1", "2016-09-01", "2016-10-01", "EUR", Decimal("1.02"), 0, Decimal("1.02")),
        ("pbx-1", "2016-10-01", "2016-11-01", "EUR", Decimal("0.10"), 0, Decimal("0.10")),
        ("pbx-1", "2016-11-01", "2016-12-01", "EUR", Decimal("0.10"), 0, Decimal("0.10")),
    ]
    lines = sql(db, "SELECT cycle_start, service, destination_name, events, quantity, "
                    "billed_quantity, amount_exact, amount FROM bill_lines ORDER BY ALL")
    assert [(r["cycle_start"], r["service"], r["destination_name"], int(r["events"]),
             int(r["quantity"]), int(r["billed_quantity"]), Decimal(r["amount_exact"]),
             Decimal(r["amount"])) for r in lines] == [
        # 84 calls, 2500 s talked, 84 min billed, 84 x 0.0121 = 1.0164 -> 1.02
        ("2016-09-01", "voice", "United States", 84, 2500, 5040, Decimal("1.0164"),
         Decimal("1.02")),
        # 8 calls, 440 s, 8 min, 8 x 0.0121 = 0.0968 -> 0.10
        ("2016-10-01", "voice", "United States", 8, 440, 480, Decimal("0.0968"),
         Decimal("0.10")),
        # 8 calls, 336 s, 8 min, 0.0968 -> 0.10
        ("2016-11-01", "voice", "United States", 8, 336, 480, Decimal("0.0968"),
         Decimal("0.10")),
    ]
    # sum of the rated event amounts, exact: 100 x 0.0121 = 1.21
    assert Decimal(scalar(db, "SELECT sum(amount) FROM rated_usage WHERE status = 'rated'")) \
        == Decimal("1.21")


def test_asterisk_prefix_counts(asterisk_run):
    db = asterisk_run / "bills.duckdb"
    rows = sql(db, "SELECT matched_prefix, destination_name, rate, count(*) AS n, "
                   "min(billed_quantity) AS lo, max(billed_quantity) AS hi "
                   "FROM rated_usage WHERE status = 'rated' GROUP BY ALL ORDER BY matched_prefix")
    assert [(r["matched_prefix"], r["destination_name"], Decimal(r["rate"]), int(r["n"]),
             int(r["lo"]), int(r["hi"])) for r in rows] == [
        ("1248", "United States", Decimal("0.0121"), 10, 60, 60),
        ("1313", "United States", Decimal("0.0121"), 86, 60, 60),
        ("1404", "United States", Decimal("0.0121"), 1, 60, 60),
        ("1810", "United States", Decimal("0.0121"), 3, 60, 60),
    ]


def test_asterisk_no_extension_is_priced(asterisk_run):
    db = asterisk_run / "bills.duckdb"
    # every rated destination is a full North-American number: 11 digits starting with 1
    assert int(scalar(db, "SELECT count(*) FROM rated_usage WHERE status = 'rated' AND "
                          "NOT regexp_full_match(destination, '1[0-9]{10}')")) == 0
    # the answered calls to extensions 1236 (lines 12, 19), 500 (22), 1234 (34) are internal;
    # 1234 is a deck prefix ("United States",1234) and must still not be priced
    rows = sql(db, "SELECT source_row, status, reason, amount FROM rated_usage "
                   "WHERE source_row IN (12, 19, 22, 34) ORDER BY source_row")
    assert [(int(r["source_row"]), r["status"], r["reason"]) for r in rows] == [
        (12, "unrated", "internal"), (19, "unrated", "internal"),
        (22, "unrated", "internal"), (34, "unrated", "internal"),
    ]
    assert all(Decimal(r["amount"] or "0") == 0 for r in rows)
    # dst "s" (lines 14, 20): answered Dial rows, no prefix -> no_rate
    rows = sql(db, "SELECT source_row, status, reason FROM rated_usage "
                   "WHERE source_row IN (14, 20) ORDER BY source_row")
    assert [(int(r["source_row"]), r["status"], r["reason"]) for r in rows] == [
        (14, "unrated", "no_rate"), (20, "unrated", "no_rate")]


# Three (four) priced calls checked against the deck by hand. Each is 1 min at 60/60.
PRICED_CALLS = [
    # line 55: dst 818100248068 = dial prefix 8 + 18100248068 (11 digits) -> 18100248068;
    # longest deck prefix 1810 "United States" 0,0121 (deck line 11685); billsec 17 ->
    # ceil(17/60) = 1 block of 60 s -> 60 s; amount 1 x 0.0121 = 0.0121 EUR.
    # start 2016-09-16 13:42:46 EDT = 17:42:46 UTC = epoch 1474047766.
    (55, "18100248068", "1810", 60, "0.0121", 1474047766, "2016-09-01"),
    # line 54: dst 12484422057 (11 digits, starts with 1: kept); prefix 1248 "United States"
    # 0,0121 (deck line 11775); billsec exactly 60 -> 1 block, 60 s (not 120);
    # amount 0.0121. start 2016-09-16 13:32:00 EDT = 17:32:00 UTC = 1474047120.
    (54, "12484422057", "1248", 60, "0.0121", 1474047120, "2016-09-01"),
    # line 203: dst 13135725126; prefix 1313 (deck line 11529) 0,0121; billsec exactly 60 ->
    # 60 s, 0.0121. start 2016-09-19 20:49:32 EDT = 2016-09-20 00:49:32 UTC = 1474332572
    # (the UTC day differs from the local one; the month does not).
    (203, "13135725126", "1313", 60, "0.0121", 1474332572, "2016-09-01"),
    # line 53: dst 14049918330; prefix 1404 (deck line 11560) 0,0121; billsec 40 -> 60 s,
    # 0.0121. start 2016-09-16 13:30:49 EDT = 17:30:49 UTC = 1474047049.
    (53, "14049918330", "1404", 60, "0.0121", 1474047049, "2016-09-01"),
]


@pytest.mark.parametrize(
    "line,destination,prefix,billed,amount,epoch,cycle", PRICED_CALLS,
    ids=[f"line{c[0]}" for c in PRICED_CALLS])
def test_asterisk_priced_call(asterisk_run, line, destination, prefix, billed, amount, epoch,
                              cycle):
    rows = sql(asterisk_run / "bills.duckdb",
               "SELECT status, subscriber_id, service, destination, matched_prefix, "
               "destination_name, rate, billed_quantity, amount, currency, cycle_start, "
               "epoch_us(started_at) AS started_us "
               f"FROM rated_usage WHERE source_row = {line}")
    assert len(rows) == 1
    r = rows[0]
    assert r["status"] == "rated"
    assert r["subscriber_id"] == "pbx-1"
    assert r["service"] == "voice"
    assert r["destination"] == destination
    assert r["matched_prefix"] == prefix
    assert r["destination_name"] == "United States"
    assert Decimal(r["rate"]) == Decimal("0.0121")
    assert int(r["billed_quantity"]) == billed
    assert Decimal(r["amount"]) == Decimal(amount)
    assert r["currency"] == "EUR"
    assert r["cycle_start"] == cycle
    assert int(r["started_us"]) == epoch * 1_000_000


def test_asterisk_bills_open_in_sql_command(asterisk_run, capsys):
    capsys.readouterr()
    db = asterisk_run / "bills.duckdb"
    assert main(["sql", "--db", str(db),
                 "SELECT customer_id, cycle_start, total FROM bills ORDER BY cycle_start"]) == 0
    out = capsys.readouterr().out
    assert "pbx-1" in out
    for cycle in ("2016-09-01", "2016-10-01", "2016-11-01"):
        assert cycle in out
    assert "1.02" in out and "0.10" in out


def test_asterisk_rerun_is_identical(asterisk_run, catalog, tmp_path):
    """Same inputs, same catalog, same --as-of: same run_id and the same tables, whether
    re-run into a fresh folder or on top of the previous output (same run replaces itself:
    nothing becomes a duplicate)."""
    first = json.loads((asterisk_run / "run.json").read_text())["run_id"]
    reference = dump_tables(asterisk_run / "bills.duckdb")

    fresh = run("asterisk-csv", ASTERISK, catalog, tmp_path / "fresh", *ASTERISK_OPTIONS)
    again = run("asterisk-csv", ASTERISK, catalog, tmp_path / "fresh", *ASTERISK_OPTIONS)
    assert again == fresh
    assert json.loads((fresh / "run.json").read_text())["run_id"] == first
    assert scalar(fresh / "bills.duckdb", "SELECT run_id FROM runs") == first
    assert dump_tables(fresh / "bills.duckdb") == reference
    acc = accounting_of(fresh)
    assert acc["quarantined"] == {} and acc["rated"] == ASTERISK_RATED


# --- FreeSWITCH -----------------------------------------------------------------------------
#
# freeswitch_cdr_csv_master.csv: 82 lines, all 15 columns, all uuids distinct, no identical
# lines. Answered (answer_stamp non-empty AND billsec > 0): lines 1, 2, 6, 7, 9, 10, 11, 14,
# 15, 16, 74 = 11; every one of them dials 3500, 3501 or 3502 (4 digits -> internal).
# Not answered: the other 82 - 11 = 71 (answer_stamp empty, billsec 0 on all of them;
# line 8 has duration 1 but billsec 0): the outbound "public" attempts on lines 3-5, 8, 12,
# 13, 20-73, 75-82 (68) and the unregistered internal calls on lines 17-19 (3).
# Scanner probes (41 240519401 via +41 / 0041 / 9 0041 / 00041 / 01141 / 901141 / 81041 ...)
# are lines 22-72: all unanswered. So nothing is rated and revenue is 0.
# Subscriber: caller_id_number is never empty (1008, 1001, 2001, 2002, 101, 100, 1000,
# "default", "user@example.invalid"); with the default column accountcode, the 11 answered
# rows all have one (1008 or 2001) and the unanswered ones without one are not_answered
# first, so `no_subscriber` never applies either way.

FREESWITCH_UNRATED = {"not_answered": 71, "internal": 11}
FREESWITCH_ANSWERED_LINES = [1, 2, 6, 7, 9, 10, 11, 14, 15, 16, 74]
SCANNER_PROBE_LINES = list(range(22, 73))


@pytest.mark.parametrize("which", ["freeswitch_run", "freeswitch_accountcode_run"])
def test_freeswitch_row_accounting(which, request):
    out = request.getfixturevalue(which)
    acc = accounting_of(out)
    # 82 = 0 + (71 + 11) + 0
    assert acc == {"read": 82, "rated": 0, "unrated": FREESWITCH_UNRATED, "quarantined": {}}
    db = out / "bills.duckdb"
    assert int(scalar(db, "SELECT count(*) FROM rated_usage")) == 82
    assert unrated_by_reason_in_rated_usage(db) == FREESWITCH_UNRATED
    assert revenue(db) == Decimal("0")
    assert int(scalar(db, "SELECT count(*) FROM bill_lines WHERE amount <> 0")) == 0


def test_freeswitch_no_probe_and_no_extension_priced(freeswitch_run):
    db = freeswitch_run / "bills.duckdb"
    assert int(scalar(db, "SELECT count(*) FROM rated_usage WHERE status = 'rated'")) == 0
    probes = sql(db, "SELECT source_row, status, reason FROM rated_usage WHERE source_row "
                     f"BETWEEN {SCANNER_PROBE_LINES[0]} AND {SCANNER_PROBE_LINES[-1]} "
                     "ORDER BY source_row")
    assert [(int(r["source_row"]), r["status"], r["reason"]) for r in probes] == [
        (line, "unrated", "not_answered") for line in SCANNER_PROBE_LINES]
    answered = sql(db, "SELECT source_row, status, reason, subscriber_id FROM rated_usage "
                       f"WHERE source_row IN ({', '.join(map(str, FREESWITCH_ANSWERED_LINES))}) "
                       "ORDER BY source_row")
    # callers of the answered lines: 1008, 1001, 2001 x8, user@example.invalid (line 74)
    assert [(int(r["source_row"]), r["status"], r["reason"], r["subscriber_id"])
            for r in answered] == [
        (1, "unrated", "internal", "1008"), (2, "unrated", "internal", "1001"),
        (6, "unrated", "internal", "2001"), (7, "unrated", "internal", "2001"),
        (9, "unrated", "internal", "2001"), (10, "unrated", "internal", "2001"),
        (11, "unrated", "internal", "2001"), (14, "unrated", "internal", "2001"),
        (15, "unrated", "internal", "2001"), (16, "unrated", "internal", "2001"),
        (74, "unrated", "internal", "user@example.invalid"),
    ]


def test_freeswitch_answered_probes_are_never_priced(catalog, tmp_path):
    """The scanner probes of lines 22-72 (all to Switzerland), as if the trunk had answered
    them. Those dialled correctly (+41, 011 41, 9 011 41) are real calls to Switzerland and
    priced so; 9 + 0041... or 8 + 1041... would read as Turkey (90) or Japan (81), so an
    outside-line digit before no full number makes them `ambiguous_number`; the rest (0041
    is no access code in country 1) find no rate."""
    with FREESWITCH.open(newline="") as f:
        rows = list(csv.reader(f))
    for row in rows[SCANNER_PROBE_LINES[0] - 1: SCANNER_PROBE_LINES[-1]]:
        row[5], row[8] = row[4], "30"  # answer_stamp = start_stamp, billsec 30
    answered = tmp_path / "answered.csv"
    with answered.open("w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)
    db = run("freeswitch-csv", answered, catalog, tmp_path / "run",
             "--subscriber-from", "caller_id_number", "--country", "1", "--dial-prefix", "9",
             "--dial-prefix", "8", "--as-of", "2016-03-01T00:00:00Z") / "bills.duckdb"
    probes = sql(db, "SELECT destination, status, reason, destination_name FROM rated_usage "
                     f"WHERE source_row BETWEEN {SCANNER_PROBE_LINES[0]} AND "
                     f"{SCANNER_PROBE_LINES[-1]}")
    assert len(probes) == len(SCANNER_PROBE_LINES)
    rated = [p for p in probes if p["status"] == "rated"]
    assert {p["destination_name"] for p in rated} == {"Switzerland"}
    assert all(p["destination"].startswith("41") for p in rated)
    reasons = {p["destination"]: p["reason"] for p in probes if p["status"] == "unrated"}
    assert reasons["90041243201477"] == "ambiguous_number"
    assert reasons["81041244986170"] == "ambiguous_number"
    assert set(reasons.values()) == {"ambiguous_number", "no_rate"}


def test_freeswitch_bills_open_in_sql_command(freeswitch_run, capsys):
    capsys.readouterr()
    assert main(["sql", "--db", str(freeswitch_run / "bills.duckdb"),
                 "SELECT count(*) AS n FROM rated_usage"]) == 0
    assert "82" in capsys.readouterr().out


# --- bandicoot (column-mapped CSV) ----------------------------------------------------------
#
# bandicoot_mobile_ego.csv: header + 314 data lines (lines 2-315), 6 columns each, no two
# identical (not even ignoring antenna_id). (interaction, direction): text/in 166,
# text/out 73, call/in 44, call/out 31. Correspondents are the letters A-G only.
#   not_billable (direction in): 166 + 44 = 210
#   outgoing: 73 + 31 = 104, destination a letter -> no prefix -> no_rate
#   rated 0, revenue 0, quarantined 0; 314 = 0 + 210 + 104 + 0.
# e.g. line 2 "text,in,A,2014-03-02 07:13:30,,1" -> not_billable;
#      line 5 "text,out,D,2014-03-02 08:34:30,,3" -> no_rate.

def test_bandicoot_row_accounting(bandicoot_run):
    acc = accounting_of(bandicoot_run)
    assert acc == {"read": 314, "rated": 0,
                   "unrated": {"no_rate": 104, "not_billable": 210}, "quarantined": {}}
    db = bandicoot_run / "bills.duckdb"
    assert unrated_by_reason_in_rated_usage(db) == {"no_rate": 104, "not_billable": 210}
    assert revenue(db) == Decimal("0")
    rows = sql(db, "SELECT service, reason, count(*) AS n FROM rated_usage GROUP BY ALL "
                   "ORDER BY ALL")
    assert [(r["service"], r["reason"], int(r["n"])) for r in rows] == [
        ("sms", "no_rate", 73), ("sms", "not_billable", 166),
        ("voice", "no_rate", 31), ("voice", "not_billable", 44),
    ]
    rows = sql(db, "SELECT source_row, service, destination, quantity, reason FROM rated_usage "
                   "WHERE source_row IN (2, 5) ORDER BY source_row")
    assert [(int(r["source_row"]), r["service"], r["destination"], int(r["quantity"]),
             r["reason"]) for r in rows] == [
        (2, "sms", "A", 1, "not_billable"), (5, "sms", "D", 1, "no_rate")]


def test_bandicoot_with_voice_only_catalog(bandicoot_voice_only_run):
    """The imported deck prices voice only. Every row is still accounted for and nothing is
    priced; the 31 outgoing calls have no prefix (no_rate) and the 73 outgoing texts have
    no SMS charge at all in the plan (no_tariff, 'the plan does not price this service')."""
    acc = accounting_of(bandicoot_voice_only_run)
    assert acc["read"] == 314 and acc["rated"] == 0 and acc["quarantined"] == {}
    assert acc["unrated"]["not_billable"] == 210
    assert acc["unrated"] == {"no_rate": 31, "no_tariff": 73, "not_billable": 210}
    assert revenue(bandicoot_voice_only_run / "bills.duckdb") == Decimal("0")
