"""Pages for the emailed summaries: subscribe, change and unsubscribe in the portal, and
the one-click unsubscribe link each email carries (reporting/subscriptions.py)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt

from leadrelay.accounts.models import Membership
from leadrelay.core.errors import Invalid, NotFound
from leadrelay.portals.access import portal_user, portal_view
from leadrelay.portals.forms import problems_on_form
from leadrelay.reporting.models import ReportFrequency
from leadrelay.reporting.subscriptions import (
    WEEKDAYS,
    report_sends_of,
    report_subscription_by_token,
    report_subscription_delete,
    report_subscription_of,
    report_subscription_save,
    report_subscription_unsubscribe,
    time_zones,
)


class SubscriptionForm(forms.Form):
    """Parses the fields; the service says what is wrong with their values."""

    frequency = forms.CharField(widget=forms.Select(choices=ReportFrequency.choices))
    weekday = forms.IntegerField(initial=0, widget=forms.Select(choices=list(enumerate(WEEKDAYS))))
    hour = forms.IntegerField(
        initial=8, widget=forms.Select(choices=[(h, f"{h:02d}:00") for h in range(24)])
    )
    timezone = forms.CharField(
        max_length=64, initial="UTC", widget=forms.TextInput(attrs={"list": "timezones"})
    )


# A member with the viewer role may still choose what lands in their own inbox.
@portal_view(viewer_may_post=True)
def report_email(request: HttpRequest, membership: Membership) -> HttpResponse:
    user = portal_user(request)
    subscription = report_subscription_of(user=user)
    status = 200
    if request.method == "POST" and request.POST.get("action") == "unsubscribe":
        if report_subscription_delete(user=user):
            messages.success(request, "You are unsubscribed from the email summaries.")
        return redirect("portal-report-email")
    if request.method == "POST":
        form = SubscriptionForm(request.POST)
        if form.is_valid():
            try:
                report_subscription_save(
                    user=user,
                    organization=membership.organization,
                    frequency=form.cleaned_data["frequency"],
                    hour=form.cleaned_data["hour"],
                    weekday=form.cleaned_data["weekday"],
                    tz=form.cleaned_data["timezone"],
                )
            except Invalid as exc:
                problems_on_form(form, exc.problems)
            else:
                messages.success(request, "Your email summary is saved.")
                return redirect("portal-report-email")
        status = 422
    else:
        initial = {}
        if subscription is not None:
            initial = {
                "frequency": subscription.frequency,
                "weekday": subscription.weekday,
                "hour": subscription.hour,
                "timezone": subscription.timezone,
            }
        form = SubscriptionForm(initial=initial)
    return render(
        request,
        "reporting/subscriptions.html",
        {
            "form": form,
            "subscription": subscription,
            "weekday_name": WEEKDAYS[subscription.weekday] if subscription else "",
            "sends": report_sends_of(user=user),
            "timezones": time_zones(),
        },
        status=status,
    )


# No login and no CSRF token: the signed token is the credential, and mail clients
# POST here for RFC 8058 one-click unsubscribe. A GET only asks, because mail scanners
# follow links.
@csrf_exempt
def report_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    try:
        if request.method == "POST":
            report_subscription_unsubscribe(token=token)
            done = True
        else:
            done = report_subscription_by_token(token=token) is None
    except NotFound:
        context, status = {"invalid": True}, 404
    else:
        context, status = {"invalid": False, "done": done}, 200
    return render(request, "reporting/subscriptions_unsubscribe.html", context, status=status)
