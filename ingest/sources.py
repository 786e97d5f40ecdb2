"""Readers that turn one source file into a frame of text fields, one row per record.

Each reader returns (fields, bad_shape): ``fields`` holds the source's columns as
strings under their source names, plus ``source_row`` (1-based line) and ``record`` (the
raw fields, used for the content hash and shown in quarantine); ``bad_shape`` holds rows
that cannot be read as the format at all. Interpreting the fields is `pipeline.py`'s job.
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from .column_map import ColumnMap
from .errors import SourceFileError

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


def _read_rows(path: Path, delimiter: str = ","):
    try:
        handle = path.open(newline="", encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SourceFileError(str(path), f"cannot open: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            for row in reader:
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


def _bad_shape(items: list[tuple[int, list[str], str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "source_row": [line for line, _, _ in items],
            "record": [RECORD_SEPARATOR.join(row) for _, row, _ in items],
            "detail": [detail for _, _, detail in items],
        },
        schema={"source_row": pl.Int64, "record": pl.String, "detail": pl.String},
    )


def read_asterisk(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Asterisk cdr_csv Master.csv: no header, 16, 18 or 21 columns (one layout per file)."""
    widths: dict[int, list] = {w: [] for w in ASTERISK_COLUMNS}
    lines: dict[int, list] = {w: [] for w in ASTERISK_COLUMNS}
    bad = []
    for line, row in _read_rows(path):
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
    for line, row in _read_rows(path):
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
    for line, row in _read_rows(path, column_map.delimiter):
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
    for line, row in _read_rows(path):
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
