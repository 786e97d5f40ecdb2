"""A seeded month of usage and the full benchmark tariff, at any size.

    python -m bench.generate --events 1000000 --out out/bench/1M

writes, under ``--out``:

- ``usage/bucket=NNN/part-0.parquet``: the usage schema of ``ingest/schema.py``, laid out
  as ``ratecycle ingest`` lays it out (bucket = CRC-32 of the subscriber modulo the number
  of buckets, rows sorted by subscriber, start and event id), so ``ratecycle rate OUT``
  reads it as it is. One bucket is generated at a time, so memory stays flat at any size;
  a bucket holds about a million events.
- ``catalog.yaml`` and ``deck.csv``: the full tariff (see ``TARIFF`` below).
- ``accounts.parquet``: one subscription per subscriber (plan, customer, discount held).
- ``manifest.json``: the parameters, the row counts and what each file holds.

Everything is decided by ``--seed``: the same arguments write the same bytes of data.

The tariff, fixed before any tuning:

- a 10,000-prefix deck (country codes and their ranges, 1-7 digits); every prefix has a
  row per band, each a two-slot rate (the first 60 s as one block, then per second) with
  a connect fee;
- three bands in Europe/Berlin: ``peak`` (Mon-Fri 08:00-19:00), ``offpeak`` (always, the
  lowest weight) and ``weekend`` (Sat, Sun); voice calls are split where the band changes;
- SMS per message, data in 1 kB increments (graduated, below);
- a percentage discount held by half of the customers, and an exclusive VAT on every bill;
- two plans: ``standard`` and ``voice300``, held by half of the subscribers each;
  ``voice300`` has a 300-minute voice bundle per billing period (any destination, drawn
  in event order; the connect fee is waived on a call the bundle covers whole);
- data priced by graduated tiers on every plan: the first 200 MB of a billing period at
  0.02 per MB, up to 1,000 MB at 0.0125, beyond at 0.0075 (bounds chosen so that, with
  the generated data volumes, a good share of subscribers reaches the second tier and
  some the third).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from ingest.schema import USAGE_SCHEMA  # the usage contract ratecycle reads

# What one call of the generator decides; everything else follows from these.
DEFAULT_SEED = 20260301
DEFAULT_MONTH = "2026-03"
ZONE = "Europe/Berlin"
CURRENCY = "EUR"
DECK_PREFIXES = 10_000
MAX_PREFIX_DIGITS = 7
EVENTS_PER_SUBSCRIBER = 200  # a month's events of an average subscriber
EVENTS_PER_BUCKET = 1_000_000
MIN_BUCKETS = 8  # what `ratecycle ingest` writes by default
SERVICE_MIX = {"voice": 0.60, "sms": 0.25, "data": 0.15}
UNMATCHED_SHARE = 0.005  # voice calls to numbers no deck prefix covers (unrated no_rate)
MAX_CALL_S = 4 * 3600
HOME = "49"

SMS_RATE = "0.09"
DATA_TIERS = ((200, "0.02"), (1000, "0.0125"), (None, "0.0075"))  # (up to MB, per MB)
DATA_INCREMENTS = "1000/1000"
VOICE_INCREMENTS = "60/1"
BUNDLE_MINUTES = 300  # the voice300 plan's allowance per billing period
VAT = "0.19"
DISCOUNT = "0.10"

# Relative call volume by local hour of day (more in office hours, little at night).
HOURLY = np.array([1, 1, 1, 1, 1, 2, 4, 7, 10, 11, 11, 11, 10, 10, 10, 10, 10, 10, 9, 8, 7,
                   5, 3, 2], dtype=np.float64)


@dataclass(frozen=True)
class Params:
    events: int
    seed: int = DEFAULT_SEED
    month: str = DEFAULT_MONTH
    buckets: int = 0  # 0: one per EVENTS_PER_BUCKET events, at least MIN_BUCKETS

    @property
    def bucket_count(self) -> int:
        return self.buckets or max(MIN_BUCKETS, -(-self.events // EVENTS_PER_BUCKET))

    @property
    def subscribers(self) -> int:
        return max(10, self.events // EVENTS_PER_SUBSCRIBER)


# --- the deck -------------------------------------------------------------------------------

def _country_codes(rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """Country codes shaped like ITU's plan (1: NANP, 7, two- and three-digit codes), and
    two-digit stems that no code starts with: numbers there match no prefix."""
    codes, unallocated = ["1", "7"], []
    for first in "2345689":
        for second in "0123456789":
            stem = first + second
            draw = rng.random()
            if stem == HOME or draw < 0.45:
                codes.append(stem)
            elif draw < 0.92:
                codes += [stem + d for d in "0123456789" if rng.random() < 0.6]
            else:
                unallocated.append(stem)
    return codes, unallocated


def build_deck(seed: int = DEFAULT_SEED) -> pl.DataFrame:
    """The 10,000 prefixes with their names and integer prices (1e-4 EUR per minute and
    connect fees in 1e-4 EUR), one row per prefix; ``deck_csv`` expands the bands."""
    rng = np.random.default_rng([seed, 1])
    codes, _ = _country_codes(rng)
    prefixes = list(dict.fromkeys(codes))
    seen = set(prefixes)
    country = {p: p for p in prefixes}
    # Ranges under the codes: big countries (and home) get more, up to 7 digits.
    weights = np.array([8.0 if c == HOME else (3.0 if len(c) == 1 else 1.0) for c in codes])
    weights /= weights.sum()
    while len(prefixes) < DECK_PREFIXES:
        parent = prefixes[int(rng.integers(len(prefixes)))] if rng.random() < 0.5 else \
            codes[int(rng.choice(len(codes), p=weights))]
        child = parent + str(int(rng.integers(10)))
        if rng.random() < 0.3:
            child += str(int(rng.integers(10)))
        if len(child) <= MAX_PREFIX_DIGITS and child not in seen:
            seen.add(child)
            prefixes.append(child)
            country[child] = country[parent]
    n = len(prefixes)
    # Peak price per minute in 1e-4 EUR: 0.0050 to about 2 EUR, most calls cheap.
    peak = np.clip(np.round(np.exp(rng.normal(np.log(400), 1.0, n))), 50, 20_000).astype(np.int64)
    connect = rng.choice(np.array([100, 150, 200, 500], dtype=np.int64), n)  # 0.01 .. 0.05
    kind = rng.choice(np.array(["fixed", "mobile", "premium"]), n, p=[0.55, 0.4, 0.05])
    return pl.DataFrame({
        "prefix": prefixes,
        "destination": [f"CC{country[p]} {k} {p}" for p, k in zip(prefixes, kind, strict=True)],
        "peak": peak,
        "offpeak": peak * 6 // 10,
        "weekend": peak * 4 // 10,
        "connect": connect,
    })


def _fixed4(units: pl.Expr) -> pl.Expr:
    """Integer units of 1e-4 as decimal text ("0.0123"), without any float."""
    return pl.format("{}.{}", units // 10_000, (units % 10_000).cast(pl.String).str.zfill(4))


BANDS = {  # band -> (column of build_deck with its price, tenths of the connect fee charged)
    "peak": ("peak", 10),
    "offpeak": ("offpeak", 10),
    "weekend": ("weekend", 5),
}


def deck_csv(deck: pl.DataFrame) -> pl.DataFrame:
    """Deck rows as the catalog reads them: one per (prefix, band)."""
    rows = [deck.select(
        "prefix", "destination",
        rate=_fixed4(pl.col(column)),
        band=pl.lit(band),
        connect_fee=_fixed4(pl.col("connect") * tenths // 10),
        increments=pl.lit(VOICE_INCREMENTS),
    ) for band, (column, tenths) in BANDS.items()]
    return pl.concat(rows).sort("prefix", "band")


def catalog_yaml() -> str:
    tiers = ", ".join(
        (f'{{up_to: {up_to}, rate: "{rate}"}}' if up_to else f'{{rate: "{rate}"}}')
        for up_to, rate in DATA_TIERS)
    charges = f"""\
      - {{service: voice, deck: intl, per: minute, increments: {VOICE_INCREMENTS}}}
      - {{service: sms, rate: "{SMS_RATE}", per: message, destination: SMS}}
      - service: data
        per: MB
        increments: {DATA_INCREMENTS}
        destination: data
        tiers: {{model: graduated, tiers: [{tiers}]}}"""
    return f"""\
