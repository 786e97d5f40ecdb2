"""Readers that turn one source file into a frame of text fields, one row per record.

Each reader returns (fields, bad_shape): ``fields`` holds the source's columns as
strings under their source names, plus ``source_row`` (1-based line) and ``record`` (the
raw fields, used for the content hash and shown in quarantine); ``bad_shape`` holds rows
that cannot be read as the format at all. Interpreting the fields is `pipeline.py`'s job.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import polars as pl

from .column_map import ColumnMap
from .errors import SourceFileError
from .schema import BAD_ENCODING, BAD_SHAPE

ASTERISK_16 = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)
ASTERISK_COLUMNS = {
    16: ASTERISK_16,
    18: (*ASTERISK_16, "uniqueid", "userfield"),
    21: (*ASTERISK_16, "uniqueid", "userfield", "peeraccount", "linkedid", "sequence"),
}
FREESWITCH_COLUMNS = (
    "caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp",
    "answer_stamp", "end_stamp", "duration", "billsec", "hangup_cause", "uuid", "bleg_uuid",
    "accountcode", "read_codec", "write_codec",
)
RECORD_SEPARATOR = "\x1f"


_FIELD_LIMIT = 16 * 1024 * 1024  # a CDR field is never this long; a broken quote may be
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _visible(row: list[str]) -> list[str]:
    """A row with bytes that are not UTF-8 shown as escapes (\\xfc), for quarantine."""
    return [c.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            for c in row]


def _read_rows(path: Path, bad: list, delimiter: str = ","):
    """(line, fields) of each CSV record. A leading BOM is dropped; a record with bytes that
    are not UTF-8 goes to ``bad`` (never decoded lossily: two customers whose names differ
    only in such bytes must not merge)."""
    csv.field_size_limit(_FIELD_LIMIT)
    try:
        handle = path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise SourceFileError(str(path), f"cannot open: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            for row in reader:
                if any(_NOT_UTF8.search(cell) for cell in row):
                    bad.append((reader.line_num, _visible(row),
                                "bytes that are not UTF-8 text; re-export the file as UTF-8",
                                BAD_ENCODING))
                    continue
                yield reader.line_num, row
        except csv.Error as exc:
            raise SourceFileError(
                str(path), f"line {reader.line_num}: not readable as CSV ({exc})"
            ) from None


def _frame(names: tuple[str, ...], rows: list[list[str]], lines: list[int]) -> pl.DataFrame:
    columns = {name: [r[i] for r in rows] for i, name in enumerate(names)}
    columns["source_row"] = lines
    columns["record"] = [RECORD_SEPARATOR.join(r) for r in rows]
    schema = {name: pl.String for name in names} | {"source_row": pl.Int64, "record": pl.String}
    return pl.DataFrame(columns, schema=schema)


def _bad_shape(items: list[tuple]) -> pl.DataFrame:
    """Rows that cannot be read as the format: (line, fields, detail[, reason])."""
    return pl.DataFrame(
        {
            "source_row": [item[0] for item in items],
            "record": [RECORD_SEPARATOR.join(item[1]) for item in items],
            "detail": [item[2] for item in items],
            "reason": [item[3] if len(item) > 3 else BAD_SHAPE for item in items],
        },
        schema={"source_row": pl.Int64, "record": pl.String, "detail": pl.String,
                "reason": pl.String},
    )


def read_asterisk(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Asterisk cdr_csv Master.csv: no header, 16, 18 or 21 columns (one layout per file)."""
    widths: dict[int, list] = {w: [] for w in ASTERISK_COLUMNS}
    lines: dict[int, list] = {w: [] for w in ASTERISK_COLUMNS}
    bad = []
    for line, row in _read_rows(path, bad):
        if not row:
            continue
        if len(row) in widths:
            widths[len(row)].append(row)
            lines[len(row)].append(line)
        else:
            bad.append((line, row, f"{len(row)} columns; Asterisk cdr_csv writes 16, 18 or 21"))
    frames = [
        _frame(ASTERISK_COLUMNS[w], widths[w], lines[w]) for w in ASTERISK_COLUMNS if widths[w]
    ]
    fields = pl.concat(frames, how="diagonal") if frames else _frame(ASTERISK_16, [], [])
    return fields.sort("source_row"), _bad_shape(bad)


def read_freeswitch(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """FreeSWITCH mod_cdr_csv with the default template: 15 quoted columns, no header."""
    rows, lines, bad = [], [], []
    for line, row in _read_rows(path, bad):
        if not row:
            continue
        if len(row) == len(FREESWITCH_COLUMNS):
            rows.append(row)
            lines.append(line)
        else:
            bad.append((line, row, f"{len(row)} columns; the default template writes 15"))
    return _frame(FREESWITCH_COLUMNS, rows, lines), _bad_shape(bad)


def read_mapped_csv(path: Path, column_map: ColumnMap) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Any CSV: columns named by its header or by the column map's ``names``."""
    rows, lines, bad = [], [], []
    names: tuple[str, ...] | None = tuple(column_map.names) if column_map.names else None
    for line, row in _read_rows(path, bad, column_map.delimiter):
        if not row:
            continue
        if names is None:
            names = tuple(cell.strip() for cell in row)
            continue
        if len(row) == len(names):
            rows.append(row)
            lines.append(line)
        else:
            bad.append((line, row, f"{len(row)} columns; the header has {len(names)}"))
    if names is None:
        raise SourceFileError(str(path), "empty file: no header row")
    needed = set(column_map.columns.values()) | {c.column for c in column_map.billable}
    if column_map.service.column:
        needed.add(column_map.service.column)
    missing = sorted(needed - set(names))
    if missing:
        raise SourceFileError(
            str(path),
            f"columns {missing} named in the column map are not in the file "
            f"(it has {list(names)}); fix the map or the file",
        )
    return _frame(names, rows, lines), _bad_shape(bad)


def read_text_usage(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A CSV already in the usage schema, with a header (the `rate` command's CSV input).
    Empty fields are nulls; a row with the wrong number of fields is `bad_shape`."""
    header: tuple[str, ...] | None = None
    rows, lines, bad = [], [], []
    for line, row in _read_rows(path, bad):
        if not row:
            continue
        if header is None:
            header = tuple(cell.strip() for cell in row)
        elif len(row) == len(header):
            rows.append(row)
            lines.append(line)
        else:
            bad.append((line, row, f"{len(row)} fields; the header has {len(header)}"))
    if header is None:
        raise SourceFileError(str(path), "empty file: no header row")
    frame = _frame(header, rows, lines).drop("record")
    frame = frame.with_columns(
        pl.when(pl.col(name).str.len_bytes() > 0).then(pl.col(name)).alias(name)
        for name in header
    )
    return frame, _bad_shape(bad)
