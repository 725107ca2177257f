from __future__ import annotations

from django.db import models

from leadrelay.accounts.models import Organization, User
from leadrelay.core.models import TimestampedModel


class Vertical(models.TextChoices):
    INSURANCE = "insurance", "Insurance"
    SOLAR = "solar", "Solar"
    LOANS = "loans", "Loans"
    MORTGAGE = "mortgage", "Mortgage"
    EDUCATION = "education", "Education"
    HOME_SERVICES = "home_services", "Home services"
    HEALTH = "health", "Health"
    LEGAL = "legal", "Legal"
    SOFTWARE = "software", "Software"
    OTHER = "other", "Other"


class OfferStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


class PayoutModel(models.TextChoices):
    CPL = "cpl", "Cost per lead"
    CPC = "cpc", "Cost per click"
    CPA = "cpa", "Cost per action"
    REVSHARE = "revshare", "Revenue share"


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    APPROVAL = "approval", "Needs approval"
    PRIVATE = "private", "Private"


class ReviewMode(models.TextChoices):
    AUTO_APPROVE = "auto_approve", "Approve valid leads at once"
    MANUAL = "manual", "Hold valid leads for review"


class AttributionModel(models.TextChoices):
    LAST_CLICK = "last_click", "Last click"
    FIRST_CLICK = "first_click", "First click"


class DedupeMatch(models.TextChoices):
    ANY = "any", "Any one of the fields matches"
    ALL = "all", "All the fields match"


class DedupeScope(models.TextChoices):
    OFFER = "offer", "This offer"
    ADVERTISER = "advertiser", "All the advertiser's offers"
    NETWORK = "network", "The whole network"


class OverCap(models.TextChoices):
    REFUSE = "refuse", "Refuse leads over a cap"
    ACCEPT_UNPAID = "accept_unpaid", "Accept them, unpaid"


class Offer(TimestampedModel):
    """What an advertiser buys: the lead it pays for, what it pays, and what affiliates earn."""

    advertiser = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="offers")
    name = models.CharField(max_length=200)
    vertical = models.CharField(max_length=32, choices=Vertical.choices, default=Vertical.OTHER)
    description = models.TextField(blank=True, max_length=5000)
    status = models.CharField(
        max_length=16, choices=OfferStatus.choices, default=OfferStatus.DRAFT, db_index=True
    )
    payout_model = models.CharField(
        max_length=16, choices=PayoutModel.choices, default=PayoutModel.CPL
    )
    currency = models.CharField(max_length=3, default="USD")
    revenue_minor = models.BigIntegerField(help_text="What the advertiser pays per approved lead.")
    payout_minor = models.BigIntegerField(help_text="What the affiliate earns per approved lead.")
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.APPROVAL
    )
    landing_url = models.URLField(
        max_length=2000, help_text="Macros: {click_id} {sub1}…{sub5} {country} {device} …"
    )
    deeplink_domains = models.JSONField(
        default=list,
        blank=True,
        help_text="Domains a link may deep-link to with ?url= (subdomains included).",
    )
    review_mode = models.CharField(
        max_length=16, choices=ReviewMode.choices, default=ReviewMode.AUTO_APPROVE
    )
    default_region = models.CharField(
        max_length=2, default="US", help_text="Region for phone numbers given without +country."
    )
    timezone = models.CharField(max_length=64, default="UTC")
    consent_text = models.TextField(blank=True, max_length=5000)
    hold_days = models.PositiveIntegerField(
        default=0,
        help_text="Days an approved lead's payout waits before the affiliate can be paid.",
    )
    thank_you_url = models.URLField(
        max_length=2000, blank=True, help_text="Where the hosted form sends the visitor after."
    )
    requires_consent = models.BooleanField(
        default=False, help_text="Refuse leads that come without the visitor's consent."
    )
    # Targeting on click (offers/targeting.py); empty means no restriction.
    allowed_countries = models.JSONField(default=list, blank=True)
    allowed_devices = models.JSONField(default=list, blank=True)
    schedule = models.JSONField(default=dict, blank=True)
    # Where a click the offer won't take goes: another offer, else a URL, else nowhere (404).
    fallback_offer = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fallback_url = models.URLField(max_length=2000, blank=True)
    # Conversions (tracking/conversions.py): how long after a click it may convert, and
    # which of a visitor's clicks gets the credit.
    attribution_window_days = models.PositiveIntegerField(default=30)
    attribution_model = models.CharField(
        max_length=16, choices=AttributionModel.choices, default=AttributionModel.LAST_CLICK
    )
    # Fraud (leads/fraud.py): a score at review goes to review, at reject is rejected.
    fraud_review_score = models.PositiveIntegerField(default=50)
    fraud_reject_score = models.PositiveIntegerField(default=100)
    min_form_seconds = models.PositiveIntegerField(
        default=3, help_text="A hosted form sent faster than this is a fraud signal."
    )
    require_mobile = models.BooleanField(
        default=False, help_text="A phone that is not a mobile number is a fraud signal."
    )
    advertiser_reviews = models.BooleanField(
        default=False, help_text="The advertiser may approve and reject leads held for review."
    )
    # Qualification rules (leads/rules.py): a tree of all/any conditions.
    rules = models.JSONField(default=dict, blank=True)
    # Duplicates (leads/dedupe.py); empty fields: the offer's email and phone fields.
    dedupe_fields = models.JSONField(default=list, blank=True)
    dedupe_match = models.CharField(
        max_length=8, choices=DedupeMatch.choices, default=DedupeMatch.ANY
    )
    dedupe_window_days = models.PositiveIntegerField(default=30)
    dedupe_scope = models.CharField(
        max_length=16, choices=DedupeScope.choices, default=DedupeScope.OFFER
    )
    over_cap = models.CharField(max_length=16, choices=OverCap.choices, default=OverCap.REFUSE)
    # Money (ledger/): how long the advertiser may return an approved lead; the affiliate's
    # payout stays pending until both this and the hold are over.
    return_window_days = models.PositiveIntegerField(default=0)
    # RevShare offers: shares of the amount a conversion reports, in basis points (1% = 100).
    revenue_bps = models.PositiveIntegerField(default=0)
    payout_bps = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(revenue_minor__gte=0) & models.Q(payout_minor__gte=0),
                name="offer_amounts_non_negative",
            )
        ]

    def __str__(self) -> str:
        return self.name