# The full benchmark tariff of issue 5 (written by bench/generate.py; do not edit by hand).
catalog: 1
name: bench-full
currency: {CURRENCY}
timezone: {ZONE}
rounding: {{profile: native, line: half_up, tax: half_up}}
bands:
  peak: {{weekdays: [mon, tue, wed, thu, fri], from: "08:00", to: "19:00", weight: 10}}
  weekend: {{weekdays: [sat, sun], weight: 10}}
  offpeak: {{}}
decks:
  intl: {{file: deck.csv}}
discounts:
  loyal10: {{kind: percentage, value: "{DISCOUNT}"}}
plans:
  - id: standard
    default: true
    taxes: [{{name: VAT, rate: "{VAT}"}}]
    charges:
{charges}
  - id: voice300
    taxes: [{{name: VAT, rate: "{VAT}"}}]
    bundles:
      - {{name: 300 minutes, service: voice, allowance: {BUNDLE_MINUTES}, per: minute,
         connect_fee: waived}}
    charges:
{charges}
"""


# --- subscribers and usage -----------------------------------------------------------------

def subscriber_ids(params: Params) -> list[str]:
    return [f"s{i:08d}" for i in range(params.subscribers)]


def bucket_of(subscriber: str, buckets: int) -> int:
    """As `ratecycle ingest` buckets: CRC-32 of the id modulo the number of buckets."""
    return zlib.crc32(subscriber.encode()) % buckets


def accounts(params: Params) -> pl.DataFrame:
    """One subscription per subscriber: every other one holds ``voice300``, every other
    customer (by a different draw) the ``loyal10`` discount."""
    rng = np.random.default_rng([params.seed, 2])
    subs = subscriber_ids(params)
    n = len(subs)
    plan = np.where(np.arange(n) % 2 == 1, "voice300", "standard")
    discount = rng.random(n) < 0.5
    return pl.DataFrame({
        "subscriber_id": subs,
        "plan_id": plan,
        "customer_id": subs,
        "discounts": np.where(discount, "loyal10", ""),
    }).with_columns(pl.col("discounts").replace("", None))


def month_bounds(month: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{month}-01")
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt


def ingested_at(params: Params) -> datetime:
    """When the month's usage was ingested: the night after it ended (explicit, fixed)."""
    _, nxt = month_bounds(params.month)
    return datetime.combine(nxt, datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)


