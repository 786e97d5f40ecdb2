"""User mistakes on the command line: a bad option value is a usage error (exit 2) naming
the option; a bad combination or path is an error (exit 1); never a traceback."""

from pathlib import Path

import pytest

import ratecycle.cli as cli
from ratecycle.cli import main

DECK = "destination,prefix,rate\nGermany,49,0.01\nFrance,33,\"0,02\"\n"
USAGE = ("event_id,subscriber_id,service,started_at,quantity,destination\n"
         "e1,S1,voice,2026-03-02T10:00:00Z,61,4912345\n")


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """A working folder holding a carrier deck, a catalog made from it and a usage CSV."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deck.csv").write_text(DECK)
    (tmp_path / "usage.csv").write_text(USAGE)
    assert main(["catalog", "import-deck", "deck.csv", "--currency", "EUR",
                 "--out", "catalog/catalog.yaml"]) == 0
    return tmp_path


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


@pytest.mark.parametrize(("argv", "option", "says"), [
    (["catalog", "import-deck", "deck.csv", "--currency", "EUR", "--out", "c.yaml",
      "--increments", "0/0"], "--increments", "at least 1"),
    (["catalog", "import-deck", "deck.csv", "--currency", "EUR", "--out", "c.yaml",
      "--increments", "abc"], "--increments", "must look like 60/60"),
    (["catalog", "import-deck", "deck.csv", "--currency", "EUR", "--out", "c.yaml",
      "--tax", "20%"], "--tax", "0.20 for 20%"),
    (["catalog", "import-deck", "deck.csv", "--currency", "EUR", "--out", "c.yaml",
      "--tax", "20"], "--tax", "0.20 for 20%"),
    (["ingest", "--format", "parquet", "u.parquet", "--out", "o",
      "--as-of", "9999-12-31T23:59:59-12:00"], "--as-of", "out of range"),
    (["demo", "--subscribers", "0"], "--subscribers", "at least 1"),
    (["demo", "--events", "0"], "--events", "at least 1"),
    (["demo", "--events", "-3"], "--events", "at least 1"),
    (["demo", "--workers", "0"], "--workers", "at least 1"),
    (["run", "--format", "parquet", "u.parquet", "--catalog", "c.yaml", "--out", "o",
      "--workers", "-2"], "--workers", "at least 1"),
    (["rate", "--catalog", "c.yaml", "--usage", "u.csv", "--out", "o", "--workers", "0"],
     "--workers", "at least 1"),
    (["ingest", "--format", "asterisk-csv", "Master.csv", "--out", "o",
      "--internal-max-digits", "-1"], "--internal-max-digits", "at least 0"),
    (["ingest", "--format", "asterisk-csv", "Master.csv", "--out", "o",
      "--subscriber-from", "const:"], "--subscriber-from", "const:ID"),
    (["ingest", "--format", "asterisk-csv", "Master.csv", "--out", "o", "--buckets", "0"],
     "--buckets", "at least 1"),
    (["sql", "--db", "bills.duckdb", "SELECT 1", "--max-rows", "0"], "--max-rows",
     "at least 1"),
])
def test_a_bad_option_value_is_a_usage_error_naming_the_option(argv, option, says, tmp_path,
                                                                monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and says in err
    assert "Traceback" not in err
    assert files_under(tmp_path) == set()


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("ratecycle ")


def test_rate_and_run_options_are_explained():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for command, options in (("rate", ("--catalog", "--usage", "--out")),
                             ("run", ("--catalog", "--out"))):
        helps = {a.option_strings[0]: a.help for a in commands[command]._actions
                 if a.option_strings}
        assert all(helps[o] for o in options), (command, helps)


def test_an_unknown_currency_leaves_nothing_behind(folder, capsys):
    before = files_under(folder)
    assert main(["catalog", "import-deck", "deck.csv", "--currency", "XYZ",
                 "--out", "new/catalog.yaml"]) == 1
    err = capsys.readouterr().err
    assert "unknown currency 'XYZ'" in err and "Traceback" not in err
    assert files_under(folder) == before


def test_a_refused_deck_leaves_the_previous_catalog_untouched(folder, capsys):
    before = {p: (folder / p).read_bytes() for p in ("catalog/catalog.yaml",
                                                     "catalog/catalog.deck.csv")}
    (folder / "bad.csv").write_text("destination,prefix,rate\nGermany,49,abc\n")
    assert main(["catalog", "import-deck", "bad.csv", "--currency", "EUR",
                 "--out", "catalog/catalog.yaml"]) == 1
    assert "bad.csv:2" in capsys.readouterr().err
    assert {p: (folder / p).read_bytes() for p in before} == before
    assert files_under(folder / "catalog") == {"catalog.yaml", "catalog.deck.csv"}


def test_import_deck_out_must_be_a_file(folder, capsys):
    assert main(["catalog", "import-deck", "deck.csv", "--currency", "EUR",
                 "--out", "catalog"]) == 1
    err = capsys.readouterr().err
    assert "ratecycle catalog import-deck: error: --out catalog is a folder" in err
    assert "catalog/catalog.yaml" in err


@pytest.mark.parametrize("argv", [
    ["ingest", "--format", "parquet", "usage.csv", "--out", "deck.csv"],
    ["run", "--format", "parquet", "usage.csv", "--catalog", "catalog/catalog.yaml",
     "--out", "deck.csv"],
    ["demo", "--out", "deck.csv"],
    ["rate", "--catalog", "catalog/catalog.yaml", "--usage", "usage.csv", "--out", "deck.csv"],
])
def test_a_folder_output_that_is_a_file_is_refused(argv, folder, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "--out deck.csv is a file" in err and "Traceback" not in err
    assert (folder / "deck.csv").read_text() == DECK


@pytest.mark.parametrize("out", ["usage.csv", "."])
def test_rate_refuses_to_replace_its_own_usage(out, folder, capsys):
    assert main(["rate", "--catalog", "catalog/catalog.yaml", "--usage", "usage.csv",
                 "--out", out]) == 1
    assert "would replace usage.csv" in capsys.readouterr().err
    assert (folder / "usage.csv").read_text() == USAGE


def test_rate_refuses_a_foreign_folder_before_rating(folder, monkeypatch, capsys):
    (folder / "mine").mkdir()
    (folder / "mine" / "notes.txt").write_text("keep")

    def rate_buckets(*args, **kwargs):
        raise AssertionError("rated before the output folder was checked")

    monkeypatch.setattr("ratecycle.job._rate_buckets", rate_buckets)
    assert main(["rate", "--catalog", "catalog/catalog.yaml", "--usage", "usage.csv",
                 "--out", "mine"]) == 1
    assert "not empty and was not written by ratecycle" in capsys.readouterr().err
    assert files_under(folder / "mine") == {"notes.txt"}


def test_a_folder_holds_the_outputs_of_one_command(folder, capsys):
    rate = ["rate", "--catalog", "catalog/catalog.yaml", "--usage", "usage.csv", "--out", "o"]
    assert main(rate) == 0
    listed = files_under(folder / "o")
    assert main(["ingest", "--format", "parquet", "usage.csv", "--out", "o"]) == 1
    assert main(["run", "--format", "parquet", "usage.csv", "--catalog",
                 "catalog/catalog.yaml", "--out", "o"]) == 1
    err = capsys.readouterr().err
    assert err.count("holds the output of `ratecycle rate`") == 2 and "Traceback" not in err
    assert files_under(folder / "o") == listed  # nothing written, the marker kept
    assert main(rate) == 0  # the same command again replaces its own output


@pytest.mark.parametrize("out", ["o/bucket=000", "o/deeper/still", "o/x.parquet"])
def test_an_output_inside_another_output_is_refused(out, folder, capsys):
    rate = ["rate", "--catalog", "catalog/catalog.yaml", "--usage", "usage.csv"]
    assert main([*rate, "--out", "o"]) == 0
    listed = files_under(folder / "o")
    capsys.readouterr()
    assert main([*rate, "--out", out]) == 1
    err = capsys.readouterr().err
    assert "lies inside" in err and "an output folder of ratecycle" in err
    assert files_under(folder / "o") == listed


def test_a_dangling_link_as_output_is_named(folder, capsys):
    (folder / "o").symlink_to(folder / "nowhere")
    assert main(["rate", "--catalog", "catalog/catalog.yaml", "--usage", "usage.csv",
                 "--out", "o"]) == 1
    assert "which does not exist" in capsys.readouterr().err


def test_a_damaged_marker_is_read_without_a_traceback(folder, capsys):
    rate = ["rate", "--catalog", "catalog/catalog.yaml", "--usage", "usage.csv", "--out", "o"]
    assert main(rate) == 0
    (folder / "o" / ".ratecycle-output").write_bytes(bytes(range(256)))
    assert main(rate) == 0  # names no command: taken as an older marker


@pytest.mark.parametrize("argv", [
    ["ingest", "--format", "parquet", "gone.csv", "--out", "o"],
    ["rate", "--catalog", "catalog/catalog.yaml", "--usage", "gone.csv", "--out", "o"],
])
def test_a_missing_input_leaves_no_output_folder(argv, folder, capsys):
    assert main(argv) == 1
    assert "gone.csv: no such file" in capsys.readouterr().err
    assert not (folder / "o").exists()


def test_a_folder_given_as_an_input_file_is_named_as_a_folder(folder, capsys):
    (folder / "cdrs").mkdir()
    assert main(["ingest", "--format", "parquet", "cdrs", "--out", "o"]) == 1
    assert "cdrs: is a folder; give the files in it" in capsys.readouterr().err


def test_a_column_map_needs_format_csv(folder, capsys):
    (folder / "map.yaml").write_text("columns: {started_at: t}\n")
    assert main(["ingest", "--format", "asterisk-csv", "usage.csv", "--column-map", "map.yaml",
                 "--out", "out"]) == 1
    assert "only --format csv uses a column map" in capsys.readouterr().err
    assert not (folder / "out").exists()


def test_an_os_error_names_the_path(folder, capsys):
    # the catalog's folder would have to be made inside a file
    assert main(["catalog", "import-deck", "deck.csv", "--currency", "EUR",
                 "--out", "deck.csv/catalog.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ratecycle catalog import-deck: error: deck.csv")
    assert "Traceback" not in err


def test_permission_denied_is_reported_not_raised(folder, monkeypatch, capsys):
    def denied(args):
        raise PermissionError(13, "Permission denied", "/srv/cdr/Master.csv")

    monkeypatch.setattr(cli, "cmd_check", denied)
    assert main(["catalog", "check", "catalog/catalog.yaml"]) == 1
    assert capsys.readouterr().err == (
        "ratecycle catalog check: error: /srv/cdr/Master.csv: Permission denied\n")


def test_ctrl_c_exits_130_without_a_traceback(folder, monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_check", interrupted)
    assert main(["catalog", "check", "catalog/catalog.yaml"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_file_in_another_format_is_named_with_a_hint(folder, capsys):
    """A FreeSWITCH row (15 quoted columns) read as Asterisk: every row is quarantined, and
    the run says which file and asks whether the format is right."""
    (folder / "fs.csv").write_text(
        '"Ann","1001","4912345","default","2016-02-01 10:00:00","2016-02-01 10:00:05",'
        '"2016-02-01 10:01:05","65","60","NORMAL_CLEARING","u-1","","","PCMU","PCMU"\n')
    assert main(["ingest", "--format", "asterisk-csv", "fs.csv", "--out", "in"]) == 0
    err = capsys.readouterr().err
    assert "warning: fs.csv: no row has the shape of --format asterisk-csv" in err
    assert "is the format right for this file?" in err
