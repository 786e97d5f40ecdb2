"""Catalog mistakes a new user makes: a tax written as a percentage, a key given twice, an
empty deck, a service in capitals, an account without a plan, a spreadsheet's BOM."""

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from ingest.schema import USAGE_SCHEMA
from rating import compile_catalog, rate_batch
from rules import (
    AccountsError,
    CatalogError,
    DeckImportError,
    import_deck,
    load_accounts,
    load_catalog,
)
from rules.units import parse_increments

BOM = "\ufeff"


def catalog_text(charges: str = '{service: sms, rate: "0.05", per: message}',
                 taxes: str = "[]") -> str:
    return f"""\
catalog: 1
currency: EUR
decks:
  intl: {{file: intl.csv}}
plans:
  - id: basic
    default: true
    taxes: {taxes}
    charges:
      - {{service: voice, deck: intl, per: minute, increments: 60/60}}
      - {charges}
"""


def write(folder: Path, catalog: str, deck: str = "prefix,destination,rate\n44,UK,0.10\n"):
    (folder / "intl.csv").write_text(deck, encoding="utf-8")
    (folder / "catalog.yaml").write_text(catalog)
    return folder / "catalog.yaml"


def problems_of(path: Path) -> list[str]:
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    return [str(p) for p in info.value.problems]


# --- tax rates are fractions ------------------------------------------------------------------

@pytest.mark.parametrize("rate", ['"20"', '"20%"', '"1"', '"-0.1"', "20"])
def test_a_tax_rate_is_a_fraction_below_one(rate, tmp_path):
    path = write(tmp_path, catalog_text(taxes=f"[{{name: VAT, rate: {rate}}}]"))
    [problem] = problems_of(path)
    assert problem.startswith("plans[0].taxes[0].rate: ")
    assert "0.20 for 20%" in problem


@pytest.mark.parametrize("rate", ['"0"', '"0.2"', '"0.999"'])
def test_fractions_are_tax_rates(rate, tmp_path):
    path = write(tmp_path, catalog_text(taxes=f"[{{name: VAT, rate: {rate}}}]"))
    assert load_catalog(path).default_plan.taxes[0].rate == rate.strip('"')


# --- a key given twice ------------------------------------------------------------------------

def test_a_key_given_twice_is_refused_with_its_line(tmp_path):
    text = catalog_text(charges='{service: sms, rate: "0.09", rate: "0.00", per: message}')
    text += "currency: USD\n"
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:11: key 'rate' appears twice in one mapping; YAML would keep only the last, "
        "so remove one",
        f"{path}:12: key 'currency' appears twice in one mapping (first at line 2); YAML would "
        "keep only the last, so remove one",
    ]


def test_merge_keys_may_be_overridden(tmp_path):
    text = catalog_text(charges='{<<: *sms, rate: "0.01"}').replace(
        "plans:", 'sms_template: &sms {service: sms, rate: "0.05", per: message}\nplans:')
    path = write(tmp_path, text)
    # the template is an unknown top-level key, and nothing else is wrong
    assert [p.split(":")[0] for p in problems_of(path)] == ["sms_template"]


# --- decks ------------------------------------------------------------------------------------

def test_a_deck_with_a_header_and_no_rows_is_refused(tmp_path):
    path = write(tmp_path, catalog_text(), deck="prefix,destination,rate\n")
    assert problems_of(path) == [f"{tmp_path / 'intl.csv'}: deck has no rows"]


def test_a_carrier_deck_with_no_rows_is_refused_and_nothing_written(tmp_path):
    (tmp_path / "deck.csv").write_text("Destination,Prefix,Rate\n\n")
    with pytest.raises(DeckImportError, match="deck has no rows"):
        import_deck(tmp_path / "deck.csv", tmp_path / "out" / "catalog.yaml", currency="EUR")
    assert not (tmp_path / "out").exists()


