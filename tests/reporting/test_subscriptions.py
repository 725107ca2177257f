"""Emailed report summaries, sent to a real local SMTP server (aiosmtpd)."""

import datetime as dt
import json
import logging
import re
from email.header import decode_header, make_header
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client

from leadrelay.accounts.models import Membership, Role, User
from leadrelay.core.errors import Invalid
from leadrelay.core.models import SetAside, SetAsideKind
from leadrelay.leads.models import LeadSource
from leadrelay.leads.services import lead_intake
from leadrelay.reporting.models import ReportSend, ReportSubscription
from leadrelay.reporting.subscriptions import (
    report_subscription_delete,
    report_subscription_save,
    report_summaries_send_now,
)
from tests.factories import approve, make_offer, member
from tests.smtp import smtp_inbox

BERLIN = "Europe/Berlin"  # UTC+1 in March 2026
DAY = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)  # Tuesday the 10th, in Berlin too
LATE = dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC)  # already the 11th in Berlin
DUE = dt.datetime(2026, 3, 11, 7, 5, tzinfo=dt.UTC)  # 08:05 in Berlin, Wednesday
BASE = "https://leads.example.com"


@pytest.fixture
def inbox(settings):
    settings.PUBLIC_BASE_URL = BASE
    with smtp_inbox(settings) as box:
        yield box


@pytest.fixture
def traffic(network, advertiser, other_advertiser, affiliate, other_affiliate):
    """The 10th (Berlin): three approved leads; the 9th: one; late on the 10th UTC (the
    11th in Berlin): one more that a Berlin summary of the 10th leaves out."""
    mine = make_offer(advertiser, name="Mine", revenue_minor=2500, payout_minor=1800)
    theirs = make_offer(other_advertiser, name="Theirs", revenue_minor=4000, payout_minor=3000)
    approve(mine, affiliate)
    approve(theirs, affiliate)
    approve(mine, other_affiliate)
    n = iter(range(100))

    def lead(offer, who, at):
        with time_machine.travel(at, tick=False):
            lead_intake(
                offer_id=offer.pk,
                fields={"first_name": "A", "email": f"x{next(n)}@example.com"},
                source=LeadSource.API,
                affiliate=who,
            )

    lead(mine, affiliate, DAY - dt.timedelta(days=1))
    lead(mine, affiliate, DAY)
    lead(mine, other_affiliate, DAY)
    lead(theirs, affiliate, DAY)
    lead(theirs, affiliate, LATE)


def _subscribe(organization, frequency="daily", hour=8, weekday=0, role=Role.OWNER):
    user = member(organization, role)
    with time_machine.travel(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), tick=False):
        subscription = report_subscription_save(
            user=user,
            organization=organization,
            frequency=frequency,
            hour=hour,
            weekday=weekday,
            tz=BERLIN,
        )
    return user, subscription


def _run(at):
    with time_machine.travel(at, tick=False):
        return report_summaries_send_now()


def _bodies(message):
    parts = {p.get_content_type(): p for p in message.walk()}
    text = parts["text/plain"].get_payload(decode=True).decode().replace("\r\n", "\n")
    html = parts["text/html"].get_payload(decode=True).decode()
    return text, html


def _subject(message):
    return str(make_header(decode_header(message["Subject"])))


def _lines(text):
    """Each summary line of the plain text as label → (value, previous, change)."""
    found = {}
    for line in text.splitlines():
        m = re.fullmatch(r"(.{20}) +(\S.*?)   was +(\S.*?)   (\S.*)", line)
        if m:
            found[m[1].strip()] = (m[2], m[3], m[4])
    return found