class LandingVariant(models.Model):
    """One of an offer's landing pages; clicks are split between them by weight."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="landing_variants")
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=2000, help_text="Same macros as the offer's landing URL.")
    weight = models.PositiveIntegerField(default=1, help_text="0 takes it out of rotation.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["offer", "name"], name="landing_variant_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.offer_id}:{self.name}"


class FieldType(models.TextChoices):
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    CHOICE = "choice", "Choice"
    DATE = "date", "Date"
    BOOLEAN = "boolean", "Yes/no"
    COUNTRY = "country", "Country"
    POSTAL_CODE = "postal_code", "Postal code"
    SUBDIVISION = "subdivision", "State or region (ISO 3166-2)"


class OfferField(models.Model):
    """One typed field of an offer's lead schema."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="fields")
    key = models.SlugField(max_length=64)
    type = models.CharField(max_length=16, choices=FieldType.choices)
    label = models.CharField(max_length=200)
    required = models.BooleanField(default=False)
    choices = models.JSONField(default=list, blank=True)
    # Pre-screening: for a choice field, the answers that qualify (empty: all do).
    qualifying_choices = models.JSONField(default=list, blank=True)
    max_length = models.PositiveIntegerField(default=200)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["offer", "key"], name="offer_field_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.offer_id}:{self.key}"


class AccessStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class OfferAccess(TimestampedModel):
    """An affiliate's application to run an offer, its decision, and its payout override."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="accesses")
    affiliate = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="offer_accesses"
    )
    status = models.CharField(
        max_length=16, choices=AccessStatus.choices, default=AccessStatus.PENDING
    )
    payout_minor_override = models.BigIntegerField(null=True, blank=True)
    message = models.CharField(max_length=1000, blank=True)
    decided_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["offer", "affiliate"], name="offer_access_unique"),
            models.CheckConstraint(
                condition=models.Q(payout_minor_override__isnull=True)
                | models.Q(payout_minor_override__gte=0),
                name="offer_access_override_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.affiliate} on {self.offer}: {self.status}"


class PayoutTier(models.Model):
    """A volume tier: from the `min_approved`-th approved lead of a calendar month (in the
    offer's time zone) the affiliate earns `payout_minor` per lead. A tier with an affiliate
    applies to that affiliate only, and an affiliate with tiers of its own ignores the offer's.
    """

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="payout_tiers")
    affiliate = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    min_approved = models.PositiveIntegerField()
    payout_minor = models.BigIntegerField()

    class Meta:
        ordering = ["offer", "affiliate", "min_approved"]
        constraints = [
            models.UniqueConstraint(
                fields=["offer", "affiliate", "min_approved"],
                name="payout_tier_unique",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=models.Q(payout_minor__gte=0) & models.Q(min_approved__gte=1),
                name="payout_tier_sane",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.offer_id}: from {self.min_approved} → {self.payout_minor}"


class CapPeriod(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week (Monday to Sunday)"
    MONTH = "month", "Month"


class LeadCap(models.Model):
    """At most `limit` accepted leads per period for an offer, or one affiliate on it.

    Periods are the offer's local days, ISO weeks and months (offers/caps.py).
    """

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="caps")
    affiliate = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    period = models.CharField(max_length=8, choices=CapPeriod.choices)
    limit = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["offer", "affiliate", "period"],
                name="lead_cap_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        who = f"affiliate {self.affiliate_id}" if self.affiliate_id else "offer"
        return f"{self.limit}/{self.period} for {who} on {self.offer_id}"


class CapCounter(models.Model):
    """How many leads a cap has admitted in one period. Only ever moved by a guarded UPDATE."""

    cap = models.ForeignKey(LeadCap, on_delete=models.CASCADE, related_name="counters")
    period_start = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cap", "period_start"], name="cap_counter_unique")
        ]

    def __str__(self) -> str:
        return f"{self.cap_id}@{self.period_start}: {self.count}"