class _Destinations:
    """Numbers to call: a deck prefix (home ranges favoured) completed with random digits
    to 11-12 digits, or a number in an unallocated stem."""

    def __init__(self, deck: pl.DataFrame, seed: int) -> None:
        rng = np.random.default_rng([seed, 1])
        _, self.unallocated = _country_codes(rng)
        prefixes = deck["prefix"].to_list()
        self.count = len(prefixes)
        width = 12
        self.bytes = np.full((self.count, width), 48, dtype=np.uint8)
        for i, p in enumerate(prefixes):
            self.bytes[i, : len(p)] = np.frombuffer(p.encode(), dtype=np.uint8)
        self.length = np.array([len(p) for p in prefixes], dtype=np.int64)
        # Popularity: Zipf over a seeded order, home ranges first.
        order = np.random.default_rng([seed, 3]).permutation(self.count)
        home = np.array([p.startswith(HOME) for p in prefixes])
        order = np.concatenate([order[home[order]], order[~home[order]]])
        weight = np.empty(self.count)
        weight[order] = 1.0 / np.arange(1, self.count + 1) ** 0.9
        self.cdf = np.cumsum(weight) / weight.sum()

    def draw(self, rng: np.random.Generator, n: int) -> pl.Series:
        pick = np.minimum(np.searchsorted(self.cdf, rng.random(n)), self.count - 1)
        width = self.bytes.shape[1]
        digits = rng.integers(48, 58, size=(n, width), dtype=np.uint8)
        column = np.arange(width)
        keep = column[None, :] < self.length[pick][:, None]
        digits = np.where(keep, self.bytes[pick], digits)
        unmatched = rng.random(n) < UNMATCHED_SHARE
        if unmatched.any() and self.unallocated:
            stems = np.array([list(s.encode()) for s in self.unallocated], dtype=np.uint8)
            chosen = stems[rng.integers(len(stems), size=int(unmatched.sum()))]
            digits[unmatched, :2] = chosen
        total = rng.integers(11, 13, size=n)
        text = pl.Series(np.ascontiguousarray(digits).view(f"S{width}").ravel()).cast(pl.String)
        return text.str.slice(0, pl.Series(total))


