"""Money in the JSON API: balances for any key's organization."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Field, Router, Schema

from leadrelay.accounts.auth import ApiKeyAuth, request_api_key
from leadrelay.accounts.models import OrganizationKind
from leadrelay.core.money import money_decimal
from leadrelay.ledger.selectors import advertiser_balances, affiliate_balances

router = Router(tags=["money"])


class BalanceOut(Schema):
    currency: str
    pending: str | None = Field(default=None, description="Affiliates: in hold or a return window.")
    available: str | None = Field(
        default=None, description="Affiliates: goes into the next payout."
    )
    in_payout_run: str | None = Field(default=None, description="Affiliates: frozen, being sent.")
    paid: str | None = Field(default=None, description="Affiliates: sent, all time.")
    owed: str | None = Field(default=None, description="Advertisers: billable or billed, not paid.")
    prepaid: str | None = Field(default=None, description="Advertisers: paid in advance.")


@router.get("/balances", auth=ApiKeyAuth(), response={200: list[BalanceOut]})
def balances(request: HttpRequest) -> list[BalanceOut]:
    """Your balances per currency, as decimal strings, derived from the ledger."""
    organization = request_api_key(request).organization
    if organization.kind == OrganizationKind.AFFILIATE:
        return [
            BalanceOut(
                currency=b.currency,
                pending=money_decimal(b.pending_minor, b.currency),
                available=money_decimal(b.available_minor, b.currency),
                in_payout_run=money_decimal(b.in_run_minor, b.currency),
                paid=money_decimal(b.paid_minor, b.currency),
            )
            for b in affiliate_balances(organization=organization)
        ]
    if organization.kind == OrganizationKind.ADVERTISER:
        return [
            BalanceOut(
                currency=b.currency,
                owed=money_decimal(b.owed_minor, b.currency),
                prepaid=money_decimal(b.prepaid_minor, b.currency),
            )
            for b in advertiser_balances(organization=organization)
        ]
    return []
