"""Lead intake and decisions.

`lead_intake` is the one way a lead enters leadrelay, from the API or a
hosted form: validate against the offer's schema and consent rules (nothing
is stored when that fails), attribute by click id, apply pre-screening and
qualification rules, score fraud signals, check duplicates and the
advertiser's suppression list, take places in caps, decide, store, and book
the money for an approved lead, all in one database transaction so a lead
that was acknowledged is a lead that was committed, with its ledger posting.
docs/leads.md describes each step for the people who post and buy leads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from leadrelay.accounts.models import Organization, OrganizationKind, User
from leadrelay.core.clickid import ClickIdentity, ClickIdError, click_id_verify
from leadrelay.core.errors import Conflict, Invalid, NotFound, PermissionDenied, Problem
from leadrelay.core.text import text_clean
from leadrelay.leads.consent import Consent, consent_problems, consent_text_store
from leadrelay.leads.dedupe import (
    dedupe_lock,
    duplicate_of,
    lead_keys,
    lead_keys_store,
    suppressed,
)
from leadrelay.leads.fraud import Submission, fraud_assess
from leadrelay.leads.models import Lead, LeadSource, LeadStatus, LeadStatusChange
from leadrelay.leads.rules import Facts, rules_failures, rules_problems
from leadrelay.leads.validation import lead_fields_clean
from leadrelay.ledger.services import lead_approval_post
from leadrelay.offers.caps import caps_reserve
from leadrelay.offers.models import (
    FieldType,
    Offer,
    OfferField,
    OfferStatus,
    OverCap,
    PayoutModel,
    ReviewMode,
)
from leadrelay.offers.payouts import PayoutDecision, offer_payout_decide
from leadrelay.offers.selectors import affiliate_may_promote, offers_visible_to
from leadrelay.postbacks.models import PostbackEvent
from leadrelay.postbacks.services import affiliate_postbacks_enqueue
from leadrelay.reporting.rollups import lead_counted
from leadrelay.tracking.geo import country_for_ip
from leadrelay.tracking.models import SUB_FIELDS, Click, TrackingLink
from leadrelay.tracking.visitor import device_for

# A lead over a cap, on an offer that takes such leads unpaid: accepted, booked at nothing.
OVER_CAP_UNPAID = "over_cap_unpaid"
FRAUD_SCORE = "fraud_score"
SUPPRESSED = "suppressed"  # on the advertiser's list of people it already has


# How a lead arrived beyond its fields (IP, agent, form timing): see leads/fraud.py.
LeadOrigin = Submission


def offer_for_intake(*, offer_id: int, affiliate: Organization | None) -> Offer:
    if affiliate is not None:
        offer = offers_visible_to(organization=affiliate).filter(pk=offer_id).first()
        if offer is None:
            raise NotFound("Offer")
        if not affiliate_may_promote(offer=offer, affiliate=affiliate):
            raise PermissionDenied(
                "offer_access_required", "You are not approved to run this offer."
            )
        return offer
    offer = Offer.objects.filter(pk=offer_id).first()
    if offer is None:
        raise NotFound("Offer")
    if offer.status != OfferStatus.ACTIVE:
        raise Conflict("offer_not_active", "This offer is not taking leads.")
    return offer


def _click_identity(click_id: str | None) -> ClickIdentity | None:
    if not click_id:
        return None
    try:
        return click_id_verify(click_id)
    except ClickIdError:
        raise Invalid(
            [Problem("invalid_click_id", "This click id was not issued by us.", "click_id")]
        ) from None


def _attribution(
    identity: ClickIdentity | None, affiliate: Organization | None, offer: Offer
) -> tuple[Organization | None, TrackingLink | None, dict[str, str], list[str]]:
    """Who gets the lead, through which link and sub ids, and reasons to reject it.

    The click id alone names link, offer, affiliate and per-click sub ids, so the
    click row is never needed (it may not be written yet, or lost in a crash).
    """
    if identity is None:
        return affiliate, None, {}, []
    reasons = []
    if identity.offer_id != offer.pk:
        reasons.append("click_offer_mismatch")
    if affiliate is not None and identity.affiliate_id != affiliate.pk:
        reasons.append("click_affiliate_mismatch")
    if reasons:
        # A mismatched click id attributes nothing: the lead stays with the poster.
        return affiliate, None, {}, reasons
    link = TrackingLink.objects.filter(pk=identity.link_id).first()
    subs = {name: getattr(link, name) for name in SUB_FIELDS} if link else {}
    subs.update(identity.subs)  # per-click sub ids ride in the click id itself
    if affiliate is None:
        clicked_for = Organization.objects.filter(
            pk=identity.affiliate_id, kind=OrganizationKind.AFFILIATE, is_active=True
        ).first()
        if clicked_for is None or not affiliate_may_promote(offer=offer, affiliate=clicked_for):
            # The visitor is real but its affiliate may no longer run the offer:
            # the lead is taken as the network's own traffic and earns no one a payout.
            return None, None, {}, reasons
        affiliate = clicked_for
    return affiliate, link, subs, reasons


def _landing_variant(identity: ClickIdentity | None) -> int | None:
    """The landing variant the lead's click was sent to, when the click row is written."""
    if identity is None:
        return None
    return (
        Click.objects.filter(click_id=identity.click_id)
        .values_list("landing_variant_id", flat=True)
        .first()
    )


