"""`ratecycle catalog import-cgrates`: a CGRateS tariff plan folder becomes a native catalog.

Destinations, Rates, DestinationRates, Timings, RatingPlans and RatingProfiles map onto
the native catalog as follows:

- each DestinationRate becomes a named rate (its Rates' slots, its rounding of the event
  total, its maximum cost: ``*free`` caps, ``*disconnect`` flags);
- each Timing becomes a band in the given zone, in force from its start time to the end
  of the day; ``*any`` is a band in force at every time;
- each RatingPlan becomes a plan whose deck binds every prefix of every destination to a
  rate in a band, with the binding's weight (higher weight wins, then the latest start);
- each RatingProfile becomes a profile (tenant, category, subject, activation, fallbacks);
- the rounding profile is ``cgrates`` with the global rounding decimals G.

A rate unit or increment with ``s``/``m``/``h`` is time in seconds; a bare integer is a
count of units (bytes, messages). Every problem is reported with its file and row.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path

import yaml

from .catalog import Catalog, _clock, publish_catalog
from .errors import Problem, TariffPlanImportError
from .money import MoneyError, to_nanos

FILES = ("Destinations", "Rates", "DestinationRates", "Timings", "RatingPlans",
         "RatingProfiles")
ANY = "*any"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_METHODS = {"*up": "up", "*down": "down", "*middle": "half_up"}
_POLICIES = {"*free": "cap", "*disconnect": "flag"}


def _rows(folder: Path, name: str, problems: list[Problem]):
    """(line, {column: text}) of a CGRateS CSV; the header line starts with '#'."""
    path = folder / f"{name}.csv"
    if not path.is_file():
        if name in ("Destinations", "Timings"):
            return []  # a plan may bind only *any destinations at *any time
        problems.append(Problem(str(path), f"missing; a tariff plan needs {name}.csv"))
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    header = None
    out = []
    for number, cells in enumerate(lines, start=1):
        if not cells or all(not c.strip() for c in cells):
            continue
        if header is None:
            header = [re.sub(r"[^a-z]", "", c.lower()) for c in cells]
            continue
        if len(cells) != len(header):
            problems.append(Problem(f"{path}:{number}", f"{len(cells)} fields; the header has "
                                    f"{len(header)}"))
            continue
        out.append((f"{path}:{number}", dict(zip(header, (c.strip() for c in cells),
                                                  strict=True))))
    return out


def _units(text: str) -> int:
    """'60s', '1m', '1h30m', '10' -> quantity units (seconds, or units when bare)."""
    if text.isdigit():
        return int(text)
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(f"{text!r} is not a unit this importer knows (use 60s, 1m, 1h or a "
                         "whole number of units)")
    h, m, s = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s


def _money(text: str, what: str) -> str:
    nanos = to_nanos(text)
    if nanos < 0:
        raise ValueError(f"{what} {text!r} is negative")
    return text


def _int(text: str, what: str) -> int:
    if not re.fullmatch(r"-?\d+", text.strip()):
        raise ValueError(f"{what} {text!r} is not a whole number")
    return int(text)


def _list(text: str, low: int, high: int, what: str) -> list[int] | None:
    if text in ("", ANY):
        return None
    values = [_int(v, what) for v in text.split(";") if v]
    bad = [v for v in values if not low <= v <= high]
    if bad:
        raise ValueError(f"{what} {bad} out of {low}..{high}")
    return values


def _band(row: dict) -> dict:
    band: dict = {}
    weekdays = _list(row.get("weekdays", ""), 0, 7, "week days")
    if weekdays is not None:
        band["weekdays"] = sorted({d or 7 for d in weekdays})
    for field, key, low, high in (("months", "months", 1, 12), ("monthdays", "month_days", 1, 31),
                                  ("years", "years", 1, 9999)):
        values = _list(row.get(field, ""), low, high, field)
        if values is not None:
            band[key] = values
    clock = row.get("time", "")
    if not re.match(r"^\d{1,2}:\d{2}:\d{2}$", clock) or _clock(clock) >= 86400:
        raise ValueError(f"time {clock!r} is not a time of day hh:mm:ss")
    band["from"] = clock
    return band


def _instant(text: str) -> str:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"activation time {text!r} is not an ISO 8601 instant") from None
    if value.tzinfo is None:
        raise ValueError(f"activation time {text!r} has no UTC offset")
    return text


def import_cgrates(folder: str | Path, out: str | Path, *, currency: str,
                   timezone: str = "UTC", rounding_decimals: int = 5) -> Catalog:
    """Write ``out`` and one deck CSV per rating plan beside it; return the loaded catalog."""
    folder, out = Path(folder), Path(out)
    problems: list[Problem] = []
    if not folder.is_dir():
        raise TariffPlanImportError(str(folder), [Problem(str(folder),
                                                          "not a folder of CGRateS CSVs")])
    rows = {name: _rows(folder, name, problems) for name in FILES}

    destinations: dict[str, list[str]] = {}
    for where, row in rows["Destinations"]:
        prefix = row.get("prefix", "").removeprefix("+")
        if not prefix.isdigit():
            problems.append(Problem(where, f"prefix {row.get('prefix')!r} is not digits"))
            continue
        destinations.setdefault(row.get("id", ""), []).append(prefix)

    slots: dict[str, list[tuple[int, dict, str]]] = {}
    for where, row in rows["Rates"]:
        try:
            unit = _units(row.get("rateunit", ""))
            increment = _units(row.get("rateincrement", ""))
            start = _units(row.get("groupintervalstart", "") or "0")
            if unit < 1 or increment < 1:
                raise ValueError("rate unit and increment must be at least 1")
            slot = {"from": start, "rate": _money(row.get("rate", ""), "rate"), "per": unit,
                    "increment": increment}
            fee = _money(row.get("connectfee", "") or "0", "connect fee")
        except (ValueError, MoneyError) as exc:
            problems.append(Problem(where, str(exc)))
            continue
        existing = slots.setdefault(row.get("id", ""), [])
        if any(s["from"] == start for _, s, _ in existing):
            problems.append(Problem(where, f"slots overlap: rate {row.get('id')!r} already has "
                                    f"a slot starting at {start}"))
            continue
        existing.append((start, slot, fee))

    rates: dict[str, dict] = {}
    dr_destination: dict[str, list[str]] = {}
    refused_drs: set[str] = set()
    for where, row in rows["DestinationRates"]:
        dr, dest, tag = row.get("id", ""), row.get("destinationid", ""), row.get("ratestag", "")
        try:
            if dest != ANY and dest not in destinations:
                raise ValueError(f"unknown destination id {dest!r}")
            if tag not in slots:
                raise ValueError(f"unknown rates tag {tag!r}")
            method = _METHODS.get(row.get("roundingmethod", ""))
            if method is None:
                raise ValueError(f"rounding method {row.get('roundingmethod')!r}: use *up, "
                                 "*down or *middle")
            decimals = _int(row.get("roundingdecimals", "") or "0", "rounding decimals")
            if not 0 <= decimals <= 9:
                raise ValueError(f"rounding decimals {decimals} out of 0..9")
            max_cost = _money(row.get("maxcost", "") or "0", "max cost")
            policy = row.get("maxcoststrategy", "")
            if policy and policy not in _POLICIES:
                raise ValueError(f"max cost strategy {policy!r}: use *free or *disconnect")
        except (ValueError, MoneyError) as exc:
            problems.append(Problem(where, str(exc)))
            refused_drs.add(dr)
            continue
        ordered = sorted(slots[tag], key=lambda s: s[0])
        rate = {"connect_fee": ordered[0][2], "slots": [s for _, s, _ in ordered],
                "total_rounding": {"method": method, "decimals": decimals}}
        if to_nanos(max_cost) > 0 and policy:
            rate.update(max_cost=max_cost, max_cost_policy=_POLICIES[policy])
        rates[dr] = rate
        dr_destination.setdefault(dr, []).append(dest)

    bands: dict[str, dict] = {ANY: {}}
    refused_timings: set[str] = set()
    for where, row in rows["Timings"]:
        try:
            bands[row.get("tag", "")] = _band(row)
        except ValueError as exc:
            problems.append(Problem(where, f"timing {row.get('tag')!r}: {exc}"))
            refused_timings.add(row.get("tag", ""))

    decks: dict[str, list[dict]] = {}
    for where, row in rows["RatingPlans"]:
        dr, timing = row.get("destinationratesid", ""), row.get("timingtag", "")
        try:
            weight = _int(row.get("weight", "") or "0", "weight")
            if dr in refused_drs:
                raise ValueError(f"destination rates id {dr!r} was refused (above)")
            if dr not in rates:
                raise ValueError(f"unknown destination rates id {dr!r}")
            if timing in refused_timings:
                raise ValueError(f"timing tag {timing!r} was refused (above)")
            if timing not in bands:
                raise ValueError(f"unknown timing tag {timing!r}")
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        deck = decks.setdefault(row.get("id", ""), [])
        for dest in dr_destination[dr]:
            for prefix in destinations.get(dest, [""]):
                deck.append({"prefix": prefix, "destination": dest, "rate_id": dr,
                             "band": timing, "weight": weight})

    profiles = []
    for where, row in rows["RatingProfiles"]:
        plan = row.get("ratingplanid", "")
        if plan not in decks:
            problems.append(Problem(where, f"unknown rating plan {plan!r}"))
            continue
        try:
            activation = _instant(row.get("activationtime", ""))
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        profiles.append({
            "tenant": row.get("tenant") or ANY, "category": row.get("category") or ANY,
            "subject": row.get("subject") or ANY, "from": activation,
            "plan": plan,
            "fallback": [s for s in row.get("ratesfallbacksubject", "").split(";") if s],
        })
    if problems:
        raise TariffPlanImportError(str(folder), problems)

    files: dict[str, str] = {}
    deck_refs = {}
    for plan, deck in decks.items():
        name = f"{out.stem}.{plan}.csv"
        text = io.StringIO()
        writer = csv.DictWriter(text, ["prefix", "destination", "rate_id", "band", "weight"])
        writer.writeheader()
        writer.writerows(deck)
        files[name] = text.getvalue()
        deck_refs[plan] = {"file": name}
    used = {r["band"] for deck in decks.values() for r in deck}
    doc = {
        "catalog": 1,
        "name": f"imported from CGRateS tariff plan {folder.name}",
        "currency": currency,
        "timezone": timezone,
        "rounding": {"profile": "cgrates", "decimals": rounding_decimals},
        "bands": {name: band for name, band in bands.items() if name in used},
        "rates": rates,
        "decks": deck_refs,
        "plans": [{"id": plan, "charges": [{"service": s, "deck": plan}
                                           for s in ("voice", "sms", "data")]}
                  for plan in decks],
        "profiles": profiles,
    }
    files[out.name] = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return publish_catalog(files, out)
