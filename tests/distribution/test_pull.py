"""Buyers who fetch their leads: JSON pages with a cursor, CSV, each sale booked once."""

import csv
import io

from django.test import Client

from leadrelay.distribution.delivery import delivery_attempt, lead_distribute
from leadrelay.distribution.models import Delivery
from leadrelay.ledger.models import Transaction
from tests.conftest import bearer
from tests.distribution.conftest import make_buyer, new_lead


def test_a_pull_buyer_fetches_its_leads_and_each_sale_is_booked_once(
    routed, affiliate, other_advertiser, advertiser
):
    buyer = make_buyer(other_advertiser, "", method="pull")
    leads = [new_lead(routed, affiliate, email=f"p{n}@example.com") for n in range(3)]
    for lead in leads:
        (delivery,) = lead_distribute(lead_id=lead.pk)
        assert delivery.next_attempt_at is None  # nothing to send
        assert delivery_attempt(delivery_id=delivery.pk).attempted is False
    headers = bearer(other_advertiser)
    url = f"/api/v1/buyers/{buyer.pk}/leads"
    first = Client().get(url, {"limit": 2}, **headers).json()
    assert [row["lead_id"] for row in first] == [leads[0].pk, leads[1].pk]
    assert first[0]["fields"] == {"fname": "Ada", "mail": "p0@example.com", "source": "leadrelay"}
    assert first[0]["price"] == "30.00"
    again = Client().get(url, {"limit": 2}, **headers).json()  # a lost answer, fetched again
    assert again == first
    rest = Client().get(url, {"after": first[-1]["delivery_id"]}, **headers).json()
    assert [row["lead_id"] for row in rest] == [leads[2].pk]
    assert Transaction.objects.filter(kind="sale").count() == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}

    export = Client().get(url, {"format": "csv"}, **headers)
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0][:2] == ["delivery_id", "lead_id"] and len(rows) == 4
    assert Client().get(url, **bearer(advertiser)).status_code == 404  # not its buyer


def test_the_csv_quotes_every_cell_and_defuses_formulas_after_separators(
    routed, affiliate, other_advertiser
):
    buyer = make_buyer(
        other_advertiser,
        "",
        method="pull",
        field_map={"name": "{first_name}", "a": "a,=b", "x": "x\t@y", "n": "-1"},
    )
    lead = new_lead(routed, affiliate, first_name="q;=1+13;")
    (delivery,) = lead_distribute(lead_id=lead.pk)
    url = f"/api/v1/buyers/{buyer.pk}/leads"
    export = Client().get(url, {"format": "csv"}, **bearer(other_advertiser))
    delivery.refresh_from_db()
    assert export.content.decode() == (
        '"delivery_id","lead_id","price","currency","delivered_at","name","a","x","n"\r\n'
        f'"{delivery.pk}","{lead.pk}","30.00","USD","{delivery.booked_at.isoformat()}",'
        '"q;\'=1+13;","a,\'=b","x\t\'@y","\'-1"\r\n'
    )