def test_import_checks_its_options_before_writing(tmp_path):
    (tmp_path / "deck.csv").write_text("Destination,Prefix,Rate\nUK,44,0.1\n")
    with pytest.raises(DeckImportError) as info:
        import_deck(tmp_path / "deck.csv", tmp_path / "catalog.yaml", currency="XYZ",
                    tax="20", increments="0/0", timezone="Mars/Olympus")
    assert [p.where for p in info.value.problems] == ["currency", "increments", "tax",
                                                       "timezone"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deck.csv"]


def test_a_byte_order_mark_is_not_part_of_a_column_name(tmp_path):
    path = write(tmp_path, catalog_text(), deck=BOM + "prefix,destination,rate\n44,UK,0.10\n")
    assert load_catalog(path).decks["intl"]["prefix"].to_list() == ["44"]
    (tmp_path / "carrier.csv").write_text(BOM + "prefix,destination,rate\n44,UK,0.10\n",
                                          encoding="utf-8")
    catalog = import_deck(tmp_path / "carrier.csv", tmp_path / "imported.yaml", currency="EUR")
    assert catalog.decks["carrier"]["destination"].to_list() == ["UK"]


# --- services and increments ------------------------------------------------------------------

@pytest.mark.parametrize(("service", "known"), [("SMS", "sms"), ("Voice", "voice"),
                                                ("DATA", "data")])
def test_a_known_service_in_other_capitals_is_refused(service, known, tmp_path):
    path = write(tmp_path, catalog_text(
        charges=f'{{service: {service}, rate: "0.05", per: unit}}'))
    assert problems_of(path) == [
        f"plans[0].charges[1].service: unknown service {service!r}; did you mean {known!r}?"]


def test_a_named_service_may_have_capitals(tmp_path):
    path = write(tmp_path, catalog_text(charges='{service: MMS, rate: "0.05", per: unit}'))
    assert load_catalog(path).default_plan.charges[1].service == "MMS"


def test_increments_as_a_yaml_integer_mean_the_same_blocks(tmp_path):
    """`increments: 60` is 60/60, as `--increments 60` is: a 61 s call bills 120 s."""
    path = write(tmp_path, catalog_text().replace("increments: 60/60", "increments: 60"))
    catalog = load_catalog(path)
    assert parse_increments(catalog.default_plan.charges[0].increments) == (60, 60)
    t = datetime(2026, 3, 1, tzinfo=UTC)
    usage = pl.DataFrame({
        "event_id": ["e1"], "subscriber_id": ["S1"], "service": ["voice"], "started_at": [t],
        "quantity": [61], "destination": ["447700900001"],
    }).with_columns(pl.lit(None).cast(d).alias(c) for c, d in USAGE_SCHEMA.items()
                    if c not in ("event_id", "subscriber_id", "service", "started_at",
                                 "quantity", "destination")).select(list(USAGE_SCHEMA))
    rated = rate_batch(usage, catalog, compile_catalog(catalog), None, "r")
    assert rated.select("billed_quantity", "amount").rows() == [(120, Decimal("0.20"))]


# --- accounts ---------------------------------------------------------------------------------

def test_every_bad_account_row_is_reported(tmp_path):
    catalog = load_catalog(write(tmp_path, catalog_text()))
    path = tmp_path / "accounts.csv"
    path.write_text("subscriber_id,plan_id\nS1,\nS2,basic\nS3,gold\n,\nS5,\n")
    with pytest.raises(AccountsError) as info:
        load_accounts(path, catalog)
    assert [(p.where, p.what.split(";")[0]) for p in info.value.problems] == [
        (f"{path}:2", "plan_id is empty"),
        (f"{path}:4", "plan 'gold' is not in the catalog (plans: ['basic'])"),
        (f"{path}:5", "subscriber_id is empty"),
        (f"{path}:5", "plan_id is empty"),
        (f"{path}:6", "plan_id is empty"),
    ]


def test_an_accounts_file_with_a_byte_order_mark_loads(tmp_path):
    catalog = load_catalog(write(tmp_path, catalog_text()))
    path = tmp_path / "accounts.csv"
    path.write_text(BOM + "subscriber_id,plan_id\nS1,basic\n", encoding="utf-8")
    assert load_accounts(path, catalog).plans.rows() == [("S1", "basic")]
