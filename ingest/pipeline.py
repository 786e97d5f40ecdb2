"""Ingest: source files in, normalised usage and quarantine out, every row accounted for.

`ingest_files` is the entry point; `write_ingest` stores its result atomically under a
folder (usage bucketed by subscriber, quarantine, and the row accounting).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl

from . import schema as s
from .column_map import ColumnMap
from .errors import OptionsError, SourceFileError
from .numbers import AMBIGUOUS, INTERNAL, NumberPlan
from .sources import read_asterisk, read_freeswitch, read_mapped_csv, read_text_usage

Format = Literal["parquet", "asterisk-csv", "freeswitch-csv", "csv", "usage-csv"]
FORMATS: tuple[str, ...] = ("parquet", "asterisk-csv", "freeswitch-csv", "csv", "usage-csv")
SWITCH_TIME = "%Y-%m-%d %H:%M:%S"
MISSING = "no such file; check the path (a shell pattern that matched nothing stays as typed)"
DEFAULT_SUBSCRIBER_COLUMN = {"asterisk-csv": "accountcode", "freeswitch-csv": "accountcode"}


@dataclass(frozen=True)
class IngestOptions:
    """How to read and normalise the files of one ingest (the `ingest` command's options)."""

    format: Format
    timezone: str = "UTC"
    numbers: NumberPlan = field(default_factory=NumberPlan)
    subscriber_from: str | None = None  # a source column, or "const:ID"
    billable_apps: tuple[str, ...] = ("Dial",)
    column_map: ColumnMap | None = None
    as_of: datetime | None = None
    buckets: int = 8

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise OptionsError(f"unknown format {self.format!r}; use one of {', '.join(FORMATS)}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise OptionsError(
                f"unknown time zone {self.timezone!r}; use an IANA name such as Europe/Paris"
            ) from None
        if self.format == "csv" and self.column_map is None:
            raise OptionsError("--format csv needs --column-map MAP.yaml")
        if self.subscriber_from is not None and not self.subscriber_from.strip():
            raise OptionsError("--subscriber-from is empty; give a column name or const:ID")
        if self.buckets < 1:
            raise OptionsError("the number of buckets must be at least 1")

    def ingested_at(self) -> datetime:
        instant = self.as_of or datetime.now(UTC)
        if instant.tzinfo is None:
            raise OptionsError("--as-of needs an explicit offset, e.g. 2016-12-01T00:00:00Z")
        return instant.astimezone(UTC)


@dataclass
class Accounting:
    """read = accepted + unrated + quarantined, per reason."""

    read: int = 0
    accepted: int = 0
    unrated: Counter = field(default_factory=Counter)
    quarantined: Counter = field(default_factory=Counter)
    files: dict[str, int] = field(default_factory=dict)

    def balanced(self) -> bool:
        return self.read == self.accepted + sum(self.unrated.values()) + sum(
            self.quarantined.values()
        )

    def to_dict(self) -> dict:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "unrated": dict(sorted(self.unrated.items())),
            "quarantined": dict(sorted(self.quarantined.items())),
            "files": self.files,
        }


@dataclass
class IngestResult:
    usage: pl.DataFrame
    quarantine: pl.DataFrame
    accounting: Accounting


def content_id(fmt: str, record: str) -> str:
    """A stable event id from the source format and the record's content (never its path)."""
    return hashlib.blake2b(f"{fmt}\x1e{record}".encode(), digest_size=16).hexdigest()


def subscriber_buckets(subscribers: pl.Series, buckets: int) -> pl.Series:
    """Bucket of each subscriber: CRC-32 of its id modulo `buckets`, stable across versions."""
    distinct = subscribers.fill_null("").unique().to_list()
    mapping = {sub: zlib.crc32(sub.encode()) % buckets for sub in distinct}
    return subscribers.fill_null("").replace_strict(mapping, return_dtype=pl.Int32).alias("bucket")


# --- interpreting each format's text fields -------------------------------------------------

_ISO_OFFSET = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z")
_ISO_LOCAL = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M")


def iso_instant(text: pl.Expr) -> pl.Expr:
    """ISO 8601 text with a UTC offset (or Z) -> UTC instant; anything else -> null. Each
    row is parsed on its own (no format guessed from the first row)."""
    text = text.str.strip_chars().str.replace(r"Z$", "+00:00")
    return pl.coalesce(*(text.str.to_datetime(fmt, strict=False, time_zone="UTC",
                                              time_unit="us") for fmt in _ISO_OFFSET))


