"""Every metric a dashboard shows, defined once. docs/metrics.md explains each for users.

Rates are integer basis points (10000 = 100%), money integer minor units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leadrelay.core.money import ratio_bp


@dataclass
class MoneyTotals:
    revenue_minor: int = 0  # what advertisers owe for approved leads
    payout_minor: int = 0  # what affiliates earn for them

    @property
    def profit_minor(self) -> int:
        return self.revenue_minor - self.payout_minor


@dataclass
class MetricRow:
    key: str
    label: str
    clicks: int = 0
    leads: int = 0
    approved: int = 0
    rejected: int = 0  # rejected and duplicate
    pending: int = 0
    money: dict[str, MoneyTotals] = field(default_factory=dict)

    @property
    def conversion_rate_bp(self) -> int | None:
        """Leads per click."""
        return ratio_bp(self.leads, self.clicks)

    @property
    def approval_rate_bp(self) -> int | None:
        """Approved leads among decided leads (pending ones are not decided yet)."""
        return ratio_bp(self.approved, self.approved + self.rejected)

    def money_for(self, currency: str) -> MoneyTotals:
        return self.money.setdefault(currency, MoneyTotals())

    def add(self, other: MetricRow) -> None:
        self.clicks += other.clicks
        self.leads += other.leads
        self.approved += other.approved
        self.rejected += other.rejected
        self.pending += other.pending
        for currency, money in other.money.items():
            mine = self.money_for(currency)
            mine.revenue_minor += money.revenue_minor
            mine.payout_minor += money.payout_minor
