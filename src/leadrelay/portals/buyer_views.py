"""Portal pages for buyer campaigns: each buyer's state (and why it is paused), its recent
deliveries with every try, re-sending one by hand, and resuming a paused buyer."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from leadrelay.accounts.models import Membership, Organization, OrganizationKind
from leadrelay.core.errors import DomainError
from leadrelay.distribution.delivery import delivery_resend
from leadrelay.distribution.models import Buyer, BuyerStatus, Delivery, DeliveryStatus
from leadrelay.portals.access import portal_view

NETWORK, ADVERTISER = OrganizationKind.NETWORK, OrganizationKind.ADVERTISER


def buyers_visible_to(organization: Organization) -> QuerySet[Buyer]:
    buyers = Buyer.objects.select_related("advertiser").order_by("advertiser__name", "name")
    if organization.kind == NETWORK:
        return buyers
    if organization.kind == ADVERTISER:
        return buyers.filter(advertiser=organization)
    return buyers.none()


@portal_view(NETWORK, ADVERTISER)
def buyers(request: HttpRequest, membership: Membership) -> HttpResponse:
    rows = buyers_visible_to(membership.organization).annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.DELIVERED)),
        failed=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED)),
        pending=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)),
    )
    return render(request, "portals/buyers.html", {"buyers": rows})


@portal_view(NETWORK, ADVERTISER)
def buyer_detail(request: HttpRequest, membership: Membership, buyer_id: int) -> HttpResponse:
    buyer = buyers_visible_to(membership.organization).filter(pk=buyer_id).first()
    if buyer is None:
        raise Http404
    if request.method == "POST":
        if request.POST.get("resume") and buyer.status == BuyerStatus.PAUSED:
            buyer.status, buyer.paused_reason, buyer.consecutive_failures = (
                BuyerStatus.ACTIVE,
                "",
                0,
            )
            buyer.save(update_fields=["status", "paused_reason", "consecutive_failures"])
            messages.success(request, f"{buyer.name} takes leads again.")
        elif (delivery_id := request.POST.get("resend", "")).isdigit():
            if not buyer.deliveries.filter(pk=int(delivery_id)).exists():
                raise Http404
            try:
                delivery_resend(delivery_id=int(delivery_id))
                messages.success(request, f"Delivery {delivery_id} is sent again.")
            except DomainError as exc:
                messages.error(request, f"Refused ({exc.code}): {exc.message}")
        return redirect("portal-buyer", buyer_id=buyer.pk)
    deliveries = (
        Delivery.objects.filter(buyer=buyer)
        .prefetch_related("attempt_log")
        .order_by("-created_at", "-pk")[:100]
    )
    return render(request, "portals/buyer.html", {"buyer": buyer, "deliveries": deliveries})
