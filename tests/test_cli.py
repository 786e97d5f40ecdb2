"""The `ratecycle` command line: help everywhere, usage errors, and errors without tracebacks."""

import argparse
import json

import pytest

from ratecycle.cli import build_parser, main


def command_paths(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[str, ...]]:
    """Every command and subcommand the parser knows, e.g. ("catalog", "check")."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append((*prefix, name))
                paths.extend(command_paths(sub, (*prefix, name)))
    return paths


COMMANDS = command_paths(build_parser())


def test_the_commands_users_expect_exist():
    assert set(COMMANDS) >= {
        ("catalog",), ("catalog", "import-deck"), ("catalog", "check"), ("ingest",),
        ("rate",), ("run",), ("demo",), ("sql",),
    }


@pytest.mark.parametrize("command", [(), *COMMANDS], ids=lambda c: " ".join(c) or "top")
def test_help_works_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ratecycle")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["rate", "--catalog", "c.yaml"],  # --usage and --out missing
        ["ingest", "--format", "excel", "x.csv", "--out", "o"],
        ["ingest", "--format", "parquet", "x.parquet", "--out", "o", "--as-of", "2016-12-01"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: ratecycle" in capsys.readouterr().err


def test_ingest_of_a_missing_file_names_it_without_a_traceback(tmp_path, capsys):
    missing = tmp_path / "Master.csv"
    assert main(["ingest", "--format", "asterisk-csv", str(missing),
                 "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{missing}: no such file" in err
    assert "Traceback" not in err


def test_run_of_a_missing_file_names_it_as_ingest_does(tmp_path, capsys):
    missing = tmp_path / "usage.parquet"
    (tmp_path / "catalog.yaml").write_text("catalog: 1\ncurrency: EUR\nplans: []\n")
    assert main(["run", "--format", "parquet", str(missing), "--catalog",
                 str(tmp_path / "catalog.yaml"), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{missing}: no such file; check the path" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_ingest_with_an_unknown_zone_is_refused(tmp_path, capsys):
    cdr = tmp_path / "Master.csv"
    cdr.write_text("")
    assert main(["ingest", "--format", "asterisk-csv", str(cdr), "--tz", "Mars/Olympus",
                 "--out", str(tmp_path / "out")]) == 1
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


def test_ingest_command_writes_usage_and_reconciled_accounting(tmp_path, capsys):
    # two rows from data/real/asterisk_cdr_csv_master.csv (lines 52 and 1), and the first again
    call = '"","123605236","18109635154","LocalSets",""""" <123605236>","SIP/123605236-00009236","SIP/sipus1-00006504","Dial","SIP/18109635154@sipus1","2016-09-16 13:29:19","2016-09-16 13:29:40","2016-09-16 13:30:09",49,29,"ANSWERED","DOCUMENTATION","1474032559.0",""'  # noqa: E501
    busy = '"","1500","12485163351","local","""device"" <1500>","SIP/1500-00009033","Motif/12485163351@voice.google.com-753b","Dial","Motif/google/12485163351@voice.google.com,,r","2016-09-06 16:38:55",,"2016-09-06 16:38:56",0,0,"NO ANSWER","DOCUMENTATION","1473179935.0",""'  # noqa: E501
    cdr = tmp_path / "Master.csv"
    cdr.write_text("\n".join([call, busy, call]) + "\n")
    out = tmp_path / "out"
    assert main(["ingest", "--format", "asterisk-csv", str(cdr), "--country", "1",
                 "--subscriber-from", "src", "--as-of", "2016-12-01T00:00:00Z",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "read 3 = accepted 1 + unrated 1" in printed
    accounting = json.loads((out / "accounting.json").read_text())
    assert accounting == {"read": 3, "accepted": 1, "unrated": {"not_answered": 1},
                          "quarantined": {"duplicate": 1}, "files": {"Master.csv": 3}}
    assert list((out / "usage").glob("bucket=*/part-0.parquet"))
