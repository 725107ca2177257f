"""Every metric a report shows, defined once. docs/metrics.md explains each for users.

Rates are integer basis points (10000 = 100%), money integer minor units of one
currency (never added across currencies). A metric whose denominator is zero is
None (a dash on pages, null in the API).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leadrelay.core.money import ratio_bp

# What each number means, shown next to it on pages (docs/metrics.md says the same at
# length). Keys are the report columns' (reporting/exports.py).
DEFINITIONS = {
    "clicks": "Clicks that arrived in the period; bots and clicks the offer refused are left out.",
    "unique_clicks": "Clicks that are not the same visitor again on the offer within 24 hours.",
    "leads": "Leads received in the period, whatever their status.",
    "approved": "Of those leads, the ones approved now.",
    "rejected": "Of those leads, the ones rejected or duplicate.",
    "duplicates": "Of the rejected, the duplicates.",
    "pending": "Of those leads, the ones waiting for review.",
    "returned": "Of those leads, the ones approved and then returned or reversed.",
    "conversion_rate": "Leads ÷ clicks.",
    "approval_rate": "Leads ever approved (returned too) ÷ leads decided (not pending).",
    "return_rate": "Returned ÷ leads ever approved.",
    "revenue": "What advertisers owe for what was booked in the period, less returns.",
    "payout": "What affiliates earn for it, less returns.",
    "profit": "Revenue − payout.",
    "margin": "Profit ÷ revenue.",
    "roi": "Profit ÷ payout.",
    "epc": "Earnings per click: payout ÷ clicks.",
    "cpl": "Cost per lead: revenue ÷ approved leads.",
}


def relative_change_bp(current: int, previous: int) -> int | None:
    """How much a count or an amount changed since the previous period, in basis points of
    the previous value's size (half up); None from nothing. A loss growing is negative."""
    if previous == 0:
        return None
    delta = (current - previous) * 10_000
    sign = -1 if delta < 0 else 1
    return sign * ((abs(delta) * 2 + abs(previous)) // (abs(previous) * 2))


def per_unit_minor(amount_minor: int, count: int) -> int | None:
    """An amount per click or per lead, rounded half up to the minor unit."""
    if count <= 0:
        return None
    sign = -1 if amount_minor < 0 else 1
    return sign * ((abs(amount_minor) * 2 + count) // (count * 2))


@dataclass
class MoneyTotals:
    revenue_minor: int = 0  # what advertisers owe for what they bought (net of returns)
    payout_minor: int = 0  # what affiliates earn for it

    @property
    def profit_minor(self) -> int:
        """Revenue - payout: the network's margin."""
        return self.revenue_minor - self.payout_minor

    @property
    def margin_bp(self) -> int | None:
        """Profit ÷ revenue."""
        return ratio_bp(self.profit_minor, self.revenue_minor)

    @property
    def roi_bp(self) -> int | None:
        """Profit ÷ payout: what the network made on what it paid affiliates."""
        return ratio_bp(self.profit_minor, self.payout_minor)


@dataclass
class MetricRow:
    key: str
    label: str
    clicks: int = 0
    unique_clicks: int = 0
    leads: int = 0
    approved: int = 0
    rejected: int = 0  # refused: rejected and duplicate
    duplicates: int = 0  # of those, duplicates
    pending: int = 0
    returned: int = 0  # approved, then returned or reversed
    money: dict[str, MoneyTotals] = field(default_factory=dict)
    parts: dict[str, str] = field(default_factory=dict)  # grouping → label, in a table
    ids: dict[str, str] = field(default_factory=dict)  # grouping → its key (an id, a date)

    @property
    def conversion_rate_bp(self) -> int | None:
        """Leads per click."""
        return ratio_bp(self.leads, self.clicks)

    @property
    def decided(self) -> int:
        """Leads no longer waiting for review."""
        return self.approved + self.returned + self.rejected

    @property
    def approval_rate_bp(self) -> int | None:
        """Leads ever approved (returned ones too) among decided leads."""
        return ratio_bp(self.approved + self.returned, self.decided)

    @property
    def return_rate_bp(self) -> int | None:
        """Returned among leads ever approved."""
        return ratio_bp(self.returned, self.approved + self.returned)

    def epc_minor(self, currency: str) -> int | None:
        """Earnings per click: payout ÷ clicks."""
        return per_unit_minor(self.money_for(currency).payout_minor, self.clicks)

    def cpl_minor(self, currency: str) -> int | None:
        """Cost per lead: revenue ÷ approved leads (returned ones are not paid for)."""
        return per_unit_minor(self.money_for(currency).revenue_minor, self.approved)

    def money_for(self, currency: str) -> MoneyTotals:
        return self.money.setdefault(currency, MoneyTotals())

    def add(self, other: MetricRow) -> None:
        for name in ("clicks", "unique_clicks", "leads", "approved", "rejected", "duplicates",
                     "pending", "returned"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for currency, money in other.money.items():
            mine = self.money_for(currency)
            mine.revenue_minor += money.revenue_minor
            mine.payout_minor += money.payout_minor
