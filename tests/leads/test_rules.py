import datetime as dt
from pathlib import Path

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from leadrelay.core.errors import Invalid
from leadrelay.leads.models import LeadSource
from leadrelay.leads.rules import Facts, rules_failures, rules_problems
from leadrelay.leads.services import (
    LeadOrigin,
    lead_intake,
    offer_rules_dry_run,
    offer_rules_set,
)
from leadrelay.offers.services import FieldSpec
from tests.conftest import bearer
from tests.factories import approve, make_offer

GEOIP = str(Path(__file__).parent.parent / "fixtures" / "geoip-test.mmdb")
TODAY = dt.date(2026, 6, 15)
RULES = {
    "all": [
        {"field": "fields.homeowner", "op": "equals", "value": "yes", "code": "not_homeowner"},
        {"field": "fields.birth_date", "op": "age", "min": 25, "max": 70},
        {
            "any": [
                {"field": "visitor.country", "op": "in", "value": ["US", "CA"]},
                {"field": "fields.zip", "op": "regex", "value": "^9"},
            ]
        },
    ]
}
KEYS = {"homeowner", "birth_date", "zip", "income"}


def facts(country="US", **fields):
    return Facts(fields=fields, country=country, device="desktop", today=TODAY)


def test_a_qualifying_lead_fails_nothing():
    assert rules_failures(RULES, facts(homeowner="yes", birth_date="1980-01-01")) == []


def test_each_failed_condition_has_its_reason():
    failures = rules_failures(
        RULES, facts(country="DE", homeowner="no", birth_date="2005-06-16", zip="10001")
    )
    assert failures == [
        "not_homeowner",
        "rule:birth_date:age",
        "rule:country:in",
        "rule:zip:regex",
    ]


def test_age_counts_whole_years_to_the_day():
    rule = {"field": "fields.birth_date", "op": "age", "min": 25}
    assert rules_failures(rule, facts(birth_date="2001-06-15")) == []
    assert rules_failures(rule, facts(birth_date="2001-06-16")) == ["rule:birth_date:age"]


@pytest.mark.parametrize(
    ("rule", "lead", "fails"),
    [
        ({"field": "fields.income", "op": "range", "min": 30000}, {"income": 29999}, True),
        ({"field": "fields.income", "op": "range", "max": 90000}, {"income": "90000"}, False),
        ({"field": "fields.income", "op": "exists"}, {}, True),
        ({"field": "fields.income", "op": "not_exists"}, {}, False),
        ({"field": "fields.zip", "op": "not_in", "value": ["10001"]}, {"zip": "10001"}, True),
        ({"field": "fields.zip", "op": "not_equals", "value": "1"}, {}, True),
    ],
)
def test_operators(rule, lead, fails):
    assert bool(rules_failures(rule, facts(**lead))) is fails


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ({"all": []}, "invalid_group"),
        ({"all": [{"field": "fields.nope", "op": "exists"}]}, "unknown_field"),
        ({"field": "visitor.ip", "op": "exists"}, "unknown_field"),
        ({"field": "fields.zip", "op": "like"}, "invalid_op"),
        ({"field": "fields.zip", "op": "regex", "value": "(unclosed"}, "invalid_regex"),
        ({"field": "fields.zip", "op": "regex", "value": "a" * 201}, "invalid_regex"),
        ({"field": "fields.income", "op": "range"}, "invalid_bounds"),
        ({"field": "fields.zip", "op": "in", "value": []}, "invalid_value"),
        ("not a rule", "invalid_rule"),
    ],
)
def test_bad_rules_are_refused_with_their_path(rules, code):
    assert code in [p.code for p in rules_problems(rules, KEYS)]


def test_rules_nested_too_deep_are_refused():
    rules: dict = {"field": "fields.zip", "op": "exists"}
    for _ in range(7):
        rules = {"all": [rules]}
    assert [p.code for p in rules_problems(rules, KEYS)] == ["too_deep"]


