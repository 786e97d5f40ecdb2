"""Normalising dialled numbers to international digits, as the user's number plan says."""

import polars as pl
import pytest

from ingest import NumberPlan

NANP = NumberPlan(country="1", dial_prefixes=("8", "9"))
UK = NumberPlan(country="44", dial_prefixes=("9",))
NONE = NumberPlan()


@pytest.mark.parametrize(
    ("plan", "raw", "number", "kind"),
    [
        # country 1: ten digits, 1 + ten digits, 011 international access
        (NANP, "2485163351", "12485163351", "international"),
        (NANP, "12485163351", "12485163351", "international"),
        (NANP, "011441245610483", "441245610483", "international"),
        (NANP, "(248) 516-3351", "12485163351", "international"),
        # outside-line digits dropped only before a full number
        (NANP, "812485163351", "12485163351", "international"),
        (NANP, "9011441625251725", "441625251725", "international"),
        (NANP, "82485163351", "12485163351", "international"),
        # an outside-line digit before no full number is never priced as another country
        (NANP, "90041243201477", "90041243201477", "ambiguous"),
        (NANP, "81041244986170", "81041244986170", "ambiguous"),
        (NANP, "981041244986170", "981041244986170", "ambiguous"),
        # ten digits starting 0 or 1 are not a NANP national number: kept as dialled
        (NANP, "0123456789", "0123456789", "international"),
        # country 44: trunk 0, access code 00
        (UK, "02079460000", "442079460000", "international"),
        (UK, "00441234567890", "441234567890", "international"),
        (UK, "0033123456789", "33123456789", "international"),
        (UK, "902079460000", "442079460000", "international"),
        (UK, "020 7946 0000", "442079460000", "international"),
        # '+' always means international
        (UK, "+33 1 23 45 67 89", "33123456789", "international"),
        (NANP, "+441625251725", "441625251725", "international"),
        (NONE, "+1234", "1234", "international"),
        # internal extensions: at most internal_max_digits digits
        (NANP, "1236", "1236", "internal"),
        (UK, "12345", "12345", "internal"),
        (NONE, "500", "500", "internal"),
        # no country: long numbers are taken as already international
        (NONE, "441234567890", "441234567890", "international"),
        (NONE, "00441234567890", "441234567890", "international"),
        # not a dialled number: kept as it is, matches no prefix
        (NANP, "s", "s", "other"),
        (NANP, "internet.apn", "internet.apn", "other"),
        (NANP, " user@example.invalid ", "user@example.invalid", "other"),
        (NANP, "+", "+", "other"),
        (NANP, "12#34", "12#34", "other"),
        (NANP, "", "", "other"),
        (NANP, None, None, "other"),
    ],
)
def test_normalise(plan, raw, number, kind):
    assert plan.normalise(raw) == (number, kind)


@pytest.mark.parametrize(
    ("raw", "max_digits", "expected"),
    [
        ("1234", 4, ("1234", "internal")),
        ("12345", 4, ("12345", "international")),
        ("123456", 6, ("123456", "internal")),
        ("1234567", 6, ("1234567", "international")),
    ],
)
def test_internal_length_is_the_users(raw, max_digits, expected):
    assert NumberPlan(internal_max_digits=max_digits).normalise(raw) == expected


def test_access_codes_default_by_country():
    assert NumberPlan(country="1").access_codes == ("011",)
    assert NumberPlan(country="44").access_codes == ("00",)
    assert NumberPlan().access_codes == ("00",)


def test_declared_access_codes_replace_the_default():
    plan = NumberPlan(country="61", access_codes=("0011",))
    assert plan.normalise("0011441234567890") == ("441234567890", "international")
    assert plan.normalise("0298765432") == ("61298765432", "international")


def test_an_access_code_needs_more_than_an_extension_after_it():
    plan = NumberPlan(country="1")
    assert plan.normalise("011123456") == ("123456", "international")
    assert plan.normalise("01112345") == ("01112345", "international")  # kept as dialled


@pytest.mark.parametrize(
    "kwargs",
    [{"country": "+44"}, {"country": "UK"}, {"access_codes": ("00", "x")},
     {"dial_prefixes": ("9#",)}],
)
def test_invalid_plans_are_refused(kwargs):
    with pytest.raises(ValueError, match="digits"):
        NumberPlan(**kwargs)


def test_normalise_column_works_on_a_series():
    column = pl.Series("destination", ["02079460000", None, "1236", "s", "02079460000"])
    numbers, kinds = UK.normalise_column(column)
    assert numbers.name == "destination"
    assert kinds.name == "destination_kind"
    assert numbers.to_list() == ["442079460000", None, "1236", "s", "442079460000"]
    assert kinds.to_list() == ["international", "other", "internal", "other", "international"]
