"""Oracle 1: the benchmark tariff as straightforward DuckDB SQL, independent of ratecycle.

Money is integer nanos (BIGINT) from the deck's decimal text to the end, converted to
DECIMAL(38,9) once; a per-minute price billed per second reaches 9 places with half-up
rounding, once per part of a call, as DESIGN.md declares.

- Longest prefix: a left join on the destination's first L digits for every prefix length
  L, the longest that matched wins.
- Bands: a table of segments (UTC instants between which the band does not change), built
  from the band rules on the local wall clock of the catalog's zone.
- A voice call: connect fee and the first block (F seconds) in the band at its start; then
  every second from F on in the band in force when that second starts: a range join of the
  call's seconds with the segments gives one part per band, each rounded once.
- SMS and data: a flat rate per unit in F/F increments.
BUNDLE / GRADUATED: bundle depletion (in event order per subscriber and cycle) and
graduated data tiers go here once the catalog has them (see bench/generate.py).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from .oracle_spec import NO_RATE, NO_TARIFF, RATED, UNRATED, Spec, read_spec

FAR = 2**62  # beyond any instant in µs; segment bounds never overflow BIGINT arithmetic


def _nanos_sql(column: str) -> str:
    return f"CAST(CAST({column} AS DECIMAL(38,9)) * 1000000000 AS BIGINT)"


def load_tariff(con: duckdb.DuckDBPyConnection, spec: Spec, first_day: date,
                last_day: date) -> None:
    """Tables ``deck`` (prefix, band, rate_n, connect_n), ``prefixes`` and ``segments``
    (seg_from, seg_to in µs, band) covering the local days [first_day, last_day]."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE deck AS
        SELECT prefix, band, {_nanos_sql('rate')} AS rate_n,
               {_nanos_sql("coalesce(nullif(connect_fee, ''), '0')")} AS connect_n
        FROM read_csv('{spec.deck}', all_varchar = true, header = true)""")
    con.execute("""CREATE OR REPLACE TEMP TABLE prefixes AS
                   SELECT DISTINCT prefix, length(prefix) AS len FROM deck""")
    band_case = " ".join(
        f"WHEN isodow(day) IN ({', '.join(map(str, sorted(b.weekdays)))}) "
        f"AND clock >= {b.start_s} AND clock < {b.end_s} THEN '{b.name}'" for b in spec.bands)
    edges = ", ".join(map(str, spec.band_edges))
    # Band edges fall outside the hour a DST change skips or repeats (true of 00:00, 08:00
    # and 19:00 in every European zone), so each local edge is one instant.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE segments AS
        WITH edges AS (
            SELECT epoch_us(timezone('{spec.zone}',
                            CAST(day AS TIMESTAMP) + clock * INTERVAL 1 SECOND)) AS edge_at,
                   CASE {band_case} END AS band
            FROM (SELECT CAST(unnest(generate_series(DATE '{first_day}', DATE '{last_day}',
                                                     INTERVAL 1 DAY)) AS DATE) AS day),
                 (SELECT unnest([{edges}]) AS clock)
        ),
        changes AS (
            SELECT edge_at, band FROM edges
            QUALIFY band IS DISTINCT FROM lag(band) OVER (ORDER BY edge_at)
        )
        SELECT CASE WHEN row_number() OVER (ORDER BY edge_at) = 1 THEN -{FAR}
                    ELSE edge_at END
                   AS seg_from,
               lead(edge_at, 1, {FAR}) OVER (ORDER BY edge_at) AS seg_to,
               band
        FROM changes""")


