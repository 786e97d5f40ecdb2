"""A deterministic, realistic month of telecom usage with a sample catalog (`ratecycle demo`).

Subscribers of a mobile operator live mostly in Germany, some in the UK. Each makes calls,
sends texts and opens data sessions with a diurnal and weekly rhythm in their own time
zone; a few heavy users make much of the traffic. Called numbers are national fixed,
national mobile or international, drawn from the same prefix table the demo deck prices,
plus a small share of satellite numbers the deck does not price (they end as `no_rate`).
Everything is drawn from one seeded numpy Generator, so the same arguments give the same
bytes.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from ingest.schema import UTC_INSTANT

# Dialable ranges: prefix, deck destination, retail EUR per minute (None: not in the deck),
# kind, relative share of international traffic, and the full length of a number in
# international digits. Country codes and mobile ranges are the published ITU / national
# numbering plan ones; "other" marks a country priced with one rate for fixed and mobile.
RANGES: tuple[tuple[str, str, str | None, str, float, int], ...] = (
    ("49", "Germany fixed", "0.0290", "fixed", 8.0, 12),
    ("4915", "Germany mobile", "0.0390", "mobile", 4.0, 13),
    ("4916", "Germany mobile", "0.0390", "mobile", 2.0, 12),
    ("4917", "Germany mobile", "0.0390", "mobile", 4.0, 12),
    ("49900", "Germany premium", "1.9900", "premium", 1.0, 12),
    ("44", "United Kingdom fixed", "0.0990", "fixed", 3.0, 12),
    ("447", "United Kingdom mobile", "0.1490", "mobile", 4.0, 12),
    ("4470", "United Kingdom personal numbers", "0.4900", "other", 0.1, 12),
    ("449", "United Kingdom premium", "1.4900", "premium", 1.0, 12),
    ("33", "France fixed", "0.0990", "fixed", 3.0, 11),
    ("336", "France mobile", "0.1490", "mobile", 3.0, 11),
    ("337", "France mobile", "0.1490", "mobile", 1.0, 11),
    ("39", "Italy fixed", "0.0990", "fixed", 2.0, 12),
    ("393", "Italy mobile", "0.1790", "mobile", 3.0, 12),
    ("34", "Spain fixed", "0.0990", "fixed", 2.0, 11),
    ("346", "Spain mobile", "0.1490", "mobile", 2.5, 11),
    ("347", "Spain mobile", "0.1490", "mobile", 0.5, 11),
    ("31", "Netherlands fixed", "0.0990", "fixed", 1.0, 11),
    ("316", "Netherlands mobile", "0.1490", "mobile", 1.5, 11),
    ("32", "Belgium fixed", "0.0990", "fixed", 0.7, 10),
    ("324", "Belgium mobile", "0.1790", "mobile", 0.8, 11),
    ("43", "Austria fixed", "0.0990", "fixed", 1.5, 12),
    ("436", "Austria mobile", "0.1490", "mobile", 2.0, 13),
    ("41", "Switzerland fixed", "0.1290", "fixed", 1.0, 11),
    ("417", "Switzerland mobile", "0.2490", "mobile", 1.5, 11),
    ("30", "Greece fixed", "0.0990", "fixed", 0.7, 12),
    ("306", "Greece mobile", "0.1790", "mobile", 1.0, 12),
    ("40", "Romania fixed", "0.0990", "fixed", 1.0, 11),
    ("407", "Romania mobile", "0.1490", "mobile", 2.0, 11),
    ("351", "Portugal fixed", "0.0990", "fixed", 0.5, 12),
    ("3519", "Portugal mobile", "0.1490", "mobile", 0.7, 12),
    ("353", "Ireland fixed", "0.0990", "fixed", 0.5, 12),
    ("3538", "Ireland mobile", "0.1490", "mobile", 0.7, 12),
    ("46", "Sweden fixed", "0.0990", "fixed", 0.5, 11),
    ("467", "Sweden mobile", "0.1490", "mobile", 0.5, 11),
    ("45", "Denmark", "0.1290", "other", 0.5, 10),
    ("47", "Norway", "0.1290", "other", 0.4, 10),
    ("48", "Poland", "0.1290", "other", 4.0, 11),
    ("420", "Czech Republic", "0.1290", "other", 0.8, 12),
    ("36", "Hungary", "0.1290", "other", 0.8, 11),
    ("385", "Croatia", "0.1490", "other", 1.0, 12),
    ("381", "Serbia", "0.2490", "other", 1.0, 12),
    ("387", "Bosnia and Herzegovina", "0.2990", "other", 0.8, 11),
    ("380", "Ukraine", "0.2490", "other", 1.5, 12),
    ("7", "Russia fixed", "0.1990", "fixed", 0.7, 11),
    ("79", "Russia mobile", "0.2490", "mobile", 1.2, 11),
    ("76", "Kazakhstan", "0.2990", "other", 0.1, 11),
    ("77", "Kazakhstan", "0.2990", "other", 0.2, 11),
    ("90", "Turkey fixed", "0.1490", "fixed", 2.0, 12),
    ("905", "Turkey mobile", "0.1990", "mobile", 4.0, 12),
    ("1", "USA and Canada", "0.0490", "other", 3.0, 11),
    ("91", "India", "0.1990", "other", 1.5, 12),
    ("86", "China fixed", "0.0990", "fixed", 0.5, 13),
    ("861", "China mobile", "0.0990", "mobile", 1.0, 13),
    ("81", "Japan fixed", "0.1490", "fixed", 0.3, 12),
    ("8170", "Japan mobile", "0.2490", "mobile", 0.1, 12),
    ("8180", "Japan mobile", "0.2490", "mobile", 0.2, 12),
    ("8190", "Japan mobile", "0.2490", "mobile", 0.2, 12),
    ("82", "South Korea", "0.1490", "other", 0.3, 12),
    ("84", "Vietnam", "0.2490", "other", 1.0, 11),
    ("66", "Thailand", "0.1990", "other", 0.5, 11),
    ("63", "Philippines", "0.3490", "other", 0.5, 12),
    ("62", "Indonesia", "0.2490", "other", 0.3, 12),
    ("92", "Pakistan", "0.2990", "other", 0.8, 12),
    ("880", "Bangladesh", "0.2990", "other", 0.3, 13),
    ("93", "Afghanistan", "0.5990", "other", 0.5, 11),
    ("98", "Iran", "0.3990", "other", 0.5, 12),
    ("964", "Iraq", "0.3990", "other", 0.5, 13),
    ("963", "Syria", "0.4990", "other", 1.0, 12),
    ("972", "Israel", "0.1490", "other", 0.3, 12),
    ("971", "United Arab Emirates", "0.3490", "other", 0.3, 12),
    ("966", "Saudi Arabia", "0.3490", "other", 0.3, 12),
    ("20", "Egypt", "0.3490", "other", 0.5, 12),
    ("212", "Morocco", "0.3990", "other", 0.8, 12),
    ("216", "Tunisia", "0.4490", "other", 0.3, 11),
    ("234", "Nigeria", "0.3490", "other", 0.8, 13),
    ("233", "Ghana", "0.4990", "other", 0.3, 12),
    ("254", "Kenya", "0.3490", "other", 0.2, 12),
    ("27", "South Africa", "0.1990", "other", 0.3, 11),
    ("55", "Brazil", "0.1490", "other", 0.5, 13),
    ("52", "Mexico", "0.1490", "other", 0.3, 12),
    ("54", "Argentina", "0.1990", "other", 0.2, 12),
    ("57", "Colombia", "0.1990", "other", 0.2, 12),
    ("53", "Cuba", "0.9900", "other", 0.1, 10),
    ("61", "Australia fixed", "0.1490", "fixed", 0.3, 11),
    ("614", "Australia mobile", "0.2490", "mobile", 0.3, 11),
    ("64", "New Zealand", "0.1990", "other", 0.1, 11),
    ("65", "Singapore", "0.1490", "other", 0.1, 10),
    ("852", "Hong Kong", "0.1490", "other", 0.2, 11),
    ("886", "Taiwan", "0.1990", "other", 0.1, 12),
    # Satellite networks (ITU 870 Inmarsat, 8816 Iridium): dialled now and then, not priced
    # by the demo deck, so rating reports them as `no_rate`.
    ("870", "Inmarsat", None, "unpriced", 1.0, 12),
    ("8816", "Iridium", None, "unpriced", 1.0, 12),
)

# Home countries: calling code, share of subscribers, time zone, own mobile ranges.
HOMES = (
    ("49", 0.85, "Europe/Berlin", ("4915", "4916", "4917")),
    ("44", 0.15, "Europe/London", ("447",)),
)
SERVICES = ("voice", "sms", "data")
SERVICE_MIX = (0.60, 0.30, 0.10)
# Destination categories and their share per service (voice, sms); data goes to an APN.
CATEGORIES = ("fixed", "mobile", "premium", "international", "unpriced")
CATEGORY_MIX = {
    "voice": (0.500, 0.350, 0.003, 0.142, 0.005),
    "sms": (0.000, 0.900, 0.000, 0.095, 0.005),
}
APNS = (("internet", 0.97), ("mms", 0.03))
# Local hour-of-day profile (morning and evening peaks, quiet nights) and Mon..Sun weights.
HOUR_PROFILE = (0.9, 0.5, 0.3, 0.2, 0.2, 0.4, 1.2, 3.0, 5.0, 6.5, 7.0, 6.8,
                6.0, 6.2, 6.5, 6.8, 7.0, 7.5, 8.0, 7.8, 6.5, 5.0, 3.5, 2.0)
WEEKDAY_PROFILE = (1.0, 1.0, 1.0, 1.0, 1.05, 0.7, 0.55)
# Civil time spans UTC-12 to UTC+14: events this far from the month's UTC edges fall in the
# month in every zone.
EDGE_MARGIN = timedelta(hours=14)

PLANS = (("basic", 0.6), ("smart", 0.3), ("business", 0.1))
BUSINESS_DISCOUNT = Decimal("0.80")  # the business deck is the retail deck at 80 %
CATALOG_YAML = """\
# ratecycle demo catalog: a mobile operator's plans (prices VAT exclusive). Customers in
# Germany pay in EUR with German VAT; customers in the UK hold the GBP plan with UK VAT.
catalog: 1
name: ratecycle demo
currency: EUR
timezone: Europe/Berlin
decks:
  retail: {{file: {retail}}}
  business: {{file: {business}}}
