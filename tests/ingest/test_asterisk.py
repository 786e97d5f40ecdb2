"""Asterisk cdr_csv Master.csv: layouts, unrated reasons, quarantine and stable event ids.

Rows are copied verbatim from data/real/asterisk_cdr_csv_master.csv (18 columns, no
header; its accountcode column is always empty), unless a test says it changed one.
"""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from ingest import IngestOptions, NumberPlan, ingest_files, read_usage_dir, write_ingest

# line 52: an answered outbound trunk call, 29 billed seconds
CALL = '"","123605236","18109635154","LocalSets",""""" <123605236>","SIP/123605236-00009236","SIP/sipus1-00006504","Dial","SIP/18109635154@sipus1","2016-09-16 13:29:19","2016-09-16 13:29:40","2016-09-16 13:30:09",49,29,"ANSWERED","DOCUMENTATION","1474032559.0",""'  # noqa: E501
# line 55: the same trunk dialled with the PBX outside-line digit 8
DIAL_8 = '"","123605236","818100248068","LocalSets",""""" <123605236>","SIP/123605236-00009033","SIP/sipus1-00003150","Dial","SIP/18109635154@sipus1","2016-09-16 13:42:46","2016-09-16 13:43:00","2016-09-16 13:43:17",31,17,"ANSWERED","DOCUMENTATION","1474033366.0",""'  # noqa: E501
# line 1: NO ANSWER
NO_ANSWER = '"","1500","12485163351","local","""device"" <1500>","SIP/1500-00009033","Motif/12485163351@voice.google.com-753b","Dial","Motif/google/12485163351@voice.google.com,,r","2016-09-06 16:38:55",,"2016-09-06 16:38:56",0,0,"NO ANSWER","DOCUMENTATION","1473179935.0",""'  # noqa: E501
# line 76: ANSWERED but 0 billed seconds
BILLSEC_0 = '"","","13135725126","LocalSets",""""" <>","Local/13135725126@LocalSets-00003153;2","SIP/sipus1-00004047","Dial","SIP/13135725126@sipus1","2016-09-16 16:32:35","2016-09-16 16:32:37","2016-09-16 16:32:37",1,0,"ANSWERED","DOCUMENTATION","1474043555.56",""'  # noqa: E501
# line 67: the Local channel's duplicate leg, whose last application is Congestion
LOCAL_LEG = '"","","12485163351","LocalSets",""""" <>","Local/12485163351@LocalSets-00003150;1","","Congestion","","2016-09-16 15:42:42","2016-09-16 15:42:42","2016-09-16 15:42:46",4,4,"ANSWERED","DOCUMENTATION","1474040546.32",""'  # noqa: E501
# line 12: an answered call to internal extension 1236
INTERNAL = '"","1236","1236","public","""1236"" <1236>","SIP/50.112.48.21-00009729","","Dial","Console/dsp","2016-09-07 10:06:07","2016-09-07 10:06:07","2016-09-07 10:06:35",27,27,"ANSWERED","DOCUMENTATION","1473242767.6",""'  # noqa: E501

AS_OF = datetime(2016, 12, 1, tzinfo=UTC)
NUMBERS = NumberPlan(country="1", dial_prefixes=("8",))


def options(**changes) -> IngestOptions:
    base = {"format": "asterisk-csv", "numbers": NUMBERS, "subscriber_from": "src",
            "as_of": AS_OF}
    return IngestOptions(**(base | changes))


def write(folder: Path, *lines: str, name: str = "Master.csv") -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def ingest(path: Path, **changes):
    result = ingest_files([path], options(**changes))
    assert result.accounting.balanced()
    return result


def by_row(result) -> dict[int, dict]:
    return {r["source_row"]: r for r in result.usage.iter_rows(named=True)}


def test_answered_call_is_accepted_with_normalised_fields(tmp_path):
    result = ingest(write(tmp_path, CALL))
    (row,) = result.usage.iter_rows(named=True)
    assert row["subscriber_id"] == "123605236"
    assert row["service"] == "voice"
    assert row["started_at"] == datetime(2016, 9, 16, 13, 29, 19, tzinfo=UTC)
    assert row["quantity"] == 29  # billsec, not duration
    assert row["duration_s"] == 49
    assert row["answered"] is True
    assert row["destination"] == "18109635154"
    assert row["origin"] == "123605236"
    assert row["unrated_reason"] is None
    assert row["source_format"] == "asterisk-csv"
    assert row["source_file"] == "Master.csv"
    assert row["source_row"] == 1
    assert row["source_id"] == "1474032559.0"
    assert row["ingested_at"] == AS_OF
    assert len(row["event_id"]) == 32
    assert result.accounting.to_dict()["read"] == 1
    assert result.accounting.accepted == 1


