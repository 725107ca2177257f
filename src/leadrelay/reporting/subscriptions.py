"""Scheduled reports: a user's daily or weekly email summary of their dashboard.

A subscription names the organization whose dashboard is summed up (the one the
user acted for when subscribing), the local hour of sending and an IANA time zone.
Daily: yesterday in that zone, sent at the hour. Weekly: the 7 full days before
the chosen weekday, sent at the hour of that day. Each compares with the period
of the same length just before, and shows only what the role may see
(reporting/tables.py `visibility_for`): an advertiser never sees payout or profit,
an affiliate never revenue or profit.

Delivery is at most once per subscription and period. The worker's periodic job
(`report_summaries_send_now`) first commits a `ReportSend` row, unique per
(subscription, period), in state "sending"; only the worker whose insert won
talks to the mail server. The outcome is then written on that row:

- accepted by the server: "sent";
- not accepted (connection refused, a 4xx, a dropped connection): "retry"; the
  next run claims it again, for up to RETRY_FOR, then "failed";
- refused for good (a 5xx): "failed";
- a summary more than half its period late (the worker was down) is skipped;
- the worker died between the claim and the outcome: the row stays "sending"
  and, after SENDING_STALE, is marked "unknown" with a logged warning. It is not
  sent again: a summary possibly lost is preferred to one possibly doubled.

Each subscription is claimed on its own (core/batches.py `batch_write_each`): one whose
claim fails (its time zone is one this machine's tzdata no longer knows, say) is logged
and kept as an open set-aside row (kind "report_summary", key `subscription:<id>`,
counted in /healthz) and tried again by every run, an attempt more each time, until it
is claimed (the row is resolved) or no longer subscribed; the others are claimed and
sent meanwhile. A send that raises anything unforeseen while being handed over (Django
refusing an address it can't encode) is recorded as "retry" on its own row, so the
sends after it still go out.

The one window where a summary can be doubled is a server that took the message
but dropped the connection before answering; that is retried, as SMTP gives no
way to know.

Hand-written: scheduling by local hour and weekday is a few lines over zoneinfo,
smaller than a scheduler dependency.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import smtplib
import zoneinfo
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from leadrelay.accounts.models import Membership, Organization, OrganizationKind, User
from leadrelay.core.batches import batch_write_each, set_aside_resolve
from leadrelay.core.errors import Invalid, NotFound, Problem
from leadrelay.core.models import SetAsideKind
from leadrelay.core.money import bp_format, money_format
from leadrelay.core.selectors import set_aside_open_ids
from leadrelay.core.text import text_kept
from leadrelay.reporting.metrics import MetricRow, relative_change_bp
from leadrelay.reporting.models import (
    ReportFrequency,
    ReportSend,
    ReportSendStatus,
    ReportSubscription,
)
from leadrelay.reporting.selectors import Report, dashboard_report

log = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "leadrelay.reporting.unsubscribe"
RETRY_FOR = dt.timedelta(hours=24)  # then a summary that could not be handed over fails
SENDING_STALE = dt.timedelta(minutes=15)  # far longer than one SMTP conversation
TOP_ROWS = 5  # rows of each breakdown in the email
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def time_zones() -> list[str]:
    """The IANA time zones a subscription may name, sorted."""
    return sorted(_zones())


def _problems(*, frequency: str, hour: int, weekday: int, tz: str) -> list[Problem]:
    problems = []
    if frequency not in ReportFrequency.values:
        problems.append(Problem("invalid_frequency", "Choose daily or weekly.", "frequency"))
    if not 0 <= hour <= 23:
        problems.append(Problem("invalid_hour", "The hour is a whole number, 0 to 23.", "hour"))
    if not 0 <= weekday <= 6:
        problems.append(
            Problem("invalid_weekday", "The weekday is 0 (Monday) to 6 (Sunday).", "weekday")
        )
    if tz not in _zones():
        message = f"Not an IANA time zone: {tz[:64]!r}. Use a name such as Europe/Berlin or UTC."
        problems.append(Problem("invalid_timezone", message, "timezone"))
    return problems


def report_subscription_save(
    *,
    user: User,
    organization: Organization,
    frequency: str,
    hour: int,
    tz: str,
    weekday: int = 0,
) -> ReportSubscription:
    """Subscribe `user` to summaries of `organization`'s dashboard, or change their
    subscription (one per user). Nothing is due for a moment already past, so saving
    never sends at once. Invalid lists every bad field; NotFound if the user is not a
    member of the organization."""
    tz = tz.strip()
    problems = _problems(frequency=frequency, hour=hour, weekday=weekday, tz=tz)
    if problems:
        raise Invalid(problems)
    if not Membership.objects.filter(user=user, organization=organization).exists():
        raise NotFound("Organization")
    subscription, _ = ReportSubscription.objects.update_or_create(
        user=user,
        defaults={
            "organization": organization,
            "frequency": frequency,
            "hour": hour,
            "weekday": weekday,
            "timezone": tz,
            "active_from": timezone.now(),
        },
    )
    return subscription


def report_subscription_delete(*, user: User) -> bool:
    """Unsubscribe; False if there was nothing to end."""
    deleted, _ = ReportSubscription.objects.filter(user=user).delete()
    return deleted > 0


def report_subscription_of(*, user: User) -> ReportSubscription | None:
    return ReportSubscription.objects.select_related("organization").filter(user=user).first()


def report_sends_of(*, user: User, limit: int = 10) -> list[ReportSend]:
    """The user's latest summaries and what became of them."""
    return list(
        ReportSend.objects.filter(subscription__user=user).order_by("-period_end", "-pk")[:limit]
    )


