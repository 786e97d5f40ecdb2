"""Billing cycles: periods in the customer's zone that tile time, with month-end clamping
that never drifts, DST gaps and repeated hours, leap days, and faults B32 and B34."""

import json
from calendar import monthrange
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.cycles import (
    INTERVALS,
    Cycle,
    Period,
    add_months,
    period_of,
    periods,
    to_utc,
    uncut_period_of,
)

CASES = (Path(__file__).resolve().parents[2].parent / "shared" / "cases"
         / "billing_fault_cases.json")
US = timedelta(microseconds=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def fault_case(case_id: str) -> dict:
    if not CASES.exists():
        pytest.skip(f"fault cases not present at {CASES}")
    return next(c for c in json.loads(CASES.read_text())["cases"] if c["id"] == case_id)


def wrong_values(expected: dict) -> list:
    return [v for k, v in expected.items() if k.startswith(("wrong_", "alt_"))]


# --- the reported faults -------------------------------------------------------------------

@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York",
                                  "Pacific/Kiritimati"])
def test_b32_bill_cycle_day_31_keeps_billing_after_february(zone):
    case = fault_case("B32")
    start = date.fromisoformat(case["input"]["start"])
    assert case["input"]["billing"].startswith("monthly")
    assert start.day == case["input"]["bill_cycle_day"]
    spec = Cycle("monthly", anchor=start)
    want = [tuple(date.fromisoformat(d) for d in p) for p in case["expected"]["periods"]]

    got = periods(spec, zone, to_utc(datetime(2017, 1, 31), zone),
                  to_utc(datetime.combine(want[-1][1], datetime.min.time()), zone))

    shown = [p.local_dates(zone) for p in got]
    assert shown == want  # the 31 Mar - 30 Apr period that Kill Bill lost is there
    assert all(v not in shown for v in wrong_values(case["expected"]))
    for p in got:
        assert period_of(spec, zone, p.start + (p.end - p.start) / 2) == p


def test_b34_trial_end_clamps_to_april_30():
    case = fault_case("B34")
    start, k = date.fromisoformat(case["input"]["start"]), case["input"]["add_months"]
    end = add_months(start, k)
    assert end == date.fromisoformat(case["expected"]["end"])
    assert end.isoformat() not in wrong_values(case["expected"])
    quarter = period_of(Cycle("quarterly", anchor=start), "UTC", utc(2022, 2, 1))
    assert quarter.local_dates("UTC") == (start, end)


# --- month arithmetic ----------------------------------------------------------------------

@pytest.mark.parametrize(("start", "k", "end"), [
    (date(2022, 1, 31), 1, date(2022, 2, 28)),
    (date(2024, 1, 31), 1, date(2024, 2, 29)),
    (date(2022, 3, 31), -1, date(2022, 2, 28)),
    (date(2020, 2, 29), 12, date(2021, 2, 28)),
    (date(2020, 2, 29), 48, date(2024, 2, 29)),
    (date(2022, 12, 15), 1, date(2023, 1, 15)),
    (date(2023, 1, 15), -13, date(2021, 12, 15)),
    (datetime(2022, 1, 31, 10, 30), 3, datetime(2022, 4, 30, 10, 30)),
])
def test_add_months_clamps_to_month_end(start, k, end):
    assert add_months(start, k) == end


def test_leap_day_anchor_is_feb_28_in_common_years_and_feb_29_in_leap_years():
    got = periods(Cycle("yearly", anchor=date(2020, 2, 29)), "UTC", utc(2020, 3, 1),
                  utc(2024, 3, 1))
    assert [p.local_dates("UTC")[0] for p in got] == [
        date(2020, 2, 29), date(2021, 2, 28), date(2022, 2, 28), date(2023, 2, 28),
        date(2024, 2, 29)]


def test_quarterly_anniversary_returns_to_the_31st():
    got = periods(Cycle("quarterly", anchor=date(2022, 1, 31)), "UTC", utc(2022, 1, 31),
                  utc(2023, 1, 31))
    assert [p.local_dates("UTC")[0] for p in got] == [
        date(2022, 1, 31), date(2022, 4, 30), date(2022, 7, 31), date(2022, 10, 31)]


# --- pinned periods: calendar vs anniversary, DST, UTC+14 ----------------------------------

