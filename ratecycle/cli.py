"""The `ratecycle` command line.

Each option's value is checked as it is parsed (a bad one is a usage error, exit 2);
combinations of options and the files they name are checked by the command (exit 1). No
user mistake ends in a traceback.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ingest import FORMATS, IngestError, IngestOptions, NumberPlan, load_column_map

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class CommandError(Exception):
    """A problem the user can fix; printed without a traceback."""


# --- option values (argparse types: a bad value is a usage error naming the option) ---------

def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 instant like 2016-12-01T00:00:00Z") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; add Z or +01:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range in UTC") from None


def _at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""

    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return whole_number


def _increments(text: str) -> str:
    from rules.units import parse_increments

    try:
        parse_increments(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _tax(text: str) -> str:
    from rules.catalog import tax_rate

    try:
        return tax_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _subscriber_from(text: str) -> str:
    if not text.strip() or (text.startswith("const:") and not text[len("const:"):].strip()):
        raise argparse.ArgumentTypeError(
            f"{text!r} names no subscriber; give a column name or const:ID, e.g. const:pbx-1")
    return text


ACCOUNTS_HELP = ("YAML (customers and subscriptions) or CSV/Parquet (a subscription a row: "
                 "subscriber_id, plan_id and optional customer and date columns); see "
                 "README, Accounts. A subscriber with no subscription holds the default plan")


# --- output paths (checked by the command: they depend on what exists) ---------------------

def _file_out(out: Path, example: str) -> None:
    if out.is_dir():
        raise CommandError(f"--out {out} is a folder; give the file to write, e.g. "
                           f"{out / example}")


def _add_ingest_options(p: argparse.ArgumentParser, *, files: bool = True) -> None:
    p.add_argument("--format", required=True, choices=[f for f in FORMATS if f != "usage-csv"],
                   help="what the input files are")
    if files:
        p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--tz", default="UTC", metavar="ZONE",
                   help="zone of local times in CDRs (IANA name, default UTC)")
    p.add_argument("--country", metavar="CALLING_CODE",
                   help="home country's calling code for national numbers, e.g. 1 or 44")
    p.add_argument("--access-code", action="append", metavar="DIGITS",
                   help="international access code (repeatable; default 011 in country 1, "
                   "else 00)")
    p.add_argument("--dial-prefix", action="append", default=[], metavar="DIGITS",
                   help="PBX outside-line prefix before a full number, e.g. 8 or 9 (repeatable)")
    p.add_argument("--internal-max-digits", type=_at_least(0), default=5, metavar="N",
                   help="numbers of at most N digits are internal extensions, never priced "
                   "(default 5)")
    p.add_argument("--subscriber-from", type=_subscriber_from, metavar="COLUMN|const:ID",
                   help="source column holding the subscriber, or const:ID for one customer "
                   "(default: accountcode for Asterisk and FreeSWITCH)")
    p.add_argument("--billable-app", action="append", metavar="APP",
                   help="Asterisk last application that makes a row a call (repeatable; "
                   "default Dial)")
    p.add_argument("--column-map", type=Path, metavar="MAP.yaml",
                   help="column map for --format csv")
    p.add_argument("--as-of", type=_instant, metavar="INSTANT",
                   help="'now' for this run (ingested_at of new usage); makes a run reproducible")
    p.add_argument("--buckets", type=_at_least(1), default=8, metavar="N",
                   help="subscriber buckets (rating tasks), default 8")


def _ingest_options(args: argparse.Namespace) -> IngestOptions:
    if args.column_map and args.format != "csv":
        raise CommandError(f"only --format csv uses a column map; drop --column-map or use "
                           f"--format csv (not {args.format})")
    try:
        numbers = NumberPlan(
            country=args.country,
            access_codes=tuple(args.access_code) if args.access_code else None,
            dial_prefixes=tuple(args.dial_prefix),
            internal_max_digits=args.internal_max_digits,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return IngestOptions(
        format=args.format,
        timezone=args.tz,
        numbers=numbers,
        subscriber_from=args.subscriber_from,
        billable_apps=tuple(args.billable_app) if args.billable_app else ("Dial",),
        column_map=load_column_map(args.column_map) if args.column_map else None,
        as_of=args.as_of,
        buckets=args.buckets,
    )


# --- commands -------------------------------------------------------------------------------

def cmd_import_deck(args) -> int:
    from rules import import_deck

    _file_out(args.out, "catalog.yaml")
    catalog = import_deck(args.deck, args.out, currency=args.currency,
                          increments=args.increments, tax=args.tax, timezone=args.timezone)
    rows = sum(len(d) for d in catalog.decks.values())
    print(f"wrote {args.out} ({rows:,} prefixes, {catalog.currency}, increments "
          f"{args.increments}, zone {args.timezone}, "
          f"{'tax ' + args.tax if args.tax else 'no tax'})")
    return 0


def cmd_import_cgrates(args) -> int:
    from rules import import_cgrates

    _file_out(args.out, "catalog.yaml")
    catalog = import_cgrates(args.tpdir, args.out, currency=args.currency,
                             timezone=args.timezone, rounding_decimals=args.rounding_decimals)
    _print_warnings(catalog)
    model = catalog.model
    print(f"wrote {args.out} ({len(model.plans)} plans, {len(model.rates)} rates, "
          f"{len(model.bands)} bands, {len(model.profiles)} profiles; cgrates rounding at "
          f"{args.rounding_decimals} decimals, bands in {args.timezone})")
    return 0


def cmd_import_special(args) -> int:
    from rules import import_special_numbers

    _file_out(args.out, "catalog.yaml")
    catalog, skipped = import_special_numbers(args.sheet, args.out, currency=args.currency,
                                              timezone=args.timezone, country=args.country)
    for problem in skipped:
        print(f"warning: {problem}", file=sys.stderr)
    rows = sum(len(d) for d in catalog.decks.values()) // len(catalog.model.bands)
    print(f"wrote {args.out} ({rows} numbers in peak, off-peak and holiday bands, "
          f"{len(skipped)} rows skipped; zone {args.timezone})")
    return 0


def _print_warnings(catalog) -> None:
    for warning in catalog.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def cmd_check(args) -> int:
    from rules import load_catalog

    catalog = load_catalog(args.catalog)
    _print_warnings(catalog)
    rows = sum(len(d) for d in catalog.decks.values())
    print(f"{args.catalog}: ok ({len(catalog.model.plans)} plans, {len(catalog.decks)} decks, "
          f"{rows:,} deck rows, version {catalog.digest})")
    return 0


def cmd_ingest(args) -> int:
    from .job import Progress, ingest_command

    a = ingest_command(args.files, _ingest_options(args), args.out, Progress(),
                       also_reads=[args.column_map])
    print(f"read {a.read:,} = accepted {a.accepted:,} + unrated {sum(a.unrated.values()):,} "
          f"{dict(a.unrated)} + quarantined {sum(a.quarantined.values()):,} "
          f"{dict(a.quarantined)}")
    print(f"usage under {args.out}/usage, quarantine under {args.out}/quarantine, "
          f"accounting in {args.out}/accounting.json")
    return 0


def cmd_rate(args) -> int:
    from .job import Progress, rate_command

    if args.out.suffix.lower() == ".parquet":
        _file_out(args.out, "rated.parquet")
    summary = rate_command(args.usage, args.catalog, args.out, accounts_path=args.accounts,
                           as_of=args.as_of, workers=args.workers, progress=Progress())
    print(summary.text())
    return 0


def cmd_run(args) -> int:
    from .job import Progress, run_nightly

    summary = run_nightly(args.files, _ingest_options(args), args.catalog, args.out,
                          accounts_path=args.accounts, workers=args.workers,
                          progress=Progress(), also_reads=[args.column_map])
    print(summary.text())
    print(f"bills in {args.out}/bills.duckdb; try: ratecycle sql --db {args.out}/bills.duckdb "
          "\"SELECT * FROM bills LIMIT 10\"")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    summary = run_demo(args.out, subscribers=args.subscribers, events=args.events,
                       workers=args.workers)
    print(summary.text())
    print(f"bills in {args.out}/bills.duckdb; try: ratecycle sql --db {args.out}/bills.duckdb "
          "\"SELECT * FROM bills ORDER BY total DESC LIMIT 10\"")
    return 0


def _sql_format(args) -> str:
    if args.output is None:
        if args.format == "parquet":
            raise CommandError("--format parquet writes a file; add --output FILE.parquet")
        return args.format or "table"
    if args.format == "table":
        raise CommandError("--format table prints to the terminal; use --format csv or "
                           "--format parquet with --output")
    if args.format:
        return args.format
    fmt = args.output.suffix.lower().removeprefix(".")
    if fmt not in ("csv", "parquet"):
        raise CommandError(f"cannot tell the format of --output {args.output} from its suffix; "
                           "name it .csv or .parquet, or add --format csv or --format parquet")
    return fmt


def cmd_sql(args) -> int:
    from bills import run_query

    fmt = _sql_format(args)
    if fmt == "csv" and args.output is None:
        # printed as --output would write it; a reader that stops early (`| head`) is fine
        with tempfile.TemporaryDirectory(prefix="ratecycle-sql-") as scratch:
            written = Path(scratch) / "result.csv"
            run_query(args.db, args.query, output=written, fmt=fmt)
            sys.stdout.flush()
            with written.open("rb") as rows:
                shutil.copyfileobj(rows, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        return 0
    text = run_query(args.db, args.query, output=args.output, fmt=fmt, max_rows=args.max_rows)
    if text is not None:
        print(text)
    else:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ratecycle",
        description="Rate usage records against a tariff catalog and roll them into bills.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    catalog = sub.add_parser("catalog", help="import and check tariff catalogs")
    csub = catalog.add_subparsers(dest="catalog_command", required=True, metavar="SUBCOMMAND")
    p = csub.add_parser("import-deck", help="turn a carrier rate deck CSV into a catalog",
                        description="Import a carrier rate deck (destination, prefix, rate; "
                        "decimal commas accepted) into a one-plan catalog every subscriber "
                        "holds. Writes CATALOG.yaml and CATALOG.deck.csv beside it.")
    p.add_argument("deck", type=Path, metavar="DECK.csv")
    p.add_argument("--currency", required=True, help="ISO 4217 code, e.g. EUR")
    p.add_argument("--increments", type=_increments, default="60/60",
                   help="first/next block in seconds, e.g. 60/60, 30/6 or 60 (default 60/60)")
    p.add_argument("--tax", type=_tax, help="one exclusive tax rate as a fraction, e.g. 0.20 "
                   "for 20%% (default: no tax)")
    p.add_argument("--timezone", default="UTC", help="plan zone for cycles (default UTC)")
    p.add_argument("--out", required=True, type=Path, metavar="catalog.yaml")
    p.set_defaults(func=cmd_import_deck)
    p = csub.add_parser("import-cgrates", help="turn a CGRateS tariff plan folder into a catalog",
                        description="Import a CGRateS tariff plan (Destinations, Rates, "
                        "DestinationRates, Timings, RatingPlans, RatingProfiles CSVs) into a "
                        "catalog with the cgrates rounding profile, rating the same usage to "
                        "the same cost. Writes CATALOG.yaml and one deck CSV per rating plan.")
    p.add_argument("tpdir", type=Path, metavar="TPDIR")
    p.add_argument("--currency", required=True,
                   help="ISO 4217 code (a tariff plan carries none), e.g. EUR")
    p.add_argument("--timezone", default="UTC",
                   help="zone the timings are read in (they carry none; default UTC)")
    p.add_argument("--rounding-decimals", type=int, default=5, metavar="G",
                   help="CGRateS's global rounding decimals (general.rounding_decimals, "
                   "default 5)")
    p.add_argument("--out", required=True, type=Path, metavar="catalog.yaml")
    p.set_defaults(func=cmd_import_cgrates)
    p = csub.add_parser("import-special-numbers",
                        help="turn a special-number tariff sheet (Asterisell PT Prime layout) "
                        "into a catalog",
                        description="Import a special-number sheet: rate method codes, initial "
                        "cost (the price of the first block), peak (weekdays 09-21) and "
                        "off-peak prices, maximum cost. Note rows and rows whose price is not "
                        "in the sheet are skipped with a warning naming the row.")
    p.add_argument("sheet", type=Path, metavar="SHEET.csv")
    p.add_argument("--currency", required=True)
    p.add_argument("--timezone", default="Europe/Lisbon",
                   help="zone of the peak hours (default Europe/Lisbon)")
    p.add_argument("--country", metavar="CALLING_CODE",
                   help="calling code put in front of the sheet's national numbers, e.g. 351")
    p.add_argument("--out", required=True, type=Path, metavar="catalog.yaml")
    p.set_defaults(func=cmd_import_special)
    p = csub.add_parser("check", help="validate a catalog and its decks, listing every problem")
    p.add_argument("catalog", type=Path, metavar="catalog.yaml")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("ingest", help="normalise CDR/usage files into usage Parquet",
                       description="Read CDR or usage files, normalise them into usage Parquet "
                       "under OUT/usage, put unusable rows in OUT/quarantine, and account for "
                       "every row.")
    _add_ingest_options(p)
    p.add_argument("--out", required=True, type=Path, metavar="DIR")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("rate", help="rate usage against a catalog",
                       description="Rate usage: a folder written by `ingest`, a usage Parquet "
                       "file, or a usage CSV. OUT ending in .parquet is one file, otherwise a "
                       "folder of bucket files.")
    p.add_argument("--catalog", required=True, type=Path, metavar="catalog.yaml",
                   help="the tariff catalog (see `ratecycle catalog check`)")
    p.add_argument("--usage", required=True, type=Path, metavar="FILE_OR_DIR",
                   help="a folder written by `ingest`, a usage Parquet file or a usage CSV")
    p.add_argument("--out", required=True, type=Path, metavar="OUT",
                   help="rated usage: OUT.parquet is one file, otherwise a folder of bucket "
                   "files; replaced if it exists")
    p.add_argument("--accounts", type=Path, metavar="FILE", help=ACCOUNTS_HELP)
    p.add_argument("--as-of", type=_instant, metavar="INSTANT",
                   help="'now' for this run (ingested_at of a usage file's rows)")
    p.add_argument("--workers", type=_at_least(1), default=1, metavar="N",
                   help="processes for rating tasks (default 1)")
    p.set_defaults(func=cmd_rate)

    p = sub.add_parser("run", help="the nightly job: ingest, rate and bill",
                       description="Ingest FILES, rate them, and build OUT/bills.duckdb.")
    _add_ingest_options(p)
    p.add_argument("--catalog", required=True, type=Path, metavar="catalog.yaml",
                   help="the tariff catalog (see `ratecycle catalog check`)")
    p.add_argument("--accounts", type=Path, metavar="FILE", help=ACCOUNTS_HELP)
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="a new, empty or earlier ratecycle output folder. FILES are one "
                   "batch under DIR/runs/: the same FILES again replace it, other FILES add "
                   "one whose events already in another batch are quarantined as duplicates; "
                   "bundle and tier use continue from earlier batches; bills.duckdb is "
                   "rebuilt from all batches, late usage as adjustments")
    p.add_argument("--workers", type=_at_least(1), default=1, metavar="N",
                   help="processes for rating tasks (default 1)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="generate a realistic month and run the nightly job on it",
                       description="Generate a seeded month of usage, a catalog and accounts "
                       "under DIR/input (the same arguments give the same files) and bill it "
                       "into DIR as `ratecycle run` does. Run again with the same arguments, "
                       "it replaces its own run; a folder holding another month is refused.")
    p.add_argument("--out", type=Path, default=Path("out/demo"), metavar="DIR",
                   help="output folder (default out/demo)")
    p.add_argument("--subscribers", type=_at_least(1), default=10_000, metavar="N",
                   help="subscribers in the month (default 10,000)")
    p.add_argument("--events", type=_at_least(1), default=1_000_000, metavar="N",
                   help="usage events in the month (default 1,000,000)")
    p.add_argument("--workers", type=_at_least(1), default=1, metavar="N",
                   help="processes for rating tasks (default 1)")
    p.set_defaults(func=cmd_demo)

    from bills.schema import TABLES, VIEWS

    p = sub.add_parser("sql", help="query bills.duckdb read-only",
                       description="Run one SQL query read-only against bills.duckdb. "
                       f"Tables: {', '.join(TABLES)}; views: {', '.join(VIEWS)}.")
    p.add_argument("--db", required=True, type=Path, metavar="DIR/bills.duckdb",
                   help="the bills database, or the output folder that holds it")
    p.add_argument("query", metavar="SQL")
    p.add_argument("--format", choices=("table", "csv", "parquet"),
                   help="table (default) prints; csv prints, or writes --output; parquet "
                        "writes --output")
    p.add_argument("--output", type=Path, metavar="FILE",
                   help="write the result here (format from a .csv or .parquet suffix)")
    p.add_argument("--max-rows", type=_at_least(1), default=100, metavar="N",
                   help="rows a table shows (default 100)")
    p.set_defaults(func=cmd_sql)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ratecycle")
    except PackageNotFoundError:
        return "(not installed)"


def _os_error(exc: OSError) -> str:
    """'PATH: reason' for an OSError (permission denied, is a directory, disk full...)."""
    if exc.filename is None:
        return exc.strerror or str(exc)
    where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
    return f"{where}: {exc.strerror or exc}"


def main(argv: list[str] | None = None) -> int:
    from bills import BillsError
    from rating import RatingError
    from rules import RulesError

    from .job import OutputError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CommandError, OutputError, IngestError, RulesError, RatingError,
            BillsError) as exc:
        message = str(exc)
    except BrokenPipeError:
        # the reader of stdout went away (`ratecycle sql ... | head`): not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as exc:
        message = _os_error(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    command = " ".join(filter(None, (args.command, getattr(args, "catalog_command", None))))
    print(f"ratecycle {command}: error: {message}", file=sys.stderr)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
