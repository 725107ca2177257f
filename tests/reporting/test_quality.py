import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from leadrelay.core.errors import Invalid
from leadrelay.leads.models import Lead, LeadSource
from leadrelay.leads.services import lead_intake, lead_review_decide
from leadrelay.offers.services import FieldSpec
from leadrelay.reporting.quality import lead_quality_report
from leadrelay.tracking.services import tracking_link_create
from tests.conftest import bearer, logged_in
from tests.factories import DEFAULT_FIELDS, approve, make_click, make_offer

OWNER = FieldSpec("owner", "choice", "Owner", choices=("yes", "no"), qualifying_choices=("yes",))


def _lead(offer, affiliate, email, link=None, owner="yes", **kwargs):
    return lead_intake(
        offer_id=offer.pk,
        fields={"first_name": "A", "email": email, "owner": owner},
        source=LeadSource.API,
        affiliate=affiliate,
        click_id=make_click(link).click_id if link else None,
        **kwargs,
    )


@pytest.fixture
def traffic(network, advertiser, other_advertiser, affiliate, other_affiliate):
    """Leads from two affiliates and three sub ids, with known fates and reasons."""
    held = make_offer(advertiser, review_mode="manual", fields=[*DEFAULT_FIELDS, OWNER])
    theirs = make_offer(other_advertiser, fields=[*DEFAULT_FIELDS, OWNER])
    approve(held, affiliate)
    approve(theirs, affiliate)
    approve(held, other_affiliate)
    search = tracking_link_create(offer=held, affiliate=affiliate, subs={"sub1": "search"})
    social = tracking_link_create(offer=held, affiliate=affiliate, subs={"sub1": "social"})
    theirs_search = tracking_link_create(
        offer=held, affiliate=other_affiliate, subs={"sub1": "search"}
    )

    # Good Traffic, sub1=search: approved in review, its duplicate, one not qualified.
    first = _lead(held, affiliate, "a1@example.com", search)
    lead_review_decide(lead_id=first.pk, approve=True, actor=None)
    _lead(held, affiliate, "a1@example.com", search)
    _lead(held, affiliate, "a2@example.com", search, owner="no")
    # Good Traffic, sub1=social: a disposable address still waiting, one rejected in review.
    _lead(held, affiliate, "a3@mailinator.com", social)
    rejected = _lead(held, affiliate, "a4@example.com", social)
    lead_review_decide(lead_id=rejected.pk, approve=False, actor=None)
    # Good Traffic without a click: someone else's click id, refused.
    _lead(held, affiliate, "a5@example.com", theirs_search)
    # Other Traffic, sub1=search: a reviewer's own code, and not qualified.
    bad = _lead(held, other_affiliate, "b1@example.com", theirs_search)
    lead_review_decide(lead_id=bad.pk, approve=False, actor=None, reason="bad_contact")
    _lead(held, other_affiliate, "b2@example.com", theirs_search, owner="no")
    # Another advertiser's offer, and a lead from before the period.
    _lead(theirs, affiliate, "c1@example.com")
    _lead(
        held,
        affiliate,
        "old@example.com",
        search,
        owner="no",
        received_at=timezone.now() - dt.timedelta(days=60),
    )
    return held, theirs


def _period():
    today = timezone.now().date()
    return today - dt.timedelta(days=6), today


def _report(organization, group_by="affiliate"):
    start, end = _period()
    return lead_quality_report(organization=organization, start=start, end=end, group_by=group_by)


def _summary(row):
    return (
        row.leads,
        row.accepted,
        row.refused,
        row.refusal_rate_bp,
        dict(row.refused_by_reason),
        dict(row.refused_by_code),
        dict(row.signals),
    )


def test_the_network_sees_each_affiliate_by_name(network, traffic):
    report = _report(network)
    rows = {row.label: _summary(row) for row in report.rows}
    assert rows == {
        "Good Traffic": (
            7,
            3,
            4,
            5714,
            {
                "duplicate": 1,
                "not_qualified": 1,
                "rejected_in_review": 1,
                "click_affiliate_mismatch": 1,
            },
            {
                "duplicate": 1,
                "not_qualified:owner": 1,
                "rejected_in_review": 1,
                "click_affiliate_mismatch": 1,
            },
            {"click_too_recent": 6, "disposable_email": 1},
        ),
        "Other Traffic": (
            2,
            0,
            2,
            10000,
            {"bad_contact": 1, "not_qualified": 1},
            {"bad_contact": 1, "not_qualified:owner": 1},
            {"click_too_recent": 2},
        ),
    }
    assert [row.label for row in report.rows] == ["Good Traffic", "Other Traffic"]
    assert _summary(report.totals)[:4] == (9, 3, 6, 6667)
    assert report.reasons[0] == "not_qualified"


def test_grouped_by_sub_id_the_network_sees_which_placement_sends_junk(
    network, affiliate, other_affiliate, traffic
):
    report = _report(network, "sub1")
    rows = {(row.source, row.sub): _summary(row)[:5] for row in report.rows}
    assert rows == {
        ("Good Traffic", "search"): (3, 1, 2, 6667, {"duplicate": 1, "not_qualified": 1}),
        ("Good Traffic", "social"): (2, 1, 1, 5000, {"rejected_in_review": 1}),
        ("Good Traffic", ""): (2, 1, 1, 5000, {"click_affiliate_mismatch": 1}),
        ("Other Traffic", "search"): (2, 0, 2, 10000, {"bad_contact": 1, "not_qualified": 1}),
    }
    assert {row.label for row in report.rows} >= {"Good Traffic · search", "Good Traffic · (none)"}


