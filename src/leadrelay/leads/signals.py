"""Quality signals: facts about a lead that say something about its quality.

Each is a stable code stored on the lead; leads/fraud.py weighs them into
the lead's fraud score.
"""

from __future__ import annotations

from disposable_email_domains import blocklist as _DISPOSABLE

DISPOSABLE_EMAIL = "disposable_email"


def email_is_disposable(email: str) -> bool:
    """True for addresses at a throwaway-mail domain (the disposable-email-domains list)."""
    domain = email.rpartition("@")[2].lower()
    # Subdomains of a listed domain are as disposable as the domain itself.
    parts = domain.split(".")
    return any(".".join(parts[i:]) in _DISPOSABLE for i in range(len(parts) - 1))
