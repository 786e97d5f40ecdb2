"""Accounts: which plan each subscriber holds (``--accounts FILE``, CSV or Parquet).

Columns ``subscriber_id, plan_id``. Subscribers without a row hold the catalog's default
plan. Every problem of every row is listed with file and line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .catalog import Catalog
from .errors import AccountsError, Problem

ACCOUNT_COLUMNS = ("subscriber_id", "plan_id")


@dataclass(frozen=True)
class Accounts:
    plans: pl.DataFrame  # subscriber_id, plan_id
    digest: str


def load_accounts(path: str | Path, catalog: Catalog) -> Accounts:
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path).with_columns(pl.all().cast(pl.String))
            first_line = 1
        else:
            frame = pl.read_csv(path, infer_schema=False)  # drops a UTF-8 byte order mark
            first_line = 2
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise AccountsError(str(path), [Problem(str(path), f"cannot read: {exc}")]) from None
    if set(frame.columns) != set(ACCOUNT_COLUMNS):
        raise AccountsError(str(path), [Problem(str(path), f"columns are {frame.columns}; "
                                                f"expected exactly {list(ACCOUNT_COLUMNS)}")])
    known = {p.id for p in catalog.model.plans}
    subscriber = pl.col("subscriber_id").fill_null("").str.strip_chars()
    plan = pl.col("plan_id").fill_null("").str.strip_chars()
    checked = frame.with_row_index("line", offset=first_line).with_columns(
        empty_subscriber=subscriber == "",
        empty_plan=plan == "",
        unknown_plan=(plan != "") & ~pl.col("plan_id").is_in(list(known)),
        repeated=(subscriber != "") & pl.col("subscriber_id").is_duplicated(),
    )
    problems = []
    for row in checked.filter(pl.col("empty_subscriber") | pl.col("empty_plan")
                              | pl.col("unknown_plan") | pl.col("repeated")).iter_rows(named=True):
        where = f"{path}:{row['line']}"
        if row["empty_subscriber"]:
            problems.append(Problem(where, "subscriber_id is empty"))
        if row["empty_plan"]:
            problems.append(Problem(where, f"plan_id is empty; give one of {sorted(known)}"))
        if row["unknown_plan"]:
            problems.append(Problem(where, f"plan {row['plan_id']!r} is not in the catalog "
                                    f"(plans: {sorted(known)})"))
        if row["repeated"]:
            problems.append(Problem(where, f"subscriber {row['subscriber_id']!r} appears "
                                    "more than once"))
    if problems:
        raise AccountsError(str(path), problems)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return Accounts(plans=frame.select(ACCOUNT_COLUMNS), digest=digest)
