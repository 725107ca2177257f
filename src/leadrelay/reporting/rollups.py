"""Keeping the report rollups (reporting/models.py Rollup) up to date, and rebuilding them.

Every change is added to the cells it touches in the same database transaction
as the rows it counts, so a rollup is never ahead of or behind what was
committed:

- a click written (tracking/buffer.py) adds to `clicks` (and `unique_clicks`)
  at its hour — bots and clicks the offer refused (sent to a fallback URL or
  nowhere) don't count, as before rollups;
- a lead stored adds to `leads` and to its status's count at the hour it
  arrived; a later status change moves it from one count to the other, at that
  same hour (a lead approved tomorrow still counts for the day it came);
  a rejected or duplicate lead counts once per reason code in the `reason`
  breakdown;
- a sale posted to the ledger (a CPL approval, CPC clicks, a conversion, a lead
  sold to a buyer, and reversals of these) adds what the advertiser owes to
  `revenue_minor` and what the affiliate earns to `payout_minor`, at the hour it
  was booked, so report money always equals the ledger's.

Each change touches the whole (`dim` "") and one cell per breakdown whose value
it has (sub1…sub5, country, device, variant), and the whole of its UTC day (`dim`
DAY, stored at the day's midnight): a month's report by day, offer and affiliate
reads 30 of those a link instead of 720 hours (reporting/tables.py, the hours
only where the viewer's days don't start at UTC midnight). Cells are upserted in key order
(`INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`), counts before money,
so concurrent writers lock them in the same order.

`rollups_rebuild` recomputes every cell from the raw rows with GROUP BY
queries; the result equals what the upkeep produced (tests/reporting).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from django.db import connection, transaction
from django.db.models import CharField, Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, TruncDay, TruncHour

from leadrelay.leads.models import Lead, LeadStatus
from leadrelay.ledger.models import AccountRole, Entry, Transaction, TransactionKind
from leadrelay.reporting.models import Rollup
from leadrelay.tracking.models import Click, Fallback

DIMS = ("sub1", "sub2", "sub3", "sub4", "sub5", "country", "device", "variant")
BREAKDOWNS = (*DIMS, "reason")
DAY = "@day"  # the whole of a UTC day, at its midnight: not a breakdown
COUNTS = ("clicks", "unique_clicks", "leads", "approved", "rejected", "duplicate", "pending",
          "returned")  # fmt: skip
MONEY = ("revenue_minor", "payout_minor")
COLUMNS = COUNTS + MONEY

# The sales reports count; their reversals (returns, take-backs) count against them.
SALE_KINDS = (
    TransactionKind.LEAD_APPROVED,
    TransactionKind.CLICKS,
    TransactionKind.CONVERSION,
    TransactionKind.SALE,
)
REVENUE_ROLES = (AccountRole.ADVERTISER_RECEIVABLE,)
PAYOUT_ROLES = (AccountRole.AFFILIATE_PAYABLE, AccountRole.AFFILIATE_PAYABLE_PENDING)

# Which count a lead in each status adds to.
STATUS_COUNT = {
    LeadStatus.PENDING_REVIEW: "pending",
    LeadStatus.APPROVED: "approved",
    LeadStatus.REJECTED: "rejected",
    LeadStatus.DUPLICATE: "duplicate",
    LeadStatus.RETURNED: "returned",
    LeadStatus.REVERSED: "returned",
}
REASONED = (LeadStatus.REJECTED, LeadStatus.DUPLICATE)
VALUE_MAX = 100

Key = tuple[dt.datetime, int, int, str, str, str]  # hour, offer, affiliate, dim, value, cur


def hour_of(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def day_of(hour: dt.datetime) -> dt.datetime:
    """The UTC midnight starting the day of a UTC hour."""
    return hour.replace(hour=0)


def _values(row: Any) -> dict[str, str]:
    """The breakdown values of a click or a lead (empty ones are left out)."""
    found = {name: getattr(row, _field(name)) for name in DIMS}
    return {k: str(v)[:VALUE_MAX] for k, v in found.items() if v not in (None, "")}


Cell = tuple[str, str]  # (dim, value); ("", "") is the whole


def cells_of(values: Mapping[str, str]) -> list[Cell]:
    return [("", ""), *values.items()]


class Deltas:
    """Changes to cells, added up before they are written."""

    def __init__(self) -> None:
        self.cells: dict[Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(
        self,
        at: dt.datetime,
        offer_id: int,
        affiliate_id: int | None,
        cells: Iterable[Cell],
        change: Mapping[str, int],
        currency: str = "",
    ) -> None:
        hour, affiliate = hour_of(at), affiliate_id or 0
        for dim, value in cells:
            cell = self.cells[(hour, offer_id, affiliate, dim, value, currency)]
            for column, amount in change.items():
                cell[column] += amount
            if not dim:
                day = self.cells[(day_of(hour), offer_id, affiliate, DAY, "", currency)]
                for column, amount in change.items():
                    day[column] += amount

    def write(self) -> None:
        rows = sorted((key, cell) for key, cell in self.cells.items() if any(cell.values()))
        if rows:
            _upsert(rows)
        self.cells.clear()


UPSERT_ROWS = 500  # cells per statement: 16 parameters each, under SQLite's 32,766


def _upsert(rows: list[tuple[Key, dict[str, int]]]) -> None:
    """Add the cells' changes in as few statements as possible (PostgreSQL: one; SQLite: one
    per UPSERT_ROWS cells): a statement per cell cost clicks twice their insert time
    (bench/reports)."""
    table = connection.ops.quote_name(Rollup._meta.db_table)
    keys = "hour, offer_id, affiliate_id, dim, value, currency"
    columns = ", ".join(COLUMNS)
    one = "(" + ", ".join(["%s"] * (6 + len(COLUMNS))) + ")"
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COLUMNS)
    if connection.vendor == "postgresql":
        _upsert_arrays(rows, table, keys, columns, adds)
        return
    with connection.cursor() as cursor:
        for start in range(0, len(rows), UPSERT_ROWS):
            chunk = rows[start : start + UPSERT_ROWS]
            params: list[Any] = []
            for (hour, offer, affiliate, dim, value, currency), cell in chunk:
                # Stored as Django stores a DateTimeField, so cells match what the ORM reads.
                stored = connection.ops.adapt_datetimefield_value(hour)
                params += [stored, offer, affiliate, dim, value, currency]
                params += [cell.get(c, 0) for c in COLUMNS]
            # Names from this module, values as parameters.
            sql = (
                f"INSERT INTO {table} ({keys}, {columns}) "  # noqa: S608
                f"VALUES {', '.join([one] * len(chunk))} "
                f"ON CONFLICT ({keys}) DO UPDATE SET {adds}"
            )
            cursor.execute(sql, params)


_PG_TYPES = ("timestamptz", "bigint", "bigint", "text", "text", "text", *["bigint"] * len(COLUMNS))


def _upsert_arrays(
    rows: list[tuple[Key, dict[str, int]]], table: str, keys: str, columns: str, adds: str
) -> None:
    """PostgreSQL: the whole batch as one array per column, unnested: one statement with 16
    parameters (bench/reports: 1,258 us a click against 2,235 us for multi-row VALUES)."""
    arrays: list[list[Any]] = [[] for _ in _PG_TYPES]
    for key, cell in rows:
        for i, value in enumerate((*key, *(cell.get(c, 0) for c in COLUMNS))):
            arrays[i].append(value)
    unnest = ", ".join(f"%s::{t}[]" for t in _PG_TYPES)
    sql = (
        f"INSERT INTO {table} ({keys}, {columns}) "  # noqa: S608
        f"SELECT * FROM unnest({unnest}) ON CONFLICT ({keys}) DO UPDATE SET {adds}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)


# --- the upkeep, called by the writers ---------------------------------------------------


def _click_counts(click: Click) -> bool:
    return not click.is_bot and click.fallback not in (Fallback.URL, Fallback.NONE)


def clicks_counted(clicks: Iterable[Click]) -> None:
    """Clicks just inserted (in the caller's transaction)."""
    deltas = Deltas()
    for click in clicks:
        if _click_counts(click):
            change = {"clicks": 1, "unique_clicks": 1 if click.is_unique else 0}
            cells = cells_of(_values(click))
            deltas.add(click.created_at, click.offer_id, click.affiliate_id, cells, change)
    deltas.write()


def _reason_cells(lead: Lead) -> list[Cell]:
    return [("reason", code[:VALUE_MAX]) for code in sorted({str(c) for c in lead.reasons or []})]


def lead_counted(lead: Lead, from_status: str = "") -> None:
    """A lead just stored (from_status "") or moved from `from_status` to its status now;
    in the caller's transaction. Rejected and duplicate leads count once per reason code in
    the reason breakdown (those statuses are final: a lead never leaves them)."""
    change: dict[str, int] = defaultdict(int)
    if from_status:
        change[STATUS_COUNT[LeadStatus(from_status)]] -= 1
    else:
        change["leads"] += 1
    counted = STATUS_COUNT[LeadStatus(lead.status)]
    change[counted] += 1
    deltas = Deltas()
    at, offer, affiliate = lead.created_at, lead.offer_id, lead.affiliate_id
    deltas.add(at, offer, affiliate, cells_of(_values(lead)), change)
    if from_status in REASONED:
        deltas.add(
            at, offer, affiliate, _reason_cells(lead), {STATUS_COUNT[LeadStatus(from_status)]: -1}
        )
    if lead.status in REASONED:
        deltas.add(at, offer, affiliate, _reason_cells(lead), {counted: 1})
    deltas.write()


def _sale(kind: str, reverses_kind: str | None) -> bool:
    if kind == TransactionKind.REVERSAL:
        return reverses_kind in SALE_KINDS
    return kind in SALE_KINDS


def money_posted(txn: Transaction, postings: Iterable[tuple[str, str, int]]) -> None:
    """A ledger transaction just posted, in the caller's transaction: (account role,
    currency, amount) of each entry. Only sales and their reversals count."""
    reverses_kind = txn.reverses.kind if txn.reverses is not None else None
    if txn.offer_id is None or not _sale(txn.kind, reverses_kind):
        return
    money: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for role, currency, amount in postings:
        if role in REVENUE_ROLES:
            money[currency]["revenue_minor"] += amount
        elif role in PAYOUT_ROLES:
            money[currency]["payout_minor"] -= amount
    found = (
        Lead.objects.filter(pk=txn.lead_id).values(*(_field(d) for d in DIMS)).first()
        if txn.lead_id
        else None
    )
    # Only the breakdown columns: this runs on every sale posting.
    cells = cells_of(_values(SimpleNamespace(**found)) if found else {})
    deltas = Deltas()
    for currency, change in money.items():
        deltas.add(txn.posted_at, txn.offer_id, txn.affiliate_id, cells, change, currency)
    deltas.write()


# --- rebuilding from raw rows --------------------------------------------------------------


def _field(dim: str, prefix: str = "") -> str:
    return prefix + ("landing_variant_id" if dim == "variant" else dim)


def _with_value(qs: QuerySet[Any], field: str) -> QuerySet[Any]:
    if field.endswith("_id"):
        return qs.exclude(**{f"{field}__isnull": True})
    return qs.exclude(**{field: ""})


def _snapshot() -> dict[Key, dict[str, int]]:
    """The stored cells that hold something."""
    cells = {}
    for cell in Rollup.objects.iterator(chunk_size=5000):
        values = {c: getattr(cell, c) for c in COLUMNS}
        if any(values.values()):
            key = (hour_of(cell.hour), cell.offer_id, cell.affiliate_id, cell.dim, cell.value,
                   cell.currency)  # fmt: skip
            cells[key] = {c: n for c, n in values.items() if n}
    return cells


def rollup_problems(limit: int = 50) -> list[str]:
    """Cells that differ from what the raw rows say (empty when the rollups are right): the
    stored cells against a rebuild made in a transaction that is then rolled back."""
    stored = _snapshot()
    with transaction.atomic():
        _lock()
        _refill()
        expected = _snapshot()
        transaction.set_rollback(True)
    problems = []
    for key in sorted(stored.keys() | expected.keys()):
        have, want = stored.get(key), expected.get(key)
        if have == want:
            continue
        if have is None:
            problems.append(f"{_shown(key)}: missing, rows say {_diff(want)}")
        else:
            problems.append(f"{_shown(key)}: stored {_diff(have)}, rows say {_diff(want)}")
    return problems[:limit]


def _shown(key: Key) -> str:
    hour, offer, affiliate, dim, value, currency = key
    where = f"{dim}={value}" if dim else "all"
    return f"{hour:%Y-%m-%d %H}h offer {offer} affiliate {affiliate} {where} {currency}".strip()


def _diff(cell: Mapping[str, int] | None) -> str:
    if not cell:
        return "nothing"
    return ", ".join(f"{c} {n}" for c, n in cell.items() if n) or "zeros"


def _fill(grouped: QuerySet[Any], dim: str, prefix: str = "", into: Any = Rollup) -> None:
    """INSERT … SELECT the cells of one grouped query (aliases h, o, a, v, c and some of the
    columns, named `prefix` + column) in the server, adding to cells already there: no row
    passes through Python."""
    sql, params = grouped.query.sql_with_params()
    table = connection.ops.quote_name(into._meta.db_table)
    keys = "hour, offer_id, affiliate_id, dim, value, currency"
    summed = {a.removeprefix(prefix) for a in grouped.query.annotation_select} & set(COLUMNS)
    picked = ", ".join(f"g.{prefix}{c}" if c in summed else "0" for c in COLUMNS)
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in COLUMNS)
    # Names from this module and Django's own SQL; values as parameters. "WHERE true" lets
    # SQLite tell the SELECT from the ON CONFLICT clause.
    statement = (
        f"INSERT INTO {table} ({keys}, {', '.join(COLUMNS)}) "  # noqa: S608
        f"SELECT g.h, g.o, g.a, %s, g.v, g.c, {picked} FROM ({sql}) g WHERE true "
        f"ON CONFLICT ({keys}) DO UPDATE SET {adds}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [dim, *params])


def _grouping(qs: QuerySet[Any], at: str, offer: str, affiliate: str, field: str | None,
              currency: Any) -> QuerySet[Any]:  # fmt: skip
    value = Cast(F(field), CharField()) if field else Value("", output_field=CharField())
    return (
        qs.annotate(h=TruncHour(at, tzinfo=dt.UTC))
        .values("h", o=F(offer), a=Coalesce(F(affiliate), 0), v=value, c=currency)
        .order_by()
    )


def _fill_all() -> None:
    """Every cell, computed by the database (see rollups_rebuild)."""
    no_currency = Value("", output_field=CharField())
    clicks = Click.objects.filter(is_bot=False).exclude(fallback__in=[Fallback.URL, Fallback.NONE])
    money = Entry.objects.filter(
        Q(transaction__kind__in=SALE_KINDS)
        | Q(transaction__kind=TransactionKind.REVERSAL, transaction__reverses__kind__in=SALE_KINDS),
        transaction__offer_id__isnull=False,
        account__role__in=[*REVENUE_ROLES, *PAYOUT_ROLES],
    )
    lead_counts = {
        column: Count(
            "id", filter=Q(status__in=[s for s, c in STATUS_COUNT.items() if c == column])
        )
        for column in ("approved", "rejected", "duplicate", "pending", "returned")
    }
    for dim in ("", *DIMS):
        field = _field(dim) if dim else None
        fields_clicks = _with_value(clicks, field) if field else clicks
        _fill(
            _grouping(
                fields_clicks, "created_at", "offer_id", "affiliate_id", field, no_currency
            ).annotate(clicks=Count("id"), unique_clicks=Count("id", filter=Q(is_unique=True))),
            dim,
        )
        leads = _with_value(Lead.objects.all(), field) if field else Lead.objects.all()
        _fill(
            _grouping(leads, "created_at", "offer_id", "affiliate_id", field, no_currency).annotate(
                leads=Count("id"), **lead_counts
            ),
            dim,
        )
        lead_field = _field(dim, "transaction__lead__") if dim else None
        entries = (
            _with_value(money.filter(transaction__lead__isnull=False), lead_field)
            if lead_field
            else money
        )
        _fill(
            _grouping(
                entries,
                "transaction__posted_at",
                "transaction__offer_id",
                "transaction__affiliate_id",
                lead_field,
                F("currency"),
            ).annotate(
                revenue_minor=Coalesce(
                    Sum("amount_minor", filter=Q(account__role__in=REVENUE_ROLES)), 0
                ),
                payout_minor=-Coalesce(
                    Sum("amount_minor", filter=Q(account__role__in=PAYOUT_ROLES)), 0
                ),
            ),
            dim,
        )
    # Reason codes are a JSON list per lead: counted here (only refused leads have them).
    deltas = Deltas()
    reasoned = Lead.objects.filter(status__in=REASONED).only(
        "created_at", "offer_id", "affiliate_id", "status", "reasons"
    )
    for lead in reasoned.iterator(chunk_size=2000):
        change = {STATUS_COUNT[LeadStatus(lead.status)]: 1}
        deltas.add(lead.created_at, lead.offer_id, lead.affiliate_id, _reason_cells(lead), change)
    deltas.write()


def _lock() -> None:
    """Writers upsert cells inside their own transactions: on PostgreSQL, make them wait
    until this transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(Rollup._meta.db_table)
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")


def days_fill(rollup: Any = Rollup) -> None:
    """The day cells: the whole hours' cells added up by UTC day, in the server (`rollup`: the
    model, or a migration's historical one)."""
    grouped = (
        rollup.objects.filter(dim="")
        .annotate(h=TruncDay("hour", tzinfo=dt.UTC))
        .values("h", o=F("offer_id"), a=F("affiliate_id"), v=F("value"), c=F("currency"))
        .annotate(**{f"n_{column}": Sum(column) for column in COLUMNS})
        .exclude(**{f"n_{column}": 0 for column in COLUMNS})  # a sale and its return
        .order_by()
    )
    _fill(grouped, DAY, prefix="n_", into=rollup)


def _refill() -> None:
    Rollup.objects.all().delete()
    _fill_all()
    days_fill()
    # A reversal's cell can sum to nothing (a sale and its return in the same hour).
    Rollup.objects.filter(Q(**{column: 0 for column in COLUMNS})).delete()


def rollups_rebuild() -> int:
    """Recompute every cell from clicks, leads and ledger entries, in one transaction and in
    the database (INSERT … SELECT per source and breakdown; the writers wait meanwhile).
    Returns the number of cells."""
    with transaction.atomic():
        _lock()
        _refill()
        return Rollup.objects.count()