taxes:
  - {{name: VAT DE, rate: "0.19", jurisdictions: [DE]}}
  - {{name: VAT UK, rate: "0.20", jurisdictions: [GB]}}
discounts:
  loyalty: {{kind: percentage, value: "0.10", services: [voice, sms]}}
plans:
  - id: basic
    default: true
    recurring: [{{name: basic monthly fee, price: "4.99", per: month}}]
    charges:
      - {{service: voice, deck: retail, per: minute, increments: 60/60}}
      - {{service: sms, rate: "0.0900", per: message}}
      - {{service: data, rate: "0.0200", per: MB, increments: 1000000/1000000}}
  - id: smart
    recurring: [{{name: smart monthly fee, price: "14.99", per: month}}]
    # 300 national minutes and 100 texts a month; a call the bundle covers has no fee
    bundles:
      - {{name: 300 national minutes, service: voice, allowance: 300, per: minute,
          destinations: [Germany fixed, Germany mobile], connect_fee: waived}}
      - {{name: 100 texts, service: sms, allowance: 100, per: message}}
    charges:
      # the first minute is one block, then per second, plus a fee per answered call
      - {{service: voice, deck: retail, per: minute, increments: 60/1, connect_fee: "0.0390"}}
      - {{service: sms, rate: "0.0700", per: message}}
      - {{service: data, rate: "0.0100", per: MB, increments: 100000/100000}}
  - id: business
    recurring: [{{name: business monthly fee, price: "39.00", per: month}}]
    charges:
      - {{service: voice, deck: business, per: minute, increments: 1/1}}
      - {{service: sms, rate: "0.0500", per: message}}
      # data in graduated tiers: the first GB, up to 5 GB, then the rest
      - service: data
        per: MB
        increments: 1000/1000
        tiers:
          model: graduated
          tiers: [{{up_to: 1000, rate: "0.0080"}}, {{up_to: 5000, rate: "0.0050"}},
                  {{rate: "0.0020"}}]
  - id: uk-basic
    currency: GBP
    timezone: Europe/London
    recurring: [{{name: UK monthly fee, price: "4.50", per: month}}]
    charges:
      - {{service: voice, deck: retail, per: minute, increments: 60/60}}
      - {{service: sms, rate: "0.0800", per: message}}
      - {{service: data, rate: "0.0200", per: MB, increments: 1000000/1000000}}