@pytest.mark.parametrize(("spec", "zone", "instant", "start", "end"), [
    pytest.param(Cycle("weekly"), "Europe/Berlin", utc(2024, 3, 31, 12),
                 utc(2024, 3, 24, 23), utc(2024, 3, 31, 22), id="week-of-167h-monday-start"),
    pytest.param(Cycle("monthly"), "America/New_York", utc(2024, 3, 20),
                 utc(2024, 3, 1, 5), utc(2024, 4, 1, 4), id="calendar-month"),
    pytest.param(Cycle("monthly", anchor=datetime(2024, 1, 15, 9, 30)), "America/New_York",
                 utc(2024, 3, 20), utc(2024, 3, 15, 13, 30), utc(2024, 4, 15, 13, 30),
                 id="anniversary-month"),
    pytest.param(Cycle("quarterly"), "America/New_York", utc(2024, 5, 15),
                 utc(2024, 4, 1, 4), utc(2024, 7, 1, 4), id="calendar-quarter"),
    pytest.param(Cycle("quarterly"), "America/New_York", utc(2024, 1, 1, 3),
                 utc(2023, 10, 1, 4), utc(2024, 1, 1, 5), id="quarter-by-local-clock"),
    pytest.param(Cycle("monthly", every=3), "America/New_York", utc(2024, 5, 15),
                 utc(2024, 4, 1, 4), utc(2024, 7, 1, 4), id="monthly-every-3-is-a-quarter"),
    pytest.param(Cycle("yearly"), "Pacific/Kiritimati", utc(2024, 12, 31, 10, 30),
                 utc(2024, 12, 31, 10), utc(2025, 12, 31, 10), id="new-year-at-utc+14"),
    pytest.param(Cycle("yearly"), "Pacific/Kiritimati", utc(2024, 12, 31, 9, 59),
                 utc(2023, 12, 31, 10), utc(2024, 12, 31, 10), id="old-year-at-utc+14"),
    pytest.param(Cycle("monthly", anchor=datetime(2024, 1, 31, 2, 30)), "Europe/Berlin",
                 utc(2024, 4, 1), utc(2024, 3, 31, 1), utc(2024, 4, 30, 0, 30),
                 id="31st-0230-in-dst-gap-moves-to-0300"),
    pytest.param(Cycle("weekly", anchor=datetime(2024, 10, 27, 1, 30)), "America/New_York",
                 utc(2024, 11, 3, 6), utc(2024, 11, 3, 5, 30), utc(2024, 11, 10, 6, 30),
                 id="repeated-0130-takes-first-occurrence"),
    pytest.param(Cycle("monthly", anchor=datetime(2024, 9, 6, 2, 15)), "Australia/Lord_Howe",
                 utc(2024, 10, 6), utc(2024, 10, 5, 15, 30), utc(2024, 11, 5, 15, 15),
                 id="lord-howe-half-hour-gap"),
    pytest.param(Cycle("monthly", anchor=datetime(2024, 3, 7, 1, 45)), "Australia/Lord_Howe",
                 utc(2024, 4, 10), utc(2024, 4, 6, 14, 45), utc(2024, 5, 6, 15, 15),
                 id="lord-howe-half-hour-repeat"),
])
def test_pinned_periods(spec, zone, instant, start, end):
    assert period_of(spec, zone, instant) == Period(start, end)
    assert periods(spec, zone, instant, instant + US) == [Period(start, end)]


def test_local_dates_are_the_customers():
    period = period_of(Cycle("yearly"), "Pacific/Kiritimati", utc(2024, 12, 31, 10, 30))
    assert period.local_dates(ZoneInfo("Pacific/Kiritimati")) == (date(2025, 1, 1),
                                                                   date(2026, 1, 1))
    assert period.local_dates("UTC") == (date(2024, 12, 31), date(2025, 12, 31))


def test_a_skipped_day_moves_forward_to_the_first_valid_instant():
    # Samoa skipped 30 December 2011, jumping from -10 to +14 at midnight.
    assert to_utc(datetime(2011, 12, 30, 10), "Pacific/Apia") == utc(2011, 12, 30, 10)
    assert to_utc(datetime(2024, 9, 8), "America/Santiago") == utc(2024, 9, 8, 4)