def lead_facts(fields: dict[str, Any], ip: str | None, user_agent: str) -> Facts:
    """What rules can look at: the lead's fields and its visitor's country and device."""
    return Facts(
        fields=fields,
        country=country_for_ip(ip),
        device=device_for(user_agent).kind if user_agent else "",
        today=timezone.now().date(),
    )


@dataclass(frozen=True)
class DryRun:
    leads: int
    would_reject: int
    newly_rejected: list[int]  # accepted today, rejected under the new rules
    newly_accepted: list[int]  # rejected by today's rules only, accepted under the new ones
    by_reason: dict[str, int]


def offer_rules_dry_run(*, offer: Offer, rules: Any, last: int = 500) -> DryRun:
    """What a rule set would have decided for the offer's last leads, before it is saved."""
    problems = rules_problems(rules, {f.key for f in offer.fields.all()})
    if problems:
        raise Invalid(problems)
    leads = list(Lead.objects.filter(offer=offer).order_by("-created_at", "-pk")[: max(1, last)])
    newly_rejected: list[int] = []
    newly_accepted: list[int] = []
    by_reason: dict[str, int] = {}
    would_reject = 0
    for lead in leads:
        facts = lead_facts(lead.fields, lead.ip, lead.user_agent)
        codes = rules_failures(rules, facts)
        for code in codes:
            by_reason[code] = by_reason.get(code, 0) + 1
        if codes:
            would_reject += 1
        accepted = lead.status in (LeadStatus.APPROVED, LeadStatus.PENDING_REVIEW)
        if codes and accepted:
            newly_rejected.append(lead.pk)
        today_codes = set(rules_failures(offer.rules, facts))
        if not codes and lead.status == LeadStatus.REJECTED and set(lead.reasons) <= today_codes:
            newly_accepted.append(lead.pk)
    return DryRun(len(leads), would_reject, newly_rejected, newly_accepted, by_reason)


def offer_rules_set(*, offer: Offer, rules: Any) -> Offer:
    """Replace an offer's qualification rules; a bad rule set changes nothing."""
    problems = rules_problems(rules, {f.key for f in offer.fields.all()})
    if problems:
        raise Invalid(problems)
    offer.rules = rules or {}
    offer.save(update_fields=["rules", "updated_at"])
    return offer


def _consent_fields(consent: Consent | None, now: datetime) -> dict[str, Any]:
    if consent is None or not consent.text.strip():
        return {}
    return {
        "consent_text": consent_text_store(consent.text),
        "consent_page_url": consent.page_url,
        "consent_at": consent.given_at or now,
        "trustedform_cert_url": consent.trustedform_cert_url,
        "jornaya_leadid": consent.jornaya_leadid,
    }


