"""Bad tariffs are refused with the file, the row and the reason.

A small valid CGRateS tariff plan is written to a temporary folder and one thing is broken
in it at a time: `rules.import_cgrates` raises TariffPlanImportError (or CatalogError, for
a plan whose CSVs read but whose catalog is refused) whose problem names
`<File>.csv:<line>` (1-based physical line; the header is line 1) and says what is wrong, and
`ratecycle catalog import-cgrates` exits 1 with that message on stderr, no traceback, and no
catalog written. The native catalog refuses overlapping slots of a named rate by its path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ratecycle.cli import main
from rules import CatalogError, TariffPlanImportError, import_cgrates, load_catalog

VALID_TP = {
    "Destinations": """\
#Id,Prefix
DST_1002,1002
DST_FS,10
""",
    "Rates": """\
#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart
RT_20CNT,0.4,0.2,60s,60s,0s
RT_20CNT,0,0.1,60s,1s,60s
RT_10CNT,0.2,0.1,60s,60s,0s
RT_10CNT,0,0.05,60s,1s,60s
""",
    "DestinationRates": """\
#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy
DR_1002_20CNT,DST_1002,RT_20CNT,*up,4,0,
DR_FS_10CNT,DST_FS,RT_10CNT,*up,4,0,
""",
    "Timings": """\
#Tag,Years,Months,MonthDays,WeekDays,Time
PEAK,*any,*any,*any,1;2;3;4;5,08:00:00
OFFPEAK_MORNING,*any,*any,*any,1;2;3;4;5,00:00:00
""",
    "RatingPlans": """\
#Id,DestinationRatesId,TimingTag,Weight
RP_RETAIL,DR_1002_20CNT,PEAK,10
RP_RETAIL,DR_FS_10CNT,OFFPEAK_MORNING,10
""",
    "RatingProfiles": """\
