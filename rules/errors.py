"""Errors of the rules stage. A broken catalog is refused with every problem at once.

    RulesError
    ├── CatalogError     the catalog or a deck it references is wrong (lists all problems)
    ├── DeckImportError  a carrier rate deck cannot be imported (lists all problems)
    ├── TariffPlanImportError  a CGRateS tariff plan cannot be imported (lists all problems)
    └── AccountsError    the accounts file is wrong (lists all problems)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    where: str  # a catalog path like plans[0].charges[1].per, or file:row
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class RulesError(Exception):
    """Base of rules errors."""


class _Problems(RulesError):
    title = "problems"

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} {self.title}:\n{lines}")


class CatalogError(_Problems):
    title = "catalog problem(s); fix them and run `ratecycle catalog check` again"


class DeckImportError(_Problems):
    title = "problem(s) importing the rate deck; nothing was imported"


class TariffPlanImportError(_Problems):
    title = "problem(s) in the CGRateS tariff plan; nothing was imported"


class AccountsError(_Problems):
    title = "problem(s) in the accounts file"
