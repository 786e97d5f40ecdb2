"""Stage 3: usage + compiled catalog -> rated usage, one row per event (see DESIGN.md)."""

from .errors import OverflowRisk, RatingError
from .kernels import threads_safe
from .rate import rate_batch
from .schema import NO_RATE, NO_SUBSCRIPTION, NO_TARIFF, RATED, RATED_COLUMNS, UNRATED
from .tariff import CompiledTariff, compile_catalog

__all__ = [
    "NO_RATE", "NO_SUBSCRIPTION", "NO_TARIFF", "RATED", "RATED_COLUMNS", "UNRATED",
    "CompiledTariff", "OverflowRisk", "RatingError", "compile_catalog",
    "rate_batch", "threads_safe",
]
