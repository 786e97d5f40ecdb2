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
- Bundles: what a call finds left is the allowance less a window sum of the billed
  seconds of the subscriber's earlier calls in the billing period (ordered by start, then
  event id); the call is covered from its start and each part pays for its seconds past
  the covered ones.
- Graduated tiers: the same window sum gives each event's ``before``; its cost is
  G(before + q) - G(before), G computed in HUGEINT as the sum over tiers of rate times
  the units inside the tier, divided by the unit and rounded half up once.
- Spans: a call's first block (slot 0, in the band at its start) and its parts (slot 1,
  one per band segment it crosses), each with its billed seconds and cost, gathered into
  a list per call in offset order: ``list_sort`` of (offset, span) pairs, since DuckDB's
  ordered aggregate ``list(... ORDER BY offset)``, which says the same, took 3.6 s
  against 1.0 s for 1.2M parts, and a baseline should be fair. A flat event is
  one span of the band ``all``; a rated event with nothing billed has an empty list, an
  unrated one null. A call's amount is its connect fee (unless waived) plus its spans.
- The other rated columns are what the catalog and the accounts say (tariff
  ``plan/service``, deck, rate and connect fee at the start, rate unit, increments,
  currency, customer) and the billing period's bounds, as UTC instants and local dates.

It writes every rated column of ratecycle's rated usage (``oracle_spec.OUTPUT_SCHEMA``),
with a run id of its own (a digest of the catalog, deck and accounts).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb

from .oracle_spec import (
    FLAT_BAND,
    NO_RATE,
    NO_SUBSCRIPTION,
    NO_TARIFF,
    RATED,
    UNRATED,
    Flat,
    Spec,
    read_accounts,
    read_spec,
    run_id,
)

FAR = 2**62  # beyond any instant in µs; segment bounds never overflow BIGINT arithmetic


def _nanos_sql(column: str) -> str:
    return f"CAST(CAST({column} AS DECIMAL(38,9)) * 1000000000 AS BIGINT)"


def load_tariff(con: duckdb.DuckDBPyConnection, spec: Spec, first_day: date,
                last_day: date) -> None:
    """Tables ``deck`` (prefix, band, destination, rate_n, connect_n), ``prefixes`` and ``segments``
    (seg_from, seg_to in µs, band) covering the local days [first_day, last_day]."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE deck AS
        SELECT prefix, band, destination, {_nanos_sql('rate')} AS rate_n,
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


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _half_up(numerator: str, denominator: int) -> str:
    """numerator / denominator rounded half up, for numerator >= 0."""
    return f"((2 * ({numerator}) + {denominator}) // {2 * denominator})"


def _graduated(c: Flat, x: str) -> str:
    """G(x) in nanos: the tiers' exact price of the first x units, rounded half up once."""
    terms, low = [], 0
    for up_to, rate in c.tiers:
        inside = f"greatest(CAST({x} AS HUGEINT) - {low}, 0)"
        if up_to is not None:
            inside = f"least({inside}, {up_to - low})"
        terms.append(f"{rate} * {inside}")
        if up_to is None:
            break
        low = up_to
    return f"CAST({_half_up(' + '.join(terms), c.unit)} AS BIGINT)"


def _tier(c: Flat, x: str) -> str:
    bounds = " ".join(f"WHEN {x} <= {up_to} THEN {k + 1}"
                      for k, (up_to, _) in enumerate(c.tiers) if up_to is not None)
    return f"CASE WHEN {x} = 0 THEN 0 {bounds} ELSE {len(c.tiers)} END"


NANO = "CAST('0.000000001' AS DECIMAL(18,9))"
SPAN_TYPE = ("STRUCT(band VARCHAR, slot INTEGER, version TIMESTAMPTZ, billed_quantity BIGINT, "
             "cost DECIMAL(38,9))[]")
DRAW_TYPE = "STRUCT(bundle VARCHAR, quantity BIGINT)[]"
# the rating's own columns of the CTE ``rated``, left out of ``u.*`` with keep_usage
WORK_COLUMNS = ("unrated_reason", "reason", "plan", "prefix", "dest_name", "billed", "covered",
                "tier_n", "amount_n", "rate_n", "connect_n", "customer", "period",
                "period_end_at")