def test_local_start_times_are_stored_in_utc(tmp_path):
    result = ingest(write(tmp_path, CALL), timezone="America/Detroit")
    assert result.usage["started_at"].to_list() == [datetime(2016, 9, 16, 17, 29, 19, tzinfo=UTC)]


def split(line: str) -> list[str]:
    import csv

    return next(csv.reader([line]))


def join(fields: list[str]) -> str:
    return ",".join(f'"{f}"' for f in fields)


@pytest.mark.parametrize("width", [16, 18, 21])
def test_each_asterisk_layout_is_read(tmp_path, width):
    fields = split(CALL)
    fields = {16: fields[:16], 18: fields, 21: [*fields, "", "1474032559.0", "12"]}[width]
    result = ingest(write(tmp_path, join(fields)))
    assert len(result.quarantine) == 0
    row = result.usage.row(0, named=True)
    assert (row["subscriber_id"], row["destination"], row["quantity"], row["unrated_reason"]) == (
        "123605236", "18109635154", 29, None)
    assert row["started_at"] == datetime(2016, 9, 16, 13, 29, 19, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (LOCAL_LEG, "not_a_call"),
        (NO_ANSWER, "not_answered"),
        (BILLSEC_0, "not_answered"),
        (INTERNAL, "internal"),
    ],
)
def test_rows_that_are_not_billable_calls_are_kept_unrated(tmp_path, line, reason):
    result = ingest(write(tmp_path, line))
    assert result.usage["unrated_reason"].to_list() == [reason]
    assert result.accounting.unrated == {reason: 1}
    assert result.accounting.accepted == 0
    assert len(result.quarantine) == 0


def test_other_billable_apps_can_be_declared(tmp_path):
    result = ingest(write(tmp_path, LOCAL_LEG), billable_apps=("Dial", "Congestion"),
                    subscriber_from="const:pbx")
    assert result.usage["unrated_reason"].to_list() == [None]


def test_dial_prefix_8_is_dropped_before_a_full_number(tmp_path):
    result = ingest(write(tmp_path, DIAL_8))
    assert result.usage["destination"].to_list() == ["18100248068"]
    assert result.usage["unrated_reason"].to_list() == [None]


def test_without_the_dial_prefix_option_the_number_is_kept_as_dialled(tmp_path):
    result = ingest(write(tmp_path, DIAL_8), numbers=NumberPlan(country="1"))
    assert result.usage["destination"].to_list() == ["818100248068"]


def test_empty_accountcode_with_the_default_subscriber_column_is_no_subscriber(tmp_path):
    result = ingest(write(tmp_path, CALL, DIAL_8), subscriber_from=None)
    assert result.usage["subscriber_id"].to_list() == [None, None]
    assert result.usage["unrated_reason"].to_list() == ["no_subscriber", "no_subscriber"]
    assert result.accounting.unrated == {"no_subscriber": 2}


def test_const_subscriber(tmp_path):
    result = ingest(write(tmp_path, CALL), subscriber_from="const:acme")
    assert result.usage["subscriber_id"].to_list() == ["acme"]


def test_wrong_column_count_is_quarantined_as_bad_shape(tmp_path):
    short = join(split(CALL)[:17])
    result = ingest(write(tmp_path, CALL, short))
    (bad,) = result.quarantine.iter_rows(named=True)
    assert (bad["reason"], bad["source_row"], bad["source_file"]) == ("bad_shape", 2, "Master.csv")
    assert "17 columns" in bad["detail"]
    assert bad["record"].split("\x1f")[2] == "18109635154"
    assert result.accounting.to_dict() == {
        "read": 2, "accepted": 1, "unrated": {}, "quarantined": {"bad_shape": 1},
        "files": {"Master.csv": 2},
    }


