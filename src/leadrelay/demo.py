"""A believable demo network: 3 advertisers, 8 offers, 12 affiliates, 30 days of traffic.

Everything goes through the same services a real network uses (offers,
links, clicks, lead intake, review, the ledger), only with timestamps in the
past, so the demo's numbers are produced the way real ones would be.
Seeded, so two runs on empty databases tell the same story.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from leadrelay.accounts.models import ApiKey, Organization, Role, User
from leadrelay.accounts.services import (
    api_key_create,
    membership_create,
    organization_create,
    user_create,
)
from leadrelay.core.clickid import click_id_issue
from leadrelay.core.errors import DomainError, Invalid
from leadrelay.leads.hold import leads_hold_release
from leadrelay.leads.models import Lead, LeadSource, LeadStatus
from leadrelay.leads.returns import lead_return
from leadrelay.leads.services import LeadOrigin, lead_intake, lead_review_decide
from leadrelay.ledger.invoices import invoice_issue, invoice_mark_paid
from leadrelay.ledger.payments import advertiser_payment_record
from leadrelay.ledger.payouts import payout_run_create, payout_run_mark_paid
from leadrelay.offers.models import Offer, OfferStatus
from leadrelay.offers.services import FieldSpec, offer_access_grant, offer_create
from leadrelay.reporting.rollups import clicks_counted
from leadrelay.tracking.models import Click, TrackingLink
from leadrelay.tracking.selectors import tracking_link_url
from leadrelay.tracking.services import click_record, tracking_link_create
from leadrelay.tracking.visitor import VisitorFacts, device_for

NETWORK_SLUG = "leadrelay-demo-network"
EMAIL_DOMAIN = "demo.leadrelay.test"
DEMO_KEY_NAME = "Demo key"

FIRST = [
    "Ana",
    "Ben",
    "Carla",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jamal",
    "Kara",
    "Liam",
    "Mona",
    "Nico",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Yara",
    "Zoe",
]
LAST = [
    "Adams",
    "Baker",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ito",
    "Jensen",
    "Khan",
    "Lopez",
    "Moreau",
    "Novak",
    "Okafor",
    "Patel",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ueda",
    "Varga",
    "Wright",
    "Young",
    "Zhou",
]
ZIPS = ["94103", "10001", "60614", "73301", "98101", "33101", "80202", "02108", "30301", "85001"]
AREA = ["415", "212", "312", "512", "206", "305", "303", "617", "404", "602"]

ADVERTISERS = {
    "harbor": "Harbor Financial Group",
    "brightpath": "BrightPath Solar",
    "summit": "Summit Learning",
}
AFFILIATES = [
    "QuoteLane Media", "Sunbeam Traffic", "Bluefin Publishing", "Cardinal Leads",
    "Northstar Performance", "Maple Street Digital", "Pixel Harbor", "Redwood Reach",
    "Silverline Partners", "Tidewater Ads", "Urban Kite Media", "Velvet Funnel",
]  # fmt: skip
CONTACT = [
    FieldSpec("first_name", "text", "First name", required=True, max_length=60),
    FieldSpec("last_name", "text", "Last name", required=True, max_length=60),
    FieldSpec("email", "email", "Email", required=True),
    FieldSpec("phone", "phone", "Phone", required=True),
    FieldSpec("zip", "postal_code", "ZIP code", required=True),
]


@dataclass(frozen=True)
class OfferPlan:
    advertiser: str
    name: str
    vertical: str
    revenue: int
    payout: int
    visibility: str
    review: str
    conversion: float  # leads per click
    extra: list[FieldSpec] = field(default_factory=list)
    extra_values: Callable[[random.Random], dict[str, Any]] = lambda r: {}
    review_reject_rate: float = 0.0


OFFERS = [
    OfferPlan(
        "harbor", "Auto Insurance Quotes", "insurance", 2500, 1800, "public", "auto_approve",
        0.11,
        [FieldSpec("vehicle_year", "number", "Vehicle year", required=True),
         FieldSpec("currently_insured", "choice", "Currently insured?", True, ("yes", "no"))],
        lambda r: {"vehicle_year": r.randint(2006, 2025),
                   "currently_insured": r.choice(["yes", "yes", "no"])},
    ),
    OfferPlan(
        "harbor", "Home Insurance Quotes", "insurance", 2200, 1500, "approval", "auto_approve",
        0.08,
        [FieldSpec("home_value", "choice", "Home value", True,
                   ("under_250k", "250k_500k", "over_500k"),
                   qualifying_choices=("250k_500k", "over_500k"))],
        lambda r: {"home_value": r.choice(["under_250k", "250k_500k", "250k_500k", "over_500k",
                                           "over_500k", "over_500k"])},
    ),
    OfferPlan(
        "harbor", "Personal Loans", "loans", 3000, 2000, "public", "auto_approve", 0.07,
        [FieldSpec("loan_amount", "number", "Loan amount (USD)", required=True),
         FieldSpec("birth_date", "date", "Date of birth", required=True)],
        lambda r: {"loan_amount": r.choice([2000, 5000, 10000, 15000, 25000]),
                   "birth_date": f"{r.randint(1955, 2003)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}"},
    ),
    OfferPlan(
        "harbor", "Debt Consolidation", "loans", 3500, 2400, "approval", "manual", 0.05,
        [FieldSpec("debt_amount", "choice", "Unsecured debt", True,
                   ("under_10k", "10k_25k", "over_25k"),
                   qualifying_choices=("10k_25k", "over_25k"))],
        lambda r: {"debt_amount": r.choice(["under_10k", "10k_25k", "over_25k"])},
        review_reject_rate=0.3,
    ),
    OfferPlan(
        "brightpath", "Residential Solar Consultation", "solar", 4500, 3200, "approval", "manual",
        0.06,
        [FieldSpec("homeowner", "choice", "Do you own your home?", True, ("yes", "no"),
                   qualifying_choices=("yes",)),
         FieldSpec("monthly_bill", "choice", "Monthly electric bill", True,
                   ("under_100", "100_200", "over_200"))],
        lambda r: {"homeowner": r.choice(["yes", "yes", "yes", "no"]),
                   "monthly_bill": r.choice(["under_100", "100_200", "over_200"])},
        review_reject_rate=0.25,
    ),
    OfferPlan(
        "brightpath", "Commercial Solar Assessment", "solar", 9000, 6500, "private", "manual",
        0.03,
        [FieldSpec("company", "text", "Company", required=True, max_length=120),
         FieldSpec("roof_sqft", "number", "Roof area (sq ft)", required=True)],
        lambda r: {"company": f"{r.choice(LAST)} {r.choice(['LLC', 'Inc', 'Holdings'])}",
                   "roof_sqft": r.randint(3000, 60000)},
        review_reject_rate=0.2,
    ),
    OfferPlan(
        "summit", "Online Degree Info Request", "education", 1800, 1200, "public", "auto_approve",
        0.09,
        [FieldSpec("program", "choice", "Program", True,
                   ("business", "nursing", "it", "psychology")),
         FieldSpec("start_date", "choice", "When would you start?", True,
                   ("now", "3_months", "6_months"))],
        lambda r: {"program": r.choice(["business", "nursing", "it", "psychology"]),
                   "start_date": r.choice(["now", "3_months", "6_months"])},
    ),
    OfferPlan(
        "summit", "Nursing Program Admissions", "education", 4000, 2800, "approval", "auto_approve",
        0.04,
        [FieldSpec("rn_license", "boolean", "I hold an RN license"),
         FieldSpec("country", "country", "Country", required=True)],
        lambda r: {"rn_license": r.choice([True, False]), "country": "US"},
    ),
]  # fmt: skip


@dataclass
class DemoResult:
    created: bool
    credentials: dict[str, Any]
    counts: dict[str, int]


def _password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


def _user(org: Organization, local: str, first: str, last: str, role: Role) -> tuple[User, str]:
    password = _password()
    email = f"{local}@{EMAIL_DOMAIN}"
    user = User.objects.filter(email=email).first()
    if user is None:
        user = user_create(email=email, password=password, first_name=first, last_name=last)
    else:
        user.set_password(password)
        user.save(update_fields=["password"])
    membership_create(user=user, organization=org, role=role)
    return user, password


def _build_network(rng: random.Random, days: int) -> None:
    network = organization_create(name="Demo Network", kind="network", slug=NETWORK_SLUG)
    advertisers = {
        key: organization_create(name=name, kind="advertiser", slug=f"demo-{key}")
        for key, name in ADVERTISERS.items()
    }
    affiliates = [
        organization_create(name=name, kind="affiliate", slug=f"demo-aff-{i + 1:02d}")
        for i, name in enumerate(AFFILIATES)
    ]
    offers: list[tuple[Offer, OfferPlan]] = []
    for plan in OFFERS:
        offer = offer_create(
            advertiser=advertisers[plan.advertiser],
            name=plan.name,
            vertical=plan.vertical,
            description=f"{plan.name} from {ADVERTISERS[plan.advertiser]}. US traffic only.",
            status=OfferStatus.ACTIVE,
            revenue_minor=plan.revenue,
            payout_minor=plan.payout,
            visibility=plan.visibility,
            review_mode=plan.review,
            landing_url="https://lp.example.com/"
            + plan.name.lower().replace(" ", "-")
            + "?cid={click_id}&s1={sub1}",
            fields=[*CONTACT, *plan.extra],
            consent_text="By sending this form I agree to be contacted about this offer "
            "by phone, text and email, including by automated means.",
            return_window_days=7,
        )
        offers.append((offer, plan))
    staff, _ = _user(network, "ops", "Olivia", "Operator", Role.OWNER)
    # Who runs what: each affiliate runs 2 to 4 offers, with a sub1 per traffic source.
    sources = ["search", "social", "email", "native", "push"]
    quality = {aff.pk: rng.uniform(0.7, 1.25) for aff in affiliates}
    quality[affiliates[-1].pk] = 0.5  # one affiliate sends thin, repeated traffic
    links: list[tuple[TrackingLink, OfferPlan, float]] = []
    for aff in affiliates:
        for offer, plan in rng.sample(offers, rng.randint(2, 4)):
            override = 2200 if (aff.pk == affiliates[0].pk and offer.payout_minor == 1800) else None
            offer_access_grant(
                offer=offer, affiliate=aff, granted_by=staff, payout_minor_override=override
            )
            for sub1 in rng.sample(sources, rng.randint(1, 2)):
                link = tracking_link_create(offer=offer, affiliate=aff, subs={"sub1": sub1})
                links.append((link, plan, quality[aff.pk]))
    _traffic(rng, links, days, repeat_rate={affiliates[-1].pk: 0.35})
    _money(rng, staff, list(advertisers.values()), days)


def _money(rng: random.Random, staff: User, advertisers: list[Organization], days: int) -> None:
    """A month of money: returns, released holds, a paid payout run, invoices (one paid,
    one prepaid), so the money pages have something to show."""
    now = timezone.now()
    recent = Lead.objects.filter(
        status=LeadStatus.APPROVED, decided_at__gte=now - dt.timedelta(days=6)
    ).select_related("offer")
    for lead in recent.order_by("pk")[::40]:
        lead_return(
            lead_id=lead.pk,
            by=lead.offer.advertiser,
            reason=rng.choice(["bad_phone", "not_interested", "duplicate_in_crm"]),
            now=min(lead.decided_at + dt.timedelta(days=1), now) if lead.decided_at else now,
        )
    leads_hold_release(now=now)
    half = now - dt.timedelta(days=days // 2)
    try:
        run = payout_run_create(period_end=half, staff=staff, now=half + dt.timedelta(days=1))
        payout_run_mark_paid(run_id=run.pk, reference="ACH-DEMO-001", staff=staff, now=half)
    except DomainError:
        pass  # too little traffic (tests use a few days): no run
    for i, advertiser in enumerate(advertisers):
        try:
            invoice = invoice_issue(
                advertiser=advertiser,
                currency="USD",
                period_start=now - dt.timedelta(days=days + 1),
                period_end=half,
                staff=staff,
                now=half + dt.timedelta(days=1),
            )
        except DomainError:
            continue
        if i == 0:
            invoice_mark_paid(invoice_id=invoice.pk, reference="WIRE-DEMO-001", staff=staff)
        elif i == 1:
            advertiser_payment_record(
                advertiser=advertiser,
                currency="USD",
                amount_minor=invoice.total_minor + 50_000,
                reference="PREPAY-DEMO-001",
                staff=staff,
                prepayment=True,
            )
            invoice_mark_paid(invoice_id=invoice.pk, reference="", staff=staff, from_prepaid=True)


DEMO_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def _visitor(ip: str) -> VisitorFacts:
    return VisitorFacts(
        ip=ip,
        user_agent=DEMO_UA,
        referer="",
        visitor_id=secrets.token_hex(16),
        country="US",
        device=device_for(DEMO_UA),
    )


def _traffic(
    rng: random.Random,
    links: list[tuple[TrackingLink, OfferPlan, float]],
    days: int,
    repeat_rate: dict[int, float],
) -> None:
    now = timezone.now()
    today = now.date()
    events: list[tuple[dt.datetime, TrackingLink, OfferPlan, float]] = []
    for link, plan, quality in links:
        base = rng.randint(5, 24)
        for day_back in range(days - 1, -1, -1):
            day = today - dt.timedelta(days=day_back)
            weekday_factor = 0.7 if day.weekday() >= 5 else 1.0
            for _ in range(max(0, int(rng.gauss(base * weekday_factor, base * 0.25)))):
                at = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(
                    seconds=rng.randint(6 * 3600, 23 * 3600 + 3599)
                )
                if at < now:
                    events.append((at, link, plan, quality))
    events.sort(key=lambda e: e[0])
    seen_contacts: dict[int, list[dict[str, Any]]] = {}
    leads_to_review: list[tuple[int, dt.datetime, OfferPlan]] = []
    unconverted: list[Click] = []
    for at, link, plan, quality in events:
        ip = f"198.51.100.{rng.randint(1, 254)}"
        lead_at = at + dt.timedelta(seconds=rng.randint(40, 900))
        if rng.random() >= plan.conversion * quality or lead_at >= now:
            # Clicks that lead nowhere are written in bulk, with ids made the same way.
            identity = click_id_issue(
                link_id=link.pk, offer_id=link.offer_id, affiliate_id=link.affiliate_id, at=at
            )
            unconverted.append(
                Click(
                    click_id=identity.click_id,
                    link=link,
                    offer_id=link.offer_id,
                    affiliate_id=link.affiliate_id,
                    created_at=identity.issued_at,
                    ip=ip,
                    user_agent=DEMO_UA,
                    sub1=link.sub1,
                    device="desktop",
                    os="Windows",
                    browser="Chrome",
                )
            )
            continue
        outcome = click_record(code=link.code, visitor=_visitor(ip), at=at, write_now=True)
        previous = seen_contacts.setdefault(link.affiliate_id, [])
        if previous and rng.random() < repeat_rate.get(link.affiliate_id, 0.03):
            contact = rng.choice(previous)  # the same person sent again: a duplicate
        else:
            first, last = rng.choice(FIRST), rng.choice(LAST)
            i = rng.randrange(len(ZIPS))
            contact = {
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}{rng.randint(1, 9999)}@example.com".lower(),
                "phone": f"+1{AREA[i]}{rng.randint(200, 999)}{rng.randint(1000, 9999)}",
                "zip": ZIPS[i],
            }
            previous.append(contact)
        try:
            lead = lead_intake(
                offer_id=link.offer_id,
                fields={**contact, **plan.extra_values(rng)},
                source=LeadSource.API if rng.random() < 0.4 else LeadSource.FORM,
                affiliate=None,
                click_id=outcome.click.click_id,
                origin=LeadOrigin(ip=outcome.click.ip, user_agent=DEMO_UA),
                received_at=lead_at,
            )
        except Invalid:
            continue  # a made-up phone number phonenumbers doesn't accept: the visitor gave up
        if lead.status == LeadStatus.PENDING_REVIEW:
            leads_to_review.append((lead.pk, lead_at, plan))
    with transaction.atomic():
        Click.objects.bulk_create(unconverted, batch_size=2000)
        clicks_counted(unconverted)  # the report rollups, as clicks_write keeps them
    staff = User.objects.filter(email=f"ops@{EMAIL_DOMAIN}").first()
    for lead_id, lead_at, plan in leads_to_review:
        decided_at = lead_at + dt.timedelta(hours=rng.randint(2, 30))
        if decided_at >= now - dt.timedelta(hours=36):
            continue  # the last day and a half stays in the review queue
        reject = rng.random() < plan.review_reject_rate
        lead_review_decide(
            lead_id=lead_id,
            approve=not reject,
            actor=staff,
            reason=rng.choice(["bad_contact", "not_qualified", "out_of_area"]) if reject else "",
            decided_at=decided_at,
        )


def _credentials(rng: random.Random) -> dict[str, Any]:
    """Fresh passwords and API keys for every demo organization, and what to try them on."""
    base = settings.PUBLIC_BASE_URL
    network = Organization.objects.get(slug=NETWORK_SLUG)
    ApiKey.objects.filter(
        organization__slug__startswith="demo-", name=DEMO_KEY_NAME, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    ApiKey.objects.filter(organization=network, name=DEMO_KEY_NAME, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    logins = []
    user, password = _user(network, "ops", "Olivia", "Operator", Role.OWNER)
    logins.append({"role": "network", "organization": network.name, "email": user.email,
                   "password": password})  # fmt: skip
    network_key = api_key_create(organization=network, name=DEMO_KEY_NAME, created_by=user)
    advertisers = []
    for key in ADVERTISERS:
        org = Organization.objects.get(slug=f"demo-{key}")
        user, password = _user(org, f"buyer.{key}", "Avery", org.name.split()[0], Role.OWNER)
        logins.append({"role": "advertiser", "organization": org.name, "email": user.email,
                       "password": password})  # fmt: skip
        issued = api_key_create(organization=org, name=DEMO_KEY_NAME, created_by=user)
        advertisers.append({"organization": org.name, "id": org.pk, "api_key": issued.secret})
    affiliates: list[dict[str, Any]] = []
    for i in range(len(AFFILIATES)):
        org = Organization.objects.get(slug=f"demo-aff-{i + 1:02d}")
        user, password = _user(org, f"partner{i + 1:02d}", "Pat", org.name.split()[0], Role.OWNER)
        logins.append({"role": "affiliate", "organization": org.name, "email": user.email,
                       "password": password})  # fmt: skip
        issued = api_key_create(organization=org, name=DEMO_KEY_NAME, created_by=user)
        affiliates.append(
            {
                "organization": org.name,
                "id": org.pk,
                "api_key": issued.secret,
                "links": [
                    {
                        "offer_id": link.offer_id,
                        "offer": link.offer.name,
                        "sub1": link.sub1,
                        "url": tracking_link_url(link),
                    }
                    for link in TrackingLink.objects.filter(affiliate=org).select_related("offer")
                ],
            }
        )
    offers = [
        {
            "id": offer.pk,
            "name": offer.name,
            "advertiser": offer.advertiser.name,
            "vertical": offer.vertical,
            "visibility": offer.visibility,
            "review_mode": offer.review_mode,
            "currency": offer.currency,
            "revenue_minor": offer.revenue_minor,
            "payout_minor": offer.payout_minor,
            "form_url": base + reverse("lead-form", args=[offer.pk]),
            "fields": [
                {
                    "key": f.key,
                    "type": f.type,
                    "label": f.label,
                    "required": f.required,
                    "choices": f.choices,
                }
                for f in offer.fields.all()
            ],
        }
        for offer in Offer.objects.filter(advertiser__slug__startswith="demo-")
        .select_related("advertiser")
        .order_by("pk")
    ]
    first_aff = affiliates[0]
    first_link = first_aff["links"][0]
    return {
        "base_url": base,
        "logins": logins,
        "network_api_key": network_key.secret,
        "advertisers": advertisers,
        "affiliates": affiliates,
        "offers": offers,
        "try_it": {
            "click": f"curl -i {first_link['url']}",
            "post_lead": (
                f"curl -s -X POST {base}/api/v1/leads -H 'Authorization: Bearer "
                f"{first_aff['api_key']}' -H 'Content-Type: application/json' -d "
                '\'{"offer_id": ' + str(first_link["offer_id"]) + ', "click_id": "<from the '
                'redirect>", "fields": {…}}\''
            ),
            "api_docs": f"{base}/api/v1/docs",
        },
    }


def demo_data_load(
    *, seed: int = 2026, days: int = 30, credentials_out: Path | None = None
) -> DemoResult:
    """Build the demo network if it isn't there yet; always issue fresh demo credentials.

    `days` of traffic end today; tests use fewer to stay quick.
    """
    rng = random.Random(seed)
    created = False
    if not Organization.objects.filter(slug=NETWORK_SLUG).exists():
        with transaction.atomic():  # one commit: fast on SQLite, and all or nothing
            _build_network(rng, days)
        created = True
    with transaction.atomic():
        credentials = _credentials(rng)
    if credentials_out is not None:
        credentials_out.parent.mkdir(parents=True, exist_ok=True)
        credentials_out.write_text(json.dumps(credentials, indent=2, ensure_ascii=False))
        credentials_out.chmod(0o600)
    counts = {
        "offers": Offer.objects.filter(advertiser__slug__startswith="demo-").count(),
        "affiliates": len(AFFILIATES),
        "clicks": Click.objects.count(),
        "leads": Lead.objects.count(),
        "approved": Lead.objects.filter(status=LeadStatus.APPROVED).count(),
        "pending_review": Lead.objects.filter(status=LeadStatus.PENDING_REVIEW).count(),
    }
    return DemoResult(created=created, credentials=credentials, counts=counts)
