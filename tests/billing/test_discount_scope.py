"""Discounts limited to destinations and to a promotional window, through the nightly job."""

from __future__ import annotations

from decimal import Decimal

from tests.billing.test_fault_cases import bills, lines, run_job


def _run(tmp_path, discount: dict):
    catalog = {"currency": "EUR", "discounts": {"promo": discount}, "plans": [{
        "id": "p", "default": True,
        "charges": [{"service": "voice", "deck": "d", "per": "minute", "increments": "60/60"}]}],
        "decks": {"d": {"file": "deck.csv"}}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "deck.csv").write_text(
        "prefix,destination,rate\n49,Germany,1.00\n33,France,2.00\n")
    accounts = {"customers": [{"id": "c", "discounts": [{"id": "promo"}]}],
                "subscriptions": [{"subscriber": "s", "customer": "c", "plan": "p",
                                   "start": "2024-01-01T00:00:00Z"}]}
    events = [{"event_id": f"{month}-{dest}", "subscriber_id": "s", "service": "voice",
               "at": f"2024-{month:02d}-10T10:00:00Z", "quantity": 60, "destination": dest}
              for month in (5, 6) for dest in ("4930", "3312")]
    return run_job(tmp_path, catalog, events=events, accounts=accounts,
                   as_of="2024-07-01T06:00:00Z")


def test_a_destination_discount_reduces_only_its_destination(tmp_path):
    db = _run(tmp_path, {"kind": "percentage", "value": "0.50", "destinations": ["France"]})
    for line in lines(db):
        expected = Decimal("1.00") if line["amount"] == Decimal("2.00") else Decimal(0)
        assert line["discount"] == expected
    assert [b["total"] for b in bills(db)] == [Decimal("2.00"), Decimal("2.00")]


def test_a_promotional_window_holds_only_the_periods_beginning_in_it(tmp_path):
    db = _run(tmp_path, {"kind": "fixed", "value": "0.50", "starts": "2024-06-01T00:00:00Z",
                         "ends": "2024-07-01T00:00:00Z"})
    assert [b["discount"] for b in bills(db)] == [Decimal(0), Decimal("0.50")]
