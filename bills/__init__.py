"""Stage 4: rated usage -> bills.duckdb (bill lines, taxes, bills), queried with SQL."""

from .build import RunRecord, build_bills
from .errors import BillsError, QueryError
from .query import run_query
from .schema import TABLES, VIEWS

__all__ = ["TABLES", "VIEWS", "BillsError", "QueryError", "RunRecord", "build_bills", "run_query"]
