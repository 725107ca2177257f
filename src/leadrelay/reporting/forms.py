from __future__ import annotations

from django import forms

from leadrelay.core.bounds import ID_MAX
from leadrelay.core.dateranges import DateRangeForm

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


# Offered in the Reports page's time zone list; any other IANA name may be typed.
COMMON_TIME_ZONES = (
    "UTC", "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "America/Phoenix", "America/Toronto", "America/Mexico_City", "America/Sao_Paulo",
    "Europe/London", "Europe/Dublin", "Europe/Paris", "Europe/Berlin", "Europe/Madrid",
    "Europe/Warsaw", "Europe/Kyiv", "Europe/Istanbul", "Africa/Johannesburg", "Asia/Dubai",
    "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
)  # fmt: skip
MAX_GROUPS = 8  # more than any valid query has; the rest is not looked at


class ReportForm(DateRangeForm):
    """The Reports page's query; its exports take the same query string. Groupings are
    checked by the report itself (reporting/tables.py), whose messages say what is allowed."""

    tz = forms.CharField(required=False, max_length=64, label="Time zone")
    offer = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Offer")
    # An id to type (0: leads without an affiliate), or a list to pick from (__init__).
    affiliate = forms.IntegerField(required=False, min_value=0, max_value=ID_MAX, label="Affiliate")
    currency = forms.CharField(required=False, max_length=3, label="Currency")
    metric = forms.CharField(required=False, max_length=32, label="Chart")

    def __init__(
        self,
        *args: object,
        offers: list[tuple[int, str]],
        affiliates: list[tuple[int, str]] | None,
        default_tz: str = "UTC",
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.default_tz = default_tz
        offer_field = self.fields["offer"]
        assert isinstance(offer_field, forms.TypedChoiceField)
        offer_field.choices = [("", "All offers"), *offers]
        if affiliates is not None:  # a list to choose from, else an id to type
            self.fields["affiliate"] = forms.TypedChoiceField(
                required=False,
                coerce=int,
                empty_value=None,
                label="Affiliate",
                choices=[("", "All affiliates"), *affiliates],
            )

    def group_by(self) -> tuple[str, ...]:
        """The groupings asked for, in order (`group_by` repeated or comma-separated);
        by day when the page is opened without a query."""
        if not self.data:
            return ("day",)
        values = self.data.getlist("group_by") if hasattr(self.data, "getlist") else []
        parts = [p.strip()[:32] for v in values for p in str(v).split(",")]
        return tuple(p for p in parts if p)[:MAX_GROUPS]

    def time_zone(self) -> str:
        if not self.is_valid():
            return self.default_tz
        return self.cleaned_data.get("tz") or self.default_tz

    def value(self, name: str) -> object:
        return self.cleaned_data.get(name) if self.is_valid() else None
