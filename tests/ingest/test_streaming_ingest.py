"""`ingest_to` (spooled, bounded memory) writes exactly what the in-memory path writes:
the same buckets of usage in the same order, the same quarantine and the same accounting,
with duplicates inside a file, across files and across buckets, ids billed by an earlier
batch, bad rows, and files whose optional columns differ."""

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import IngestOptions, ingest_files, ingest_to, quarantine_known, write_ingest
from ingest.pipeline import _first_distinct, _usage_order

HEADER = "event_id,subscriber_id,service,started_at,quantity,destination"


def _files(folder: Path) -> list[Path]:
    one = folder / "one.csv"
    one.write_text("\n".join([
        HEADER,
        "a,S1,voice,2026-03-02T10:00:00Z,60,441632960000",
        "b,S2,voice,2026-03-02T10:05:00Z,30,441632960001",
        "a,S1,voice,2026-03-02T10:00:00Z,60,441632960000",  # again in the same file
        "c,S3,sms,2026-03-02T11:00:00Z,1,D",
        "d,S4,voice,yesterday,5,44",  # bad field
        "k,S5,voice,2026-03-02T12:00:00Z,10,44",  # billed by an earlier batch
        *[f"m{i},S{i % 37},data,2026-03-0{1 + i % 9}T0{i % 10}:00:00Z,{i},apn"
          for i in range(200)],
    ]) + "\n")
    two = folder / "two.csv"
    two.write_text("\n".join([
        HEADER + ",disposition",
        "b,S2,voice,2026-03-02T10:05:00Z,30,441632960001,ANSWERED",  # across files
        "c,S9,sms,2026-03-02T11:00:00Z,1,D,ANSWERED",  # same id, another subscriber
        "e,S1,voice,2026-03-03T09:00:00Z,61,441632960000,NO ANSWER",
        "m5,S77,voice,2026-03-03T09:00:00Z,1,4416,ANSWERED",
    ]) + "\n")
    return [one, two]


def _written(folder: Path) -> dict:
    usage = {p.parent.name: pl.read_parquet(p)
             for p in sorted((folder / "usage").glob("bucket=*/part-0.parquet"))}
    return {"usage": usage,
            "quarantine": pl.read_parquet(folder / "quarantine" / "part-0.parquet"),
            "accounting": json.loads((folder / "accounting.json").read_text())}


def test_streaming_ingest_writes_what_the_in_memory_ingest_writes(tmp_path):
    files = _files(tmp_path)
    opts = IngestOptions(format="usage-csv", buckets=4, as_of=datetime(2026, 3, 5, tzinfo=UTC))
    known = pl.DataFrame({"event_id": ["k", "zz"], "batch_id": ["b1", "b1"]})

    write_ingest(quarantine_known(ingest_files(files, opts), known), tmp_path / "memory",
                 buckets=4)
    accounting = ingest_to(files, opts, tmp_path / "streamed", known=known)

    memory, streamed = _written(tmp_path / "memory"), _written(tmp_path / "streamed")
    assert list(streamed["usage"]) == list(memory["usage"]) and len(memory["usage"]) == 4
    for bucket, frame in memory["usage"].items():
        assert streamed["usage"][bucket].equals(frame), bucket
    assert streamed["quarantine"].equals(memory["quarantine"])
    assert streamed["accounting"] == memory["accounting"] == accounting.to_dict()
    assert accounting.quarantined == {"bad_field": 1, "duplicate": 5}
    earlier = "an earlier row has the same event_id"
    assert sorted(streamed["quarantine"]["detail"].to_list()[1:]) == [
        "already billed in batch b1", f"{earlier} (one.csv row 13)",
        f"{earlier} (one.csv row 2)", f"{earlier} (one.csv row 3)",
        f"{earlier} (one.csv row 5)"]
    # a duplicate keeps what it carried: here another subscriber than the row billed
    (c,) = streamed["quarantine"].filter(pl.col("source_file") == "two.csv",
                                         pl.col("event_id") == "c")["record"]
    assert json.loads(c)["subscriber_id"] == "S9" and json.loads(c)["source_row"] == 3
    assert accounting.read == 210 and accounting.balanced()
    assert not list((tmp_path / "streamed").glob(".ingest-*"))  # the spool is gone


def test_streaming_ingest_of_no_files(tmp_path):
    accounting = ingest_to([], IngestOptions(format="parquet"), tmp_path / "out")
    assert accounting.read == 0
    assert (tmp_path / "out" / "usage").is_dir()
    assert pl.read_parquet(tmp_path / "out" / "quarantine" / "part-0.parquet").is_empty()


IDS = ["a", "b", "c", "dd", None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(IDS), max_size=40),
       st.fixed_dictionaries({i: st.integers(0, 2) for i in IDS}))
def test_repeated_ids_are_found_on_their_hashes_as_on_the_ids(ids, hash_of):
    """Each id has one hash, taken from three values: different ids often share one."""
    hashes = pl.Series([hash_of[i] for i in ids], dtype=pl.UInt64)
    ids = pl.Series(ids, dtype=pl.String)
    assert _first_distinct(ids, hashes).equals(ids.is_first_distinct())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["S2", "S10", "S1", "", None]),
                          st.sampled_from([None, 0, 1, 59, 60, 10**6]),
                          st.sampled_from(["e", "E", "d", "e1", "é"])), max_size=40),
       st.sampled_from([0, 2**62]))
def test_usage_order_is_the_sort_by_subscriber_start_and_event_id(rows, far):
    """Nulls, ties on subscriber and start, and starts too far apart to pack (``far``)."""
    usage = pl.DataFrame(
        [(sub, None if at is None else at + far * (k % 2), event)
         for k, (sub, at, event) in enumerate(rows)],
        schema={"subscriber_id": pl.String, "started_at": pl.Int64, "event_id": pl.String},
        orient="row").with_columns(pl.col("started_at").cast(pl.Datetime("us", "UTC")))
    expected = usage.sort("subscriber_id", "started_at", "event_id")
    assert usage[_usage_order(usage)].equals(expected)
