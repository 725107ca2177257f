"""Qualification rules: the advertiser's conditions a lead must meet, stored as data.

A rule set is a tree of {"all": [...]} / {"any": [...]} nodes whose leaves are
conditions over the lead's fields ("fields.<key>") and the visitor's facts
("visitor.country", "visitor.device"):

    {"all": [
        {"field": "fields.homeowner", "op": "equals", "value": "yes"},
        {"field": "fields.birth_date", "op": "age", "min": 18, "max": 75},
        {"any": [{"field": "visitor.country", "op": "in", "value": ["US", "CA"]},
                 {"field": "fields.zip", "op": "regex", "value": "^9"}]}]}

Operators: equals, not_equals, in, not_in, range (min and/or max, numbers),
regex (searched in the value's text; at most 200 characters; RE2 syntax, so
no backreferences or lookarounds, and linear time whatever the input), age (whole
years from a date field to today, min and/or max), exists, not_exists. Each
failed condition gives a reason code: its own "code" if it has one, else
`rule:<field>:<op>`; an "any" node that fails gives the codes of its children.
A condition on a value the lead doesn't have fails (except not_exists).

Written by hand: the JSON-logic libraries found evaluate rules but give no
per-condition reasons and no validation against an offer's fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from leadrelay.core.errors import Problem
from leadrelay.core.patterns import pattern_found, pattern_problem

OPS = {"equals", "not_equals", "in", "not_in", "range", "regex", "age", "exists", "not_exists"}
VISITOR_FACTS = {"country", "device"}
MAX_DEPTH = 6
MAX_CONDITIONS = 100


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def rules_problems(rules: Any, field_keys: set[str]) -> list[Problem]:
    """Everything wrong with a rule set, each with its path in the tree."""
    problems: list[Problem] = []
    count = 0

    def walk(node: Any, path: str, depth: int) -> None:
        nonlocal count
        if depth > MAX_DEPTH:
            problems.append(Problem("too_deep", f"At most {MAX_DEPTH} levels.", path))
            return
        if not isinstance(node, Mapping):
            problems.append(Problem("invalid_rule", "A rule is an object.", path))
            return
        group = [k for k in ("all", "any") if k in node]
        if group:
            children = node[group[0]]
            if len(group) > 1 or not isinstance(children, list) or not children:
                problems.append(
                    Problem("invalid_group", "Give one of all/any with a list of rules.", path)
                )
                return
            for i, child in enumerate(children):
                walk(child, f"{path}.{group[0]}[{i}]", depth + 1)
            return
        count += 1
        field, op = node.get("field"), node.get("op")
        if not isinstance(field, str) or "." not in field:
            problems.append(Problem("invalid_field", "fields.<key> or visitor.<fact>.", path))
        else:
            kind, _, name = field.partition(".")
            if (
                (kind == "fields" and name not in field_keys)
                or (kind == "visitor" and name not in VISITOR_FACTS)
                or kind not in {"fields", "visitor"}
            ):
                problems.append(Problem("unknown_field", f"{field} is not known here.", path))
        if op not in OPS:
            problems.append(Problem("invalid_op", f"Use one of: {', '.join(sorted(OPS))}.", path))
            return
        value = node.get("value")
        if op in {"in", "not_in"} and (not isinstance(value, list) or not value):
            problems.append(Problem("invalid_value", "A non-empty list.", path))
        if op in {"range", "age"}:
            bounds = [node.get("min"), node.get("max")]
            if all(b is None for b in bounds) or any(
                b is not None and _number(b) is None for b in bounds
            ):
                problems.append(Problem("invalid_bounds", "Numbers for min and/or max.", path))
        if op == "regex":
            if not isinstance(value, str):
                problems.append(Problem("invalid_regex", "A pattern, as text.", path))
            elif why := pattern_problem(value):
                problems.append(Problem("invalid_regex", why, path))
        if "code" in node and not (isinstance(node["code"], str) and 0 < len(node["code"]) <= 64):
            problems.append(Problem("invalid_code", "A code of 1 to 64 characters.", path))

    if rules in (None, {}):
        return []
    walk(rules, "rules", 1)
    if count > MAX_CONDITIONS:
        problems.append(Problem("too_many", f"At most {MAX_CONDITIONS} conditions.", "rules"))
    return problems


@dataclass(frozen=True)
class Facts:
    fields: Mapping[str, Any]
    country: str = ""
    device: str = ""
    today: dt.date | None = None


def _lookup(facts: Facts, field: str) -> Any:
    kind, _, name = field.partition(".")
    if kind == "fields":
        return facts.fields.get(name)
    return {"country": facts.country, "device": facts.device}.get(name) or None


def _age(value: Any, today: dt.date) -> int | None:
    try:
        born = dt.date.fromisoformat(str(value))
    except ValueError:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _text_of(value: Any) -> Any:
    """Compare as text, with yes/no fields as "true"/"false" (JSON true and "true" alike)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _holds(node: Mapping[str, Any], facts: Facts) -> bool:
    op: str = node["op"]
    value: Any = node.get("value")  # checked by rules_problems before a rule is saved
    actual = _text_of(_lookup(facts, node["field"]))
    if op == "not_exists":
        return actual in (None, "")
    if actual in (None, ""):
        return False
    if op == "exists":
        return True
    if op == "equals":
        return actual == _text_of(value)
    if op == "not_equals":
        return actual != _text_of(value)
    if op == "in":
        return actual in {_text_of(v) for v in value}
    if op == "not_in":
        return actual not in {_text_of(v) for v in value}
    if op == "regex":
        return pattern_found(value, str(actual)) is True  # an unusable pattern fails
    number = _age(actual, facts.today or dt.date.today()) if op == "age" else _number(actual)
    if number is None:
        return False
    low, high = _number(node.get("min")), _number(node.get("max"))
    return (low is None or number >= low) and (high is None or number <= high)


def _code(node: Mapping[str, Any]) -> str:
    return node.get("code") or f"rule:{node['field'].partition('.')[2]}:{node['op']}"


def rules_failures(rules: Any, facts: Facts) -> list[str]:
    """Reason codes of the conditions this lead fails; empty when it qualifies."""
    if not rules:
        return []

    def check(node: Mapping[str, Any]) -> list[str]:
        if "all" in node:
            return [code for child in node["all"] for code in check(child)]
        if "any" in node:
            failures = [check(child) for child in node["any"]]
            if any(not f for f in failures):
                return []
            return [code for f in failures for code in f]
        return [] if _holds(node, facts) else [_code(node)]

    return list(dict.fromkeys(check(rules)))
