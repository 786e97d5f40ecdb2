"""The span kernel (calendar + walk) against its one-increment-at-a-time reference, on random
tariffs and calls: band boundaries, midnight, DST changes, versions, zero and huge durations."""

import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import numpy as np
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rating import rate as rating_rate
from rating.calendar import micros
from rating.kernels.spans import split_spans_reference
from rating.rate import _Calendars, split_events
from rating.tariff import compile_catalog
from rules import load_catalog

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
# DST changes of those zones in 2026, and an ordinary day, to start calls around
ANCHORS = [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC),
           datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC),
           datetime(2026, 4, 4, 15, tzinfo=UTC), datetime(2026, 6, 10, 12, tzinfo=UTC)]
VERSIONS = ["2026-03-29T01:30:00Z", "2026-06-10T12:15:00Z", "2026-11-01T06:30:00Z",
            "2026-03-08T07:00:00Z"]

clock = st.integers(min_value=0, max_value=95).map(lambda q: q * 900)  # quarter hours


@st.composite
def band(draw):
    start = draw(clock)
    end = draw(st.integers(min_value=start // 900 + 1, max_value=96)) * 900
    out = {"from": f"{start // 3600:02d}:{start % 3600 // 60:02d}",
           "to": f"{end // 3600:02d}:{end % 3600 // 60:02d}",
           "weight": draw(st.integers(0, 1))}
    if draw(st.booleans()):
        out["weekdays"] = sorted(draw(st.sets(st.integers(1, 7), min_size=1)))
    if draw(st.integers(0, 4)) == 0:
        out["holidays"] = True
    return out


@st.composite
def rate(draw):
    starts = sorted(draw(st.sets(st.integers(1, 400), max_size=2)))
    slots = [{"from": f, "rate": draw(st.sampled_from(["0.01", "0.5", "1.2"])),
              "per": draw(st.sampled_from(["second", "minute", 10])),
              "increment": draw(st.sampled_from([1, 6, 30, 60]))} for f in [0, *starts]]
    return {"slots": slots, "min_billed": draw(st.sampled_from([0, 0, 30, 90])),
            "free_below": draw(st.sampled_from([0, 0, 5]))}


@st.composite
def tariffs(draw):
    bands = {f"B{k}": draw(band()) for k in range(draw(st.integers(0, 5)))}
    rates = {f"R{k}": draw(rate()) for k in range(draw(st.integers(1, 3)))}
    rows = []
    for prefix in ["", "4", "44"]:
        for version in draw(st.lists(st.sampled_from(["", *VERSIONS]), min_size=1, max_size=2,
                                     unique=True)):
            names = ["", *bands]
            for name in draw(st.lists(st.sampled_from(names), min_size=min(2, len(names)),
                                      max_size=4, unique=True)):
                rows.append({"prefix": prefix, "destination": "D", "band": name,
                             "rate_id": draw(st.sampled_from(list(rates))),
                             "weight": draw(st.sampled_from(["", "", "", "1"])),
                             "effective_from": version})
    catalog = {
        "catalog": 1, "currency": "EUR", "timezone": draw(st.sampled_from(ZONES)),
        "holidays": ["2026-03-29", "2026-11-01"], "bands": bands, "rates": rates,
        "decks": {"d": {"file": "d.csv"}},
        "plans": [{"id": "p", "default": True, "charges": [
            {"service": "voice", "deck": "d"}, {"service": "data", "deck": "d"}]}],
    }
    return catalog, rows


@st.composite
def calls(draw):
    """Up to 12 calls around DST changes, often starting just before a quarter hour (where
    bands change), lasting from nothing to hours. Drawn from a seeded generator so that
    long calls are as common as short ones."""
    rnd = random.Random(draw(st.integers(0, 2**32)))
    out = []
    for _ in range(rnd.randint(1, 12)):
        shift = rnd.choice([rnd.randint(-6 * 3600, 6 * 3600),
                            rnd.randint(-24, 24) * 900 - rnd.randint(0, 120)])
        quantity = rnd.choice([0, 1, rnd.randint(0, 300), rnd.randint(0, 20_000),
                               rnd.randint(0, 20_000)])
        out.append((rnd.choice(["voice", "data"]), rnd.randint(0, 200), rnd.choice(ANCHORS),
                    shift, quantity))
    return out


def compiled_from(catalog: dict, rows: list[dict]):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        (path / "catalog.yaml").write_text(yaml.safe_dump(catalog))
        header = "prefix,destination,band,rate_id,weight,effective_from\n"
        body = "".join(f"{r['prefix']},{r['destination']},{r['band']},{r['rate_id']},"
                       f"{r['weight']},{r['effective_from']}\n" for r in rows)
        (path / "d.csv").write_text(header + body)
        return compile_catalog(load_catalog(path / "catalog.yaml"))


@settings(max_examples=150, deadline=None)
@given(tariffs(), calls())
def test_kernel_matches_reference(tariff_case, call_rows):
    _matches_reference(tariff_case, call_rows)


@settings(max_examples=50, deadline=None)
@given(tariffs(), calls())
def test_spans_that_overflow_their_room_are_written_again_with_more(tariff_case, call_rows):
    """One span of room per row and three chunks: most chunks overflow and are rated again
    with twice the room, until every chunk fits."""
    with (mock.patch.object(rating_rate, "ROOM_PER_ROW", 1),
          mock.patch.object(rating_rate, "SPAN_CHUNKS", 3)):
        _matches_reference(tariff_case, call_rows)


def _matches_reference(tariff_case, call_rows):
    compiled = compiled_from(*tariff_case)
    names = compiled.entries["tariff"].to_list()
    tariff, entry, at, qty = [], [], [], []
    for service, pick, anchor, shift, quantity in call_rows:
        t = compiled.tariff_keys[("p", service)]
        mine = [i for i, name in enumerate(names) if name == f"p/{service}"]
        tariff.append(t)
        entry.append(mine[pick % len(mine)])
        at.append(micros(anchor + timedelta(seconds=shift)))
        qty.append(quantity)
    tariff, entry = np.array(tariff, np.int64), np.array(entry, np.int32)
    at, qty = np.array(at, np.int64), np.array(qty, np.int64)
    calendars = _Calendars(compiled, int(at.min()), int((at + qty * 1_000_000).max()))
    spans = split_events(compiled, calendars, tariff, entry, at, qty)
    for i in range(len(at)):
        mine = spans.row == i
        got = list(zip(spans.entry[mine].tolist(), spans.binding[mine].tolist(),
                       spans.slot[mine].tolist(), spans.count[mine].tolist(),
                       spans.billed[mine].tolist(), strict=True))
        want, status, first = split_spans_reference(compiled, int(tariff[i]), int(entry[i]),
                                                    int(at[i]), int(qty[i]))
        assert (got, int(spans.status[i]), int(spans.first[i])) == (want, status, first)
    assert spans.per_event.tolist() == np.bincount(spans.row, minlength=len(at)).tolist()
    assert (np.diff(spans.row) >= 0).all()  # an event's spans are together, in event order