#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject
cgrates.org,call,*any,2014-01-14T00:00:00Z,RP_RETAIL,
""",
}


def write_tp(folder: Path, **replace: str) -> Path:
    """The valid tariff plan with some lines replaced: ``Rates="3=RT_X,..."`` replaces line 3
    of Rates.csv (a line number one past the end appends)."""
    tp = folder / "tp"
    tp.mkdir()
    for name, text in VALID_TP.items():
        lines = text.splitlines()
        for edit in filter(None, replace.get(name, "").split("\n")):
            number, _, line = edit.partition("=")
            index = int(number) - 1
            if index == len(lines):
                lines.append(line)
            else:
                lines[index] = line
        (tp / f"{name}.csv").write_text("\n".join(lines) + "\n")
    return tp


def refused(tp: Path, out: Path) -> list[tuple[str, str]]:
    with pytest.raises((TariffPlanImportError, CatalogError)) as info:
        import_cgrates(tp, out, currency="EUR")
    return [(p.where, p.what) for p in info.value.problems]


def test_the_valid_tariff_plan_imports(tmp_path):
    catalog = import_cgrates(write_tp(tmp_path), tmp_path / "catalog.yaml", currency="EUR")
    assert set(catalog.model.rates) == {"DR_1002_20CNT", "DR_FS_10CNT"}
    assert [s.from_ for s in catalog.model.rates["DR_1002_20CNT"].slots] == [0, 60]


# (id, replacements, file:line that must be named, words the reason must hold)
BROKEN = [
    ("overlapping-slots", {"Rates": "6=RT_20CNT,0,0.05,60s,1s,60s"}, "Rates.csv:6",
     ["overlap"]),
    ("overlapping-slots-other-spelling", {"Rates": "6=RT_20CNT,0,0.05,60s,1s,1m"},
     "Rates.csv:6", ["overlap"]),
    ("overlapping-first-slot", {"Rates": "6=RT_10CNT,0.1,0.3,60s,60s,0s"}, "Rates.csv:6",
     ["overlap"]),
    ("unknown-destination-id", {"DestinationRates": "3=DR_FS_10CNT,DST_NOPE,RT_10CNT,*up,4,0,"},
     "DestinationRates.csv:3", ["DST_NOPE"]),
    ("negative-rate", {"Rates": "4=RT_10CNT,0.2,-0.1,60s,60s,0s"}, "Rates.csv:4",
     ["negative"]),
    ("negative-connect-fee", {"Rates": "4=RT_10CNT,-0.2,0.1,60s,60s,0s"}, "Rates.csv:4",
     ["negative"]),
    ("unknown-rate-unit", {"Rates": "2=RT_20CNT,0.4,0.2,60x,60s,0s"}, "Rates.csv:2", ["60x"]),
    ("unknown-increment-unit", {"Rates": "3=RT_20CNT,0,0.1,60s,1ms,60s"}, "Rates.csv:3",
     ["1ms"]),
    ("unreadable-time", {"Timings": "2=PEAK,*any,*any,*any,1;2;3;4;5,25:99"}, "Timings.csv:2",
     ["25:99"]),
    ("time-out-of-range", {"Timings": "2=PEAK,*any,*any,*any,1;2;3;4;5,25:99:00"},
     "Timings.csv:2", ["25:99:00"]),
    ("weekday-9", {"Timings": "3=OFFPEAK_MORNING,*any,*any,*any,1;2;9,00:00:00"},
     "Timings.csv:3", ["9"]),
    ("weekday-not-a-number", {"Timings": "3=OFFPEAK_MORNING,*any,*any,*any,mon,00:00:00"},
     "Timings.csv:3", ["mon"]),
    ("month-13", {"Timings": "3=OFFPEAK_MORNING,*any,13,*any,*any,00:00:00"},
     "Timings.csv:3", ["13"]),
    ("year-not-a-number", {"Timings": "3=OFFPEAK_MORNING,20x4,*any,*any,*any,00:00:00"},
     "Timings.csv:3", ["years", "'20x4' is not a whole number"]),
    ("weight-not-a-number", {"RatingPlans": "3=RP_RETAIL,DR_FS_10CNT,OFFPEAK_MORNING,high"},
     "RatingPlans.csv:3", ["weight", "'high' is not a whole number"]),
    ("unreadable-activation-time",
     {"RatingProfiles": "2=cgrates.org,call,*any,yesterday,RP_RETAIL,"}, "RatingProfiles.csv:2",
     ["yesterday"]),
]


def test_a_row_refers_to_a_refused_row_as_refused_not_unknown(tmp_path):
    """A DestinationRates row refused for its destination: the RatingPlans row that uses it
    says it was refused above, not that it does not exist."""
    tp = write_tp(tmp_path, DestinationRates="3=DR_FS_10CNT,DST_NOPE,RT_10CNT,*up,4,0,")
    problems = refused(tp, tmp_path / "catalog.yaml")
    assert [(w.rsplit("/", 1)[-1], what) for w, what in problems] == [
        ("DestinationRates.csv:3", "unknown destination id 'DST_NOPE'"),
        ("RatingPlans.csv:3", "destination rates id 'DR_FS_10CNT' was refused (above)"),
    ]


@pytest.mark.parametrize(("replace", "where", "words"), [b[1:] for b in BROKEN],
                         ids=[b[0] for b in BROKEN])
def test_import_names_file_row_and_reason(tmp_path, replace, where, words):
    tp = write_tp(tmp_path, **replace)
    problems = refused(tp, tmp_path / "catalog.yaml")
    named = [what for w, what in problems if w.endswith(where)]
    assert named, f"no problem names {where}: {problems}"
    assert any(all(word in what for word in words) for what in named), problems
    assert not (tmp_path / "catalog.yaml").exists()


@pytest.mark.parametrize(("replace", "where", "words"), [b[1:] for b in BROKEN],
                         ids=[b[0] for b in BROKEN])
def test_cli_exits_1_with_the_message_and_no_traceback(tmp_path, capsys, replace, where,
                                                       words):
    tp = write_tp(tmp_path, **replace)
    out = tmp_path / "catalog.yaml"
    code = main(["catalog", "import-cgrates", str(tp), "--currency", "EUR", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert "error" in err
    lines = [line for line in err.splitlines() if where in line]
    assert lines, err
    assert any(all(word in line for word in words) for line in lines), err
    assert not out.exists()


# --- native catalog: slots of a named rate ---------------------------------------------------

def native(slots: list[dict]) -> dict:
    return {
        "catalog": 1,
        "currency": "EUR",
        "rates": {"two_stage": {"slots": slots}},
        "plans": [{"id": "p", "default": True,
                   "charges": [{"service": "voice", "rate_id": "two_stage"}]}],
    }


def slot(start: int, increment: int) -> dict:
    return {"from": start, "rate": "0.006", "per": "minute", "increment": increment}


def test_native_named_rate_with_ordered_slots_loads(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(native([slot(0, 30), slot(30, 6)])))
    assert [s.from_ for s in load_catalog(path).model.rates["two_stage"].slots] == [0, 30]


@pytest.mark.parametrize("slots", [
    [slot(0, 30), slot(30, 6), slot(30, 1)],  # two slots from 30
    [slot(0, 30), slot(60, 6), slot(30, 1)],  # from 30 after from 60
    [slot(0, 30), slot(0, 6)],  # two first slots
], ids=["same-from", "from-goes-back", "two-first-slots"])
def test_native_overlapping_slots_are_refused_with_the_catalog_path(tmp_path, capsys, slots):
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(native(slots), sort_keys=False))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    problems = [(p.where, p.what) for p in info.value.problems]
    assert any(w.startswith("rates.two_stage") and "overlap" in what for w, what in problems), \
        problems
    assert main(["catalog", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert any("rates.two_stage" in line and "overlap" in line for line in err.splitlines()), err