def test_a_daily_summary_is_mailed_once_with_the_networks_numbers(network, traffic, inbox):
    user, _ = _subscribe(network)
    assert _run(DUE - dt.timedelta(minutes=10)) == 0  # 07:55 in Berlin: not yet
    assert inbox.messages == []

    assert _run(DUE) == 1
    (message,) = inbox.messages
    assert inbox.envelopes[0].rcpt_tos == [user.email]
    assert message["Subject"] == "The Network: your daily leadrelay summary, 2026-03-10"
    text, html = _bodies(message)
    lines = _lines(text)
    assert lines["Leads"] == ("3", "1", "+200.00%")
    assert lines["Approved"] == ("3", "1", "+200.00%")
    assert lines["Approval rate"] == ("100.00%", "100.00%", "0.00 pt")
    assert lines["Revenue"] == ("USD 90.00", "USD 25.00", "+260.00%")
    assert lines["Payout"] == ("USD 66.00", "USD 18.00", "+266.67%")
    assert lines["Profit"] == ("USD 24.00", "USD 7.00", "+242.86%")
    assert lines["Margin"] == ("26.67%", "28.00%", "-1.33 pt")
    assert "2026-03-10 (Europe/Berlin), compared with 2026-03-09" in text
    assert "- Mine · 2 · 2 · USD 50.00 · USD 36.00" in text
    assert "- Other Traffic · 1 · 1 · USD 25.00 · USD 18.00" in text
    assert f"{BASE}/portal/?start=2026-03-10&end=2026-03-10" in text
    for number in ("USD 90.00", "USD 66.00", "USD 24.00", "Mine", "Theirs", "Other Traffic"):
        assert number in html
    # No remote images, stylesheets or fonts: inline styles, links home only.
    assert not re.search(r"<img|<link|<style|@import|src=", html)
    assert set(re.findall(r'href="([^"]+)"', html)) <= {
        f"{BASE}/portal/?start=2026-03-10&amp;end=2026-03-10",
        f"{BASE}/portal/reports/email/",
        re.search(r"<(.+)>", message["List-Unsubscribe"])[1],
    }
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (send,) = ReportSend.objects.all()
    assert (send.status, send.period_start, send.period_end, send.attempts) == (
        "sent",
        dt.date(2026, 3, 10),
        dt.date(2026, 3, 10),
        1,
    )

    assert _run(DUE + dt.timedelta(hours=3)) == 0  # run again the same day: nothing new
    assert len(inbox.messages) == 1
    assert _run(DUE + dt.timedelta(days=1)) == 1  # the next day's summary
    assert ReportSend.objects.count() == 2


@pytest.mark.parametrize(
    ("who", "shown", "hidden"),
    [
        (
            "advertiser",
            {"Leads": ("2", "1", "+100.00%"), "Spend": ("USD 50.00", "USD 25.00", "+100.00%"),
             "CPL": ("USD 25.00", "USD 25.00", "0.00%")},
            ["Payout", "Profit", "Earnings", "EPC", "Margin", "ROI", "USD 36.00", "USD 18.00",
             "Theirs", "Good Traffic", "Other Traffic"],
        ),
        (
            "affiliate",
            {"Leads": ("2", "1", "+100.00%"),
             "Earnings": ("USD 48.00", "USD 18.00", "+166.67%")},
            ["Revenue", "Spend", "Profit", "CPL", "Margin", "ROI", "USD 65.00", "USD 90.00",
             "USD 40.00", "Other Traffic", "Source"],
        ),
    ],
)  # fmt: skip
def test_each_role_gets_only_its_own_numbers(request, traffic, inbox, who, shown, hidden):
    """An advertiser never sees payout or profit, nor whose traffic it is; an affiliate
    never revenue or profit, nor other affiliates."""
    _subscribe(request.getfixturevalue(who))
    assert _run(DUE) == 1
    text, html = _bodies(inbox.messages[0])
    lines = _lines(text)
    assert {label: lines[label] for label in shown} == shown
    for body in (text, html):
        assert [word for word in hidden if word in body] == []


def test_a_weekly_summary_covers_the_last_seven_days(network, traffic, inbox):
    _subscribe(network, frequency="weekly", weekday=2)  # Wednesdays at 08:00
    assert _run(DUE - dt.timedelta(days=1)) == 0  # Tuesday
    assert _run(DUE) == 1
    message = inbox.messages[0]
    assert _subject(message) == (
        "The Network: your weekly leadrelay summary, 2026-03-04 – 2026-03-10"
    )
    lines = _lines(_bodies(message)[0])
    assert lines["Leads"] == ("4", "0", "–")
    assert lines["Revenue"] == ("USD 115.00", "USD 0.00", "–")
    assert _run(DUE + dt.timedelta(days=3)) == 0  # Saturday: the same week, sent already


def test_nothing_is_due_for_a_moment_before_subscribing(network, traffic, inbox):
    user = member(network)
    with time_machine.travel(DUE + dt.timedelta(hours=1), tick=False):
        report_subscription_save(
            user=user, organization=network, frequency="daily", hour=8, tz=BERLIN
        )
        assert report_summaries_send_now() == 0  # 08:00 today has passed: tomorrow's is first
    assert inbox.messages == []
    assert _run(DUE + dt.timedelta(days=1)) == 1