def rating_query(spec: Spec, usage: str, keep_usage: bool) -> str:
    """SELECT rating ``usage`` (a table or a table function); with ``keep_usage`` the
    usage columns come first (as in ratecycle's rated Parquet), else only the rated ones."""
    f, unit = spec.first_block, spec.voice_unit
    lengths = range(7, 0, -1)  # generate.py's deck: 1-7 digits (checked below)
    joins = "\n".join(
        f"LEFT JOIN (SELECT prefix FROM prefixes WHERE len = {n}) p{n} "
        f"ON p{n}.prefix = left(v.dest, {n})" for n in lengths)
    flat_billed = " ".join(
        f"WHEN '{s}' THEN CASE WHEN quantity > 0 THEN "
        f"(quantity + {c.increment - 1}) // {c.increment} * {c.increment} ELSE 0 END"
        for s, c in spec.flats.items())
    flat_amount = " ".join(
        f"WHEN '{s}' THEN CASE WHEN quantity > 0 THEN {c.connect} + "
        f"(2 * {c.rate} * ((quantity + {c.increment - 1}) // {c.increment} * {c.increment})"
        f" + {c.unit}) // {2 * c.unit} ELSE 0 END"
        for s, c in spec.flats.items())
    priced = ", ".join(f"'{s}'" for s in ["voice", *spec.flats])
    usage_cols = ("u.* EXCLUDE (unrated_reason, reason, prefix, billed, amount_n),"
                  if keep_usage else "u.event_id,")
    return f"""
    WITH voice AS (
        SELECT event_id, quantity AS q, epoch_us(started_at) AS t0,
               CASE WHEN starts_with(destination, '+') THEN substr(destination, 2)
                    ELSE destination END AS dest
        FROM {usage}
        WHERE service = 'voice' AND unrated_reason IS NULL
    ),
    matched AS (
        SELECT v.event_id, v.q, v.t0,
               coalesce({', '.join(f'p{n}.prefix' for n in lengths)}) AS prefix
        FROM voice v
        {joins}
    ),
    started AS (  -- the band at the call's start prices the connect fee and first block
        SELECT m.event_id, m.q, m.t0, m.prefix, d.rate_n AS r0, d.connect_n AS c0
        FROM matched m
        ASOF JOIN segments s ON m.t0 >= s.seg_from
        JOIN deck d ON d.prefix = m.prefix AND d.band = s.band
        WHERE m.prefix IS NOT NULL
    ),
    parts AS (  -- seconds F..q-1, each in the band in force when it starts
        SELECT st.event_id,
               (2 * d.rate_n * (least(st.q, (s.seg_to - st.t0 + 999999) // 1000000)
                   - greatest({f}, (s.seg_from - st.t0 + 999999) // 1000000))
                + {unit}) // {2 * unit} AS cost,
               least(st.q, (s.seg_to - st.t0 + 999999) // 1000000)
                   - greatest({f}, (s.seg_from - st.t0 + 999999) // 1000000) AS seconds
        FROM started st
        JOIN segments s ON s.seg_from < st.t0 + st.q * 1000000
                       AND s.seg_to > st.t0 + {f} * 1000000
        JOIN deck d ON d.prefix = st.prefix AND d.band = s.band
        WHERE st.q > {f}
    ),
    per_second AS (
        SELECT event_id, sum(cost) AS cost FROM parts WHERE seconds > 0 GROUP BY event_id
    ),
    voice_rated AS (
        SELECT st.event_id, st.prefix,
               CASE WHEN st.q > 0 THEN greatest(st.q, {f}) ELSE 0 END AS billed,
               CASE WHEN st.q > 0 THEN st.c0 + (2 * st.r0 * {f} + {unit}) // {2 * unit}
                                       + coalesce(ps.cost, 0)
                    ELSE 0 END AS amount_n
        FROM started st LEFT JOIN per_second ps USING (event_id)
    ),
    rated AS (
        SELECT u.*,
               coalesce(u.unrated_reason,
                        CASE WHEN u.service NOT IN ({priced}) THEN '{NO_TARIFF}'
                             WHEN u.service = 'voice' AND vr.event_id IS NULL
                                 THEN '{NO_RATE}' END) AS reason,
               CASE WHEN u.service = 'voice' THEN vr.prefix ELSE '' END AS prefix,
               CASE WHEN u.service = 'voice' THEN vr.billed
                    ELSE CASE u.service {flat_billed} END END AS billed,
               CASE WHEN u.service = 'voice' THEN vr.amount_n
                    ELSE CASE u.service {flat_amount} END END AS amount_n
        FROM {usage} u
        LEFT JOIN voice_rated vr ON u.service = 'voice' AND vr.event_id = u.event_id
    )
    SELECT {usage_cols}
           CASE WHEN u.reason IS NULL THEN '{RATED}' ELSE '{UNRATED}' END AS status,
           u.reason,
           CASE WHEN u.reason IS NULL THEN u.prefix END AS matched_prefix,
           CASE WHEN u.reason IS NULL THEN u.billed ELSE 0 END AS billed_quantity,
           CASE WHEN u.reason IS NULL THEN
               CAST(u.amount_n AS DECIMAL(38,0)) * CAST('0.000000001' AS DECIMAL(18,9))
           END AS amount
    FROM rated u
    """


def _check_prefix_lengths(con: duckdb.DuckDBPyConnection) -> None:
    lo, hi = con.execute("SELECT min(len), max(len) FROM prefixes").fetchone()
    if lo < 1 or hi > 7:
        raise ValueError(f"deck prefixes of {lo}-{hi} digits; the oracle joins 1-7")


def _day_range(con: duckdb.DuckDBPyConnection, usage: str) -> tuple[date, date]:
    """Local days to cover: every call's start and end, with a day to spare each side."""
    lo, hi = con.execute(f"""
        SELECT min(started_at), max(started_at + quantity * INTERVAL 1 SECOND)
        FROM {usage} WHERE service = 'voice'""").fetchone()
    if lo is None:
        return date(2000, 1, 1), date(2000, 1, 2)
    return lo.date() - timedelta(days=2), hi.date() + timedelta(days=2)


def prepare(con: duckdb.DuckDBPyConnection, catalog: str | Path, usage: str) -> Spec:
    spec = read_spec(catalog)
    load_tariff(con, spec, *_day_range(con, usage))
    _check_prefix_lengths(con)
    return spec


def rate_table(con: duckdb.DuckDBPyConnection, catalog: str | Path, usage: str = "usage",
               out: str = "rated", keep_usage: bool = False) -> None:
    """In memory: rate the table ``usage`` into the table ``out``."""
    spec = prepare(con, catalog, usage)
    con.execute(f"CREATE OR REPLACE TABLE {out} AS {rating_query(spec, usage, keep_usage)}")


def parquet_source(files: list[str | Path]) -> str:
    paths = ", ".join(f"'{Path(p)}'" for p in files)
    return f"read_parquet([{paths}], hive_partitioning = false)"


def rate_files(files: list[str | Path], catalog: str | Path, out: str | Path,
               con: duckdb.DuckDBPyConnection | None = None) -> None:
    """End to end: usage Parquet files in, one rated Parquet file out (usage columns and
    the rated columns)."""
    con = con or duckdb.connect()
    source = parquet_source(files)
    spec = prepare(con, catalog, source)
    con.execute(f"COPY ({rating_query(spec, source, keep_usage=True)}) "
                f"TO '{Path(out)}' (FORMAT parquet)")