def _unqualified(schema: list[OfferField], cleaned: dict[str, Any]) -> list[str]:
    """Reason codes for pre-screening answers that don't qualify: `not_qualified:<key>`."""
    return [
        f"not_qualified:{field.key}"
        for field in schema
        if field.qualifying_choices
        and field.key in cleaned
        and cleaned[field.key] not in field.qualifying_choices
    ]


def _dedupe_keys(schema: list[OfferField], cleaned: dict[str, Any]) -> tuple[str, str]:
    email = phone = ""
    for field in schema:
        value = cleaned.get(field.key)
        if not value:
            continue
        if field.type == FieldType.EMAIL and not email:
            email = str(value).lower()
        elif field.type == FieldType.PHONE and not phone:
            phone = str(value)
    return email, phone


def lead_intake(
    *,
    offer_id: int,
    fields: dict[str, Any],
    source: LeadSource,
    affiliate: Organization | None = None,
    click_id: str | None = None,
    origin: LeadOrigin | None = None,
    consent: Consent | None = None,
    received_at: datetime | None = None,
    ping_id: str | None = None,
) -> Lead:
    """Take a lead for an offer. `affiliate` is the API caller (None for hosted forms).

    Raises NotFound / PermissionDenied / Conflict for an offer the caller can't
    post to and Invalid (422) for fields or a click id that fail; in those cases
    nothing is stored. Otherwise the lead is stored with its decision.
    `received_at` is for imports and demo data; it defaults to now. `ping_id`:
    the caller's inbound ping for this lead, whose quote it is paid
    (distribution/inbound.py; Conflict when used, expired or without a buyer).
    """
    # Imported here: distribution builds on leads, not the other way round.
    from leadrelay.distribution.inbound import ping_for_post, ping_take, ping_use

    origin = origin or LeadOrigin()
    # Tracking data from the visitor's browser: kept without what can't be stored.
    origin = replace(
        origin, user_agent=text_clean(origin.user_agent), visitor_id=text_clean(origin.visitor_id)
    )
    offer = offer_for_intake(offer_id=offer_id, affiliate=affiliate)
    schema = list(offer.fields.all())
    cleaned, problems = lead_fields_clean(
        schema=schema, raw=fields, default_region=offer.default_region
    )
    try:
        identity = _click_identity(click_id)
    except Invalid as exc:
        problems += exc.problems
        identity = None
    problems += consent_problems(consent, required=offer.requires_consent)
    ping = None
    if ping_id is not None:
        ping, found = ping_for_post(
            token=ping_id, affiliate=affiliate, offer=offer, cleaned=cleaned
        )
        problems += found
    if problems:
        raise Invalid(problems)
    attributed, link, subs, reasons = _attribution(identity, affiliate, offer)
    reasons += _unqualified(schema, cleaned)
    facts = lead_facts(cleaned, origin.ip, origin.user_agent)  # read once, for rules and fraud
    reasons += rules_failures(offer.rules, facts)
    email, phone = _dedupe_keys(schema, cleaned)

    with transaction.atomic():
        # Serialize intake per offer so two identical leads can't both pass dedupe or a cap.
        # (Only the lock is taken: the offer was read a moment ago.)
        Offer.objects.select_for_update().filter(pk=offer.pk).values_list("pk").first()
        now = received_at or timezone.now()
        if ping is not None:
            ping = ping_take(ping, now)
        fraud = fraud_assess(
            offer=offer,
            schema=schema,
            cleaned=cleaned,
            email=email,
            phone=phone,
            submission=origin,
            facts=facts,
            identity=identity,
            now=now,
        )
        if fraud.score >= offer.fraud_reject_score:
            reasons = [*reasons, FRAUD_SCORE]
        dedupe_lock(offer)
        keys = lead_keys(offer, schema, cleaned)
        original = duplicate_of(offer, keys, now)
        if suppressed(advertiser_id=offer.advertiser_id, email=email, phone=phone):
            reasons = [SUPPRESSED, *reasons]
        if original is not None:
            status, reasons = LeadStatus.DUPLICATE, ["duplicate", *reasons]
        elif reasons:
            status = LeadStatus.REJECTED
        elif offer.review_mode == ReviewMode.MANUAL or fraud.score >= offer.fraud_review_score:
            status = LeadStatus.PENDING_REVIEW
        else:
            status = LeadStatus.APPROVED
        if status in (LeadStatus.APPROVED, LeadStatus.PENDING_REVIEW):
            hit = caps_reserve(offer=offer, affiliate=attributed, at=now)
            if hit is not None and offer.over_cap == OverCap.REFUSE:
                status, reasons = LeadStatus.REJECTED, [hit.reason]
            elif hit is not None:
                reasons = [*reasons, OVER_CAP_UNPAID, hit.reason]
        lead = Lead.objects.create(
            offer=offer,
            affiliate=attributed,
            link=link,
            click_id=identity.click_id if identity else "",
            source=source,
            fields=cleaned,
            email_normalized=email,
            phone_e164=phone,
            status=LeadStatus.PENDING_REVIEW if status == LeadStatus.APPROVED else status,
            reasons=reasons,
            signals=fraud.signals,
            fraud_score=fraud.score,
            visitor_id=origin.visitor_id[:40],
            **_consent_fields(consent, now),
            duplicate_of=original,
            ip=origin.ip,
            user_agent=origin.user_agent[:512],
            currency=offer.currency,
            created_at=now,
            decided_at=None if status == LeadStatus.PENDING_REVIEW else now,
            ping_quote_minor=None if ping is None else ping.quote_minor,
            country=facts.country[:2],
            device=facts.device[:16],
            landing_variant_id=_landing_variant(identity),
            **subs,
        )
        if ping is not None:
            ping_use(ping, lead, now)
        lead_keys_store(lead, keys)
        LeadStatusChange.objects.create(
            lead=lead, from_status="", to_status=lead.status, reasons=reasons
        )
        if status != LeadStatus.APPROVED:  # an approved lead is counted once, by _approve
            lead_counted(lead)
        if status == LeadStatus.REJECTED:
            affiliate_postbacks_enqueue(lead=lead, event=PostbackEvent.LEAD_REJECTED)
        elif status != LeadStatus.DUPLICATE:
            affiliate_postbacks_enqueue(lead=lead, event=PostbackEvent.LEAD_ACCEPTED)
        if status == LeadStatus.APPROVED:
            _approve(lead, actor=None, note="auto-approved", at=now, new=True)
    return lead


