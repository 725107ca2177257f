"""What each attribution model would credit, per affiliate, for visitors who clicked more than once.

For every conversion in the period whose visitor (the first-party cookie on
its click) clicked the offer more than once inside the offer's window before
converting, the conversion's one unit of credit is split between those clicks:

- last click: all to the last click before the conversion;
- first click: all to the first;
- linear: equally;
- time decay: by weight 2^(-age / 7 days), age counted back from the conversion.

Credit is counted in basis points of a conversion (10,000 = one conversion),
split by largest remainder so each conversion's shares add up to exactly
10,000; the time-decay weights are computed in floating point before that
split, the shares never are. Conversions whose click row was lost, or whose
visitor clicked once, are counted in `single_click` and left out.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from leadrelay.accounts.models import Organization, OrganizationKind
from leadrelay.core.errors import PermissionDenied
from leadrelay.reporting.selectors import affiliate_labels, day_bounds
from leadrelay.tracking.models import Click, ConversionStatus, Fallback
from leadrelay.tracking.selectors import conversions_visible_to

MODELS = ("last_click", "first_click", "linear", "time_decay")
HALF_LIFE = dt.timedelta(days=7)
UNIT = 10_000


def _split(weights: list[float]) -> list[int]:
    """Shares of UNIT proportional to weights, summing to exactly UNIT (largest remainder)."""
    total = sum(weights)
    raw = [w * UNIT / total for w in weights]
    shares = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - shares[i], reverse=True)
    for i in by_remainder[: UNIT - sum(shares)]:
        shares[i] += 1
    return shares


def model_shares(click_times: list[dt.datetime], converted_at: dt.datetime) -> dict[str, list[int]]:
    """Each model's shares for clicks in time order (basis points, each list sums to UNIT)."""
    n = len(click_times)
    last = [0] * (n - 1) + [UNIT]
    first = [UNIT] + [0] * (n - 1)
    decay = [2 ** (-((converted_at - t) / HALF_LIFE)) for t in click_times]
    return {
        "last_click": last,
        "first_click": first,
        "linear": _split([1.0] * n),
        "time_decay": _split(decay),
    }


@dataclass
class AffiliateCredit:
    affiliate_id: int
    label: str
    credit_bp: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MODELS, 0))


@dataclass
class AttributionComparison:
    start: dt.date
    end: dt.date
    conversions: int  # multi-click conversions compared
    single_click: int  # left out: one click, or no click row to follow
    rows: list[AffiliateCredit]


def attribution_comparison(
    *, organization: Organization, start: dt.date, end: dt.date
) -> AttributionComparison:
    """Compare attribution models over approved conversions from start to end (UTC days).

    For the network and advertisers only: the paths hold other affiliates' clicks.
    """
    if organization.kind == OrganizationKind.AFFILIATE:
        raise PermissionDenied("not_for_affiliates", "This report compares affiliates.")
    lo, hi = day_bounds(start, end)
    conversions = list(
        conversions_visible_to(organization=organization)
        .filter(created_at__gte=lo, created_at__lt=hi, status=ConversionStatus.APPROVED)
        .select_related("offer")
    )
    clicks = {
        c.click_id: c
        for c in Click.objects.filter(click_id__in=[cv.click_id for cv in conversions]).only(
            "click_id", "visitor_id", "offer_id", "created_at"
        )
    }
    credit: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(MODELS, 0))
    compared = single = 0
    for conversion in conversions:
        converting = clicks.get(conversion.click_id)
        if converting is None or not converting.visitor_id:
            single += 1
            continue
        window = dt.timedelta(days=conversion.offer.attribution_window_days)
        path = list(
            Click.objects.filter(
                offer_id=conversion.offer_id,
                visitor_id=converting.visitor_id,
                is_bot=False,
                created_at__gte=conversion.created_at - window,
                created_at__lte=conversion.created_at,
            )
            .exclude(fallback__in=[Fallback.URL, Fallback.NONE])
            .order_by("created_at", "pk")
            .values_list("affiliate_id", "created_at")
        )
        if len(path) < 2:
            single += 1
            continue
        compared += 1
        shares = model_shares([at for _, at in path], conversion.created_at)
        for model, model_share in shares.items():
            for (affiliate_id, _), share in zip(path, model_share, strict=True):
                credit[affiliate_id][model] += share
    names = affiliate_labels(organization, list(credit))
    rows = [
        AffiliateCredit(affiliate_id=a, label=names[a], credit_bp=dict(models))
        for a, models in credit.items()
    ]
    rows.sort(key=lambda r: (-r.credit_bp["last_click"], r.label))
    return AttributionComparison(start, end, compared, single, rows)


def credit_format(bp: int) -> str:
    """Basis points of a conversion as a number of conversions, e.g. 12500 → "1.25"."""
    return f"{bp // UNIT}.{(bp % UNIT) // 100:02d}"