@given(st.recursive(st.just({"field": "fields.zip", "op": "exists"}),
                    lambda kids: st.builds(lambda k, c: {k: c}, st.sampled_from(["all", "any"]),
                                           st.lists(kids, min_size=1, max_size=3)),
                    max_leaves=12))  # fmt: skip
def test_any_valid_tree_evaluates_without_error(rules):
    if rules_problems(rules, KEYS):
        return
    assert rules_failures(rules, facts(zip="9")) == []
    assert set(rules_failures(rules, facts())) <= {"rule:zip:exists"}


@pytest.fixture
def rules_offer(advertiser, affiliate):
    offer = make_offer(
        advertiser,
        fields=[
            FieldSpec("email", "email", required=True),
            FieldSpec("homeowner", "choice", choices=("yes", "no")),
            FieldSpec("birth_date", "date"),
            FieldSpec("zip", "postal_code"),
        ],
    )
    approve(offer, affiliate)
    return offer


def _lead(offer, affiliate, n, ip=None, **fields):
    return lead_intake(
        offer_id=offer.pk,
        fields={"email": f"r{n}@example.com", **fields},
        source=LeadSource.API,
        affiliate=affiliate,
        origin=LeadOrigin(ip=ip),
    )


def test_intake_rejects_by_the_rules_with_reasons(settings, rules_offer, affiliate):
    settings.LEADRELAY_GEOIP_DB = GEOIP
    offer_rules_set(offer=rules_offer, rules=RULES)
    ok = _lead(
        rules_offer, affiliate, 1, ip="203.0.113.5", homeowner="yes", birth_date="1980-02-02"
    )
    bad = _lead(
        rules_offer,
        affiliate,
        2,
        ip="203.0.113.200",
        homeowner="no",
        birth_date="1980-02-02",
        zip="10001",
    )
    assert ok.status == "approved"
    assert (bad.status, bad.reasons) == (
        "rejected",
        ["not_homeowner", "rule:country:in", "rule:zip:regex"],
    )


def test_a_bad_rule_set_changes_nothing(rules_offer):
    with pytest.raises(Invalid):
        offer_rules_set(offer=rules_offer, rules={"all": [{"field": "fields.x", "op": "exists"}]})
    rules_offer.refresh_from_db()
    assert rules_offer.rules == {}


def test_a_dry_run_shows_what_a_change_would_have_rejected(rules_offer, affiliate, advertiser):
    for n, owner in enumerate(["yes", "no", "no", "yes"]):
        _lead(rules_offer, affiliate, n, homeowner=owner)
    proposal = {
        "field": "fields.homeowner",
        "op": "equals",
        "value": "yes",
        "code": "not_homeowner",
    }
    result = offer_rules_dry_run(offer=rules_offer, rules=proposal, last=10)
    assert (result.leads, result.would_reject, len(result.newly_rejected)) == (4, 2, 2)
    assert result.by_reason == {"not_homeowner": 2}
    rules_offer.refresh_from_db()
    assert rules_offer.rules == {}  # nothing saved
    response = Client().post(
        f"/api/v1/offers/{rules_offer.pk}/rules/dry-run",
        {"rules": proposal, "last": 3},
        content_type="application/json",
        **bearer(advertiser),
    )
    assert response.status_code == 200
    assert response.json()["leads"] == 3


def test_only_the_offers_advertiser_and_the_network_set_rules(
    rules_offer, affiliate, other_advertiser
):
    body = {"rules": {"field": "fields.zip", "op": "exists"}}
    for org, status in ((affiliate, 401), (other_advertiser, 404)):
        response = Client().put(
            f"/api/v1/offers/{rules_offer.pk}/rules",
            body,
            content_type="application/json",
            **bearer(org),
        )
        assert response.status_code == status


def test_yes_no_fields_compare_with_true_and_false():
    rule = {"field": "fields.owner", "op": "equals", "value": True}
    assert rules_failures(rule, facts(owner=True)) == []
    assert rules_failures({**rule, "value": "true"}, facts(owner=True)) == []
    assert rules_failures(rule, facts(owner=False)) == ["rule:owner:equals"]
