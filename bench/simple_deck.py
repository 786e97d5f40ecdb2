"""The simple deck tariff: longest prefix and increments alone, rated by ratecycle and by
straightforward DuckDB SQL.

The tariff is the generated month's deck at its peak price, one row per prefix: no bands,
no connect fee, no bundle or tier, 60/1 increments (the first 60 s as one block, then per
second). The input is the month's voice calls. ``write_tariff`` puts the catalog and its
deck in ``<month>/simple/``; ``rate_duckdb`` is the SQL version, written without
ratecycle's code: a call matches its longest prefix by one left join per prefix length,
the block costs the per-minute price, each further second a sixtieth of it, that part
rounded half up once to 9 decimals (as ratecycle's native profile rounds each span). A
row that ingest marked unrated stays unrated.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

CATALOG = """\
# The simple deck tariff of issue 5 (written by bench/simple_deck.py; do not edit by hand).
catalog: 1
name: bench-simple-deck
currency: EUR
timezone: Europe/Berlin
plans:
  - id: simple
    default: true
    charges:
      - {service: voice, deck: intl, per: minute, increments: 60/1}
decks:
  intl: {file: deck.csv}
"""
BLOCK = 60  # seconds of the first increment
COLUMNS = ["event_id", "matched_prefix", "amount_n"]  # what the two versions are compared on


def write_tariff(month: Path) -> Path:
    """``month/simple/catalog.yaml`` and its deck from the month's deck (peak rows)."""
    folder = month / "simple"
    folder.mkdir(exist_ok=True)
    deck = pl.read_csv(month / "deck.csv", infer_schema=False)
    deck.filter(pl.col("band") == "peak").select("prefix", "destination", "rate")\
        .write_csv(folder / "deck.csv")
    (folder / "catalog.yaml").write_text(CATALOG)
    return folder / "catalog.yaml"


def compared(rated: pl.DataFrame) -> pl.DataFrame:
    """ratecycle's rated calls as the two versions are compared: :data:`COLUMNS`, the
    amount in exact nanos (null where unrated)."""
    from rules.money import arrow_to_nanos

    amount = rated["amount"]
    return rated.select("event_id", "matched_prefix").with_columns(
        amount_n=pl.Series(arrow_to_nanos(amount.to_arrow())).set(amount.is_null(), None))


def voice_calls(files: list[Path]) -> list[pl.DataFrame]:
    """Each bucket's voice events, as read from the usage files."""
    return [pl.read_parquet(f).filter(pl.col("service") == "voice") for f in files]


def rate_duckdb(con, usage: str, deck_csv: Path, out: str) -> None:
    """Create table ``out`` (event_id, matched_prefix, amount) from table ``usage``."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE simple_deck AS
        SELECT prefix, length(prefix) AS len,
               CAST(CAST(rate AS DECIMAL(38, 9)) * 1000000000 AS BIGINT) AS rate_n
        FROM read_csv('{deck_csv}', all_varchar = true)""")
    lengths = [r[0] for r in con.execute(
        "SELECT DISTINCT len FROM simple_deck ORDER BY len DESC").fetchall()]
    joins = "\n".join(  # a leading '+' is not part of the number
        f"LEFT JOIN simple_deck d{k} ON d{k}.prefix = left(ltrim(u.destination, '+'), {k})"
        for k in lengths)
    prefix = ", ".join(f"d{k}.prefix" for k in lengths)
    rate = ", ".join(f"d{k}.rate_n" for k in lengths)
    # amount in nanos: the block at the minute price, then (q - 60) s at price / 60 each,
    # rounded half up once; a call of no seconds costs nothing
    con.execute(f"""
        CREATE OR REPLACE TABLE {out} AS
        WITH m AS (
            SELECT u.event_id, u.quantity AS q,
                   -- a row ingest marked unrated (an internal call, say) stays unrated
                   CASE WHEN u.unrated_reason IS NULL THEN coalesce({prefix}) END
                       AS matched_prefix,
                   coalesce({rate}) AS rate_n
            FROM {usage} u
            {joins}
        )
        SELECT event_id, matched_prefix,
               CASE WHEN matched_prefix IS NULL THEN NULL
                    WHEN q <= 0 THEN 0
                    WHEN q <= {BLOCK} THEN rate_n
                    ELSE rate_n + (2 * rate_n * (q - {BLOCK}) + {BLOCK}) // (2 * {BLOCK})
               END AS amount_n
        FROM m""")