"""


@dataclass(frozen=True)
class DemoInputs:
    """The files of a generated demo month."""

    usage: Path
    catalog: Path
    accounts: Path
    deck: Path


def _month_bounds(month: str) -> tuple[int, int, datetime, datetime]:
    try:
        year, mon = (int(p) for p in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=UTC)
    except ValueError:
        raise ValueError(f"month {month!r} must look like 2026-11") from None
    days = calendar.monthrange(year, mon)[1]
    return year, mon, start, start + timedelta(days=days)


def _hour_grid(year: int, mon: int, zone: str, start: datetime, end: datetime):
    """For each local hour of the month: its UTC start (epoch µs) and its traffic weight."""
    tz = ZoneInfo(zone)
    days = calendar.monthrange(year, mon)[1]
    utc_us, weights = [], []
    for h in range(days * 24):
        local = datetime(year, mon, 1) + timedelta(hours=h)
        instant = local.replace(tzinfo=tz).astimezone(UTC)
        inside = start + EDGE_MARGIN <= instant <= end - EDGE_MARGIN - timedelta(hours=1)
        utc_us.append(int(instant.timestamp()) * 1_000_000)
        weights.append(HOUR_PROFILE[local.hour] * WEEKDAY_PROFILE[local.weekday()] * inside)
    w = np.array(weights)
    return np.array(utc_us, dtype=np.int64), w / w.sum()


def _first_digits() -> np.ndarray:
    """For each range, the digits that may follow its prefix without entering a longer range
    (so a number drawn from "33" is French fixed, never 336 mobile); padded with -1."""
    prefixes = [r[0] for r in RANGES]
    out = np.full((len(RANGES), 9), -1, dtype=np.int64)
    for i, p in enumerate(prefixes):
        free = [d for d in range(1, 10)
                if not any(q != p and q.startswith(p + str(d)) for q in prefixes)]
        out[i, : len(free)] = free
    return out


def _numbers(rng: np.random.Generator, rows: np.ndarray,
             tails: np.ndarray | None = None) -> pl.Series:
    """One number in international digits per entry of `rows` (indices into RANGES); given
    `tails`, those are the last 7 digits (unique tails make unique numbers)."""
    digits = _first_digits()
    free = (digits >= 0).sum(axis=1)
    lengths = np.array([r[5] - len(r[0]) - 1 for r in RANGES], dtype=np.int64)[rows]
    first = digits[rows, (rng.random(len(rows)) * free[rows]).astype(np.int64)]
    scale = 10 ** lengths
    rest = rng.integers(0, scale)
    if tails is not None:
        rest = rest // 10**7 * 10**7 + tails
    # the first digit is never 0, so the suffix needs no zero padding
    prefixes = pl.Series([r[0] for r in RANGES]).gather(rows)
    return prefixes + pl.Series(first * scale + rest).cast(pl.String)


def _subscribers(rng: np.random.Generator, n: int) -> pl.DataFrame:
    home = rng.choice(len(HOMES), size=n, p=[h[1] for h in HOMES])
    ranges = {r[0]: i for i, r in enumerate(RANGES)}
    rows = np.empty(n, dtype=np.int64)
    for h, (_, _, _, own) in enumerate(HOMES):
        mask = home == h
        rows[mask] = rng.choice([ranges[p] for p in own], size=int(mask.sum()))
    # every own range leaves at least 7 free digits: distinct tails give distinct numbers
    numbers = _numbers(rng, rows, tails=rng.choice(10**7, size=n, replace=False))
    return pl.DataFrame({
        "subscriber_id": pl.Series([f"sub-{i:06d}" for i in range(1, n + 1)]),
        "home": home,
        "number": numbers,
        # heavy users: lognormal activity, the top 1 % make about ten times the median
        "activity": rng.lognormal(0.0, 1.0, n),
    })


def _durations(rng: np.random.Generator, n: int) -> np.ndarray:
    """Call seconds: lognormal around 75 s up to an hour, with ~5 % dropped/voicemail calls."""
    seconds = np.rint(rng.lognormal(np.log(75.0), 1.15, n))
    short = rng.random(n) < 0.05
    seconds = np.where(short, rng.integers(1, 7, n), seconds)
    return np.clip(seconds, 1, 3600).astype(np.int64)


def _bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Session bytes: lognormal around 2 MB, from a few KB to hundreds of MB. A gateway cuts a
    long session into partial records, here at 1 GB, so no record is larger."""
    return np.clip(np.rint(rng.lognormal(np.log(2e6), 2.0, n)), 200, 10**9).astype(np.int64)