@pytest.mark.parametrize(
    ("start", "zone"),
    [
        ("2016-09-16 25:29:19", "UTC"),
        ("16/09/2016 13:29", "UTC"),
        ("", "UTC"),
        ("2016-03-13 02:30:00", "America/Detroit"),  # skipped by the spring-forward change
    ],
)
def test_unparseable_start_time_is_quarantined_as_bad_field(tmp_path, start, zone):
    broken = CALL.replace('"2016-09-16 13:29:19"', f'"{start}"')
    result = ingest(write(tmp_path, broken, DIAL_8), timezone=zone)
    (bad,) = result.quarantine.iter_rows(named=True)
    assert (bad["reason"], bad["source_row"]) == ("bad_field", 1)
    assert "is not a time in the format %Y-%m-%d %H:%M:%S" in bad["detail"]
    assert result.usage["source_row"].to_list() == [2]
    assert result.accounting.quarantined == {"bad_field": 1}


def test_unparseable_billsec_is_quarantined_as_bad_field(tmp_path):
    broken = CALL.replace(",49,29,", ",49,2x9,")
    result = ingest(write(tmp_path, broken))
    assert result.quarantine["reason"].to_list() == ["bad_field"]
    assert "quantity 2x9" in result.quarantine["detail"][0]


def test_byte_identical_repeated_row_is_quarantined_as_duplicate(tmp_path):
    result = ingest(write(tmp_path, CALL, DIAL_8, CALL))
    assert result.usage["source_row"].to_list() == [1, 2]
    (dup,) = result.quarantine.iter_rows(named=True)
    assert (dup["reason"], dup["source_row"]) == ("duplicate", 3)
    assert dup["event_id"] == result.usage["event_id"][0]
    assert result.accounting.to_dict()["quarantined"] == {"duplicate": 1}
    assert result.accounting.read == 3


def test_event_id_is_stable_across_reads_and_independent_of_the_path(tmp_path):
    lines = (CALL, DIAL_8, NO_ANSWER, LOCAL_LEG)
    first = ingest(write(tmp_path, *lines))
    again = ingest(write(tmp_path, *lines))
    (tmp_path / "elsewhere").mkdir()
    moved = ingest(write(tmp_path / "elsewhere", *lines, name="Master-2016-09.csv"))
    ids = first.usage["event_id"].to_list()
    assert len(set(ids)) == 4
    assert again.usage["event_id"].to_list() == ids
    assert moved.usage["event_id"].to_list() == ids
    assert moved.usage["source_file"].unique().to_list() == ["Master-2016-09.csv"]


def test_the_same_record_in_two_files_is_a_duplicate(tmp_path):
    a = write(tmp_path, CALL, name="a.csv")
    b = write(tmp_path, DIAL_8, CALL, name="b.csv")
    result = ingest_files([a, b], options())
    assert result.accounting.balanced()
    assert result.quarantine.select("source_file", "source_row", "reason").rows() == [
        ("b.csv", 2, "duplicate")]
    assert result.accounting.files == {"a.csv": 1, "b.csv": 2}


def test_row_accounting_of_a_mixed_file(tmp_path):
    short = join(split(CALL)[:17])
    bad_time = CALL.replace('"2016-09-16 13:29:19"', '"not a time"')
    path = write(tmp_path, CALL, DIAL_8, NO_ANSWER, BILLSEC_0, LOCAL_LEG, INTERNAL, short,
                 bad_time, CALL)
    a = ingest(path).accounting
    assert a.to_dict() == {
        "read": 9,
        "accepted": 2,
        "unrated": {"internal": 1, "not_a_call": 1, "not_answered": 2},
        "quarantined": {"bad_field": 1, "bad_shape": 1, "duplicate": 1},
        "files": {"Master.csv": 9},
    }
    assert a.read == a.accepted + sum(a.unrated.values()) + sum(a.quarantined.values())


def test_write_ingest_stores_usage_quarantine_and_accounting(tmp_path):
    result = ingest(write(tmp_path, CALL, DIAL_8, NO_ANSWER, CALL))
    out = tmp_path / "out"
    write_ingest(result, out, buckets=4)
    usage = read_usage_dir(out).collect()
    assert sorted(usage["event_id"].to_list()) == sorted(result.usage["event_id"].to_list())
    quarantine = pl.read_parquet(out / "quarantine" / "part-0.parquet")
    assert quarantine["reason"].to_list() == ["duplicate"]
    assert '"read": 4' in (out / "accounting.json").read_text()
