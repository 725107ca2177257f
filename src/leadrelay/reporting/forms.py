from __future__ import annotations

from django import forms

from leadrelay.portals.forms import DateRangeForm

GROUP_LABELS = {
    "affiliate": "Affiliate",
    "sub1": "Affiliate and sub1",
    "sub2": "Affiliate and sub2",
    "sub3": "Affiliate and sub3",
    "sub4": "Affiliate and sub4",
    "sub5": "Affiliate and sub5",
}


class QualityForm(DateRangeForm):
    group_by = forms.ChoiceField(required=False, label="Group by")

    def __init__(self, *args: object, groupings: tuple[str, ...], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        group_field = self.fields["group_by"]
        assert isinstance(group_field, forms.ChoiceField)
        group_field.choices = [(g, GROUP_LABELS[g]) for g in groupings]

    def grouping(self) -> str:
        """The chosen grouping; by affiliate when none or an unknown one was asked for."""
        if not self.is_valid():
            return "affiliate"
        return self.cleaned_data.get("group_by") or "affiliate"