def _destination_rows(rng: np.random.Generator, home: np.ndarray, category: np.ndarray):
    """A RANGES row for each (home, category) event: national ranges of the home country,
    international ranges of every other country, or an unpriced range."""
    rows = np.full(len(home), -1, dtype=np.int64)
    for h, (cc, *_) in enumerate(HOMES):
        for c, name in enumerate(CATEGORIES):
            mask = (home == h) & (category == c)
            if not mask.any():
                continue
            if name == "international":
                pick = [i for i, r in enumerate(RANGES)
                        if not r[0].startswith(cc) and r[3] in ("fixed", "mobile", "other")]
            elif name == "unpriced":
                pick = [i for i, r in enumerate(RANGES) if r[3] == "unpriced"]
            else:
                pick = [i for i, r in enumerate(RANGES) if r[0].startswith(cc) and r[3] == name]
            weights = np.array([RANGES[i][4] for i in pick])
            rows[mask] = rng.choice(pick, size=int(mask.sum()), p=weights / weights.sum())
    return rows


def _usage(rng: np.random.Generator, subs: pl.DataFrame, events: int, year: int, mon: int,
           start: datetime, end: datetime) -> pl.DataFrame:
    activity = subs["activity"].to_numpy()
    sub = rng.choice(len(subs), size=events, p=activity / activity.sum())
    home = subs["home"].to_numpy()[sub]

    # each subscriber leans to some services around the overall mix
    mix = rng.dirichlet(np.array(SERVICE_MIX) * 8.0, size=len(subs)).cumsum(axis=1)
    service = (rng.random(events)[:, None] >= mix[sub, :-1]).sum(axis=1)

    started = np.empty(events, dtype=np.int64)
    for h, (_, _, zone, _) in enumerate(HOMES):
        mask = home == h
        hour_start, weights = _hour_grid(year, mon, zone, start, end)
        hours = rng.choice(len(weights), size=int(mask.sum()), p=weights)
        started[mask] = hour_start[hours] + rng.integers(0, 3600, int(mask.sum())) * 1_000_000

    quantity = np.where(service == 0, _durations(rng, events),
                        np.where(service == 1, 1, _bytes(rng, events)))

    cum = {s: np.cumsum(CATEGORY_MIX[s])[:-1] for s in ("voice", "sms")}
    u = rng.random(events)
    category = np.where(service == 0, np.searchsorted(cum["voice"], u, side="right"),
                        np.searchsorted(cum["sms"], u, side="right"))
    rows = _destination_rows(rng, home, np.where(service == 2, -1, category))
    numbers = _numbers(rng, np.where(rows < 0, 0, rows))
    apn = pl.Series([a for a, _ in APNS]).gather(
        rng.choice(len(APNS), size=events, p=[p for _, p in APNS]))

    # a switch numbers its records in time order
    order = np.lexsort((sub, started))
    frame = pl.DataFrame({
        "sub": sub, "service": service, "started": started, "quantity": quantity,
        "number": numbers, "apn": apn,
    })[order]
    return frame.select(
        pl.format("demo-{}", pl.int_range(1, events + 1).cast(pl.String).str.zfill(9))
        .alias("event_id"),
        subs["subscriber_id"].gather(frame["sub"]).alias("subscriber_id"),
        pl.Series(SERVICES).gather(frame["service"]).alias("service"),
        pl.from_epoch("started", time_unit="us").dt.replace_time_zone("UTC")
        .cast(UTC_INSTANT).alias("started_at"),
        pl.col("quantity").cast(pl.Int64),
        subs["number"].gather(frame["sub"]).alias("origin"),
        pl.when(pl.col("service") == 2).then("apn").otherwise("number").alias("destination"),
    )