def _money(nanos: str) -> str:
    """Integer nanos as DECIMAL(38,9), exactly."""
    return f"CAST({nanos} AS DECIMAL(38,0)) * {NANO}"


def rating_query(spec: Spec, usage: str, keep_usage: bool, run_id: str) -> str:
    """SELECT rating ``usage`` (a table or a table function) for the subscribers of the
    table ``held`` (subscriber_id, plan_id, customer_id); with ``keep_usage`` the usage
    columns come first (as in ratecycle's rated Parquet), else only event_id and the rated
    ones."""
    f, unit = spec.first_block, spec.voice_unit
    lengths = range(7, 0, -1)  # generate.py's deck: 1-7 digits (checked below)
    joins = "\n".join(
        f"LEFT JOIN (SELECT prefix FROM prefixes WHERE len = {n}) p{n} "
        f"ON p{n}.prefix = left(v.dest, {n})" for n in lengths)

    def by_service(values: dict[str, str], otherwise: str = "NULL") -> str:
        whens = " ".join(f"WHEN {_quote(s)} THEN {v}" for s, v in values.items())
        return f"CASE u.service {whens} ELSE {otherwise} END" if whens else otherwise

    flats = spec.flats.items()
    flat_billed = by_service({
        s: f"CASE WHEN quantity > 0 THEN (quantity + {c.increment - 1}) // {c.increment}"
           f" * {c.increment} ELSE 0 END" for s, c in flats})
    flat_name = by_service({s: _quote(c.destination) for s, c in flats})
    flat_rate = by_service({s: str(c.rate) for s, c in flats})
    flat_connect = by_service({s: str(c.connect) for s, c in flats})
    rate_unit = by_service({"voice": _quote(spec.voice_per),
                            **{s: _quote(c.per) for s, c in flats}})
    increments = by_service({"voice": _quote(spec.voice_increments),
                             **{s: _quote(f"{c.increment}/{c.increment}") for s, c in flats}})
    allowance = " ".join(f"WHEN {_quote(p)} THEN {b.allowance}"
                         for p, b in spec.bundles.items())
    bundle_name = " ".join(f"WHEN {_quote(p)} THEN {_quote(b.name)}"
                           for p, b in spec.bundles.items())
    waives = ", ".join(_quote(p) for p, b in spec.bundles.items() if b.waive_connect)
    tiered = [(s, c) for s, c in flats if c.tiers]
    tiered_sql = " UNION ALL ".join(f"""
        SELECT event_id, before, q,
               {_graduated(c, 'before + q')} - {_graduated(c, 'before')} AS cost_n,
               {_tier(c, 'before + q')} AS tier
        FROM (SELECT event_id, q,
                     coalesce(sum(q) OVER (PARTITION BY subscriber_id, period, plan_id
                                           ORDER BY started_at, event_id
                                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                              0) AS before
              FROM (SELECT *, CASE WHEN quantity > 0 THEN (quantity + {c.increment - 1})
                                   // {c.increment} * {c.increment} ELSE 0 END AS q
                    FROM periods WHERE service = {_quote(s)} AND unrated_reason IS NULL
                                AND plan_id IS NOT NULL))""" for s, c in tiered) or \
        "SELECT NULL::VARCHAR AS event_id, 0 AS before, 0 AS q, 0 AS cost_n, 0 AS tier"
    # a flat event's cost: tiered by what the period used before it, else rate x billed
    flat_cost = by_service({s: f"(2 * {c.rate} * billed + {c.unit}) // {2 * c.unit}"
                            for s, c in flats if not c.tiers}, otherwise="t.cost_n")
    priced = ", ".join(f"'{s}'" for s in ["voice", *spec.flats])
    default = "NULL" if spec.default_plan is None else _quote(spec.default_plan)
    zone = _quote(spec.zone)
    usage_cols = (f"u.* EXCLUDE ({', '.join(WORK_COLUMNS)}),"
                  if keep_usage else "u.event_id,")
    return f"""
    WITH base AS (
        SELECT u.event_id, u.subscriber_id, u.service, u.started_at, u.quantity,
               u.destination, u.unrated_reason, coalesce(h.plan_id, {default}) AS plan_id,
               coalesce(h.customer_id, u.subscriber_id) AS customer_id,
               date_trunc('month', timezone({zone}, u.started_at)) AS local_month
        FROM {usage} u LEFT JOIN held h ON h.subscriber_id = u.subscriber_id
    ),
    periods AS (  -- the billing period: the calendar month of the start in the zone
        SELECT *, timezone({zone}, local_month) AS period,
               timezone({zone}, local_month + INTERVAL 1 MONTH) AS period_end_at
        FROM base
    ),
    voice AS (
        SELECT event_id, subscriber_id, period, plan_id, quantity AS q,
               epoch_us(started_at) AS t0,
               CASE WHEN starts_with(destination, '+') THEN substr(destination, 2)
                    ELSE destination END AS dest
        FROM periods
        WHERE service = 'voice' AND unrated_reason IS NULL AND plan_id IS NOT NULL
    ),
    matched AS (
        SELECT v.*, coalesce({', '.join(f'p{n}.prefix' for n in lengths)}) AS prefix
        FROM voice v
        {joins}
    ),
    started AS (  -- the band at the call's start prices the connect fee and first block
        SELECT m.event_id, m.subscriber_id, m.period, m.plan_id, m.q, m.t0, m.prefix,
               s.band AS band0, d.destination AS dest_name, d.rate_n AS r0,
               d.connect_n AS c0,
               CASE WHEN m.q > 0 THEN greatest(m.q, {f}) ELSE 0 END AS billed,
               CASE m.plan_id {allowance or 'WHEN NULL THEN 0'} ELSE 0 END AS allowance
        FROM matched m
        ASOF JOIN segments s ON m.t0 >= s.seg_from
        JOIN deck d ON d.prefix = m.prefix AND d.band = s.band
        WHERE m.prefix IS NOT NULL
    ),
    drawn AS (  -- the bundle: what the subscriber's earlier calls of the period left
        SELECT *,
               CAST(least(billed, greatest(0, allowance - coalesce(sum(billed) OVER (
                   PARTITION BY subscriber_id, period, plan_id ORDER BY t0, event_id
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))) AS BIGINT)
                   AS covered
        FROM started
    ),
    parts AS (  -- seconds F..q-1, each in the band in force when it starts
        SELECT st.event_id, s.band, d.rate_n, st.covered,
               least(st.q, (s.seg_to - st.t0 + 999999) // 1000000) AS part_end,
               greatest({f}, (s.seg_from - st.t0 + 999999) // 1000000) AS part_begin
        FROM drawn st
        JOIN segments s ON s.seg_from < st.t0 + st.q * 1000000
                       AND s.seg_to > st.t0 + {f} * 1000000
        JOIN deck d ON d.prefix = st.prefix AND d.band = s.band
        WHERE st.q > {f}
    ),
    voice_spans AS (  -- (offset, band, slot, billed seconds, cost) of each part of a call
        SELECT event_id, 0 AS offset_s, band0 AS band, 0 AS slot, {f} AS billed,
               {_half_up(f"r0 * greatest(0, {f} - covered)", unit)} AS cost_n
        FROM drawn WHERE q > 0
        UNION ALL  -- each part pays for its seconds past the covered ones
        SELECT event_id, part_begin, band, 1, part_end - part_begin,
               {_half_up("rate_n * greatest(0, part_end - greatest(part_begin, covered))",
                         unit)}
        FROM parts WHERE part_end > part_begin
    ),
    voice_rated AS (
        SELECT st.event_id, st.prefix, st.dest_name, st.billed, st.covered, st.r0, st.c0,
               CASE WHEN st.q > 0 THEN
                   CASE WHEN st.plan_id IN ({waives or 'NULL'}) AND st.covered > 0
                             AND st.covered = st.billed THEN 0 ELSE st.c0 END
                   + vs.cost_n
                    ELSE 0 END AS amount_n
        FROM drawn st
        LEFT JOIN (SELECT event_id, sum(cost_n) AS cost_n FROM voice_spans GROUP BY event_id)
            vs USING (event_id)
    ),
    tiered AS ({tiered_sql}),
    flat_rated AS (
        SELECT u.event_id, u.billed, t.tier AS tier_n,
               CASE WHEN u.billed > 0 THEN {flat_cost} ELSE 0 END AS cost_n
        FROM (SELECT event_id, service, {flat_billed} AS billed FROM periods u
              WHERE service <> 'voice' AND unrated_reason IS NULL AND plan_id IS NOT NULL) u
        LEFT JOIN tiered t USING (event_id)
    ),
    rated AS (
        SELECT u.*, b.plan_id AS plan, b.customer_id AS customer, b.period, b.period_end_at,
               coalesce(u.unrated_reason,
                        CASE WHEN b.plan_id IS NULL THEN '{NO_SUBSCRIPTION}'
                             WHEN u.service NOT IN ({priced}) THEN '{NO_TARIFF}'
                             WHEN u.service = 'voice' AND vr.event_id IS NULL
                                 THEN '{NO_RATE}' END) AS reason,
               CASE WHEN u.service = 'voice' THEN vr.prefix ELSE '' END AS prefix,
               CASE WHEN u.service = 'voice' THEN vr.dest_name ELSE {flat_name} END
                   AS dest_name,
               CASE WHEN u.service = 'voice' THEN vr.billed ELSE fr.billed END AS billed,
               CASE WHEN u.service = 'voice' THEN vr.covered ELSE 0 END AS covered,
               fr.tier_n,
               CASE WHEN u.service = 'voice' THEN vr.amount_n
                    WHEN fr.billed > 0 THEN {flat_connect} + fr.cost_n ELSE 0 END AS amount_n,
               CASE WHEN u.service = 'voice' THEN vr.r0 ELSE {flat_rate} END AS rate_n,
               CASE WHEN u.service = 'voice' THEN vr.c0 ELSE {flat_connect} END AS connect_n
        FROM {usage} u
        JOIN (SELECT event_id AS base_id, plan_id, customer_id, period, period_end_at
              FROM periods) b
            ON b.base_id = u.event_id
        LEFT JOIN voice_rated vr ON u.service = 'voice' AND vr.event_id = u.event_id
        LEFT JOIN flat_rated fr ON u.service <> 'voice' AND fr.event_id = u.event_id
    ),
    span_rows AS (  -- a voice call's parts; a flat event in one part of the band 'all'
        SELECT * FROM voice_spans
        UNION ALL
        SELECT fr.event_id, 0, '{FLAT_BAND}', 0, fr.billed, fr.cost_n
        FROM flat_rated fr WHERE fr.billed > 0
    ),
    spans AS (  -- each part keyed by its offset, the list sorted on it, the key dropped
        SELECT event_id,
               list_transform(list_sort(list({{
                   'offset_s': offset_s,
                   'span': {{'band': band, 'slot': CAST(slot AS INTEGER),
                            'version': CAST(NULL AS TIMESTAMPTZ),
                            'billed_quantity': CAST(billed AS BIGINT),
                            'cost': {_money('cost_n')}}}}})), lambda part: part.span) AS spans
        FROM span_rows GROUP BY event_id
    )
    SELECT {usage_cols}
           CASE WHEN u.reason IS NULL THEN '{RATED}' ELSE '{UNRATED}' END AS status,
           u.reason,
           CASE WHEN u.reason IS NULL THEN u.plan END AS plan_id,
           CASE WHEN u.reason IS NULL THEN u.plan || '/' || u.service END AS tariff,
           CASE WHEN u.reason IS NULL AND u.service = 'voice'
                THEN {_quote(spec.deck_name)} END AS deck,
           CASE WHEN u.reason IS NULL THEN u.prefix END AS matched_prefix,
           CASE WHEN u.reason IS NULL THEN u.dest_name END AS destination_name,
           CAST(NULL AS VARCHAR) AS rate_id,
           CASE WHEN u.reason IS NULL THEN {_money('u.rate_n')} END AS rate,
           CASE WHEN u.reason IS NULL THEN {rate_unit} END AS rate_unit,
           CASE WHEN u.reason IS NULL THEN {_money('u.connect_n')} END AS connect_fee,
           CASE WHEN u.reason IS NULL THEN {increments} END AS increments,
           CASE WHEN u.reason IS NULL THEN u.billed ELSE 0 END AS billed_quantity,
           CASE WHEN u.reason IS NULL THEN u.covered ELSE 0 END AS bundle_quantity,
           CASE WHEN u.reason IS NULL AND u.covered > 0
                THEN [{{'bundle': CASE u.plan {bundle_name or 'WHEN NULL THEN NULL'} END,
                        'quantity': u.covered}}]
                ELSE CAST([] AS {DRAW_TYPE}) END AS bundles,
           CAST(CASE WHEN u.reason IS NULL THEN u.tier_n END AS INTEGER) AS tier,
           CASE WHEN u.reason IS NULL THEN {_money('u.amount_n')} END AS amount,
           CAST(NULL AS VARCHAR) AS flags,
           {_quote(spec.currency)} AS currency,
           u.customer AS customer_id,
           u.period AS period_start,
           u.period_end_at AS period_end,
           CAST(timezone({zone}, u.period) AS DATE) AS cycle_start,
           CAST(timezone({zone}, u.period_end_at) AS DATE) AS cycle_end,
           false AS late,  -- no collection window: no period closes before its usage
           u.period AS usage_period_start,
           CASE WHEN u.reason IS NULL THEN coalesce(sp.spans, CAST([] AS {SPAN_TYPE})) END
               AS spans,
           {_quote(run_id)} AS run_id
    FROM rated u LEFT JOIN spans sp ON sp.event_id = u.event_id
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


def prepare(con: duckdb.DuckDBPyConnection, catalog: str | Path, usage: str,
            accounts: str | Path | None = None) -> Spec:
    """The tariff's tables and ``held`` (subscriber_id, plan_id, customer_id) from the
    accounts."""
    spec = read_spec(catalog)
    con.execute("SET TimeZone = 'UTC'")  # instants come out as UTC, as ratecycle writes them
    held = read_accounts(accounts).select("subscriber_id", "plan_id", "customer_id")
    con.register("held_frame", held.to_arrow())
    con.execute("CREATE OR REPLACE TEMP TABLE held AS SELECT * FROM held_frame")
    con.unregister("held_frame")
    load_tariff(con, spec, *_day_range(con, usage))
    _check_prefix_lengths(con)
    return spec


def rate_table(con: duckdb.DuckDBPyConnection, catalog: str | Path, usage: str = "usage",
               out: str = "rated", keep_usage: bool = False,
               accounts: str | Path | None = None) -> None:
    """In memory: rate the table ``usage`` into the table ``out``."""
    spec = prepare(con, catalog, usage, accounts)
    run = run_id("duckdb-oracle", spec, catalog, accounts)
    con.execute(f"CREATE OR REPLACE TABLE {out} AS "
                f"{rating_query(spec, usage, keep_usage, run)}")


def parquet_source(files: list[str | Path]) -> str:
    paths = ", ".join(f"'{Path(p)}'" for p in files)
    return f"read_parquet([{paths}], hive_partitioning = false)"


def rate_files(files: list[str | Path], catalog: str | Path, out: str | Path,
               con: duckdb.DuckDBPyConnection | None = None,
               accounts: str | Path | None = None) -> None:
    """End to end: usage Parquet files in, one rated Parquet file out (usage columns and
    the rated columns)."""
    con = con or duckdb.connect()
    source = parquet_source(files)
    spec = prepare(con, catalog, source, accounts)
    run = run_id("duckdb-oracle", spec, catalog, accounts)
    con.execute(f"COPY ({rating_query(spec, source, keep_usage=True, run_id=run)}) "
                f"TO '{Path(out)}' (FORMAT parquet)")
