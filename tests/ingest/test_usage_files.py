"""Usage already in the schema: the `rate` command's CSV and usage Parquet."""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from ingest import IngestOptions, SourceFileError, ingest_files

HEADER = "event_id,subscriber_id,service,started_at,quantity,destination"
GOOD = "a,S1,voice,2026-03-02T10:00:00Z,60,441632960000"


def ingest_csv(folder: Path, *lines: str, header: str = HEADER):
    path = folder / "usage.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    result = ingest_files([path], IngestOptions(format="usage-csv"))
    assert result.accounting.balanced()
    return result


def test_a_usage_csv_row_becomes_usage(tmp_path):
    result = ingest_csv(tmp_path, GOOD, "b,S1,sms,2026-03-02T11:00:00+01:00,1,D")
    assert result.usage.select("event_id", "started_at", "quantity", "source_row").rows() == [
        ("a", datetime(2026, 3, 2, 10, tzinfo=UTC), 60, 2),
        ("b", datetime(2026, 3, 2, 10, tzinfo=UTC), 1, 3),
    ]
    assert result.usage["source_file"].unique().to_list() == ["usage.csv"]
    assert result.accounting.accepted == 2


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (",S1,voice,2026-03-02T10:00:00Z,60,44", "event_id is empty"),
        ("b,S1,voice,2026-03-02 10:00:00,60,44", "2026-03-02 10:00:00"),  # no UTC offset
        ("b,S1,voice,yesterday,60,44", "yesterday"),
        ("b,S1,voice,2026-11-31T10:00:00+01:00,60,44",  # no such day
         "2026-11-31T10:00:00+01:00 is not a valid date and time"),
        ("b,S1,voice,,60,44", "started_at"),
        ("b,S1,voice,2026-03-02T10:00:00Z,-1,44", "quantity -1"),
        ("b,S1,voice,2026-03-02T10:00:00Z,1.5,44", "quantity 1.5"),
        ("b,S1,voice,2026-03-02T10:00:00Z,,44", "quantity"),
        ("b,S1,,2026-03-02T10:00:00Z,60,44", "service is empty"),
    ],
)
def test_bad_fields_are_quarantined_with_a_detail_naming_the_field(tmp_path, line, words):
    result = ingest_csv(tmp_path, GOOD, line)
    (bad,) = result.quarantine.iter_rows(named=True)
    assert (bad["reason"], bad["source_row"], bad["source_file"]) == ("bad_field", 3, "usage.csv")
    assert bad["detail"] is not None and words in bad["detail"]
    assert bad["event_id"] == (None if words == "event_id is empty" else "b")  # when readable
    assert result.usage["event_id"].to_list() == ["a"]


def test_a_row_with_too_many_fields_is_quarantined_not_the_whole_file(tmp_path):
    result = ingest_csv(tmp_path, GOOD, "b,S1,voice,2026-03-02T10:00:00Z,60,44,extra",
                        "c,S1,sms,2026-03-02T10:00:00Z,1,D")
    assert result.usage["event_id"].to_list() == ["a", "c"]
    assert result.quarantine.select("source_row", "reason").rows() == [(3, "bad_shape")]


def test_a_row_with_too_few_fields_is_quarantined_with_a_detail(tmp_path):
    result = ingest_csv(tmp_path, GOOD, "b,S1,voice")
    (bad,) = result.quarantine.iter_rows(named=True)
    assert bad["source_row"] == 3
    assert bad["reason"] in ("bad_shape", "bad_field")
    assert bad["detail"] is not None


def test_missing_subscriber_is_kept_unrated(tmp_path):
    result = ingest_csv(tmp_path, GOOD, "b,,voice,2026-03-02T10:00:00Z,60,44")
    assert result.usage.select("event_id", "unrated_reason").rows() == [
        ("a", None), ("b", "no_subscriber")]


def test_a_repeated_event_id_is_quarantined_as_duplicate(tmp_path):
    result = ingest_csv(tmp_path, GOOD, GOOD.replace(",60,", ",61,"))
    assert result.quarantine.select("source_row", "reason", "event_id").rows() == [
        (3, "duplicate", "a")]
    assert result.usage["quantity"].to_list() == [60]


def test_unknown_columns_are_refused_naming_the_file(tmp_path):
    with pytest.raises(SourceFileError, match=r"usage\.csv: unknown columns \['colour'\]"):
        ingest_csv(tmp_path, GOOD + ",red", header=HEADER + ",colour")


def test_a_renamed_required_column_is_named_as_missing_too(tmp_path):
    with pytest.raises(SourceFileError, match=r"unknown columns \['id'\] and required "
                                              r"columns \['event_id'\] missing"):
        ingest_csv(tmp_path, GOOD, header=HEADER.replace("event_id", "id"))


def test_missing_required_columns_are_refused_naming_the_file(tmp_path):
    with pytest.raises(SourceFileError, match=r"usage\.csv: missing required usage columns "
                                              r"\['destination'\]"):
        ingest_csv(tmp_path, GOOD.rsplit(",", 1)[0], header=HEADER.rsplit(",", 1)[0])


def usage_parquet(folder: Path, started_at: pl.Series, **extra) -> Path:
    path = folder / "usage.parquet"
    pl.DataFrame({
        "event_id": ["x", "y"], "subscriber_id": ["S1", "S2"], "service": ["sms", "sms"],
        "started_at": started_at, "quantity": pl.Series([1, 2], dtype=pl.Int32),
        "destination": ["D", "E"], **extra,
    }).write_parquet(path)
    return path


@pytest.mark.parametrize(
    ("zone", "expected_hour"),
    [(None, 12), ("UTC", 12), ("Europe/Paris", 11)],  # a naive timestamp is taken as UTC
)
def test_parquet_timestamps_are_stored_in_utc(tmp_path, zone, expected_hour):
    instants = pl.Series([datetime(2026, 3, 1, 12)] * 2).dt.cast_time_unit("ns")
    if zone:
        instants = instants.dt.replace_time_zone(zone)
    result = ingest_files([usage_parquet(tmp_path, instants)], IngestOptions(format="parquet"))
    assert result.usage["started_at"].to_list() == [
        datetime(2026, 3, 1, expected_hour, tzinfo=UTC)] * 2
    assert result.usage["quantity"].dtype == pl.Int64
    assert result.usage["source_row"].to_list() == [1, 2]


def test_parquet_keeps_an_unrated_reason_decided_upstream(tmp_path):
    instants = pl.Series([datetime(2026, 3, 1, 12, tzinfo=UTC)] * 2)
    path = usage_parquet(tmp_path, instants, unrated_reason=[None, "internal"])
    result = ingest_files([path], IngestOptions(format="parquet"))
    assert result.usage["unrated_reason"].to_list() == [None, "internal"]
    assert result.accounting.unrated == {"internal": 1}


def test_parquet_started_at_that_is_not_a_timestamp_is_refused(tmp_path):
    path = usage_parquet(tmp_path, pl.Series(["2026-03-01T12:00:00Z"] * 2))
    with pytest.raises(SourceFileError, match="started_at is String, not a timestamp"):
        ingest_files([path], IngestOptions(format="parquet"))
