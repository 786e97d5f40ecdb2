"""Errors of the rating stage.

    RatingError
    └── OverflowRisk   an amount could leave exact 64-bit arithmetic (names the tariff)
"""


class RatingError(Exception):
    pass


class OverflowRisk(RatingError):
    pass