def test_periods_range_edges():
    spec, zone = Cycle("monthly"), "Europe/Berlin"
    march = Period(utc(2024, 2, 29, 23), utc(2024, 3, 31, 22))
    assert periods(spec, zone, march.start, march.start) == []
    assert periods(spec, zone, march.end, march.start) == []
    assert periods(spec, zone, march.start, march.end) == [march]
    assert periods(spec, zone, march.start, march.end + US)[1].start == march.end
    assert period_of(spec, zone, march.end - US) == march


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Cycle("daily"), "not one of"),
    (lambda: Cycle("monthly", every=0), "every"),
    (lambda: Cycle("monthly", every=True), "every"),
    (lambda: Cycle("monthly", anchor=utc(2024, 1, 1)), "naive local"),
    (lambda: Cycle("monthly", anchor="2024-01-01"), "naive local"),
    (lambda: period_of(Cycle("monthly"), "UTC", datetime(2024, 1, 1)), "no time zone"),
    (lambda: to_utc(utc(2024, 1, 1), "UTC"), "naive"),
])
def test_bad_input_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- properties ----------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Santiago",
         "America/St_Johns", "Australia/Lord_Howe", "Pacific/Kiritimati", "Pacific/Apia",
         "Asia/Kolkata"]
STEP_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}


@st.composite
def cycles(draw) -> Cycle:
    interval, every = draw(st.sampled_from(INTERVALS)), draw(st.integers(1, 3))
    if draw(st.booleans()):
        return Cycle(interval, every)
    year, day = draw(st.integers(1999, 2031)), draw(st.integers(1, 31))
    month = draw(st.sampled_from([m for m in range(1, 13) if day <= monthrange(year, m)[1]]))
    return Cycle(interval, every, anchor=datetime.combine(date(year, month, day),
                                                          draw(st.times())))


def expected_wall(spec: Cycle, wall: datetime) -> datetime:
    """The local time a period starting at wall time ``wall`` must be anchored on, written
    from the contract without the module's helpers."""
    anchor = spec.anchor or datetime(2001, 1, 1)  # a Monday and a January 1st
    if spec.interval == "weekly":
        back = (wall.date() - anchor.date()).days % (7 * spec.every)
        return datetime.combine(wall.date() - timedelta(days=back), anchor.time())
    months = (wall.year - anchor.year) * 12 + wall.month - anchor.month
    assert months % (spec.every * STEP_MONTHS[spec.interval]) == 0
    day = min(anchor.day, monthrange(wall.year, wall.month)[1])
    return datetime.combine(date(wall.year, wall.month, day), anchor.time())


@settings(max_examples=300, deadline=None)
@given(spec=cycles(), zone=st.sampled_from(ZONES),
       start=st.datetimes(datetime(1999, 1, 1), datetime(2031, 12, 31), timezones=st.just(UTC)),
       length=st.timedeltas(timedelta(seconds=1), timedelta(days=3 * 366)),
       per_mille=st.integers(0, 999))
def test_periods_tile_and_keep_the_anchor(spec, zone, start, length, per_mille):
    tz = ZoneInfo(zone)
    got = periods(spec, zone, start, start + length)

    assert got[0].start <= start < got[0].end
    assert got[-1].start < start + length <= got[-1].end
    for before, after in pairwise(got):
        assert before.end == after.start  # no gap, no overlap
    for p in got:
        assert p.start < p.end
        assert period_of(spec, zone, p.start) == p
        assert period_of(spec, zone, p.end - US) == p
        assert period_of(spec, zone, p.start + (p.end - p.start) * per_mille // 1000) == p
        # Bounds sit on the anchor's day (clamped, then restored) and time of day: at it,
        # or at the first valid instant after it when a DST gap skipped it; the first of
        # two occurrences when the hour repeats.
        local = p.start.astimezone(tz)
        want = expected_wall(spec, local.replace(tzinfo=None))
        assert local.fold == 0
        assert (p.start - US).astimezone(tz).replace(tzinfo=None) < want
        assert local.replace(tzinfo=None) >= want


@cache
def shift_days(zone: str) -> list[date]:
    """Days in 1999-2031 on whose eve or morning the zone's UTC offset changes."""
    tz = ZoneInfo(zone)
    days = [date(1999, 1, 1) + timedelta(days=i) for i in range(33 * 366)]
    offsets = [datetime.combine(d, time(12), tz).utcoffset() for d in days]
    return [d for d, a, b in zip(days[1:], offsets, offsets[1:], strict=False) if a != b]


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from([z for z in ZONES if z not in ("UTC", "Asia/Kolkata",
                                                           "Pacific/Kiritimati")]),
       data=st.data())