def generate_bucket(params: Params, bucket: int, subs: list[str], counts: np.ndarray,
                    destinations: _Destinations) -> pl.DataFrame:
    """The usage of one bucket's subscribers, sorted as ingest sorts it."""
    rng = np.random.default_rng([params.seed, 100, bucket])
    n = int(counts.sum())
    subscriber = pl.Series("subscriber_id", subs).gather(np.repeat(np.arange(len(subs)), counts))
    service = rng.choice(np.array(list(SERVICE_MIX)), n, p=list(SERVICE_MIX.values()))
    first, nxt = month_bounds(params.month)
    days = (nxt - first).days
    hour = rng.choice(24, n, p=HOURLY / HOURLY.sum())
    local = (rng.integers(0, days, n) * 86_400 + hour * 3600 + rng.integers(0, 3600, n))
    month_start = (first - date(1970, 1, 1)).days * 86_400  # local wall clock, in seconds
    started = pl.Series((month_start + local) * 1_000_000).cast(pl.Datetime("us"))
    started = pl.select(
        pl.coalesce(
            started.dt.replace_time_zone(ZONE, ambiguous="earliest", non_existent="null"),
            # the hour skipped when summer time starts: an hour later on the wall clock
            (started + timedelta(hours=1)).dt.replace_time_zone(ZONE, ambiguous="earliest",
                                                                non_existent="null"),
        ).dt.convert_time_zone("UTC")).to_series()
    voice_s = np.clip(np.round(np.exp(rng.normal(np.log(75), 1.1, n))), 1, MAX_CALL_S)
    data_b = np.clip(np.round(np.exp(rng.normal(np.log(2e6), 1.5, n))), 1, 2e9)
    quantity = np.where(service == "voice", voice_s,
                        np.where(service == "sms", 1, data_b)).astype(np.int64)
    numbers = destinations.draw(rng, n)
    apn = pl.Series(rng.choice(np.array(["internet", "ims", "mms"]), n, p=[0.9, 0.07, 0.03]))
    service_s = pl.Series(service)
    destination = pl.select(pl.when(service_s == "data").then(apn).otherwise(numbers)).to_series()
    frame = pl.DataFrame({
        "subscriber_id": subscriber,
        "service": service_s,
        "started_at": started,
        "quantity": quantity,
        "destination": destination,
    }).with_columns(
        origin=pl.lit("49151") + pl.col("subscriber_id").str.slice(1),
    ).sort("subscriber_id", "started_at")
    stamp = ingested_at(params)
    frame = frame.with_row_index("source_row", offset=1).with_columns(
        event_id=pl.format("e{}-{}", pl.lit(f"{bucket:04d}"),
                           pl.col("source_row").cast(pl.String).str.zfill(10)),
        tenant=pl.lit(None, pl.String),
        category=pl.lit(None, pl.String),
        source_format=pl.lit("parquet"),
        source_file=pl.lit(f"bench-{params.month}-{bucket:04d}.parquet"),
        source_row=pl.col("source_row").cast(pl.Int64),
        ingested_at=pl.lit(stamp, pl.Datetime("us", "UTC")),
        unrated_reason=pl.lit(None, pl.String),
    )
    return frame.select([pl.col(c).cast(t) for c, t in USAGE_SCHEMA.items()])


