"""The days a report covers: asked for as `start` and `end` (both optional) by the API, the
pages and their exports, resolved by one rule here so they all answer alike."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from leadrelay.core.bounds import DATE_MAX, DATE_MIN, DAY_MESSAGE, DayField
from leadrelay.core.errors import Invalid, Problem

MAX_DAYS = 366
DEFAULT_DAYS = 30


def date_range_resolve(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """The requested days, defaulting to the last 30 days (UTC) and bounded to a year and
    to DATE_MIN…DATE_MAX. Raises Invalid, with the field, when they are not a period."""
    problems = [
        Problem("out_of_range", DAY_MESSAGE, name)
        for name, day in (("start", start), ("end", end))
        if day is not None and not DATE_MIN <= day <= DATE_MAX
    ]
    if problems:
        raise Invalid(problems)
    end = end or timezone.now().date()
    start = start or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise Invalid([Problem("invalid_range", "start is after end.", "start")])
    if (end - start).days >= MAX_DAYS:
        raise Invalid([Problem("range_too_long", f"At most {MAX_DAYS} days.", "start")])
    return start, end


class DateRangeForm(forms.Form):
    """A page's From and To days."""

    start = DayField(required=False)
    end = DayField(required=False)

    def range(self) -> tuple[dt.date | None, dt.date | None]:
        """The days typed, (None, None) when the form is not valid."""
        if not self.is_valid():
            return None, None
        return self.cleaned_data.get("start"), self.cleaned_data.get("end")

    def period(self) -> tuple[dt.date, dt.date]:
        """The period to show: the one asked for or, when the form or its range is not
        valid, the default one, with the problems on the form for the page to show."""
        try:
            return date_range_resolve(*self.range())
        except Invalid as exc:
            for problem in exc.problems:
                self.add_error(problem.field if problem.field in self.fields else None,
                               problem.message)  # fmt: skip
            return date_range_resolve(None, None)
