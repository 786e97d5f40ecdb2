"""The catalog the accounts tests read accounts against: two euro plans, a dollar plan
and two discounts."""

import pytest

from rules import load_catalog

CATALOG = """\
catalog: 1
currency: EUR
discounts:
  loyal: {kind: percentage, value: "0.10"}
  staff: {kind: percentage, value: "0.20"}
plans:
  - id: basic
    default: true
    charges: [{service: sms, rate: "0.05", per: message}]
  - id: pro
    charges: [{service: sms, rate: "0.01", per: message}]
  - id: dollars
    currency: USD
    charges: [{service: sms, rate: "0.01", per: message}]
"""


@pytest.fixture
def catalog(tmp_path):
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    return load_catalog(tmp_path / "catalog.yaml")
