"""Every batch of an output folder is billed again with each run's accounts, so a run
whose use of an accounts file differs from the folder's other batches is refused before
it writes anything; and a demo month is not billed together with another one."""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from ratecycle.cli import main
from ratecycle.demo import run_demo
from ratecycle.job import OutputError

DECK = "destination,prefix,rate\nGermany,49,0.01\n"


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deck.csv").write_text(DECK)
    assert main(["catalog", "import-deck", "deck.csv", "--currency", "EUR",
                 "--out", "catalog/catalog.yaml"]) == 0
    (tmp_path / "accounts.csv").write_text("subscriber_id,plan_id\nS1,default\n")
    for day, night in ((2, "a"), (3, "b")):
        pl.DataFrame({"event_id": [f"{night}-1"], "subscriber_id": ["S1"],
                      "service": ["voice"],
                      "started_at": [datetime(2026, 3, day, 10, tzinfo=UTC)],
                      "quantity": [61], "destination": ["4912345"]})\
            .write_parquet(tmp_path / f"night-{night}.parquet")
    return tmp_path


def run(night: str, accounts: bool) -> int:
    return main(["run", "--format", "parquet", f"night-{night}.parquet", "--catalog",
                 "catalog/catalog.yaml", "--out", "out",
                 *(["--accounts", "accounts.csv"] if accounts else [])])


def batches(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "out" / "runs").iterdir())


@pytest.mark.parametrize(("first", "then", "says"), [
    (True, False, "rated with an accounts file"),
    (False, True, "rated without an accounts file"),
])
def test_a_night_that_uses_accounts_unlike_the_earlier_ones_is_refused(
        folder, capsys, first, then, says):
    assert run("a", accounts=first) == 0
    before = batches(folder)
    bills = (folder / "out" / "bills.duckdb").read_bytes()
    capsys.readouterr()
    assert run("b", accounts=then) == 1
    err = capsys.readouterr().err
    assert says in err and before[0] in err and "--accounts" in err
    assert "Traceback" not in err
    assert batches(folder) == before  # nothing ingested, rated or billed
    assert (folder / "out" / "bills.duckdb").read_bytes() == bills
    assert not list((folder / "out").glob(".staging-*"))


def test_nights_alike_in_accounts_and_a_batch_run_again_are_billed(folder):
    assert run("a", accounts=False) == 0
    assert run("a", accounts=True) == 0  # the only batch, replaced: nothing else to bill
    assert run("b", accounts=True) == 0
    assert len(batches(folder)) == 2


def test_a_demo_of_other_arguments_is_refused_in_a_demo_folder(tmp_path):
    out = tmp_path / "demo"
    run_demo(out, subscribers=20, events=300, quiet=True)
    usage = (out / "input" / "usage.parquet").read_bytes()
    with pytest.raises(OutputError, match="another demo month"):
        run_demo(out, subscribers=30, events=300, quiet=True)
    assert (out / "input" / "usage.parquet").read_bytes() == usage  # input kept
    assert not list(out.glob(".staging-*"))
    run_demo(out, subscribers=20, events=300, quiet=True)  # the same month again: a re-run
    assert len(list((out / "runs").iterdir())) == 1


def test_a_damaged_run_record_of_another_batch_is_named(folder, capsys):
    assert run("a", accounts=True) == 0
    (record,) = (folder / "out" / "runs").glob("*/run.json")
    record.write_text("{bad")
    capsys.readouterr()
    assert run("b", accounts=True) == 1
    err = capsys.readouterr().err
    assert f"{record.parent.name}/run.json cannot be read" in err and "Traceback" not in err
    assert len(batches(folder)) == 1


def test_a_batch_that_fails_leaves_no_staging_behind(folder, capsys):
    (folder / "night-c.parquet").write_bytes(b"PAR1 not really")
    assert run("c", accounts=False) == 1
    assert "night-c.parquet" in capsys.readouterr().err
    assert not list((folder / "out").glob(".staging-*"))