def _local_instant(text: pl.Expr, fmt: str, zone: str) -> pl.Expr:
    return (
        text.str.strip_chars()
        .str.to_datetime(fmt, strict=False, time_unit="us")
        .dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )


def _whole_number(text: pl.Expr) -> pl.Expr:
    return text.str.strip_chars().cast(pl.Int64, strict=False)


def _subscriber(fields: pl.DataFrame, opts: IngestOptions, path: Path) -> pl.Expr:
    source = opts.subscriber_from or DEFAULT_SUBSCRIBER_COLUMN.get(opts.format)
    if source is None:
        mapped = opts.column_map.columns.get("subscriber_id") if opts.column_map else None
        if mapped is None:
            raise OptionsError(
                f"{path}: no subscriber: give --subscriber-from COLUMN or const:ID "
                "(or map `subscriber_id` in the column map)"
            )
        source = mapped
    if source.startswith("const:"):
        return pl.lit(source.removeprefix("const:"), pl.String)
    if source not in fields.columns:
        names = [c for c in fields.columns if c not in ("source_row", "record")]
        raise OptionsError(
            f"{path}: --subscriber-from {source!r} is not a column of {opts.format}; "
            f"choose one of {names} or const:ID"
        )
    return pl.col(source).str.strip_chars()


def _interpret_switch(fields: pl.DataFrame, opts: IngestOptions, path: Path) -> pl.DataFrame:
    if opts.format == "asterisk-csv":
        start, billsec, dst, src = "start", "billsec", "dst", "src"
        answered = pl.col("disposition").str.strip_chars() == "ANSWERED"
        not_a_call = ~pl.col("lastapp").is_in(list(opts.billable_apps))
        source_id = pl.col("uniqueid") if "uniqueid" in fields.columns else pl.lit(None, pl.String)
        disposition = pl.col("disposition")
        own_id = pl.lit(None, pl.String)  # uniqueid is per channel, not per row
    else:
        start, billsec = "start_stamp", "billsec"
        dst, src = "destination_number", "caller_id_number"
        answered = pl.col("answer_stamp").str.strip_chars() != ""
        not_a_call = pl.lit(False)
        source_id = pl.col("uuid")
        disposition = pl.col("hangup_cause")
        uuid = pl.col("uuid").str.strip_chars()
        own_id = pl.when(uuid != "").then(uuid)
    quantity = _whole_number(pl.col(billsec))
    return fields.select(
        "source_row",
        "record",
        started_at=_local_instant(pl.col(start), SWITCH_TIME, opts.timezone),
        started_text=pl.col(start),
        quantity=quantity,
        quantity_text=pl.col(billsec),
        service=pl.lit("voice"),
        destination_raw=pl.col(dst),
        origin_raw=pl.col(src),
        subscriber_id=_subscriber(fields, opts, path),
        own_id=own_id,
        precheck=pl.when(not_a_call)
        .then(pl.lit(s.NOT_A_CALL))
        .when(~answered | (quantity <= 0))
        .then(pl.lit(s.NOT_ANSWERED)),
        answered=answered,
        duration_s=_whole_number(pl.col("duration")),
        disposition=disposition,
        source_id=source_id,
    )


def _interpret_mapped(fields: pl.DataFrame, opts: IngestOptions, path: Path) -> pl.DataFrame:
    cmap = opts.column_map
    cols = cmap.columns
    zone = cmap.timezone or opts.timezone
    if cmap.service.constant:
        service = pl.lit(cmap.service.constant)
    else:
        service = pl.col(cmap.service.column).str.strip_chars().replace_strict(
            cmap.service.values, default=None, return_dtype=pl.String
        )
    default_qty = pl.lit(None, pl.Int64)
    for svc, qty in cmap.quantity_default.items():
        default_qty = pl.when(service == svc).then(pl.lit(qty, pl.Int64)).otherwise(default_qty)
    if "quantity" in cols:
        raw_qty = pl.col(cols["quantity"]).str.strip_chars()
        quantity = pl.when(raw_qty == "").then(default_qty).otherwise(_whole_number(raw_qty))
        quantity_text = pl.col(cols["quantity"])
    else:
        quantity, quantity_text = default_qty, pl.lit("")
    billable = pl.lit(True)
    for cond in cmap.billable:
        billable = billable & pl.col(cond.column).str.strip_chars().is_in(cond.in_)
    start = pl.col(cols["started_at"])
    if cmap.started_at_format:
        started = _local_instant(start, cmap.started_at_format, zone)
    else:  # ISO 8601: an instant where it has an offset, else a local time in the zone
        started = pl.coalesce(iso_instant(start), *(
            _local_instant(start, fmt, zone) for fmt in _ISO_LOCAL))

    def text(name: str) -> pl.Expr:
        return pl.col(cols[name]).str.strip_chars() if name in cols else pl.lit(None, pl.String)

    return fields.select(
        "source_row",
        "record",
        started_at=started,
        started_text=start,
        quantity=quantity,
        quantity_text=quantity_text,
        service=service,
        service_text=pl.col(cmap.service.column) if cmap.service.column else pl.lit(""),
        destination_raw=text("destination"),
        origin_raw=text("origin"),
        subscriber_id=_subscriber(fields, opts, path),
        own_id=text("event_id"),
        tenant=text("tenant"),
        category=text("category"),
        precheck=pl.when(~billable).then(pl.lit(s.NOT_BILLABLE)),
    )


