"""The buyer settings form: every setting of distribution/buyers.py's EDITABLE but the
signing secrets (rotated on their own), with the JSON-shaped ones as JSON text.

The form only parses: amounts typed as people write them, JSON with the line and
column of a mistake. Whether the settings make sense is the service's to say; its
problems are put back on the fields they name (`form_problems_show`).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.bounds import IdsChoiceField
from leadrelay.core.errors import Problem
from leadrelay.core.money import currency_exponent, money_parse
from leadrelay.core.text import data_problems
from leadrelay.distribution.buyers import EDITABLE, buyer_settings
from leadrelay.distribution.models import Buyer, DeliveryMethod
from leadrelay.distribution.selectors import offers_sold_to_buyers
from leadrelay.offers.models import CapPeriod, Vertical

JSON_SETTINGS = ("filters", "schedule", "field_map", "headers", "ping_field_map")
# The form's name for a setting it shows as an amount rather than minor units.
AMOUNT_SETTINGS = {"price_minor": "price", "credit_limit_minor": "credit_limit"}


class JsonObjectField(forms.CharField):
    """A JSON object typed into a textarea; empty is {}."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60, "class": "mono", "spellcheck": "false"})

    def __init__(self, *, example: str, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", f"JSON, e.g. {example}")
        super().__init__(max_length=20_000, **kwargs)

    def clean(self, value: Any) -> dict[str, Any]:
        text = str(super().clean(value) or "").strip()
        if not text:
            return {}
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
                code="invalid_json",
            ) from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError("A JSON object: {…}.", code="not_an_object")
        # "\u0000" typed as six characters passes the edge's text rule; decoded, it is NUL.
        if problems := data_problems(parsed):
            raise forms.ValidationError(
                [f"{p.field}: {p.message}" if p.field else p.message for p in problems],
                code="invalid_characters",
            )
        return parsed


def _amount_text(amount_minor: int | None, currency: str) -> str:
    if amount_minor is None:
        return ""
    return str(Decimal(amount_minor).scaleb(-currency_exponent(currency)))


class BuyerForm(forms.Form):
    advertiser = forms.ModelChoiceField(queryset=Organization.objects.none())
    name = forms.CharField(max_length=200)
    vertical = forms.ChoiceField(choices=Vertical.choices)
    offers = IdsChoiceField(
        queryset=offers_sold_to_buyers(),
        required=False,
        help_text="None: every offer of the vertical.",
    )
    price = forms.CharField(max_length=20, help_text="Per lead, e.g. 30.00")
    currency = forms.CharField(max_length=3, initial="USD")
    priority = forms.IntegerField(initial=100, help_text="Lower goes first.")
    weight = forms.IntegerField(initial=1)
    exclusive = forms.BooleanField(required=False, initial=True)
    filters = JsonObjectField(
        example='{"field": "fields.zip", "op": "regex", "value": "^9", "code": "west"}'
    )
    schedule = JsonObjectField(example='{"mon": [["09:00", "17:00"]]}')
    timezone = forms.CharField(max_length=64, initial="UTC")
    credit_limit = forms.CharField(
        max_length=20, required=False, help_text="Beyond the prepaid balance; empty: no limit."
    )
    method = forms.ChoiceField(choices=DeliveryMethod.choices)
    url = forms.CharField(max_length=2000, required=False)
    email_to = forms.CharField(max_length=500, required=False, help_text="Comma separated.")
    email_subject = forms.CharField(max_length=200, required=False)
    field_map = JsonObjectField(
        example='{"fname": "{first_name}", "mail": "{email}", "source": "leadrelay"}',
        required=True,
    )
    headers = JsonObjectField(example='{"X-Api-Key": "…"}')
    accept_json_path = forms.CharField(max_length=200, required=False)
    accept_value = forms.CharField(max_length=200, required=False)
    accept_regex = forms.CharField(max_length=200, required=False)
    lead_id_json_path = forms.CharField(max_length=200, required=False)
    price_json_path = forms.CharField(max_length=200, required=False)
    ping_url = forms.CharField(max_length=2000, required=False)
    ping_field_map = JsonObjectField(example='{"zip": "{zip}", "state": "{state}"}')
    bid_json_path = forms.CharField(max_length=200, required=False)
    ping_id_json_path = forms.CharField(max_length=200, required=False)
    ping_timeout_ms = forms.IntegerField(initial=1000)
    pause_after_failures = forms.IntegerField(initial=20)
    return_window_days = forms.IntegerField(initial=7)
    auto_accept_returns_bp = forms.IntegerField(
        initial=0, help_text="Basis points of the month's deliveries; 0: every return reviewed."
    )

    def __init__(self, *args: Any, choose_advertiser: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if choose_advertiser:
            field = self.fields["advertiser"]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = Organization.objects.filter(
                kind=OrganizationKind.ADVERTISER, is_active=True
            ).order_by("name")
        else:
            del self.fields["advertiser"]

    @classmethod
    def initial_for(cls, buyer: Buyer) -> dict[str, Any]:
        data: dict[str, Any] = buyer_settings(buyer)
        for key in JSON_SETTINGS:
            data[key] = json.dumps(data[key], indent=2, ensure_ascii=False) if data[key] else ""
        for key, name in AMOUNT_SETTINGS.items():
            data[name] = _amount_text(data.pop(key), buyer.currency)
        data["offers"] = list(buyer.offers.all())
        return data

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["currency"] = str(data.get("currency", "")).strip().upper()
        for key, name in AMOUNT_SETTINGS.items():
            text = str(data.get(name) or "").strip()
            if not text:
                data[key] = None
                continue
            try:
                data[key] = money_parse(text, data["currency"])
            except ValueError as exc:
                self.add_error(name, f"The amount is {exc}.")
        return data

    def settings(self) -> dict[str, Any]:
        """The cleaned settings as the buyer services take them (offers apart)."""
        return {k: self.cleaned_data[k] for k in EDITABLE if k in self.cleaned_data}

    def problems_show(self, problems: list[Problem]) -> None:
        """Put each of the service's problems on the field it names (`filters.0.op` on
        filters), or above the form."""
        for problem in problems:
            key = (problem.field or "").split(".")[0]
            name = AMOUNT_SETTINGS.get(key, key)
            text = problem.message
            if problem.field and problem.field != key:
                text = f"{problem.field}: {text}"
            self.add_error(name if name in self.fields else None, text)


class CapForm(forms.Form):
    period = forms.ChoiceField(choices=CapPeriod.choices)
    max_leads = forms.IntegerField(required=False, min_value=0)
    max_spend = forms.CharField(required=False, max_length=20, help_text="An amount, e.g. 500.00")
