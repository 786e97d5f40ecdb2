"""A broken catalog is refused with CatalogError listing every problem, each with its path."""

from pathlib import Path

import pytest
import yaml

from ratecycle.cli import main
from rules import CatalogError, load_catalog

GOOD = {
    "catalog": 1,
    "currency": "EUR",
    "decks": {"intl": {"file": "intl.csv"}},
    "plans": [
        {
            "id": "main",
            "default": True,
            "taxes": [{"name": "VAT", "rate": "0.20"}],
            "charges": [
                {"service": "voice", "deck": "intl", "per": "minute", "increments": "60/60"},
                {"service": "sms", "rate": "0.05", "per": "message"},
            ],
        }
    ],
}
GOOD_DECK = "prefix,destination,rate\n44,UK,0.10\n33,France,0.12\n"


def write_catalog(folder: Path, doc, decks: dict[str, str] | None = None) -> Path:
    for name, text in (decks if decks is not None else {"intl.csv": GOOD_DECK}).items():
        (folder / name).write_text(text)
    path = folder / "catalog.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def problems_of(path: Path) -> list[tuple[str, str]]:
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    return [(p.where, p.what) for p in info.value.problems]


def has(problems, where: str, *words: str) -> bool:
    return any(w == where and all(word in what for word in words) for w, what in problems)


def test_a_good_catalog_loads_with_its_decks(tmp_path):
    catalog = load_catalog(write_catalog(tmp_path, GOOD))
    assert catalog.currency == "EUR"
    assert catalog.default_plan.id == "main"
    assert catalog.decks["intl"]["prefix"].to_list() == ["44", "33"]
    assert catalog.decks["intl"]["rate_nanos"].to_list() == [100_000_000, 120_000_000]


def test_the_digest_changes_when_a_deck_changes(tmp_path):
    path = write_catalog(tmp_path, GOOD)
    before = load_catalog(path).digest
    assert load_catalog(path).digest == before
    (tmp_path / "intl.csv").write_text(GOOD_DECK.replace("0.12", "0.13"))
    assert load_catalog(path).digest != before


# --- each problem on its own names its path ---------------------------------------------------

def charge(i: int, **changes):
    def edit(doc):
        doc["plans"][0]["charges"][i].update(changes)
    return edit


def field(*keys, value):
    def edit(doc):
        target = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


def add_charge(**new):
    def edit(doc):
        doc["plans"][0]["charges"].append(new)
    return edit


def add_default_plan(doc):
    doc["plans"].append({"id": "other", "default": True,
                         "charges": [{"service": "sms", "rate": "0.01", "per": "message"}]})


@pytest.mark.parametrize(
    ("edit", "where", "words"),
    [
        (charge(1, per="mesage"), "plans[0].charges[1].per",
         ("unknown unit 'mesage'", "did you mean 'message'?")),
        (charge(1, per="fortnight"), "plans[0].charges[1].per",
         ("unknown unit 'fortnight'", "use one of")),
        (field("currency", value="EUX"), "currency", ("unknown currency 'EUX'", "'EUR'")),
        (charge(1, rate="-0.05"), "plans[0].charges[1].rate", ("negative",)),
        (charge(1, rate=0.05), "plans[0].charges[1].rate", ("('0.05')", "YAML float")),
        (field("plans", 0, "taxes", 0, "rate", value=0.2), "plans[0].taxes[0].rate",
         ("YAML float",)),
        (charge(0, connect_fee="0.0000000001"), "plans[0].charges[0].connect_fee",
         ("more than 9 decimal places",)),
        (charge(0, deck="intll"), "plans[0].charges[0].deck",
         ("no deck 'intll'", "did you mean 'intl'?")),
        (add_charge(service="sms", rate="0.01", per="message"), "plans[0].charges[2].service",
         ("'sms' is already priced by charges[1]",)),
        (add_default_plan, "plans", ("2 plans say default: true", "plans[0]", "plans[1]")),
        (charge(1, per="MB"), "plans[0].charges[1].per", ("'MB' measures data, not sms",)),
        (charge(0, increments="60-60"), "plans[0].charges[0].increments", ("60/60",)),
        (field("timezone", value="Europe/Pariss"), "timezone", ("unknown time zone",)),
    ],
)
def test_single_problem_is_named_by_its_catalog_path(tmp_path, edit, where, words):
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    edit(doc)
    problems = problems_of(write_catalog(tmp_path, doc))
    assert len(problems) == 1, problems
    assert has(problems, where, *words), problems


