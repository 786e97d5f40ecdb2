"""Stage 2: validated inputs that are not usage — the tariff catalog and the accounts."""

from .accounts import Accounts, load_accounts
from .catalog import Catalog, DeckCharge, FlatCharge, Plan, load_catalog
from .errors import (
    AccountsError,
    CatalogError,
    DeckImportError,
    Problem,
    RulesError,
    TariffPlanImportError,
)
from .import_cgrates import import_cgrates
from .import_deck import import_deck
from .import_special import import_special_numbers

__all__ = [
    "Accounts", "AccountsError", "Catalog", "CatalogError", "DeckCharge", "DeckImportError",
    "FlatCharge", "Plan", "Problem", "RulesError", "TariffPlanImportError", "import_cgrates",
    "import_deck", "import_special_numbers", "load_accounts", "load_catalog",
]
