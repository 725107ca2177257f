from __future__ import annotations

from collections.abc import Iterable

from django import forms

from leadrelay.core.errors import Problem
from leadrelay.tracking.models import SUB_MAX_LENGTH


class LinkForm(forms.Form):
    sub1 = forms.CharField(required=False, max_length=SUB_MAX_LENGTH)
    sub2 = forms.CharField(required=False, max_length=SUB_MAX_LENGTH)
    sub3 = forms.CharField(required=False, max_length=SUB_MAX_LENGTH)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Default")


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.SlugField(required=False, max_length=64)
    note = forms.CharField(required=False, max_length=1000)


def problems_on_form(form: forms.Form, problems: Iterable[Problem]) -> None:
    """A service's problems (core/errors.py) on the form fields they name, or above it."""
    for problem in problems:
        form.add_error(problem.field if problem.field in form.fields else None, problem.message)