def _bad_rows(frame: pl.DataFrame, condition: pl.Expr, detail: pl.Expr) -> pl.DataFrame:
    return frame.filter(condition).select("source_row", "record", detail.alias("detail"))


def _read_switch_or_csv(path: Path, opts: IngestOptions):
    """Read and interpret one CSV-family file: (accepted rows, bad rows)."""
    if opts.format == "asterisk-csv":
        fields, bad_shape = read_asterisk(path)
    elif opts.format == "freeswitch-csv":
        fields, bad_shape = read_freeswitch(path)
    else:
        fields, bad_shape = read_mapped_csv(path, opts.column_map)
    if opts.format == "csv":
        rows = _interpret_mapped(fields, opts, path)
    else:
        rows = _interpret_switch(fields, opts, path)

    bad_start = pl.col("started_at").is_null()
    bad_qty = (pl.col("quantity").is_null() | (pl.col("quantity") < 0)
               | (pl.col("quantity") > s.MAX_QUANTITY))
    time_format = (opts.column_map.started_at_format if opts.column_map else SWITCH_TIME) \
        or "ISO 8601"
    checks = []
    if "service_text" in rows.columns:
        checks.append((pl.col("service").is_null(), pl.format(
            "service value {} is not in the column map's service.values",
            _shown(pl.col("service_text")))))
    checks += [
        (bad_start, pl.format(f"start time {{}} is not a time in the format {time_format}, or "
                              f"does not exist in the zone (a daylight-saving gap)",
                              _shown(pl.col("started_text")))),
        (bad_qty, pl.format(f"quantity {{}} is not a whole number from 0 to {s.MAX_QUANTITY}",
                            _shown(pl.col("quantity_text")))),
    ]
    bad = [bad_shape]
    failed = pl.lit(False)
    for condition, detail in checks:
        bad.append(_bad_rows(rows.filter(~failed), condition, detail)
                   .with_columns(reason=pl.lit(s.BAD_FIELD)))
        failed = failed | condition
    rows = rows.filter(~failed.fill_null(True))

    ids = [content_id(opts.format, r) for r in rows["record"].to_list()]
    rows = rows.with_columns(
        event_id=pl.coalesce(pl.col("own_id"), pl.Series(ids, dtype=pl.String))
    ).drop("own_id")
    bad_all = pl.concat(bad, how="vertical_relaxed").with_columns(
        event_id=pl.lit(None, pl.String)
    )
    return rows, bad_all


def _finish_cdr_rows(rows: pl.DataFrame, opts: IngestOptions) -> pl.DataFrame:
    """Normalise numbers and decide the ingest-level unrated reason, in precedence order."""
    destination, kind = opts.numbers.normalise_column(rows["destination_raw"])
    origin, _ = opts.numbers.normalise_column(rows["origin_raw"])
    subscriber_missing = pl.col("subscriber_id").is_null() | (pl.col("subscriber_id") == "")
    rows = rows.with_columns(destination=destination, origin=origin, destination_kind=kind)
    return rows.with_columns(
        subscriber_id=pl.when(subscriber_missing).then(None).otherwise(pl.col("subscriber_id")),
        unrated_reason=pl.coalesce(
            pl.col("precheck"),
            pl.when(subscriber_missing).then(pl.lit(s.NO_SUBSCRIBER)),
            pl.when(pl.col("destination_kind") == INTERNAL).then(pl.lit(s.INTERNAL)),
            pl.when(pl.col("destination_kind") == AMBIGUOUS).then(pl.lit(s.AMBIGUOUS_NUMBER)),
        ),
    )


