"""Errors of the bills stage.

    BillsError
    └── QueryError   a query against bills.duckdb failed (the database's message)
"""


class BillsError(Exception):
    pass


class QueryError(BillsError):
    pass
