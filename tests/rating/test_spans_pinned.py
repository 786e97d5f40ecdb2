"""Pinned cases of splitting calls into spans, checked by hand through rate_batch."""

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest

from ingest.schema import USAGE_SCHEMA
from rating import compile_catalog, rate_batch
from rules import load_catalog

CATALOG = """\
catalog: 1
currency: EUR
timezone: {zone}
bands:
  night: {{from: "00:00", to: "08:00"}}
  day: {{from: "08:00", to: "24:00"}}
decks:
  d: {{file: d.csv}}
plans:
  - id: p
    default: true
    charges:
      - {{service: voice, deck: d, per: minute, increments: {increments}}}
"""
DECK = """\
prefix,destination,rate,band,effective_from
44,UK,0.60,night,
44,UK,1.20,day,
44,UK,2.40,day,2026-06-10T12:00:00Z
"""


def rate_call(tmp_path, start: datetime, seconds: int, zone="UTC", increments="60/60"):
    (tmp_path / "c.yaml").write_text(CATALOG.format(zone=zone, increments=increments))
    (tmp_path / "d.csv").write_text(DECK)
    catalog = load_catalog(tmp_path / "c.yaml")
    usage = pl.DataFrame([{**dict.fromkeys(USAGE_SCHEMA), "event_id": "e", "subscriber_id": "s",
                           "service": "voice", "started_at": start, "quantity": seconds,
                           "destination": "441632"}], schema=USAGE_SCHEMA)
    row = rate_batch(usage, catalog, compile_catalog(catalog), None, "r").row(0, named=True)
    return row, [(s["band"], s["billed_quantity"], s["cost"], s["version"]) for s in row["spans"]]


def test_a_call_crossing_a_band_boundary_is_split_there(tmp_path):
    # 07:59:00 + 180 s: 60 s night (0.60/min), then 120 s day (1.20/min)
    row, spans = rate_call(tmp_path, datetime(2026, 3, 2, 7, 59, tzinfo=UTC), 180)
    assert spans == [("night", 60, Decimal("0.60"), None), ("day", 120, Decimal("2.40"), None)]
    assert row["amount"] == Decimal("3.00")


def test_an_increment_straddling_the_boundary_is_priced_where_it_starts(tmp_path):
    # 07:59:30 + 90 s at 60/60: the first minute (07:59:30-08:00:30) is night; the
    # second block starts 08:00:30 in the day band
    _, spans = rate_call(tmp_path, datetime(2026, 3, 2, 7, 59, 30, tzinfo=UTC), 90)
    assert spans == [("night", 60, Decimal("0.60"), None), ("day", 60, Decimal("1.20"), None)]


def test_midnight_starts_the_night_band_again(tmp_path):
    # 23:59:00 + 120 s: day then night
    _, spans = rate_call(tmp_path, datetime(2026, 3, 2, 23, 59, tzinfo=UTC), 120)
    assert [(b, q) for b, q, _, _ in spans] == [("day", 60), ("night", 60)]


def test_a_price_change_during_a_call_splits_it_at_that_instant(tmp_path):
    # 11:59:00 + 120 s: the first minute at 1.20, the second at the new 2.40
    _, spans = rate_call(tmp_path, datetime(2026, 6, 10, 11, 59, tzinfo=UTC), 120)
    new = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    assert spans == [("day", 60, Decimal("1.20"), None), ("day", 60, Decimal("2.40"), new)]


@pytest.mark.parametrize("increments", ["60/60", "1/1"])
def test_a_dst_night_is_rated_by_real_elapsed_seconds(tmp_path, increments):
    # Europe/Berlin, 2026-03-29: 02:00 local jumps to 03:00. A call from 01:30 local
    # (00:30 UTC) to 08:30 local lasts 6 h of real time = 21600 s, all of it 'night'
    # until 08:00 local (06:00 UTC): 5.5 h = 19800 s night, 1800 s day.
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    row, spans = rate_call(tmp_path, start, 21600, zone="Europe/Berlin", increments=increments)
    assert [(b, q) for b, q, _, _ in spans] == [("night", 19800), ("day", 1800)]
    assert row["billed_quantity"] == 21600
    assert row["amount"] == Decimal("0.60") * 330 + Decimal("1.20") * 30