def _shown(text: pl.Expr) -> pl.Expr:
    """A source field as a detail shows it: "(empty)" when the field held nothing."""
    return pl.when(text.is_null() | (text == "")).then(pl.lit("(empty)")).otherwise(text)


# --- usage already in the schema (Parquet, or CSV for `rate`) -------------------------------

def _typed_usage(frame: pl.DataFrame, path: Path, from_text: bool):
    """Check and type a frame that claims the usage schema: (rows, bad rows)."""
    known = set(s.USAGE_SCHEMA) | set(s.OPTIONAL_SCHEMA) | {"source_row"}
    unknown = sorted(set(frame.columns) - known)
    missing = [c for c in s.MINIMAL_COLUMNS if c not in frame.columns]
    if unknown:
        raise SourceFileError(
            str(path),
            f"unknown columns {unknown}"
            + (f" and required columns {missing} missing" if missing else "")
            + f"; usage columns are {sorted(set(s.USAGE_SCHEMA))} and optional "
            f"{sorted(s.OPTIONAL_SCHEMA)}",
        )
    if missing:
        raise SourceFileError(str(path), f"missing required usage columns {missing}")
    if "source_row" not in frame.columns:
        frame = frame.with_row_index("source_row", offset=1).with_columns(
            pl.col("source_row").cast(pl.Int64)
        )
    if from_text:
        started = iso_instant(pl.col("started_at"))
        quantity = _whole_number(pl.col("quantity"))
    else:
        dtype = frame.schema["started_at"]
        if not isinstance(dtype, pl.Datetime):
            raise SourceFileError(str(path), f"started_at is {dtype}, not a timestamp")
        started = pl.col("started_at").cast(pl.Datetime("us", dtype.time_zone))
        started = (started.dt.convert_time_zone("UTC") if dtype.time_zone
                   else started.dt.replace_time_zone("UTC"))
        quantity = pl.col("quantity").cast(pl.Int64, strict=False)
    # Typed values go in new columns; the source's own text is kept for quarantine details,
    # computed for the bad rows only.
    frame = frame.with_columns(_started=started, _quantity=quantity)
    checks = [
        (pl.col("event_id").is_null() | (pl.col("event_id") == ""), pl.lit("event_id is empty")),
        (pl.col("_started").is_null(), pl.format(
            "started_at {} is not a valid date and time with a UTC offset",
            _shown(pl.col("started_at").cast(pl.String)))),
        (pl.col("_quantity").is_null() | (pl.col("_quantity") < 0)
         | (pl.col("_quantity") > s.MAX_QUANTITY), pl.format(
            f"quantity {{}} is not a whole number from 0 to {s.MAX_QUANTITY}",
            _shown(pl.col("quantity").cast(pl.String)))),
        (pl.col("service").is_null() | (pl.col("service") == ""), pl.lit("service is empty")),
    ]
    record = pl.concat_str(
        [pl.col(c).cast(pl.String).fill_null("") for c in s.MINIMAL_COLUMNS],
        separator="\x1f",
    ).alias("record")
    bad, failed = [], pl.lit(False)
    for condition, detail in checks:
        bad.append(frame.filter(~failed & condition.fill_null(True))
                   .select("source_row", record, detail.alias("detail"),
                           event_id=pl.when(pl.col("event_id") != "")  # kept when readable
                           .then(pl.col("event_id").cast(pl.String))))
        failed = failed | condition
    rows = frame.filter(~failed.fill_null(True)).drop("started_at", "quantity").rename(
        {"_started": "started_at", "_quantity": "quantity"})
    subscriber_missing = pl.col("subscriber_id").is_null() | (pl.col("subscriber_id") == "")
    reason = pl.col("unrated_reason") if "unrated_reason" in rows.columns else pl.lit(None)
    rows = rows.with_columns(
        unrated_reason=pl.coalesce(
            reason.cast(pl.String), pl.when(subscriber_missing).then(pl.lit(s.NO_SUBSCRIBER))
        )
    )
    bad_rows = pl.concat(bad).with_columns(reason=pl.lit(s.BAD_FIELD))
    return rows, bad_rows


def _read_usage_file(path: Path, opts: IngestOptions):
    if opts.format == "parquet":
        try:
            frame = pl.read_parquet(path)
        except (OSError, pl.exceptions.ComputeError) as exc:
            raise SourceFileError(str(path), f"not readable as Parquet: {exc}") from None
        return _typed_usage(frame, path, from_text=False)
    frame, bad_shape = read_text_usage(path)
    rows, bad = _typed_usage(frame, path, from_text=True)
    shaped = bad_shape.with_columns(event_id=pl.lit(None, pl.String))
    return rows, pl.concat([shaped, bad.select(shaped.columns)])


