"""Any CSV with a column map: the bandicoot mobile metadata layout (rows copied verbatim
from data/real/bandicoot_mobile_ego.csv)."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest import IngestOptions, OptionsError, SourceFileError, ingest_files, load_column_map

HEADER = "interaction,direction,correspondent_id,datetime,call_duration,antenna_id"
TEXT_IN = "text,in,A,2014-03-02 07:13:30,,1"
TEXT_OUT = "text,out,D,2014-03-02 08:34:30,,3"
CALL_IN = "call,in,G,2014-03-03 09:14:15,374,1"
CALL_OUT = "call,out,A,2014-03-04 16:35:27,6233,4"

MAP = """\
columns:
  started_at: datetime
  destination: correspondent_id
  quantity: call_duration
started_at_format: "%Y-%m-%d %H:%M:%S"
timezone: Europe/Brussels
service:
  column: interaction
  values: {call: voice, text: sms}
quantity_default: {sms: 1}
billable:
  - {column: direction, in: [out]}
"""


def ingest(folder: Path, *lines: str, column_map: str = MAP, header: str = HEADER, **changes):
    (folder / "map.yaml").write_text(column_map)
    path = folder / "ego.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    opts = {"format": "csv", "column_map": load_column_map(folder / "map.yaml"),
            "subscriber_from": "const:ego", "as_of": datetime(2014, 5, 1, tzinfo=UTC)}
    result = ingest_files([path], IngestOptions(**(opts | changes)))
    a = result.accounting
    assert a.read == a.accepted + sum(a.unrated.values()) + sum(a.quarantined.values())
    return result


def test_outgoing_calls_and_texts_are_billable_incoming_are_not(tmp_path):
    result = ingest(tmp_path, TEXT_IN, TEXT_OUT, CALL_IN, CALL_OUT)
    rows = result.usage.select("source_row", "service", "quantity", "destination",
                               "unrated_reason").rows()
    assert rows == [
        (2, "sms", 1, "A", "not_billable"),
        (3, "sms", 1, "D", None),
        (4, "voice", 374, "G", "not_billable"),
        (5, "voice", 6233, "A", None),
    ]
    assert result.usage["subscriber_id"].unique().to_list() == ["ego"]
    assert result.accounting.to_dict()["unrated"] == {"not_billable": 2}


def test_local_times_in_the_map_zone_become_utc(tmp_path):
    result = ingest(tmp_path, CALL_OUT)
    # Brussels is UTC+1 in early March
    assert result.usage["started_at"].to_list() == [datetime(2014, 3, 4, 15, 35, 27, tzinfo=UTC)]


def test_bad_rows_are_quarantined_with_their_reason(tmp_path):
    result = ingest(
        tmp_path,
        CALL_OUT,
        "call,out,B,2014-03-06 99:40:07,2456,3",  # no such hour
        "fax,out,B,2014-03-06 16:40:07,1,3",  # service not in the map
        "call,out,B,2014-03-06 16:40:07,abc,3",  # quantity
        "call,out,B,2014-03-06 16:40:07",  # too few columns
        "call,out,B,2014-03-06 16:40:07,,3",  # no quantity, none by default for calls
    )
    got = result.quarantine.select("source_row", "reason").sort("source_row").rows()
    assert got == [(3, "bad_field"), (4, "bad_field"), (5, "bad_field"), (6, "bad_shape"),
                   (7, "bad_field")]
    details = dict(zip(result.quarantine["source_row"], result.quarantine["detail"], strict=True))
    assert "99:40:07" in details[3]
    assert "fax" in details[4]
    assert "abc" in details[5]
    assert details[7].startswith("quantity (empty) is not a whole number")
    assert result.accounting.to_dict()["read"] == 6
    assert result.accounting.accepted == 1


def test_event_id_from_content_is_stable(tmp_path):
    a = ingest(tmp_path, TEXT_OUT, CALL_OUT).usage["event_id"].to_list()
    b = ingest(tmp_path, CALL_OUT, TEXT_OUT).usage["event_id"].to_list()
    assert a == list(reversed(b))
    assert len(set(a)) == 2


def test_missing_mapped_column_is_refused_naming_the_file(tmp_path):
    with pytest.raises(SourceFileError, match=r"ego\.csv: columns \['call_duration'\]"):
        ingest(tmp_path, "text,out,D,2014-03-02 08:34:30,3",
               header="interaction,direction,correspondent_id,datetime,antenna_id")


def test_a_column_map_with_an_unknown_usage_field_is_refused(tmp_path):
    (tmp_path / "map.yaml").write_text(MAP.replace("quantity: call_duration",
                                                   "duration: call_duration"))
    with pytest.raises(OptionsError, match="unknown usage fields \\['duration'\\]"):
        load_column_map(tmp_path / "map.yaml")


def test_csv_format_needs_a_column_map():
    with pytest.raises(OptionsError, match="--column-map"):
        IngestOptions(format="csv")


def test_a_subscriber_is_required(tmp_path):
    with pytest.raises(OptionsError, match="no subscriber"):
        ingest(tmp_path, CALL_OUT, subscriber_from=None)