@pytest.mark.parametrize(
    ("deck", "line", "words"),
    [
        ("prefix,destination,rate\n44,UK,0.10\n4a4,Bad,0.10\n", 3, ("'4a4' must be digits",)),
        ("prefix,destination,rate\n44,UK,zero\n", 2, ("'zero' is not a decimal number",)),
        ("prefix,destination,rate\n44,UK,-0.1\n", 2, ("negative",)),
        ("prefix,destination,rate\n44,UK,0.10\n33,FR,0.1\n44,UK2,0.2\n", 4,
         ("'44' appears again", ":2")),
        ("prefix,destination,rate,increments\n44,UK,0.10,60-60\n", 2, ("60/60",)),
        ("prefix,destination,rate,effective_from\n44,UK,0.10,tomorrow\n", 2, ("'tomorrow'",)),
    ],
)
def test_deck_problems_name_file_and_line(tmp_path, deck, line, words):
    problems = problems_of(write_catalog(tmp_path, GOOD, {"intl.csv": deck}))
    assert len(problems) == 1, problems
    assert has(problems, f"{tmp_path / 'intl.csv'}:{line}", *words), problems


def test_deck_row_with_too_many_fields_is_refused_naming_file_and_line(tmp_path):
    deck = "prefix,destination,rate\n44,UK,0,1\n"  # a decimal comma in a comma-separated deck
    problems = problems_of(write_catalog(tmp_path, GOOD, {"intl.csv": deck}))
    assert problems == [(f"{tmp_path / 'intl.csv'}:2", "4 fields; the header has 3")]


def test_unknown_deck_column_is_refused_naming_the_file(tmp_path):
    deck = "prefix,destination,rate,colour\n44,UK,0.10,red\n"
    problems = problems_of(write_catalog(tmp_path, GOOD, {"intl.csv": deck}))
    assert len(problems) == 1
    assert has(problems, str(tmp_path / "intl.csv"), "unknown columns ['colour']")


def test_missing_deck_columns_are_named(tmp_path):
    deck = "code,destination\n44,UK\n"
    problems = problems_of(write_catalog(tmp_path, GOOD, {"intl.csv": deck}))
    assert has(problems, str(tmp_path / "intl.csv"), "missing columns ['prefix', 'rate']")


def test_versions_of_one_prefix_are_allowed_but_not_twice_at_the_same_instant(tmp_path):
    deck = ("prefix,destination,rate,effective_from\n"
            "44,UK,0.10,\n44,UK,0.20,2026-01-01T00:00:00Z\n44,UK,0.30,2026-01-01T01:00:00+01:00\n")
    problems = problems_of(write_catalog(tmp_path, GOOD, {"intl.csv": deck}))
    assert len(problems) == 1
    assert has(problems, f"{tmp_path / 'intl.csv'}:4", "appears again", "same effective_from")


def test_missing_deck_file_is_named(tmp_path):
    problems = problems_of(write_catalog(tmp_path, GOOD, {}))
    assert len(problems) == 1
    assert has(problems, "decks.intl.file", "no such file", str(tmp_path / "intl.csv"))


def test_not_yaml_and_not_a_mapping_are_refused_naming_the_file(tmp_path):
    path = write_catalog(tmp_path, "plans: [unclosed\n")
    assert problems_of(path)[0][0] == str(path)
    path.write_text("- just\n- a list\n")
    assert problems_of(path) == [("(top)", "a catalog is a YAML mapping")]


# --- every problem at once ---------------------------------------------------------------------

BROKEN = """\
catalog: 1
currency: EUX
decks:
  intl: {file: intl.csv}
  gone: {file: missing.csv}
  premium: {file: premium.csv}
  wide: {file: wide.csv}
plans:
  - id: main
    default: true
    taxes: [{name: VAT, rate: 0.20}]
    charges:
      - {service: voice, deck: intl, per: minute}
      - {service: sms, rate: "0.05", per: mesage}
      - {service: data, rate: "-0.01", per: MB}
      - {service: sms, rate: "0.04", per: message}
      - {service: premium, deck: premum, per: minute}
  - id: second
    default: true
    charges:
      - {service: voice, deck: gone, per: minute}
      - {service: video, deck: wide, per: minute}
"""
BROKEN_DECKS = {
    "intl.csv": "prefix,destination,rate\n44,UK,0.10\n4a,Bad,0.10\n33,France,zero\n"
                "44,UK again,0.20\n",
    "premium.csv": "prefix,destination,rate\n900,Premium,1.50\n",
    "wide.csv": "prefix,destination,rate,colour\n1,US,0.01,red\n",
}