def _approve(lead: Lead, *, actor: User | None, note: str, at: datetime, new: bool = False) -> None:
    """Mark approved and book the money, inside the caller's transaction. `new`: the lead
    was stored in this transaction and is not in the report rollups yet."""
    offer = lead.offer
    affiliate = lead.affiliate
    revenue = offer.revenue_minor
    decision = (
        PayoutDecision(lead.ping_quote_minor, "inbound ping quote")
        if lead.ping_quote_minor is not None and affiliate is not None
        else offer_payout_decide(offer=offer, affiliate=affiliate, at=at)
    )
    payout = decision.payout_minor
    # Other models are paid per click or conversion (ledger/earnings.py), not per lead;
    # a free offer has nothing to book. The lead shows what was booked: nothing.
    books = (
        offer.payout_model == PayoutModel.CPL
        and bool(revenue or payout)
        and OVER_CAP_UNPAID not in lead.reasons
    )
    previous = lead.status
    lead.status = LeadStatus.APPROVED
    lead.revenue_minor = revenue if books else 0
    lead.payout_minor = payout if books else 0
    lead.currency = offer.currency
    lead.decided_at = at
    lead.payout_basis = decision.basis if books else ""
    lead.save(
        update_fields=[
            "status",
            "revenue_minor",
            "payout_minor",
            "currency",
            "decided_at",
            "payout_basis",
        ]
    )
    LeadStatusChange.objects.create(
        lead=lead, from_status=previous, to_status=LeadStatus.APPROVED, note=note, actor=actor
    )
    lead_counted(lead, "" if new else previous)
    affiliate_postbacks_enqueue(lead=lead, event=PostbackEvent.LEAD_APPROVED)
    _distribute_after_commit(lead)
    if not books:
        return
    # The payout waits out the hold and the advertiser's return window, whichever is longer.
    pending_days = max(offer.hold_days, offer.return_window_days)
    in_hold = pending_days > 0 and affiliate is not None and payout > 0
    if in_hold:
        lead.payable_at = at + timedelta(days=pending_days)
        lead.save(update_fields=["payable_at"])
    lead_approval_post(
        lead_id=lead.pk,
        offer_id=offer.pk,
        advertiser=offer.advertiser,
        affiliate=affiliate,
        currency=offer.currency,
        revenue_minor=revenue,
        payout_minor=payout,
        posted_at=at,
        in_hold=in_hold,
    )