def _write_decks(out_dir: Path) -> tuple[Path, Path]:
    priced = [r for r in RANGES if r[2] is not None]
    retail = pl.DataFrame({"prefix": [r[0] for r in priced], "destination": [r[1] for r in priced],
                           "rate": [r[2] for r in priced]}).sort("prefix")
    business = retail.with_columns(rate=pl.Series([
        str((Decimal(rate) * BUSINESS_DISCOUNT).quantize(Decimal("0.0001"), ROUND_HALF_UP))
        for rate in retail["rate"]]))
    paths = out_dir / "retail.deck.csv", out_dir / "business.deck.csv"
    retail.write_csv(paths[0])
    business.write_csv(paths[1])
    return paths


def generate_demo(out_dir: Path, *, subscribers: int = 10_000, events: int = 1_000_000,
                  month: str = "2026-11", seed: int = 20261103,
                  progress: Callable[[str], None] | None = None) -> DemoInputs:
    """Write a month of usage (Parquet), a catalog with two decks, and the accounts to
    `out_dir`; the same arguments always give byte-identical files."""
    say = progress or (lambda _message: None)
    if not (1 <= subscribers <= 10**7 and events >= 1):
        raise ValueError("subscribers must be 1 to 10 million and events at least 1")
    year, mon, start, end = _month_bounds(month)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    say(f"demo: {subscribers:,} subscribers, {events:,} events in {month}")
    subs = _subscribers(rng, subscribers)
    usage = _usage(rng, subs, events, year, mon, start, end)
    usage_path = out_dir / "usage.parquet"
    usage.write_parquet(usage_path)
    say(f"demo: wrote {usage_path}")

    retail, business = _write_decks(out_dir)
    catalog_path = out_dir / "catalog.yaml"
    catalog_path.write_text(CATALOG_YAML.format(retail=retail.name, business=business.name),
                            encoding="utf-8")

    # Every subscriber gets an account row: one without would hold the default plan with
    # no customer, hence no tax jurisdiction, and its bill would carry no VAT.
    plans = rng.choice(len(PLANS), size=subscribers, p=[p for _, p in PLANS])
    uk = subs["home"].to_numpy() == 1
    accounts = pl.DataFrame({
        "subscriber_id": subs["subscriber_id"],
        # customers in the UK hold the GBP plan, are billed in London time with UK VAT
        "plan_id": pl.Series(np.where(uk, "uk-basic", np.array([p for p, _ in PLANS])[plans])),
        "timezone": np.where(uk, "Europe/London", "Europe/Berlin"),
        "currency": np.where(uk, "GBP", "EUR"),
        "tax_jurisdiction": np.where(uk, "GB", "DE"),
        # one customer in twenty has the loyalty discount
        "discounts": np.where(rng.random(subscribers) < 0.05, "loyalty", ""),
    })
    accounts_path = out_dir / "accounts.csv"
    accounts.write_csv(accounts_path)
    say(f"demo: wrote {catalog_path}, {retail.name}, {business.name}, {accounts_path.name}")
    return DemoInputs(usage=usage_path, catalog=catalog_path, accounts=accounts_path, deck=retail)