# --- the entry point ------------------------------------------------------------------------

def _conform(rows: pl.DataFrame, fmt: str, path: Path, ingested_at: datetime) -> pl.DataFrame:
    """Select the usage columns in order; provenance is filled in where the source has none."""
    fill = {
        "source_format": pl.lit(fmt),
        "source_file": pl.lit(path.name),
        "ingested_at": pl.lit(ingested_at).cast(s.UTC_INSTANT),
    }
    keeps_provenance = fmt in ("parquet", "usage-csv")
    out = []
    for name, dtype in s.USAGE_SCHEMA.items():
        present = name in rows.columns
        if name in fill:
            expr = pl.coalesce(pl.col(name).cast(dtype), fill[name]) if (
                present and keeps_provenance) else fill[name]
        else:
            expr = pl.col(name) if present else pl.lit(None)
        out.append(expr.cast(dtype).alias(name))
    for name, dtype in s.OPTIONAL_SCHEMA.items():
        if name in rows.columns:
            out.append(pl.col(name).cast(dtype, strict=False).alias(name))
    return rows.select(out)


def _read_file(path: Path, opts: IngestOptions, ingested_at: datetime,
               progress=None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One input file read and normalised: (usage rows, quarantine rows)."""
    if not path.is_file():
        raise SourceFileError(str(path), MISSING)
    if opts.format in ("parquet", "usage-csv"):
        rows, bad = _read_usage_file(path, opts)
    else:
        rows, bad = _read_switch_or_csv(path, opts)
        rows = _finish_cdr_rows(rows, opts)
    bad = bad.with_columns(
        source_format=pl.lit(opts.format),
        source_file=pl.lit(path.name),
        ingested_at=pl.lit(ingested_at).cast(s.UTC_INSTANT),
    ).select(list(s.QUARANTINE_SCHEMA))
    if progress:
        progress(f"read {path} ({len(rows) + len(bad)} rows)")
        if len(bad) and not len(rows) and (bad["reason"] == s.BAD_SHAPE).all():
            progress(f"warning: {path}: no row has the shape of --format {opts.format} "
                     f"(all {len(bad)} quarantined as {s.BAD_SHAPE}, e.g. "
                     f"{bad['detail'][0]}); is the format right for this file?")
    return _conform(rows, opts.format, path, ingested_at), bad


def _as_duplicates(rows: pl.DataFrame, detail: pl.Expr) -> pl.DataFrame:
    """Quarantine rows (reason ``duplicate``) for usage rows whose event id was seen; their
    ``record`` column holds what each row carried (:data:`RECORD`), so nothing is lost."""
    return rows.select(
        "source_format", "source_file", "source_row", "event_id",
        reason=pl.lit(s.DUPLICATE), detail=detail, record="record", ingested_at="ingested_at",
    ).select(list(s.QUARANTINE_SCHEMA))


# a usage row as JSON: the record of a duplicate, whose content may differ from the first's
RECORD = pl.struct(list(s.USAGE_SCHEMA)).struct.json_encode().alias("record")
# the detail of a repeated id names the row that keeps it (columns first_file, first_row)
EARLIER_ROW = pl.format("an earlier row has the same event_id ({} row {})",
                        pl.col("first_file"), pl.col("first_row"))
BILLED_IN = pl.format("already billed in batch {}", pl.col("batch_id"))


def _with_first(repeated: pl.DataFrame, firsts: pl.DataFrame) -> pl.DataFrame:
    """``repeated`` rows with the source file and row of their id's first row."""
    return repeated.join(
        firsts.select("event_id", first_file="source_file", first_row="source_row"),
        on="event_id", how="left", maintain_order="left")


def _count(accounting: Accounting, usage_reasons: pl.Series, quarantine: pl.DataFrame) -> None:
    """Fill the accepted, unrated and quarantined counts from what ingest kept."""
    reasons = usage_reasons.value_counts()
    accounting.unrated += Counter(
        dict(zip(reasons[reasons.columns[0]], reasons["count"], strict=True)))
    accounting.accepted += accounting.unrated.pop(None, 0)
    qreasons = quarantine["reason"].value_counts()
    accounting.quarantined += Counter(
        dict(zip(qreasons["reason"], qreasons["count"], strict=True)))
    accounting.read = (accounting.accepted + sum(accounting.unrated.values())
                       + sum(accounting.quarantined.values()))


def ingest_files(paths: list[str | Path], opts: IngestOptions, progress=None) -> IngestResult:
    """Read every file, normalise it, and account for every row (read = accepted + unrated +
    quarantined). Duplicates (same ``event_id``) after the first are quarantined. Holds
    everything in memory; :func:`ingest_to` streams to a folder instead."""
    ingested_at = opts.ingested_at()
    usage_parts, bad_parts = [], []
    accounting = Accounting()
    for path in map(Path, paths):
        rows, bad = _read_file(path, opts, ingested_at, progress)
        usage_parts.append(rows)
        bad_parts.append(bad)
        accounting.files[path.name] = accounting.files.get(path.name, 0) + len(rows) + len(bad)

    usage = pl.concat(usage_parts, how="diagonal_relaxed") if usage_parts else pl.DataFrame(
        schema=s.USAGE_SCHEMA
    )
    first = usage["event_id"].is_first_distinct()
    duplicates = _as_duplicates(
        _with_first(usage.filter(~first), usage.filter(first)).with_columns(RECORD),
        EARLIER_ROW)
    usage = usage.filter(first)
    quarantine = pl.concat([*bad_parts, duplicates], how="vertical_relaxed")
    _count(accounting, usage["unrated_reason"], quarantine)
    return IngestResult(usage=usage, quarantine=quarantine, accounting=accounting)


def quarantine_known(result: IngestResult, known: pl.DataFrame) -> IngestResult:
    """Move events whose ``event_id`` an earlier batch already holds (``known``: event_id,
    batch_id) to quarantine as duplicates, whenever they arrive."""
    if known.is_empty() or result.usage.is_empty():
        return result
    seen = known.unique("event_id", keep="first")
    hit = result.usage.join(seen, on="event_id", how="inner", maintain_order="left")
    if hit.is_empty():
        return result
    usage = result.usage.join(seen, on="event_id", how="anti", maintain_order="left")
    quarantine = pl.concat([result.quarantine,
                            _as_duplicates(hit.with_columns(RECORD), BILLED_IN)])
    accounting = Accounting(files=result.accounting.files)
    _count(accounting, usage["unrated_reason"], quarantine)
    return IngestResult(usage=usage, quarantine=quarantine, accounting=accounting)


def _bucket_slices(frame: pl.DataFrame, key: str):
    """(value, rows) of ``frame`` per value of integer column ``key``, ascending: one sort,
    then a slice per value (partition_by gathers every column once per value)."""
    frame = frame.sort(key, maintain_order=True)
    values = frame[key].to_numpy()
    edges = [0, *(np.flatnonzero(values[1:] != values[:-1]) + 1).tolist(), len(values)]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi > lo:
            yield int(values[lo]), frame.slice(lo, hi - lo).drop(key)


def _write_usage(usage: pl.DataFrame, folder: Path) -> None:
    """One bucket's usage, in the order rating reads it: by subscriber, start, event id."""
    folder.mkdir(parents=True)
    # zstd's fastest level: 0.47 s per 1.25M rows against 0.63 s at Polars' default
    # level, 10% larger, read back as fast (measured on the 10M bench month)
    usage[_usage_order(usage)].write_parquet(folder / "part-0.parquet", compression="zstd",
                                             compression_level=1)


def _usage_order(usage: pl.DataFrame) -> np.ndarray:
    """The rows' order by subscriber, start and event id, nulls first, as
    ``usage.sort("subscriber_id", "started_at", "event_id")`` gives it, found on integers:
    each subscriber's number in sorted order and the start go into one 64-bit key, and only
    rows of equal key (one subscriber's events starting in the same microsecond) are
    ordered by their event ids. From the 10M bench month, sorting the strings took 0.72 s
    for 1M rows shuffled and 0.36 s for 1.25M rows in input order; this, 0.4-0.5 s and
    0.2-0.27 s."""
    if usage.is_empty():
        return np.zeros(0, dtype=np.int64)
    subscriber = usage["subscriber_id"]
    names = subscriber.unique().sort()  # a null first
    number = subscriber.replace_strict(names, pl.Series(np.arange(len(names))),
                                       return_dtype=pl.Int64).to_numpy()
    start = usage["started_at"].dt.epoch("us")
    lo, hi = start.min(), start.max()
    if lo is None:  # no start at all
        lo = hi = 0
    since = (start - lo + 1).fill_null(0).to_numpy()  # a null first
    width = (hi - lo + 1).bit_length()
    if width + len(names).bit_length() > 63:  # starts decades apart: no room
        return usage.with_row_index("_order").sort(
            "subscriber_id", "started_at", "event_id")["_order"].to_numpy()
    key = (number << width) | since
    order = pl.Series(key).arg_sort().to_numpy(writable=True)  # ties are ordered below
    key = key[order]
    tied = np.zeros(len(key), dtype=bool)
    tied[1:] = key[1:] == key[:-1]
    tied[:-1] |= tied[1:]
    if tied.any():  # ties adjoin, so sorting them among themselves orders each run
        at = np.flatnonzero(tied)
        runs = pl.DataFrame({"key": key[at], "event_id": usage["event_id"].gather(order[at])})
        order[at] = order[at][runs.with_row_index("_at").sort("key", "event_id")["_at"]
                              .to_numpy()]
    return order


def _finish(staging: Path, out: Path, quarantine: pl.DataFrame, accounting: Accounting) -> None:
    (staging / "usage").mkdir(exist_ok=True)
    (staging / "quarantine").mkdir()
    quarantine.write_parquet(staging / "quarantine" / "part-0.parquet")
    (staging / "accounting.json").write_text(
        json.dumps(accounting.to_dict(), indent=2) + "\n"
    )
    for name in ("usage", "quarantine", "accounting.json"):
        replace_path(staging / name, out / name)


def write_ingest(result: IngestResult, out_dir: str | Path, buckets: int = 8) -> None:
    """Store usage (``usage/bucket=NNN/part-0.parquet``), quarantine and accounting under
    ``out_dir``, replacing a previous ingest there only once everything is written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ingest-", dir=out))
    try:
        usage = result.usage.with_columns(
            subscriber_buckets(result.usage["subscriber_id"], buckets))
        for b, rows in _bucket_slices(usage, "bucket"):
            _write_usage(rows, staging / "usage" / f"bucket={b:03d}")
        _finish(staging, out, result.quarantine, result.accounting)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ingest_to(paths: list[str | Path], opts: IngestOptions, out_dir: str | Path,
              known: pl.DataFrame | None = None, progress=None) -> Accounting:
    """:func:`ingest_files`, :func:`quarantine_known` (``known``: event_id, batch_id) and
    :func:`write_ingest` in bounded memory: each file is read once and spooled to disk by
    bucket (its rows) and by a hash of the event id (ids and provenance); duplicates are
    then found one partition of ids at a time, and each bucket is written from its spool
    without them. Peak memory follows the largest file or bucket, not the whole input."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ingest-", dir=out))
    spool = staging / "spool"
    ingested_at = opts.ingested_at()
    accounting = Accounting()
    bad_parts = []
    columns: dict[str, pl.DataType] = {}  # every bucket gets the columns any file has
    try:
        for k, path in enumerate(map(Path, paths)):
            rows, bad = _read_file(path, opts, ingested_at, progress)
            bad_parts.append(bad)
            columns |= {c: t for c, t in rows.schema.items() if c not in columns}
            accounting.files[path.name] = accounting.files.get(path.name, 0) + len(rows) + len(bad)
            rows = rows.with_columns(_file=pl.lit(k, pl.Int32),
                                     _row=pl.int_range(pl.len(), dtype=pl.Int64))
            # the id's hash is kept: it places the id and, later, finds repeats cheaply
            ids = rows.select("event_id", "_file", "_row", "source_format", "source_file",
                              "source_row", "ingested_at", id_hash=pl.col("event_id").hash())
            ids = ids.with_columns(part=(pl.col("id_hash") % opts.buckets).cast(pl.Int32))
            for part, chunk in _bucket_slices(ids, "part"):
                _spool(chunk, spool / "ids" / f"{part:03d}", k)
            rows = rows.with_columns(subscriber_buckets(rows["subscriber_id"], opts.buckets))
            for b, chunk in _bucket_slices(rows, "bucket"):
                _spool(chunk, spool / "usage" / f"{b:03d}", k)
            del rows, ids

        repeated, billed = _duplicates(spool / "ids", known)
        found = [d for d in (repeated, billed) if d is not None]
        gone = pl.concat([d.select("_file", "_row") for d in found]) if found else None

        reasons, records = [], []
        for folder in sorted((spool / "usage").glob("*")):
            usage = _read_spool(folder)
            if gone is not None:
                records.append(usage.join(gone, on=["_file", "_row"], how="semi")
                               .select("_file", "_row", RECORD))
                usage = usage.join(gone, on=["_file", "_row"], how="anti")
            if len(usage):
                _write_usage(usage.select(pl.col(c) if c in usage.columns else
                                          pl.lit(None, t).alias(c) for c, t in columns.items()),
                             staging / "usage" / f"bucket={int(folder.name):03d}")
                reasons.append(usage["unrated_reason"])
            shutil.rmtree(folder)
            if progress:
                progress(f"wrote bucket {folder.name}")
        recorded = pl.concat(records) if records else None
        duplicates = [
            _as_duplicates(found.join(recorded, on=["_file", "_row"], how="left",
                                      maintain_order="left"), detail)
            for found, detail in ((repeated, EARLIER_ROW), (billed, BILLED_IN))
            if found is not None]
        quarantine = pl.concat([*bad_parts, *duplicates], how="vertical_relaxed") \
            if bad_parts else pl.DataFrame(schema=s.QUARANTINE_SCHEMA)
        _count(accounting, pl.concat(reasons) if reasons else pl.Series(
            "unrated_reason", [], pl.String), quarantine)
        shutil.rmtree(spool, ignore_errors=True)
        _finish(staging, out, quarantine, accounting)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return accounting


