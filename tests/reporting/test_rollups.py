"""Report rollups are kept up to date by every writer and equal a rebuild from the rows."""

import io

import pytest
from django.core.management import call_command

from leadrelay.leads.models import Lead, LeadSource
from leadrelay.leads.returns import lead_return
from leadrelay.leads.services import lead_intake, lead_review_decide
from leadrelay.offers.models import LandingVariant
from leadrelay.reporting.models import Rollup
from leadrelay.reporting.rollups import COLUMNS, rollup_problems, rollups_rebuild
from leadrelay.tracking.buffer import clicks_write
from leadrelay.tracking.models import Click
from leadrelay.tracking.services import click_record, tracking_link_create
from tests.factories import CHROME_UA, approve, make_offer, member, visitor

BOT_UA = "Googlebot/2.1 (+http://www.google.com/bot.html)"


def _snapshot():
    return sorted(
        (r.hour, r.offer_id, r.affiliate_id, r.dim, r.value, r.currency,
         *(getattr(r, c) for c in COLUMNS))
        for r in Rollup.objects.all()
        if any(getattr(r, c) for c in COLUMNS)
    )  # fmt: skip


def _cell(dim="", value="", currency="", **where):
    return Rollup.objects.get(dim=dim, value=value, currency=currency, **where)


@pytest.fixture
def traffic(network, advertiser, affiliate, other_affiliate):
    offer = make_offer(advertiser, revenue_minor=2500, payout_minor=1800, return_window_days=7)
    approve(offer, affiliate)
    approve(offer, other_affiliate)
    variant = LandingVariant.objects.create(offer=offer, name="B", url="https://lp.example.com/b")
    link = tracking_link_create(offer=offer, affiliate=affiliate, subs={"sub1": "search"})

    ips = iter(range(20, 99))

    def click(**params):
        seen = visitor(ip=f"203.0.113.{next(ips)}", country="DE")
        return click_record(code=link.code, visitor=seen, params=params, write_now=True).click

    clicks = [click(), click(sub2="ad-7"), click()]
    repeat = visitor(ip="198.51.100.1", visitor_id="same-visitor")
    click_record(code=link.code, visitor=repeat, write_now=True)
    click_record(code=link.code, visitor=repeat, write_now=True)  # not unique
    click_record(code=link.code, visitor=visitor(user_agent=BOT_UA), write_now=True)  # a bot

    def lead(email, click_id=None, who=affiliate, **fields):
        return lead_intake(
            offer_id=offer.pk,
            fields={"first_name": "A", "email": email, **fields},
            source=LeadSource.API,
            affiliate=who,
            click_id=click_id,
        )

    approved = lead("a@example.com", clicks[0].click_id)
    duplicate = lead("a@example.com", clicks[1].click_id)
    lead("b@example.com", who=other_affiliate)
    offer.review_mode = "manual"
    offer.save(update_fields=["review_mode"])
    reviewed = lead("c@example.com", clicks[2].click_id)
    refused = lead("d@example.com")
    lead("e@example.com")  # stays pending
    lead_review_decide(lead_id=reviewed.pk, approve=True, actor=member(network))
    lead_review_decide(lead_id=refused.pk, approve=False, actor=member(network), reason="bad_phone")
    lead_return(lead_id=approved.pk, by=advertiser, reason="unreachable")
    return offer, variant, approved, duplicate


def test_every_writer_keeps_the_rollups_equal_to_the_rows(traffic, affiliate):
    offer, _, approved, duplicate = traffic
    assert rollup_problems() == []
    whole = _cell(offer_id=offer.pk, affiliate_id=affiliate.pk)
    counts = (whole.clicks, whole.unique_clicks, whole.leads, whole.approved, whole.rejected,
              whole.duplicate, whole.pending, whole.returned)  # fmt: skip
    assert counts == (5, 4, 5, 1, 1, 1, 1, 1)  # the bot doesn't count; one click repeats
    assert _cell("sub1", "search", offer_id=offer.pk).clicks == 5
    assert _cell("sub2", "ad-7", offer_id=offer.pk).clicks == 1
    assert _cell("country", "DE", offer_id=offer.pk).clicks == 3
    assert _cell("reason", "bad_phone", offer_id=offer.pk).rejected == 1
    assert _cell("reason", "duplicate", offer_id=offer.pk).duplicate == 1
    money = Rollup.objects.filter(offer_id=offer.pk, dim="", currency="USD")
    revenue = sum(m.revenue_minor for m in money)
    payout = sum(m.payout_minor for m in money)
    # Three approved (one returned): 2 x 25.00 owed, 2 x 18.00 earned.
    assert (revenue, payout) == (5000, 3600)
    assert duplicate.status == "duplicate" and approved.pk


def test_a_rebuild_gives_the_same_cells(traffic):
    before = _snapshot()
    assert before
    Rollup.objects.all().delete()
    rollups_rebuild()
    assert _snapshot() == before


def test_a_retried_chunk_of_clicks_is_counted_once(traffic):
    offer = traffic[0]
    written = list(Click.objects.filter(offer=offer, is_bot=False)[:2])
    before = _cell(offer_id=offer.pk, affiliate_id=written[0].affiliate_id).clicks
    clicks_write(written)  # the same rows again: skipped by the insert, not counted
    assert _cell(offer_id=offer.pk, affiliate_id=written[0].affiliate_id).clicks == before
    assert rollup_problems() == []


def test_reports_check_and_rebuild_commands(traffic):
    offer = traffic[0]
    out = io.StringIO()
    call_command("reports", "check", stdout=out)
    assert "match" in out.getvalue()
    Rollup.objects.filter(offer_id=offer.pk, dim="").update(clicks=999)
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("reports", "check", stdout=out)
    assert exit_.value.code == 1
    assert "OFF:" in out.getvalue() and "clicks 999" in out.getvalue()
    call_command("reports", "rebuild", stdout=io.StringIO())
    assert rollup_problems() == []


def test_a_click_on_a_landing_variant_and_its_lead_count_for_the_variant(traffic, affiliate):
    offer, variant = traffic[0], traffic[1]
    link = tracking_link_create(offer=offer, affiliate=affiliate)
    chosen = click_record(code=link.code, visitor=visitor(user_agent=CHROME_UA), write_now=True)
    assert chosen.click.landing_variant_id is not None
    lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "V", "email": "v@example.com"},
        source=LeadSource.API,
        affiliate=affiliate,
        click_id=chosen.click.click_id,
    )
    assert chosen.click.landing_variant_id == variant.pk  # the offer's only variant
    cell = _cell("variant", str(variant.pk), offer_id=offer.pk)
    shown = Click.objects.filter(landing_variant=variant, is_bot=False).count()
    assert (cell.clicks, cell.leads) == (
        shown,
        Lead.objects.filter(landing_variant=variant).count(),
    )
    assert cell.leads == 4  # three of the fixture's leads came from clicks, and this one
    assert rollup_problems() == []


def test_a_big_batch_of_clicks_is_upserted_in_chunks_and_counted_right(traffic):
    from leadrelay.reporting.rollups import UPSERT_ROWS

    model = Click.objects.filter(is_bot=False).first()
    batch = []
    for i in range(UPSERT_ROWS):
        model.pk = None
        model.click_id = f"bulk-{i}"
        model.sub1, model.sub2 = f"s{i}", f"t{i}"  # two cells of their own each
        batch.append(Click(**{f.attname: getattr(model, f.attname) for f in Click._meta.fields}))
    clicks_write(batch)
    assert Rollup.objects.filter(dim="sub2", value__startswith="t").count() == UPSERT_ROWS
    assert rollup_problems() == []