def test_an_advertiser_sees_its_offers_leads_by_source_number(
    advertiser, other_advertiser, affiliate, other_affiliate, traffic
):
    rows = {row.label: _summary(row)[:5] for row in _report(advertiser).rows}
    assert rows == {
        f"Source #{affiliate.pk}": (
            6,
            2,
            4,
            6667,
            {
                "duplicate": 1,
                "not_qualified": 1,
                "rejected_in_review": 1,
                "click_affiliate_mismatch": 1,
            },
        ),
        f"Source #{other_affiliate.pk}": (2, 0, 2, 10000, {"bad_contact": 1, "not_qualified": 1}),
    }
    theirs = {row.label: _summary(row)[:4] for row in _report(other_advertiser).rows}
    assert theirs == {f"Source #{affiliate.pk}": (1, 1, 0, 0)}


def test_an_advertiser_may_not_group_by_an_affiliates_sub_ids(advertiser, traffic):
    with pytest.raises(Invalid) as refused:
        _report(advertiser, "sub1")
    assert refused.value.problems[0].field == "group_by"


def test_an_advertiser_without_offers_sees_nothing(traffic):
    from tests.factories import OrganizationFactory

    nobody = OrganizationFactory(kind="advertiser")
    report = _report(nobody)
    assert (report.rows, report.totals.leads) == ([], 0)


def test_an_affiliate_sees_only_its_own_leads_and_sub_ids(affiliate, other_affiliate, traffic):
    mine = {(row.label): _summary(row)[:4] for row in _report(affiliate, "sub1").rows}
    assert mine == {
        "Good Traffic · search": (3, 1, 2, 6667),
        "Good Traffic · social": (2, 1, 1, 5000),
        "Good Traffic · (none)": (2, 1, 1, 5000),
    }
    theirs = _report(other_affiliate)
    assert [(r.label, r.leads, r.refused) for r in theirs.rows] == [("Other Traffic", 2, 2)]


def test_the_page_renders_for_each_role(network, advertiser, affiliate, other_affiliate, traffic):
    page = logged_in(network).get("/portal/quality/", {"group_by": "sub1"}).content.decode()
    assert 'data-source="Good Traffic · search"' in page and "not_qualified" in page
    assert 'href="/portal/quality/"' in page

    response = logged_in(advertiser).get("/portal/quality/")
    page = response.content.decode()
    assert response.status_code == 200
    assert f'data-source="Source #{affiliate.pk}"' in page and "Good Traffic" not in page
    # Asking to see sub ids falls back to sources.
    page = logged_in(advertiser).get("/portal/quality/", {"group_by": "sub1"}).content.decode()
    assert "search" not in page and f'data-source="Source #{affiliate.pk}"' in page

    page = logged_in(affiliate).get("/portal/quality/", {"group_by": "sub1"}).content.decode()
    assert 'data-source="Good Traffic · social"' in page
    assert "Other Traffic" not in page and "bad_contact" not in page


def test_the_api_reports_quality_scoped_to_the_key(
    network, advertiser, affiliate, other_affiliate, traffic
):
    start, end = _period()
    query = {"start": start.isoformat(), "end": end.isoformat(), "group_by": "sub1"}
    body = Client().get("/api/v1/reports/quality", query, **bearer(network)).json()
    assert body["group_by"] == "sub1"
    assert body["totals"]["leads"] == 9 and body["totals"]["refused"] == 6
    search = next(r for r in body["rows"] if r["label"] == "Good Traffic · search")
    assert search == {
        "affiliate_id": affiliate.pk,
        "sub": "search",
        "label": "Good Traffic · search",
        "leads": 3,
        "accepted": 1,
        "refused": 2,
        "refusal_rate_bp": 6667,
        "refused_by_reason": {"duplicate": 1, "not_qualified": 1},
        "refused_by_code": {"duplicate": 1, "not_qualified:owner": 1},
        "signals": {"click_too_recent": 3},
    }

    mine = Client().get("/api/v1/reports/quality", **bearer(other_affiliate)).json()
    assert [(r["label"], r["leads"]) for r in mine["rows"]] == [("Other Traffic", 2)]

    refused = Client().get("/api/v1/reports/quality", query, **bearer(advertiser))
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "group_by"
    sources = Client().get("/api/v1/reports/quality", **bearer(advertiser)).json()
    assert {r["label"] for r in sources["rows"]} == {
        f"Source #{affiliate.pk}",
        f"Source #{other_affiliate.pk}",
    }
    assert Client().get("/api/v1/reports/quality").status_code == 401


def test_nothing_is_written_by_reading_the_report(network, traffic):
    before = list(Lead.objects.order_by("pk").values_list("pk", "status", "reasons"))
    _report(network, "sub1")
    assert list(Lead.objects.order_by("pk").values_list("pk", "status", "reasons")) == before