def _duplicates(ids_spool: Path, known: pl.DataFrame | None):
    """(repeated, billed): spooled ids of rows whose event id an earlier row of the input
    has, and of first rows whose event id ``known`` holds (with its batch_id); each in
    input order (file, then row), None when there are none. One id partition at a time:
    equal ids share a partition."""
    repeated, billed = [], []
    seen = known.unique("event_id", keep="first") if known is not None else None
    for folder in sorted(ids_spool.glob("*")):
        ids = _read_spool(folder)  # in input order: by file, then row
        first = _first_distinct(ids["event_id"], ids["id_hash"])
        again = ids.filter(~first)
        if len(again):
            repeated.append(_with_first(again, ids.filter(
                first & pl.col("event_id").is_in(again["event_id"].implode()))))
        if seen is not None and len(seen):
            billed.append(ids.filter(first).join(seen, on="event_id", how="inner"))
    return tuple(pl.concat(p).sort("_file", "_row") if p else None
                 for p in (repeated, billed))


def _first_distinct(event_id: pl.Series, id_hash: pl.Series) -> pl.Series:
    """``event_id.is_first_distinct()``, found on the ids' 64-bit hashes: a row whose hash
    no other row has is the first of its id; only rows sharing a hash (the same id, or
    rarely a collision) are compared as strings, among themselves."""
    if id_hash.n_unique() == len(id_hash):  # the usual case; counting is 4x faster
        return pl.Series(np.ones(len(id_hash), dtype=bool))
    first = id_hash.is_first_distinct()
    rows = id_hash.is_duplicated().arg_true()
    return first.scatter(rows, event_id.gather(rows).is_first_distinct())