def test_to_utc_is_the_first_instant_at_or_after_the_wall_time(zone, data):
    tz = ZoneInfo(zone)
    day = data.draw(st.sampled_from(shift_days(zone)))
    day -= timedelta(days=data.draw(st.integers(0, 1)))  # Santiago repeats the eve's 23:00
    local = datetime.combine(day, data.draw(st.one_of(st.times(time(0), time(3)), st.times())))
    instant = to_utc(local, zone)
    assert instant.tzinfo is UTC
    assert (instant - US).astimezone(tz).replace(tzinfo=None) < local
    assert instant.astimezone(tz).replace(tzinfo=None) >= local
    assert instant.astimezone(tz).fold == 0  # a repeated hour's first occurrence


@given(start=st.dates(date(1999, 1, 1), date(2031, 12, 31)), k=st.integers(-400, 400))
def test_add_months_never_drifts(start, k):
    end = add_months(start, k)
    assert (end.year - start.year) * 12 + end.month - start.month == k
    # The anchor day, clamped in a short month and restored in the next long one.
    assert end.day == min(start.day, monthrange(end.year, end.month)[1])


# --- restarts (a plan change with the `restart` policy) ---------------------------------------

def test_a_restart_cuts_the_period_and_reanchors_the_cycle():
    spec = Cycle("yearly", anchor=datetime(2025, 1, 1), restarts=(utc(2025, 1, 11),
                                                                   utc(2025, 1, 21, 12)))
    got = periods(spec, "UTC", utc(2024, 6, 1), utc(2027, 1, 1))
    assert got == [Period(utc(2024, 1, 1), utc(2025, 1, 1)),
                   Period(utc(2025, 1, 1), utc(2025, 1, 11)),
                   Period(utc(2025, 1, 11), utc(2025, 1, 21, 12)),
                   Period(utc(2025, 1, 21, 12), utc(2026, 1, 21, 12)),
                   Period(utc(2026, 1, 21, 12), utc(2027, 1, 21, 12))]
    assert period_of(spec, "UTC", utc(2025, 1, 15)) == got[2]
    assert uncut_period_of(spec, "UTC", utc(2025, 1, 15)) == Period(
        utc(2025, 1, 11), utc(2026, 1, 11))
    assert uncut_period_of(spec, "UTC", utc(2025, 1, 5)) == Period(
        utc(2025, 1, 1), utc(2026, 1, 1))


@settings(max_examples=150, deadline=None)
@given(spec=st.sampled_from([Cycle("monthly"), Cycle("weekly"), Cycle("monthly", every=3),
                             Cycle("monthly", anchor=datetime(2024, 1, 31, 15))]),
       zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
       offsets=st.lists(st.integers(1, 400 * 24 * 60), min_size=1, max_size=4, unique=True))
def test_restarted_periods_tile_and_start_at_each_restart(spec, zone, offsets):
    first = utc(2024, 1, 1)
    restarts = tuple(sorted(first + timedelta(minutes=m) for m in offsets))
    cut = Cycle(spec.interval, spec.every, spec.anchor, restarts)
    got = periods(cut, zone, first, first + timedelta(days=420))
    assert all(a.end == b.start for a, b in pairwise(got))
    assert all(p.start < p.end for p in got)
    starts = {p.start for p in got}
    assert set(restarts) <= starts
    for p in got:
        assert period_of(cut, zone, p.start) == p
        assert period_of(cut, zone, p.end - US) == p
        whole = uncut_period_of(cut, zone, p.start)
        assert whole.start == p.start and whole.end >= p.end


def test_restarts_must_be_aware_and_increasing():
    with pytest.raises(ValueError, match="no time zone"):
        Cycle("monthly", restarts=(datetime(2025, 1, 1),))
    with pytest.raises(ValueError, match="strictly increasing"):
        Cycle("monthly", restarts=(utc(2025, 2, 1), utc(2025, 1, 1)))
