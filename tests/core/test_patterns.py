"""Users' patterns run in linear time: a pattern that backtracks exponentially in Python's
`re` (here `(a+)+$` over 64 KB) returns at once, and patterns RE2 can't run are refused."""

import pytest

from leadrelay.core.errors import Invalid
from leadrelay.core.patterns import pattern_found, pattern_problem
from leadrelay.distribution.buyers import buyer_create
from leadrelay.distribution.delivery import response_verdict
from leadrelay.distribution.models import Buyer
from leadrelay.leads.rules import Facts, rules_failures, rules_problems

EVIL = r"^(a+)+$"
CRAFTED = "a" * 65_536 + "!"  # Python's re would not finish this in a lifetime


def test_a_catastrophic_pattern_answers_at_once():
    assert pattern_found(EVIL, CRAFTED) is False
    assert pattern_found(EVIL, "aaaa") is True


def test_patterns_re2_cannot_run_are_refused_with_the_reason():
    assert pattern_problem(r"^\d{5}$") == ""
    assert "invalid escape" in pattern_problem(r"(a)\1")
    assert "(?<=" in pattern_problem(r"(?<=a)b")
    assert pattern_problem("x" * 201) == "At most 200 characters."
    assert pattern_found(r"(a)\1", "aa") is None  # an old unusable pattern finds nothing


def test_a_buyer_answer_cannot_hang_the_response_rule():
    buyer = Buyer(accept_regex=EVIL)
    verdict = response_verdict(buyer, CRAFTED)
    assert (verdict.accepted, verdict.reason) == (False, "accept_regex_not_found")
    assert response_verdict(Buyer(accept_regex=r"(a)\1"), "aa").reason == "accept_regex_invalid"


def test_qualification_rules_use_the_same_engine():
    rule = {"field": "fields.note", "op": "regex", "value": EVIL, "code": "bad_note"}
    assert rules_problems(rule, {"note"}) == []
    assert rules_failures(rule, Facts(fields={"note": CRAFTED})) == ["bad_note"]
    (problem,) = rules_problems({**rule, "value": r"(?=a)"}, {"note"})
    assert problem.code == "invalid_regex"


def test_a_buyer_with_a_pattern_re2_cannot_run_is_refused(advertiser, settings):
    settings.LEADRELAY_ALLOW_PRIVATE_URLS = True
    with pytest.raises(Invalid) as exc:
        buyer_create(
            advertiser=advertiser,
            name="Lookbehind",
            vertical="insurance",
            price_minor=100,
            url="http://127.0.0.1:9/",
            field_map={"mail": "{email}"},
            accept_regex=r"(?<=status: )ok",
        )
    assert [(p.code, p.field) for p in exc.value.problems] == [("invalid_regex", "accept_regex")]