def _distribute_after_commit(lead: Lead) -> None:
    """Offers that sell their leads to buyers: route the lead once it is committed."""
    # Imported here: distribution builds on leads, not the other way round.
    from leadrelay.distribution.models import OfferRouting
    from leadrelay.distribution.tasks import lead_distribute_task

    if OfferRouting.objects.filter(offer_id=lead.offer_id, enabled=True).exists():
        transaction.on_commit(lambda: lead_distribute_task.enqueue(lead.pk), robust=True)


@dataclass(frozen=True)
class ReviewOutcome:
    decided: list[int]
    skipped: list[int]  # already decided by someone else meanwhile


def leads_review_decide(
    *, lead_ids: list[int], approve: bool, actor: User | None, reason: str = "", note: str = ""
) -> ReviewOutcome:
    """Decide many leads the same way, each in its own transaction (one stuck lead doesn't
    hold back the rest). The caller has checked the actor may decide these leads."""
    decided, skipped = [], []
    for lead_id in lead_ids:
        try:
            lead_review_decide(
                lead_id=lead_id, approve=approve, actor=actor, reason=reason, note=note
            )
            decided.append(lead_id)
        except Conflict:
            skipped.append(lead_id)
    return ReviewOutcome(decided, skipped)


def lead_locked(lead_id: int) -> Lead:
    """The lead with its row locked until the caller's transaction ends, so one decision
    about it is made at a time."""
    lead = (
        Lead.objects.select_for_update(of=("self",))
        .select_related("offer", "affiliate")
        .filter(pk=lead_id)
        .first()
    )
    if lead is None:
        raise NotFound("Lead")
    return lead


def lead_review_decide(
    *,
    lead_id: int,
    approve: bool,
    actor: User | None,
    reason: str = "",
    note: str = "",
    decided_at: datetime | None = None,
) -> Lead:
    """Approve or reject a lead that waits for review. Approval books the money once."""
    with transaction.atomic():
        lead = lead_locked(lead_id)
        if lead.status != LeadStatus.PENDING_REVIEW:
            raise Conflict(
                "lead_already_decided", f"This lead is already {lead.get_status_display()}."
            )
        at = decided_at or timezone.now()
        if approve:
            _approve(lead, actor=actor, note=note, at=at)
        else:
            code = reason or "rejected_in_review"
            lead.status = LeadStatus.REJECTED
            lead.reasons = [*lead.reasons, code]
            lead.decided_at = at
            lead.save(update_fields=["status", "reasons", "decided_at"])
            LeadStatusChange.objects.create(
                lead=lead,
                from_status=LeadStatus.PENDING_REVIEW,
                to_status=LeadStatus.REJECTED,
                reasons=[code],
                note=note,
                actor=actor,
            )
            lead_counted(lead, LeadStatus.PENDING_REVIEW)
            affiliate_postbacks_enqueue(lead=lead, event=PostbackEvent.LEAD_REJECTED)
    return lead
