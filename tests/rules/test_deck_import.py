"""Importing a carrier's rate deck: header recognition, decimal commas, errors by file:line."""

from decimal import Decimal

import pytest

from ratecycle.cli import main
from rules import DeckImportError, import_deck
from rules.deck import import_carrier_deck, recognise_header

# The first rows of the real Asterisell example deck (data/real), verbatim.
ASTERISELL = '''\
"DESTINATION","PREFIX","RATE"
"AeroMobile - GSM aircraft",88299,"1,9989"
"Afghanistan",93,"0,1175"
"Afghanistan Mobile",937,"0,1175"
"United Kingdom - Freephone",4450,"0,0121"
'''
SEMICOLONS = """\
Destination;Prefix;Rate per minute;Connect fee
UK Mobile;447;0,1175;0,05
UK;44;0,02;
France;33;1.000,5;0
"""


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (["Destination", "Prefix", "Rate per minute", "Connect fee"],
         {"destination": 0, "prefix": 1, "rate": 2, "connect_fee": 3}),
        (["DESTINATION", "PREFIX", "RATE"], {"destination": 0, "prefix": 1, "rate": 2}),
        (["Dial Code", "Country", "Price/min", "Billing Increment", "Effective Date"],
         {"prefix": 0, "destination": 1, "rate": 2, "increments": 3, "effective_from": 4}),
        (["\ufeffdest", "code", "cost"], {"destination": 0, "prefix": 1, "rate": 2}),
        (["Land", "Vorwahl", "Preis"], {}),
    ],
)
def test_recognise_header(header, expected):
    assert recognise_header(header) == expected


def test_semicolon_deck_with_decimal_commas(tmp_path):
    path = tmp_path / "carrier.csv"
    path.write_text(SEMICOLONS)
    table = import_carrier_deck(path)
    assert table["prefix"].to_list() == ["447", "44", "33"]
    assert table["destination"].to_list() == ["UK Mobile", "UK", "France"]
    assert table["rate_nanos"].to_list() == [117_500_000, 20_000_000, 1_000_500_000_000]
    assert table["connect_nanos"].to_list() == [50_000_000, None, 0]


def test_real_asterisell_rows_with_quoted_decimal_commas(tmp_path):
    path = tmp_path / "asterisell.csv"
    path.write_text(ASTERISELL)
    table = import_carrier_deck(path)
    assert table["prefix"].to_list() == ["88299", "93", "937", "4450"]
    assert table["rate_nanos"].to_list() == [1_998_900_000, 117_500_000, 117_500_000, 12_100_000]


def test_unrecognisable_header_is_refused_naming_file_and_line_1(tmp_path):
    path = tmp_path / "german.csv"
    path.write_text("Land;Vorwahl;Preis\nUK;44;0,1\n")
    with pytest.raises(DeckImportError) as info:
        import_carrier_deck(path)
    (problem,) = info.value.problems
    assert problem.where == f"{path}:1"
    assert "no column recognised" in problem.what
    assert "Vorwahl" in problem.what


def test_bad_rows_are_all_named_by_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("Destination;Prefix;Rate\nUK;44;0,1\n\nX;4x;0,1\nY;45;zz\nZ;46;-0,1\n")
    with pytest.raises(DeckImportError) as info:
        import_carrier_deck(path)
    where = {p.where: p.what for p in info.value.problems}
    # line 3 is blank and skipped, yet later rows keep their own line numbers
    assert set(where) == {f"{path}:4", f"{path}:5", f"{path}:6"}
    assert "'4x' must be digits" in where[f"{path}:4"]
    assert "'zz' is not a decimal number" in where[f"{path}:5"]
    assert "negative" in where[f"{path}:6"]
    assert "nothing was imported" in str(info.value)


def test_import_deck_writes_a_catalog_that_loads_back_exactly(tmp_path):
    deck = tmp_path / "carrier.csv"
    deck.write_text(SEMICOLONS)
    out = tmp_path / "out" / "catalog.yaml"
    catalog = import_deck(deck, out, currency="EUR", increments="60/60", tax="0.20")
    assert out.is_file()
    assert (tmp_path / "out" / "catalog.deck.csv").is_file()
    assert catalog.currency == "EUR"
    plan = catalog.default_plan
    assert [t.rate for t in plan.taxes] == ["0.20"]
    assert plan.charges[0].increments == "60/60"
    table = catalog.decks["carrier"]
    assert table["rate_nanos"].to_list() == [117_500_000, 20_000_000, 1_000_500_000_000]
    assert table["connect_nanos"].to_list() == [50_000_000, None, 0]


def test_cli_import_deck_then_check(tmp_path, capsys):
    deck = tmp_path / "asterisell.csv"
    deck.write_text(ASTERISELL)
    out = tmp_path / "catalog.yaml"
    assert main(["catalog", "import-deck", str(deck), "--currency", "EUR",
                 "--out", str(out)]) == 0
    assert "(4 prefixes, EUR, increments 60/60" in capsys.readouterr().out
    assert main(["catalog", "check", str(out)]) == 0
    assert "ok (1 plans, 1 decks, 4 deck rows" in capsys.readouterr().out
    rates = (tmp_path / "catalog.deck.csv").read_text().splitlines()
    assert rates[0].startswith("prefix,destination,rate")
    assert [Decimal(line.rsplit(",", 1)[1]) for line in rates[1:]] == [
        Decimal("1.9989"), Decimal("0.1175"), Decimal("0.1175"), Decimal("0.0121")]


def test_cli_import_deck_with_a_bad_header_exits_non_zero(tmp_path, capsys):
    deck = tmp_path / "german.csv"
    deck.write_text("Land;Vorwahl;Preis\nUK;44;0,1\n")
    assert main(["catalog", "import-deck", str(deck), "--currency", "EUR",
                 "--out", str(tmp_path / "c.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"{deck}:1" in err
    assert "Traceback" not in err
    assert not (tmp_path / "c.yaml").exists()
