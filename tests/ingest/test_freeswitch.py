"""FreeSWITCH mod_cdr_csv (default template): answered or not, uuid as the event id.

Rows are copied verbatim from data/real/freeswitch_cdr_csv_master.csv unless a test says
it changed one (the real file has no answered call to an outside number).
"""

from datetime import UTC, datetime
from pathlib import Path

from ingest import IngestOptions, NumberPlan, ingest_files

# line 6: answered call from 2001 to extension 3500, 15 s
ANSWERED_INTERNAL = '"Person 2","2001","3500","default","2016-02-16 05:55:27","2016-02-16 05:55:27","2016-02-16 05:55:42","15","15","NORMAL_CLEARING","d6195639-e9a2-eae4-c599-75e127f55602","","2001","opus","opus"'  # noqa: E501
# line 3: unanswered call to a North-American number (no answer_stamp)
BUSY = '"Person 1","2001","14080012257","public","2016-02-16 05:02:32","","2016-02-16 05:02:32","0","0","USER_BUSY","3269ae31-847a-42de-ac09-0150eedb75fd","","","",""'  # noqa: E501
# line 13: a toll-fraud probe, dialled with outside-line 9 and access code 011
PROBE = '"101","101","9011441625251725","public","2016-02-17 05:22:41","","2016-02-17 05:22:41","0","0","NORMAL_CLEARING","4ecf0ec9-65d4-4049-85fd-649a630f5d46","","","",""'  # noqa: E501
# line 6 with its destination changed to an outside number (and a fresh uuid)
ANSWERED_OUTSIDE = ANSWERED_INTERNAL.replace('"3500"', '"14080012257"').replace(
    "d6195639-e9a2-eae4-c599-75e127f55602", "00000000-0000-0000-0000-000000000001")

AS_OF = datetime(2016, 3, 1, tzinfo=UTC)


def ingest(folder: Path, *lines: str, **changes):
    path = folder / "Master.csv"
    path.write_text("\n".join(lines) + "\n")
    opts = {"format": "freeswitch-csv", "as_of": AS_OF,
            "numbers": NumberPlan(country="1", dial_prefixes=("9",))} | changes
    result = ingest_files([path], IngestOptions(**opts))
    a = result.accounting
    assert a.read == a.accepted + sum(a.unrated.values()) + sum(a.quarantined.values())
    return result


def test_answered_call_to_an_outside_number_is_accepted(tmp_path):
    result = ingest(tmp_path, ANSWERED_OUTSIDE)
    row = result.usage.row(0, named=True)
    assert row["event_id"] == "00000000-0000-0000-0000-000000000001"
    assert row["subscriber_id"] == "2001"  # accountcode
    assert row["destination"] == "14080012257"
    assert row["origin"] == "2001"
    assert row["quantity"] == 15
    assert row["answered"] is True
    assert row["disposition"] == "NORMAL_CLEARING"
    assert row["started_at"] == datetime(2016, 2, 16, 5, 55, 27, tzinfo=UTC)
    assert row["unrated_reason"] is None
    assert result.accounting.accepted == 1


def test_uuid_is_the_event_id(tmp_path):
    result = ingest(tmp_path, ANSWERED_INTERNAL, BUSY)
    assert result.usage["event_id"].to_list() == [
        "d6195639-e9a2-eae4-c599-75e127f55602", "3269ae31-847a-42de-ac09-0150eedb75fd"]
    assert result.usage["source_id"].to_list() == result.usage["event_id"].to_list()


def test_answered_call_to_an_extension_is_internal(tmp_path):
    result = ingest(tmp_path, ANSWERED_INTERNAL)
    assert result.usage["unrated_reason"].to_list() == ["internal"]
    assert result.usage["quantity"].to_list() == [15]


def test_unanswered_calls_are_not_answered(tmp_path):
    result = ingest(tmp_path, BUSY, PROBE)
    assert result.usage["unrated_reason"].to_list() == ["not_answered", "not_answered"]
    assert result.usage["answered"].to_list() == [False, False]
    # outside-line 9, then access code 011: the probe was to +44 1625 ...
    assert result.usage["destination"].to_list() == ["14080012257", "441625251725"]
    assert result.accounting.to_dict()["unrated"] == {"not_answered": 2}


def test_empty_accountcode_is_no_subscriber_only_when_nothing_else_applies(tmp_path):
    no_account = ANSWERED_OUTSIDE.replace('"","2001","opus"', '"","","opus"')
    result = ingest(tmp_path, no_account, BUSY)
    assert result.usage["subscriber_id"].to_list() == [None, None]
    assert result.usage["unrated_reason"].to_list() == ["no_subscriber", "not_answered"]


def test_a_repeated_uuid_is_a_duplicate(tmp_path):
    result = ingest(tmp_path, ANSWERED_INTERNAL, BUSY, ANSWERED_INTERNAL)
    assert result.quarantine.select("source_row", "reason", "event_id").rows() == [
        (3, "duplicate", "d6195639-e9a2-eae4-c599-75e127f55602")]


def test_row_with_a_wrong_column_count_is_bad_shape(tmp_path):
    result = ingest(tmp_path, BUSY, BUSY.rsplit(",", 1)[0])
    assert result.quarantine.select("source_row", "reason").rows() == [(2, "bad_shape")]
    assert "14 columns" in result.quarantine["detail"][0]


def test_row_accounting(tmp_path):
    bad_start = BUSY.replace("2016-02-16 05:02:32", "yesterday", 1).replace("3269ae31", "ffff")
    result = ingest(tmp_path, ANSWERED_OUTSIDE, ANSWERED_INTERNAL, BUSY, PROBE, bad_start,
                    BUSY, PROBE.rsplit(",", 1)[0])
    assert result.accounting.to_dict() == {
        "read": 7,
        "accepted": 1,
        "unrated": {"internal": 1, "not_answered": 2},
        "quarantined": {"bad_field": 1, "bad_shape": 1, "duplicate": 1},
        "files": {"Master.csv": 7},
    }
