"""Columns of normalised usage and of quarantine, as ingest writes them (DESIGN.md)."""

from __future__ import annotations

import polars as pl

UTC_INSTANT = pl.Datetime("us", "UTC")

# Required columns of usage, in order. `unrated_reason` is null for billable rows.
USAGE_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "subscriber_id": pl.String(),
    "service": pl.String(),
    "started_at": UTC_INSTANT,
    "quantity": pl.Int64(),
    "origin": pl.String(),
    "destination": pl.String(),
    "tenant": pl.String(),
    "category": pl.String(),
    "source_format": pl.String(),
    "source_file": pl.String(),
    "source_row": pl.Int64(),
    "ingested_at": UTC_INSTANT,
    "unrated_reason": pl.String(),
}

# Optional columns real switches report; kept when a source has them.
OPTIONAL_SCHEMA: dict[str, pl.DataType] = {
    "answered": pl.Boolean(),
    "duration_s": pl.Int64(),
    "disposition": pl.String(),
    "source_id": pl.String(),
}

# The smallest usage a caller may hand over; the rest is filled in (`fill_usage`).
MINIMAL_COLUMNS = ("event_id", "subscriber_id", "service", "started_at", "quantity", "destination")

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source_format": pl.String(),
    "source_file": pl.String(),
    "source_row": pl.Int64(),
    "event_id": pl.String(),
    "reason": pl.String(),
    "detail": pl.String(),
    "record": pl.String(),
    "ingested_at": UTC_INSTANT,
}

# Why an accepted row is not billed (unrated at ingest).
NOT_ANSWERED = "not_answered"
NOT_A_CALL = "not_a_call"
NO_SUBSCRIBER = "no_subscriber"
INTERNAL = "internal"
AMBIGUOUS_NUMBER = "ambiguous_number"  # an outside-line digit before no full number
NOT_BILLABLE = "not_billable"

# Why a row is quarantined.
DUPLICATE = "duplicate"
BAD_FIELD = "bad_field"
BAD_SHAPE = "bad_shape"
BAD_ENCODING = "bad_encoding"

# A quantity above this is a corrupt record (10^15 s is 31 million years, 10^15 bytes a
# petabyte); it is quarantined rather than allowed near 64-bit limits.
MAX_QUANTITY = 10**15

SERVICES = ("voice", "sms", "data")