def unsubscribe_token(subscription: ReportSubscription) -> str:
    """The signed token of the one-click unsubscribe link. It names the subscription and
    its user, so a link from an old email can't end someone else's later subscription."""
    payload = {"s": subscription.pk, "u": subscription.user_id}
    return signing.dumps(payload, salt=UNSUBSCRIBE_SALT)


def _token_ids(token: str) -> tuple[int, int]:
    try:
        payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        return int(payload["s"]), int(payload["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise NotFound("Unsubscribe link", code="invalid_token") from None


def report_subscription_by_token(*, token: str) -> ReportSubscription | None:
    """The subscription an emailed link would end; None if it has ended already,
    NotFound for a token that is not ours."""
    subscription_id, user_id = _token_ids(token)
    return ReportSubscription.objects.filter(pk=subscription_id, user_id=user_id).first()


def report_subscription_unsubscribe(*, token: str) -> bool:
    """Unsubscribe by the emailed link. NotFound for a token that is not ours; False if
    that subscription had already ended."""
    subscription_id, user_id = _token_ids(token)
    deleted, _ = ReportSubscription.objects.filter(pk=subscription_id, user_id=user_id).delete()
    return deleted > 0


@dataclass(frozen=True)
class SummaryPeriod:
    start: dt.date
    end: dt.date
    due_at: dt.datetime  # the moment it was to be sent


def _label(start: dt.date, end: dt.date) -> str:
    return f"{start}" if start == end else f"{start} – {end}"


def _moment(day: dt.date, hour: int, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    # A local hour skipped by a DST change falls an hour later; a repeated one, the first.
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zone).astimezone(dt.UTC)


def report_period_due(*, subscription: ReportSubscription, at: dt.datetime) -> SummaryPeriod:
    """The latest period whose sending moment is at or before `at`."""
    zone = zoneinfo.ZoneInfo(subscription.timezone)
    day = at.astimezone(zone).date()
    step = 1
    if subscription.frequency == ReportFrequency.WEEKLY:
        step = 7
        day -= dt.timedelta(days=(day.weekday() - subscription.weekday) % 7)
    if _moment(day, subscription.hour, zone) > at:
        day -= dt.timedelta(days=step)
    return SummaryPeriod(
        start=day - dt.timedelta(days=step),
        end=day - dt.timedelta(days=1),
        due_at=_moment(day, subscription.hour, zone),
    )


# What the email shows -------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryLine:
    label: str
    value: str
    previous: str
    change: str


@dataclass(frozen=True)
class SummaryTable:
    title: str
    columns: list[str]
    rows: list[list[str]]


def _signed_bp(bp: int | None) -> str:
    if bp is None:
        return "–"
    return ("+" if bp > 0 else "-" if bp < 0 else "") + bp_format(abs(bp))


def _change(current: int, previous: int) -> str:
    """The relative change (as on the Reports page); a dash from nothing."""
    return _signed_bp(relative_change_bp(current, previous))


def _rate_change(current: int | None, previous: int | None) -> str:
    """A rate's change in percentage points."""
    if current is None or previous is None:
        return "–"
    return _signed_bp(current - previous).replace("%", " pt")


def _amount(label: str, now: int | None, before: int | None, currency: str) -> SummaryLine:
    def shown(amount: int | None) -> str:
        return "–" if amount is None else money_format(amount, currency)

    return SummaryLine(label, shown(now), shown(before), _change(now or 0, before or 0))


def _rate(label: str, now: int | None, before: int | None) -> SummaryLine:
    return SummaryLine(label, bp_format(now), bp_format(before), _rate_change(now, before))


def _money_lines(report: Report, kind: str) -> list[SummaryLine]:
    vis, now, before = report.visibility, report.totals, report.previous
    revenue = "Spend" if kind == OrganizationKind.ADVERTISER else "Revenue"
    payout = "Earnings" if kind == OrganizationKind.AFFILIATE else "Payout"
    lines = []
    for cur in sorted(set(now.money) | set(before.money)):
        a, b = now.money_for(cur), before.money_for(cur)
        if vis.revenue:
            lines.append(_amount(revenue, a.revenue_minor, b.revenue_minor, cur))
        if vis.payout:
            lines.append(_amount(payout, a.payout_minor, b.payout_minor, cur))
        if vis.profit:
            lines += [
                _amount("Profit", a.profit_minor, b.profit_minor, cur),
                _rate("Margin", a.margin_bp, b.margin_bp),
                _rate("ROI", a.roi_bp, b.roi_bp),
            ]
        if vis.revenue:
            lines.append(_amount("CPL", now.cpl_minor(cur), before.cpl_minor(cur), cur))
        if vis.payout:
            lines.append(_amount("EPC", now.epc_minor(cur), before.epc_minor(cur), cur))
    return lines


def summary_lines(report: Report, kind: str) -> list[SummaryLine]:
    """The totals, each beside the previous period's, as this role may see them."""
    now, before = report.totals, report.previous
    counts = [
        ("Clicks", "clicks"),
        ("Leads", "leads"),
        ("Approved", "approved"),
        ("Refused", "rejected"),
        ("Waiting for review", "pending"),
        ("Returned", "returned"),
    ]
    lines = [
        SummaryLine(
            label,
            f"{getattr(now, name):,}",
            f"{getattr(before, name):,}",
            _change(getattr(now, name), getattr(before, name)),
        )
        for label, name in counts
    ]
    lines += [
        _rate("Conversion rate", now.conversion_rate_bp, before.conversion_rate_bp),
        _rate("Approval rate", now.approval_rate_bp, before.approval_rate_bp),
        _rate("Return rate", now.return_rate_bp, before.return_rate_bp),
    ]
    return lines + _money_lines(report, kind)


def _breakdown(report: Report, dim: str, title: str, kind: str) -> SummaryTable:
    vis = report.visibility
    currencies = report.currencies
    columns = [title, "Leads", "Approved"]
    if vis.revenue:
        columns.append("Spend" if kind == OrganizationKind.ADVERTISER else "Revenue")
    if vis.payout:
        columns.append("Earnings" if kind == OrganizationKind.AFFILIATE else "Payout")
    top: list[MetricRow] = sorted(report.breakdowns[dim], key=lambda r: (-r.leads, r.label))
    rows = []
    for row in top[:TOP_ROWS]:
        cells = [row.label, f"{row.leads:,}", f"{row.approved:,}"]
        if vis.revenue:
            cells.append(
                ", ".join(money_format(row.money_for(c).revenue_minor, c) for c in currencies)
            )
        if vis.payout:
            cells.append(
                ", ".join(money_format(row.money_for(c).payout_minor, c) for c in currencies)
            )
        rows.append(cells)
    return SummaryTable(f"Top {title.lower()}s by leads", columns, rows)


def _absolute(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def report_summary_message(
    *, subscription: ReportSubscription, start: dt.date, end: dt.date
) -> EmailMultiAlternatives:
    """The summary email (plain text and HTML with inline styles only: no remote images,
    stylesheets or fonts) for this subscription and period."""
    organization = subscription.organization
    report = dashboard_report(
        organization=organization, start=start, end=end, tz=subscription.timezone
    )
    length = dt.timedelta(days=(end - start).days + 1)
    period, previous = _label(start, end), _label(start - length, start - dt.timedelta(days=1))
    tables = []
    if "offer" in report.breakdowns:
        tables.append(_breakdown(report, "offer", "Offer", organization.kind))
    if "affiliate" in report.breakdowns:
        tables.append(_breakdown(report, "affiliate", "Source", organization.kind))
    token = unsubscribe_token(subscription)
    unsubscribe_url = _absolute(reverse("report-unsubscribe", args=[token]))
    query = urlencode({"start": start.isoformat(), "end": end.isoformat()})
    frequency = "daily" if subscription.frequency == ReportFrequency.DAILY else "weekly"
    context = {
        "organization": organization,
        "frequency": frequency,
        "period": period,
        "previous": previous,
        "timezone": subscription.timezone,
        "lines": summary_lines(report, organization.kind),
        "tables": tables,
        "dashboard_url": _absolute(f"{reverse('portal-home')}?{query}"),
        "settings_url": _absolute(reverse("portal-report-email")),
        "unsubscribe_url": unsubscribe_url,
    }
    subject = f"{organization.name}: your {frequency} leadrelay summary, {period}"
    message = EmailMultiAlternatives(
        subject=subject.replace("\n", " ").replace("\r", " ")[:200],
        body=render_to_string("reporting/subscriptions_email.txt", context),
        to=[subscription.user.email],
        headers={
            # RFC 8058 one-click: mail clients POST to the link, no login needed.
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
            "X-Leadrelay-Report": f"{subscription.pk}:{start}:{end}",
        },
    )
    message.attach_alternative(
        render_to_string("reporting/subscriptions_email.html", context), "text/html"
    )
    return message


# Sending -------------------------------------------------------------------------------


def _hand_over(message: EmailMultiAlternatives) -> tuple[ReportSendStatus, str]:
    """Give the message to the mail server: (status, error)."""
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        refused = "; ".join(
            f"{address} ({code} {reply.decode(errors='replace')})"
            for address, (code, reply) in sorted(exc.recipients.items())
        )
        retry = all(400 <= c < 500 for c in codes)
        status = ReportSendStatus.RETRY if retry else ReportSendStatus.FAILED
        return status, f"SMTP recipients refused: {refused}"[:500]
    except smtplib.SMTPResponseException as exc:
        retry = 400 <= exc.smtp_code < 500
        status = ReportSendStatus.RETRY if retry else ReportSendStatus.FAILED
        return status, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:500]
    except (smtplib.SMTPException, OSError) as exc:
        return ReportSendStatus.RETRY, f"smtp: {type(exc).__name__}: {exc}"[:500]
    except Exception as exc:
        # Raised before the message went out (Django's SMTP backend checks the addresses
        # and builds the message before handing it over): an address it can't encode, say.
        # Retried like a refused connection, and no send after it is held back.
        log.exception("report summary could not be handed over")
        return ReportSendStatus.RETRY, f"send: {type(exc).__name__}: {exc}"[:500]
    return ReportSendStatus.SENT, ""


def report_send_attempt(*, send_id: int) -> bool:
    """Send one claimed summary (status "sending") and record the outcome. True if the
    mail server took it."""
    send = (
        ReportSend.objects.select_related("subscription__user", "subscription__organization")
        .filter(pk=send_id, status=ReportSendStatus.SENDING)
        .first()
    )
    if send is None:  # unsubscribed meanwhile, or not claimed
        return False
    subscription = send.subscription
    if not _still_member(subscription):
        status, error = ReportSendStatus.FAILED, "The user no longer belongs to the organization."
    else:
        try:
            message = report_summary_message(
                subscription=subscription, start=send.period_start, end=send.period_end
            )
        except Exception as exc:  # nothing went out: safe to try again
            log.exception("report summary %s could not be built", send_id)
            status, error = ReportSendStatus.RETRY, f"build: {type(exc).__name__}: {exc}"[:500]
        else:
            status, error = _hand_over(message)
    ReportSend.objects.filter(pk=send_id, status=ReportSendStatus.SENDING).update(
        status=status,
        error=text_kept(error, 500),  # a server's reply may hold what text can't
        attempts=send.attempts + 1,
        sent_at=timezone.now() if status == ReportSendStatus.SENT else None,
    )
    if status != ReportSendStatus.SENT:
        log.warning("report summary %s not sent (%s): %s", send_id, status, error)
    return status == ReportSendStatus.SENT


def _still_member(subscription: ReportSubscription) -> bool:
    return (
        subscription.user.is_active
        and subscription.organization.is_active
        and Membership.objects.filter(
            user_id=subscription.user_id, organization_id=subscription.organization_id
        ).exists()
    )


def _claim_new(subscription: ReportSubscription, at: dt.datetime) -> int | None:
    period = report_period_due(subscription=subscription, at=at)
    length = period.end - period.start + dt.timedelta(days=1)
    if period.due_at < subscription.active_from or at - period.due_at > length / 2:
        return None  # subscribed after it was due, or too stale to be worth sending
    claimed = ReportSend.objects.filter(
        subscription=subscription, period_start=period.start, period_end=period.end
    )
    if claimed.exists():
        return None
    try:
        # Committed before the mail goes out: this row is what makes the send at most once.
        with transaction.atomic(durable=True):
            send = ReportSend.objects.create(
                subscription=subscription,
                period_start=period.start,
                period_end=period.end,
                status=ReportSendStatus.SENDING,
                created_at=at,
                claimed_at=at,
            )
    except IntegrityError:  # another worker claimed it first
        return None
    return send.pk


def report_summaries_send_now() -> int:
    """The worker's periodic job (settings.LEADRELAY_PERIODIC_JOBS): send every summary
    that is due and retry those the mail server did not take. Safe to run on several
    workers at once. Returns how many the mail server took."""
    now = timezone.now()
    stale = ReportSend.objects.filter(
        status=ReportSendStatus.SENDING, claimed_at__lt=now - SENDING_STALE
    )
    for send_id in stale.values_list("pk", flat=True):
        if stale.filter(pk=send_id).update(
            status=ReportSendStatus.UNKNOWN,
            error="The worker stopped while sending; not sent again.",
        ):
            log.warning("report summary %s: worker stopped mid-send; not resent", send_id)
    ReportSend.objects.filter(status=ReportSendStatus.RETRY, created_at__lt=now - RETRY_FOR).update(
        status=ReportSendStatus.FAILED
    )

    member = Membership.objects.filter(user=OuterRef("user"), organization=OuterRef("organization"))
    subscriptions = list(
        ReportSubscription.objects.filter(
            Exists(member), user__is_active=True, organization__is_active=True
        )
        .select_related("organization")
        .order_by("pk")
    )
    claimed: list[int] = []

    def claim(subscription: ReportSubscription) -> int:
        if (send_id := _claim_new(subscription, now)) is None:
            return 0
        claimed.append(send_id)
        return 1

    batch_write_each(
        subscriptions,
        write=claim,
        kind=SetAsideKind.REPORT_SUMMARY,
        key=lambda subscription: _subscription_key(subscription.pk),
        data=_subscription_data,
    )
    # Set aside, then unsubscribed or no longer a member: nothing is left to claim for it.
    listed = {subscription.pk for subscription in subscriptions}
    set_aside_resolve(
        kind=SetAsideKind.REPORT_SUMMARY,
        keys=[
            _subscription_key(pk)
            for pk in set_aside_open_ids(kind=SetAsideKind.REPORT_SUMMARY)
            if pk not in listed
        ],
    )
    retries = ReportSend.objects.filter(status=ReportSendStatus.RETRY)
    for send_id in retries.values_list("pk", flat=True):
        if retries.filter(pk=send_id).update(status=ReportSendStatus.SENDING, claimed_at=now):
            claimed.append(send_id)
    return sum(report_send_attempt(send_id=send_id) for send_id in claimed)


def _subscription_key(subscription_id: int) -> str:
    return f"subscription:{subscription_id}"


def _subscription_data(subscription: ReportSubscription) -> dict[str, object]:
    return {
        "subscription_id": subscription.pk,
        "user_id": subscription.user_id,
        "organization_id": subscription.organization_id,
        "frequency": subscription.frequency,
        "hour": subscription.hour,
        "weekday": subscription.weekday,
        "timezone": subscription.timezone,
    }
