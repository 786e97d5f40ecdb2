"""When bands are in force: band rules evaluated in a tariff's zone, and the calendar of
segments (UTC instants between which the set of bands in force does not change) that the
span kernel walks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from rules.catalog import Band

ALWAYS = None  # the implicit band of rows that name none: in force at every instant
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def band_active(band: Band | None, local: datetime, holidays: frozenset[date]) -> bool:
    """Is ``band`` in force at the local wall-clock time ``local``?"""
    if band is ALWAYS:
        return True
    day = local.date()
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    return (
        (band.weekdays is None or day.isoweekday() in band.weekdays)
        and (band.months is None or day.month in band.months)
        and (band.month_days is None or day.day in band.month_days)
        and (band.years is None or day.year in band.years)
        and (band.dates is None or day in band.dates)
        and (not band.holidays or day in holidays)
        and band.from_ <= seconds < band.to
    )


def micros(instant: datetime) -> int:
    delta = instant - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def active_mask(bands: list[Band | None], local: datetime, holidays: frozenset[date]) -> int:
    mask = 0
    for bit, band in enumerate(bands):
        if band_active(band, local, holidays):
            mask |= 1 << bit
    return mask


def _transitions(tz: ZoneInfo, lo: datetime, hi: datetime) -> list[datetime]:
    """Instants in [lo, hi] where the zone's UTC offset changes (DST starts or ends): the
    wall clock jumps there, so bands can change without any band edge being reached."""
    found = []
    step = timedelta(hours=12)
    t = lo
    while t < hi:
        a, b = t, min(t + step, hi)
        if a.astimezone(tz).utcoffset() != b.astimezone(tz).utcoffset():
            while b - a > timedelta(seconds=1):  # the first second of the new offset
                mid = a + (b - a) / 2
                mid = mid.replace(microsecond=0)
                if mid.astimezone(tz).utcoffset() == a.astimezone(tz).utcoffset():
                    a = mid
                else:
                    b = mid
            found.append(b)
        t += step
    return found


def build_calendar(bands: list[Band | None], zone: str, holidays: frozenset[date],
                   lo_us: int, hi_us: int) -> tuple[np.ndarray, np.ndarray]:
    """Segments covering [lo, hi] (µs): (start instants int64, masks uint64). Bit k of a
    mask is set while ``bands[k]`` is in force."""
    if all(b is ALWAYS for b in bands):
        return np.array([np.iinfo(np.int64).min], np.int64), np.array([(1 << len(bands)) - 1],
                                                                          np.uint64)
    tz = ZoneInfo(zone)
    first = from_micros(lo_us).astimezone(tz).date() - timedelta(days=2)
    last = from_micros(hi_us).astimezone(tz).date() + timedelta(days=2)
    clocks = {0} | {b.from_ for b in bands if b} | {b.to for b in bands if b and b.to < 86400}
    starts = set()
    day = first
    while day <= last:
        for seconds in clocks:
            wall = datetime.combine(day, time()) + timedelta(seconds=seconds)
            for fold in (0, 1):  # a repeated hour (DST ends) changes bands twice
                starts.add(micros(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)))
        day += timedelta(days=1)
    span_lo = datetime.combine(first, time(), tzinfo=UTC) - timedelta(days=1)
    span_hi = datetime.combine(last, time(), tzinfo=UTC) + timedelta(days=2)
    starts.update(micros(instant) for instant in _transitions(tz, span_lo, span_hi))
    seg_from, seg_mask = [], []
    for us in sorted(starts):
        mask = active_mask(bands, from_micros(us).astimezone(tz), holidays)
        if seg_mask and seg_mask[-1] == mask:
            continue
        seg_from.append(us)
        seg_mask.append(mask)
    seg_from[0] = np.iinfo(np.int64).min  # the first segment reaches back without limit
    return np.array(seg_from, np.int64), np.array(seg_mask, np.uint64)
