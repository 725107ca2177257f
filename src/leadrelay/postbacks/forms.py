from __future__ import annotations

from typing import Any

from django import forms

from leadrelay.accounts.models import Organization
from leadrelay.offers.models import Offer
from leadrelay.postbacks.models import URL_MAX_LENGTH, PostbackEvent
from leadrelay.postbacks.selectors import offers_for_postbacks


class PostbackForm(forms.Form):
    event = forms.ChoiceField(choices=PostbackEvent.choices)
    offer: forms.ModelChoiceField[Offer] = forms.ModelChoiceField(
        queryset=Offer.objects.none(), required=False, empty_label="All offers", to_field_name="pk"
    )
    url_template = forms.CharField(
        label="URL",
        max_length=URL_MAX_LENGTH,
        widget=forms.URLInput(
            attrs={"size": 80, "placeholder": "https://tracker.example.com/pb?cid={click_id}"}
        ),
    )

    def __init__(self, *args: Any, affiliate: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer_field = self.fields["offer"]
        assert isinstance(offer_field, forms.ModelChoiceField)
        offer_field.queryset = offers_for_postbacks(affiliate=affiliate)
