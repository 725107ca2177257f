"""Consent evidence: what a visitor agreed to, where, when, from which address and browser.

The disclosure text is stored once per distinct wording (ConsentText, keyed by
its SHA-256), so each lead points at the exact words it was shown, and a
changed disclosure is a new version rather than an edit. Third-party
certificates (TrustedForm, Jornaya LeadiD) are kept as tokens; leadrelay does
not call those services.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from leadrelay.core.errors import Problem
from leadrelay.leads.models import ConsentText

TRUSTEDFORM_RE = re.compile(r"^https://cert\.trustedform\.com/[0-9a-f]{40}$")
LEADID_RE = re.compile(
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
TEXT_MAX = 5000


@dataclass(frozen=True)
class Consent:
    text: str
    page_url: str = ""
    given_at: dt.datetime | None = None
    trustedform_cert_url: str = ""
    jornaya_leadid: str = ""


def consent_problems(consent: Consent | None, *, required: bool) -> list[Problem]:
    if consent is None or not consent.text.strip():
        if required:
            return [
                Problem("consent_required", "This offer needs the visitor's consent.", "consent")
            ]
        return []
    problems = []
    if len(consent.text) > TEXT_MAX:
        problems.append(Problem("too_long", f"At most {TEXT_MAX} characters.", "consent.text"))
    if len(consent.page_url) > 2000 or (
        consent.page_url and not consent.page_url.startswith(("http://", "https://"))
    ):
        problems.append(Problem("invalid_url", "An http(s) URL.", "consent.page_url"))
    if consent.trustedform_cert_url and not TRUSTEDFORM_RE.match(consent.trustedform_cert_url):
        problems.append(
            Problem(
                "invalid_trustedform",
                "A TrustedForm certificate URL: https://cert.trustedform.com/<40 hex>.",
                "consent.trustedform_cert_url",
            )
        )
    if consent.jornaya_leadid and not LEADID_RE.match(consent.jornaya_leadid):
        problems.append(
            Problem("invalid_leadid", "A Jornaya LeadiD token.", "consent.jornaya_leadid")
        )
    return problems


def consent_text_store(text: str) -> ConsentText:
    """The stored version of this exact wording, made the first time it is seen."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    found = ConsentText.objects.filter(sha256=digest).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return ConsentText.objects.create(sha256=digest, text=text)
    except IntegrityError:
        return ConsentText.objects.get(sha256=digest)