def _spool(frame: pl.DataFrame, folder: Path, k: int) -> None:
    """One input file's rows of one bucket or id partition (removed with the staging
    folder). Parquet with LZ4 and no statistics: as fast to write as Arrow IPC and, read
    on both cores, about three times faster to read back (1.25M usage rows, measured)."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / f"{k:06d}.parquet", compression="lz4", statistics=False)


def _read_spool(folder: Path) -> pl.DataFrame:
    """A bucket's or partition's spooled rows, files in input order (their optional
    columns may differ), each file's rows in its order."""
    return pl.concat([pl.read_parquet(f) for f in sorted(folder.glob("*.parquet"),
                                                         key=lambda f: int(f.stem))],
                     how="diagonal_relaxed")


def replace_path(new: Path, target: Path) -> None:
    """Put ``new`` (a file or folder) at ``target``, replacing what was there; the old
    content is removed only after the new one is in place."""
    if target.is_dir():
        old = target.with_name(f".old-{target.name}-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old)
    else:
        os.replace(new, target)


def read_usage_dir(folder: str | Path) -> pl.LazyFrame:
    """The usage written by `write_ingest` under ``folder`` (not its quarantine)."""
    usage = Path(folder) / "usage"
    if not usage.is_dir():
        raise SourceFileError(str(folder), "no usage/ folder here; is this an ingest output?")
    files = sorted(usage.glob("bucket=*/*.parquet"))
    if not files:
        return pl.LazyFrame(schema=s.USAGE_SCHEMA)
    return pl.scan_parquet(files, hive_partitioning=False)
