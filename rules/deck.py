"""Rate decks: prefix -> price tables kept in CSV or Parquet files beside the catalog.

A deck has the columns ``prefix, destination, rate`` and optionally ``connect_fee``,
``increments`` (``60/60``), ``min_billed`` and ``effective_from`` (ISO 8601 with offset).
Amounts are decimal text with a decimal point. `load_deck` checks every row and names
file and row of each problem; `import_carrier_deck` reads a carrier's own layout.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from .errors import DeckImportError, Problem
from .money import MoneyError, to_nanos
from .units import parse_increments

DECK_COLUMNS = ("prefix", "destination", "rate", "rate_id", "band", "weight", "connect_fee",
                "increments", "min_billed", "effective_from")
REQUIRED = ("prefix", "destination")
_PREFIX = re.compile(r"^[0-9]*$")

DECK_SCHEMA = {
    "prefix": pl.String,
    "destination": pl.String,
    "rate_nanos": pl.Int64,  # null: the row names a `rate_id`
    "rate_id": pl.String,
    "band": pl.String,  # null: in force at every time
    "weight": pl.Int64,  # null: the band's weight
    "connect_nanos": pl.Int64,  # null: the charge's connect fee
    "first_increment": pl.Int64,  # null: the charge's increments
    "next_increment": pl.Int64,
    "min_billed": pl.Int64,
    "effective_from": pl.Datetime("us", "UTC"),  # null: always
    "deck_row": pl.Int64,
}


def _read_text_table(path: Path, problems: list[Problem]) -> tuple[list[str], list[dict], list]:
    """(header, rows as dicts of text, line of each row); ragged CSV rows are problems."""
    if path.suffix.lower() == ".parquet":
        frame = pl.read_parquet(path).with_columns(pl.all().cast(pl.String))
        return frame.columns, frame.to_dicts(), list(range(1, len(frame) + 1))
    import csv

    # utf-8-sig: a spreadsheet's byte order mark is not part of the first column's name
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = [cell.strip() for cell in next(reader, [])]
        rows, lines = [], []
        for cells in reader:
            if not cells:
                continue
            if len(cells) != len(header):
                problems.append(Problem(f"{path}:{reader.line_num}", f"{len(cells)} fields; "
                                        f"the header has {len(header)}"))
                continue
            rows.append(dict(zip(header, cells, strict=True)))
            lines.append(reader.line_num)
    return header, rows, lines


def _parse_instant(text: str, zone: str = "UTC") -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(zone))
    return value.astimezone(UTC)


def _text(row: dict, name: str) -> str:
    return (row.get(name) or "").strip()


def parse_rows(rows: list[dict], where, problems: list[Problem], *, decimal_comma: bool = False,
               zone: str = "UTC") -> pl.DataFrame:
    """Validate deck rows given as dicts of text; `where(i)` names row i for a problem."""
    out: dict[str, list] = {k: [] for k in DECK_SCHEMA}
    seen: dict[tuple, int] = {}
    # a deck repeats few distinct prices and increments over many rows: each distinct text
    # is parsed once (a text that fails is not kept, so each of its rows fails alike)
    nanos = cache(lambda text: to_nanos(text, decimal_comma=decimal_comma))
    increments = cache(parse_increments)
    for i, row in enumerate(rows):
        prefix = _text(row, "prefix").removeprefix("+")
        rate = connect = first = nxt = min_billed = effective = weight = None
        rate_id, band = _text(row, "rate_id") or None, _text(row, "band") or None
        try:
            if not _PREFIX.match(prefix):
                raise ValueError(f"prefix {prefix!r} must be digits only")
            if (rate_id is None) == (not _text(row, "rate")):
                raise ValueError("give either a rate or a rate_id")
            if rate_id is None:
                rate = nanos(_text(row, "rate"))
                if rate < 0:
                    raise ValueError(f"rate {row.get('rate')!r} is negative")
            if _text(row, "connect_fee"):
                connect = nanos(row["connect_fee"])
                if connect < 0:
                    raise ValueError(f"connect fee {row['connect_fee']!r} is negative")
            if _text(row, "increments"):
                first, nxt = increments(row["increments"])
            if _text(row, "min_billed"):
                min_billed = int(row["min_billed"])
                if min_billed < 0:
                    raise ValueError("min_billed is negative")
            if _text(row, "weight"):
                weight = int(row["weight"])
            if _text(row, "effective_from"):
                effective = _parse_instant(row["effective_from"], zone)
        except (MoneyError, ValueError) as exc:
            problems.append(Problem(where(i), str(exc).removeprefix("rate: ")))
            continue
        key = (prefix, band, effective, rate_id)
        if key in seen:
            problems.append(Problem(where(i), f"prefix {prefix!r} appears again (first at "
                                    f"{where(seen[key])})" + (" with the same effective_from"
                                                              if effective else "")))
            continue
        seen[key] = i
        values = (prefix, _text(row, "destination"), rate, rate_id, band, weight, connect, first,
                  nxt, min_billed, effective, i)
        for name, value in zip(DECK_SCHEMA, values, strict=True):
            out[name].append(value)
    return pl.DataFrame(out, schema=DECK_SCHEMA)


def load_deck(path: Path, label: str, problems: list[Problem]) -> pl.DataFrame:
    """Read a normalised deck file; problems are appended, each naming file and row."""
    known = len(problems)
    try:
        header, rows, lines = _read_text_table(path, problems)
    except (OSError, pl.exceptions.PolarsError) as exc:
        problems.append(Problem(label, f"cannot read deck file {path}: {exc}"))
        return pl.DataFrame(schema=DECK_SCHEMA)
    missing = [c for c in REQUIRED if c not in header]
    if "rate" not in header and "rate_id" not in header:
        missing.append("rate")
    unknown = [c for c in header if c not in DECK_COLUMNS]
    if missing or unknown:
        if missing:
            problems.append(Problem(f"{path}", f"missing columns {missing}"))
        if unknown:
            problems.append(Problem(f"{path}", f"unknown columns {unknown}; a deck has "
                                    f"{list(DECK_COLUMNS)}"))
        return pl.DataFrame(schema=DECK_SCHEMA)
    if not rows and len(problems) == known:  # not when every row was ragged
        problems.append(Problem(f"{path}", "deck has no rows"))
    table = parse_rows(rows, lambda i: f"{path}:{lines[i]}", problems)
    # deck_row: the row's line in the file (its position in a Parquet deck), for messages
    return table.with_columns(pl.col("deck_row").replace_strict(
        dict(enumerate(lines)), return_dtype=pl.Int64))


# --- importing a carrier's deck -----------------------------------------------------------

_HEADER_NAMES = {
    "destination": ("destination", "description", "name", "destinationname", "dest", "country",
                    "zone", "area"),
    "prefix": ("prefix", "code", "dialcode", "dialingcode", "dialcodes", "areacode", "pattern",
               "digits"),
    "rate": ("rate", "price", "cost", "rateperminute", "perminute", "ratemin", "pricemin",
             "priceperminute", "costperminute", "minuterate"),
    "connect_fee": ("connectfee", "connectionfee", "connectcost", "setupfee", "setup",
                    "connection", "initialcost"),
    "increments": ("increments", "increment", "billingincrement", "interval", "billing"),
    "effective_from": ("effectivedate", "effectivefrom", "effective", "validfrom", "startdate",
                       "from"),
}


def recognise_header(header: list[str]) -> dict[str, int]:
    """Map deck fields to column positions by their usual names (case and spaces ignored)."""
    found: dict[str, int] = {}
    for pos, name in enumerate(header):
        key = re.sub(r"[^a-z]", "", name.lower())
        for field, names in _HEADER_NAMES.items():
            if key in names and field not in found:
                found[field] = pos
                break
    return found


def import_carrier_deck(path: Path, zone: str = "UTC") -> pl.DataFrame:
    """Read a carrier deck CSV (any common header, decimal point or comma) into deck rows."""
    import csv

    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise DeckImportError(str(path), [Problem(str(path), f"cannot read: {exc.strerror}")]) \
            from None
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    lines = list(csv.reader(text.splitlines(), delimiter=delimiter))
    if not lines:
        raise DeckImportError(str(path), [Problem(str(path), "empty file")])
    header, body = lines[0], lines[1:]
    positions = recognise_header(header)
    missing = [f for f in (*REQUIRED, "rate") if f not in positions]
    if missing:
        raise DeckImportError(str(path), [Problem(
            f"{path}:1", f"no column recognised as {missing} in header {header}; rename it "
            f"(e.g. destination, prefix, rate)")])
    rows, row_lines = [], []
    for number, cells in enumerate(body, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        rows.append({f: cells[p] if p < len(cells) else "" for f, p in positions.items()})
        row_lines.append(number)
    if not rows:
        raise DeckImportError(str(path), [Problem(str(path), "deck has no rows")])
    decimal_comma = any("," in r["rate"] and "." not in r["rate"] for r in rows)
    problems: list[Problem] = []
    table = parse_rows(rows, lambda i: f"{path}:{row_lines[i]}", problems,
                       decimal_comma=decimal_comma, zone=zone)
    if problems:
        raise DeckImportError(str(path), problems)
    return table


def write_deck(table: pl.DataFrame, path: Path) -> None:
    """Write deck rows as a normalised CSV (decimal points, instants with offsets)."""
    from .money import nanos_to_decimal

    def money(n):
        return None if n is None else format(nanos_to_decimal(n).normalize(), "f")

    out = table.select(
        "prefix",
        "destination",
        pl.col("rate_nanos").map_elements(money, return_dtype=pl.String).alias("rate"),
        "rate_id",
        "band",
        pl.col("weight").cast(pl.String),
        pl.col("connect_nanos").map_elements(money, return_dtype=pl.String).alias("connect_fee"),
        pl.when(pl.col("first_increment").is_not_null())
        .then(pl.format("{}/{}", "first_increment", "next_increment")).alias("increments"),
        pl.col("min_billed").cast(pl.String),
        pl.col("effective_from").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00").alias("effective_from"),
    )
    out = out.select([c for c in out.columns if c in REQUIRED or out[c].null_count() < len(out)])
    out.write_csv(path)
