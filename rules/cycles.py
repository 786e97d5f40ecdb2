"""Billing-cycle calendar: which period of a customer's cycle holds an instant.

A cycle is weekly, monthly, quarterly or yearly (optionally every n of them), anchored on
the calendar or on an anniversary, and always read in the customer's IANA zone. Periods
are half-open ``[start, end)`` in UTC and tile time with no gap and no overlap.

Boundary k of a cycle is ``anchor + k intervals`` as a local wall-clock time, computed
from the anchor each time and never by chaining from the previous boundary, so an anchor
on the 31st clamps to a short month's end and returns to the 31st on the next long month.
That local time is then placed in UTC by ``to_utc`` (the DST rules are stated there).

A cycle may be *restarted* at given instants (a plan change with the ``restart`` policy,
rules/accounts.py): the period holding a restart is cut short there, and from it the cycle
runs again anchored on the restart's local wall-clock time. Periods still tile; the period
as it would have been without the cut is ``uncut_period_of`` (recurring fees prorate
against it). Pure standard library; invalid specs raise ``ValueError``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

Interval = Literal["weekly", "monthly", "quarterly", "yearly"]
INTERVALS: tuple[Interval, ...] = ("weekly", "monthly", "quarterly", "yearly")
_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}

# A Monday and a January 1st: calendar weeks start on Monday 00:00, months on the 1st,
# quarters in Jan/Apr/Jul/Oct, years on Jan 1 (multiples count from here).
CALENDAR_ANCHOR = datetime(2001, 1, 1)

D = TypeVar("D", date, datetime)


@dataclass(frozen=True)
class Cycle:
    """How a customer is billed: ``Cycle("monthly")`` is the calendar month;
    ``Cycle("monthly", anchor=datetime(2017, 1, 31, 10))`` runs from the 31st 10:00 local
    (clamped in short months); ``Cycle("monthly", every=3)`` is a calendar quarter.

    ``anchor`` is a naive local date or date-time (a date means 00:00), or None for calendar
    anchoring. With ``every`` > 1, calendar multiples count from Monday 2001-01-01: weeks
    every 2 start on even weeks from it, months every 2 in Jan/Mar/..., years every 2 in
    odd years.
    """

    interval: Interval
    every: int = 1
    anchor: datetime | None = None
    restarts: tuple[datetime, ...] = ()  # UTC instants, strictly increasing

    def __post_init__(self) -> None:
        if self.interval not in INTERVALS:
            raise ValueError(f"interval {self.interval!r} is not one of {list(INTERVALS)}")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"every must be a whole number >= 1, not {self.every!r}")
        anchor = self.anchor
        if isinstance(anchor, date) and not isinstance(anchor, datetime):
            anchor = datetime.combine(anchor, time())
            object.__setattr__(self, "anchor", anchor)
        if anchor is not None and (not isinstance(anchor, datetime)
                                   or anchor.tzinfo is not None):
            raise ValueError(f"anchor must be a naive local date or datetime (the zone is "
                             f"the customer's), not {anchor!r}")
        restarts = tuple(self.restarts)
        for r in restarts:
            _aware(r)
        if any(b <= a for a, b in zip(restarts, restarts[1:], strict=False)):
            raise ValueError("restarts must be strictly increasing instants")
        object.__setattr__(self, "restarts", restarts)

    @property
    def kind(self) -> Literal["calendar", "anniversary"]:
        return "calendar" if self.anchor is None else "anniversary"


class Period(NamedTuple):
    """One cycle period, the half-open ``[start, end)`` of UTC instants."""

    start: datetime
    end: datetime

    def local_dates(self, zone: ZoneInfo | str) -> tuple[date, date]:
        """(start_local_date, end_local_date) in the zone, for display; the end is
        exclusive like the period (B32 shows January's period as 2017-01-31 to 2017-02-28)."""
        zone = _zone(zone)
        return self.start.astimezone(zone).date(), self.end.astimezone(zone).date()


def add_months(local: D, k: int) -> D:
    """``local`` moved by k months (k may be negative), the day clamped to the target
    month's last day: 2022-01-31 + 3 is 2022-04-30 (never 05-01), 2020-02-29 + 12 is
    2021-02-28. A datetime keeps its time of day."""
    y, m = divmod(local.year * 12 + local.month - 1 + k, 12)
    return local.replace(year=y, month=m + 1, day=min(local.day, calendar.monthrange(y, m + 1)[1]))


def to_utc(local: datetime, zone: ZoneInfo | str) -> datetime:
    """The UTC instant of a naive local wall-clock time in the zone.

    A time that occurs twice (clocks going back) is its first occurrence. A time that does
    not occur (a DST gap, or a zone that skipped a day) moves forward to the first valid
    instant, the moment the clocks jumped: 02:30 on Berlin's spring-forward day is 03:00
    CEST (01:00 UTC).
    """
    zone = _zone(zone)
    if local.tzinfo is not None:
        raise ValueError("to_utc takes a naive local time")
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(first, zone) == local:
        return first  # fold=0 is the earlier of two occurrences
    # In a gap, fold=0 reads the time with the offset before the jump (landing after it)
    # and fold=1 with the offset after (landing before it): the jump lies between.
    lo, hi = local.replace(tzinfo=zone, fold=1).astimezone(UTC), first
    while hi - lo > timedelta(microseconds=1):  # wall(lo) < local <= wall(hi)
        mid = lo + (hi - lo) // 2
        lo, hi = (lo, mid) if _wall(mid, zone) >= local else (mid, hi)
    return hi


def period_of(spec: Cycle, zone: ZoneInfo | str, instant_utc: datetime) -> Period:
    """The period of the cycle that holds the instant, start <= instant < end; a naive
    instant is refused (ValueError)."""
    zone = _zone(zone)
    _aware(instant_utc)
    base, lo, hi = _segment(spec, zone, instant_utc)
    k = _index(base, zone, instant_utc)
    return _clip(Period(_bound(base, zone, k), _bound(base, zone, k + 1)), lo, hi)


def uncut_period_of(spec: Cycle, zone: ZoneInfo | str, instant_utc: datetime) -> Period:
    """The period holding the instant as it was before a later restart cut it short: the
    same as ``period_of`` for a cycle without restarts."""
    zone = _zone(zone)
    _aware(instant_utc)
    base, lo, _ = _segment(spec, zone, instant_utc)
    k = _index(base, zone, instant_utc)
    return _clip(Period(_bound(base, zone, k), _bound(base, zone, k + 1)), lo, None)


def periods(spec: Cycle, zone: ZoneInfo | str, start_utc: datetime,
            end_utc: datetime) -> list[Period]:
    """The whole periods that overlap ``[start_utc, end_utc)``, in order, each end the next
    start; the first holds start_utc. Empty when end_utc <= start_utc. Periods are not
    clipped to the range (proration is the caller's business)."""
    zone = _zone(zone)
    _aware(start_utc)
    _aware(end_utc)
    out: list[Period] = []
    at = start_utc
    while at < end_utc:
        base, lo, hi = _segment(spec, zone, at)
        k = _index(base, zone, at)
        bounds = [_bound(base, zone, k)]
        while bounds[-1] < end_utc and (hi is None or bounds[-1] < hi):
            k += 1
            bounds.append(_bound(base, zone, k))
        out += [_clip(Period(a, b), lo, hi) for a, b in zip(bounds, bounds[1:], strict=False)]
        out = [p for p in out if p.end > p.start]
        at = out[-1].end
    return out


def _segment(spec: Cycle, zone: ZoneInfo,
             instant_utc: datetime) -> tuple[Cycle, datetime | None, datetime | None]:
    """The restart-free cycle in force at the instant and the [lo, hi) span it rules:
    before the first restart the spec's own anchor, after restart r the local time of r."""
    lo = hi = None
    anchor = spec.anchor
    for r in spec.restarts:
        if r <= instant_utc:
            lo, anchor = r, _wall(r, zone)
        else:
            hi = r
            break
    return Cycle(spec.interval, spec.every, anchor), lo, hi


def _clip(period: Period, lo: datetime | None, hi: datetime | None) -> Period:
    return Period(max(period.start, lo) if lo else period.start,
                  min(period.end, hi) if hi else period.end)


def _local_bound(spec: Cycle, k: int) -> datetime:
    anchor = spec.anchor or CALENDAR_ANCHOR
    if spec.interval == "weekly":
        return anchor + timedelta(weeks=k * spec.every)
    return add_months(anchor, k * spec.every * _MONTHS[spec.interval])


def _bound(spec: Cycle, zone: ZoneInfo, k: int) -> datetime:
    return to_utc(_local_bound(spec, k), zone)


def _index(spec: Cycle, zone: ZoneInfo, instant_utc: datetime) -> int:
    """k such that bound(k) <= instant < bound(k + 1); bounds strictly increase with k."""
    _aware(instant_utc)
    local, anchor = _wall(instant_utc, zone), spec.anchor or CALENDAR_ANCHOR
    if spec.interval == "weekly":
        k = (local - anchor) // timedelta(weeks=spec.every)
    else:
        months = (local.year - anchor.year) * 12 + local.month - anchor.month
        k = months // (spec.every * _MONTHS[spec.interval])
    # The month or week count is off by one when the instant precedes the anchor day or time
    # within its month or week; the loops settle it.
    while _bound(spec, zone, k) > instant_utc:
        k -= 1
    while _bound(spec, zone, k + 1) <= instant_utc:
        k += 1
    return k


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _aware(instant: datetime) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant {instant} has no time zone; instants are UTC-aware")


def _zone(zone: ZoneInfo | str) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