def test_the_unsubscribe_link_works_and_stops_mail(network, traffic, inbox):
    user, subscription = _subscribe(network)
    _run(DUE)
    path = urlsplit(re.search(r"<(.+)>", inbox.messages[0]["List-Unsubscribe"])[1]).path
    client = Client(enforce_csrf_checks=True)
    page = client.get(path)  # a mail scanner following the link changes nothing
    assert page.status_code == 200 and "Stop the emailed summaries" in page.content.decode()
    assert ReportSubscription.objects.filter(pk=subscription.pk).exists()

    forged = client.post(path[:-3] + "xyz/", {"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 404
    assert ReportSubscription.objects.filter(pk=subscription.pk).exists()

    done = client.post(path, {"List-Unsubscribe": "One-Click"})  # RFC 8058: no login, no CSRF
    assert done.status_code == 200 and "You are unsubscribed" in done.content.decode()
    assert not ReportSubscription.objects.filter(user=user).exists()
    assert client.post(path).status_code == 200  # twice is fine
    assert _run(DUE + dt.timedelta(days=1)) == 0
    assert len(inbox.messages) == 1


def test_a_mail_server_that_is_down_leaves_the_summary_to_the_next_run(
    network, traffic, inbox, settings
):
    _subscribe(network)
    settings.EMAIL_PORT = 1  # nothing listens there
    assert _run(DUE) == 0
    (send,) = ReportSend.objects.all()
    assert (send.status, send.attempts, send.sent_at) == ("retry", 1, None)
    assert "ConnectionRefusedError" in send.error

    settings.EMAIL_PORT = inbox.port
    assert _run(DUE + dt.timedelta(minutes=5)) == 1
    send.refresh_from_db()
    assert (send.status, send.attempts, send.error) == ("sent", 2, "")
    assert len(inbox.messages) == 1
    assert _run(DUE + dt.timedelta(minutes=10)) == 0


def test_a_refused_address_fails_for_good(network, traffic, inbox):
    _subscribe(network)
    inbox.refuse = "550 No such user"
    assert _run(DUE) == 0
    (send,) = ReportSend.objects.all()
    assert send.status == "failed" and "550" in send.error
    inbox.refuse = ""
    assert _run(DUE + dt.timedelta(minutes=5)) == 0
    assert inbox.messages == []


def test_a_send_a_worker_dropped_mid_way_is_not_sent_again(network, traffic, inbox):
    """At most once: a claim whose worker died is marked unknown, not resent; a fresh
    claim of another worker is left alone."""
    _, subscription = _subscribe(network)
    send = ReportSend.objects.create(
        subscription=subscription,
        period_start=dt.date(2026, 3, 10),
        period_end=dt.date(2026, 3, 10),
        status="sending",
        created_at=DUE,
        claimed_at=DUE,
    )
    assert _run(DUE + dt.timedelta(minutes=5)) == 0  # another worker may be sending it
    send.refresh_from_db()
    assert send.status == "sending"
    assert _run(DUE + dt.timedelta(minutes=20)) == 0
    send.refresh_from_db()
    assert send.status == "unknown"
    assert inbox.messages == []


def test_a_former_member_gets_nothing(network, traffic, inbox):
    user, _ = _subscribe(network)
    Membership.objects.filter(user=user).delete()
    assert _run(DUE) == 0
    assert inbox.messages == []


def test_a_subscription_that_cannot_be_claimed_holds_back_no_other_and_is_sent_once_fixed(
    network, advertiser, traffic, inbox, caplog
):
    _, broken = _subscribe(network)
    user, _ = _subscribe(advertiser)
    # A zone that was valid when saved but that this machine's tzdata no longer knows
    # (tzdata renames and drops zones): the summary's period can't be worked out.
    ReportSubscription.objects.filter(pk=broken.pk).update(timezone="Europe/Atlantis")

    with caplog.at_level(logging.ERROR):
        assert _run(DUE) == 1  # the subscription after the broken one
    assert [e.rcpt_tos for e in inbox.envelopes] == [[user.email]]
    failed = SetAside.objects.get()
    assert (failed.kind, failed.key, failed.attempts, failed.resolved_at) == (
        "report_summary",
        f"subscription:{broken.pk}",
        1,
        None,
    )
    assert failed.error == "ZoneInfoNotFoundError: 'No time zone found with key Europe/Atlantis'"
    assert json.loads(failed.data)["timezone"] == "Europe/Atlantis"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"report_summary subscription:{broken.pk} set aside: {failed.error}"]
    health = Client().get("/healthz").json()["set_aside"]
    assert health == dict.fromkeys(SetAsideKind.values, 0) | {"report_summary": 1}

    assert _run(DUE + dt.timedelta(minutes=5)) == 0  # still unknown: tried again, counted
    failed.refresh_from_db()
    assert (failed.attempts, failed.resolved_at) == (2, None)

    ReportSubscription.objects.filter(pk=broken.pk).update(timezone=BERLIN)  # fixed
    assert _run(DUE + dt.timedelta(minutes=10)) == 1
    assert _run(DUE + dt.timedelta(minutes=15)) == 0  # and once only
    assert [e.rcpt_tos for e in inbox.envelopes] == [[user.email], [broken.user.email]]
    assert list(ReportSend.objects.values_list("status", flat=True)) == ["sent", "sent"]
    failed.refresh_from_db()
    assert (failed.attempts, failed.resolved_at is not None) == (2, True)
    assert Client().get("/healthz").json()["set_aside"] == dict.fromkeys(SetAsideKind.values, 0)


def test_a_set_aside_subscription_ended_meanwhile_is_resolved(network, traffic, inbox):
    user, broken = _subscribe(network)
    ReportSubscription.objects.filter(pk=broken.pk).update(timezone="Europe/Atlantis")
    assert _run(DUE) == 0
    assert SetAside.objects.get().resolved_at is None
    report_subscription_delete(user=user)
    assert _run(DUE + dt.timedelta(minutes=5)) == 0
    failed = SetAside.objects.get()
    assert (failed.attempts, failed.resolved_at is not None) == (1, True)
    assert inbox.messages == []


def test_a_send_the_mail_library_refuses_holds_back_no_other(network, advertiser, traffic, inbox):
    bad_user, _ = _subscribe(network)
    user, _ = _subscribe(advertiser)
    # Stored without validation (create_user doesn't validate): a domain label beyond the
    # 63 characters IDNA allows, which Django can't encode when it addresses the message.
    User.objects.filter(pk=bad_user.pk).update(email=f"ops@{'x' * 64}.example")
    assert _run(DUE) == 1
    assert [e.rcpt_tos for e in inbox.envelopes] == [[user.email]]
    bad = ReportSend.objects.get(subscription__user=bad_user)
    assert (bad.status, bad.attempts, bad.sent_at) == ("retry", 1, None)
    assert bad.error.startswith("send: UnicodeError: ")

    User.objects.filter(pk=bad_user.pk).update(email="ops@example.com")  # fixed
    assert _run(DUE + dt.timedelta(minutes=5)) == 1
    bad.refresh_from_db()
    assert (bad.status, bad.attempts, bad.error) == ("sent", 2, "")
    assert [e.rcpt_tos for e in inbox.envelopes] == [[user.email], ["ops@example.com"]]
    assert not SetAside.objects.exists()


def test_bad_time_zone_frequency_and_hour_are_refused(network):
    user = member(network)
    with pytest.raises(Invalid) as exc:
        report_subscription_save(
            user=user, organization=network, frequency="monthly", hour=24, tz="Mars/Olympus"
        )
    problems = {(p.code, p.field): p.message for p in exc.value.problems}
    assert set(problems) == {
        ("invalid_frequency", "frequency"),
        ("invalid_hour", "hour"),
        ("invalid_timezone", "timezone"),
    }
    assert problems[("invalid_timezone", "timezone")] == (
        "Not an IANA time zone: 'Mars/Olympus'. Use a name such as Europe/Berlin or UTC."
    )
    assert not ReportSubscription.objects.exists()


def test_the_portal_page_subscribes_changes_and_unsubscribes(affiliate):
    user = member(affiliate, Role.VIEWER)  # a viewer still chooses their own email
    client = Client()
    client.force_login(user)
    page = client.get("/portal/reports/email/")
    assert page.status_code == 200 and "You are not subscribed" in page.content.decode()

    bad = client.post(
        "/portal/reports/email/",
        {"frequency": "hourly", "hour": "8", "weekday": "0", "timezone": "Berlin"},
    )
    assert bad.status_code == 422
    assert "Choose daily or weekly." in bad.content.decode()
    assert "Not an IANA time zone: &#x27;Berlin&#x27;" in bad.content.decode()
    assert not ReportSubscription.objects.exists()

    form = {"frequency": "weekly", "hour": "7", "weekday": "4", "timezone": "America/New_York"}
    assert client.post("/portal/reports/email/", form).status_code == 302
    saved = ReportSubscription.objects.get(user=user)
    assert (saved.organization, saved.frequency, saved.hour, saved.weekday, saved.timezone) == (
        affiliate,
        "weekly",
        7,
        4,
        "America/New_York",
    )
    assert "weekly</strong> summary" in client.get("/portal/reports/email/").content.decode()

    assert client.post("/portal/reports/email/", {"action": "unsubscribe"}).status_code == 302
    assert not ReportSubscription.objects.exists()