def event_counts(params: Params) -> np.ndarray:
    """Events per subscriber: a lognormal activity per subscriber, N drawn among them."""
    rng = np.random.default_rng([params.seed, 4])
    activity = np.exp(rng.normal(0.0, 1.0, params.subscribers))
    return rng.multinomial(params.events, activity / activity.sum())


def generate(params: Params, out: str | Path, progress=None) -> dict:
    """Write the month under ``out`` (see the module docstring); returns the manifest."""
    out = Path(out)
    (out / "usage").mkdir(parents=True, exist_ok=True)
    deck = build_deck(params.seed)
    deck_csv(deck).write_csv(out / "deck.csv")
    (out / "catalog.yaml").write_text(catalog_yaml())
    accounts(params).write_parquet(out / "accounts.parquet")
    subs = subscriber_ids(params)
    counts = event_counts(params)
    buckets = np.array([bucket_of(s, params.bucket_count) for s in subs])
    destinations = _Destinations(deck, params.seed)
    rows = {}
    for b in range(params.bucket_count):
        members = np.flatnonzero(buckets == b)
        frame = generate_bucket(params, b, [subs[i] for i in members], counts[members],
                                destinations)
        folder = out / "usage" / f"bucket={b:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".part-0.parquet.tmp"
        frame.write_parquet(tmp)
        tmp.replace(folder / "part-0.parquet")
        rows[b] = len(frame)
        if progress:
            progress(f"bucket {b:03d}: {len(frame):,} events")
        del frame
    manifest = {
        "params": asdict(params),
        "buckets": params.bucket_count,
        "subscribers": params.subscribers,
        "events": int(sum(rows.values())),
        "rows_per_bucket": rows,
        "deck_prefixes": len(deck),
        "zone": ZONE,
        "files": {"usage": "usage/bucket=NNN/part-0.parquet", "catalog": "catalog.yaml",
                  "deck": "deck.csv", "accounts": "accounts.parquet"},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def usage_files(folder: str | Path) -> list[Path]:
    return sorted(Path(folder).glob("usage/bucket=*/part-0.parquet"))


def is_generated(folder: str | Path, params: Params) -> bool:
    """Does ``folder`` hold exactly this month already (same parameters, the current
    tariff, every file)?"""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    try:
        same_tariff = (folder / "catalog.yaml").read_text() == catalog_yaml()
    except OSError:
        return False
    return (manifest.get("params") == asdict(params) and same_tariff
            and len(usage_files(folder)) == params.bucket_count
            and all((folder / f).is_file() for f in ("deck.csv", "accounts.parquet")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate",
        description="Write a seeded month of usage (Parquet, bucketed by subscriber as "
                    "`ratecycle ingest` writes it) and the full benchmark tariff (catalog "
                    "YAML, 10,000-prefix deck CSV, accounts).")
    parser.add_argument("--events", type=int, required=True,
                        help="number of events, e.g. 1000000 (any size; one bucket is "
                             "generated at a time)")
    parser.add_argument("--out", required=True, help="folder to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--month", default=DEFAULT_MONTH, help="YYYY-MM (default %(default)s)")
    parser.add_argument("--buckets", type=int, default=0,
                        help=f"subscriber buckets (default: one per {EVENTS_PER_BUCKET:,} "
                             f"events, at least {MIN_BUCKETS})")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    params = Params(args.events, args.seed, args.month, args.buckets)
    manifest = generate(params, args.out,
                        progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"{manifest['events']:,} events, {manifest['subscribers']:,} subscribers, "
          f"{manifest['buckets']} buckets, {manifest['deck_prefixes']:,} prefixes -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
