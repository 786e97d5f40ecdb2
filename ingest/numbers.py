"""Normalising dialled numbers to international digits (E.164 without the '+').

The rules are the user's: the home country's calling code, the international access
codes, PBX outside-line prefixes, and how long an internal extension can be. A number
that is not made of digits (an APN, a name, Asterisk's ``s`` extension) is kept as it is
and simply matches no prefix when rated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import polars as pl

_SEPARATORS = re.compile(r"[\s\-()]")
_DIALLED = re.compile(r"^\+?[0-9]+$")

# What `normalise` found. `internal` and `ambiguous` numbers are never priced.
INTERNATIONAL = "international"
INTERNAL = "internal"
AMBIGUOUS = "ambiguous"
OTHER = "other"


@dataclass(frozen=True)
class NumberPlan:
    """How the switch's users dial.

    ``country`` is the home calling code ("1", "44"); national numbers are completed
    with it (a leading trunk ``0``, or in the North American plan ten digits or ``1`` +
    ten digits). ``access_codes`` default to ``011`` in country 1 and ``00`` elsewhere.
    ``dial_prefixes`` are outside-line digits (``8``, ``9``) dropped only when what
    follows them is a full number.
    """

    country: str | None = None
    access_codes: tuple[str, ...] | None = None
    dial_prefixes: tuple[str, ...] = ()
    internal_max_digits: int = 5
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.country is not None and not self.country.isdigit():
            raise ValueError(f"country must be a calling code of digits, got {self.country!r}")
        if self.access_codes is None:
            object.__setattr__(self, "access_codes", ("011",) if self.country == "1" else ("00",))
        for p in (*self.access_codes, *self.dial_prefixes):
            if not p.isdigit():
                raise ValueError(f"access codes and dial prefixes are digits, got {p!r}")

    def _full(self, digits: str) -> str | None:
        """The international form of a complete number, or None if it is not one."""
        for code in self.access_codes:
            if digits.startswith(code):
                # after an access code comes an international number, never a national one
                rest = digits[len(code) :]
                return rest if len(rest) > self.internal_max_digits else None
        if self.country == "1":
            if len(digits) == 11 and digits[0] == "1":
                return digits
            if len(digits) == 10 and digits[0] in "23456789":
                return "1" + digits
        elif self.country and digits.startswith("0") and len(digits) > self.internal_max_digits + 1:
            return self.country + digits[1:]
        return None

    def normalise(self, raw: str | None) -> tuple[str | None, str]:
        """Return (number, kind) with kind one of international, internal, other."""
        if raw is None:
            return None, OTHER
        cached = self._cache.get(raw)
        if cached is not None:
            return cached
        text = _SEPARATORS.sub("", raw)
        if not _DIALLED.match(text):
            result = (raw.strip(), OTHER)
        elif text.startswith("+"):
            result = (text[1:], INTERNATIONAL)
        elif len(text) <= self.internal_max_digits:
            result = (text, INTERNAL)
        else:
            full = self._full(text)
            prefixed = [p for p in self.dial_prefixes if text.startswith(p)]
            for prefix in prefixed:
                full = full or self._full(text[len(prefix) :])
            if full is not None:
                result = (full, INTERNATIONAL)
            elif prefixed:
                # An outside-line digit before something that is not a full number (9 then
                # 0041... in country 1, as toll-fraud scanners dial): read as it stands it
                # would be priced as another country (90 Turkey), so it is never priced.
                result = (text, AMBIGUOUS)
            else:
                # A long number that matches no national rule is taken as already
                # international, which is how most switches log E.164 numbers without '+'.
                result = (text, INTERNATIONAL)
        self._cache[raw] = result
        return result

    def normalise_column(self, column: pl.Series) -> tuple[pl.Series, pl.Series]:
        """Normalise a String series; returns (numbers, kinds). Works on distinct values."""
        distinct = column.drop_nulls().unique()
        numbers, kinds = {}, {}
        for raw in distinct.to_list():
            numbers[raw], kinds[raw] = self.normalise(raw)
        number = column.replace_strict(numbers, default=None, return_dtype=pl.String)
        kind = column.replace_strict(kinds, default=OTHER, return_dtype=pl.String)
        return number.alias(column.name), kind.alias(f"{column.name}_kind")