def expected_problems(folder: Path) -> list[tuple[str, tuple[str, ...]]]:
    deck = folder / "intl.csv"
    return [
        ("currency", ("unknown currency 'EUX'",)),
        ("plans[0].taxes[0].rate", ("YAML float",)),
        ("plans[0].charges[1].per", ("did you mean 'message'?",)),
        ("plans[0].charges[2].rate", ("negative",)),
        ("plans[0].charges[3].service", ("'sms' is already priced by charges[1]",)),
        ("plans[0].charges[4].deck", ("no deck 'premum'", "did you mean 'premium'?")),
        ("plans", ("2 plans say default: true",)),
        ("decks.gone.file", ("no such file",)),
        (f"{deck}:3", ("'4a' must be digits",)),
        (f"{deck}:4", ("'zero' is not a decimal number",)),
        (f"{deck}:5", ("'44' appears again",)),
        (str(folder / "wide.csv"), ("unknown columns ['colour']",)),
    ]


def test_a_broken_catalog_lists_every_problem_at_once(tmp_path):
    problems = problems_of(write_catalog(tmp_path, BROKEN, BROKEN_DECKS))
    missing = [(where, words) for where, words in expected_problems(tmp_path)
               if not has(problems, where, *words)]
    assert missing == [], f"not reported: {missing}\nreported: {problems}"


def test_catalog_check_prints_every_problem_without_a_traceback(tmp_path, capsys):
    path = write_catalog(tmp_path, BROKEN, BROKEN_DECKS)
    assert main(["catalog", "check", str(path)]) != 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    assert str(path) in err
    missing = [f"{where}: {words}" for where, words in expected_problems(tmp_path)
               if not any(f"{where}: " in line and all(w in line for w in words)
                          for line in err.splitlines())]
    assert missing == [], err


def test_catalog_check_of_field_problems_exits_non_zero_with_paths(tmp_path, capsys):
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    doc["currency"] = "EUX"
    doc["plans"][0]["charges"][1]["per"] = "mesage"
    path = write_catalog(tmp_path, doc)
    assert main(["catalog", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "2 catalog problem(s)" in err
    assert "  - currency: unknown currency 'EUX'; did you mean 'EUR'?" in err
    assert "  - plans[0].charges[1].per: unknown unit 'mesage'; did you mean 'message'?" in err


def test_catalog_check_of_a_good_catalog_prints_ok(tmp_path, capsys):
    path = write_catalog(tmp_path, GOOD)
    assert main(["catalog", "check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"{path}: ok (1 plans, 1 decks, 2 deck rows" in out


def test_catalog_check_of_a_missing_file_names_it(tmp_path, capsys):
    assert main(["catalog", "check", str(tmp_path / "nope.yaml")]) == 1
    err = capsys.readouterr().err
    assert "nope.yaml: cannot read" in err
    assert "Traceback" not in err


def test_plan_and_deck_problems_are_listed_together(tmp_path):
    # Without field-level errors: semantic checks and every deck are still all reported.
    valid_fields = (BROKEN.replace("EUX", "EUR").replace("rate: 0.20", 'rate: "0.20"')
                    .replace("mesage", "message").replace('"-0.01"', '"0.01"'))
    problems = problems_of(write_catalog(tmp_path, valid_fields, BROKEN_DECKS))
    field_level = {"currency", "plans[0].taxes[0].rate", "plans[0].charges[1].per",
                   "plans[0].charges[2].rate"}
    expected = [(w, words) for w, words in expected_problems(tmp_path) if w not in field_level]
    assert [(w, words) for w, words in expected if not has(problems, w, *words)] == []
    assert len(problems) == len(expected)


def test_a_misspelt_key_is_named_with_the_closest_known_one(tmp_path):
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    doc["plans"][0]["charges"][1]["servce"] = doc["plans"][0]["charges"][1].pop("service")
    doc["plans"][0]["taxes"][0]["jurisdiction"] = ["GB"]
    doc["colour"] = "red"
    problems = problems_of(write_catalog(tmp_path, doc))
    assert ("plans[0].charges[1].servce", "unknown key; did you mean 'service'?") in problems
    assert ("plans[0].taxes[0].jurisdiction",
            "unknown key; did you mean 'jurisdictions'?") in problems
    assert ("colour", "unknown key") in problems  # nothing close: no guess
